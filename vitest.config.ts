import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration suites start brokers and simulators; two at a time suits a 2-core box.
    maxWorkers: 2,
    pool: 'forks',
  },
});

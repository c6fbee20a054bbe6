import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A safety net, not a measurement: sized for a loaded CI box (peers-opcua took 8.9 s idle and
    // passed 30 s under load 3–9). Tests wait for events; figures belong to bench/.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration suites start brokers and simulators; two at a time suits a 2-core box.
    maxWorkers: 2,
    pool: 'forks',
  },
});

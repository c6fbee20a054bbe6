// Lint with type information (typescript-eslint): the rules that catch real bugs in async,
// event-driven code — promises nobody awaits or handles, promises passed where a callback is
// expected, awaiting non-promises, assertions that change nothing — over src/, drivers/,
// simulators/, bench/, scripts/ and test/. Formatting is Prettier's (.prettierrc.json).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'release/**', '.cache/**', 'models/**', 'coverage/**', '**/*.mjs', '**/*.js'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/only-throw-error': 'error',
      // Forwarding what a promise rejected with (unknown) is fine; inventing a non-Error is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // The SQLite binding depends on the Node running (12.x on Node 20, the Node-API 13 on 22+):
      // everything takes it from src/buffer/sqlite.ts; a direct import loads the wrong one on Node 24.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'better-sqlite3', message: 'import the binding from src/buffer/sqlite.ts (it picks the one for this Node)', allowTypeImports: true },
            { name: 'better-sqlite3-napi', message: 'import the binding from src/buffer/sqlite.ts', allowTypeImports: true },
          ],
        },
      ],
    },
  },
);

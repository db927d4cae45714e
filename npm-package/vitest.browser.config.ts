import { defineConfig } from 'vitest/config';

// Browser tests: node-environment test files that drive headless Chromium
// (playwright-core) against the real gateway. One file at a time: they share
// the gateway and the machine has two cores.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    environment: 'node',
    globalSetup: ['test/support/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});

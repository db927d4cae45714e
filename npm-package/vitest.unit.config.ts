import { defineConfig } from 'vitest/config';

// Unit tests of the TypeScript logic (node environment, no browser).
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    environment: 'node',
  },
});

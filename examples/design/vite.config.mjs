// Builds the design's components (examples/design) into examples/design/dist
// with React's DEVELOPMENT build, so the end-to-end test sees every warning
// React would print while the components are developed. The config's `mode`
// alone does not switch `vite build` to development (the NODE_ENV
// environment variable or `--mode` on the command line does), so the
// definition is explicit here; build.sh also sets NODE_ENV=development.
// e2e/design.test.mjs checks the bundle carries React's warnings.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  mode: 'development',
  logLevel: 'warn',
  define: { 'process.env.NODE_ENV': JSON.stringify('development') },
  resolve: { dedupe: ['react', 'react-dom'] },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, minify: false, chunkSizeWarningLimit: 4096 },
});

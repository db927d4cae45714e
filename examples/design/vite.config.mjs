// Builds the design's components (examples/design) into examples/design/dist
// with React's DEVELOPMENT build (mode 'development' makes Vite define
// process.env.NODE_ENV as "development"), so the end-to-end test sees every
// warning React would print while the components are developed. Not minified.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  mode: 'development',
  logLevel: 'warn',
  resolve: { dedupe: ['react', 'react-dom'] },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, minify: false, chunkSizeWarningLimit: 4096 },
});

// Builds the demo app (examples/app) into examples/app/dist, which the
// gateway serves with --static-dir. No wasm plugin: the package's
// `new URL('./wasm/…', import.meta.url)` is an asset Vite emits by itself.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('./app', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  logLevel: 'warn',
  // @datashop/logs-sse-client is linked from ../npm-package (file: dependency),
  // whose own node_modules may hold a second React for its tests: one React.
  resolve: { dedupe: ['react', 'react-dom'] },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
  server: { fs: { allow: [fileURLToPath(new URL('..', import.meta.url))] } },
});

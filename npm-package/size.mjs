#!/usr/bin/env node
// What an app ships for this package, measured as users get it: a Vite
// production build (minified, tree-shaken) of two tiny apps, one importing
// the framework-free `/core` entry and one the React entry (React itself is
// external, so only this package's share is counted). Prints, per app, the
// entry JS (this package's code + the wasm-bindgen glue) minified and
// gzipped, the emitted .wasm gzipped, and their sum.
//
// Usage: node size.mjs        (after `bash build.sh`; reads dist/)
//        node size.mjs --modules   also lists each app's JS by module
// The apps are written to test/.out/size/ (gitignored) and resolve the
// package through node_modules like an installed dependency would.

import { mkdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, 'dist/core.js'))) {
  console.error('dist/ is missing: run `bash build.sh` first');
  process.exit(1);
}

const apps = {
  core: `import { createLogsClient, ChannelStore, channelFromOptions } from '@datashop/logs-sse-client/core';
const client = createLogsClient({ gatewayUrl: '/logs' });
const store = new ChannelStore(client, channelFromOptions({ service: 'etl', workspace_id: 1 }).channel);
store.subscribe(() => console.log(store.getSnapshot()));
`,
  react: `import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { LogsSSEProvider, useLogsSSE, useConnectionStatus } from '@datashop/logs-sse-client';
function App() {
  const { logs } = useLogsSSE({ service: 'etl', workspace_id: 1 });
  const status = useConnectionStatus();
  return createElement('pre', null, status + ' ' + logs.length);
}
createRoot(document.body).render(createElement(LogsSSEProvider, { gatewayUrl: '/logs' }, createElement(App)));
`,
};

const out = join(here, 'test/.out/size');
rmSync(out, { recursive: true, force: true });
const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;
const rows = [];

for (const [name, source] of Object.entries(apps)) {
  const root = join(out, name);
  mkdirSync(join(root, 'node_modules/@datashop'), { recursive: true });
  symlinkSync(here, join(root, 'node_modules/@datashop/logs-sse-client'), 'dir');
  writeFileSync(join(root, 'main.js'), source);
  const result = await build({
    root,
    configFile: false,
    logLevel: 'warn',
    build: {
      write: false,
      lib: false,
      rollupOptions: {
        input: join(root, 'main.js'),
        external: [/^react($|\/)/, /^react-dom($|\/)/],
      },
    },
  });
  const outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
  const bytes = (item) => Buffer.from(item.type === 'chunk' ? item.code : item.source);
  const js = outputs.filter((o) => o.type === 'chunk').map(bytes);
  const wasm = outputs.filter((o) => o.fileName.endsWith('.wasm')).map(bytes);
  const sum = (list, f) => list.reduce((n, b) => n + f(b), 0);
  const row = {
    app: name,
    jsRaw: sum(js, (b) => b.length),
    jsGzip: sum(js, gz),
    wasmRaw: sum(wasm, (b) => b.length),
    wasmGzip: sum(wasm, gz),
  };
  row.totalGzip = row.jsGzip + row.wasmGzip;
  // Which modules the entry JS is made of (bytes as rendered into the
  // chunk, before minification): where to look when the JS grows.
  row.modules = outputs
    .filter((o) => o.type === 'chunk')
    .flatMap((c) => Object.entries(c.modules ?? {}))
    .map(([id, m]) => {
      const name = id.includes('/dist/') ? id.slice(id.lastIndexOf('/dist/') + 1) : 'the app';
      return [name, m.renderedLength];
    })
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  rows.push(row);
}

const pad = (v, n) => String(v).padStart(n);
console.log(`${'app'.padEnd(6)} ${pad('JS min', 9)} ${pad('JS gzip', 9)} ${pad('wasm', 9)} ${pad('wasm gzip', 9)} ${pad('total gzip', 10)}`);
for (const r of rows) {
  console.log(
    `${r.app.padEnd(6)} ${pad(r.jsRaw, 9)} ${pad(r.jsGzip, 9)} ${pad(r.wasmRaw, 9)} ${pad(r.wasmGzip, 9)} ${pad(r.totalGzip, 10)}`,
  );
}

if (process.argv.includes('--modules')) {
  for (const r of rows) {
    console.log(`\n${r.app}: JS by module (bytes before minification)`);
    for (const [id, n] of r.modules) console.log(`${pad(n, 9)}  ${id}`);
  }
}

#!/usr/bin/env node
// What an app ships for this package, measured as users get it: a Vite
// production build (minified, tree-shaken) of two tiny apps, one importing
// the framework-free `/core` entry and one the React entry (React itself is
// external, so only this package's share is counted). Prints, per app:
//   - the entry: the JS every tab loads at once (this package's code, the
//     wasm-bindgen glue, and Vite's preload helper that any dynamic import
//     brings), minified and gzipped, the emitted .wasm gzipped, their sum;
//   - what is loaded only when needed, apart: the leader mode's chunk (a tab
//     without a usable SharedWorker imports it; the entry plus it is what
//     such a tab loads) and the SharedWorker's script (once per browser).
// Each file is gzipped on its own, as it is served.
//
// Usage: node size.mjs        (after `bash build.sh`; reads dist/)
//        node size.mjs --modules   also lists each app's JS by chunk and module
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
  const chunks = outputs.filter((o) => o.type === 'chunk');
  // What the page loads at once: the entry chunk and the chunks it imports statically.
  const byName = new Map(chunks.map((c) => [c.fileName, c]));
  const eager = new Set();
  const visit = (chunk) => {
    if (eager.has(chunk)) return;
    eager.add(chunk);
    for (const name of chunk.imports) if (byName.has(name)) visit(byName.get(name));
  };
  for (const chunk of chunks.filter((c) => c.isEntry)) visit(chunk);
  const lazy = chunks.filter((c) => !eager.has(c));
  // The leader mode's chunk is the one made from share/leader-link.js.
  const leader = lazy.filter((c) => c.facadeModuleId?.endsWith('/dist/share/leader-link.js'));
  const unknown = lazy.filter((c) => !leader.includes(c));
  if (leader.length !== 1 || unknown.length > 0) {
    throw new Error(`expected one lazy chunk (share/leader-link.js), got: ${lazy.map((c) => c.fileName).join(', ') || 'none'}`);
  }
  // The SharedWorker's script: Vite builds it apart and emits it as an asset.
  const worker = outputs.filter((o) => o.type === 'asset' && o.fileName.endsWith('.js'));
  if (worker.length !== 1) throw new Error(`expected one worker script, got ${worker.length}`);
  const wasm = outputs.filter((o) => o.fileName.endsWith('.wasm')).map(bytes);
  const sum = (list, f) => list.reduce((n, b) => n + f(b), 0);
  const sizes = (list) => ({ raw: sum(list.map(bytes), (b) => b.length), gzip: sum(list.map(bytes), gz) });
  const entry = sizes([...eager]);
  const row = {
    app: name,
    jsRaw: entry.raw,
    jsGzip: entry.gzip,
    wasmRaw: sum(wasm, (b) => b.length),
    wasmGzip: sum(wasm, gz),
    leader: sizes(leader),
    worker: sizes(worker),
  };
  row.totalGzip = row.jsGzip + row.wasmGzip;
  // Which modules each chunk is made of (bytes as rendered into the chunk,
  // before minification): where to look when the JS grows.
  const moduleName = (id) => {
    if (id.includes('/dist/')) return id.slice(id.lastIndexOf('/dist/') + 1);
    if (id.includes('vite/preload-helper')) return "Vite's preload helper";
    return 'the app';
  };
  const modulesOf = (list) =>
    list
      .flatMap((c) => Object.entries(c.modules ?? {}))
      .map(([id, m]) => [moduleName(id), m.renderedLength])
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1]);
  row.modules = { entry: modulesOf([...eager]), 'leader chunk': modulesOf(leader) };
  rows.push(row);
}

const pad = (v, n) => String(v).padStart(n);
console.log('what every tab loads at once: the entry JS and the wasm');
console.log(`${'app'.padEnd(6)} ${pad('JS min', 9)} ${pad('JS gzip', 9)} ${pad('wasm', 9)} ${pad('wasm gzip', 9)} ${pad('total gzip', 10)}`);
for (const r of rows) {
  console.log(
    `${r.app.padEnd(6)} ${pad(r.jsRaw, 9)} ${pad(r.jsGzip, 9)} ${pad(r.wasmRaw, 9)} ${pad(r.wasmGzip, 9)} ${pad(r.totalGzip, 10)}`,
  );
}
// Indented: scripts/bench.sh takes the rows above (lines starting with the app's name).
console.log('\nloaded only when needed (each tab in leader or follower mode: the chunk; once per browser: the worker)');
console.log(`  ${'app, file'.padEnd(28)} ${pad('JS min', 9)} ${pad('JS gzip', 9)}  ${'in all, gzip'}`);
for (const r of rows) {
  console.log(`  ${`${r.app}, leader chunk`.padEnd(28)} ${pad(r.leader.raw, 9)} ${pad(r.leader.gzip, 9)}  ${r.totalGzip + r.leader.gzip} (entry + wasm + chunk)`);
  console.log(`  ${`${r.app}, SharedWorker script`.padEnd(28)} ${pad(r.worker.raw, 9)} ${pad(r.worker.gzip, 9)}  the same .wasm as the tabs (cached)`);
}

if (process.argv.includes('--modules')) {
  for (const r of rows) {
    for (const [chunk, modules] of Object.entries(r.modules)) {
      console.log(`\n${r.app}, ${chunk}: JS by module (bytes before minification)`);
      for (const [id, n] of modules) console.log(`${pad(n, 9)}  ${id}`);
    }
  }
}

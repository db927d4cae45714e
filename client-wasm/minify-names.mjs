#!/usr/bin/env node
// Shortens the names on the boundary between the wasm-bindgen glue and the
// module. wasm-bindgen names every import `__wbg_{name}_{16 hex digits}` and
// exports closures by their mangled symbol; those names are written twice
// (the import and export sections, the glue's import object and its
// `wasm.…` calls), and neither wasm-opt's renaming of internal names nor a
// bundler's minifier can touch them, because each side only sees its half.
//
// Usage: node minify-names.mjs MAPPING.json GLUE.js [GLUE.d.ts]
// where MAPPING.json is what `wasm-opt --minify-imports-and-exports-and-modules`
// printed while it renamed the module's side (the .wasm next to GLUE.js).
// This script renames the glue's side to match, then checks the result
// against the module itself: every import the module asks for is in the
// glue's import object under the module's name, and every `wasm.x` the glue
// calls is an export of the module. Any mismatch (a glue shape this script
// does not know) fails the build instead of shipping a broken pair.

import { readFileSync, writeFileSync } from 'node:fs';

const [mappingFile, glueFile, dtsFile] = process.argv.slice(2);
if (!mappingFile || !glueFile) {
  console.error('usage: node minify-names.mjs MAPPING.json GLUE.js [GLUE.d.ts]');
  process.exit(2);
}
const fail = (message) => {
  console.error(`minify-names: ${message}`);
  process.exit(1);
};

const mapping = JSON.parse(readFileSync(mappingFile, 'utf8'));
const wasmFile = glueFile.replace(/\.js$/, '_bg.wasm');
const module = new WebAssembly.Module(readFileSync(wasmFile));
const imports = WebAssembly.Module.imports(module);
const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let js = readFileSync(glueFile, 'utf8');
const replaceExactly = (pattern, replacement, expected, what) => {
  let count = 0;
  js = js.replace(pattern, (...match) => {
    count += 1;
    return typeof replacement === 'function' ? replacement(...match) : replacement;
  });
  if (expected !== undefined ? count !== expected : count === 0) {
    fail(`${what}: found ${count} times`);
  }
};

// Imports: one key each in the object `__wbg_get_imports` builds.
for (const [, from, to] of mapping.imports) {
  replaceExactly(new RegExp(`^(\\s+)${escape(from)}:`, 'm'), (whole, lead) => `${lead}${to}:`, 1, `import ${from}`);
}
// The import module's own name (`./…_bg.js`), the key of that object.
const modules = new Set(imports.map((i) => i.module));
if (modules.size !== 1) fail(`expected one import module, found ${[...modules].join(', ')}`);
const [moduleName] = modules;
const oldModules = new Set(mapping.imports.map(([m]) => m));
for (const from of oldModules) {
  replaceExactly(new RegExp(`"${escape(from)}": import0`, 'g'), `${JSON.stringify(moduleName)}: import0`, 1, `module ${from}`);
}
// Exports: every `wasm.name` access.
const renamed = new Map(mapping.exports);
replaceExactly(/\bwasm\.([A-Za-z_$][\w$]*)/g, (whole, name) => `wasm.${renamed.get(name) ?? name}`, undefined, 'wasm.*');

// The pair must agree.
const keys = new Set([...js.matchAll(/^ {8}([A-Za-z_$][\w$]*): function/gm)].map((m) => m[1]));
for (const { name } of imports) {
  if (!keys.has(name)) fail(`the module imports ${name}, the glue does not provide it`);
}
for (const [, name] of js.matchAll(/\bwasm\.([A-Za-z_$][\w$]*)/g)) {
  if (!exports.has(name)) fail(`the glue calls wasm.${name}, the module does not export it`);
}
writeFileSync(glueFile, js);

// The declarations of `InitOutput` (the raw exports `init()` resolves to).
if (dtsFile) {
  let dts = readFileSync(dtsFile, 'utf8');
  dts = dts.replace(/^(\s+readonly )([A-Za-z_$][\w$]*):/gm, (whole, lead, name) =>
    renamed.has(name) ? `${lead}${renamed.get(name)}:` : whole,
  );
  writeFileSync(dtsFile, dts);
}
console.log(`minify-names: ${mapping.imports.length} imports, ${mapping.exports.length} exports renamed`);

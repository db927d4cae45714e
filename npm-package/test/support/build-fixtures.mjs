// Builds the test app the way a consumer would get it:
//   1. `npm pack` the package (so only what `files` publishes is used),
//   2. unpack it into test/fixtures/app/node_modules/@datashop/logs-sse-client,
//   3. build the app with Vite (test/.out/vite) and with webpack 5
//      (test/.out/webpack), neither configured for wasm in any way,
//   4. write the HTML pages the browser tests load.
// React resolves from npm-package/node_modules (one level up the tree).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkgDir = path.resolve(here, '../..');
const appDir = path.resolve(pkgDir, 'test/fixtures/app');
export const outDir = path.resolve(pkgDir, 'test/.out');

function installPackedPackage() {
  mkdirSync(outDir, { recursive: true });
  for (const file of readdirSync(outDir)) if (file.endsWith('.tgz')) rmSync(path.join(outDir, file));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', outDir], { cwd: pkgDir, stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = readdirSync(outDir).find((file) => file.endsWith('.tgz'));
  const target = path.join(appDir, 'node_modules/@datashop/logs-sse-client');
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', path.join(outDir, tarball), '-C', target, '--strip-components=1']);
  return tarball;
}

async function buildWithVite() {
  const { build } = await import('vite');
  const out = path.join(outDir, 'vite');
  await build({ root: appDir, configFile: path.join(appDir, 'vite.config.js'), build: { outDir: out } });
  return out;
}

/**
 * The same app built by Vite against React 18 (test/fixtures/react18), to
 * test the package under the older React it supports. The alias is test
 * plumbing (one app, two Reacts), nothing the package needs.
 */
async function buildWithReact18() {
  const { build } = await import('vite');
  const react18 = path.resolve(pkgDir, 'test/fixtures/react18/node_modules');
  const out = path.join(outDir, 'react18');
  await build({
    root: appDir,
    configFile: path.join(appDir, 'vite.config.js'),
    define: { __BUNDLE__: JSON.stringify('react18') },
    resolve: { alias: { react: path.join(react18, 'react'), 'react-dom': path.join(react18, 'react-dom') } },
    build: { outDir: out },
  });
  return out;
}

async function buildWithWebpack() {
  const { default: webpack } = await import('webpack');
  const out = path.join(outDir, 'webpack');
  rmSync(out, { recursive: true, force: true });
  // The smallest webpack 5 config an app has: entry, output, mode. No rules
  // for .wasm: `new URL('…wasm', import.meta.url)` is an asset module natively.
  const config = {
    mode: 'production',
    context: appDir,
    entry: './src/main.js',
    output: { path: out, filename: 'main.[contenthash].js', clean: true },
    plugins: [new webpack.DefinePlugin({ __BUNDLE__: JSON.stringify('webpack') })],
    performance: { hints: false },
    infrastructureLogging: { level: 'warn' },
  };
  const stats = await new Promise((resolve, reject) =>
    webpack(config, (error, result) => (error ? reject(error) : resolve(result))),
  );
  if (stats.hasErrors()) throw new Error(stats.toString('errors-only'));
  const json = stats.toJson({ assets: true, entrypoints: true });
  // The entry's script (the leader mode's chunk and the worker are other .js assets).
  const main = json.entrypoints.main.assets.map((asset) => asset.name).find((name) => name.endsWith('.js'));
  writeFileSync(
    path.join(out, 'index.html'),
    `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>webpack app</title></head><body><script src="./${main}"></script></body></html>`,
  );
  // The leader mode's chunk (named by the package's import) and the chunks it loads.
  const leader = [json.assetsByChunkName['leader-link']].flat().filter((name) => name?.endsWith('.js'));
  if (leader.length !== 1) throw new Error(`webpack emitted no chunk named leader-link: ${JSON.stringify(json.assetsByChunkName)}`);
  return { out, main, leader: leader[0], assets: json.assets.map((asset) => ({ name: asset.name, size: asset.size })) };
}

/** A page that loads both separately built bundles, like two micro frontends on one shell page. */
function writeCombinedPage(viteOut, webpackMain) {
  const dir = path.join(outDir, 'both');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // The entry's script, as Vite's index.html names it (the assets also hold the lazy chunk and the worker).
  const viteIndex = /src="\.\/assets\/([^"]+\.js)"/.exec(readFileSync(path.join(viteOut, 'index.html'), 'utf8'))[1];
  writeFileSync(
    path.join(dir, 'index.html'),
    `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>two micro frontends</title></head><body>
<script type="module" src="../vite/assets/${viteIndex}"></script>
<script src="../webpack/${webpackMain}"></script>
</body></html>`,
  );
}

export async function buildFixtures() {
  const tarball = installPackedPackage();
  const viteOut = await buildWithVite();
  await buildWithReact18();
  const web = await buildWithWebpack();
  writeCombinedPage(viteOut, web.main);
  // Vite names the leader mode's chunk after its module.
  const viteLeader = readdirSync(path.join(viteOut, 'assets')).filter((file) => /^leader-link-[\w-]+\.js$/.test(file));
  if (viteLeader.length !== 1) throw new Error(`Vite emitted ${viteLeader.length} leader-link chunks`);
  return { tarball, viteOut, viteLeader: `assets/${viteLeader[0]}`, webpack: web };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await buildFixtures();
  console.log(JSON.stringify(result, null, 2));
}

// Types of build-fixtures.mjs (kept as plain JS so it also runs with `node`).
export declare const outDir: string;
export declare function buildFixtures(): Promise<{
  tarball: string;
  viteOut: string;
  webpack: { out: string; main: string; assets: { name: string; size: number }[] };
}>;

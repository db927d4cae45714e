// Types of build-fixtures.mjs (kept as plain JS so it also runs with `node`).
export declare const outDir: string;
export declare function buildFixtures(): Promise<{
  tarball: string;
  viteOut: string;
  /** The leader mode's chunk, relative to viteOut. */
  viteLeader: string;
  webpack: { out: string; main: string; leader: string; assets: { name: string; size: number }[] };
}>;

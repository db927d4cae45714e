// Global setup of the browser tests: builds the test app with Vite and
// webpack from the packed package, starts the real gateway and the static
// server, and hands their URLs to the test files. Stops both afterwards.
import type { TestProject } from 'vitest/node';
import { buildFixtures, outDir } from './build-fixtures.mjs';
import { startGateway } from './gateway.js';
import { startServer } from './server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    gatewayUrl: string;
    /** A gateway that requires subscriber JWTs (`--jwt-secret`, `--allow-query-token`). */
    authGatewayUrl: string;
    baseUrl: string;
    fixtures: {
      webpackAssets: { name: string; size: number }[];
      /** The leader mode's chunk of each production build, relative to its folder. */
      leaderChunk: { vite: string; webpack: string };
    };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const built = await buildFixtures();
  // test.sh starts the gateway (and stops it with a trap); run alone, vitest
  // starts its own.
  const external = process.env.LOGS_SSE_TEST_GATEWAY;
  const gateway = external ? null : await startGateway();
  const gatewayUrl = external ?? gateway!.url;
  const authGateway = await startGateway({ jwt: true });
  const server = await startServer(outDir, gatewayUrl);
  project.provide('gatewayUrl', gatewayUrl);
  project.provide('authGatewayUrl', authGateway.url);
  project.provide('baseUrl', server.url);
  project.provide('fixtures', {
    webpackAssets: built.webpack.assets,
    leaderChunk: { vite: built.viteLeader, webpack: built.webpack.leader },
  });
  return async () => {
    await server.stop();
    await gateway?.stop();
    await authGateway.stop();
  };
}

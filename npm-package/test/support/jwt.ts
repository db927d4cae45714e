// Test subscriber tokens: HS256 JWTs minted with node's crypto for the
// browser tests' second gateway, which requires them
// (`--jwt-secret JWT_SECRET --allow-query-token --jwt-leeway-secs 0`).
import { createHmac } from 'node:crypto';

/** The auth gateway's HS256 secret (the gateway wants at least 32 bytes). */
export const JWT_SECRET = 'npm-package-browser-tests-jwt-secret-0123456789';

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** An HS256 JWT with these claims, signed with `secret`. */
export function mint(claims: Record<string, unknown>, secret = JWT_SECRET): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const signature = createHmac('sha256', secret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(signature)}`;
}

/**
 * The `/token` endpoint of the test server: `?ttl=2&sub=alice&workspaces=ws1,ws2
 * &channels=logs:etl:ws1:wf1&secret=other`. `exp` is now + `ttl` seconds
 * (negative: already expired); `secret` signs with another key.
 */
export function tokenFor(query: URLSearchParams): { token: string; exp: number } {
  const exp = Math.floor(Date.now() / 1000) + Number(query.get('ttl') ?? '60');
  const claims: Record<string, unknown> = { exp, sub: query.get('sub') ?? 'tester' };
  const workspaces = query.get('workspaces');
  if (workspaces) claims.workspaces = workspaces.split(',');
  const channels = query.get('channels');
  if (channels) claims.logs_channels = channels.split(',');
  const secret = query.get('secret');
  return { token: mint(claims, secret === null ? JWT_SECRET : secret.repeat(8)), exp };
}

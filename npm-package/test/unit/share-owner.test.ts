import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { RawClient } from '../../src/registry.js';
import type { OwnerConfig, OwnerMessage, TabMessage } from '../../src/share/messages.js';
import { FakeClient } from './fake-client.js';
import type { FakeSubscription } from './fake-client.js';

// The owner of a shared connection over a fake raw client: the fake's
// subscriptions call `filter` for each log they take (as the wasm client
// does) and the tests call `onUpdate` with channel statuses by hand.
// Loading the wasm module is under each test's control.
const created: FakeClient[] = [];
let transport: unknown;
let load: () => Promise<RawClient> = async () => fresh();
const createRawClient = vi.fn((...args: unknown[]) => {
  transport = args[5];
  return load();
});
vi.mock('../../src/wasm.js', () => ({ createRawClient: (...args: unknown[]) => createRawClient(...args) }));

const { ConnectionOwner, OWNER_KEEP, PING_EVERY_MS, TAB_SILENCE_MS, TOKEN_ASK_MS, VIRTUAL_HEARTBEAT_MS } = await import(
  '../../src/share/owner.js'
);
type Owner = InstanceType<typeof ConnectionOwner>;

const GW = 'http://gateway.test/api/logs/stream';
const CONFIG: OwnerConfig = { gatewayUrl: GW, withCredentials: false, tuning: { lingerMs: 10 } };
const A = 'logs:etl:ws1:wf1';
const B = 'logs:etl:ws1:wf2';
const C = 'logs:etl:ws1:wf3';
const D = 'logs:etl:ws1:wf4';

function fresh(): FakeClient {
  const client = new FakeClient(transport);
  created.push(client);
  return client;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const owners: Owner[] = [];
function makeOwner(onIdle: () => void = () => undefined, idleMs?: number): Owner {
  const owner = idleMs === undefined ? new ConnectionOwner(CONFIG, onIdle) : new ConnectionOwner(CONFIG, onIdle, idleMs);
  owners.push(owner);
  return owner;
}

/** One tab as the owner sees it: what it was sent, and a way to speak. */
class Tab {
  readonly sent: OwnerMessage[] = [];
  constructor(
    readonly owner: Owner,
    readonly id: string,
  ) {}

  say(message: TabMessage): void {
    this.owner.handle(message, (m) => this.sent.push(m));
  }
  join(): this {
    this.say({ t: 'join', tab: this.id, config: CONFIG });
    return this;
  }
  open(stream: number, query: string): void {
    this.say({ t: 'open', tab: this.id, stream, url: `${GW}?${query}` });
  }
  change(stream: number, req: number, body: unknown): void {
    this.say({ t: 'change', tab: this.id, stream, req, body: typeof body === 'string' ? body : JSON.stringify(body) });
  }
  /** The events of its streams, as `name stream data` tuples (data parsed). */
  events(): { name: string; stream: number; data: Record<string, unknown> }[] {
    return this.sent.flatMap((m) => (m.t === 'event' ? [{ name: m.name, stream: m.stream, data: JSON.parse(m.data) }] : []));
  }
  /** The event names, `status`/`log` with their channel: ['hello', 'status A', 'log A', …]. */
  trace(): string[] {
    return this.events().map((e) => (e.name === 'status' || e.name === 'log' ? `${e.name} ${String(e.data.channel)}` : e.name));
  }
  of<T extends OwnerMessage['t']>(t: T): Extract<OwnerMessage, { t: T }>[] {
    return this.sent.filter((m): m is Extract<OwnerMessage, { t: T }> => m.t === t);
  }
  clear(): void {
    this.sent.length = 0;
  }
}

/** A ready owner and its fake client. */
async function ready(onIdle?: () => void, idleMs?: number): Promise<{ owner: Owner; client: FakeClient }> {
  const owner = makeOwner(onIdle, idleMs);
  await owner.whenReady();
  return { owner, client: created.at(-1)! };
}

function subOf(client: FakeClient, channel: string): FakeSubscription {
  const live = client.live().filter((s) => s.channel === channel);
  expect(live).toHaveLength(1);
  return live[0]!;
}

function subscribed(sub: FakeSubscription, cursor?: string, replayed = 0): void {
  sub.onUpdate({ type: 'status', status: 'subscribed', replayed, ...(cursor !== undefined ? { cursor } : {}) });
}

beforeEach(() => {
  created.length = 0;
  load = async () => fresh();
  createRawClient.mockClear();
});
afterEach(() => {
  for (const owner of owners.splice(0)) owner.close();
  vi.useRealTimers();
});

describe('ConnectionOwner: the real client', () => {
  test('is created with the first tab config, the owner limits and a diagnostic relay', async () => {
    const { owner } = await ready();
    expect(createRawClient).toHaveBeenCalledTimes(1);
    const [url, credentials, tuning, wasmUrl, getToken] = createRawClient.mock.calls[0]! as unknown[];
    expect([url, credentials, wasmUrl]).toEqual([GW, false, undefined]);
    expect(tuning).toMatchObject({ lingerMs: 10, maxSubscriptions: 4096 });
    expect(typeof (tuning as { onDiagnostic: unknown }).onDiagnostic).toBe('function');
    expect(typeof getToken).toBe('function');

    const a = new Tab(owner, 'a').join();
    const b = new Tab(owner, 'b').join();
    (tuning as { onDiagnostic: (d: { kind: string; message: string }) => void }).onDiagnostic({ kind: 'malformed', message: 'bad event' });
    for (const tab of [a, b]) expect(tab.of('diagnostic')).toEqual([{ t: 'diagnostic', tab: tab.id, kind: 'malformed', message: 'bad event' }]);
  });

  test("its status is sent on join and broadcast to every tab on each change", async () => {
    const { owner, client } = await ready();
    client.setStatus({ state: 'connecting' });
    const a = new Tab(owner, 'a').join();
    expect(a.sent).toEqual([{ t: 'status', tab: 'a', status: client.status }]);
    const b = new Tab(owner, 'b').join();
    client.setStatus({ state: 'open', connectionId: 'conn-1' } as Parameters<FakeClient['setStatus']>[0]);
    for (const tab of [a, b]) {
      expect(tab.of('status').at(-1)).toEqual({ t: 'status', tab: tab.id, status: client.status });
    }
    expect(a.of('status')).toHaveLength(2);
    expect(b.of('status')).toHaveLength(2);
  });

  test('a tab reconnect() retries the real stream', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.say({ t: 'reconnect', tab: 'a' });
    expect(client.reconnects).toBe(1);
  });
});

describe('ConnectionOwner: a tab stream', () => {
  test('open: hello first, then one owner subscription per channel, started where the URL says', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'tab-a').join();
    a.clear();
    const since = [`${A}@cur-17`, `${B}@last:5`, `${C}@earliest`].map(encodeURIComponent).join(',');
    a.open(3, `channels=${[A, B, C, D].map(encodeURIComponent).join(',')}&since=${since}`);

    expect(a.sent[0]).toMatchObject({ t: 'event', tab: 'tab-a', stream: 3, name: 'hello' });
    expect(a.events()[0]!.data).toEqual({ connectionId: 'tab-a.3', epoch: '0', heartbeatMs: VIRTUAL_HEARTBEAT_MS, controlSecret: 'shared' });
    expect(a.sent).toHaveLength(1); // nothing else until a channel has a status

    expect(client.subscriptions.map((s) => s.channel)).toEqual([A, B, C, D]);
    const [sa, sb, sc, sd] = client.subscriptions.map((s) => s.options);
    expect(sa).toEqual({ maxLogs: OWNER_KEEP, resumeFrom: 'cur-17', filter: expect.any(Function) });
    expect(sb).toEqual({ maxLogs: OWNER_KEEP, history: 5, filter: expect.any(Function) });
    expect(sc).toEqual({ maxLogs: OWNER_KEEP, resumeFrom: 'earliest', filter: expect.any(Function) });
    expect(sd).toEqual({ maxLogs: OWNER_KEEP, filter: expect.any(Function) }); // live: neither
  });

  test('a last:N above what the owner keeps raises that subscription bound, up to 100,000', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A},${B}&since=${A}@last:5000,${B}@last:250000`);
    expect(subOf(client, A).options).toMatchObject({ history: 5000, maxLogs: 5000 });
    expect(subOf(client, B).options).toMatchObject({ history: 250000, maxLogs: 100_000 });
  });

  test('logs a join hands over wait for the channel status, then go in order; the stream\'s own logs go as they come', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    client.atJoin = (joining) => joining.give({ n: 1 }, { n: 2 });
    a.open(1, `channels=${A}`);
    client.atJoin = null;
    const sub = subOf(client, A);
    expect(a.trace()).toEqual(['hello']);
    subscribed(sub, 'c-9', 2);
    sub.push({ n: 3 });
    expect(a.trace()).toEqual(['hello', `status ${A}`, `log ${A}`, `log ${A}`, `log ${A}`]);
    const [status, ...logs] = a.events().slice(1);
    expect(status!.data).toEqual({ channel: A, status: 'subscribed', replayed: 2, cursor: 'c-9' });
    expect(logs.map((e) => e.data.logData)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    // Each log is the entry as the real stream carried it (channel, cursor, ts, logData).
    expect(logs[0]!.data).toEqual({ channel: A, cursor: expect.any(String), ts: expect.any(Number), logData: { n: 1 } });
    expect(new Set(logs.map((e) => e.data.cursor)).size).toBe(3);
    // The owner keeps what it took (a later last:N joiner is backfilled from it).
    expect(sub.snapshot()).toHaveLength(3);
  });

  test("the real stream's logs of a channel reach the tab only after that channel's status (its replay brings the earlier ones)", async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A}`);
    const sub = subOf(client, A);
    sub.push({ n: 1 });
    expect(a.trace()).toEqual(['hello']);
    subscribed(sub);
    sub.push({ n: 2 });
    expect(a.trace()).toEqual(['hello', `status ${A}`, `log ${A}`]);
    expect(a.events().at(-1)!.data.logData).toEqual({ n: 2 });
  });

  test('a status without a cursor, and a later status, are forwarded with their reason', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A}`);
    const sub = subOf(client, A);
    sub.onUpdate({ type: 'status', status: 'denied', reason: 'forbidden', replayed: 0 });
    expect(a.events().at(-1)!.data).toEqual({ channel: A, status: 'denied', reason: 'forbidden', replayed: 0 });
    // Gaps and log counts are the tab client's own business: nothing is sent for them.
    sub.onUpdate({ type: 'gap', from: 'x', to: 'y' });
    sub.onUpdate({ type: 'logs', added: 0 });
    expect(a.trace()).toEqual(['hello', `status ${A}`]);
  });

  test('a tab gets only its own channels; two tabs on one channel get one subscription each', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    const b = new Tab(owner, 'b').join();
    a.open(1, `channels=${A},${B}`);
    b.open(1, `channels=${B},${C}`);
    expect(client.subscriptions.map((s) => s.channel)).toEqual([A, B, B, C]);
    const [sa, sab, sbb, sc] = client.subscriptions;
    for (const sub of client.subscriptions) subscribed(sub);
    // Each log of the real stream once (the fake's push is one log on the stream).
    sa!.push('on A');
    sab!.push('on B');
    sc!.push('on C');
    void sbb;
    const logs = (tab: Tab) => tab.events().flatMap((e) => (e.name === 'log' ? [`${String(e.data.channel)} ${String(e.data.logData)}`] : []));
    expect(logs(a)).toEqual([`${A} on A`, `${B} on B`]);
    expect(logs(b)).toEqual([`${B} on B`, `${C} on C`]);
    expect(a.sent.every((m) => m.tab === 'a') && b.sent.every((m) => m.tab === 'b')).toBe(true);
  });

  test('a second open of the tab ends the first stream subscriptions and starts over', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A}`);
    const first = subOf(client, A);
    a.open(2, `channels=${A}&since=${A}@c-4`);
    expect(first.ended && first.freed).toBe(true);
    const second = subOf(client, A);
    expect(second.options.resumeFrom).toBe('c-4');
    subscribed(second);
    second.push('new');
    expect(a.events().filter((e) => e.name === 'log').map((e) => [e.stream, e.data.logData])).toEqual([[2, 'new']]);
  });

  test('the owner refusing a subscription answers that channel with a denied status', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    client.failSubscribe = { code: 'too_many_subscriptions', message: 'limit' };
    a.open(1, `channels=${A}`);
    expect(a.events().at(-1)).toEqual({ name: 'status', stream: 1, data: { channel: A, status: 'denied', reason: 'too_many_subscriptions', replayed: 0 } });
  });
});

describe('ConnectionOwner: control calls', () => {
  test('change adds and removes channels and answers 200', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A},${B}`);
    const [sa, sb] = client.subscriptions;
    a.change(1, 7, { add: [{ channel: C, since: 'c-3' }, { channel: D }], remove: [A] });
    expect(a.of('answer')).toEqual([{ t: 'answer', tab: 'a', req: 7, status: 200, body: '{}' }]);
    expect(sa!.ended && sa!.freed).toBe(true);
    expect(sb!.ended).toBe(false);
    expect(client.live().map((s) => [s.channel, s.options.resumeFrom])).toEqual([
      [B, undefined],
      [C, 'c-3'],
      [D, undefined],
    ]);
    sa!.push('removed'); // not forwarded
    subscribed(subOf(client, C));
    subOf(client, C).push('added');
    expect(a.events().filter((e) => e.name === 'log').map((e) => e.data.logData)).toEqual(['added']);
  });

  test('a channel removed and added back (or added again) starts over from its new point', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A}`);
    const first = subOf(client, A);
    a.change(1, 1, { remove: [A], add: [{ channel: A, since: 'c-10' }] });
    expect(first.ended && first.freed).toBe(true);
    const second = subOf(client, A);
    expect(second.options.resumeFrom).toBe('c-10');
    a.change(1, 2, { add: [{ channel: A, since: 'last:3' }] });
    expect(second.ended && second.freed).toBe(true);
    expect(subOf(client, A).options).toMatchObject({ history: 3 });
    expect(a.of('answer').map((m) => [m.req, m.status])).toEqual([
      [1, 200],
      [2, 200],
    ]);
    // The stream's logs of the channel wait for the current subscription's status, then reach the tab once each.
    first.push('old');
    second.push('older');
    subscribed(subOf(client, A));
    subOf(client, A).push('new');
    expect(a.trace()).toEqual(['hello', `status ${A}`, `log ${A}`]);
  });

  test('a change for a stale stream answers 404 and changes nothing', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A}`);
    a.open(2, `channels=${A}`);
    a.change(1, 5, { add: [{ channel: B }] });
    const [answer] = a.of('answer');
    expect(answer).toMatchObject({ req: 5, status: 404 });
    expect(JSON.parse(answer!.body)).toEqual({ error: { code: 'unknown_connection', message: expect.any(String) } });
    expect(client.live().map((s) => s.channel)).toEqual([A]);
    // A tab whose stream was closed has no stream at all.
    a.say({ t: 'close', tab: 'a', stream: 2 });
    a.change(2, 6, { add: [{ channel: B }] });
    expect(a.of('answer').at(-1)).toMatchObject({ req: 6, status: 404 });
  });

  test('a body that is not JSON answers 400 and changes nothing', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A}`);
    a.change(1, 9, '{"add": [');
    const [answer] = a.of('answer');
    expect(answer).toMatchObject({ req: 9, status: 400 });
    expect(JSON.parse(answer!.body)).toEqual({ error: { code: 'invalid_body', message: expect.any(String) } });
    expect(client.live().map((s) => s.channel)).toEqual([A]);
  });

  // Regression: owner.handle({ t: 'change', …, body: 'null' }) throws
  // "Cannot read properties of null (reading 'remove')" (and `{"add": 5}`:
  // "is not iterable") instead of answering; the tab's change never settles.
  test('JSON of the wrong shape answers 400', async () => {
    const { owner } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A}`);
    for (const [req, body] of [[1, 'null'], [2, '{"add": 5}'], [3, '{"remove": [{"x": 1}], "add": [7]}']] as const) {
      expect(() => a.change(1, req, body)).not.toThrow();
      expect(a.of('answer').at(-1)).toMatchObject({ req, status: 400 });
    }
  });

  test('close of the current stream unsubscribes and frees; close of an old one does nothing', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A}`);
    a.open(2, `channels=${A},${B}`);
    a.say({ t: 'close', tab: 'a', stream: 1 });
    expect(client.live().map((s) => s.channel)).toEqual([A, B]);
    a.say({ t: 'close', tab: 'a', stream: 2 });
    expect(client.live()).toEqual([]);
    expect(client.subscriptions.every((s) => s.ended && s.freed)).toBe(true);
    expect(owner.tabCount).toBe(1); // the tab stays, without a stream
  });

  test('leave unsubscribes, frees and forgets the tab; what it says next is answered `dropped`', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    const b = new Tab(owner, 'b').join();
    a.open(1, `channels=${A}`);
    b.open(1, `channels=${A}`);
    a.say({ t: 'leave', tab: 'a' });
    expect(owner.tabCount).toBe(1);
    expect(client.subscriptions[0]!.ended && client.subscriptions[0]!.freed).toBe(true);
    expect(client.subscriptions[1]!.ended).toBe(false);
    a.clear();
    a.open(2, `channels=${A}`);
    expect(a.sent).toEqual([{ t: 'dropped', tab: 'a' }]);
    // A leave or a token answer of an unknown tab is not answered.
    a.clear();
    a.say({ t: 'leave', tab: 'a' });
    a.say({ t: 'token', tab: 'a', req: 1, token: 'x' });
    expect(a.sent).toEqual([]);
    expect(client.live()).toHaveLength(1);
  });

  test('a tab joining again (after a handover or a freeze) starts without its old subscriptions', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A}`);
    a.join();
    expect(client.live()).toEqual([]);
    expect(owner.tabCount).toBe(1);
  });
});

describe('ConnectionOwner: tokens', () => {
  function tokenGetter(): () => Promise<string | null> {
    return createRawClient.mock.calls.at(-1)![4] as () => Promise<string | null>;
  }

  test('a visible tab is asked first, and its answer is the token', async () => {
    const { owner } = await ready();
    const hidden = new Tab(owner, 'hidden').join();
    const visible = new Tab(owner, 'visible').join();
    hidden.say({ t: 'alive', tab: 'hidden', visible: false });
    const token = tokenGetter()();
    expect(hidden.of('token?')).toEqual([]);
    const [ask] = visible.of('token?');
    expect(ask).toMatchObject({ t: 'token?', tab: 'visible' });
    visible.say({ t: 'token', tab: 'visible', req: ask!.req, token: 'jwt-1' });
    await expect(token).resolves.toBe('jwt-1');
    // null (no token: cookies or anonymous) is an answer too.
    const second = tokenGetter()();
    visible.say({ t: 'token', tab: 'visible', req: visible.of('token?')[1]!.req, token: null });
    await expect(second).resolves.toBeNull();
  });

  test('a tab that does not answer within TOKEN_ASK_MS is passed over for the next', async () => {
    vi.useFakeTimers();
    const { owner } = await ready();
    const first = new Tab(owner, 'first').join();
    const second = new Tab(owner, 'second').join();
    second.say({ t: 'alive', tab: 'second', visible: false });
    let settled: string | null | undefined;
    const token = tokenGetter()().then((t) => (settled = t));
    expect(first.of('token?')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(TOKEN_ASK_MS - 1);
    expect(second.of('token?')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    const [ask] = second.of('token?');
    expect(ask).toBeDefined();
    // The first tab's late answer is not taken.
    first.say({ t: 'token', tab: 'first', req: first.of('token?')[0]!.req, token: 'late' });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBeUndefined();
    second.say({ t: 'token', tab: 'second', req: ask!.req, token: 'jwt-2' });
    await token;
    expect(settled).toBe('jwt-2');
  });

  test('a tab answering an error rejects with its text; with no tab answering, it rejects', async () => {
    vi.useFakeTimers();
    const { owner } = await ready();
    const a = new Tab(owner, 'a').join();
    const failing = tokenGetter()();
    a.say({ t: 'token', tab: 'a', req: a.of('token?')[0]!.req, error: 'sign-in expired' });
    await expect(failing).rejects.toThrow('sign-in expired');

    const silent = tokenGetter()();
    const outcome = expect(silent).rejects.toThrow(/no tab answered/);
    await vi.advanceTimersByTimeAsync(TOKEN_ASK_MS);
    await outcome;
    a.say({ t: 'leave', tab: 'a' });
    await expect(tokenGetter()()).rejects.toThrow(/no tab answered/);
  });

  test('close rejects a waiting token request', async () => {
    const { owner } = await ready();
    new Tab(owner, 'a').join();
    const waiting = tokenGetter()();
    owner.close();
    await expect(waiting).rejects.toThrow(/closed/);
  });
});

describe('ConnectionOwner: silent tabs, pings, idle', () => {
  test('a tab silent for TAB_SILENCE_MS is dropped and its subscriptions freed; a talking tab is pinged', async () => {
    vi.useFakeTimers();
    const { owner, client } = await ready();
    const quiet = new Tab(owner, 'quiet').join();
    const chatty = new Tab(owner, 'chatty').join();
    quiet.open(1, `channels=${A}`);
    chatty.open(1, `channels=${B}`);
    for (let t = 0; t < TAB_SILENCE_MS; t += 20_000) {
      await vi.advanceTimersByTimeAsync(20_000);
      chatty.say({ t: 'alive', tab: 'chatty', visible: true });
    }
    // At exactly TAB_SILENCE_MS of silence the tab is still served.
    await vi.advanceTimersByTimeAsync(TAB_SILENCE_MS - Math.floor(TAB_SILENCE_MS / 20_000) * 20_000);
    expect(quiet.of('dropped')).toEqual([]);
    await vi.advanceTimersByTimeAsync(PING_EVERY_MS);
    expect(quiet.of('dropped')).toEqual([{ t: 'dropped', tab: 'quiet' }]);
    expect(owner.tabCount).toBe(1);
    expect(subOf(client, B).ended).toBe(false);
    expect(client.subscriptions[0]!.ended && client.subscriptions[0]!.freed).toBe(true);
    // Every tab with a stream heard a ping per PING_EVERY_MS.
    const pings = chatty.events().filter((e) => e.name === 'ping');
    expect(pings.length).toBe(Math.floor((TAB_SILENCE_MS + PING_EVERY_MS) / PING_EVERY_MS));
    expect(pings.every((p) => p.stream === 1)).toBe(true);
  });

  test('the idle callback fires idleMs after the last tab left, not when a tab joins meanwhile', async () => {
    vi.useFakeTimers();
    const onIdle = vi.fn();
    const { owner } = await ready(onIdle, 500);
    const a = new Tab(owner, 'a').join();
    const b = new Tab(owner, 'b').join();
    a.say({ t: 'leave', tab: 'a' });
    await vi.advanceTimersByTimeAsync(1000);
    expect(onIdle).not.toHaveBeenCalled(); // b is still there
    b.say({ t: 'leave', tab: 'b' });
    await vi.advanceTimersByTimeAsync(300);
    const c = new Tab(owner, 'c').join();
    await vi.advanceTimersByTimeAsync(1000);
    expect(onIdle).not.toHaveBeenCalled();
    c.say({ t: 'leave', tab: 'c' });
    await vi.advanceTimersByTimeAsync(499);
    expect(onIdle).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  test('a tab dropped for silence counts as leaving for the idle callback', async () => {
    vi.useFakeTimers();
    const onIdle = vi.fn();
    const { owner } = await ready(onIdle, 1000);
    new Tab(owner, 'a').join();
    await vi.advanceTimersByTimeAsync(TAB_SILENCE_MS + PING_EVERY_MS);
    expect(owner.tabCount).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  test('close ends every subscription, closes and frees the client, and ignores later messages', async () => {
    const { owner, client } = await ready();
    const a = new Tab(owner, 'a').join();
    a.open(1, `channels=${A},${B}`);
    owner.close();
    expect(client.subscriptions.every((s) => s.ended && s.freed)).toBe(true);
    expect(client.closed && client.freed).toBe(true);
    a.clear();
    a.join();
    a.open(2, `channels=${A}`);
    expect(a.sent).toEqual([]);
  });
});

describe('ConnectionOwner: before the wasm client is ready', () => {
  test('messages are queued and handled in order once it is', async () => {
    const loading = deferred<RawClient>();
    load = () => loading.promise;
    const owner = makeOwner();
    const a = new Tab(owner, 'a');
    a.join();
    a.open(1, `channels=${A},${B}`);
    a.change(1, 1, { remove: [A], add: [{ channel: C }] });
    a.open(2, `channels=${D}`);
    a.change(2, 2, { add: [{ channel: A, since: 'c-1' }] });
    expect(a.sent).toEqual([]);
    const client = fresh();
    loading.resolve(client);
    await owner.whenReady();
    expect(a.sent.map((m) => (m.t === 'event' ? `${m.name} ${m.stream}` : m.t === 'answer' ? `answer ${m.req} ${m.status}` : m.t))).toEqual([
      'status',
      'hello 1',
      'answer 1 200',
      'hello 2',
      'answer 2 200',
    ]);
    expect(client.subscriptions.map((s) => `${s.channel}${s.ended ? ' ended' : ''}`)).toEqual([
      `${A} ended`,
      `${B} ended`,
      `${C} ended`,
      D,
      A,
    ]);
  });

  test('a wasm load that fails answers join with a wasm_unavailable status, then and later', async () => {
    const loading = deferred<RawClient>();
    load = () => loading.promise;
    const owner = makeOwner();
    const a = new Tab(owner, 'a');
    a.join();
    a.open(1, `channels=${A}`);
    loading.reject(new Error('404 Not Found'));
    await owner.whenReady();
    const expected = {
      state: 'failed',
      reason: 'wasm_unavailable',
      message: expect.stringContaining('404 Not Found'),
      attempt: 0,
    };
    expect(a.sent).toEqual([{ t: 'status', tab: 'a', status: expected }]);
    const b = new Tab(owner, 'b').join();
    expect(b.sent).toEqual([{ t: 'status', tab: 'b', status: expected }]);
    expect(created).toEqual([]);
  });

  test('closed before the client is ready: the client is closed and freed on arrival', async () => {
    const loading = deferred<RawClient>();
    load = () => loading.promise;
    const owner = makeOwner();
    const a = new Tab(owner, 'a');
    a.join();
    owner.close();
    const client = fresh();
    loading.resolve(client);
    await owner.whenReady();
    expect(client.closed && client.freed).toBe(true);
    expect(a.sent).toEqual([]);
  });
});

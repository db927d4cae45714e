import { describe, expect, test, vi } from 'vitest';
import type { OwnerMessage, SharingMode, TabMessage } from '../../src/share/messages.js';
import { SharedTabClient, TabTransport } from '../../src/share/tab.js';
import type { OwnerLink } from '../../src/share/tab.js';
import type { ConnectionStatus } from '../../src/types.js';
import { FakeClient } from './fake-client.js';

// A tab's side of a shared connection: the virtual stream and control calls
// its wasm client is given (TabTransport), and the raw client the package
// sees (SharedTabClient), against a hand-driven owner link.

const GW = 'http://gateway.test/api/logs/stream';
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

function transportOf(tab = 'tab-1') {
  const sent: TabMessage[] = [];
  const transport = new TabTransport(tab, (m) => sent.push(m));
  return { transport, sent, t: transport.transport };
}

/** Records what a virtual stream dispatches: `open`, `error` and the named MessageEvents with their data. */
function record(stream: EventTarget, names = ['open', 'error', 'hello', 'status', 'log', 'ping', 'close']) {
  const seen: string[] = [];
  for (const name of names) {
    stream.addEventListener(name, (event) => {
      seen.push(event instanceof MessageEvent ? `${name} ${String(event.data)}` : name);
    });
  }
  return seen;
}

const event = (stream: number, name: string, data: string, tab = 'tab-1'): OwnerMessage => ({ t: 'event', tab, stream, name, data });
const controlUrl = `${GW}/tab-1.1/channels`;
const post = (body: string, signal?: AbortSignal): RequestInit => ({ method: 'POST', body, ...(signal ? { signal } : {}) });

describe('TabTransport', () => {
  test('open sends `open` with the URL; events of the stream are dispatched, `open` before the first', () => {
    const { transport, sent, t } = transportOf();
    const url = `${GW}?channels=a,b`;
    const stream = t.open(url, false);
    expect(sent).toEqual([{ t: 'open', tab: 'tab-1', stream: 1, url }]);
    const seen = record(stream);
    transport.receive(event(1, 'hello', '{"connectionId":"tab-1.1"}'));
    transport.receive(event(1, 'status', '{"channel":"a"}'));
    transport.receive(event(1, 'log', '{"n":1}'));
    expect(seen).toEqual(['open', 'hello {"connectionId":"tab-1.1"}', 'status {"channel":"a"}', 'log {"n":1}']);
  });

  test('a new stream closes the old one; events of the old stream are dropped; close() tells the owner once', () => {
    const { transport, sent, t } = transportOf();
    const first = t.open(`${GW}?channels=a`, false);
    const firstSeen = record(first);
    const second = t.open(`${GW}?channels=a,b`, false);
    const secondSeen = record(second);
    expect(sent.map((m) => `${m.t} ${'stream' in m ? m.stream : ''}`)).toEqual(['open 1', 'close 1', 'open 2']);
    transport.receive(event(1, 'log', '{"late":1}'));
    transport.receive(event(2, 'hello', '{}'));
    expect(firstSeen).toEqual([]);
    expect(secondSeen).toEqual(['open', 'hello {}']);
    second.close();
    second.close();
    expect(sent.filter((m) => m.t === 'close')).toHaveLength(2);
    transport.receive(event(2, 'log', '{}'));
    expect(secondSeen).toEqual(['open', 'hello {}']);
  });

  test("another tab's events and unknown streams are not dispatched", () => {
    const { transport, t } = transportOf();
    const stream = t.open(`${GW}?channels=a`, false);
    const seen = record(stream);
    transport.receive(event(7, 'hello', '{}'));
    expect(seen).toEqual([]);
  });

  test('a control fetch becomes a `change` of the current stream and resolves with the owner answer', async () => {
    const { transport, sent, t } = transportOf();
    t.open(`${GW}?channels=a`, false);
    const body = JSON.stringify({ add: [{ channel: 'b' }] });
    const response = t.fetch(controlUrl, post(body));
    const change = sent.at(-1)!;
    expect(change).toEqual({ t: 'change', tab: 'tab-1', stream: 1, req: 1, body });
    const other = t.fetch(controlUrl, post('{"remove":["a"]}'));
    expect(sent.at(-1)).toMatchObject({ t: 'change', req: 2 });
    // Answers may come in any order; each settles its own call.
    transport.receive({ t: 'answer', tab: 'tab-1', req: 2, status: 400, body: '{"error":{"code":"invalid_body","message":"m"}}' });
    transport.receive({ t: 'answer', tab: 'tab-1', req: 1, status: 200, body: '{}' });
    const [r1, r2] = await Promise.all([response, other]);
    expect([r1.status, await r1.text(), r1.headers.get('content-type')]).toEqual([200, '{}', 'application/json']);
    expect([r2.status, (await r2.json()).error.code]).toEqual([400, 'invalid_body']);
    // A repeated answer is ignored.
    transport.receive({ t: 'answer', tab: 'tab-1', req: 1, status: 500, body: '' });
  });

  test('an aborted change rejects with an AbortError and its late answer is ignored', async () => {
    const { transport, sent, t } = transportOf();
    t.open(`${GW}?channels=a`, false);
    const controller = new AbortController();
    const response = t.fetch(controlUrl, post('{}', controller.signal));
    const req = (sent.at(-1) as Extract<TabMessage, { t: 'change' }>).req;
    controller.abort();
    await expect(response).rejects.toMatchObject({ name: 'AbortError' });
    transport.receive({ t: 'answer', tab: 'tab-1', req, status: 200, body: '{}' });
  });

  // Regression: t.fetch(url, { method: 'POST', body, signal: AbortSignal.abort() })
  // sends the change and waits for its answer: an already aborted signal is
  // not checked (a real fetch rejects at once).
  test('a change with an already aborted signal rejects at once', async () => {
    const { sent, t } = transportOf();
    t.open(`${GW}?channels=a`, false);
    const settled = vi.fn();
    t.fetch(controlUrl, post('{}', AbortSignal.abort())).then(settled, settled);
    await flush();
    expect(settled).toHaveBeenCalled();
    expect(sent.filter((m) => m.t === 'change')).toEqual([]);
  });

  test('a non-control fetch (the probe) answers 200 without reaching the owner', async () => {
    const { sent, t } = transportOf();
    t.open(`${GW}?channels=a`, false);
    sent.length = 0;
    for (const [url, init] of [
      [`${GW}?channels=a`, {}],
      [`${GW}?channels=a`, { method: 'GET' }],
      [`${GW}/tab-1.1/other`, { method: 'POST', body: '{}' }],
    ] as [string, RequestInit][]) {
      expect((await t.fetch(url, init)).status).toBe(200);
    }
    expect(sent).toEqual([]);
    // A relative control URL is one too.
    void t.fetch('/api/logs/stream/x/channels', { method: 'post', body: '{}' });
    expect(sent).toMatchObject([{ t: 'change' }]);
  });

  test('a control fetch without an open stream answers 404 at once', async () => {
    const { sent, t } = transportOf();
    const stream = t.open(`${GW}?channels=a`, false);
    stream.close();
    const response = await t.fetch(controlUrl, post('{}'));
    expect(response.status).toBe(404);
    expect((await response.json()).error.code).toBe('unknown_connection');
    expect(sent.filter((m) => m.t === 'change')).toEqual([]);
  });

  test('reset fails the current stream and answers pending changes 404', async () => {
    const { transport, t } = transportOf();
    const stream = t.open(`${GW}?channels=a`, false);
    const seen = record(stream);
    transport.receive(event(1, 'hello', '{}'));
    const pending = [t.fetch(controlUrl, post('{"add":[]}')), t.fetch(controlUrl, post('{"remove":[]}'))];
    transport.reset();
    const answers = await Promise.all(pending);
    expect(answers.map((r) => r.status)).toEqual([404, 404]);
    expect((await answers[0]!.json()).error.code).toBe('unknown_connection');
    expect(seen).toEqual(['open', 'hello {}', 'error']);
    // A closed stream does not fail again.
    stream.close();
    transport.reset();
    expect(seen).toEqual(['open', 'hello {}', 'error']);
  });
});

/** A link whose owner the test plays. */
class FakeLink implements OwnerLink {
  mode: SharingMode = 'follower';
  readonly sent: TabMessage[] = [];
  closed = false;
  private onMessage: ((message: OwnerMessage) => void) | null = null;
  private onReset: (() => void) | null = null;

  send(message: TabMessage): void {
    this.sent.push(message);
  }
  listen(onMessage: (message: OwnerMessage) => void, onReset: () => void): void {
    this.onMessage = onMessage;
    this.onReset = onReset;
  }
  close(): void {
    this.closed = true;
  }
  deliver(message: OwnerMessage): void {
    this.onMessage!(message);
  }
  reset(): void {
    this.onReset!();
  }
}

function sharedClient(getToken: () => Promise<string | null> = async () => null) {
  const inner = new FakeClient();
  const link = new FakeLink();
  const transport = new TabTransport('tab-1', (m) => link.send(m));
  const diagnostics: string[] = [];
  const client = new SharedTabClient(inner, link, 'tab-1', transport, getToken, (kind, message) => diagnostics.push(`${kind}: ${message}`));
  const statuses: ConnectionStatus[] = [];
  client.onStatus((s) => statuses.push(s as ConnectionStatus));
  return { inner, link, transport, client, diagnostics, statuses };
}

const ownerStatus = (status: Partial<ConnectionStatus> & { state: ConnectionStatus['state'] }): OwnerMessage => ({
  t: 'status',
  tab: 'tab-1',
  status: Object.freeze({ attempt: 0, ...status }) as ConnectionStatus,
});

describe('SharedTabClient', () => {
  test("its status is the owner's with `sharing`, the same object until something changes", () => {
    const { link, client, statuses } = sharedClient();
    // Before the owner spoke: the tab client's own, with the mode.
    const initial = client.status;
    expect(initial).toEqual({ state: 'idle', attempt: 0, sharing: 'follower' });
    expect(Object.isFrozen(initial)).toBe(true);
    expect(client.status).toBe(initial);

    link.deliver(ownerStatus({ state: 'open', connectionId: 'c-1' }));
    const open = client.status;
    expect(open).toEqual({ state: 'open', attempt: 0, connectionId: 'c-1', sharing: 'follower' });
    expect(client.status).toBe(open);
    expect(statuses).toEqual([open]);
    expect(statuses[0]).toBe(open);

    // The same status again (another object, the same fields): no change, no call.
    link.deliver(ownerStatus({ state: 'open', connectionId: 'c-1' }));
    expect(client.status).toBe(open);
    expect(statuses).toHaveLength(1);

    link.deliver(ownerStatus({ state: 'reconnecting', attempt: 1 } as ConnectionStatus));
    expect(client.status).toEqual({ state: 'reconnecting', attempt: 1, sharing: 'follower' });
    expect(statuses).toHaveLength(2);
    expect(statuses[1]).toBe(client.status);
  });

  test("the tab's own client status does not show while the owner's is known; a mode change does", () => {
    const { inner, link, client, statuses } = sharedClient();
    link.deliver(ownerStatus({ state: 'open' }));
    const open = client.status;
    inner.setStatus({ state: 'connecting' });
    expect(client.status).toBe(open);
    expect(statuses).toHaveLength(1);
    // This tab took the lead: the next status it reports says so.
    link.mode = 'leader';
    inner.repeatStatus();
    expect(client.status).toEqual({ state: 'open', attempt: 0, sharing: 'leader' });
    expect(statuses).toHaveLength(2);
  });

  test('a wasm_unavailable status of the owner is passed through', () => {
    const { link, client } = sharedClient();
    link.deliver(ownerStatus({ state: 'failed', reason: 'wasm_unavailable' as ConnectionStatus['reason'], message: 'no module' } as ConnectionStatus));
    expect(client.status).toMatchObject({ state: 'failed', reason: 'wasm_unavailable', message: 'no module', sharing: 'follower' });
  });

  test('a reset forgets the owner status, fails the stream and reconnects the tab client', () => {
    const { inner, link, transport, client, statuses } = sharedClient();
    const stream = transport.transport.open(`${GW}?channels=a`, false);
    const seen = record(stream, ['error']);
    link.deliver(ownerStatus({ state: 'open' }));
    inner.setStatus({ state: 'open' });
    expect(statuses).toHaveLength(1);
    link.reset();
    expect(seen).toEqual(['error']);
    expect(inner.reconnects).toBe(1);
    // The tab's own status now: open with no other field is the same as before, so no call.
    expect(client.status).toEqual({ state: 'open', attempt: 0, sharing: 'follower' });
    expect(statuses).toHaveLength(1);
    inner.setStatus({ state: 'reconnecting', attempt: 1 });
    expect(statuses.at(-1)).toEqual({ state: 'reconnecting', attempt: 1, sharing: 'follower' });
  });

  test('listeners are called once per change and stop when unsubscribed', () => {
    const { link, client } = sharedClient();
    const calls: string[] = [];
    const one = client.onStatus((s) => calls.push(`one ${s.state}`));
    const two = client.onStatus((s) => calls.push(`two ${s.state}`));
    link.deliver(ownerStatus({ state: 'connecting' }));
    one.unsubscribe();
    link.deliver(ownerStatus({ state: 'open' }));
    two.free();
    link.deliver(ownerStatus({ state: 'closed' }));
    expect(calls).toEqual(['one connecting', 'two connecting', 'two open']);
  });

  test('`token?` is answered from getToken: a token, null, or the rejection text', async () => {
    const answers: (() => Promise<string | null>)[] = [
      async () => 'jwt-1',
      async () => null,
      async () => {
        throw new Error('signed out');
      },
      () => Promise.reject('plain'),
    ];
    const { link } = sharedClient(() => answers.shift()!());
    for (const req of [1, 2, 3, 4]) link.deliver({ t: 'token?', tab: 'tab-1', req });
    await flush();
    expect(link.sent).toEqual([
      { t: 'token', tab: 'tab-1', req: 1, token: 'jwt-1' },
      { t: 'token', tab: 'tab-1', req: 2, token: null },
      { t: 'token', tab: 'tab-1', req: 3, error: 'signed out' },
      { t: 'token', tab: 'tab-1', req: 4, error: 'plain' },
    ]);
  });

  test("diagnostics are reported; events and answers reach the tab's transport", async () => {
    const { link, transport, diagnostics } = sharedClient();
    link.deliver({ t: 'diagnostic', tab: 'tab-1', kind: 'malformed', message: 'bad log' });
    expect(diagnostics).toEqual(['malformed: bad log']);
    const stream = transport.transport.open(`${GW}?channels=a`, false);
    const seen = record(stream, ['open', 'hello']);
    link.deliver(event(1, 'hello', '{}'));
    expect(seen).toEqual(['open', 'hello {}']);
    const response = transport.transport.fetch(controlUrl, post('{}'));
    link.deliver({ t: 'answer', tab: 'tab-1', req: 1, status: 200, body: '{}' });
    expect((await response).status).toBe(200);
  });

  test('subscribe and stats are the tab client; reconnect goes to both; close closes both; free frees the tab client', () => {
    const { inner, link, client } = sharedClient();
    const sub = client.subscribe('logs:etl:ws1:wf1', { maxLogs: 5 }, () => undefined);
    expect(inner.subscriptions).toEqual([sub]);
    expect(client.stats()).toEqual(inner.stats());
    client.reconnect();
    expect(link.sent).toEqual([{ t: 'reconnect', tab: 'tab-1' }]);
    expect(inner.reconnects).toBe(1);
    client.close();
    expect(inner.closed && link.closed).toBe(true);
    client.free();
    expect(inner.freed).toBe(true);
  });
});

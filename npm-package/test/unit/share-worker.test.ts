import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { RawClient } from '../../src/registry.js';
import type { OwnerConfig, OwnerMessage } from '../../src/share/messages.js';
import type { OwnerLink } from '../../src/share/tab.js';
import { FakeClient } from './fake-client.js';

// The SharedWorker path: the tab's link (worker-link.ts) and the worker
// script (worker.ts) with the real owner over the fake raw client, joined
// by node's real MessageChannel. `SharedWorker` is a stand-in whose
// constructor hands the worker script one end of a new channel, as the
// browser's `connect` event does; one worker serves every "tab".
const created: FakeClient[] = [];
vi.mock('../../src/wasm.js', () => ({
  createRawClient: async (...args: unknown[]): Promise<RawClient> => {
    const client = new FakeClient(args[5]);
    created.push(client);
    return client;
  },
}));

const { TAB_SILENCE_MS } = await import('../../src/share/owner.js');
const { connectWorker, WORKER_START_MS } = await import('../../src/share/worker-link.js');
await import('../../src/share/worker.js');
const onconnect = (globalThis as unknown as { onconnect: (event: { ports: MessagePort[] }) => void }).onconnect;

const GW = 'http://gateway.test/api/logs/stream';
const CONFIG: OwnerConfig = { gatewayUrl: GW, withCredentials: false, tuning: {} };
const A = 'logs:etl:ws1:wf1';

const ports: MessagePort[] = [];
/** Whether the stand-in worker answers (a worker that failed to load does not). */
let workerAnswers = true;
const workerErrors: EventTarget[] = [];

class FakeSharedWorker extends EventTarget {
  readonly port: MessagePort;
  constructor(_url: URL, _options: unknown) {
    super();
    const channel = new MessageChannel();
    ports.push(channel.port1, channel.port2);
    this.port = channel.port1;
    if (workerAnswers) onconnect({ ports: [channel.port2] });
    workerErrors.push(this);
  }
}

/** Lets the ports deliver (real event-loop turns; timers stay fake). */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i += 1) {
    await vi.advanceTimersByTimeAsync(0);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

interface Tab {
  readonly id: string;
  readonly link: OwnerLink;
  readonly received: OwnerMessage[];
  resets: number;
}

const links: OwnerLink[] = [];
let nextKey = 0;
/** A key of its own per test: the worker script's owners live for the whole file. */
let key = '';

/** connectWorker, letting time pass in steps while it waits (it polls every 10 ms). */
async function connected(id: string, withKey = key): Promise<OwnerLink> {
  let link: OwnerLink | null = null;
  let failure: unknown = null;
  connectWorker(withKey, id, CONFIG).then(
    (l) => (link = l),
    (e: unknown) => (failure = e),
  );
  for (let i = 0; i < 100 && link === null && failure === null; i += 1) {
    await new Promise((resolve) => setImmediate(resolve));
    await vi.advanceTimersByTimeAsync(10);
  }
  if (link === null) throw failure ?? new Error('connectWorker did not settle');
  return link;
}

async function tab(id: string, withKey = key): Promise<Tab> {
  const link = await connected(id, withKey);
  links.push(link);
  const t: Tab = { id, link, received: [], resets: 0 };
  link.listen(
    (m) => t.received.push(m),
    () => {
      t.resets += 1;
    },
  );
  return t;
}

const events = (t: Tab) => t.received.flatMap((m) => (m.t === 'event' ? [`${m.name} ${m.stream}`] : []));

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  vi.stubGlobal('SharedWorker', FakeSharedWorker);
  created.length = 0;
  workerAnswers = true;
  key = `${GW}|${(nextKey += 1)}`;
});
afterEach(async () => {
  for (const link of links.splice(0)) link.close();
  await flush();
  await vi.advanceTimersByTimeAsync(2_000); // the worker closes its idle owners
  for (const port of ports.splice(0)) port.close();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

/** A page for the link's lifecycle listeners: `document` and the window's listeners; returns the window. */
function stubPage(): EventTarget {
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' });
  vi.stubGlobal('document', doc);
  vi.stubGlobal('addEventListener', win.addEventListener.bind(win));
  vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win));
  return win;
}

describe('SharedWorker link and worker', () => {
  test("a tab connects once the worker answered its join with the owner's status", async () => {
    const link = await connected('one');
    links.push(link);
    expect(link.mode).toBe('worker');
    const received: OwnerMessage[] = [];
    link.listen((m) => received.push(m), () => undefined);
    // The status that came before listen() is delivered to it.
    expect(received).toEqual([{ t: 'status', tab: 'one', status: { state: 'idle', attempt: 0 } }]);
  });

  test('tabs of one key share one owner and real client; another key gets its own', async () => {
    const a = await tab('one');
    const b = await tab('two');
    await tab('three', `${key}|other`);
    expect(created).toHaveLength(2);
    a.link.send({ t: 'open', tab: 'one', stream: 1, url: `${GW}?channels=${A}` });
    b.link.send({ t: 'open', tab: 'two', stream: 1, url: `${GW}?channels=${A}` });
    await flush();
    expect(created[0]!.live().map((s) => s.channel)).toEqual([A, A]);
    expect(events(a)).toEqual(['hello 1']);
    expect(events(b)).toEqual(['hello 1']);
    for (const sub of created[0]!.live()) sub.onUpdate({ type: 'status', status: 'subscribed', replayed: 0 });
    // One log on the real stream: once to each tab.
    created[0]!.live()[0]!.push({ n: 1 });
    await flush();
    expect(events(a)).toEqual(['hello 1', 'status 1', 'log 1']);
    expect(events(b)).toEqual(['hello 1', 'status 1', 'log 1']);
  });

  test('a worker that does not answer makes connectWorker reject after WORKER_START_MS', async () => {
    workerAnswers = false;
    let outcome: unknown = null;
    const pending = connectWorker(key, 'one', CONFIG).then(
      () => 'connected',
      (error: Error) => error.message,
    );
    void pending.then((o) => (outcome = o));
    await vi.advanceTimersByTimeAsync(WORKER_START_MS - 20);
    expect(outcome).toBeNull();
    await vi.advanceTimersByTimeAsync(40);
    await flush();
    expect(outcome).toMatch(/did not answer/);
  });

  test("a worker's error event makes connectWorker reject at once", async () => {
    workerAnswers = false;
    const pending = connectWorker(key, 'one', CONFIG);
    const outcome = expect(pending).rejects.toThrow(/failed/);
    workerErrors.at(-1)!.dispatchEvent(new Event('error'));
    await vi.advanceTimersByTimeAsync(20);
    await outcome;
  });

  test('tabs report alive, so a quiet tab keeps its stream past TAB_SILENCE_MS', async () => {
    const a = await tab('one');
    a.link.send({ t: 'open', tab: 'one', stream: 1, url: `${GW}?channels=${A}` });
    await flush();
    for (let t = 0; t < 2 * TAB_SILENCE_MS; t += 15_000) {
      await vi.advanceTimersByTimeAsync(15_000);
      await flush();
    }
    expect(a.received.filter((m) => m.t === 'dropped')).toEqual([]);
    expect(a.resets).toBe(0);
    expect(created[0]!.live().map((s) => s.channel)).toEqual([A]);
    expect(events(a).filter((e) => e.startsWith('ping')).length).toBeGreaterThan(20);
  });

  test('a tab the worker no longer knows is told `dropped`: it joins again and resets', async () => {
    const a = await tab('one');
    // The worker forgets the tab (as after a silence), then hears from it.
    a.link.send({ t: 'leave', tab: 'one' });
    await flush();
    a.link.send({ t: 'open', tab: 'one', stream: 1, url: `${GW}?channels=${A}` });
    await flush();
    expect(a.resets).toBe(1);
    expect(a.received.filter((m) => m.t === 'dropped')).toEqual([]); // handled by the link
    a.link.send({ t: 'open', tab: 'one', stream: 2, url: `${GW}?channels=${A}` });
    await flush();
    expect(events(a)).toEqual(['hello 2']);
    expect(created[0]!.live().map((s) => s.channel)).toEqual([A]);
  });

  test('when the last tab left, the worker closes the owner after its idle time; the next tab gets a new one', async () => {
    const a = await tab('one');
    a.link.send({ t: 'open', tab: 'one', stream: 1, url: `${GW}?channels=${A}` });
    await flush();
    a.link.close();
    await flush();
    await vi.advanceTimersByTimeAsync(999);
    expect(created[0]!.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(created[0]!.closed && created[0]!.freed).toBe(true);
    await tab('two');
    expect(created).toHaveLength(2);
    expect(created[1]!.closed).toBe(false);
  });

  test('messages of another protocol version are ignored by the worker', async () => {
    const channel = new MessageChannel();
    ports.push(channel.port1, channel.port2);
    onconnect({ ports: [channel.port2] });
    const heard: unknown[] = [];
    channel.port1.onmessage = (event) => heard.push(event.data);
    channel.port1.postMessage({ v: 999, key, m: { t: 'join', tab: 'x', config: CONFIG } });
    channel.port1.postMessage({ v: 1, key, m: { t: 'open', tab: 'x', stream: 1, url: GW } });
    await flush();
    // Only the second is read: it names a key without an owner, so the tab is told to join.
    expect(heard).toEqual([{ t: 'dropped', tab: 'x' }]);
    expect(created).toHaveLength(0);
  });
  test('pagehide leaves the worker (the subscriptions end); pageshow joins again and resets', async () => {
    const win = stubPage();
    const a = await tab('one');
    a.link.send({ t: 'open', tab: 'one', stream: 1, url: `${GW}?channels=${A}` });
    await flush();
    const client = created[0]!;
    expect(client.live()).toHaveLength(1);
    win.dispatchEvent(Object.assign(new Event('pagehide'), { persisted: true }));
    await flush();
    expect(client.live()).toHaveLength(0);
    expect(a.resets).toBe(0);
    win.dispatchEvent(Object.assign(new Event('pageshow'), { persisted: true }));
    await flush();
    expect(a.resets).toBe(1);
    a.link.send({ t: 'open', tab: 'one', stream: 2, url: `${GW}?channels=${A}` });
    await flush();
    expect(client.live()).toHaveLength(1);
    expect(events(a).at(-1)).toBe('hello 2');
  });

  test('a closing page says nothing after its leave: the stream it closes on the way is not answered, it does not join again', async () => {
    const win = stubPage();
    const a = await tab('one');
    a.link.send({ t: 'open', tab: 'one', stream: 1, url: `${GW}?channels=${A}` });
    await flush();
    const client = created[0]!;
    win.dispatchEvent(Object.assign(new Event('pagehide'), { persisted: false }));
    // The page's own client closes its stream as the page goes.
    a.link.send({ t: 'close', tab: 'one', stream: 1 });
    a.link.send({ t: 'open', tab: 'one', stream: 2, url: `${GW}?channels=${A}` });
    await vi.advanceTimersByTimeAsync(60_000);
    await flush();
    expect(client.live()).toHaveLength(0);
    expect(a.resets).toBe(0);
    expect(a.received.filter((m) => m.t === 'dropped')).toEqual([]);
  });
});

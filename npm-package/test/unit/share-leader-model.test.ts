import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { RawClient } from '../../src/registry.js';
import { Random } from '../support/random.js';
import { FakeClient } from './fake-client.js';
import { FakeBroadcastChannel, locks, page, settleAll, useFakeTabs } from './fake-tabs.js';
import type { Page } from './fake-tabs.js';

// A randomised test of the leader-tab election (leader-link.ts with the real
// owner over the fake raw client): tabs open, close, crash (the leader),
// freeze and resume, hide and show, in random order. Each tab streams one
// channel and, like its wasm client, reopens its stream when its link
// resets. Once the messages and lock grants have settled: exactly one
// running tab leads; there is one real stream (every earlier real client is
// closed); it carries exactly one subscription per running tab, that tab's
// channel; and every running tab heard `hello` for its latest stream.
// Lock grants and messages are tasks (fake-tabs.ts), in the order they were
// made.
const created: FakeClient[] = [];
vi.mock('../../src/wasm.js', () => ({
  createRawClient: async (...args: unknown[]): Promise<RawClient> => {
    const client = new FakeClient(args[5]);
    created.push(client);
    return client;
  },
}));
const { connectLeader } = await import('../../src/share/leader-link.js');
useFakeTabs(connectLeader);

const CHANNELS = ['logs:etl:ws1:wf1', 'logs:etl:ws1:wf2', 'logs:faas:ws1:f1'];
const SEEDS = 60;
const STEPS = 40;

/** The seeded generator of the randomised tests (support/random.ts). */
function rng(seed: number) {
  const random = new Random(seed);
  const next = (): number => random.next();
  return { next, pick: <T,>(items: readonly T[]): T => items[Math.floor(next() * items.length)]! };
}

type State = 'running' | 'frozen' | 'closed' | 'crashed';
interface Tab {
  readonly page: Page;
  readonly channel: string;
  state: State;
  stream: number;
  /** Resets answered by reopening. */
  handled: number;
}

beforeEach(() => {
  created.length = 0;
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function run(seed: number): Promise<void> {
  const r = rng(seed);
  // The steal jitter too, so a seed replays exactly.
  const jitter = rng(seed + 1_000_003);
  vi.spyOn(Math, 'random').mockImplementation(jitter.next);
  const tabs: Tab[] = [];
  let settled = true;
  let n = 0;
  const running = () => tabs.filter((t) => t.state === 'running');
  const leader = () => running().find((t) => t.page.mode === 'leader');
  const log: string[] = [];

  const open = (tab: Tab): void => {
    const before = tab.stream;
    if (before > 0) tab.page.send({ t: 'close', tab: tab.page.id, stream: before });
    tab.stream = tab.page.open(tab.channel);
  };
  /** Lets everything run: messages, lock grants, steal jitter, and the tabs' reopening after resets. */
  const stabilize = async (): Promise<void> => {
    for (let round = 0; round < 20; round += 1) {
      await settleAll();
      await vi.advanceTimersByTimeAsync(150);
      await settleAll();
      const due = running().filter((t) => t.page.resets > t.handled);
      if (due.length === 0) {
        return;
      }
      for (const tab of due) {
        tab.handled = tab.page.resets;
        open(tab);
      }
    }
    throw new Error(`seed ${seed}: the tabs kept resetting (${log.join(', ')})`);
  };

  const actions: [number, () => void][] = [
    [
      3,
      () => {
        if (tabs.filter((t) => t.state !== 'closed' && t.state !== 'crashed').length >= 5) return;
        const tab: Tab = { page: page(`p${n++}`, r.next() < 0.7), channel: r.pick(CHANNELS), state: 'running', stream: 0, handled: 0 };
        tabs.push(tab);
        log.push(`new ${tab.page.id}${tab.page.visible ? '' : ' hidden'}`);
        tab.page.connect();
        open(tab);
      },
    ],
    [
      1,
      () => {
        const list = running();
        if (list.length === 0) return;
        const tab = r.pick(list);
        log.push(`close ${tab.page.id}`);
        tab.page.close();
        tab.state = 'closed';
      },
    ],
    [
      1,
      () => {
        const tab = leader();
        // (Only once settled: the real client of the leader is then the last one made.)
        if (tab === undefined || !settled) return;
        log.push(`crash ${tab.page.id}`);
        // The page is gone at once: its channels, its lock and its real stream.
        FakeBroadcastChannel.crash(tab.page);
        locks.crash(tab.page);
        const client = created.at(-1)!;
        client.close();
        tab.state = 'crashed';
      },
    ],
    [
      2,
      () => {
        const list = running();
        if (list.length === 0) return;
        const tab = r.pick(list);
        const how = r.next() < 0.7 ? 'freeze' : 'pagehide';
        log.push(`${how} ${tab.page.id}`);
        if (how === 'freeze') tab.page.fire('doc', 'freeze');
        else tab.page.fire('win', 'pagehide', { persisted: true });
        tab.state = 'frozen';
      },
    ],
    [
      2,
      () => {
        const list = tabs.filter((t) => t.state === 'frozen');
        if (list.length === 0) return;
        const tab = r.pick(list);
        log.push(`resume ${tab.page.id}`);
        // Either way back: resume and pageshow both rejoin.
        if (r.next() < 0.5) tab.page.fire('doc', 'resume');
        else tab.page.fire('win', 'pageshow', { persisted: true });
        tab.state = 'running';
      },
    ],
    [
      3,
      () => {
        const list = running();
        if (list.length === 0) return;
        const tab = r.pick(list);
        log.push(`${tab.page.visible ? 'hide' : 'show'} ${tab.page.id}`);
        tab.page.setVisible(!tab.page.visible);
      },
    ],
  ];
  const weights = actions.reduce((sum, [w]) => sum + w, 0);

  for (let step = 0; step < STEPS; step += 1) {
    let roll = r.next() * weights;
    actions.find(([w]) => (roll -= w) < 0)![1]();
    // Now and then two things happen before anything is delivered.
    settled = r.next() < 0.7;
    if (!settled) continue;
    await stabilize();
    const where = `seed ${seed} step ${step} (${log.join(', ')})`;
    const now = running();
    const leaders = now.filter((t) => t.page.mode === 'leader').map((t) => t.page.id);
    expect(leaders, where).toHaveLength(now.length > 0 ? 1 : 0);
    const open = created.filter((c) => !c.closed);
    expect(open.length, `${where}: real streams`).toBe(now.length > 0 ? 1 : 0);
    if (now.length === 0) continue;
    const client = open[0]!;
    expect(client, where).toBe(created.at(-1));
    expect(client.live().map((s) => s.channel).sort(), `${where}: channels on the real stream`).toEqual(now.map((t) => t.channel).sort());
    for (const tab of now) {
      const hello = tab.page.events().filter((e) => e.startsWith('hello ')).at(-1);
      expect(hello, `${where}: ${tab.page.id}`).toBe(`hello ${tab.stream}`);
    }
  }
}

describe(`LeaderLink election at random: ${SEEDS} histories of up to 5 tabs, ${STEPS} steps each`, () => {
  test.each(Array.from({ length: SEEDS }, (_, i) => i + 1))('seed %i', run);
});

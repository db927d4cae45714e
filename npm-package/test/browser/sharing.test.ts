// One connection shared by the tabs of one browser profile, in headless
// Chromium against the real gateway: a randomised, seeded model-based test.
// Several tabs (pages of one context) of the Vite build of the test app run
// the framework-free client while logs are published continuously to a few
// channels of one workspace (resource channels and a service-level channel)
// and a random sequence of steps runs over 2 to 4 tabs: subscribe (live,
// `history: N`, `persist: true`), unsubscribe, open a tab, close one (the
// leader or the first one half the time), freeze one and later resume it
// (CDP `Page.setWebLifecycleState`), reload one (its persisted
// subscriptions are made again and restore from sessionStorage).
//
// Once publishing stopped and everything settled: the gateway has exactly
// one stream open, carrying each channel some tab still holds once (and
// no other); every
// subscription holds each log of its channel at most once, in publish
// order, with no hole from its first log to the last one published, and
// misses nothing published after its first status; each tab says how it
// reaches the connection (`worker`: all `worker`; `leader`: one `leader`,
// the others `follower`) and only the leader's page has an EventSource open.
//
// Modes: `worker` (nothing removed: a SharedWorker owns the stream) and
// `leader` (an init script deletes `window.SharedWorker`: Web Locks and
// BroadcastChannel). The seed is printed; LOGS_SSE_SHARE_SEED=<seed>
// replays it (the step choices; which tab leads is the browser's) and
// LOGS_SSE_SHARE_STEPS=<n> changes the number of steps (default 30).
//
// Then, per mode: tabs closed one after the other leave no channel on the
// shared stream, and a service-level subscription joining next to a
// resource channel held with `history` misses nothing.
import type { BrowserContext } from 'playwright-core';
import { beforeAll, describe, expect, inject, test } from 'vitest';
import { launchProfile, type ShareMode } from '../support/browser.js';
import { Feed, resourceChannel, type Resource } from '../support/feed.js';
import { startGateway, stats, type GatewayStats, type RunningGateway } from '../support/gateway.js';
import { eventually, uniqueWorkspace } from '../support/app.js';
import { Random, seedFrom } from '../support/random.js';
import { Tab, type SubOptions, type TabState } from '../support/tabs.js';

const baseUrl = inject('baseUrl');
const SEED = seedFrom('LOGS_SSE_SHARE_SEED');
const STEPS = Number(process.env.LOGS_SSE_SHARE_STEPS ?? 30);
/** Large enough that no subscription drops a log over a run (~30 logs/s on the service-level channel). */
const MAX_LOGS = 20_000;
const PUBLISH_EVERY_MS = 60;
const MAX_TABS = 4;
const MIN_TABS = 2;
const MAX_SUBS_PER_TAB = 6;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(() => {
  console.log(`sharing: seed ${SEED} (replay with LOGS_SSE_SHARE_SEED=${SEED}), ${STEPS} steps per mode`);
});

type Kind = 'live' | 'history' | 'persist';

interface ModelSub {
  readonly id: string;
  readonly channel: string;
  readonly kind: Kind;
  readonly options: SubOptions;
  /** When its first status reached the tab, kept across reloads (a restored subscription goes on from there). */
  startAt?: number;
}

interface ModelTab {
  readonly tab: Tab;
  frozen: boolean;
  readonly subs: Map<string, ModelSub>;
}

type Step = 'subscribe' | 'unsubscribe' | 'open' | 'close' | 'freeze' | 'resume' | 'reload' | 'focus';

/** One run: its tabs, the model of their subscriptions, and the steps. */
class Run {
  readonly tabs: ModelTab[] = [];
  readonly log: string[] = [];
  readonly counts: Record<string, number> = {};
  private nextTab = 1;
  private nextSub = 1;

  constructor(
    private readonly mode: ShareMode,
    private readonly context: BrowserContext,
    private readonly rng: Random,
    private readonly channels: string[],
    private readonly gatewayUrl: string,
    private readonly ws: string,
    /** How many logs were published so far: each step's line starts with it. */
    private readonly progress: () => number,
  ) {}

  async openTab(): Promise<string> {
    const name = `t${this.nextTab++}`;
    const tab = await Tab.open(this.context, name, {
      share: this.mode,
      url: `${baseUrl}/vite/`,
      client: { gatewayUrl: `${this.gatewayUrl}/api/logs/stream` },
    });
    this.tabs.push({ tab, frozen: false, subs: new Map() });
    return name;
  }

  /** Chooses and runs one step the model allows. */
  async step(): Promise<void> {
    const active = this.tabs.filter((t) => !t.frozen);
    const step = this.rng.weighted<Step>({
      subscribe: active.some((t) => t.subs.size < MAX_SUBS_PER_TAB) ? 5 : 0,
      unsubscribe: active.some((t) => t.subs.size > 0) ? 1.5 : 0,
      open: this.tabs.length < MAX_TABS ? 1.5 : 0,
      close: this.tabs.length > MIN_TABS ? 1 : 0,
      freeze: active.length > 1 ? 1 : 0,
      resume: active.length < this.tabs.length ? 1.5 : 0,
      reload: active.length > 0 ? 1 : 0,
      focus: active.length > 0 ? 1 : 0,
    });
    this.counts[step] = (this.counts[step] ?? 0) + 1;
    const at = this.progress();
    const line = await this[step](active);
    this.log.push(`[g ${at}] ${step} ${line}`);
  }

  private async subscribe(active: ModelTab[]): Promise<string> {
    const t = this.rng.pick(active.filter((x) => x.subs.size < MAX_SUBS_PER_TAB));
    const id = `s${this.nextSub++}`;
    const channel = this.rng.pick(this.channels);
    const kind = this.rng.weighted<Kind>({ live: 2, history: 1, persist: 1.5 });
    const options: SubOptions = { maxLogs: MAX_LOGS };
    if (kind === 'history' || (kind === 'persist' && this.rng.chance(0.5))) options.history = this.rng.pick([10, 100, 500]);
    if (kind === 'persist') {
      options.persist = true;
      options.persistKey = `sharing:${this.ws}:${id}`;
    }
    const sub: ModelSub = { id, channel, kind, options };
    t.subs.set(id, sub);
    await t.tab.subscribe(id, channel, options);
    return `${t.tab.name} ${id} ${short(channel)} ${kind}${options.history !== undefined ? ` (history ${options.history})` : ''}`;
  }

  private async unsubscribe(active: ModelTab[]): Promise<string> {
    const t = this.rng.pick(active.filter((x) => x.subs.size > 0));
    const sub = this.rng.pick([...t.subs.values()]);
    t.subs.delete(sub.id);
    await t.tab.unsubscribe(sub.id);
    return `${t.tab.name} ${sub.id}`;
  }

  private async open(): Promise<string> {
    return this.openTab();
  }

  private async focus(active: ModelTab[]): Promise<string> {
    const t = this.rng.pick(active);
    await t.tab.focus();
    return t.tab.name;
  }

  private async close(): Promise<string> {
    let t: ModelTab;
    let why = '';
    if (this.rng.chance(0.5)) {
      // The leader (leader mode), else the first tab (the worker's first client).
      t = (this.mode === 'leader' ? await this.leader() : undefined) ?? this.tabs[0]!;
      why = this.mode === 'leader' ? ' (the leader)' : ' (the first)';
    } else {
      t = this.rng.pick(this.tabs);
    }
    this.tabs.splice(this.tabs.indexOf(t), 1);
    await t.tab.close();
    return `${t.tab.name}${t.frozen ? ' frozen' : ''}${why}`;
  }

  private async freeze(active: ModelTab[]): Promise<string> {
    const t = this.rng.pick(active);
    await t.tab.setLifecycle('frozen');
    t.frozen = true;
    return t.tab.name;
  }

  private async resume(): Promise<string> {
    const t = this.rng.pick(this.tabs.filter((x) => x.frozen));
    await t.tab.setLifecycle('active');
    t.frozen = false;
    return t.tab.name;
  }

  private async reload(active: ModelTab[]): Promise<string> {
    const t = this.rng.pick(active);
    const before = await t.tab.read();
    for (const sub of t.subs.values()) sub.startAt ??= before.subs[sub.id]?.statuses[0]?.at;
    await t.tab.reload();
    const kept: string[] = [];
    for (const sub of [...t.subs.values()]) {
      if (sub.kind !== 'persist') {
        t.subs.delete(sub.id);
        continue;
      }
      kept.push(sub.id);
      await t.tab.subscribe(sub.id, sub.channel, sub.options);
    }
    return `${t.tab.name}${kept.length > 0 ? ` restores ${kept.join(' ')}` : ''}`;
  }

  /** The tab that says it leads, if one does (frozen tabs give up the lead and cannot be asked). */
  async leader(): Promise<ModelTab | undefined> {
    for (const t of this.tabs.filter((x) => !x.frozen)) {
      if ((await t.tab.read()).status.sharing === 'leader') return t;
    }
    return undefined;
  }

  /** Gives every tab without one a live subscription: a tab holding nothing has no stream to check. */
  async subscribeIdle(): Promise<void> {
    for (const t of this.tabs.filter((x) => x.subs.size === 0)) {
      const id = `s${this.nextSub++}`;
      const channel = this.rng.pick(this.channels);
      const sub: ModelSub = { id, channel, kind: 'live', options: { maxLogs: MAX_LOGS } };
      t.subs.set(id, sub);
      await t.tab.subscribe(id, channel, sub.options);
      this.log.push(`[g ${this.progress()}] subscribe ${t.tab.name} ${id} ${short(channel)} live (end)`);
    }
  }

  async resumeAll(): Promise<void> {
    for (const t of this.tabs.filter((x) => x.frozen)) {
      await t.tab.setLifecycle('active');
      t.frozen = false;
      this.log.push(`[g ${this.progress()}] resume ${t.tab.name} (end)`);
    }
  }

  async readAll(): Promise<Map<ModelTab, TabState>> {
    const states = new Map<ModelTab, TabState>();
    for (const t of this.tabs) states.set(t, await t.tab.read());
    return states;
  }
}

const short = (channel: string): string => channel.split(':').filter((_, i) => i !== 2).join(':');

/** What is wrong with one subscription's final state (empty: nothing). */
function check(sub: ModelSub, state: TabState['subs'][string] | undefined, feed: Feed): string[] {
  if (state === undefined) return ['missing in its tab'];
  const problems: string[] = [];
  if (state.errors.length > 0) problems.push(`errors ${JSON.stringify(state.errors)}`);
  if (state.gaps.length > 0) problems.push(`gaps ${JSON.stringify(state.gaps)}`);
  const odd = state.statuses.filter((s) => s.status !== 'subscribed' && s.status !== 'resumed');
  if (odd.length > 0) problems.push(`statuses ${JSON.stringify(odd)}`);
  const expected = feed.expected(sub.channel);
  const index = new Map(expected.map((p, i) => [p.g, i]));
  const at = state.g.map((g) => index.get(g));
  const foreign = state.g.filter((_, i) => at[i] === undefined);
  if (foreign.length > 0) problems.push(`logs of other channels: ${foreign.slice(0, 5).join(',')}`);
  const holes: string[] = [];
  let missing = 0;
  for (let i = 1; i < at.length; i += 1) {
    const [a, b] = [at[i - 1], at[i]];
    if (a === undefined || b === undefined) continue;
    if (b <= a) {
      problems.push(`repeated or out of order: g ${state.g[i - 1]} then ${state.g[i]}`);
      break;
    }
    if (b !== a + 1) {
      holes.push(`g ${state.g[i - 1]} then ${state.g[i]}`);
      missing += b - a - 1;
    }
  }
  if (holes.length > 0) {
    const lost = expected.filter((p, i) => at[0] !== undefined && i > at[0] && !state.g.includes(p.g));
    problems.push(
      `${holes.length} hole(s), ${missing} log(s) missing (${holes.slice(0, 3).join('; ')}${holes.length > 3 ? '; …' : ''}), ` +
        `of ${[...new Set(lost.map((p) => short(p.channel)))].join(', ')}, published between g ${lost[0]?.g} and ${lost.at(-1)?.g}`,
    );
  }
  const last = at.at(-1);
  if (last !== expected.length - 1) {
    problems.push(`ends at g ${state.g.at(-1)} (${last === undefined ? 'none' : expected.length - 1 - last} behind the last published)`);
  }
  // Everything published after the subscription's start (its first status) is there.
  const start = sub.startAt ?? state.statuses[0]?.at;
  if (start === undefined) problems.push('never heard a status');
  else {
    const firstAfter = expected.findIndex((p) => p.sentAt > start);
    const first = at[0];
    if (firstAfter >= 0 && (first === undefined || first > firstAfter)) {
      problems.push(`starts at g ${state.g[0]}, after g ${expected[firstAfter]!.g}, published after its start`);
    }
  }
  return problems;
}

describe.each(['worker', 'leader'] as const)('tabs sharing one connection (%s)', (mode) => {
  test(
    'random steps over 2-4 tabs: one stream, and every subscription holds its channel once, in order, without a hole',
    { timeout: 120_000 },
    async () => {
      const seed = SEED;
      const rng = new Random(seed);
      const gateway: RunningGateway = await startGateway();
      const profile = await launchProfile();
      const ws = uniqueWorkspace('share');
      const resources: Resource[] = [
        { service: 'etl', workspace_id: ws, workflow_id: 'wf1' },
        { service: 'etl', workspace_id: ws, workflow_id: 'wf2' },
        { service: 'faas', workspace_id: ws, workflow_id: 'fn1' },
      ];
      const channels = [...resources.map(resourceChannel), `logs:etl:${ws}`];
      const feed = new Feed(gateway.url, resources, PUBLISH_EVERY_MS);
      const run = new Run(mode, profile.context, rng, channels, gateway.url, ws, () => feed.published.length);
      let maxConnections = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          maxConnections = Math.max(maxConnections, (await stats(gateway.url)).connections);
          await sleep(200);
        }
      })();
      const started = Date.now();
      const problems: string[] = [];
      try {
        await run.openTab();
        await run.openTab();
        feed.start();
        for (let i = 0; i < STEPS; i += 1) {
          await run.step();
          await sleep(rng.int(100, 700));
        }
        await run.subscribeIdle();
        await sleep(1_000);
        await run.resumeAll();
        // Resumed tabs catch up while logs still flow.
        await sleep(1_500);
        await feed.stop();

        // Settled: every subscription reached the last log of its channel (or 20 s passed).
        const lagging = (states: Map<ModelTab, TabState>): string[] => {
          const behind: string[] = [];
          for (const [t, state] of states) {
            for (const sub of t.subs.values()) {
              const want = feed.expected(sub.channel).at(-1)?.g;
              const have = state.subs[sub.id]?.g.at(-1);
              if (have !== want) behind.push(`${t.tab.name}/${sub.id} at g ${have} of ${want}`);
            }
          }
          return behind;
        };
        const settleBy = Date.now() + 20_000;
        while (lagging(await run.readAll()).length > 0 && Date.now() < settleBy) await sleep(200);

        // The gateway: one stream, carrying the channels the tabs still hold, once each
        // (and no other).
        const held = [...new Set(run.tabs.flatMap((t) => [...t.subs.values()].map((s) => s.channel)))].sort();
        const ours = (s: GatewayStats): Record<string, number> =>
          Object.fromEntries(Object.entries(s.subscriptions).filter(([channel]) => channel.includes(`:${ws}`)).sort());
        const carried = (s: GatewayStats): string[] => {
          const mine = ours(s);
          const wrong = held.filter((channel) => mine[channel] !== 1).map((channel) => `${short(channel)} ${mine[channel] ?? 0} times`);
          const extra = Object.keys(mine).filter((channel) => !held.includes(channel)).map((channel) => `${short(channel)} held by no tab`);
          return [...wrong, ...extra];
        };
        const statsBy = Date.now() + 10_000;
        let gatewayStats = await stats(gateway.url);
        while ((gatewayStats.connections !== 1 || carried(gatewayStats).length > 0) && Date.now() < statsBy) {
          await sleep(200);
          gatewayStats = await stats(gateway.url);
        }
        sampling = false;
        await sampler;
        const states = await run.readAll();

        if (gatewayStats.connections !== 1) problems.push(`the gateway has ${gatewayStats.connections} streams open`);
        for (const p of carried(gatewayStats)) problems.push(`the gateway's stream carries ${p}`);
        let subCount = 0;
        let checkedLogs = 0;
        for (const [t, state] of states) {
          for (const sub of t.subs.values()) {
            subCount += 1;
            checkedLogs += state.subs[sub.id]?.g.length ?? 0;
            for (const p of check(sub, state.subs[sub.id], feed)) problems.push(`${t.tab.name}/${sub.id} (${short(sub.channel)} ${sub.kind}): ${p}`);
          }
        }
        const tabStates = [...states.entries()].map(([t, s]) => ({ name: t.tab.name, ...s }));
        const sharing = tabStates.map((s) => s.status.sharing);
        for (const s of tabStates) {
          if (s.status.state !== 'open') problems.push(`${s.name}: status ${JSON.stringify(s.status)}`);
        }
        if (mode === 'worker') {
          if (!sharing.every((m) => m === 'worker')) problems.push(`sharing ${sharing.join(', ')}, not all worker`);
          // The worker holds the stream: no page opened an EventSource.
          for (const s of tabStates) if (s.eventSources.created !== 0) problems.push(`${s.name} opened ${s.eventSources.created} EventSource(s)`);
        } else {
          const leaders = sharing.filter((m) => m === 'leader').length;
          const followers = sharing.filter((m) => m === 'follower').length;
          if (leaders !== 1 || followers !== sharing.length - 1) problems.push(`sharing ${sharing.join(', ')}: not one leader and the others followers`);
          // Only the leader's page holds an EventSource.
          for (const s of tabStates) {
            const want = s.status.sharing === 'leader' ? 1 : 0;
            if (s.eventSources.open !== want) problems.push(`${s.name} (${s.status.sharing}) has ${s.eventSources.open} EventSource(s) open`);
          }
        }
        console.log(
          `sharing (${mode}, seed ${seed}): ${run.log.length} steps in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
            `(${Object.entries(run.counts).map(([k, n]) => `${k} ${n}`).join(', ')}); ${feed.published.length} logs published; ` +
            `at the end ${tabStates.length} tabs [${tabStates.map((s) => `${s.name} ${s.status.sharing} ${s.visibility}`).join(', ')}], ` +
            `${subCount} subscriptions holding ${checkedLogs} logs; gateway: ${gatewayStats.connections} stream open, ` +
            `${gatewayStats.streamsOpened} opened over the run, at most ${maxConnections} at once, ` +
            `channels ${JSON.stringify(Object.keys(ours(gatewayStats)).map(short))} for held ${JSON.stringify(held.map(short))}`,
        );
      } finally {
        sampling = false;
        await sampler.catch(() => undefined);
        await feed.stop().catch(() => undefined);
        await profile.close();
        await gateway.stop();
      }
      if (problems.length > 0 || process.env.LOGS_SSE_SHARE_VERBOSE) {
        console.log(`steps (${mode}, seed ${seed}; replay with LOGS_SSE_SHARE_SEED=${seed}):\n  ${run.log.join('\n  ')}`);
      }
      expect(problems).toEqual([]);
    },
  );
});

describe.each(['worker', 'leader'] as const)('a closed tab (%s)', (mode) => {
  test('releases its channels from the shared stream', { timeout: 60_000 }, async () => {
    const gateway = await startGateway();
    const profile = await launchProfile();
    try {
      const ws = uniqueWorkspace('closed');
      const options = { share: mode, url: `${baseUrl}/vite/`, client: { gatewayUrl: `${gateway.url}/api/logs/stream` } };
      const keep = await Tab.open(profile.context, 'keep', options);
      await keep.subscribe('keep', `logs:etl:${ws}:keep`, {});
      const carried = async (): Promise<string[]> =>
        Object.keys((await stats(gateway.url)).subscriptions).filter((channel) => channel.includes(`:${ws}:`)).sort();
      const closed: string[] = [];
      for (let i = 0; i < 6; i += 1) {
        const channel = `logs:etl:${ws}:c${i}`;
        const tab = await Tab.open(profile.context, `c${i}`, options);
        await tab.subscribe('s', channel, {});
        await eventually(carried, (channels) => channels.includes(channel), `${channel} on the stream`);
        await tab.close();
        closed.push(channel);
      }
      // The tab's linger (1.5 s) and the owner's (1.5 s) pass, then the channels leave.
      const left = await eventually(carried, (channels) => channels.length === 1, 'the closed tabs still hold channels', 10_000).catch(
        async () => carried(),
      );
      expect(left).toEqual([`logs:etl:${ws}:keep`]);
      expect((await stats(gateway.url)).connections).toBe(1);
    } finally {
      await profile.close();
      await gateway.stop();
    }
  });
});

describe.each(['worker', 'leader'] as const)('a service-level subscription of a follower or worker tab (%s)', (mode) => {
  // Once lost a stretch of another resource's logs, when each relay forwarded its own logs.
  test(
    'joining next to a resource channel held with history misses none of the other resources\' logs',
    { timeout: 90_000 },
    async () => {
      const gateway = await startGateway();
      const profile = await launchProfile();
      try {
        const options = { share: mode, url: `${baseUrl}/vite/`, client: { gatewayUrl: `${gateway.url}/api/logs/stream` } };
        // The second tab is in front: with a leader, the first tab leads and the second follows.
        await Tab.open(profile.context, 'a', options);
        const tab = await Tab.open(profile.context, 'b', options);
        const problems: string[] = [];
        for (let attempt = 1; attempt <= 3; attempt += 1) {
          const ws = uniqueWorkspace('svc');
          const service = `logs:etl:${ws}`;
          const attemptFeed = new Feed(gateway.url, ['wf1', 'wf2'].map((workflow_id) => ({ service: 'etl', workspace_id: ws, workflow_id })), 40);
          attemptFeed.start();
          await sleep(1_000);
          await tab.subscribe(`wf1-${attempt}`, `${service}:wf1`, { maxLogs: MAX_LOGS, history: 500 });
          await sleep(700);
          await tab.subscribe(`all-${attempt}`, service, { maxLogs: MAX_LOGS });
          await sleep(700);
          await tab.subscribe(`wf2-${attempt}`, `${service}:wf2`, { maxLogs: MAX_LOGS });
          await sleep(300);
          await tab.unsubscribe(`wf1-${attempt}`);
          await sleep(1_000);
          await attemptFeed.stop();
          const sub = { id: `all-${attempt}`, channel: service, kind: 'live' as const, options: {} };
          const state = await eventually(
            () => tab.read(),
            (s) => s.subs[sub.id]?.g.at(-1) === attemptFeed.expected(service).at(-1)?.g,
            `attempt ${attempt}: the service-level subscription to catch up`,
          );
          for (const p of check(sub, state.subs[sub.id], attemptFeed)) problems.push(`attempt ${attempt} (${state.status.sharing}): ${p}`);
          await tab.unsubscribe(sub.id);
          await tab.unsubscribe(`wf2-${attempt}`);
        }
        expect(problems).toEqual([]);
      } finally {
        await profile.close();
        await gateway.stop();
      }
    },
  );
});

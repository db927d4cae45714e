//! Where a persisted subscription resumes: restores from `sessionStorage`,
//! reloads (a new engine over the same storage), route changes and linger
//! expiry, quiet channels, filters and failing storage, against the stream
//! model of the parent module.

use std::collections::BTreeMap;

use super::*;

/// A browser tab: an engine, the gateway model it talks to, and its
/// `sessionStorage`, which survives a reload.
struct Tab {
    e: Engine<String>,
    m: Model,
    storage: BTreeMap<String, String>,
    /// Storage writes fail: `Some(true)` with a quota error.
    failing: Option<bool>,
    now: u64,
}

impl Tab {
    fn new() -> Self {
        Tab {
            e: engine(),
            m: Model::new(),
            storage: BTreeMap::new(),
            failing: None,
            now: 0,
        }
    }

    /// Mounts a persisted subscription the way the browser boundary does:
    /// the stored record, validated, is handed to `subscribe`.
    fn mount(&mut self, channel: &str, key: &str, filter: Option<Filter<String>>) -> SubId {
        self.mount_with(channel, key, filter, 0)
    }

    fn mount_with(
        &mut self,
        channel: &str,
        key: &str,
        filter: Option<Filter<String>>,
        history: u32,
    ) -> SubId {
        let channel = ch(channel);
        let o = SubscribeOptions {
            max_logs: 10_000,
            persist_key: Some(key.to_owned()),
            history,
            ..Default::default()
        };
        let restored = self
            .storage
            .get(key)
            .map(|text| persist::decode(text, &channel, 1 << 22, 10_000).unwrap());
        let id = self
            .e
            .subscribe(channel, o, filter, restored, self.now, str::to_owned)
            .unwrap();
        self.apply();
        id
    }

    fn unmount(&mut self, id: SubId) {
        self.e.unsubscribe(id, self.now);
        self.apply();
    }

    /// A reload: the page goes (flushing, like `pagehide`), a new engine
    /// starts over the same storage and the same gateway.
    fn reload(&mut self, flush: bool) {
        if flush {
            self.e.flush(self.now);
            self.apply();
        }
        self.e = engine();
        self.m.stream = None;
    }

    /// Executes effects: streams open at once, writes go to storage.
    fn apply(&mut self) {
        loop {
            let effects = self.e.take_effects();
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                match effect {
                    Effect::Open { query, generation } => {
                        self.m.open(&query, generation);
                        self.e.on_open(generation, self.now);
                    }
                    Effect::CloseStream => self.m.stream = None,
                    Effect::Persist { sub, key, text } => match self.failing {
                        None => {
                            self.storage.insert(key, text);
                        }
                        Some(quota) => self.e.persist_failed(sub, quota, self.now),
                    },
                    Effect::Forget { key } => {
                        self.storage.remove(&key);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Delivers up to `n` queued events of the current stream.
    fn deliver(&mut self, n: usize) {
        for _ in 0..n {
            let Some((g, _, events)) = &mut self.m.stream else {
                break;
            };
            let g = *g;
            let Some((event, data)) = events.pop_front() else {
                break;
            };
            self.e.ingest(g, &event, &data, self.now, str::to_owned);
            self.apply();
        }
    }

    /// Lets `ms` pass like a browser would: every queued event delivered,
    /// every timer run when due (the gateway's pings keep the stream up).
    fn wait(&mut self, ms: u64) {
        let until = self.now + ms;
        for _ in 0..10_000 {
            self.deliver(usize::MAX);
            match self.e.next_deadline() {
                Some(t) if t <= until => self.now = self.now.max(t),
                _ => break,
            }
            if let Some((g, _, _)) = &self.m.stream {
                self.e.ingest(*g, "ping", "{}", self.now, str::to_owned);
            }
            self.e.on_timer(self.now);
            self.apply();
        }
        self.now = until;
    }

    fn publish(&mut self, channel: &str, n: usize) {
        for _ in 0..n {
            self.m.publish(ch(channel));
        }
    }

    fn stored_cursor(&self, key: &str) -> Option<String> {
        // The envelope's own fields come before `logs`.
        let head = self.storage.get(key)?.split("\"logs\":").next()?;
        let at = head.find("\"cursor\":\"")? + "\"cursor\":\"".len();
        Some(head[at..].split('"').next()?.to_owned())
    }
}

const ETL: &str = "logs:etl:ws1:wf9";
const FAAS: &str = "logs:faas:ws1:f1";

/// The reported flow: a restored subscription with no new log, then logs
/// published while its page is away. None may be lost, none shown twice.
#[test]
fn a_restored_channel_keeps_its_cursor_when_no_new_log_arrives() {
    let mut t = Tab::new();
    let etl = t.mount(ETL, "etl", None);
    t.wait(25);
    t.publish(ETL, 35);
    t.wait(2_000);
    assert_eq!(seqs(&t.e, etl).len(), 35);
    // To the FAAS page and back, nothing published meanwhile.
    t.unmount(etl);
    let faas = t.mount(FAAS, "faas", None);
    t.wait(2_000);
    t.unmount(faas);
    let etl = t.mount(ETL, "etl", None);
    t.wait(1_200);
    t.wait(2_000);
    assert_eq!(seqs(&t.e, etl).len(), 35);
    assert_eq!(t.stored_cursor("etl").as_deref(), Some("ab-35"));
    // Away again; 5 logs published; back.
    t.unmount(etl);
    let faas = t.mount(FAAS, "faas", None);
    t.wait(2_000);
    t.publish(ETL, 5);
    t.wait(100);
    t.unmount(faas);
    let etl = t.mount(ETL, "etl", None);
    t.wait(2_000);
    assert_eq!(seqs(&t.e, etl), (1..=40).collect::<Vec<u64>>());
    // A reload with nothing new, away, 10 published, back.
    t.reload(true);
    let etl = t.mount(ETL, "etl", None);
    t.wait(2_000);
    assert_eq!(seqs(&t.e, etl).len(), 40);
    t.unmount(etl);
    let faas = t.mount(FAAS, "faas", None);
    t.wait(2_000);
    t.publish(ETL, 10);
    t.wait(100);
    t.unmount(faas);
    let etl = t.mount(ETL, "etl", None);
    t.wait(2_000);
    assert_eq!(seqs(&t.e, etl), (1..=50).collect::<Vec<u64>>());
}

/// A live subscription that never got a log still resumes where the
/// gateway confirmed it, after a reload.
#[test]
fn a_quiet_channel_persists_the_cursor_the_gateway_confirmed() {
    let mut t = Tab::new();
    t.publish(ETL, 3);
    let etl = t.mount(ETL, "etl", None);
    t.wait(2_000);
    assert!(seqs(&t.e, etl).is_empty());
    assert_eq!(t.stored_cursor("etl").as_deref(), Some("ab-3"));
    t.reload(false);
    t.publish(ETL, 2);
    let etl = t.mount(ETL, "etl", None);
    t.wait(2_000);
    assert_eq!(seqs(&t.e, etl), vec![4, 5]);
}

// ----- the resume-point property -------------------------------------------

/// One persisted view of a page (a `useLogsSSE` with a persistence key).
struct View {
    channel: &'static str,
    key: &'static str,
    history: u32,
    /// Keeps nothing: the resume point must move all the same.
    rejects_all: bool,
}

const VIEWS: [View; 3] = [
    View {
        channel: ETL,
        key: "etl",
        history: 0,
        rejects_all: false,
    },
    View {
        channel: "logs:etl:ws1",
        key: "etl-service",
        history: 0,
        rejects_all: true,
    },
    View {
        channel: ETL,
        key: "etl-tail",
        history: 3,
        rejects_all: false,
    },
];

/// What the test knows about one view across mounts and reloads.
#[derive(Default, Clone)]
struct Lineage {
    sub: Option<SubId>,
    /// The last subscription mounted (its final write follows the unmount).
    last: Option<SubId>,
    /// The seq after which this view must hold every log of its channel
    /// (None until the view was first placed).
    start: Option<u64>,
    /// A write of this view's record failed, or a reload did not flush:
    /// the stored record may be stale or missing.
    lossy_storage: bool,
}

#[derive(Debug, Clone)]
enum POp {
    Publish(usize),
    Deliver(usize),
    Toggle(usize),
    /// A co-holder of the ETL channel without persistence.
    ToggleShared,
    Wait(u64),
    Reload {
        flush: bool,
    },
    Storage(Option<bool>),
    Drop,
    GatewayClose,
}

fn pop() -> impl Strategy<Value = POp> {
    prop_oneof![
        4 => (0usize..3).prop_map(POp::Publish),
        4 => (1usize..8).prop_map(POp::Deliver),
        3 => (0usize..3).prop_map(POp::Toggle),
        1 => Just(POp::ToggleShared),
        3 => prop_oneof![0u64..100, 1_000u64..3_000].prop_map(POp::Wait),
        1 => proptest::bool::weighted(0.7).prop_map(|flush| POp::Reload { flush }),
        1 => prop_oneof![Just(None), Just(Some(true)), Just(Some(false))].prop_map(POp::Storage),
        1 => Just(POp::Drop),
        1 => Just(POp::GatewayClose),
    ]
}

impl Tab {
    fn mount_view(&mut self, v: usize, lineage: &mut Lineage) {
        let view = &VIEWS[v];
        let had_point = lineage.start.is_some();
        let stored = self.storage.contains_key(view.key);
        if had_point && !lineage.lossy_storage {
            // The invariant's first half: a view that had a resume point
            // finds it in storage.
            assert!(stored, "{}: the resume point was not stored", view.key);
        }
        if !stored {
            // Nothing to resume from (storage failed): a new lineage.
            lineage.start = None;
        }
        lineage.lossy_storage = false;
        let filter: Option<Filter<String>> = view
            .rejects_all
            .then(|| Box::new(|_: &String| false) as Filter<String>);
        let channel = ch(view.channel);
        let o = SubscribeOptions {
            max_logs: 10_000,
            persist_key: Some(view.key.to_owned()),
            history: view.history,
            ..Default::default()
        };
        let restored = self
            .storage
            .get(view.key)
            .map(|text| persist::decode(text, &channel, 1 << 22, 10_000).unwrap());
        let id = self
            .e
            .subscribe(channel, o, filter, restored, self.now, str::to_owned)
            .unwrap();
        lineage.sub = Some(id);
        lineage.last = Some(id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A persisted view that had a resume point keeps it through every
    /// sequence of mount, unmount, linger expiry, reload and restore, with
    /// or without new logs, whatever its filter, and through failing
    /// storage writes (then its record is stale, never wrong): once settled
    /// it holds every log of its channel after its first point, each once,
    /// in order. The model never loses history, so no gap may be reported.
    #[test]
    fn persisted_views_resume_after_their_last_log(
        ops in proptest::collection::vec(pop(), 1..100),
        control in proptest::bool::ANY,
    ) {
        let publish_to = [ch(ETL), ch("logs:etl:ws1:wf8"), ch(FAAS)];
        let mut t = Tab::new();
        // With the control endpoint, restores behind the stream rewind live.
        t.m.control = control;
        let mut lineages: Vec<Lineage> = vec![Lineage::default(); VIEWS.len()];
        let mut shared: Option<SubId> = None;
        let mut gaps = 0;
        // Places views whose first resume point just appeared.
        let note = |t: &Tab, lineages: &mut [Lineage]| {
            for l in lineages.iter_mut() {
                if let (None, Some(id)) = (l.start, l.sub) {
                    l.start = t.e.subscription(id).and_then(|s| s.cursor).map(|c| c.seq);
                }
            }
        };
        let step = |t: &mut Tab, lineages: &mut Vec<Lineage>, gaps: &mut usize| {
            // Like `apply`, noting gaps and failed writes.
            loop {
                let effects = t.e.take_effects();
                if effects.is_empty() {
                    break;
                }
                for effect in effects {
                    match effect {
                        Effect::Open { query, generation } => {
                            t.m.open(&query, generation);
                            t.e.on_open(generation, t.now);
                        }
                        Effect::CloseStream => t.m.stream = None,
                        Effect::Persist { sub, key, text } => match t.failing {
                            None => { t.storage.insert(key, text); }
                            Some(quota) => {
                                if let Some(l) = lineages.iter_mut().find(|l| l.last == Some(sub)) {
                                    l.lossy_storage = true;
                                }
                                t.e.persist_failed(sub, quota, t.now);
                            }
                        },
                        Effect::Forget { key } => { t.storage.remove(&key); }
                        Effect::Update { update: Update::Gap { .. }, .. } => *gaps += 1,
                        // Answered at once, after the gateway queued the change.
                        Effect::ChangeChannels { change, request, .. } => {
                            t.m.change(&change);
                            let ok = ProbeResult::Http { status: 200, code: None, message: None };
                            t.e.on_channels_answer(request, ok, t.now);
                        }
                        _ => {}
                    }
                }
            }
            note(t, lineages);
        };
        let deliver = |t: &mut Tab, lineages: &mut Vec<Lineage>, gaps: &mut usize, n: usize| {
            for _ in 0..n {
                let Some((g, _, events)) = &mut t.m.stream else { break };
                let g = *g;
                let Some((event, data)) = events.pop_front() else { break };
                t.e.ingest(g, &event, &data, t.now, str::to_owned);
                step(t, lineages, gaps);
            }
        };
        let wait = |t: &mut Tab, lineages: &mut Vec<Lineage>, gaps: &mut usize, ms: u64| {
            let until = t.now + ms;
            for _ in 0..10_000 {
                deliver(t, lineages, gaps, usize::MAX);
                match t.e.next_deadline() {
                    Some(d) if d <= until => t.now = t.now.max(d),
                    _ => break,
                }
                if let Some((g, _, _)) = &t.m.stream {
                    t.e.ingest(*g, "ping", "{}", t.now, str::to_owned);
                }
                t.e.on_timer(t.now);
                step(t, lineages, gaps);
            }
            t.now = until;
        };
        for op in ops {
            match op {
                POp::Publish(i) => t.m.publish(publish_to[i].clone()),
                POp::Deliver(n) => deliver(&mut t, &mut lineages, &mut gaps, n),
                POp::Toggle(v) => match lineages[v].sub.take() {
                    Some(id) => { t.e.unsubscribe(id, t.now); }
                    None => t.mount_view(v, &mut lineages[v]),
                },
                POp::ToggleShared => match shared.take() {
                    Some(id) => { t.e.unsubscribe(id, t.now); }
                    None => shared = Some(sub(&mut t.e, ETL, t.now)),
                },
                POp::Wait(ms) => wait(&mut t, &mut lineages, &mut gaps, ms),
                POp::Reload { flush } => {
                    if flush {
                        t.e.flush(t.now);
                        step(&mut t, &mut lineages, &mut gaps);
                    }
                    let mounted: Vec<usize> = (0..VIEWS.len()).filter(|v| lineages[*v].sub.is_some()).collect();
                    for l in lineages.iter_mut() {
                        l.lossy_storage |= !flush;
                        // A new engine numbers its subscriptions afresh.
                        l.sub = None;
                        l.last = None;
                    }
                    shared = None;
                    t.reload(false);
                    // The page comes back with the same views mounted.
                    for v in mounted {
                        t.mount_view(v, &mut lineages[v]);
                    }
                }
                POp::Storage(failing) => t.failing = failing,
                POp::Drop => {
                    if let Some((g, _, _)) = &t.m.stream {
                        let g = *g;
                        t.e.on_error(g, true, t.now);
                    }
                }
                POp::GatewayClose => {
                    if let Some((g, _, _)) = &t.m.stream {
                        let g = *g;
                        t.e.ingest(g, "close", r#"{"reason":"shutdown","message":"bye","retryMs":100}"#, t.now, str::to_owned);
                    }
                }
            }
            step(&mut t, &mut lineages, &mut gaps);
        }
        // Settle: storage works, every view is mounted, a last reload.
        t.failing = None;
        for (v, l) in lineages.iter_mut().enumerate() {
            if l.sub.is_none() {
                t.mount_view(v, l);
            }
        }
        wait(&mut t, &mut lineages, &mut gaps, 3_000);
        t.e.flush(t.now);
        step(&mut t, &mut lineages, &mut gaps);
        for l in lineages.iter_mut() {
            l.sub = None;
            l.last = None;
        }
        t.reload(false);
        for (v, l) in lineages.iter_mut().enumerate() {
            t.mount_view(v, l);
        }
        for _ in 0..5 {
            wait(&mut t, &mut lineages, &mut gaps, 3_000);
        }
        prop_assert_eq!(gaps, 0);
        for (view, l) in VIEWS.iter().zip(&lineages) {
            let id = l.sub.unwrap();
            let channel = ch(view.channel);
            let covered: Vec<u64> = t.m.history.iter()
                .filter(|(c, _)| channel.covers(c))
                .map(|(_, s)| *s)
                .collect();
            let got = seqs(&t.e, id);
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "{}: {:?}", view.key, got);
            prop_assert!(got.iter().all(|s| covered.contains(s)), "{}: {:?}", view.key, got);
            let start = l.start.expect("placed");
            if view.rejects_all {
                prop_assert!(got.is_empty());
            } else {
                for s in covered.iter().filter(|s| **s > start) {
                    prop_assert!(got.contains(s), "{} lost {} (after {}): {:?}", view.key, s, start, got);
                }
            }
            // The resume point reached the channel's newest log.
            let point = t.e.subscription(id).unwrap().cursor.map(|c| c.seq);
            prop_assert!(point >= covered.last().copied(), "{}: at {:?}", view.key, point);
        }
    }
}

/// `history: N` backfills a channel nobody placed yet, asks again after a
/// drop before the gateway answered, and yields to a restored cursor.
#[test]
fn history_backfills_until_there_is_a_resume_point() {
    let mut t = Tab::new();
    t.publish(ETL, 10);
    let o = SubscribeOptions {
        history: 4,
        persist_key: Some("etl".into()),
        ..Default::default()
    };
    let id = sub_with(&mut t.e, ETL, o, 0);
    t.e.on_timer(25);
    let first = opens(&t.e.take_effects());
    assert_eq!(
        first[0].0,
        format!("channels={ETL}&since={ETL}@last:4"),
        "backfill on the wire"
    );
    // The stream drops before any status: backfill again, not live.
    t.e.on_error(first[0].1, true, 25);
    t.now = 25;
    t.e.take_effects();
    t.wait(5_000);
    assert_eq!(seqs(&t.e, id), vec![7, 8, 9, 10]);
    assert_eq!(t.stored_cursor("etl").as_deref(), Some("ab-10"));
    // Restored with a cursor: it resumes there and does not backfill again.
    t.unmount(id);
    t.wait(2_000);
    t.publish(ETL, 1);
    let id = t.mount_with(ETL, "etl", None, 4);
    t.e.on_timer(t.now + 25);
    assert_eq!(
        opens(&t.e.take_effects())[0].0,
        format!("channels={ETL}&since={ETL}@ab-10")
    );
    t.m.stream = None;
    t.e.on_error(t.e.generation(), true, t.now + 25);
    t.wait(5_000);
    assert_eq!(seqs(&t.e, id), vec![7, 8, 9, 10, 11]);
    // A second subscription asking for history on the shared channel gets
    // the newest logs its co-holder keeps, at most `maxLogs` of them.
    let o = SubscribeOptions {
        history: 3,
        max_logs: 2,
        ..Default::default()
    };
    let other = sub_with(&mut t.e, ETL, o, t.now);
    assert_eq!(seqs(&t.e, other), vec![10, 11]);
}

/// A restored point from another gateway epoch than the channel's is
/// reported as a gap to that subscription, and only to it.
#[test]
fn a_point_from_another_epoch_joining_a_shared_channel_reports_a_gap() {
    let mut t = Tab::new();
    let live = sub(&mut t.e, ETL, 0);
    t.wait(25);
    t.publish(ETL, 2);
    t.wait(100);
    let restored = Restored {
        cursor: Some(Cursor::new(Epoch(0x99), 40)),
        logs: Vec::new(),
    };
    let o = SubscribeOptions {
        persist_key: Some("old".into()),
        ..Default::default()
    };
    let id =
        t.e.subscribe(ch(ETL), o, None, Some(restored), t.now, str::to_owned)
            .unwrap();
    let gaps: Vec<SubId> =
        t.e.take_effects()
            .into_iter()
            .filter_map(|x| match x {
                Effect::Update {
                    sub,
                    update: Update::Gap { .. },
                } => Some(sub),
                _ => None,
            })
            .collect();
    assert_eq!(gaps, vec![id]);
    // It continues from the channel's position with the co-holder.
    t.publish(ETL, 1);
    t.wait(100);
    assert_eq!(seqs(&t.e, id), vec![3]);
    assert_eq!(seqs(&t.e, live), vec![1, 2, 3]);
}

/// After a reload, a restored record ahead of the channel's position (its
/// older logs trimmed away) joins the view that placed the channel. What a
/// backfill copies from it, and what it parks as the last holder when the
/// views leave and come back in turn before the stream opens, lies after
/// the channel's first position: a subscription taking it must not stay
/// behind it (its record would hold logs after its cursor, which a restore
/// rejects, dropping the resume point). The view returning from the older
/// point gets everything after it from the stream; every record is valid.
#[test]
fn a_restored_point_ahead_of_the_channel_moves_its_position() {
    let mut t = Tab::new();
    t.publish(ETL, 4);
    let etl = ch(ETL);
    let at = |seq| Some(Cursor::new(Epoch(EPOCH), seq));
    let record = |cursor, logs: &[String]| {
        persist::encode(&etl, cursor, 0, logs.iter().map(|l| l.as_str()), 1 << 20).unwrap()
    };
    t.storage.insert("etl".into(), record(at(0), &[]));
    t.storage
        .insert("tail".into(), record(at(4), &[log(ETL, 3), log(ETL, 4)]));
    // Mounted in this order, nothing delivered in between.
    let first = t.mount(ETL, "etl", None);
    let tail = t.mount(ETL, "tail", None);
    let within = |t: &Tab, id: SubId| {
        let s = t.e.subscription(id).unwrap();
        let ok = s.buffer.entries().all(|l| Some(l.cursor) <= s.cursor);
        assert!(
            ok,
            "a log after the resume point: {:?} at {:?}",
            seqs(&t.e, id),
            s.cursor
        );
    };
    // A backfill copies the co-holder's newest logs: its point follows.
    let o = SubscribeOptions {
        history: 3,
        ..Default::default()
    };
    let backfilled = sub_with(&mut t.e, ETL, o, t.now);
    assert_eq!(seqs(&t.e, backfilled), vec![3, 4]);
    within(&t, backfilled);
    t.unmount(backfilled);
    t.unmount(first);
    t.unmount(tail);
    let first = t.mount(ETL, "etl", None);
    within(&t, first);
    t.wait(2_000);
    assert_eq!(seqs(&t.e, first), vec![1, 2, 3, 4]);
    for key in ["etl", "tail"] {
        let text = &t.storage[key];
        persist::decode(text, &etl, 1 << 22, 10_000).unwrap_or_else(|e| panic!("{key}: {e:?}"));
    }
    assert_eq!(t.stored_cursor("etl").as_deref(), Some("ab-4"));
}

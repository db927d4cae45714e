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
        let channel = ch(channel);
        let o = SubscribeOptions {
            max_logs: 10_000,
            persist_key: Some(key.to_owned()),
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

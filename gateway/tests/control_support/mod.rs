//! Test support for channel changes: a stream opened with its control
//! secret and read by a task, a publisher that publishes continuously, and
//! the model every stream must satisfy across changes.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logs_sse_protocol::{Channel, ChannelStatus, StatusKind};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::support::*;

/// The channel markers are published to; every test stream carries it.
pub const MARK: &str = "logs:function:ws1:mark";

/// One event of a stream, parsed.
#[derive(Debug, Clone)]
pub enum Ev {
    Status(ChannelStatus),
    Log(Received),
    Other(String, String),
}

/// A stream with its control credentials, read by a background task.
pub struct Controlled {
    pub id: String,
    pub secret: String,
    pub events: mpsc::UnboundedReceiver<Ev>,
    /// Every event taken so far, in order.
    pub taken: Vec<Ev>,
    reader: JoinHandle<()>,
}

impl Drop for Controlled {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Opens a stream with `request` and reads its `hello`.
pub async fn open_controlled(gw: &TestGateway, request: reqwest::RequestBuilder) -> Controlled {
    let mut stream = gw.open_request(request).await;
    let hello = stream.next_event().await;
    assert_eq!(hello.event, "hello");
    let hello: Value = serde_json::from_str(&hello.data).unwrap();
    let id = hello["connectionId"].as_str().unwrap().to_owned();
    let secret = hello["controlSecret"]
        .as_str()
        .expect("hello carries a controlSecret")
        .to_owned();
    let (tx, events) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(event) = stream.next_event_or_end(Duration::from_secs(30)).await {
            let ev = match event.event.as_str() {
                "status" => Ev::Status(serde_json::from_str(&event.data).unwrap()),
                "log" => Ev::Log(parse_log(&event.data)),
                other => Ev::Other(other.to_owned(), event.data),
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    });
    Controlled {
        id,
        secret,
        events,
        taken: Vec::new(),
        reader,
    }
}

impl Controlled {
    /// The next event, failing after [`WAIT`].
    pub async fn next(&mut self) -> Ev {
        let ev = tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("an event before the timeout")
            .expect("the stream is open");
        self.taken.push(ev.clone());
        ev
    }

    /// Reads until a log of [`MARK`] with `logData.mark == n`.
    pub async fn until_mark(&mut self, n: u64) {
        loop {
            if let Ev::Log(log) = self.next().await {
                if log.channel == MARK && log.data["mark"].as_u64() == Some(n) {
                    return;
                }
            }
        }
    }

    /// Whether the stream ended (its reader stopped) within `wait`.
    pub async fn ended_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => self.taken.push(ev),
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Sends a change; returns the status and the JSON answer.
pub async fn change(
    gw: &TestGateway,
    id: &str,
    secret: &str,
    body: &Value,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request = gw
        .http
        .post(gw.url(&format!("/api/logs/stream/{id}/channels")))
        .header("x-stream-secret", secret)
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("control request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Publishes a marker (`logData.mark`) and returns once it is stored.
pub async fn mark(gw: &TestGateway, n: u64) {
    let (status, body) = gw
        .publish(
            FUNCTION_TOKEN,
            &json!({"service": "function", "workspace_id": "ws1", "resource_id": "mark", "logData": {"mark": n}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

/// A published log: its resource channel and sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Published {
    pub channel: String,
    pub seq: u64,
}

/// Publishes one log to each of `channels` (resource channels) per round
/// until stopped, recording what was stored.
pub struct Publisher {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
    pub published: Arc<Mutex<Vec<Published>>>,
}

fn token_for(service: &str) -> &'static str {
    match service {
        "etl" => ETL_TOKEN,
        "faas" => FAAS_TOKEN,
        _ => FUNCTION_TOKEN,
    }
}

impl Publisher {
    pub fn start(gw: &TestGateway, channels: &[&str], pause: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(Mutex::new(Vec::new()));
        let http = gw.http.clone();
        let url = gw.url("/api/logs/publish");
        let channels: Vec<Channel> = channels.iter().map(|c| c.parse().unwrap()).collect();
        let task = tokio::spawn({
            let stop = stop.clone();
            let published = published.clone();
            async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut by_service: HashMap<&str, Vec<Value>> = HashMap::new();
                    for channel in &channels {
                        n += 1;
                        let mut parts = channel.as_str().split(':').skip(1);
                        let (service, ws, res) = (
                            parts.next().unwrap(),
                            parts.next().unwrap(),
                            parts.next().unwrap(),
                        );
                        by_service.entry(service).or_default().push(json!({
                            "service": service, "workspace_id": ws, "resource_id": res,
                            "logData": {"n": n}
                        }));
                    }
                    for (service, batch) in by_service {
                        let response = http
                            .post(&url)
                            .bearer_auth(token_for(service))
                            .json(&batch)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 202);
                        let body: Value = response.json().await.unwrap();
                        let mut out = published.lock().unwrap();
                        for c in body["cursors"].as_array().unwrap() {
                            let cursor: logs_sse_protocol::Cursor =
                                c["cursor"].as_str().unwrap().parse().unwrap();
                            out.push(Published {
                                channel: c["channel"].as_str().unwrap().to_owned(),
                                seq: cursor.seq,
                            });
                        }
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        });
        Publisher {
            stop,
            task,
            published,
        }
    }

    /// Stops and returns everything published.
    pub async fn stop(self) -> Vec<Published> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let published = self.published.lock().unwrap().clone();
        published
    }
}

/// One change as the model sees it: what was asked and what was answered.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub remove: Vec<String>,
    /// Channels that were added (not carried before, not denied).
    pub added: Vec<String>,
}

fn family(channel: &str) -> String {
    channel
        .parse::<Channel>()
        .unwrap()
        .service_level()
        .to_string()
}

fn covers(channel: &str, log: &str) -> bool {
    channel
        .parse::<Channel>()
        .unwrap()
        .covers(&log.parse().unwrap())
}

/// One carrying of a channel: from its status to its removal's marker.
#[derive(Debug)]
struct Instance {
    channel: String,
    start: u64,
    /// Set at the marker after the change that removed it.
    ended: bool,
    /// Removal asked, not yet certain (before its marker).
    leaving: bool,
    /// Highest sequence number of its logs received while carried.
    max_seen: u64,
    last_seq: u64,
}

/// Checks a stream's events against the model, given the changes (marker
/// `i + 1` follows change `i`; marker 0 follows the open) and everything
/// published (the stream was read up to a marker published after the
/// publisher stopped):
///
/// - each log is wanted: some channel carried (or being removed) covers it
///   and started before it; after a removal's marker, no log only it
///   covered arrives;
/// - no log arrives twice while a channel that brought it is carried;
/// - per channel, logs after its status come in cursor order;
/// - per channel, no hole: every published log it covers between its
///   start and the newest one it received arrived, and a channel carried
///   to the end received all of them.
pub fn check_model(events: &[Ev], changes: &[Change], published: &[Published], ordered: bool) {
    if std::env::var("CONTROL_TRACE").is_ok() {
        for (n, c) in changes.iter().enumerate() {
            eprintln!("change {n}: {c:?}");
        }
        for (n, ev) in events.iter().enumerate() {
            match ev {
                Ev::Status(s) => eprintln!(
                    "#{n} status {} {:?} {:?} {}",
                    s.channel,
                    s.status,
                    s.cursor.map(|c| c.seq),
                    s.replayed
                ),
                Ev::Log(l) => eprintln!("#{n} log {} {} {}", l.channel, l.seq, l.data),
                Ev::Other(a, b) => eprintln!("#{n} {a} {b}"),
            }
        }
    }
    let mut instances: Vec<Instance> = Vec::new();
    let mut markers = 0usize;
    // Per log: the instances that covered it when it arrived.
    let mut got: HashMap<(String, u64), Vec<usize>> = HashMap::new();
    for (position, ev) in events.iter().enumerate() {
        match ev {
            Ev::Status(status) => {
                if status.status == StatusKind::Denied {
                    continue;
                }
                let live = instances
                    .iter()
                    .any(|i| !i.ended && i.channel == status.channel.as_str());
                assert!(!live, "#{position}: a second status for {}", status.channel);
                let start = status.cursor.unwrap().seq;
                instances.push(Instance {
                    channel: status.channel.to_string(),
                    start,
                    ended: false,
                    leaving: false,
                    max_seen: start,
                    last_seq: start,
                });
            }
            Ev::Log(log) if log.channel == MARK => {
                if let Some(n) = log.data["mark"].as_u64() {
                    let n = n as usize;
                    assert_eq!(n, markers, "markers in order");
                    markers += 1;
                    // Marker n follows change n - 1: its removals are done,
                    // and the next change's removals may start.
                    if n >= 1 {
                        for i in instances.iter_mut().filter(|i| i.leaving) {
                            i.ended = true;
                        }
                    }
                    if let Some(next) = changes.get(n) {
                        for i in instances.iter_mut().filter(|i| !i.ended) {
                            if next.remove.contains(&i.channel) {
                                i.leaving = true;
                            }
                        }
                    }
                }
            }
            Ev::Log(log) => {
                let f = family(&log.channel);
                let covering: Vec<usize> = instances
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| {
                        !i.ended
                            && family(&i.channel) == f
                            && covers(&i.channel, &log.channel)
                            && log.seq > i.start
                    })
                    .map(|(k, _)| k)
                    .collect();
                assert!(
                    !covering.is_empty(),
                    "#{position}: {} {} arrived but no carried channel wants it",
                    log.channel,
                    log.cursor
                );
                let key = (log.channel.clone(), log.seq);
                if let Some(before) = got.get(&key) {
                    let still = before.iter().any(|k| !instances[*k].ended);
                    assert!(
                        !still,
                        "#{position}: {} {} arrived twice",
                        log.channel, log.cursor
                    );
                }
                for k in &covering {
                    let i = &mut instances[*k];
                    if ordered {
                        assert!(
                            log.seq > i.last_seq,
                            "#{position}: {} {} after {} on {}",
                            log.channel,
                            log.cursor,
                            i.last_seq,
                            i.channel
                        );
                    }
                    i.last_seq = i.last_seq.max(log.seq);
                    // A channel being removed may be gone already: the log
                    // may have come through another one.
                    if !i.leaving {
                        i.max_seen = i.max_seen.max(log.seq);
                    }
                }
                got.insert(key, covering);
            }
            Ev::Other(name, data) => panic!("#{position}: unexpected {name} {data}"),
        }
    }
    assert_eq!(markers, changes.len() + 2, "every marker arrived");
    let received: HashSet<(String, u64)> = got.keys().cloned().collect();
    for i in &instances {
        let f = family(&i.channel);
        let upto = if i.ended { i.max_seen } else { u64::MAX };
        for p in published {
            if family(&p.channel) == f
                && covers(&i.channel, &p.channel)
                && p.seq > i.start
                && p.seq <= upto
            {
                assert!(
                    received.contains(&(p.channel.clone(), p.seq)),
                    "{} (from {}) lost {}@{}",
                    i.channel,
                    i.start,
                    p.channel,
                    p.seq
                );
            }
        }
    }
}

pub fn stream_query(channels: &[&str]) -> String {
    format!("channels={MARK},{}", channels.join(","))
}

/// Opens an anonymous stream on `channels` (plus the marker channel) and
/// reads its statuses.
pub async fn open(gw: &TestGateway, channels: &[&str]) -> Controlled {
    let mut stream = open_controlled(gw, gw.stream_request(&stream_query(channels))).await;
    for _ in 0..=channels.len() {
        assert!(matches!(stream.next().await, Ev::Status(_)));
    }
    stream
}

/// Reads events for `wait` more: on Redis, logs of other families may
/// still be on their way when the final marker arrives.
pub async fn settle(stream: &mut Controlled) {
    let wait = if on_redis() { 500 } else { 50 };
    let _ = stream.ended_within(Duration::from_millis(wait)).await;
}

/// Runs `steps` on a stream opened on `initial` on the first of `nodes`
/// while `publishing` is published to through the last, each change sent
/// to the next node in turn and followed by a marker, then checks the
/// model.
pub async fn run_changes(
    nodes: &[&TestGateway],
    initial: &[&str],
    publishing: &[&str],
    steps: &[Value],
) {
    let gw = *nodes.last().unwrap();
    let mut stream = open(nodes[0], initial).await;
    let publisher = Publisher::start(gw, publishing, Duration::from_millis(2));
    mark(gw, 0).await;
    stream.until_mark(0).await;
    let mut changes = Vec::new();
    for (n, body) in steps.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let target = nodes[n % nodes.len()];
        let (status, answer) = change(target, &stream.id, &stream.secret, body, None).await;
        assert_eq!(status, 200, "{answer}");
        changes.push(change_of(body, &answer));
        mark(gw, n as u64 + 1).await;
        stream.until_mark(n as u64 + 1).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let published = publisher.stop().await;
    let last = steps.len() as u64 + 1;
    mark(gw, last).await;
    stream.until_mark(last).await;
    settle(&mut stream).await;
    check_model(&stream.taken, &changes, &published, true);
}

/// What the model needs of a change: its removals and the channels it
/// added (answered with a status that is not denied).
pub fn change_of(body: &Value, answer: &Value) -> Change {
    let remove = body["remove"]
        .as_array()
        .map(|a| a.iter().map(|c| c.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    let added = answer["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "denied")
        .map(|s| s["channel"].as_str().unwrap().to_owned())
        .collect();
    Change { remove, added }
}

use super::*;
use crate::core::auth::{Token, MIN_EXPIRED_STREAM_MS, TOKEN_TIMEOUT_MS};
use crate::core::options::{RawSubscribeOptions, SubscribeOptions};
use crate::core::persist::{self, Restored, RestoredLog};
use crate::core::registry::{Position, Start};
use crate::core::status::{ProbeResult, Reason, PROBE_TIMEOUT_MS};
use logs_sse_protocol::{Epoch, ResumeFrom, StatusKind, StreamQuery};
use proptest::prelude::*;

const EPOCH: u64 = 0xab;

fn ch(s: &str) -> Channel {
    s.parse().unwrap()
}

fn engine_with(opts: ClientOptions) -> Engine<String> {
    Engine::new(opts, Box::new(|| 0.5))
}

fn engine() -> Engine<String> {
    engine_with(ClientOptions::default())
}

fn sub(e: &mut Engine<String>, channel: &str, now: u64) -> SubId {
    sub_with(e, channel, SubscribeOptions::default(), now)
}

/// Subscribes with options (no filter, no restored record).
fn sub_with(e: &mut Engine<String>, channel: &str, opts: SubscribeOptions, now: u64) -> SubId {
    e.subscribe(ch(channel), opts, None, None, now, str::to_owned)
        .unwrap()
}

fn log(channel: &str, seq: u64) -> String {
    format!(
        r#"{{"channel":"{channel}","cursor":"{EPOCH:x}-{seq}","ts":1,"logData":{{"n":{seq}}}}}"#
    )
}

fn status(channel: &str, kind: &str, seq: Option<u64>) -> String {
    match seq {
        Some(s) => format!(
            r#"{{"channel":"{channel}","status":"{kind}","cursor":"{EPOCH:x}-{s}","replayed":0}}"#
        ),
        None => format!(r#"{{"channel":"{channel}","status":"{kind}","reason":"nope"}}"#),
    }
}

fn hello() -> String {
    format!(r#"{{"connectionId":"c1","epoch":"{EPOCH:x}","heartbeatMs":15000}}"#)
}

fn opens(effects: &[Effect]) -> Vec<(String, u64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Open { query, generation } => Some((query.clone(), *generation)),
            _ => None,
        })
        .collect()
}

fn seqs(e: &Engine<String>, id: SubId) -> Vec<u64> {
    e.subscription(id)
        .unwrap()
        .buffer
        .entries()
        .map(|x| x.cursor.seq)
        .collect()
}

/// Opens the stream: timer, open event, hello.
fn connect(e: &mut Engine<String>, now: u64) -> Vec<Effect> {
    e.on_timer(now);
    let effects = e.take_effects();
    let g = e.generation();
    e.on_open(g, now);
    e.ingest(g, "hello", &hello(), now, str::to_owned);
    effects
}

#[test]
fn many_subscriptions_share_one_coalesced_stream() {
    let mut e = engine();
    let a = sub(&mut e, "logs:etl:ws1:wf9", 0);
    let _b = sub(&mut e, "logs:etl:ws1:wf9", 1);
    let _c = sub(&mut e, "logs:faas:ws1", 2);
    assert_eq!(e.next_deadline(), Some(25));
    e.on_timer(24);
    assert!(opens(&e.take_effects()).is_empty());
    e.on_timer(25);
    let effects = e.take_effects();
    assert_eq!(
        opens(&effects),
        vec![("channels=logs:etl:ws1:wf9,logs:faas:ws1".to_owned(), 1)]
    );
    assert_eq!(e.status().state, ConnectionState::Connecting);
    e.on_open(1, 30);
    assert_eq!(e.status().state, ConnectionState::Open);
    assert!(e.unsubscribe(a, 40));
    e.on_timer(10_000);
    assert!(
        opens(&e.take_effects()).is_empty(),
        "a shared channel stays"
    );
}

#[test]
fn routes_by_coverage_and_advances_every_covering_cursor() {
    let mut e = engine();
    let wf9 = sub(&mut e, "logs:etl:ws1:wf9", 0);
    let svc = sub(&mut e, "logs:etl:ws1", 0);
    let other = sub(&mut e, "logs:etl:ws1:wf8", 0);
    connect(&mut e, 25);
    let g = e.generation();
    for (c, s) in [
        ("logs:etl:ws1:wf9", 1),
        ("logs:etl:ws1:wf7", 2),
        ("logs:etl:ws1:wf9", 3),
    ] {
        e.ingest(g, "log", &log(c, s), 30, str::to_owned);
    }
    assert_eq!(seqs(&e, wf9), vec![1, 3]);
    assert_eq!(seqs(&e, svc), vec![1, 2, 3]);
    assert_eq!(seqs(&e, other), Vec::<u64>::new());
    assert_eq!(e.channel_cursor(&ch("logs:etl:ws1")).unwrap().seq, 3);
    assert_eq!(e.channel_cursor(&ch("logs:etl:ws1:wf9")).unwrap().seq, 3);
    assert_eq!(e.channel_cursor(&ch("logs:etl:ws1:wf8")), None);
    // The payload is the raw event text, handed over untouched.
    let first = e
        .subscription(wf9)
        .unwrap()
        .buffer
        .entries()
        .next()
        .unwrap();
    assert_eq!(first.payload, log("logs:etl:ws1:wf9", 1));
    let updates = e
        .take_effects()
        .into_iter()
        .filter(|x| {
            matches!(
                x,
                Effect::Update {
                    update: Update::Logs { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(updates, 5);
}

#[test]
fn duplicate_logs_are_dropped_and_payload_built_once() {
    let mut e = engine();
    let a = sub(&mut e, "logs:etl:ws1:wf9", 0);
    let b = sub(&mut e, "logs:etl:ws1", 0);
    connect(&mut e, 25);
    let g = e.generation();
    let mut calls = 0;
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 1), 30, |s| {
        calls += 1;
        s.to_owned()
    });
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 1), 30, |s| {
        calls += 1;
        s.to_owned()
    });
    assert_eq!(calls, 1);
    assert_eq!(seqs(&e, a), vec![1]);
    assert_eq!(seqs(&e, b), vec![1]);
    assert_eq!(e.stats().duplicates, 2);
}

#[test]
fn channel_changes_reconnect_once_with_cursors() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    connect(&mut e, 25);
    let g = e.generation();
    e.ingest(
        g,
        "status",
        &status("logs:etl:ws1:wf9", "subscribed", Some(10)),
        26,
        str::to_owned,
    );
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 12), 27, str::to_owned);
    e.take_effects();
    sub(&mut e, "logs:faas:ws1:a", 100);
    sub(&mut e, "logs:faas:ws1:b", 110);
    e.on_timer(125);
    let effects = e.take_effects();
    assert_eq!(
        opens(&effects),
        vec![(
            "channels=logs:etl:ws1:wf9,logs:faas:ws1:a,logs:faas:ws1:b&since=logs:etl:ws1:wf9@ab-12"
                .to_owned(),
            2
        )]
    );
    // The old stream's events are ignored from now on.
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 13), 130, str::to_owned);
    assert_eq!(e.channel_cursor(&ch("logs:etl:ws1:wf9")).unwrap().seq, 12);
}

#[test]
fn linger_keeps_a_released_channel_and_hands_its_logs_to_the_next_subscriber() {
    let mut e = engine();
    let a = sub(&mut e, "logs:etl:ws1:wf9", 0);
    sub(&mut e, "logs:etl:ws1:wf1", 0);
    connect(&mut e, 25);
    let g = e.generation();
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 1), 30, str::to_owned);
    // StrictMode: unmount and mount again at once.
    e.unsubscribe(a, 40);
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 2), 41, str::to_owned);
    let a2 = sub(&mut e, "logs:etl:ws1:wf9", 42);
    assert_eq!(seqs(&e, a2), vec![1, 2]);
    e.on_timer(5_000);
    assert!(opens(&e.take_effects()).is_empty());
    // Released for good: after the linger, one reconnect without it.
    e.unsubscribe(a2, 6_000);
    assert_eq!(e.next_deadline(), Some(7_500));
    e.on_timer(7_500);
    e.on_timer(7_525);
    assert_eq!(
        opens(&e.take_effects()),
        vec![("channels=logs:etl:ws1:wf1".to_owned(), 2)]
    );
}

#[test]
fn last_channel_released_goes_idle() {
    let mut e = engine();
    let a = sub(&mut e, "logs:etl:ws1:wf9", 0);
    connect(&mut e, 25);
    e.take_effects();
    e.unsubscribe(a, 30);
    e.on_timer(1_530);
    e.on_timer(1_555);
    let effects = e.take_effects();
    assert!(effects.contains(&Effect::CloseStream));
    assert_eq!(e.status().state, ConnectionState::Idle);
}

#[test]
fn failed_open_probes_and_unauthorised_is_fatal() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.on_error(1, true, 100);
    let effects = e.take_effects();
    assert!(effects.contains(&Effect::CloseStream));
    assert!(effects.contains(&Effect::Probe {
        query: "channels=logs:etl:ws1:wf9".into(),
        generation: 1,
    }));
    assert_eq!(e.status().state, ConnectionState::Reconnecting);
    assert_eq!(e.status().attempt, 1);
    e.on_probe(
        1,
        ProbeResult::from_http(
            401,
            r#"{"error":{"code":"unauthorized","message":"sign in"}}"#,
        ),
        true,
        150,
    );
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Failed);
    assert_eq!(s.reason, Some(Reason::Unauthorized));
    assert_eq!(s.http_status, Some(401));
    assert_eq!(s.message.as_deref(), Some("sign in"));
    // No retry while failed...
    assert_eq!(e.next_deadline(), None);
    // ...until the channel set changes.
    sub(&mut e, "logs:etl:ws1:wf8", 200);
    e.on_timer(225);
    assert_eq!(opens(&e.take_effects()).len(), 1);
    assert_eq!(e.status().state, ConnectionState::Connecting);
}

#[test]
fn a_silent_stream_is_dropped_and_reconnected() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    let g = e.generation();
    e.on_open(g, 30);
    e.ingest(
        g,
        "hello",
        r#"{"connectionId":"c1","epoch":"ab","heartbeatMs":1000}"#,
        40,
        str::to_owned,
    );
    assert_eq!(e.silence_limit_ms(), 2_500);
    assert_eq!(e.next_deadline(), Some(40 + 2_500));
    // Pings (and any other event) keep it alive; the deadline does not
    // move per event, only when the timer runs.
    e.take_effects();
    let mut now = 40;
    for _ in 0..10 {
        now += 900;
        let before = e.next_deadline();
        e.ingest(g, "ping", "{}", now, str::to_owned);
        assert_eq!(e.next_deadline(), before);
        if before.is_some_and(|d| d <= now) {
            e.on_timer(now);
        }
    }
    assert_eq!(e.status().state, ConnectionState::Open);
    assert!(e.take_effects().is_empty());
    // Then silence: dropped exactly 2.5 heartbeats after the last event.
    let last = now;
    loop {
        let d = e.next_deadline().unwrap();
        assert!(d <= last + 2_500, "{d}");
        e.on_timer(d);
        if d == last + 2_500 {
            break;
        }
        assert_eq!(e.status().state, ConnectionState::Open);
    }
    let effects = e.take_effects();
    assert!(effects.contains(&Effect::CloseStream));
    assert!(!effects.iter().any(|x| matches!(x, Effect::Probe { .. })));
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Reconnecting);
    assert_eq!(s.reason, Some(Reason::Network));
    assert_eq!(
        s.message.as_deref(),
        Some("the stream went silent: no event for 2500 ms")
    );
    assert_eq!(s.attempt, 1);
    // Events of the dropped stream no longer count.
    e.ingest(g, "ping", "{}", last + 2_600, str::to_owned);
    assert_eq!(e.status().state, ConnectionState::Reconnecting);
    // Backoff, then a new stream that resumes the channel.
    e.on_timer(e.next_deadline().unwrap());
    let o = opens(&e.take_effects());
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].1, g + 1);
}

#[test]
fn a_stream_that_never_opens_is_dropped_and_probed() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    // No hello yet: the default heartbeat (15 s) sets the limit.
    assert_eq!(e.silence_limit_ms(), 37_500);
    assert_eq!(e.next_deadline(), Some(25 + 37_500));
    e.on_timer(25 + 37_499);
    assert_eq!(e.status().state, ConnectionState::Connecting);
    e.on_timer(25 + 37_500);
    let effects = e.take_effects();
    assert!(effects.contains(&Effect::CloseStream));
    assert!(effects.contains(&Effect::Probe {
        query: "channels=logs:etl:ws1:wf9".into(),
        generation: 1,
    }));
    assert_eq!(
        e.status().message.as_deref(),
        Some("the stream did not open: no answer for 37500 ms")
    );
    // A hanging probe times out into a reason.
    e.on_probe(
        1,
        ProbeResult::timed_out(PROBE_TIMEOUT_MS),
        true,
        25 + 42_500,
    );
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Reconnecting);
    assert_eq!(s.reason, Some(Reason::GatewayUnreachable));
    assert_eq!(
        s.message.as_deref(),
        Some("gateway unreachable: no answer within 5000 ms")
    );
}

#[test]
fn announced_heartbeats_are_bounded() {
    for (announced, limit) in [
        ("0", 2_500),
        ("1", 2_500),
        ("20000", 50_000),
        ("99999999999", 9_000_000),
        ("null", 37_500),
    ] {
        let mut e = engine();
        sub(&mut e, "logs:etl:ws1:wf9", 0);
        e.on_timer(25);
        let g = e.generation();
        let hello = format!(r#"{{"connectionId":"c1","epoch":"ab","heartbeatMs":{announced}}}"#);
        e.ingest(g, "hello", &hello, 30, str::to_owned);
        assert_eq!(e.silence_limit_ms(), limit, "{announced}");
        assert_eq!(e.next_deadline(), Some(30 + limit));
        assert_eq!(e.status().state, ConnectionState::Open);
    }
}

#[test]
fn unreachable_gateway_keeps_retrying_with_growing_backoff() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    let mut now = 25;
    let mut delays = Vec::new();
    for attempt in 1..=7 {
        let g = e.generation();
        e.on_error(g, true, now);
        e.on_probe(
            g,
            ProbeResult::Unreachable {
                message: "Failed to fetch".into(),
            },
            true,
            now,
        );
        assert_eq!(e.status().reason, Some(Reason::GatewayUnreachable));
        assert_eq!(e.status().attempt, attempt);
        let due = e.next_deadline().unwrap();
        delays.push(due - now);
        now = due;
        e.on_timer(now);
        assert_eq!(e.status().state, ConnectionState::Reconnecting);
    }
    // rng = 0.5: halfway between 500 and min(30000, 500 * 2^n).
    assert_eq!(
        delays,
        vec![750, 1_250, 2_250, 4_250, 8_250, 15_250, 15_250]
    );
    // A healthy connection resets the attempt counter.
    let g = e.generation();
    e.on_open(g, now);
    assert_eq!(e.status().attempt, 7);
    e.on_error(g, true, now + 10_000);
    assert_eq!(e.status().attempt, 1);
}

#[test]
fn a_probe_answering_after_the_retry_began_still_explains_the_failure() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    let first = e.generation();
    e.on_error(first, true, 30);
    // The backoff elapses before the probe answers: the retry is opening.
    let due = e.next_deadline().unwrap();
    e.on_timer(due);
    assert_eq!(e.generation(), first + 1);
    e.take_effects();
    e.on_probe(
        first,
        ProbeResult::Unreachable {
            message: "Failed to fetch".into(),
        },
        true,
        due + 5,
    );
    assert_eq!(e.status().reason, Some(Reason::GatewayUnreachable));
    assert_eq!(e.status().state, ConnectionState::Reconnecting);

    // A fatal verdict ends the retry in flight.
    e.on_error(first + 1, true, due + 10);
    let due = e.next_deadline().unwrap();
    e.on_timer(due);
    e.take_effects();
    e.on_probe(
        first + 1,
        ProbeResult::Http {
            status: 400,
            code: Some("too_many_channels".into()),
            message: Some("65 channels requested".into()),
        },
        true,
        due + 5,
    );
    assert_eq!(e.status().state, ConnectionState::Failed);
    assert!(e
        .take_effects()
        .iter()
        .any(|x| matches!(x, Effect::CloseStream)));

    // Once a stream opened, an old verdict is ignored.
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    let g = e.generation();
    e.on_error(g, true, 30);
    let due = e.next_deadline().unwrap();
    e.on_timer(due);
    e.on_open(g + 1, due + 1);
    e.on_probe(
        g,
        ProbeResult::Unreachable {
            message: "x".into(),
        },
        true,
        due + 2,
    );
    assert_eq!(e.status().state, ConnectionState::Open);
}

#[test]
fn online_event_reconnects_at_once() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    connect(&mut e, 25);
    e.on_error(1, false, 100);
    assert_eq!(e.status().reason, Some(Reason::Network));
    assert_eq!(
        e.status().message.as_deref(),
        Some("the browser is offline")
    );
    assert!(!e
        .take_effects()
        .iter()
        .any(|x| matches!(x, Effect::Probe { .. })));
    e.on_online(110);
    assert_eq!(opens(&e.take_effects()).len(), 1);
}

#[test]
fn gateway_close_waits_retry_ms_and_resumes() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    connect(&mut e, 25);
    let g = e.generation();
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 5), 30, str::to_owned);
    e.ingest(
        g,
        "close",
        r#"{"reason":"slow_consumer","message":"too slow","retryMs":200}"#,
        40,
        str::to_owned,
    );
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Reconnecting);
    assert_eq!(s.reason, Some(Reason::GatewayClosed));
    assert_eq!(s.code.as_deref(), Some("slow_consumer"));
    assert_eq!(s.retry_in_ms, Some(200));
    assert!(e.take_effects().contains(&Effect::CloseStream));
    e.on_timer(240);
    assert_eq!(
        opens(&e.take_effects()),
        vec![(
            "channels=logs:etl:ws1:wf9&since=logs:etl:ws1:wf9@ab-5".to_owned(),
            2
        )]
    );
}

#[test]
fn gaps_and_denials_reach_the_subscriber() {
    let mut e = engine();
    let a = sub(&mut e, "logs:etl:ws1:wf9", 0);
    let d = sub(&mut e, "logs:etl:ws2:wf9", 0);
    connect(&mut e, 25);
    let g = e.generation();
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 5), 30, str::to_owned);
    e.take_effects();
    e.ingest(
        g,
        "status",
        &status("logs:etl:ws1:wf9", "gap", Some(90)),
        31,
        str::to_owned,
    );
    e.ingest(
        g,
        "status",
        &status("logs:etl:ws2:wf9", "denied", None),
        31,
        str::to_owned,
    );
    let effects = e.take_effects();
    assert!(effects.contains(&Effect::Update {
        sub: a,
        update: Update::Gap {
            from: Some(Cursor::new(Epoch(EPOCH), 5)),
            to: Some(Cursor::new(Epoch(EPOCH), 90)),
            reason: None
        }
    }));
    assert!(effects.contains(&Effect::Update {
        sub: d,
        update: Update::Status {
            status: StatusKind::Denied,
            cursor: None,
            reason: Some("nope".into()),
            replayed: 0
        }
    }));
    assert_eq!(e.subscription(d).unwrap().status, Some(StatusKind::Denied));
    assert_eq!(e.stats().gaps, 1);
}

#[test]
fn malformed_and_stale_events_are_ignored_with_a_diagnostic() {
    let mut e = engine();
    let a = sub(&mut e, "logs:etl:ws1:wf9", 0);
    connect(&mut e, 25);
    e.take_effects();
    let g = e.generation();
    for (event, data) in [
        ("log", "not json"),
        (
            "log",
            r#"{"channel":"bad channel","cursor":"ab-1","ts":1,"logData":{}}"#,
        ),
        (
            "log",
            r#"{"channel":"logs:etl:ws1:wf9","cursor":"zz","ts":1,"logData":{}}"#,
        ),
        ("status", "{}"),
        ("close", r#"{"reason":"bored"}"#),
        ("hello", "[]"),
    ] {
        e.ingest(g, event, data, 30, str::to_owned);
    }
    e.ingest(g, "some_future_event", "{}", 30, str::to_owned);
    e.ingest(g + 7, "log", &log("logs:etl:ws1:wf9", 1), 30, str::to_owned);
    assert_eq!(e.stats().malformed, 6);
    let diags = e
        .take_effects()
        .into_iter()
        .filter(|x| {
            matches!(
                x,
                Effect::Diagnostic {
                    kind: Diagnostic::MalformedEvent,
                    ..
                }
            )
        })
        .count();
    assert_eq!(diags, 6);
    assert!(seqs(&e, a).is_empty());
    assert_eq!(e.status().state, ConnectionState::Open);
}

#[test]
fn filters_apply_but_cursors_still_advance() {
    let mut e = engine();
    let f: Filter<String> = Box::new(|raw: &String| raw.contains("\"n\":2"));
    let a = e
        .subscribe(
            ch("logs:etl:ws1:wf9"),
            SubscribeOptions::default(),
            Some(f),
            None,
            0,
            str::to_owned,
        )
        .unwrap();
    connect(&mut e, 25);
    let g = e.generation();
    for s in 1..=3 {
        e.ingest(g, "log", &log("logs:etl:ws1:wf9", s), 30, str::to_owned);
    }
    assert_eq!(seqs(&e, a), vec![2]);
    assert_eq!(e.stats().filtered, 2);
    assert_eq!(e.channel_cursor(&ch("logs:etl:ws1:wf9")).unwrap().seq, 3);
}

fn persisted(opts: &mut SubscribeOptions) {
    opts.persist_key = Some("k".into());
}

#[test]
fn persistence_is_throttled_and_restores_with_the_cursor() {
    let mut e = engine();
    let mut o = SubscribeOptions::default();
    persisted(&mut o);
    let a = sub_with(&mut e, "logs:etl:ws1:wf9", o.clone(), 0);
    connect(&mut e, 25);
    let g = e.generation();
    e.take_effects();
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 1), 100, str::to_owned);
    assert_eq!(e.next_deadline(), Some(100));
    e.on_timer(100);
    let writes: Vec<Effect> = e
        .take_effects()
        .into_iter()
        .filter(|x| matches!(x, Effect::Persist { .. }))
        .collect();
    assert_eq!(writes.len(), 1);
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 2), 200, str::to_owned);
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 3), 300, str::to_owned);
    assert_eq!(e.next_deadline(), Some(1_100));
    e.on_timer(500);
    assert!(!e
        .take_effects()
        .iter()
        .any(|x| matches!(x, Effect::Persist { .. })));
    e.on_timer(1_100);
    let text = e
        .take_effects()
        .into_iter()
        .find_map(|x| match x {
            Effect::Persist { sub, key, text } if sub == a && key == "k" => Some(text),
            _ => None,
        })
        .unwrap();
    // Reload: a new client restores logs and resumes after the cursor.
    let channel = ch("logs:etl:ws1:wf9");
    let restored = persist::decode(&text, &channel, 1 << 20, 1000).unwrap();
    let mut e2 = engine();
    let b = e2
        .subscribe(channel, o, None, Some(restored), 0, str::to_owned)
        .unwrap();
    assert_eq!(seqs(&e2, b), vec![1, 2, 3]);
    e2.on_timer(25);
    assert_eq!(
        opens(&e2.take_effects()),
        vec![(
            "channels=logs:etl:ws1:wf9&since=logs:etl:ws1:wf9@ab-3".to_owned(),
            1
        )]
    );
}

#[test]
fn unsubscribe_and_close_flush_persistence() {
    let mut e = engine();
    let mut o = SubscribeOptions::default();
    persisted(&mut o);
    let a = sub_with(&mut e, "logs:etl:ws1:wf9", o.clone(), 0);
    let b = sub_with(&mut e, "logs:etl:ws1:wf8", o, 0);
    connect(&mut e, 25);
    let g = e.generation();
    e.on_timer(26);
    e.take_effects();
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 1), 30, str::to_owned);
    e.ingest(g, "log", &log("logs:etl:ws1:wf8", 2), 30, str::to_owned);
    e.on_timer(30);
    e.take_effects();
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 3), 40, str::to_owned);
    e.ingest(g, "log", &log("logs:etl:ws1:wf8", 4), 40, str::to_owned);
    e.unsubscribe(a, 41);
    assert!(e
        .take_effects()
        .iter()
        .any(|x| matches!(x, Effect::Persist { sub, .. } if *sub == a)));
    e.close(42);
    let effects = e.take_effects();
    assert!(effects
        .iter()
        .any(|x| matches!(x, Effect::Persist { sub, .. } if *sub == b)));
    assert!(effects.contains(&Effect::CloseStream));
    assert_eq!(e.status().state, ConnectionState::Closed);
    assert_eq!(
        e.subscribe(
            ch("logs:a:b"),
            SubscribeOptions::default(),
            None,
            None,
            50,
            str::to_owned
        ),
        Err(SubscribeError::Closed)
    );
}

#[test]
fn quota_errors_shrink_the_budget_without_stopping_the_stream() {
    let mut e = engine();
    let mut o = SubscribeOptions::default();
    persisted(&mut o);
    let a = sub_with(&mut e, "logs:etl:ws1:wf9", o, 0);
    connect(&mut e, 25);
    let g = e.generation();
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 1), 30, str::to_owned);
    e.on_timer(30);
    let start = e.persist_budget(a).unwrap();
    let mut now = 30;
    for _ in 0..20 {
        e.persist_failed(a, true, now);
        now += 1;
        e.on_timer(now);
    }
    assert_eq!(e.persist_budget(a), Some(MIN_PERSIST_BUDGET));
    assert!(start > MIN_PERSIST_BUDGET);
    assert!(e.take_effects().iter().any(|x| matches!(
        x,
        Effect::Diagnostic {
            kind: Diagnostic::Storage,
            ..
        }
    )));
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 2), now, str::to_owned);
    assert_eq!(seqs(&e, a), vec![1, 2]);
    // Storage unusable: persistence stops for this subscription, streaming goes on.
    e.persist_failed(a, false, now);
    e.ingest(
        g,
        "log",
        &log("logs:etl:ws1:wf9", 3),
        now + 1,
        str::to_owned,
    );
    e.flush(now + 2);
    assert!(!e
        .take_effects()
        .iter()
        .any(|x| matches!(x, Effect::Persist { .. })));
    assert_eq!(e.status().state, ConnectionState::Open);
}

#[test]
fn limits_are_enforced() {
    let mut e = engine_with(ClientOptions {
        max_subscriptions: 2,
        max_channels: 2,
        ..Default::default()
    });
    let a = sub(&mut e, "logs:a:b:c1", 0);
    sub(&mut e, "logs:a:b:c2", 0);
    assert_eq!(
        e.subscribe(
            ch("logs:a:b:c3"),
            SubscribeOptions::default(),
            None,
            None,
            0,
            str::to_owned
        ),
        Err(SubscribeError::TooManySubscriptions(2))
    );
    e.unsubscribe(a, 1);
    // c1 lingers; a new channel evicts it rather than failing.
    sub(&mut e, "logs:a:b:c3", 2);
    assert_eq!(e.registry.len(), 2);
}

#[test]
fn resume_from_option_applies_to_new_channels() {
    let mut e = engine();
    let o = RawSubscribeOptions {
        resume_from: Some("earliest".into()),
        ..Default::default()
    }
    .validate("logs:a:b")
    .unwrap();
    assert_eq!(o.resume_from, ResumeFrom::Earliest);
    sub_with(&mut e, "logs:a:b", o, 0);
    e.on_timer(25);
    assert_eq!(
        opens(&e.take_effects())[0].0,
        "channels=logs:a:b&since=logs:a:b@earliest"
    );
}

#[test]
fn restored_logs_are_filtered_and_bounded() {
    let channel = ch("logs:etl:ws1:wf9");
    let restored = Restored {
        cursor: Some(Cursor::new(Epoch(EPOCH), 9)),
        logs: (1..=9)
            .map(|s| RestoredLog {
                cursor: Cursor::new(Epoch(EPOCH), s),
                raw: log("logs:etl:ws1:wf9", s),
            })
            .collect(),
    };
    let mut e = engine();
    let o = SubscribeOptions {
        max_logs: 3,
        ..Default::default()
    };
    let f: Filter<String> = Box::new(|raw: &String| !raw.contains("\"n\":9"));
    let a = e
        .subscribe(channel, o, Some(f), Some(restored), 0, str::to_owned)
        .unwrap();
    assert_eq!(seqs(&e, a), vec![6, 7, 8]);
}

// ----- subscriber tokens ---------------------------------------------------

fn tok(s: &str) -> Option<Token> {
    Token::accept(s.to_owned()).unwrap()
}

fn with_getter() -> Engine<String> {
    let mut e = engine();
    e.set_auth(true, None);
    e
}

fn fetches(effects: &[Effect]) -> Vec<u64> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::FetchToken { request } => Some(*request),
            _ => None,
        })
        .collect()
}

/// A query split into its stream part and its token.
fn split_token(query: &str) -> (String, Option<String>) {
    match query.split_once("&access_token=") {
        Some((q, t)) => (q.to_owned(), Some(t.to_owned())),
        None => (query.to_owned(), None),
    }
}

/// `(query, token)` of every `Open`.
fn opened(effects: &[Effect]) -> Vec<(String, Option<String>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Open { query, .. } => Some(split_token(query)),
            _ => None,
        })
        .collect()
}

fn probed_token(effects: &[Effect]) -> Option<Option<String>> {
    effects.iter().find_map(|e| match e {
        Effect::Probe { query, .. } => Some(split_token(query).1),
        _ => None,
    })
}

/// Answers the pending fetch with `token` and opens the stream it asked for.
fn answer_and_open(e: &mut Engine<String>, request: u64, token: &str, now: u64) -> Vec<Effect> {
    e.on_token(request, Ok(Some(token.to_owned())), now);
    let effects = e.take_effects();
    let g = e.generation();
    e.on_open(g, now);
    e.ingest(g, "hello", &hello(), now, str::to_owned);
    effects
}

const EXPIRED: &str = r#"{"error":{"code":"expired_token","message":"the token has expired"}}"#;

#[test]
fn the_getter_is_called_before_the_first_stream_and_its_token_reused() {
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    let effects = e.take_effects();
    assert_eq!(fetches(&effects), vec![1]);
    assert!(opened(&effects).is_empty(), "no stream before the token");
    assert_eq!(e.status().state, ConnectionState::Connecting);
    let effects = answer_and_open(&mut e, 1, "t1", 40);
    assert_eq!(
        opened(&effects),
        vec![(
            "channels=logs:etl:ws1:wf9".to_owned(),
            Some("t1".to_owned())
        )]
    );
    assert_eq!(e.status().state, ConnectionState::Open);
    // A dropped stream reconnects with the cached token: no getter call.
    e.on_error(e.generation(), true, 100);
    e.on_timer(100 + 60_000);
    let effects = e.take_effects();
    assert!(fetches(&effects).is_empty());
    assert_eq!(opened(&effects)[0].1.as_deref(), Some("t1"));
    // Neither does a channel change (reopening: no control secret).
    let g = e.generation();
    e.ingest(g, "hello", &hello(), 60_200, str::to_owned);
    sub(&mut e, "logs:etl:ws1:wf8", 70_000);
    e.on_timer(70_025);
    let effects = e.take_effects();
    assert!(fetches(&effects).is_empty());
    assert_eq!(opened(&effects).len(), 1);
    assert_eq!(opened(&effects)[0].1.as_deref(), Some("t1"));
}

#[test]
fn a_getter_answering_none_streams_without_a_token() {
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.on_token(1, Ok(None), 30);
    assert_eq!(opened(&e.take_effects())[0].1, None);
    // An empty string counts as none too.
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.on_token(1, Ok(Some(String::new())), 30);
    assert_eq!(opened(&e.take_effects())[0].1, None);
}

#[test]
fn a_static_token_is_sent_and_a_getter_refreshes_it() {
    // Token only: sent, and after auth_expired the gateway's retryMs is
    // awaited (a cookie or the same token may still be refused: the probe
    // will say so).
    let mut e = engine();
    e.set_auth(false, tok("static"));
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    let effects = connect(&mut e, 25);
    assert!(fetches(&effects).is_empty());
    assert_eq!(opened(&effects)[0].1.as_deref(), Some("static"));
    e.ingest(
        e.generation(),
        "close",
        r#"{"reason":"auth_expired","message":"your token expired","retryMs":2000}"#,
        9_000,
        str::to_owned,
    );
    let effects = e.take_effects();
    assert!(fetches(&effects).is_empty() && opened(&effects).is_empty());
    assert_eq!(e.status().code.as_deref(), Some("auth_expired"));
    assert_eq!(e.status().retry_in_ms, Some(2_000));
    e.on_timer(11_000);
    assert_eq!(opened(&e.take_effects())[0].1.as_deref(), Some("static"));
    // Token and getter: the token is used first, the getter when it expires.
    let mut e = engine();
    e.set_auth(true, tok("first"));
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    let effects = connect(&mut e, 25);
    assert!(fetches(&effects).is_empty());
    assert_eq!(opened(&effects)[0].1.as_deref(), Some("first"));
    e.ingest(
        e.generation(),
        "close",
        r#"{"reason":"auth_expired","message":"your token expired","retryMs":2000}"#,
        9_000,
        str::to_owned,
    );
    assert_eq!(fetches(&e.take_effects()), vec![1]);
}

#[test]
fn auth_expired_fetches_a_fresh_token_and_resumes_from_the_cursors_at_once() {
    let mut e = with_getter();
    let a = sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    answer_and_open(&mut e, 1, "t1", 30);
    let g = e.generation();
    e.ingest(
        g,
        "status",
        &status("logs:etl:ws1:wf9", "subscribed", Some(10)),
        31,
        str::to_owned,
    );
    for seq in [11, 12] {
        e.ingest(g, "log", &log("logs:etl:ws1:wf9", seq), 40, str::to_owned);
    }
    e.take_effects();
    e.ingest(
        g,
        "close",
        r#"{"reason":"auth_expired","message":"your token expired","retryMs":2000}"#,
        3_000,
        str::to_owned,
    );
    let effects = e.take_effects();
    assert!(effects.contains(&Effect::CloseStream));
    assert_eq!(fetches(&effects), vec![2], "the getter, at once");
    assert!(opened(&effects).is_empty());
    // Not after retryMs or a backoff: only the getter's timeout is pending.
    assert_eq!(e.next_deadline(), Some(3_000 + TOKEN_TIMEOUT_MS));
    assert_eq!(e.status().attempt, 0);
    // A stale stream's events change nothing meanwhile.
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 13), 3_001, str::to_owned);
    assert_eq!(seqs(&e, a), vec![11, 12]);
    let effects = answer_and_open(&mut e, 2, "t2", 3_010);
    assert_eq!(
        opened(&effects),
        vec![(
            "channels=logs:etl:ws1:wf9&since=logs:etl:ws1:wf9@ab-12".to_owned(),
            Some("t2".to_owned())
        )]
    );
    assert_eq!(e.status().state, ConnectionState::Open);
    // The new stream's replay continues the buffer without a repeat.
    let g = e.generation();
    for seq in [12, 13, 14] {
        e.ingest(
            g,
            "log",
            &log("logs:etl:ws1:wf9", seq),
            3_020,
            str::to_owned,
        );
    }
    assert_eq!(seqs(&e, a), vec![11, 12, 13, 14]);
}

#[test]
fn a_stream_that_expires_right_after_opening_backs_off() {
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    answer_and_open(&mut e, 1, "almost-expired", 30);
    e.ingest(
        e.generation(),
        "close",
        r#"{"reason":"auth_expired","message":"your token expired","retryMs":100}"#,
        30 + MIN_EXPIRED_STREAM_MS - 1,
        str::to_owned,
    );
    let now = 30 + MIN_EXPIRED_STREAM_MS - 1;
    assert!(fetches(&e.take_effects()).is_empty(), "no getter call yet");
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Reconnecting);
    assert_eq!(s.code.as_deref(), Some("auth_expired"));
    assert_eq!(s.attempt, 1);
    let delay = u64::from(s.retry_in_ms.unwrap());
    assert!(delay >= 500, "{delay}");
    e.on_timer(now + delay - 1);
    assert!(fetches(&e.take_effects()).is_empty());
    e.on_timer(now + delay);
    assert_eq!(fetches(&e.take_effects()), vec![2]);
}

#[test]
fn an_expired_token_gets_one_retry_with_a_fresh_token_then_fails() {
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.on_token(1, Ok(Some("t1".into())), 30);
    e.take_effects();
    e.on_error(1, true, 50);
    let effects = e.take_effects();
    assert_eq!(probed_token(&effects), Some(Some("t1".to_owned())));
    e.on_probe(1, ProbeResult::from_http(401, EXPIRED), true, 60);
    let effects = e.take_effects();
    assert_eq!(fetches(&effects), vec![2], "one immediate retry");
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Reconnecting);
    assert_eq!(s.reason, Some(Reason::Unauthorized));
    assert_eq!(s.code.as_deref(), Some("expired_token"));
    e.on_token(2, Ok(Some("t2".into())), 70);
    assert_eq!(opened(&e.take_effects())[0].1.as_deref(), Some("t2"));
    e.on_error(2, true, 80);
    assert_eq!(probed_token(&e.take_effects()), Some(Some("t2".to_owned())));
    e.on_probe(2, ProbeResult::from_http(401, EXPIRED), true, 90);
    let effects = e.take_effects();
    assert!(
        fetches(&effects).is_empty(),
        "the fresh token was refused too"
    );
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Failed);
    assert_eq!(s.reason, Some(Reason::Unauthorized));
    assert_eq!(s.http_status, Some(401));
    assert_eq!(s.code.as_deref(), Some("expired_token"));
    assert_eq!(s.message.as_deref(), Some("the token has expired"));
    assert_eq!(e.next_deadline(), None);
    // reconnect() starts over with a fresh token and its own retry.
    e.reconnect(1_000);
    assert_eq!(fetches(&e.take_effects()), vec![3]);
    e.on_token(3, Ok(Some("t3".into())), 1_010);
    e.take_effects();
    e.on_error(3, true, 1_020);
    e.take_effects();
    e.on_probe(3, ProbeResult::from_http(401, EXPIRED), true, 1_030);
    assert_eq!(fetches(&e.take_effects()), vec![4]);
}

#[test]
fn other_refusals_fail_at_once_and_retrying_fetches_a_fresh_token() {
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.on_token(1, Ok(Some("garbage".into())), 30);
    e.take_effects();
    e.on_error(1, true, 50);
    e.take_effects();
    e.on_probe(
        1,
        ProbeResult::from_http(
            401,
            r#"{"error":{"code":"invalid_token","message":"the token is not a well-formed JWT"}}"#,
        ),
        true,
        60,
    );
    assert!(fetches(&e.take_effects()).is_empty());
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Failed);
    assert_eq!(s.code.as_deref(), Some("invalid_token"));
    // A channel change retries, with a fresh token.
    sub(&mut e, "logs:etl:ws1:wf8", 100);
    e.on_timer(125);
    assert_eq!(fetches(&e.take_effects()), vec![2]);
    // Without a getter an expired token is final at once.
    let mut e = engine();
    e.set_auth(false, tok("old"));
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.on_error(1, true, 50);
    e.take_effects();
    e.on_probe(1, ProbeResult::from_http(401, EXPIRED), true, 60);
    assert!(fetches(&e.take_effects()).is_empty());
    assert_eq!(e.status().state, ConnectionState::Failed);
    assert_eq!(e.status().code.as_deref(), Some("expired_token"));
}

#[test]
fn forbidden_channels_fail_with_the_gateway_message() {
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws2:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.on_token(1, Ok(Some("t1".into())), 30);
    e.take_effects();
    e.on_error(1, true, 50);
    e.take_effects();
    e.on_probe(
        1,
        ProbeResult::from_http(
            403,
            r#"{"error":{"code":"forbidden_channels","message":"no requested channel may be watched with this token (not granted)"}}"#,
        ),
        true,
        60,
    );
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Failed);
    assert_eq!(s.reason, Some(Reason::Forbidden));
    assert_eq!(s.http_status, Some(403));
    assert_eq!(s.code.as_deref(), Some("forbidden_channels"));
    assert!(s.message.unwrap().starts_with("no requested channel"));
    // New grants may come with a new token: retrying asks for one.
    e.reconnect(100);
    assert_eq!(fetches(&e.take_effects()), vec![2]);
}

#[test]
fn a_failing_or_hanging_getter_is_retried_with_backoff() {
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.on_token(1, Err("TypeError: session lost".into()), 30);
    let effects = e.take_effects();
    assert!(fetches(&effects).is_empty() && opened(&effects).is_empty());
    let s = e.status().clone();
    assert_eq!(s.state, ConnectionState::Reconnecting);
    assert_eq!(s.reason, Some(Reason::Unauthorized));
    assert_eq!(s.code.as_deref(), Some("token_getter_failed"));
    assert_eq!(
        s.message.as_deref(),
        Some("the token getter failed: TypeError: session lost")
    );
    assert_eq!(s.attempt, 1);
    let delay = u64::from(s.retry_in_ms.unwrap());
    assert!(delay > 0);
    assert_eq!(e.next_deadline(), Some(30 + delay));
    e.on_timer(30 + delay - 1);
    assert!(fetches(&e.take_effects()).is_empty(), "no tight loop");
    e.on_timer(30 + delay);
    assert_eq!(fetches(&e.take_effects()), vec![2]);
    // The getter hangs: after the timeout it counts as failed.
    let t = 30 + delay;
    e.on_timer(t + TOKEN_TIMEOUT_MS - 1);
    assert_eq!(e.status().attempt, 1);
    e.on_timer(t + TOKEN_TIMEOUT_MS);
    let s = e.status().clone();
    assert_eq!(s.attempt, 2);
    assert_eq!(
        s.message.as_deref(),
        Some("the token getter did not answer within 10 s")
    );
    // Its late answer is ignored; the next fetch has its own id.
    e.on_token(2, Ok(Some("late".into())), t + TOKEN_TIMEOUT_MS + 1);
    assert!(opened(&e.take_effects()).is_empty());
    e.on_timer(t + TOKEN_TIMEOUT_MS + 60_000);
    assert_eq!(fetches(&e.take_effects()), vec![3]);
    // An oversized token counts as a failure of the getter.
    e.on_token(
        3,
        Ok(Some("x".repeat(crate::core::auth::MAX_TOKEN_BYTES + 1))),
        t + TOKEN_TIMEOUT_MS + 60_001,
    );
    assert_eq!(e.status().code.as_deref(), Some("token_getter_failed"));
    assert!(e.status().message.as_deref().unwrap().contains("16 KiB"));
}

#[test]
fn channel_changes_while_waiting_for_the_token_share_one_fetch() {
    let mut e = with_getter();
    let a = sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    assert_eq!(fetches(&e.take_effects()), vec![1]);
    sub(&mut e, "logs:etl:ws1:wf8", 30);
    e.on_timer(55);
    assert!(fetches(&e.take_effects()).is_empty());
    e.on_token(1, Ok(Some("t".into())), 60);
    assert_eq!(
        opened(&e.take_effects()),
        vec![(
            "channels=logs:etl:ws1:wf8,logs:etl:ws1:wf9".to_owned(),
            Some("t".to_owned())
        )]
    );
    // Everything released while a fetch is pending: idle, answer ignored.
    let mut e = with_getter();
    let b = sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.unsubscribe(b, 30);
    e.on_timer(30 + 1_500);
    e.on_timer(30 + 1_500 + 25);
    assert_eq!(e.status().state, ConnectionState::Idle);
    e.on_token(1, Ok(Some("t".into())), 2_000);
    assert!(opened(&e.take_effects()).is_empty());
    // close() while a fetch is pending: the answer is ignored too.
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.close(30);
    e.on_token(1, Ok(Some("t".into())), 40);
    assert!(opened(&e.take_effects()).is_empty());
    assert_eq!(e.status().state, ConnectionState::Closed);
    let _ = a;
}

#[test]
fn the_token_never_shows_in_statuses_diagnostics_or_persisted_records() {
    const SECRET: &str = "eyJhbGciOiJIUzI1NiJ9.SECRET-PAYLOAD.sig";
    let mut e = with_getter();
    let mut o = SubscribeOptions::default();
    persisted(&mut o);
    sub_with(&mut e, "logs:etl:ws1:wf9", o, 0);
    let mut seen = Vec::new();
    e.on_timer(25);
    seen.extend(e.take_effects());
    e.on_token(1, Ok(Some(SECRET.into())), 30);
    seen.extend(e.take_effects());
    let g = e.generation();
    e.on_error(g, true, 40);
    seen.extend(e.take_effects());
    e.on_probe(g, ProbeResult::from_http(401, EXPIRED), true, 50);
    seen.extend(e.take_effects());
    e.on_token(2, Ok(Some(SECRET.into())), 60);
    seen.extend(e.take_effects());
    let g = e.generation();
    e.on_open(g, 70);
    e.ingest(g, "log", &log("logs:etl:ws1:wf9", 1), 80, str::to_owned);
    e.ingest(g, "log", "garbage", 80, str::to_owned);
    e.flush(90);
    seen.extend(e.take_effects());
    e.ingest(
        g,
        "close",
        r#"{"reason":"auth_expired","message":"your token expired","retryMs":1}"#,
        2_000,
        str::to_owned,
    );
    e.on_token(3, Err(format!("no: {}", "x".repeat(1000))), 2_010);
    seen.extend(e.take_effects());
    assert!(seen.iter().any(|x| matches!(x, Effect::Persist { .. })));
    assert!(seen.iter().any(|x| matches!(x, Effect::Diagnostic { .. })));
    for effect in &seen {
        let text = match effect {
            // The stream URL is where the token belongs.
            Effect::Open { query, .. } | Effect::Probe { query, .. } => {
                assert_eq!(split_token(query).1.as_deref(), Some(SECRET));
                continue;
            }
            Effect::Status(s) => format!("{s:?}"),
            Effect::Persist { text, key, .. } => format!("{key} {text}"),
            Effect::Diagnostic { message, .. } => message.clone(),
            other => format!("{other:?}"),
        };
        assert!(!text.contains("SECRET"), "{text}");
    }
    assert!(format!("{e:?}").len() < 400);
    // The getter's error message is kept short.
    assert!(e.status().message.as_deref().unwrap().len() < 600);
}

// ----- the loss-free property ---------------------------------------------

/// Generation, channels and pending events of the modelled stream.
type Stream = (
    u64,
    Vec<Channel>,
    std::collections::VecDeque<(String, String)>,
);

/// A model of the gateway's stream semantics (not a server): history of
/// every published log, the event queue of the current stream, and the
/// subscriber tokens it issued (`t{n}`; those below `valid_from` expired).
struct Model {
    history: Vec<(Channel, u64)>,
    stream: Option<Stream>,
    issued: u64,
    valid_from: u64,
    /// The fetch the engine waits for, if any.
    fetch: Option<u64>,
    fetches: u64,
    /// Events that justify a fetch: the first stream, `auth_expired`
    /// closes delivered, 401 `expired_token` answers, getter failures.
    fetch_reasons: u64,
    /// The gateway has the control endpoint (its `hello` gives a secret).
    control: bool,
    /// Where each channel of the current stream started: the stream has
    /// every log of it after that (the gateway's rule for what a change's
    /// replay leaves out).
    starts: Vec<(Channel, u64)>,
    /// Control calls not answered yet: (stream generation, request, token, change).
    calls: std::collections::VecDeque<(u64, u64, Option<String>, ChannelChange)>,
    /// The cursor of each subscription's first `status` update.
    first_status: std::collections::HashMap<SubId, u64>,
}

/// How the modelled gateway answers a control call.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Ok,
    /// 404 without applying the change (a stream it does not know).
    NotFound,
    /// The request fails at the network before reaching the gateway.
    Unreachable,
    /// The change is applied but its answer is lost.
    Unanswered,
}

impl Model {
    fn new() -> Self {
        Model {
            history: Vec::new(),
            stream: None,
            issued: 0,
            valid_from: 1,
            fetch: None,
            fetches: 0,
            fetch_reasons: 1,
            control: false,
            starts: Vec::new(),
            calls: Default::default(),
            first_status: Default::default(),
        }
    }

    fn token_valid(&self, token: Option<&str>) -> bool {
        token
            .and_then(|t| t.strip_prefix('t'))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= self.valid_from)
    }

    /// Where a channel's replay starts for `from`, and its status kind.
    fn start_of(&self, channel: &Channel, from: &Position) -> (&'static str, u64) {
        let head = self.history.last().map_or(0, |h| h.1);
        match from {
            Position::After(c) => ("resumed", c.seq),
            Position::Start(Start::Earliest) => ("subscribed", 0),
            Position::Start(Start::Live) => ("subscribed", head),
            Position::Start(Start::Last(n)) => {
                // The n-th newest log of the channel is replayed first.
                let mine: Vec<u64> = self
                    .history
                    .iter()
                    .filter(|(p, _)| channel.covers(p))
                    .map(|(_, s)| *s)
                    .collect();
                let first = mine.len().saturating_sub(*n as usize);
                ("subscribed", first.checked_sub(1).map_or(0, |i| mine[i]))
            }
        }
    }

    /// Applies a control call's change to the stream as the gateway does:
    /// removed channels stop; the added ones get their statuses, then their
    /// replay after `since`, merged, leaving out what the stream's channels
    /// before the call (the removed ones included) brought.
    fn change(&mut self, change: &ChannelChange) {
        let mut queued = Vec::new();
        let mut added = Vec::new();
        for (channel, since) in &change.add {
            let since = since.as_ref().map(|s| format!("{}@{s}", channel.as_str()));
            let (_, from) = parse_query(channel.as_str(), since.as_deref()).remove(0);
            let (kind, after) = self.start_of(channel, &from);
            queued.push((
                "status".to_owned(),
                status(channel.as_str(), kind, Some(after)),
            ));
            added.push((channel.clone(), after));
        }
        for (published, seq) in &self.history {
            let wanted = added
                .iter()
                .any(|(c, after)| c.covers(published) && seq > after);
            let brought = self
                .starts
                .iter()
                .any(|(c, start)| c.covers(published) && seq > start);
            if wanted && !brought {
                queued.push(("log".into(), log(published.as_str(), *seq)));
            }
        }
        self.starts.retain(|(c, _)| !change.remove.contains(c));
        self.starts.extend(added);
        let Some((_, channels, events)) = &mut self.stream else {
            return;
        };
        channels.retain(|c| !change.remove.contains(c));
        channels.extend(change.add.iter().map(|(c, _)| c.clone()));
        events.extend(queued);
    }

    /// Whether the query's token is one the gateway accepts now.
    fn valid(&self, query: &str) -> bool {
        split_token(query)
            .1
            .as_deref()
            .and_then(|t| t.strip_prefix('t'))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= self.valid_from)
    }

    fn open(&mut self, query: &str, generation: u64) {
        let q = split_token(query).0;
        let q = q.strip_prefix("channels=").unwrap();
        let (c, s) = match q.split_once("&since=") {
            Some((c, s)) => (c, Some(s)),
            None => (q, None),
        };
        let parsed = parse_query(c, s);
        let mut events = std::collections::VecDeque::new();
        events.push_back((
            "hello".to_owned(),
            if self.control {
                format!(
                    r#"{{"connectionId":"n1.{generation}","epoch":"{EPOCH:x}","heartbeatMs":15000,"controlSecret":"s{generation}"}}"#
                )
            } else {
                hello()
            },
        ));
        let mut replay_from = Vec::new();
        for (channel, from) in &parsed {
            let (kind, after) = self.start_of(channel, from);
            events.push_back(("status".into(), status(channel.as_str(), kind, Some(after))));
            replay_from.push((channel.clone(), after));
        }
        // Replay merged in seq order, each log once.
        for (published, seq) in &self.history {
            if replay_from
                .iter()
                .any(|(c, after)| c.covers(published) && seq > after)
            {
                events.push_back(("log".into(), log(published.as_str(), *seq)));
            }
        }
        self.starts = replay_from;
        let channels = parsed.into_iter().map(|(c, _)| c).collect();
        self.stream = Some((generation, channels, events));
    }

    fn publish(&mut self, channel: Channel) {
        let seq = self.history.len() as u64 + 1;
        if let Some((_, channels, events)) = &mut self.stream {
            if channels.iter().any(|c| c.covers(&channel)) {
                events.push_back(("log".into(), log(channel.as_str(), seq)));
            }
        }
        self.history.push((channel, seq));
    }

    /// Every token issued so far expires. Like the gateway, an open stream
    /// ends at once with `close` (what was still queued is not sent).
    fn expire(&mut self) {
        self.valid_from = self.issued + 1;
        if let Some((_, _, events)) = &mut self.stream {
            events.clear();
            events.push_back((
                "close".into(),
                r#"{"reason":"auth_expired","message":"your token expired","retryMs":100}"#.into(),
            ));
        }
    }
}

/// Reads the stream query with the gateway's parser.
fn parse_query(channels: &str, since: Option<&str>) -> Vec<(Channel, Position)> {
    StreamQuery::parse(channels, since, 100)
        .unwrap()
        .channels
        .into_iter()
        .map(|(c, from)| {
            let at = match from {
                ResumeFrom::Live => Position::Start(Start::Live),
                ResumeFrom::Earliest => Position::Start(Start::Earliest),
                ResumeFrom::Last(n) => Position::Start(Start::Last(n.get())),
                ResumeFrom::After(c) => Position::After(c),
            };
            (c, at)
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Publish(usize),
    Deliver(usize),
    Drop,
    GatewayClose,
    ToggleExtra(usize),
    Wait(u64),
    /// The stream stays silent past the watchdog's limit.
    Silence,
    /// The subscriber's tokens expire.
    Expire,
    /// The token getter answers (with a fresh token, or fails).
    AnswerToken(bool),
    /// The gateway answers the oldest control call.
    AnswerCall(Answer),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0usize..7).prop_map(Op::Publish),
        4 => (1usize..6).prop_map(Op::Deliver),
        1 => Just(Op::Drop),
        1 => Just(Op::GatewayClose),
        5 => (0usize..5).prop_map(Op::ToggleExtra),
        2 => (0u64..3_000).prop_map(Op::Wait),
        1 => Just(Op::Silence),
        1 => Just(Op::Expire),
        3 => proptest::bool::weighted(0.8).prop_map(Op::AnswerToken),
        4 => prop_oneof![
            6 => Just(Answer::Ok),
            1 => Just(Answer::NotFound),
            1 => Just(Answer::Unreachable),
            1 => Just(Answer::Unanswered),
        ]
        .prop_map(Op::AnswerCall),
    ]
}

/// Executes the engine's effects against the model until there are none:
/// streams open (or are refused for an expired token, which the probe then
/// reports), token fetches wait for an `AnswerToken`.
fn apply(e: &mut Engine<String>, m: &mut Model, now: u64) {
    loop {
        let effects = e.take_effects();
        if effects.is_empty() {
            return;
        }
        for effect in effects {
            match effect {
                Effect::Open { query, generation } => {
                    if m.valid(&query) {
                        m.open(&query, generation);
                        e.on_open(generation, now);
                    } else {
                        m.stream = None;
                        e.on_error(generation, true, now);
                    }
                }
                Effect::Probe { query, generation } if !m.valid(&query) => {
                    m.fetch_reasons += 1;
                    e.on_probe(generation, ProbeResult::from_http(401, EXPIRED), true, now);
                }
                Effect::FetchToken { request } => {
                    m.fetch = Some(request);
                    m.fetches += 1;
                }
                Effect::Status(s) if s.code.as_deref() == Some("token_getter_failed") => {
                    m.fetch_reasons += 1;
                }
                // The getter did not answer the control call's retry in time.
                Effect::Status(s)
                    if s.fallback == Some(crate::core::status::Fallback::Timeout)
                        && m.fetch.is_some() =>
                {
                    m.fetch_reasons += 1;
                }
                Effect::CloseStream => m.stream = None,
                Effect::Update {
                    sub,
                    update:
                        Update::Status {
                            cursor: Some(c), ..
                        },
                } => {
                    m.first_status.entry(sub).or_insert(c.seq);
                }
                Effect::ChangeChannels {
                    secret,
                    token,
                    change,
                    request,
                    ..
                } => {
                    let generation = m.stream.as_ref().map_or(0, |s| s.0);
                    assert_eq!(
                        secret.0,
                        format!("s{generation}"),
                        "the stream's own secret"
                    );
                    let token = token.map(|t| t.as_str().to_owned());
                    m.calls.push_back((generation, request, token, change));
                }
                _ => {}
            }
        }
    }
}

/// The gateway's answer to the oldest control call.
fn answer_call(e: &mut Engine<String>, m: &mut Model, answer: Answer, now: u64) {
    let Some((generation, request, token, change)) = m.calls.pop_front() else {
        return;
    };
    let ok = ProbeResult::Http {
        status: 200,
        code: None,
        message: None,
    };
    let current = m.stream.as_ref().is_some_and(|s| s.0 == generation);
    let result = if !current {
        ProbeResult::from_http(
            404,
            r#"{"error":{"code":"unknown_stream","message":"gone"}}"#,
        )
    } else if !m.token_valid(token.as_deref()) {
        m.fetch_reasons += 1;
        ProbeResult::from_http(401, EXPIRED)
    } else {
        match answer {
            Answer::Ok => {
                m.change(&change);
                ok
            }
            Answer::NotFound => ProbeResult::from_http(404, "{}"),
            Answer::Unreachable => ProbeResult::Unreachable {
                message: "Failed to fetch".into(),
            },
            Answer::Unanswered => {
                m.change(&change);
                ProbeResult::Unreachable {
                    message: "Failed to fetch".into(),
                }
            }
        }
    };
    e.on_channels_answer(request, result, now);
}

fn answer_token(e: &mut Engine<String>, m: &mut Model, ok: bool, now: u64) {
    if let Some(request) = m.fetch.take() {
        if ok {
            m.issued += 1;
            e.on_token(request, Ok(Some(format!("t{}", m.issued))), now);
        } else {
            e.on_token(request, Err("offline".into()), now);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever happens to the connection, the channel set and the token,
    /// every subscription that stays ends up with every log of its
    /// channels published after the gateway first confirmed it: none lost,
    /// none twice, in order. The token getter is called only when a stream
    /// needs a fresh token. Channel changes go live against a gateway with
    /// the control endpoint (answered OK, 404, unreachable, applied with
    /// the answer lost, or never, the stream dropping meanwhile), including
    /// backfills next to channels that cover them, and by reopening
    /// against one without.
    #[test]
    fn nothing_lost_nothing_repeated(
        ops in proptest::collection::vec(op(), 1..160),
        control in proptest::bool::weighted(0.8),
        calm in proptest::bool::weighted(0.4),
        linger in prop_oneof![Just(0u32), Just(1_500)],
    ) {
        // A calm run keeps its stream: many changes on one open stream.
        let ops = ops.into_iter().map(|op| match op {
            Op::Drop | Op::GatewayClose | Op::Silence | Op::Expire if calm => Op::Deliver(3),
            op => op,
        });
        let publish_to = [ch("logs:etl:ws1:wf9"), ch("logs:etl:ws1:wf8"), ch("logs:faas:ws1:f1"), ch("logs:etl:ws2:wf9"), ch("logs:faas:ws1:x1"), ch("logs:function:ws1:g1"), ch("logs:function:ws1:g2")];
        // Live, backfills, a backfill overlapping a held channel, and a
        // family of their own where one may linger while the other comes.
        let extras = [
            ("logs:faas:ws1:x1", 3),
            ("logs:faas:ws1:x2", 0),
            ("logs:etl:ws1:wf8", 2),
            ("logs:function:ws1", 4),
            ("logs:function:ws1:g1", 2),
        ];
        let mut e = engine_with(ClientOptions { linger_ms: linger, ..Default::default() });
        e.set_auth(true, None);
        let mut m = Model::new();
        m.control = control;
        let watched = ["logs:etl:ws1:wf9", "logs:etl:ws1", "logs:faas:ws1:f1"];
        let ids: Vec<SubId> = watched.iter().map(|c| {
            let o = SubscribeOptions { max_logs: 10_000, ..Default::default() };
            sub_with(&mut e, c, o, 0)
        }).collect();
        let mut extra_ids: [Option<SubId>; 5] = [None; 5];
        let mut now = 0;
        e.on_timer(25);
        now += 25;
        apply(&mut e, &mut m, now);
        // A live subscription starts where the gateway first reported it.
        let mut start: [Option<u64>; 3] = [None, None, None];
        let note_start = |e: &Engine<String>, start: &mut [Option<u64>; 3]| {
            for (slot, name) in start.iter_mut().zip(watched) {
                if slot.is_none() {
                    *slot = e.channel_cursor(&ch(name)).map(|c| c.seq);
                }
            }
        };
        let deliver = |e: &mut Engine<String>, m: &mut Model, start: &mut [Option<u64>; 3], n: usize, now: u64| {
            for _ in 0..n {
                let Some((g, _, events)) = &mut m.stream else { break };
                let g = *g;
                let Some((event, data)) = events.pop_front() else { break };
                if event == "close" && data.contains("auth_expired") {
                    m.fetch_reasons += 1;
                }
                e.ingest(g, &event, &data, now, str::to_owned);
                note_start(e, start);
                // A close ends the stream: its effects run before anything else.
                apply(e, m, now);
            }
        };
        for op in ops {
            match op {
                Op::Publish(i) => m.publish(publish_to[i].clone()),
                Op::Deliver(n) => deliver(&mut e, &mut m, &mut start, n, now),
                Op::Drop => {
                    if let Some((g, _, _)) = &m.stream {
                        let g = *g;
                        e.on_error(g, true, now);
                    }
                }
                Op::GatewayClose => {
                    if let Some((g, _, _)) = &m.stream {
                        let g = *g;
                        e.ingest(g, "close", r#"{"reason":"shutdown","message":"bye","retryMs":100}"#, now, str::to_owned);
                    }
                }
                Op::ToggleExtra(i) => {
                    match extra_ids[i].take() {
                        Some(id) => { e.unsubscribe(id, now); }
                        None => {
                            let o = SubscribeOptions { max_logs: 10_000, history: extras[i].1, ..Default::default() };
                            extra_ids[i] = Some(sub_with(&mut e, extras[i].0, o, now));
                        }
                    }
                }
                Op::AnswerCall(answer) => answer_call(&mut e, &mut m, answer, now),
                Op::Wait(dt) => {
                    now += dt;
                    e.on_timer(now);
                }
                Op::Silence => {
                    now += 40_000;
                    e.on_timer(now);
                }
                Op::Expire => m.expire(),
                Op::AnswerToken(ok) => answer_token(&mut e, &mut m, ok, now),
            }
            apply(&mut e, &mut m, now);
        }
        // Settle: the getter answers, timers run, everything is delivered.
        for _ in 0..50 {
            answer_token(&mut e, &mut m, true, now);
            apply(&mut e, &mut m, now);
            while !m.calls.is_empty() {
                answer_call(&mut e, &mut m, Answer::Ok, now);
                apply(&mut e, &mut m, now);
            }
            now += 40_000;
            // The gateway's heartbeat kept the stream alive meanwhile.
            if let Some((g, _, _)) = &m.stream {
                e.ingest(*g, "ping", "{}", now, str::to_owned);
            }
            e.on_timer(now);
            apply(&mut e, &mut m, now);
            deliver(&mut e, &mut m, &mut start, usize::MAX, now);
            apply(&mut e, &mut m, now);
        }
        prop_assert_eq!(e.status().state, ConnectionState::Open);
        // At most one getter call per reason to fetch (timeouts count as
        // getter failures through their status).
        prop_assert!(m.fetches <= m.fetch_reasons, "{} fetches for {} reasons", m.fetches, m.fetch_reasons);
        // Each extra still subscribed heard a status, and has every log
        // after its first one.
        let mut checks: Vec<(SubId, &str, Option<u64>)> = ids.iter().copied().zip(watched).zip(start).map(|((i, n), s)| (i, n, s)).collect();
        for (id, (name, _)) in extra_ids.iter().zip(extras) {
            let Some(id) = *id else { continue };
            prop_assert!(e.subscription(id).is_some_and(|s| s.status.is_some()), "{} never heard a status", name);
            checks.push((id, name, m.first_status.get(&id).copied()));
        }
        for (id, name, start_head) in checks {
            let start_head = start_head.unwrap_or(u64::MAX);
            let channel = ch(name);
            let covered: Vec<u64> = m.history.iter()
                .filter(|(c, _)| channel.covers(c))
                .map(|(_, s)| *s)
                .collect();
            let got = seqs(&e, id);
            // In order and never twice.
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "{}: {:?}", name, got);
            // Only its own logs.
            prop_assert!(got.iter().all(|s| covered.contains(s)), "{}: {:?}", name, got);
            // None lost after the gateway confirmed the subscription.
            for s in covered.iter().filter(|s| **s > start_head) {
                prop_assert!(got.contains(s), "{} lost {}: {:?}", name, s, got);
            }
        }
    }
}

mod control;
mod join;
mod persistence;

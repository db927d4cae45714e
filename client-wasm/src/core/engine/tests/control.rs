//! Live channel changes: the control call instead of a new stream, its
//! coalescing, every fallback to reopening, the token retry, a stream that
//! drops while a call is in flight, and overlapping channels.

use super::*;
use crate::core::status::{ChangeMode, Fallback};

const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQ";

fn hello_live() -> String {
    format!(
        r#"{{"connectionId":"n1.c1","epoch":"{EPOCH:x}","heartbeatMs":15000,"controlSecret":"{SECRET}"}}"#
    )
}

/// Opens the stream with a control secret in its `hello`.
fn connect_live(e: &mut Engine<String>, now: u64) {
    e.on_timer(now);
    e.take_effects();
    let g = e.generation();
    e.on_open(g, now);
    e.ingest(g, "hello", &hello_live(), now, str::to_owned);
}

fn ev(e: &mut Engine<String>, event: &str, data: &str, now: u64) {
    let g = e.generation();
    e.ingest(g, event, data, now, str::to_owned);
}

/// The control calls among `effects`: (request, add, remove).
type Call = (u64, Vec<(String, Option<String>)>, Vec<String>);

fn calls(effects: &[Effect]) -> Vec<Call> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::ChangeChannels {
                connection_id,
                secret,
                change,
                request,
                ..
            } => {
                assert_eq!(connection_id, "n1.c1");
                assert_eq!(secret.0, SECRET);
                Some((
                    *request,
                    change
                        .add
                        .iter()
                        .map(|(c, s)| (c.as_str().to_owned(), s.clone()))
                        .collect(),
                    change
                        .remove
                        .iter()
                        .map(|c| c.as_str().to_owned())
                        .collect(),
                ))
            }
            _ => None,
        })
        .collect()
}

fn ok() -> ProbeResult {
    ProbeResult::Http {
        status: 200,
        code: None,
        message: None,
    }
}

fn http(status: u16, code: &str) -> ProbeResult {
    ProbeResult::from_http(
        status,
        &format!(r#"{{"error":{{"code":"{code}","message":"no"}}}}"#),
    )
}

fn add(channel: &str, since: Option<&str>) -> (String, Option<String>) {
    (channel.to_owned(), since.map(str::to_owned))
}

/// A stream on wf9 (at seq 12), live changes available.
fn live_on_wf9() -> (Engine<String>, SubId) {
    let mut e = engine();
    let wf9 = sub(&mut e, "logs:etl:ws1:wf9", 0);
    connect_live(&mut e, 25);
    ev(
        &mut e,
        "status",
        &status("logs:etl:ws1:wf9", "subscribed", Some(10)),
        26,
    );
    ev(&mut e, "log", &log("logs:etl:ws1:wf9", 12), 27);
    e.take_effects();
    (e, wf9)
}

#[test]
fn a_change_on_an_open_stream_is_one_call_not_a_new_stream() {
    let (mut e, wf9) = live_on_wf9();
    assert_eq!(e.status().channel_changes, Some(ChangeMode::Live));
    let backfill = SubscribeOptions {
        history: 50,
        ..Default::default()
    };
    let a = sub_with(&mut e, "logs:faas:ws1:a", backfill, 100);
    let b = sub(&mut e, "logs:faas:ws1:b", 110);
    e.on_timer(125);
    let effects = e.take_effects();
    assert!(opens(&effects).is_empty(), "{effects:?}");
    assert_eq!(
        calls(&effects),
        vec![(
            1,
            vec![
                add("logs:faas:ws1:a", Some("last:50")),
                add("logs:faas:ws1:b", None)
            ],
            vec![]
        )]
    );
    assert_eq!(e.generation(), 1);
    // The stream carries each added channel's status, then its replay.
    ev(
        &mut e,
        "status",
        &status("logs:faas:ws1:a", "subscribed", Some(3)),
        130,
    );
    ev(&mut e, "log", &log("logs:faas:ws1:a", 5), 130);
    ev(
        &mut e,
        "status",
        &status("logs:faas:ws1:b", "subscribed", Some(13)),
        131,
    );
    ev(&mut e, "log", &log("logs:faas:ws1:b", 14), 132);
    ev(&mut e, "log", &log("logs:etl:ws1:wf9", 15), 132);
    e.on_channels_answer(1, ok(), 140);
    assert_eq!(seqs(&e, a), vec![5]);
    assert_eq!(seqs(&e, b), vec![14]);
    assert_eq!(seqs(&e, wf9), vec![12, 15]);
    let changes = e.channel_changes();
    assert_eq!(
        (changes.mode, changes.live, changes.reopened),
        (ChangeMode::Live, 1, 0)
    );
    // Removing goes the same way, after the linger.
    e.unsubscribe(wf9, 200);
    e.on_timer(200 + 1_500);
    e.on_timer(200 + 1_500 + 25);
    let effects = e.take_effects();
    assert!(opens(&effects).is_empty());
    assert_eq!(
        calls(&effects),
        vec![(2, vec![], vec!["logs:etl:ws1:wf9".to_owned()])]
    );
    e.on_channels_answer(2, ok(), 1_800);
    assert_eq!(e.stats().opens, 1, "one stream for all of it");
    assert_eq!(
        e.streamed_channels(),
        &[ch("logs:faas:ws1:a"), ch("logs:faas:ws1:b")]
    );
}

#[test]
fn an_added_channel_resumes_from_its_point_like_a_reopen_would() {
    let (mut e, _) = live_on_wf9();
    let o = SubscribeOptions {
        resume_from: ResumeFrom::After(Cursor::new(Epoch(EPOCH), 7)),
        ..Default::default()
    };
    let x = sub_with(&mut e, "logs:faas:ws1:x", o, 100);
    e.on_timer(125);
    let effects = e.take_effects();
    assert_eq!(
        calls(&effects),
        vec![(1, vec![add("logs:faas:ws1:x", Some("ab-7"))], vec![])]
    );
    // Until its status, nothing reaches the channel (not its replay).
    ev(&mut e, "log", &log("logs:faas:ws1:x", 20), 126);
    assert_eq!(seqs(&e, x), Vec::<u64>::new());
    ev(
        &mut e,
        "status",
        &status("logs:faas:ws1:x", "resumed", Some(7)),
        127,
    );
    for s in [8, 9, 20, 21] {
        ev(&mut e, "log", &log("logs:faas:ws1:x", s), 128);
    }
    assert_eq!(seqs(&e, x), vec![8, 9, 20, 21]);
}

#[test]
fn changes_during_a_call_wait_and_go_out_coalesced() {
    let (mut e, wf9) = live_on_wf9();
    sub(&mut e, "logs:faas:ws1:a", 100);
    e.on_timer(125);
    assert_eq!(calls(&e.take_effects()).len(), 1);
    // Three changes while the call is in flight: nothing goes out.
    sub(&mut e, "logs:faas:ws1:b", 130);
    e.on_timer(155);
    sub(&mut e, "logs:faas:ws1:c", 160);
    e.unsubscribe(wf9, 161);
    e.on_timer(161 + 1_500 + 25);
    assert!(calls(&e.take_effects()).is_empty());
    assert!(opens(&e.take_effects()).is_empty());
    // The answer sends them as one call.
    e.on_channels_answer(1, ok(), 2_000);
    assert_eq!(
        calls(&e.take_effects()),
        vec![(
            2,
            vec![add("logs:faas:ws1:b", None), add("logs:faas:ws1:c", None)],
            vec!["logs:etl:ws1:wf9".to_owned()]
        )]
    );
    // A stale or repeated answer changes nothing.
    e.on_channels_answer(1, ok(), 2_001);
    assert!(!e.has_effects());
    e.on_channels_answer(2, ok(), 2_002);
    assert_eq!(e.channel_changes().live, 2);
}

/// Adds a channel, answers the call with `answer`, and returns the
/// effects of the answer.
fn change_then(answer: Option<ProbeResult>) -> (Engine<String>, Vec<Effect>) {
    let (mut e, _) = live_on_wf9();
    sub(&mut e, "logs:faas:ws1:a", 100);
    e.on_timer(125);
    assert_eq!(calls(&e.take_effects()).len(), 1);
    match answer {
        Some(answer) => e.on_channels_answer(1, answer, 130),
        None => {
            assert_eq!(e.next_deadline(), Some(125 + CONTROL_TIMEOUT_MS));
            e.on_timer(125 + CONTROL_TIMEOUT_MS);
        }
    }
    let effects = e.take_effects();
    (e, effects)
}

#[test]
fn every_failed_call_reopens_from_cursors_and_says_why() {
    let cases = [
        (Some(http(404, "unknown_stream")), Fallback::NotFound),
        (Some(http(405, "method_not_allowed")), Fallback::Unsupported),
        (Some(http(501, "not_implemented")), Fallback::Unsupported),
        (Some(http(500, "internal")), Fallback::GatewayError),
        (
            Some(http(503, "stream_unreachable")),
            Fallback::GatewayError,
        ),
        (Some(http(403, "stream_forbidden")), Fallback::Forbidden),
        (Some(http(401, "invalid_token")), Fallback::Unauthorized),
        (Some(http(400, "too_many_channels")), Fallback::Rejected),
        (
            Some(ProbeResult::Unreachable {
                message: "Failed to fetch".into(),
            }),
            Fallback::Network,
        ),
        (None, Fallback::Timeout),
    ];
    for (answer, why) in cases {
        let (e, effects) = change_then(answer);
        assert_eq!(
            opens(&effects),
            vec![(
                "channels=logs:etl:ws1:wf9,logs:faas:ws1:a&since=logs:etl:ws1:wf9@ab-12".to_owned(),
                2
            )],
            "{why:?}"
        );
        let changes = e.channel_changes();
        assert_eq!((changes.reopened, changes.last_fallback), (1, Some(why)));
        assert_eq!(e.status().fallback, Some(why));
        assert_eq!(e.status().state, ConnectionState::Connecting);
    }
}

#[test]
fn after_405_changes_reopen_without_trying_and_a_new_hello_does_not_undo_it() {
    let (mut e, _) = change_then(Some(http(405, "method_not_allowed")));
    let g = e.generation();
    e.on_open(g, 140);
    e.ingest(g, "hello", &hello_live(), 140, str::to_owned);
    assert_eq!(e.status().channel_changes, Some(ChangeMode::Reconnect));
    assert_eq!(e.status().fallback, None, "cleared by the new stream");
    sub(&mut e, "logs:faas:ws1:b", 200);
    e.on_timer(225);
    let effects = e.take_effects();
    assert!(calls(&effects).is_empty());
    assert_eq!(opens(&effects).len(), 1);
    assert_eq!(
        e.channel_changes().last_fallback,
        Some(Fallback::Unsupported)
    );
}

#[test]
fn a_gateway_without_a_secret_gets_todays_reopen() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    connect(&mut e, 25);
    assert_eq!(e.status().channel_changes, Some(ChangeMode::Reconnect));
    sub(&mut e, "logs:faas:ws1:a", 100);
    e.on_timer(125);
    let effects = e.take_effects();
    assert!(calls(&effects).is_empty());
    assert_eq!(opens(&effects).len(), 1);
    assert_eq!(e.channel_changes().last_fallback, Some(Fallback::NoSecret));
}

#[test]
fn an_expired_token_is_refreshed_once_then_the_call_retried() {
    let mut e = with_getter();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    e.on_token(1, Ok(Some("t1".into())), 30);
    e.take_effects();
    let g = e.generation();
    e.on_open(g, 40);
    e.ingest(g, "hello", &hello_live(), 40, str::to_owned);
    sub(&mut e, "logs:faas:ws1:a", 100);
    e.on_timer(125);
    let effects = e.take_effects();
    let token_of = |effects: &[Effect]| {
        effects.iter().find_map(|x| match x {
            Effect::ChangeChannels { token, .. } => {
                Some(token.clone().map(|t| t.as_str().to_owned()))
            }
            _ => None,
        })
    };
    assert_eq!(token_of(&effects), Some(Some("t1".to_owned())));
    e.on_channels_answer(1, http(401, EXPIRED_TOKEN_CODE), 130);
    assert_eq!(fetches(&e.take_effects()), vec![2]);
    // The token fetch is bounded by the call's timeout too.
    assert_eq!(e.next_deadline(), Some(130 + CONTROL_TIMEOUT_MS));
    e.on_token(2, Ok(Some("t2".into())), 140);
    let effects = e.take_effects();
    assert_eq!(token_of(&effects), Some(Some("t2".to_owned())));
    assert_eq!(calls(&effects)[0].0, 2, "a new request id");
    // The old request's late answer is ignored; a second 401 reopens.
    e.on_channels_answer(1, ok(), 141);
    assert_eq!(e.channel_changes().live, 0);
    e.on_channels_answer(2, http(401, EXPIRED_TOKEN_CODE), 150);
    let effects = e.take_effects();
    assert!(fetches(&effects).is_empty());
    assert_eq!(opened(&effects).len(), 1);
    assert_eq!(opened(&effects)[0].1.as_deref(), Some("t2"));
    assert_eq!(
        e.channel_changes().last_fallback,
        Some(Fallback::Unauthorized)
    );
}

const EXPIRED_TOKEN_CODE: &str = "expired_token";

#[test]
fn a_stream_that_drops_during_a_call_reopens_for_the_whole_set() {
    let (mut e, _) = live_on_wf9();
    sub(&mut e, "logs:faas:ws1:a", 100);
    e.on_timer(125);
    assert_eq!(calls(&e.take_effects()).len(), 1);
    e.on_error(1, true, 130);
    let retry = e.next_deadline().unwrap();
    assert!(retry < 130 + 1_000, "the backoff, not the call: {retry}");
    // The late answer to the dead stream's call is ignored.
    e.on_channels_answer(1, ok(), 140);
    assert!(!e.has_effects() || calls(&e.take_effects()).is_empty());
    assert_eq!(e.channel_changes().live, 0);
    e.on_timer(retry);
    let effects = e.take_effects();
    assert_eq!(
        opens(&effects),
        vec![(
            "channels=logs:etl:ws1:wf9,logs:faas:ws1:a&since=logs:etl:ws1:wf9@ab-12".to_owned(),
            2
        )]
    );
    // A gateway `close` during a call forgets it the same way.
    let g = e.generation();
    e.on_open(g, 700);
    e.ingest(g, "hello", &hello_live(), 700, str::to_owned);
    sub(&mut e, "logs:faas:ws1:b", 800);
    e.on_timer(825);
    let call = calls(&e.take_effects());
    assert_eq!(call.len(), 1);
    e.ingest(
        g,
        "close",
        r#"{"reason":"shutdown","message":"bye","retryMs":100}"#,
        830,
        str::to_owned,
    );
    e.take_effects();
    e.on_channels_answer(call[0].0, http(404, "unknown_stream"), 840);
    assert!(!e.has_effects());
    assert_eq!(e.channel_changes().reopened, 0);
}

#[test]
fn history_next_to_a_held_covering_channel_reopens_a_lingering_one_is_dropped() {
    let (mut e, wf9) = live_on_wf9();
    // A service-level channel with a backfill while wf9 is held: the
    // gateway would not repeat wf9's logs the stream carried already.
    let backfill = SubscribeOptions {
        history: 100,
        ..Default::default()
    };
    let svc = sub_with(&mut e, "logs:etl:ws1", backfill.clone(), 100);
    e.on_timer(125);
    let effects = e.take_effects();
    assert!(calls(&effects).is_empty());
    assert_eq!(opens(&effects).len(), 1);
    assert_eq!(e.channel_changes().last_fallback, Some(Fallback::Overlap));
    let g = e.generation();
    e.on_open(g, 130);
    e.ingest(g, "hello", &hello_live(), 130, str::to_owned);
    ev(
        &mut e,
        "status",
        &status("logs:etl:ws1", "subscribed", Some(2)),
        131,
    );
    ev(
        &mut e,
        "status",
        &status("logs:etl:ws1:wf9", "resumed", Some(12)),
        131,
    );
    ev(&mut e, "log", &log("logs:etl:ws1:wf8", 13), 132);
    // Live, with nothing to replay, the same pair changes live.
    e.unsubscribe(svc, 200);
    e.on_timer(200 + 1_500);
    e.on_timer(200 + 1_500 + 25);
    assert_eq!(calls(&e.take_effects()).len(), 1);
    e.on_channels_answer(1, ok(), 1_800);
    sub(&mut e, "logs:etl:ws1", 1_900);
    e.on_timer(1_925);
    assert_eq!(
        calls(&e.take_effects()),
        vec![(2, vec![add("logs:etl:ws1", None)], vec![])],
        "live next to the held wf9: nothing to replay, nothing to miss"
    );
    e.on_channels_answer(2, ok(), 1_930);
    // wf9 lingers when a backfilled service-level channel comes: it leaves
    // first, in a call of its own (the gateway would leave what wf9 brought
    // out of the new channel's replay), and the addition follows.
    let mut e2 = live_on_wf9().0;
    e2.unsubscribe(wf9, 100);
    sub_with(&mut e2, "logs:etl:ws1", backfill, 200);
    e2.on_timer(225);
    assert_eq!(
        calls(&e2.take_effects()),
        vec![(1, vec![], vec!["logs:etl:ws1:wf9".to_owned()])]
    );
    assert!(e2.streamed_channels().is_empty());
    e2.on_channels_answer(1, ok(), 230);
    assert_eq!(
        calls(&e2.take_effects()),
        vec![(2, vec![add("logs:etl:ws1", Some("last:100"))], vec![])]
    );
    assert_eq!(e2.streamed_channels(), &[ch("logs:etl:ws1")]);
    // Two overlapping channels added together are merged like at open.
    let mut e3 = engine();
    sub(&mut e3, "logs:faas:ws1:f1", 0);
    connect_live(&mut e3, 25);
    let o = SubscribeOptions {
        history: 10,
        ..Default::default()
    };
    sub_with(&mut e3, "logs:etl:ws1", o.clone(), 100);
    sub_with(&mut e3, "logs:etl:ws1:wf2", o, 100);
    e3.on_timer(125);
    assert_eq!(
        calls(&e3.take_effects()),
        vec![(
            1,
            vec![
                add("logs:etl:ws1", Some("last:10")),
                add("logs:etl:ws1:wf2", Some("last:10"))
            ],
            vec![]
        )]
    );
}

#[test]
fn changes_while_connecting_wait_for_the_hello() {
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    e.take_effects();
    sub(&mut e, "logs:faas:ws1:a", 30);
    e.on_timer(55);
    assert!(
        opens(&e.take_effects()).is_empty(),
        "the stream opening stays"
    );
    let g = e.generation();
    e.on_open(g, 60);
    e.on_timer(61);
    assert!(!e.has_effects() || opens(&e.take_effects()).is_empty());
    e.ingest(g, "hello", &hello_live(), 62, str::to_owned);
    assert_eq!(
        calls(&e.take_effects()),
        vec![(1, vec![add("logs:faas:ws1:a", None)], vec![])]
    );
}

#[test]
fn the_secret_never_shows_and_odd_handles_disable_live_changes() {
    let (mut e, _) = live_on_wf9();
    sub(&mut e, "logs:faas:ws1:a", 100);
    e.on_timer(125);
    let effects = e.take_effects();
    for x in &effects {
        assert!(!format!("{x:?}").contains(SECRET), "{x:?}");
    }
    assert!(!format!("{:?}", e.status()).contains(SECRET));
    assert!(!format!("{e:?}").contains(SECRET));
    // A secret that cannot travel in a header as it is: no live changes.
    let mut e = engine();
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    e.on_timer(25);
    let g = e.generation();
    e.on_open(g, 30);
    let odd = format!(
        r#"{{"connectionId":"c1","epoch":"{EPOCH:x}","controlSecret":"a b\r\nX-Evil: 1"}}"#
    );
    e.ingest(g, "hello", &odd, 30, str::to_owned);
    assert_eq!(e.status().channel_changes, Some(ChangeMode::Reconnect));
    let long = format!(
        r#"{{"connectionId":"{}","epoch":"{EPOCH:x}","controlSecret":"s"}}"#,
        "c".repeat(MAX_CONTROL_TEXT + 1)
    );
    e.ingest(g, "hello", &long, 31, str::to_owned);
    assert_eq!(e.status().channel_changes, Some(ChangeMode::Reconnect));
}

#[test]
fn the_body_is_the_contracts_json() {
    let change = ChannelChange {
        add: vec![
            (ch("logs:etl:ws1:wf1"), Some("ab-3".into())),
            (ch("logs:etl:ws1:wf2"), None),
        ],
        remove: vec![ch("logs:faas:ws1")],
    };
    let body = change.body();
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!({
            "add": [{"channel": "logs:etl:ws1:wf1", "since": "ab-3"}, {"channel": "logs:etl:ws1:wf2"}],
            "remove": ["logs:faas:ws1"]
        })
    );
}

#[test]
fn a_subscription_behind_the_stream_makes_its_channel_leave_and_come_back() {
    let (mut e, wf9) = live_on_wf9();
    let o = SubscribeOptions {
        resume_from: ResumeFrom::After(Cursor::new(Epoch(EPOCH), 5)),
        ..Default::default()
    };
    let late = sub_with(&mut e, "logs:etl:ws1:wf9", o, 100);
    e.on_timer(125);
    let effects = e.take_effects();
    assert!(opens(&effects).is_empty());
    assert_eq!(
        calls(&effects),
        vec![(1, vec![], vec!["logs:etl:ws1:wf9".to_owned()])]
    );
    // Still queued on the stream: taken by nobody (the channel comes back).
    ev(&mut e, "log", &log("logs:etl:ws1:wf9", 13), 126);
    e.on_channels_answer(1, ok(), 130);
    assert_eq!(
        calls(&e.take_effects()),
        vec![(2, vec![add("logs:etl:ws1:wf9", Some("ab-5"))], vec![])]
    );
    ev(
        &mut e,
        "status",
        &status("logs:etl:ws1:wf9", "resumed", Some(5)),
        131,
    );
    for s in 6..=14 {
        ev(&mut e, "log", &log("logs:etl:ws1:wf9", s), 132);
    }
    e.on_channels_answer(2, ok(), 140);
    assert_eq!(seqs(&e, late), (6..=14).collect::<Vec<_>>());
    assert_eq!(
        seqs(&e, wf9),
        vec![12, 13, 14],
        "the holder drops what it had"
    );
    assert_eq!(e.stats().opens, 1);
}

#[test]
fn a_rewind_of_a_channel_not_yet_on_the_stream_is_a_plain_addition() {
    let (mut e, _) = live_on_wf9();
    let first = sub(&mut e, "logs:faas:ws1:f5", 100);
    // Joins before the channel reached the stream, with a point of its own.
    let o = SubscribeOptions {
        resume_from: ResumeFrom::After(Cursor::new(Epoch(EPOCH), 3)),
        ..Default::default()
    };
    let second = sub_with(&mut e, "logs:faas:ws1:f5", o, 110);
    e.on_timer(125);
    assert_eq!(
        calls(&e.take_effects()),
        vec![(1, vec![add("logs:faas:ws1:f5", Some("ab-3"))], vec![])]
    );
    ev(
        &mut e,
        "status",
        &status("logs:faas:ws1:f5", "resumed", Some(3)),
        130,
    );
    ev(&mut e, "log", &log("logs:faas:ws1:f5", 4), 131);
    assert_eq!(seqs(&e, first), vec![4]);
    assert_eq!(seqs(&e, second), vec![4]);
}

/// A service-level channel leaves the stream and comes back (after the
/// resource it covers leaves, in a call of its own) before the stream
/// delivered the status it was opened with. That status, and the logs the
/// stream carried for the resource meanwhile, belong to the earlier
/// addition: the channel waits for the status of its own addition, then
/// takes its replay, and loses nothing of it.
#[test]
fn a_channel_readded_before_its_first_status_waits_for_its_own() {
    const SERVICE: &str = "logs:faas:ws1";
    const X1: &str = "logs:faas:ws1:x1";
    const X2: &str = "logs:faas:ws1:x2";
    let mut e = engine_with(ClientOptions {
        linger_ms: 0,
        ..Default::default()
    });
    let backfill = || SubscribeOptions {
        history: 2,
        ..Default::default()
    };
    sub(&mut e, "logs:etl:ws1:wf9", 0);
    let service = sub_with(&mut e, SERVICE, backfill(), 0);
    let x1 = sub_with(&mut e, X1, backfill(), 0);
    connect_live(&mut e, 25);
    e.take_effects();
    // The service-level channel leaves: one call.
    e.unsubscribe(service, 30);
    e.on_timer(55);
    assert_eq!(
        calls(&e.take_effects()),
        vec![(1, vec![], vec![SERVICE.into()])]
    );
    // Meanwhile the resource leaves and the service-level channel comes
    // back: the resource goes first (the gateway leaves what it brought out
    // of the replay), then the addition.
    e.unsubscribe(x1, 60);
    let again = sub_with(&mut e, SERVICE, backfill(), 60);
    e.on_channels_answer(1, ok(), 70);
    assert_eq!(calls(&e.take_effects()), vec![(2, vec![], vec![X1.into()])]);
    e.on_channels_answer(2, ok(), 80);
    assert_eq!(
        calls(&e.take_effects()),
        vec![(3, vec![add(SERVICE, Some("last:2"))], vec![])]
    );
    e.on_channels_answer(3, ok(), 90);
    // The stream, in the gateway's order: the open's statuses, x1's logs 1
    // and 3 (2 on x2 came after the service-level channel had left), then
    // the addition's status (the last 2 logs: after 1) and its replay.
    for (event, data) in [
        ("status", status("logs:etl:ws1:wf9", "subscribed", Some(0))),
        ("status", status(SERVICE, "subscribed", Some(0))),
        ("status", status(X1, "subscribed", Some(0))),
        ("log", log(X1, 1)),
        ("log", log(X1, 3)),
        ("status", status(SERVICE, "subscribed", Some(1))),
        ("log", log(X2, 2)),
        ("log", log(X1, 3)),
    ] {
        ev(&mut e, event, &data, 100);
    }
    let heard: Vec<Option<u64>> = e
        .take_effects()
        .iter()
        .filter_map(|x| match x {
            Effect::Update {
                sub,
                update: Update::Status { cursor, .. },
            } if *sub == again => Some(cursor.map(|c| c.seq)),
            _ => None,
        })
        .collect();
    assert_eq!(seqs(&e, again), vec![2, 3], "its replay, whole");
    assert_eq!(heard, vec![Some(1)], "only the status of its own addition");
}

/// A live service-level channel added next to one of its resources takes
/// nothing before its own status: a resource's log taken from the other
/// channel meanwhile would be followed by a hole (its other resources' logs
/// start at its status).
#[test]
fn a_live_channel_next_to_one_it_covers_waits_for_its_own_status() {
    const WF1: &str = "logs:etl:ws1:wf1";
    const WF2: &str = "logs:etl:ws1:wf2";
    const SERVICE: &str = "logs:etl:ws1";
    let mut e = engine();
    let wf1 = sub(&mut e, WF1, 0);
    connect_live(&mut e, 25);
    ev(&mut e, "status", &status(WF1, "subscribed", Some(0)), 30);
    let service = sub(&mut e, SERVICE, 40);
    // wf1's log 1 reaches the stream before the change: the service-level
    // channel must not start with it (wf2's log 2 came before the addition).
    ev(&mut e, "log", &log(WF1, 1), 45);
    e.on_timer(65);
    assert_eq!(
        calls(&e.take_effects()),
        vec![(1, vec![add(SERVICE, None)], vec![])]
    );
    ev(&mut e, "log", &log(WF2, 2), 70);
    e.on_channels_answer(1, ok(), 75);
    ev(
        &mut e,
        "status",
        &status(SERVICE, "subscribed", Some(2)),
        80,
    );
    ev(&mut e, "log", &log(WF1, 3), 85);
    ev(&mut e, "log", &log(WF2, 4), 90);
    assert_eq!(seqs(&e, wf1), vec![1, 3]);
    assert_eq!(
        seqs(&e, service),
        vec![3, 4],
        "from its status on, without a hole"
    );
}

/// wf9 held, then released at 30: its linger ends at 1,530 and the
/// coalesced change that takes it off the stream goes out at 1,555.
fn released_wf9(e: &mut Engine<String>, hello: &str) {
    let a = sub(e, WF9, 0);
    e.on_timer(25);
    e.take_effects();
    let g = e.generation();
    e.on_open(g, 25);
    e.ingest(g, "hello", hello, 25, str::to_owned);
    ev(e, "status", &status(WF9, "subscribed", Some(3)), 26);
    e.unsubscribe(a, 30);
    e.on_timer(1_530);
    assert!(e
        .take_effects()
        .iter()
        .all(|x| !matches!(x, Effect::ChangeChannels { .. } | Effect::Open { .. })));
}

const WF9: &str = "logs:etl:ws1:wf9";

// Found by the npm package's randomised sharing test: a subscription made
// in this window joined a fresh entry of a channel the stream still
// carried, waited for a status the stream did not owe it, and heard
// nothing, ever.
#[test]
fn a_channel_subscribed_again_after_its_linger_but_before_it_left_the_stream_hears_its_own_status()
{
    let mut e = engine();
    released_wf9(&mut e, &hello_live());
    let b = sub(&mut e, WF9, 1_540);
    e.on_timer(1_565);
    let effects = e.take_effects();
    assert!(opens(&effects).is_empty(), "{effects:?}");
    // Off the stream, then back from where b asked (live).
    assert_eq!(calls(&effects), vec![(1, vec![], vec![WF9.to_owned()])]);
    ev(&mut e, "log", &log(WF9, 4), 1_566);
    e.on_channels_answer(1, ok(), 1_567);
    assert_eq!(
        calls(&e.take_effects()),
        vec![(2, vec![add(WF9, None)], vec![])]
    );
    e.on_channels_answer(2, ok(), 1_568);
    ev(&mut e, "status", &status(WF9, "subscribed", Some(4)), 1_569);
    ev(&mut e, "log", &log(WF9, 5), 1_570);
    let b_state = e.subscription(b).unwrap();
    assert_eq!(b_state.status, Some(StatusKind::Subscribed));
    assert_eq!(seqs(&e, b), vec![5]);
}

#[test]
fn without_live_changes_the_same_subscription_reopens_the_stream_for_its_status() {
    let mut e = engine();
    released_wf9(&mut e, &hello());
    let b = sub(&mut e, WF9, 1_540);
    e.on_timer(1_565);
    let effects = e.take_effects();
    assert!(calls(&effects).is_empty(), "{effects:?}");
    assert_eq!(opens(&effects).len(), 1, "{effects:?}");
    let g = e.generation();
    e.on_open(g, 1_570);
    e.ingest(g, "hello", &hello(), 1_570, str::to_owned);
    ev(&mut e, "status", &status(WF9, "subscribed", Some(4)), 1_571);
    assert_eq!(
        e.subscription(b).unwrap().status,
        Some(StatusKind::Subscribed)
    );
}

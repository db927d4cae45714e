//! The decoders against the protocol's serde types, on examples and on
//! random events (fields in any order, missing, mistyped, repeated, unknown,
//! escaped) and random damage to them.

use logs_sse_protocol::{HelloEvent, LogEvent};
use proptest::prelude::*;
use serde_json::Value as Json;

use super::*;
use crate::core::json::tests::{damage, edits, json_value, render_members, text_strategy, Tape};

#[test]
fn reads_each_event() {
    let l = log(r#"{"ts":5,"logData": {"b":1.50,"a":"x\ny"} ,"cursor":"a-7","channel":"logs:etl:ws1:wf9","extra":[1]}"#).unwrap();
    assert_eq!(l.channel.as_str(), "logs:etl:ws1:wf9");
    assert_eq!(l.cursor, Cursor::new(Epoch(10), 7));
    assert_eq!(l.ts, 5);
    assert_eq!(l.log_data, r#"{"b":1.50,"a":"x\ny"}"#);
    let s = status(r#"{"channel":"logs:etl:ws1","status":"gap","cursor":"ff-3","replayed":2,"reason":"expired"}"#).unwrap();
    assert_eq!(
        s,
        ChannelStatus {
            channel: "logs:etl:ws1".parse().unwrap(),
            status: StatusKind::Gap,
            cursor: Some(Cursor::new(Epoch(255), 3)),
            replayed: 2,
            reason: Some("expired".into()),
        }
    );
    let s = status(r#"{"channel":"logs:etl:ws1","status":"denied","cursor":null}"#).unwrap();
    assert_eq!((s.cursor, s.replayed, s.reason), (None, 0, None));
    let h = hello(r#"{"connectionId":"c\u0031","epoch":"abc","heartbeatMs":15000}"#).unwrap();
    assert_eq!(
        h,
        Hello {
            connection_id: "c1".into(),
            epoch: Epoch(0xabc),
            heartbeat_ms: Some(15000),
            control_secret: None,
        }
    );
    let bare = hello(r#"{"connectionId":"c","epoch":"1"}"#).unwrap();
    assert_eq!((bare.heartbeat_ms, bare.control_secret), (None, None));
    let with_secret =
        hello(r#"{"connectionId":"n1.7","epoch":"1","controlSecret":"AbC-_9","future":1}"#)
            .unwrap();
    assert_eq!(with_secret.control_secret.as_deref(), Some("AbC-_9"));
    assert!(hello(r#"{"connectionId":"c","epoch":"1","controlSecret":7}"#).is_err());
    let c = close(r#"{"reason":"slow_consumer","message":"too slow","retryMs":100}"#).unwrap();
    assert_eq!(c.reason, CloseReason::SlowConsumer);
    assert_eq!((c.message.as_str(), c.retry_ms), ("too slow", 100));
}

#[test]
fn names_what_is_wrong() {
    let msg = |r: Result<LogRef<'_>, EventError>| r.unwrap_err().to_string();
    assert_eq!(msg(log("not json")), "expected an object at byte 0");
    assert_eq!(
        msg(log(r#"{"channel":"logs:a:b","cursor":"a-1","ts":1}"#)),
        "missing field `logData`"
    );
    assert_eq!(
        msg(log(
            r#"{"channel":"bad channel","cursor":"a-1","ts":1,"logData":{}}"#
        )),
        "`channel`: expected a channel name"
    );
    assert_eq!(
        msg(log(
            r#"{"channel":"logs:a:b","cursor":"a-1","ts":-1,"logData":{}}"#
        )),
        "`ts`: expected a whole number in range at byte 42"
    );
    assert_eq!(
        msg(log(r#"{"channel":"logs:a:b","channel":"logs:a:b"}"#)),
        "duplicate field at byte 32"
    );
    assert_eq!(
        close(r#"{"reason":"bored","message":"","retryMs":1}"#)
            .unwrap_err()
            .to_string(),
        "`reason`: expected slow_consumer, shutdown or auth_expired"
    );
}

// ----- random events against serde_json ----------------------------------

fn channel_text() -> BoxedStrategy<Json> {
    prop_oneof![
        4 => ("[a-z]{1,5}", "[a-z0-9]{1,5}", proptest::option::of("[a-zA-Z0-9_.-]{1,6}"))
            .prop_map(|(s, w, r)| match r {
                Some(r) => format!("logs:{s}:{w}:{r}"),
                None => format!("logs:{s}:{w}"),
            }),
        1 => "\\PC{0,12}",
    ]
    .prop_map(Json::String)
    .boxed()
}

fn cursor_text() -> BoxedStrategy<Json> {
    prop_oneof![
        4 => (any::<u64>(), any::<u64>()).prop_map(|(e, s)| format!("{e:x}-{s}")),
        1 => "[0-9a-f+-]{0,8}",
        1 => Just("earliest".to_owned()),
    ]
    .prop_map(Json::String)
    .boxed()
}

fn one_of(words: &'static [&'static str]) -> BoxedStrategy<Json> {
    prop_oneof![
        6 => proptest::sample::select(words).prop_map(|w| Json::String(w.to_owned())),
        1 => text_strategy().prop_map(Json::String),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<Json> {
    prop_oneof![
        6 => any::<u64>().prop_map(Json::from),
        2 => any::<u32>().prop_map(Json::from),
        1 => any::<i64>().prop_map(Json::from),
        1 => (any::<i16>(), 1..4i32).prop_map(|(m, e)| Json::from(f64::from(m) / 2f64.powi(e))),
    ]
    .boxed()
}

/// Members of an event: each known field usually well-formed, sometimes
/// mistyped, missing or repeated; a few unknown ones; any order.
fn members(
    known: Vec<(&'static str, BoxedStrategy<Json>)>,
) -> impl Strategy<Value = Vec<(String, Json)>> {
    let names: Vec<&'static str> = known.iter().map(|(n, _)| *n).collect();
    let known: Vec<BoxedStrategy<Vec<(String, Json)>>> = known
        .into_iter()
        .map(|(name, good)| {
            let name = name.to_owned();
            let (n1, n2, n3) = (name.clone(), name.clone(), name);
            prop_oneof![
                12 => good.clone().prop_map(move |v| vec![(n1.clone(), v)]),
                1 => json_value().prop_map(move |v| vec![(n2.clone(), v)]),
                1 => Just(vec![]),
                1 => (good.clone(), good).prop_map(move |(a, b)| vec![(n3.clone(), a), (n3.clone(), b)]),
            ]
            .boxed()
        })
        .collect();
    let key = prop_oneof![
        3 => text_strategy(),
        1 => proptest::sample::select(names).prop_map(str::to_owned),
    ];
    let unknown = proptest::collection::vec((key, json_value()), 0..3);
    (known, unknown)
        .prop_map(|(known, unknown)| {
            known
                .into_iter()
                .flatten()
                .chain(unknown)
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn render(members: &[(String, Json)], tape: Vec<u8>) -> String {
    let mut out = String::new();
    render_members(
        members.iter().map(|(k, v)| (k, v)),
        &mut Tape(tape, 0),
        &mut out,
    );
    out
}

fn tape() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..32)
}

fn check_log(text: &str) -> Result<(), TestCaseError> {
    let mine = log(text).map(|l| (l.channel, l.cursor, l.ts, l.log_data.to_owned()));
    let reference = serde_json::from_str::<LogEvent<'_>>(text)
        .map(|l| (l.channel, l.cursor, l.ts, l.log_data.get().to_owned()));
    prop_assert_eq!(mine.ok(), reference.ok(), "{:?}", text);
    Ok(())
}

fn check_status(text: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        status(text).ok(),
        serde_json::from_str::<ChannelStatus>(text).ok(),
        "{:?}",
        text
    );
    Ok(())
}

fn check_hello(text: &str) -> Result<(), TestCaseError> {
    let mine = hello(text);
    let reference = serde_json::from_str::<HelloEvent>(text);
    match (mine, reference) {
        (Ok(m), Ok(r)) => {
            prop_assert_eq!(m.connection_id, r.connection_id);
            prop_assert_eq!(m.epoch, r.epoch);
            prop_assert_eq!(m.heartbeat_ms, Some(r.heartbeat_ms));
        }
        // The one leniency: heartbeatMs absent or null.
        (Ok(m), Err(_)) => prop_assert_eq!(m.heartbeat_ms, None, "{:?}", text),
        (Err(_), Err(_)) => {}
        (Err(e), Ok(_)) => prop_assert!(false, "rejected ({}) what serde accepts: {:?}", e, text),
    }
    Ok(())
}

fn check_close(text: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        close(text).ok(),
        serde_json::from_str::<CloseEvent>(text).ok(),
        "{:?}",
        text
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn log_events_agree_with_serde(
        m in members(vec![("channel", channel_text()), ("cursor", cursor_text()), ("ts", number()), ("logData", json_value().boxed())]),
        tape in tape(), edits in edits(),
    ) {
        let text = render(&m, tape);
        check_log(&text)?;
        check_log(&damage(&text, &edits))?;
    }

    #[test]
    fn status_events_agree_with_serde(
        m in members(vec![
            ("channel", channel_text()),
            ("status", one_of(&["subscribed", "resumed", "gap", "denied"])),
            ("cursor", prop_oneof![4 => cursor_text(), 1 => Just(Json::Null)].boxed()),
            ("replayed", number()),
            ("reason", prop_oneof![4 => text_strategy().prop_map(Json::String), 1 => Just(Json::Null)].boxed()),
        ]),
        tape in tape(), edits in edits(),
    ) {
        let text = render(&m, tape);
        check_status(&text)?;
        check_status(&damage(&text, &edits))?;
    }

    #[test]
    fn hello_events_agree_with_serde(
        m in members(vec![
            ("connectionId", text_strategy().prop_map(Json::String).boxed()),
            ("epoch", prop_oneof![4 => any::<u64>().prop_map(|e| format!("{e:x}")), 1 => "[0-9a-fA-F+-]{0,18}"].prop_map(Json::String).boxed()),
            ("heartbeatMs", prop_oneof![4 => number(), 1 => Just(Json::Null)].boxed()),
        ]),
        tape in tape(), edits in edits(),
    ) {
        let text = render(&m, tape);
        check_hello(&text)?;
        check_hello(&damage(&text, &edits))?;
    }

    #[test]
    fn close_events_agree_with_serde(
        m in members(vec![
            ("reason", one_of(&["slow_consumer", "shutdown", "auth_expired"])),
            ("message", text_strategy().prop_map(Json::String).boxed()),
            ("retryMs", number()),
        ]),
        tape in tape(), edits in edits(),
    ) {
        let text = render(&m, tape);
        check_close(&text)?;
        check_close(&damage(&text, &edits))?;
    }

    #[test]
    fn garbage_never_panics(text in "\\PC{0,300}") {
        check_log(&text)?;
        check_status(&text)?;
        check_hello(&text)?;
        check_close(&text)?;
    }
}

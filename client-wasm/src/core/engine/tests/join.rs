//! A subscription joining a channel already on the stream with a settled
//! status hears a status of its own, before any of its logs: `subscribed`
//! (live or backfilled), `resumed` (a point of its own), `gap` (a point of
//! another epoch) or `denied`; none when the join rewinds or the channel's
//! status is still to come (it hears that one).

use super::*;

const WF: &str = "logs:etl:ws1:wf9";

fn cur(seq: u64) -> Cursor {
    Cursor::new(Epoch(EPOCH), seq)
}

fn ev(e: &mut Engine<String>, event: &str, data: &str, now: u64) {
    let g = e.generation();
    e.ingest(g, event, data, now, str::to_owned);
}

/// A held channel on an open stream: its status at `ab-3`, then logs 4, 5
/// (the channel is at 5). Returns the first holder.
fn held() -> (Engine<String>, SubId) {
    let mut e = engine();
    let a = sub(&mut e, WF, 0);
    connect(&mut e, 25);
    ev(&mut e, "status", &status(WF, "subscribed", Some(3)), 26);
    ev(&mut e, "log", &log(WF, 4), 27);
    ev(&mut e, "log", &log(WF, 5), 28);
    e.take_effects();
    (e, a)
}

/// The updates `id` got, in effect order.
fn updates(effects: &[Effect], id: SubId) -> Vec<Update> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Update { sub, update } if *sub == id => Some(update.clone()),
            _ => None,
        })
        .collect()
}

fn st(status: StatusKind, cursor: Option<Cursor>, reason: Option<&str>, replayed: u32) -> Update {
    Update::Status {
        status,
        cursor,
        reason: reason.map(Into::into),
        replayed,
    }
}

fn after(seq: u64) -> SubscribeOptions {
    SubscribeOptions {
        resume_from: ResumeFrom::After(cur(seq)),
        ..Default::default()
    }
}

#[test]
fn a_live_join_hears_subscribed_at_the_channels_position() {
    let (mut e, a) = held();
    let b = sub(&mut e, WF, 30);
    let effects = e.take_effects();
    assert_eq!(
        updates(&effects, b),
        vec![st(StatusKind::Subscribed, Some(cur(5)), None, 0)]
    );
    assert!(updates(&effects, a).is_empty(), "the holder hears nothing");
    assert_eq!(
        e.subscription(b).unwrap().status,
        Some(StatusKind::Subscribed)
    );
    assert!(opens(&effects).is_empty() && seqs(&e, b).is_empty());
    // What follows comes after that cursor.
    ev(&mut e, "log", &log(WF, 6), 31);
    assert_eq!(seqs(&e, b), vec![6]);
}

#[test]
fn a_join_given_parked_logs_hears_subscribed_without_a_cursor_before_its_logs() {
    let (mut e, a) = held();
    // StrictMode: unmount, a log while lingering, mount again.
    e.unsubscribe(a, 30);
    ev(&mut e, "log", &log(WF, 6), 31);
    e.take_effects();
    let b = sub(&mut e, WF, 32);
    let effects = e.take_effects();
    assert_eq!(seqs(&e, b), vec![4, 5, 6]);
    let got = updates(&effects, b);
    assert_eq!(got[0], st(StatusKind::Subscribed, None, None, 3));
    assert!(got[1..].iter().all(|u| matches!(u, Update::Logs { .. })));
    ev(&mut e, "log", &log(WF, 7), 33);
    assert_eq!(seqs(&e, b), vec![4, 5, 6, 7]);
}

#[test]
fn a_backfill_join_hears_subscribed_with_the_logs_it_was_given() {
    let (mut e, _a) = held();
    let o = SubscribeOptions {
        history: 1,
        ..Default::default()
    };
    let b = sub_with(&mut e, WF, o, 30);
    let effects = e.take_effects();
    assert_eq!(seqs(&e, b), vec![5]);
    assert_eq!(
        updates(&effects, b),
        vec![st(StatusKind::Subscribed, None, None, 1)]
    );
}

#[test]
fn a_join_with_its_own_point_hears_resumed_from_it() {
    // At the channel's position: nothing to replay.
    let (mut e, _a) = held();
    let b = sub_with(&mut e, WF, after(5), 30);
    assert_eq!(
        updates(&e.take_effects(), b),
        vec![st(StatusKind::Resumed, Some(cur(5)), None, 0)]
    );
    // Behind a lingering channel whose parked logs reach back to it: the
    // cursor is its point before them, `replayed` what it accepted.
    let (mut e, a) = held();
    e.unsubscribe(a, 30);
    ev(&mut e, "log", &log(WF, 6), 31);
    e.take_effects();
    let b = sub_with(&mut e, WF, after(5), 32);
    let effects = e.take_effects();
    assert_eq!(seqs(&e, b), vec![6]);
    assert_eq!(
        updates(&effects, b),
        vec![st(StatusKind::Resumed, Some(cur(5)), None, 1)]
    );
    assert!(opens(&effects).is_empty());
}

#[test]
fn a_join_from_another_epoch_hears_a_gap_status_then_the_gap() {
    let (mut e, _a) = held();
    let o = SubscribeOptions {
        resume_from: ResumeFrom::After(Cursor::new(Epoch(0x77), 9)),
        ..Default::default()
    };
    let b = sub_with(&mut e, WF, o, 30);
    assert_eq!(
        updates(&e.take_effects(), b),
        vec![
            st(StatusKind::Gap, Some(cur(5)), Some("foreign_epoch"), 0),
            Update::Gap {
                from: Some(Cursor::new(Epoch(0x77), 9)),
                to: Some(cur(5)),
                reason: Some("foreign_epoch".into()),
            },
        ]
    );
    assert_eq!(e.subscription(b).unwrap().status, Some(StatusKind::Gap));
}

#[test]
fn a_join_on_a_denied_channel_hears_denied_with_its_reason() {
    let mut e = engine();
    sub(&mut e, WF, 0);
    connect(&mut e, 25);
    ev(&mut e, "status", &status(WF, "denied", None), 26);
    e.take_effects();
    let b = sub(&mut e, WF, 30);
    assert_eq!(
        updates(&e.take_effects(), b),
        vec![st(StatusKind::Denied, None, Some("nope"), 0)]
    );
}

#[test]
fn no_status_at_join_when_it_rewinds_or_the_status_is_still_to_come() {
    // Behind a held channel: the stream reopens from its point, and the
    // new stream's status is the one it hears.
    let (mut e, a) = held();
    let b = sub_with(&mut e, WF, after(1), 30);
    assert!(updates(&e.take_effects(), b).is_empty());
    e.on_timer(60);
    let g = e.generation();
    e.on_open(g, 61);
    e.ingest(g, "hello", &hello(), 61, str::to_owned);
    ev(&mut e, "status", &status(WF, "resumed", Some(1)), 62);
    let effects = e.take_effects();
    for id in [a, b] {
        assert_eq!(
            updates(&effects, id),
            vec![st(StatusKind::Resumed, Some(cur(1)), None, 0)]
        );
    }
    // Joined before the channel's first status: it hears that one, once.
    let mut e = engine();
    let a = sub(&mut e, WF, 0);
    connect(&mut e, 25);
    let b = sub(&mut e, WF, 30);
    assert!(updates(&e.take_effects(), b).is_empty());
    ev(&mut e, "status", &status(WF, "subscribed", Some(3)), 31);
    let effects = e.take_effects();
    for id in [a, b] {
        assert_eq!(
            updates(&effects, id),
            vec![st(StatusKind::Subscribed, Some(cur(3)), None, 0)]
        );
    }
}

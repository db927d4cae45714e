//! Where a `tail` resumes: per followed channel, the cursor after which
//! every log has been printed. Pure; the network loop lives in `tail`.
//!
//! The gateway replays exactly what follows the cursors it is given, so a
//! reconnect loses nothing within history. The state also drops any log
//! it has already printed (a log reaches a resource channel and its
//! service-level channel with one cursor), so nothing is printed twice.

use logs_sse_protocol::{
    Channel, ChannelStatus, Cursor, LogEvent, ResumeFrom, StatusKind, StreamQuery,
};

/// What a `status` event means for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Subscribed {
        channel: String,
        replayed: u32,
    },
    Resumed {
        channel: String,
        replayed: u32,
    },
    Gap {
        channel: String,
        reason: String,
    },
    Denied {
        channel: String,
        reason: String,
    },
    /// A status for a channel this tail did not ask for (ignored).
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Follow {
    channels: Vec<(Channel, ResumeFrom)>,
}

impl Follow {
    /// Every channel starts from `start` (live or `last:N`).
    pub fn new(channels: Vec<Channel>, start: ResumeFrom) -> Self {
        Follow {
            channels: channels.into_iter().map(|c| (c, start)).collect(),
        }
    }

    /// The stream query for the next connection.
    pub fn query(&self) -> StreamQuery {
        StreamQuery {
            channels: self.channels.clone(),
        }
    }

    /// Records a channel's status: from now on, it resumes after the
    /// status's cursor (what the gateway promises to send next).
    pub fn on_status(&mut self, status: &ChannelStatus) -> Notice {
        let Some(slot) = self.channels.iter_mut().find(|(c, _)| *c == status.channel) else {
            return Notice::Unknown;
        };
        if let Some(cursor) = status.cursor {
            slot.1 = ResumeFrom::After(cursor);
        }
        let channel = status.channel.as_str().to_owned();
        let reason = status.reason.clone().unwrap_or_default();
        match status.status {
            StatusKind::Subscribed => Notice::Subscribed {
                channel,
                replayed: status.replayed,
            },
            StatusKind::Resumed => Notice::Resumed {
                channel,
                replayed: status.replayed,
            },
            StatusKind::Gap => Notice::Gap { channel, reason },
            StatusKind::Denied => Notice::Denied { channel, reason },
        }
    }

    /// Whether a log is new, i.e. to be printed; advances the cursors of
    /// every followed channel that covers it.
    pub fn accept(&mut self, log: &LogEvent<'_>) -> bool {
        let mut covered = false;
        let mut seen = false;
        for (channel, resume) in &self.channels {
            if channel.covers(&log.channel) {
                covered = true;
                seen |= matches!(resume, ResumeFrom::After(c) if holds(c, &log.cursor));
            }
        }
        if !covered || seen {
            return false;
        }
        for (channel, resume) in &mut self.channels {
            if channel.covers(&log.channel) {
                *resume = ResumeFrom::After(log.cursor);
            }
        }
        true
    }
}

/// Whether a channel resuming after `at` has already had `log`.
fn holds(at: &Cursor, log: &Cursor) -> bool {
    at.epoch == log.epoch && log.seq <= at.seq
}

#[cfg(test)]
mod tests {
    use super::*;
    use logs_sse_protocol::Epoch;
    use serde_json::value::RawValue;

    fn ch(s: &str) -> Channel {
        s.parse().unwrap()
    }

    fn log<'a>(channel: &str, seq: u64, data: &'a RawValue) -> LogEvent<'a> {
        LogEvent {
            channel: ch(channel),
            cursor: Cursor::new(Epoch(7), seq),
            ts: 0,
            log_data: data,
        }
    }

    fn status(channel: &str, kind: StatusKind, seq: u64) -> ChannelStatus {
        ChannelStatus {
            channel: ch(channel),
            status: kind,
            cursor: Some(Cursor::new(Epoch(7), seq)),
            replayed: 0,
            reason: None,
        }
    }

    #[test]
    fn resumes_after_the_last_printed_log_and_drops_repeats() {
        let data = RawValue::from_string("{}".into()).unwrap();
        let mut f = Follow::new(
            vec![ch("logs:etl:ws1:wf1"), ch("logs:etl:ws1")],
            ResumeFrom::Live,
        );
        assert_eq!(
            f.query().to_query_string(),
            "channels=logs:etl:ws1:wf1,logs:etl:ws1"
        );
        f.on_status(&status("logs:etl:ws1:wf1", StatusKind::Subscribed, 3));
        f.on_status(&status("logs:etl:ws1", StatusKind::Subscribed, 3));
        assert!(f.accept(&log("logs:etl:ws1:wf1", 4, &data)));
        assert!(f.accept(&log("logs:etl:ws1:wf2", 5, &data)));
        // Seen through the service-level channel already.
        assert!(!f.accept(&log("logs:etl:ws1:wf1", 4, &data)));
        assert!(!f.accept(&log("logs:faas:ws1:x", 9, &data)));
        assert_eq!(
            f.query().to_query_string(),
            "channels=logs:etl:ws1:wf1,logs:etl:ws1&since=logs:etl:ws1:wf1@7-4,logs:etl:ws1@7-5"
        );
    }

    #[test]
    fn a_gap_moves_the_cursor_to_what_the_gateway_holds() {
        let data = RawValue::from_string("{}".into()).unwrap();
        let mut f = Follow::new(vec![ch("logs:etl:ws1:wf1")], ResumeFrom::Live);
        f.on_status(&status("logs:etl:ws1:wf1", StatusKind::Subscribed, 10));
        assert!(f.accept(&log("logs:etl:ws1:wf1", 11, &data)));
        let mut gap = status("logs:etl:ws1:wf1", StatusKind::Gap, 0);
        gap.cursor = Some(Cursor::new(Epoch(8), 0));
        gap.reason = Some("new epoch".into());
        assert!(matches!(f.on_status(&gap), Notice::Gap { .. }));
        let fresh = LogEvent {
            cursor: Cursor::new(Epoch(8), 1),
            ..log("logs:etl:ws1:wf1", 0, &data)
        };
        assert!(f.accept(&fresh));
    }

    /// One step of the randomised run.
    #[derive(Debug, Clone)]
    enum Step {
        /// A log published to resource `r` (0..3: two etl resources and a faas one).
        Publish(usize),
        /// The stream drops; the follower reconnects with its query.
        Drop,
        /// The gateway sends the last delivered log again.
        Repeat,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![6 => (0usize..3).prop_map(Step::Publish), 1 => Just(Step::Drop), 1 => Just(Step::Repeat)]
    }

    const RESOURCES: [&str; 3] = ["logs:etl:ws1:r1", "logs:etl:ws1:r2", "logs:faas:ws1:x"];
    const FOLLOWABLE: [&str; 5] = [
        "logs:etl:ws1:r1",
        "logs:etl:ws1:r2",
        "logs:etl:ws1",
        "logs:faas:ws1:x",
        "logs:faas:ws1",
    ];

    /// A model of the gateway's resume rules: a status per channel with the
    /// cursor after which everything follows, then the replay merged in
    /// cursor order, then live logs once per stream.
    fn connect(follow: &mut Follow, published: &[(usize, u64)], printed: &mut Vec<u64>) {
        let data = RawValue::from_string("{}".into()).unwrap();
        let last = published.last().map_or(0, |(_, seq)| *seq);
        let mut replay: Vec<(usize, u64)> = Vec::new();
        for (channel, resume) in follow.query().channels {
            let after = match resume {
                ResumeFrom::After(c) => c.seq,
                ResumeFrom::Live => last,
                other => panic!("unexpected {other:?}"),
            };
            let status = ChannelStatus {
                channel: channel.clone(),
                status: StatusKind::Resumed,
                cursor: Some(Cursor::new(Epoch(7), after)),
                replayed: 0,
                reason: None,
            };
            follow.on_status(&status);
            replay.extend(
                published
                    .iter()
                    .filter(|(r, seq)| *seq > after && channel.covers(&ch(RESOURCES[*r])))
                    .copied(),
            );
        }
        replay.sort_by_key(|(_, seq)| *seq);
        replay.dedup();
        for (r, seq) in replay {
            if follow.accept(&log(RESOURCES[r], seq, &data)) {
                printed.push(seq);
            }
        }
    }

    proptest::proptest! {
        /// Whatever the drops and repeats, the follower prints every log of
        /// its channels published after it started, once, in publish order.
        #[test]
        fn drops_and_repeats_lose_and_repeat_nothing(
            picks in proptest::collection::vec(proptest::bool::ANY, 5),
            steps in proptest::collection::vec(step(), 0..80),
        ) {
            let data = RawValue::from_string("{}".into()).unwrap();
            let channels: Vec<Channel> = FOLLOWABLE
                .iter()
                .zip(&picks)
                .filter(|(_, pick)| **pick)
                .map(|(c, _)| ch(c))
                .collect();
            proptest::prop_assume!(!channels.is_empty());
            let mut follow = Follow::new(channels.clone(), ResumeFrom::Live);
            let mut published: Vec<(usize, u64)> = Vec::new();
            let mut printed = Vec::new();
            let mut last_sent: Option<(usize, u64)> = None;
            connect(&mut follow, &published, &mut printed);
            for step in steps {
                match step {
                    Step::Publish(r) => {
                        let seq = published.len() as u64 + 1;
                        published.push((r, seq));
                        let resource = ch(RESOURCES[r]);
                        if channels.iter().any(|c| c.covers(&resource)) {
                            last_sent = Some((r, seq));
                            if follow.accept(&log(RESOURCES[r], seq, &data)) {
                                printed.push(seq);
                            }
                        }
                    }
                    Step::Drop => connect(&mut follow, &published, &mut printed),
                    Step::Repeat => {
                        if let Some((r, seq)) = last_sent {
                            proptest::prop_assert!(!follow.accept(&log(RESOURCES[r], seq, &data)));
                        }
                    }
                }
            }
            let expected: Vec<u64> = published
                .iter()
                .filter(|(r, _)| channels.iter().any(|c| c.covers(&ch(RESOURCES[*r]))))
                .map(|(_, seq)| *seq)
                .collect();
            proptest::prop_assert_eq!(printed, expected);
        }
    }
}

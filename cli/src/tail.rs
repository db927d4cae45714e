//! `logs-sse tail`: follows channels over one stream like `tail -f`,
//! reconnecting after a drop and resuming from its cursors ([`Follow`]).
//!
//! Notices (subscribed, resumed, gap, reconnecting) go to stderr; logs go
//! to stdout, so `logs-sse tail --json … | jq` sees only logs.

use std::io::Write;
use std::num::NonZeroU32;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use logs_sse_protocol::{
    Channel, ChannelStatus, CloseEvent, HelloEvent, LogEvent, ResumeFrom, EVENT_CLOSE, EVENT_HELLO,
    EVENT_LOG, EVENT_STATUS,
};

use crate::backoff::Backoff;
use crate::exit::Failure;
use crate::follow::{Follow, Notice};
use crate::http::{self, Verdict};
use crate::render;

/// A stream silent for this many heartbeats is considered dead.
const SILENT_HEARTBEATS: f64 = 2.5;
/// Longest wait for the first event before the heartbeat is known.
const FIRST_EVENT_WAIT: Duration = Duration::from_secs(30);
/// Reconnect delay when the gateway suggested none.
const DEFAULT_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct TailOptions {
    pub base: String,
    pub token: Option<String>,
    pub channels: Vec<Channel>,
    pub history: Option<NonZeroU32>,
    pub json: bool,
    pub color: bool,
    pub fail_on_gap: bool,
    pub exit_after: Option<u64>,
    pub quiet: bool,
}

/// How one connection ended.
enum Ended {
    /// Reconnect after this long (a drop, `close`, a silent stream).
    Reconnect(Duration),
    /// `--exit-after` reached.
    Done,
}

pub async fn run(options: TailOptions) -> Result<(), Failure> {
    let start = options.history.map_or(ResumeFrom::Live, ResumeFrom::Last);
    let mut follow = Follow::new(options.channels.clone(), start);
    let client = http::client()?;
    let mut backoff = Backoff::new(DEFAULT_RETRY / 4, MAX_RETRY);
    let mut printed = 0u64;
    let mut stdout = std::io::stdout().lock();
    loop {
        let url = format!(
            "{}/api/logs/stream?{}",
            options.base,
            follow.query().to_query_string()
        );
        let request = http::with_token(
            client.get(&url).header("accept", "text/event-stream"),
            options.token.as_deref(),
        );
        let delay = match request.send().await {
            Err(error) => {
                let delay = backoff.next_delay();
                notice(
                    &options,
                    format_args!(
                        "cannot reach {}: {}; retrying in {delay:.1?}",
                        options.base,
                        http::chain(&error)
                    ),
                );
                delay
            }
            Ok(response) if !response.status().is_success() => {
                match http::verdict(response).await {
                    Verdict::Fail(failure) => return Err(failure),
                    Verdict::Retry(message, after) => {
                        let delay = after.unwrap_or_else(|| backoff.next_delay());
                        notice(&options, format_args!("{message}; retrying in {delay:.1?}"));
                        delay
                    }
                }
            }
            Ok(response) => {
                let ended = follow_stream(
                    response,
                    &options,
                    &mut follow,
                    &mut backoff,
                    &mut printed,
                    &mut stdout,
                )
                .await?;
                match ended {
                    Ended::Done => return Ok(()),
                    Ended::Reconnect(delay) => delay,
                }
            }
        };
        tokio::time::sleep(delay).await;
    }
}

async fn follow_stream(
    response: reqwest::Response,
    options: &TailOptions,
    follow: &mut Follow,
    backoff: &mut Backoff,
    printed: &mut u64,
    out: &mut impl Write,
) -> Result<Ended, Failure> {
    let mut events = response.bytes_stream().eventsource();
    let mut silence = FIRST_EVENT_WAIT;
    let mut retry = DEFAULT_RETRY;
    loop {
        let event = match tokio::time::timeout(silence, events.next()).await {
            Err(_) => {
                notice(
                    options,
                    format_args!("no event for {silence:.1?}; reconnecting"),
                );
                return Ok(Ended::Reconnect(backoff.next_delay()));
            }
            Ok(None) => {
                notice(options, format_args!("stream ended; reconnecting"));
                return Ok(Ended::Reconnect(retry.max(backoff.next_delay())));
            }
            Ok(Some(Err(error))) => {
                notice(
                    options,
                    format_args!("stream broken ({}); reconnecting", http::chain(&error)),
                );
                return Ok(Ended::Reconnect(backoff.next_delay()));
            }
            Ok(Some(Ok(event))) => event,
        };
        if let Some(hint) = event.retry {
            retry = hint;
        }
        match event.event.as_str() {
            EVENT_HELLO => {
                if let Ok(hello) = serde_json::from_str::<HelloEvent>(&event.data) {
                    let beat = Duration::from_millis(hello.heartbeat_ms.max(1));
                    silence = beat.mul_f64(SILENT_HEARTBEATS);
                }
                backoff.reset();
            }
            EVENT_STATUS => {
                let Ok(status) = serde_json::from_str::<ChannelStatus>(&event.data) else {
                    continue;
                };
                match follow.on_status(&status) {
                    Notice::Subscribed { channel, replayed } => notice(
                        options,
                        format_args!("subscribed {channel} ({replayed} from history)"),
                    ),
                    Notice::Resumed { channel, replayed } => notice(
                        options,
                        format_args!("resumed {channel} ({replayed} missed logs follow)"),
                    ),
                    Notice::Gap { channel, reason } => {
                        let message = format!("{channel}: logs may be missing ({reason})");
                        if options.fail_on_gap {
                            return Err(Failure::Gap(message));
                        }
                        eprintln!("logs-sse: gap: {message}");
                    }
                    Notice::Denied { channel, reason } => {
                        return Err(Failure::Forbidden(format!("{channel} denied: {reason}")));
                    }
                    Notice::Unknown => {}
                }
            }
            EVENT_LOG => {
                let Ok(log) = serde_json::from_str::<LogEvent<'_>>(&event.data) else {
                    notice(options, format_args!("unreadable log event skipped"));
                    continue;
                };
                if !follow.accept(&log) {
                    continue;
                }
                let written = if options.json {
                    writeln!(out, "{}", event.data)
                } else {
                    writeln!(out, "{}", render::line(&log, options.color))
                };
                // A closed pipe (`| head`) ends the tail quietly.
                if written.and_then(|()| out.flush()).is_err() {
                    return Ok(Ended::Done);
                }
                *printed += 1;
                if options.exit_after.is_some_and(|n| *printed >= n) {
                    return Ok(Ended::Done);
                }
            }
            EVENT_CLOSE => {
                if let Ok(close) = serde_json::from_str::<CloseEvent>(&event.data) {
                    notice(
                        options,
                        format_args!(
                            "gateway closed the stream ({}: {}); resuming",
                            close.reason.as_str(),
                            close.message
                        ),
                    );
                    return Ok(Ended::Reconnect(Duration::from_millis(close.retry_ms)));
                }
            }
            _ => {}
        }
    }
}

fn notice(options: &TailOptions, message: std::fmt::Arguments<'_>) {
    if !options.quiet {
        eprintln!("logs-sse: {message}");
    }
}

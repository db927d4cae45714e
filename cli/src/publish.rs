//! `logs-sse publish`: reads stdin line by line and publishes the lines in
//! batches, one request in flight so order is kept, retrying what the
//! gateway could not take yet.
//!
//! A batch goes out when it holds `--batch-size` logs or ~512 KiB, or
//! `--linger-ms` after its first line. Temporary failures (connection
//! errors, 429, 5xx) are retried with backoff up to `--retries` times;
//! after that the rest of stdin is still read (and echoed with `--tee`),
//! so the job writing into the pipe is not stopped, and the exit code
//! says the logs were not delivered. Every attempt of a batch carries the
//! same body and `Idempotency-Key`, so a retry after an answer that was
//! lost is not stored twice (within the gateway's key TTL).

use std::io::{BufRead, Write};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::batch::{Batch, InputFormat, Target};
use crate::exit::Failure;
use crate::http::{self, Verdict};

/// Bytes of NDJSON in one request (the gateway's default body limit is 1 MiB).
const MAX_BATCH_BYTES: usize = 512 * 1024;
/// A publish request taking longer than this is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct PublishOptions {
    pub base: String,
    pub token: Option<String>,
    pub target: Target,
    pub format: InputFormat,
    pub batch_size: usize,
    pub linger: Duration,
    pub retries: u32,
    pub tee: bool,
}

#[derive(Deserialize)]
struct Answer {
    accepted: usize,
    #[serde(default)]
    errors: Vec<ItemRejection>,
}

#[derive(Deserialize)]
struct ItemRejection {
    index: usize,
    code: String,
    message: String,
}

#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    rejected: usize,
    /// Logs given up on, and why the first of them could not be sent.
    undelivered: usize,
    gave_up: Option<String>,
}

pub async fn run(options: PublishOptions) -> Result<(), Failure> {
    let client = http::client()?;
    let (lines, mut incoming) = mpsc::channel::<String>(options.batch_size.max(1) * 2);
    let tee = options.tee;
    // stdin is read on its own thread; the bounded channel pushes back on
    // the writer when the gateway is slower than the job.
    let reader = std::thread::spawn(move || read_stdin(&lines, tee));
    let url = format!("{}/api/logs/publish", options.base);
    let mut tally = Tally::default();
    let mut batch = Batch::default();
    let mut deadline: Option<Instant> = None;
    let mut line_no = 0usize;
    loop {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, incoming.recv()).await {
                Ok(line) => line,
                Err(_) => {
                    flush(&client, &url, &options, &mut batch, &mut tally).await?;
                    deadline = None;
                    continue;
                }
            },
            None => incoming.recv().await,
        };
        let Some(line) = next else { break };
        line_no += 1;
        let item = match options.target.item(&line, options.format) {
            None => continue,
            Some(Err(why)) => {
                eprintln!("logs-sse: line {line_no} skipped: {why}");
                tally.rejected += 1;
                continue;
            }
            Some(Ok(item)) => item,
        };
        if !batch.fits(&item, options.batch_size, MAX_BATCH_BYTES) {
            flush(&client, &url, &options, &mut batch, &mut tally).await?;
        }
        if batch.is_empty() {
            deadline = Some(Instant::now() + options.linger);
        }
        batch.push(&item);
        if batch.len() >= options.batch_size {
            flush(&client, &url, &options, &mut batch, &mut tally).await?;
            deadline = None;
        }
    }
    flush(&client, &url, &options, &mut batch, &mut tally).await?;
    let _ = reader.join();
    if let Some(why) = tally.gave_up {
        return Err(Failure::Unreachable(format!(
            "{} logs not delivered ({why})",
            tally.undelivered
        )));
    }
    if tally.rejected > 0 {
        return Err(Failure::Rejected(format!(
            "{} of {} logs were not accepted",
            tally.rejected,
            tally.sent + tally.rejected
        )));
    }
    Ok(())
}

fn read_stdin(lines: &mpsc::Sender<String>, tee: bool) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut stdout = std::io::stdout();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match input.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if tee {
            let _ = stdout.write_all(&raw).and_then(|()| stdout.flush());
        }
        // Job output is not always UTF-8; keep what can be read.
        let line = String::from_utf8_lossy(&raw).into_owned();
        if lines.blocking_send(line).is_err() {
            return;
        }
    }
}

/// Sends the batch (if any); once a batch was undeliverable, later ones
/// are dropped without trying, and counted.
async fn flush(
    client: &reqwest::Client,
    url: &str,
    options: &PublishOptions,
    batch: &mut Batch,
    tally: &mut Tally,
) -> Result<(), Failure> {
    if batch.is_empty() {
        return Ok(());
    }
    let (body, count) = batch.take();
    if tally.gave_up.is_some() {
        tally.undelivered += count;
        return Ok(());
    }
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    let key = format!("{:032x}", rand::random::<u128>());
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let request = http::with_token(
            client
                .post(url)
                .header("content-type", "application/x-ndjson")
                .header("idempotency-key", &key)
                .timeout(REQUEST_TIMEOUT)
                .body(body.clone()),
            options.token.as_deref(),
        );
        let problem = match request.send().await {
            Err(error) => (
                format!("cannot reach {}: {}", options.base, http::chain(&error)),
                None,
            ),
            Ok(response) if response.status().is_success() => {
                // A 2xx whose body is not the documented JSON: the status says accepted.
                let text = response.text().await.unwrap_or_default();
                let answer = serde_json::from_str(&text).unwrap_or(Answer {
                    accepted: count,
                    errors: Vec::new(),
                });
                record(answer, count, tally);
                return Ok(());
            }
            Ok(response)
                if response.status() == reqwest::StatusCode::BAD_REQUEST
                    || response.status() == reqwest::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                // Nothing of the batch was accepted; the answer names each problem.
                let text = response.text().await.unwrap_or_default();
                match serde_json::from_str::<Answer>(&text) {
                    Ok(answer) if !answer.errors.is_empty() => record(answer, count, tally),
                    _ => {
                        eprintln!(
                            "logs-sse: batch of {count} rejected: {}",
                            http::describe(reqwest::StatusCode::BAD_REQUEST, &text)
                        );
                        tally.rejected += count;
                    }
                }
                return Ok(());
            }
            Ok(response) => match http::verdict(response).await {
                Verdict::Fail(failure) => return Err(failure),
                Verdict::Retry(message, after) => (message, after),
            },
        };
        let (message, after) = problem;
        if attempt > options.retries {
            eprintln!("logs-sse: giving up on {count} logs after {attempt} attempts: {message}");
            tally.undelivered += count;
            tally.gave_up = Some(message);
            return Ok(());
        }
        let delay = after.unwrap_or_else(|| backoff.next_delay());
        eprintln!("logs-sse: {message}; retrying in {delay:.1?}");
        tokio::time::sleep(delay).await;
    }
}

fn record(answer: Answer, count: usize, tally: &mut Tally) {
    tally.sent += answer.accepted.min(count);
    for error in &answer.errors {
        eprintln!(
            "logs-sse: log #{} of a batch of {count} rejected: {}: {}",
            error.index, error.code, error.message
        );
    }
    tally.rejected += count.saturating_sub(answer.accepted);
}

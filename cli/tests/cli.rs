//! `logs-sse` against the real gateway: lines piped into `publish` arrive
//! in `tail` once and in order; `tail` resumes after a gateway restart
//! (without loss on a shared Redis store, with an explicit gap on the
//! in-memory one); bad tokens, denied channels and an unreachable gateway
//! give the documented exit codes.

mod support;

#[path = "../../gateway/tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use std::time::Duration;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use support::{message, publish, Gateway, Publisher, Tail, ETL_TOKEN};

const CHANNEL: &str = "logs:etl:ws1:job1";
const PUBLISH: [&str; 7] = [
    "publish",
    "--service",
    "etl",
    "--workspace",
    "ws1",
    "--resource",
    "job1",
];

fn publish_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = PUBLISH.to_vec();
    args.extend_from_slice(extra);
    args
}

fn numbered(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("line {i}\n")).collect()
}

async fn expect_lines(tail: &mut Tail, from: usize, to: usize) {
    for i in from..to {
        assert_eq!(message(&tail.line().await), format!("line {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_piped_lines_arrive_once_and_in_order() {
    let gateway = Gateway::start(|c| c.publish_rate = 0).await;
    let url = gateway.url();
    let mut tail = Tail::spawn(&url, &["tail", "--json", "--exit-after", "10000", CHANNEL]);
    tail.notice(&format!("subscribed {CHANNEL}")).await;
    let (code, stderr) = publish(
        &url,
        &publish_args(&["--token", ETL_TOKEN]),
        &numbered(0, 10_000),
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    expect_lines(&mut tail, 0, 10_000).await;
    assert_eq!(tail.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_starts_with_the_latest_logs_then_follows_live() {
    let gateway = Gateway::start(|_| {}).await;
    let url = gateway.url();
    let args = publish_args(&["--token", ETL_TOKEN]);
    assert_eq!(publish(&url, &args, &numbered(0, 20)).await.0, 0);
    let mut tail = Tail::spawn(
        &url,
        &[
            "tail",
            "--json",
            "--history",
            "5",
            "--exit-after",
            "7",
            CHANNEL,
        ],
    );
    tail.notice("(5 from history)").await;
    expect_lines(&mut tail, 15, 20).await;
    assert_eq!(publish(&url, &args, &numbered(20, 22)).await.0, 0);
    expect_lines(&mut tail, 20, 22).await;
    assert_eq!(tail.exit_code().await, 0);

    // Without --json: one readable line per log, uncoloured (a pipe, NO_COLOR).
    let mut plain = Tail::spawn(
        &url,
        &["tail", "--history", "1", "--exit-after", "1", CHANNEL],
    );
    let line = plain.line().await;
    assert!(
        line.ends_with(&format!(" INFO  {CHANNEL} line 21")),
        "{line}"
    );
    assert!(!line.contains('\x1b'), "{line}");
    assert_eq!(plain.exit_code().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_resumes_after_a_gateway_restart_without_loss_on_redis() {
    let redis = redis_server::RedisServer::start(redis_server::Persistence::None);
    let mut gateway = Gateway::start(|c| c.redis_url = Some(redis.url())).await;
    let url = gateway.url();
    let args = publish_args(&["--token", ETL_TOKEN]);
    let mut tail = Tail::spawn(&url, &["tail", "--json", "--history", "5", CHANNEL]);
    tail.notice("subscribed").await;
    assert_eq!(publish(&url, &args, &numbered(0, 100)).await.0, 0);
    expect_lines(&mut tail, 0, 50).await;
    gateway.restart().await;
    // Published while the tail is between connections: replayed on resume.
    assert_eq!(publish(&url, &args, &numbered(100, 200)).await.0, 0);
    let notices = tail.notice(&format!("resumed {CHANNEL}")).await;
    assert!(
        notices.iter().any(|n| n.contains("shutdown")),
        "{notices:?}"
    );
    expect_lines(&mut tail, 50, 200).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), tail.line())
            .await
            .is_err(),
        "nothing repeated after the last log"
    );
    let _ = tail.child.start_kill();
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_retries_while_the_gateway_is_down_and_loses_nothing() {
    let redis = redis_server::RedisServer::start(redis_server::Persistence::None);
    let mut gateway = Gateway::start(|c| c.redis_url = Some(redis.url())).await;
    let url = gateway.url();
    let mut job = Publisher::spawn(
        &url,
        &publish_args(&["--token", ETL_TOKEN, "--linger-ms", "20"]),
    );
    job.write(&numbered(0, 50)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.stop().await;
    // Written while nothing listens: the batch is retried with backoff.
    job.write(&numbered(50, 100)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    gateway.start_again().await;
    let (code, stderr) = job.finish().await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("retrying"),
        "the outage was noticed: {stderr}"
    );
    let mut tail = Tail::spawn(
        &url,
        &[
            "tail",
            "--json",
            "--history",
            "1000",
            "--exit-after",
            "100",
            CHANNEL,
        ],
    );
    expect_lines(&mut tail, 0, 100).await;
    assert_eq!(tail.exit_code().await, 0);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_the_in_memory_gateway_is_an_explicit_gap() {
    let mut gateway = Gateway::start(|_| {}).await;
    let url = gateway.url();
    let args = publish_args(&["--token", ETL_TOKEN]);
    let mut warned = Tail::spawn(&url, &["tail", "--json", CHANNEL]);
    let mut strict = Tail::spawn(&url, &["tail", "--json", "--fail-on-gap", CHANNEL]);
    warned.notice("subscribed").await;
    strict.notice("subscribed").await;
    assert_eq!(publish(&url, &args, &numbered(0, 3)).await.0, 0);
    expect_lines(&mut warned, 0, 3).await;
    expect_lines(&mut strict, 0, 3).await;
    gateway.restart().await;
    warned.notice("gap").await;
    assert_eq!(strict.exit_code().await, 6);
    // The warned tail goes on with what the new gateway receives.
    assert_eq!(publish(&url, &args, &numbered(3, 5)).await.0, 0);
    expect_lines(&mut warned, 3, 5).await;
    let _ = warned.child.start_kill();
    gateway.stop().await;
}

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

fn jwt(channels: serde_json::Value) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "alice", "exp": exp, "logs_channels": channels}),
        &EncodingKey::from_secret(SECRET.as_bytes()).expect("key"),
    )
    .expect("jwt")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_denied_channels_give_their_exit_codes() {
    let mut gateway = Gateway::start(|c| {
        c.allow_anonymous = false;
        c.jwt_secret = Some(SECRET.into());
    })
    .await;
    let url = gateway.url();

    let mut anonymous = Tail::spawn(&url, &["tail", CHANNEL]);
    assert_eq!(anonymous.exit_code().await, 4);
    let mut forged = Tail::spawn(&url, &["tail", "--token", "not.a.jwt", CHANNEL]);
    assert_eq!(forged.exit_code().await, 4);
    let other = jwt(json!(["logs:faas:ws1:*"]));
    let mut forbidden = Tail::spawn(&url, &["tail", "--token", &other, CHANNEL]);
    let seen = forbidden.notice("403").await;
    assert_eq!(forbidden.exit_code().await, 5, "{seen:?}");
    // One channel granted, one denied: the stream opens, the denial ends it.
    let mut denied = Tail::spawn(
        &url,
        &["tail", "--token", &other, CHANNEL, "logs:faas:ws1:f"],
    );
    let seen = denied.notice("denied").await;
    assert_eq!(denied.exit_code().await, 5, "{seen:?}");
    let allowed = jwt(json!(["logs:etl:ws1:*"]));
    let mut ok = Tail::spawn(&url, &["tail", "--json", "--token", &allowed, CHANNEL]);
    ok.notice("subscribed").await;

    let (code, stderr) = publish(&url, &publish_args(&["--token", "wrong-token-123"]), "x\n").await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    let faas = [
        "publish",
        "--service",
        "faas",
        "--workspace",
        "ws1",
        "--resource",
        "f",
        "--token",
        ETL_TOKEN,
    ];
    let (code, stderr) = publish(&url, &faas, "x\n").await;
    assert_eq!(code, 5, "{stderr}");
    let (code, _) = publish(&url, &publish_args(&["--token", ETL_TOKEN]), "line 0\n").await;
    assert_eq!(code, 0);
    assert_eq!(message(&ok.line().await), "line 0");
    let _ = ok.child.start_kill();
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_that_cannot_be_delivered_or_are_rejected_fail_the_command() {
    // A port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", free.local_addr().expect("addr"));
    drop(free);
    let args = publish_args(&["--token", ETL_TOKEN, "--retries", "1", "--tee"]);
    let (code, stderr) = publish(&dead, &args, "a\nb\n").await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("2 logs not delivered"), "{stderr}");

    let gateway = Gateway::start(|c| c.max_log_bytes = 1024).await;
    let ndjson = publish_args(&["--token", ETL_TOKEN, "--format", "ndjson"]);
    let big = format!("{{\"message\":\"{}\"}}\n", "x".repeat(2000));
    let input = format!("{{\"message\":\"ok\"}}\nnot json\n{big}");
    let (code, stderr) = publish(&gateway.url(), &ndjson, &input).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("line 2 skipped"), "{stderr}");
    assert!(stderr.contains("2 of 3 logs were not accepted"), "{stderr}");
    let (code, stderr) = publish(&gateway.url(), &["tail"], "").await;
    assert_eq!(code, 2, "{stderr}");
}

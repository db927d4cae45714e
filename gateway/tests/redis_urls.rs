//! What `--redis-url` can say, against a real `redis-server`: a password
//! and a database number, and `rediss://` (TLS) verified against a CA from
//! the system store (`SSL_CERT_FILE`) or, with `#insecure`, not verified.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::redis_server::RedisServer;
use support::*;

/// An in-process gateway on the Redis at `url`.
async fn gateway(url: String) -> TestGateway {
    TestGateway::start_with(move |c| {
        c.redis_url = Some(url);
        c.redis_check_ms = 100;
        c.redis_timeout_ms = 1000;
    })
    .await
}

fn batch(ws: &str, range: std::ops::Range<u64>) -> Value {
    Value::Array(
        range
            .map(|n| json!({"service": "etl", "workspace_id": ws, "workflow_id": "wf1", "logData": {"n": n}}))
            .collect(),
    )
}

/// Publishes 0..3 and reads them back on an open stream.
async fn round_trip(gateway: &TestGateway, ws: &str) {
    let mut stream = gateway
        .subscribe(&format!("channels=logs:etl:{ws}:wf1"))
        .await;
    let (status, answer) = gateway.publish(ETL_TOKEN, &batch(ws, 0..3)).await;
    assert_eq!(status, 202, "{answer}");
    let got: Vec<u64> = stream
        .logs(3)
        .await
        .iter()
        .map(|l| l.data["n"].as_u64().unwrap())
        .collect();
    assert_eq!(got, [0, 1, 2]);
}

#[tokio::test]
async fn a_password_and_a_database_number_in_the_url_are_used() {
    let server = RedisServer::with_password("secret");
    let url = format!("redis://:secret@127.0.0.1:{}/3", server.port);
    let gw = gateway(url).await;
    round_trip(&gw, "ws1").await;
    let keys = |db: &str| server.cli(&["-a", "secret", "--no-auth-warning", "-n", db, "DBSIZE"]);
    assert_ne!(keys("3").trim(), "0", "the keys live in database 3");
    assert_eq!(keys("0").trim(), "0", "and not in database 0");

    let wrong = gateway(format!("redis://:wrong@127.0.0.1:{}/3", server.port)).await;
    let (status, answer) = wrong.publish(ETL_TOKEN, &batch("ws1", 3..4)).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("backend_unavailable")),
        "a wrong password is refused clearly: {answer}"
    );
}

#[tokio::test]
async fn rediss_with_insecure_accepts_a_self_signed_server() {
    let Some(server) = RedisServer::with_tls() else {
        eprintln!("SKIPPED: redis-server without TLS support or no openssl");
        return;
    };
    let gw = gateway(format!("rediss://127.0.0.1:{}/#insecure", server.port)).await;
    round_trip(&gw, "ws2").await;
}

/// The gateway binary on the Redis at `url`, with `SSL_CERT_FILE` set when
/// `ca` is given (the system root store then holds that CA only).
fn spawn_node(url: &str, ca: Option<&std::path::Path>) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_logs-sse-gateway"));
    command
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--allow-anonymous",
        ])
        .args(["--service-token", &format!("etl={ETL_TOKEN}")])
        .args(["--redis-url", url, "--redis-timeout-ms", "1000"])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(ca) = ca {
        command.env("SSL_CERT_FILE", ca);
    }
    (command.spawn().unwrap(), format!("http://127.0.0.1:{port}"))
}

async fn listening(base: &str) {
    for _ in 0..100 {
        if reqwest::get(format!("{base}/health")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway process did not start");
}

#[tokio::test]
async fn rediss_verifies_the_server_against_the_system_roots() {
    let Some(server) = RedisServer::with_tls() else {
        eprintln!("SKIPPED: redis-server without TLS support or no openssl");
        return;
    };
    let url = format!("rediss://localhost:{}/", server.port);
    let ca = server.tls().unwrap().ca_file.clone();

    let (mut trusted, base) = spawn_node(&url, Some(&ca));
    listening(&base).await;
    round_trip(&TestGateway::external(base), "ws3").await;
    trusted.kill().unwrap();
    trusted.wait().unwrap();

    // Without the CA in its roots the certificate is refused: a clear 503.
    let (mut untrusting, base) = spawn_node(&url, None);
    listening(&base).await;
    let (status, answer) = TestGateway::external(base)
        .publish(ETL_TOKEN, &batch("ws3", 3..4))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("backend_unavailable")),
        "{answer}"
    );
    untrusting.kill().unwrap();
    untrusting.wait().unwrap();
}

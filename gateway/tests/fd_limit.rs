//! The gateway binary under a low open-file limit (set with `prlimit` on
//! the child process): when accepting fails with "too many open files" it
//! backs off instead of spinning and keeps serving its open connections;
//! with the default connection cap (derived from the limit) it never gets
//! there and `/health` keeps answering.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::json;
use support::{parse_log, ADMIN_TOKEN, ETL_TOKEN};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::sleep;

struct Gateway {
    child: Child,
    base: String,
}

/// Starts the gateway binary with at most `nofile` open files, or `None`
/// where `prlimit` is not available.
async fn start(nofile: u32, extra: &[&str]) -> Option<Gateway> {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("prlimit not found: skipping");
        return None;
    }
    let mut child = Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_logs-sse-gateway"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--allow-anonymous",
            "--public-metrics",
        ])
        .args(["--service-token", &format!("etl={ETL_TOKEN}")])
        .args(["--admin-token", ADMIN_TOKEN])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = line.strip_prefix("listening on ").unwrap().to_owned();
    Some(Gateway { child, base })
}

async fn counter(http: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("logs_sse_{name} ")))
        .unwrap()
        .parse()
        .unwrap()
}

async fn publish(http: &reqwest::Client, base: &str, n: u32) -> u16 {
    http.post(format!("{base}/api/logs/publish"))
        .bearer_auth(ETL_TOKEN)
        .json(&json!({"service": "etl", "workspace_id": "fd", "workflow_id": "wf1", "logData": {"n": n}}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn out_of_file_descriptors_the_gateway_backs_off_and_keeps_serving_its_streams() {
    // A cap above the limit, so accepting runs out of descriptors.
    let Some(mut gw) = start(
        128,
        &[
            "--max-connections",
            "10000",
            "--header-read-timeout-secs",
            "4",
        ],
    )
    .await
    else {
        return;
    };
    let base = gw.base.clone();
    // One pooled connection for publishing and one stream, opened before.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    assert_eq!(publish(&http, &base, 0).await, 202);
    let response = reqwest::get(format!("{base}/api/logs/stream?channels=logs:etl:fd:wf1"))
        .await
        .unwrap();
    let mut events = response.bytes_stream().eventsource();

    let mut crowd = Vec::new();
    for _ in 0..200 {
        // Connections wait in the listen backlog once descriptors run out.
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            TcpStream::connect(gw.base.trim_start_matches("http://")),
        )
        .await
        {
            crowd.push(s);
        }
    }
    sleep(Duration::from_millis(500)).await;
    let first = counter(&http, &base, "accept_errors_total").await;
    assert!(first > 0, "the descriptors did not run out");
    sleep(Duration::from_secs(1)).await;
    let errors = counter(&http, &base, "accept_errors_total").await - first;
    assert!(
        errors <= 20,
        "{errors} failed accepts in a second: spinning"
    );

    // The open stream is still served.
    assert_eq!(publish(&http, &base, 1).await, 202);
    let log = loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event.event == "log" {
            break parse_log(&event.data);
        }
    };
    assert_eq!(log.data["n"], 1);

    // Once the silent sockets time out, new connections are served again.
    drop(crowd);
    let fresh = reqwest::Client::new();
    let mut answered = false;
    for _ in 0..40 {
        if let Ok(r) = fresh
            .get(format!("{base}/health"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
        {
            answered = r.status() == 200;
            break;
        }
        sleep(Duration::from_millis(250)).await;
    }
    assert!(answered, "/health never answered again");
    gw.child.kill().await.unwrap();
}

#[tokio::test]
async fn with_the_default_cap_health_answers_under_a_low_descriptor_limit() {
    // The cap is 320 - 256 = 64 connections; 300 silent sockets exceed it
    // and the descriptors it leaves.
    let Some(mut gw) = start(320, &[]).await else {
        return;
    };
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut crowd = Vec::new();
    for _ in 0..300 {
        crowd.push(TcpStream::connect(&addr).await.unwrap());
    }
    sleep(Duration::from_millis(300)).await;
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let response = http
            .get(format!("{}/health", gw.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .expect("/health answers at the connection cap");
        assert_eq!(response.status(), 200);
    }
    let response = http
        .get(format!("{}/api/logs/stream?channels=logs:etl:a", gw.base))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections");
    drop(crowd);
    sleep(Duration::from_millis(300)).await;
    assert_eq!(counter(&http, &gw.base, "accept_errors_total").await, 0);
    gw.child.kill().await.unwrap();
}

//! A hostile crowd against a gateway under steady publishing: streams that
//! never read, silent sockets and a slowloris crowd, while healthy streams
//! must receive every log exactly once and in order and `/health` keeps
//! answering. Scaled to run in a few seconds; loopback only, bounded in
//! count and time.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{sleep, Instant};

const STALLED: usize = 200;
const IDLE: usize = 1000;
const SLOWLORIS: usize = 100;
const HEALTHY: usize = 5;
const BATCHES: usize = 160;
const BATCH: usize = 50;
/// Batches per second: 2,000 logs/s.
const BATCHES_PER_SEC: u64 = 40;
const CHANNEL: &str = "logs:etl:soak";

/// Lets this process open the crowd's sockets where the soft open-file limit
/// is low (each socket is two descriptors here: client and gateway).
fn raise_fd_limit() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_streams_lose_nothing_while_a_hostile_crowd_is_cut() {
    raise_fd_limit();
    let gw = TestGateway::start_with(|c| {
        c.header_read_timeout_secs = 2;
        c.idle_timeout_secs = 3;
        c.heartbeat_secs = 1;
        c.write_timeout_secs = 1;
        c.socket_send_buffer_bytes = Some(16 * 1024);
        c.max_streams_per_ip = 1000;
        c.publish_rate = 0;
    })
    .await;
    let addr: std::net::SocketAddr = gw.base.trim_start_matches("http://").parse().unwrap();

    let mut healthy = Vec::new();
    for _ in 0..HEALTHY {
        healthy.push(gw.subscribe(&format!("channels={CHANNEL}")).await);
    }
    let readers: Vec<_> = healthy
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut cursors = Vec::with_capacity(BATCHES * BATCH);
                while cursors.len() < BATCHES * BATCH {
                    let event = stream.next_event().await;
                    match event.event.as_str() {
                        "log" => cursors.push(parse_log(&event.data).seq),
                        "ping" => {}
                        other => panic!("a healthy stream got {other}: {event:?}"),
                    }
                }
                (cursors, stream)
            })
        })
        .collect();

    let mut crowd: Vec<TcpStream> = Vec::new();
    for _ in 0..STALLED {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        s.write_all(
            format!("GET /api/logs/stream?channels={CHANNEL} HTTP/1.1\r\nHost: x\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        crowd.push(s);
    }
    for _ in 0..IDLE {
        crowd.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut slow = Vec::new();
    for _ in 0..SLOWLORIS {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    let slowloris = tokio::spawn(async move {
        for _ in 0..10 {
            sleep(Duration::from_millis(500)).await;
            for s in &mut slow {
                let _ = s.write_all(b"X").await;
            }
        }
        slow
    });

    let item = json!({"service": "etl", "workspace_id": "soak", "workflow_id": "wf1", "logData": {"msg": "steady"}});
    let batch = Value::Array(vec![item; BATCH]);
    let started = Instant::now();
    let mut published = Vec::with_capacity(BATCHES * BATCH);
    let mut health_checks = 0;
    for n in 0..BATCHES {
        let (status, body) = gw.publish(ETL_TOKEN, &batch).await;
        assert_eq!(status, 202, "{body}");
        published.extend(body["cursors"].as_array().unwrap().iter().map(|c| {
            c["cursor"]
                .as_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        }));
        if n % 20 == 0 {
            let health = gw
                .http
                .get(gw.url("/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .expect("/health answers under load");
            assert_eq!(health.status(), 200);
            health_checks += 1;
        }
        let due = started + Duration::from_millis((n as u64 + 1) * 1000 / BATCHES_PER_SEC);
        tokio::time::sleep_until(due).await;
    }
    assert!(health_checks >= 8);

    let mut kept = Vec::new();
    for reader in readers {
        let (cursors, stream) = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
        kept.push(stream);
        assert_eq!(cursors.len(), published.len());
        let unique: HashSet<_> = cursors.iter().collect();
        assert_eq!(
            unique.len(),
            cursors.len(),
            "a healthy stream got a log twice"
        );
        assert_eq!(
            cursors, published,
            "a healthy stream lost or reordered logs"
        );
    }
    // The stalled streams were cut and their slots freed; only the healthy
    // streams remain.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open = gw.stats().await["connections"].as_i64().unwrap();
        if open == HEALTHY as i64 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} streams still open");
        sleep(Duration::from_millis(100)).await;
    }
    drop(kept);
    drop(slowloris.await.unwrap());
    drop(crowd);
    gw.stop().await;
}

//! Test support: the real gateway in-process on a loopback port (restartable
//! on the same port), and the `logs-sse` binary as a child process.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use logs_sse_gateway::Config;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub const ETL_TOKEN: &str = "etl-test-token";
/// Longest a test waits for one line or one exit.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Gateway {
    pub addr: SocketAddr,
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Gateway {
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::for_tests();
        config.retry_ms = 100;
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut gateway = Gateway {
            addr,
            config,
            stop: None,
            task: None,
        };
        gateway.serve(listener);
        gateway
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = self.config.clone();
        self.task = Some(tokio::spawn(async move {
            logs_sse_gateway::run(listener, config, async {
                let _ = stopped.await;
            })
            .await
            .expect("gateway run");
        }));
        self.stop = Some(stop);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, task).await;
        }
    }

    /// Stops the gateway (open streams get `close` `shutdown`) and starts
    /// it again on the same port with the same configuration.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Starts a stopped gateway again on its port.
    pub async fn start_again(&mut self) {
        // The old listener may close a moment after the server returned.
        let deadline = tokio::time::Instant::now() + WAIT;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("rebind {}: {error}", self.addr),
            }
        };
        self.serve(listener);
    }
}

/// `logs-sse` with the given arguments against `gateway`, no inherited
/// `LOGS_SSE_*` settings.
pub fn cli(gateway: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_logs-sse"));
    command
        .args(args)
        .env("LOGS_SSE_GATEWAY", gateway)
        .env_remove("LOGS_SSE_TOKEN")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A running `logs-sse tail`: stdout lines, stderr lines on a channel.
pub struct Tail {
    pub child: Child,
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub stderr: mpsc::UnboundedReceiver<String>,
}

impl Tail {
    pub fn spawn(gateway: &str, args: &[&str]) -> Self {
        let mut child = cli(gateway, args).spawn().expect("spawn logs-sse");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let _ = tx.send(line);
            }
        });
        Tail {
            child,
            stdout,
            stderr: rx,
        }
    }

    /// Waits for a stderr notice containing `text`; returns the lines seen.
    pub async fn notice(&mut self, text: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = tokio::time::timeout(WAIT, self.stderr.recv())
                .await
                .unwrap_or_else(|_| panic!("no notice {text:?}; saw {seen:?}"))
                .unwrap_or_else(|| panic!("tail ended before {text:?}; saw {seen:?}"));
            let found = line.contains(text);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }

    pub async fn line(&mut self) -> String {
        tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .expect("a log line in time")
            .expect("read stdout")
            .expect("tail ended early")
    }

    pub async fn exit_code(&mut self) -> i32 {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("tail exits in time")
            .expect("wait")
            .code()
            .expect("exit code")
    }
}

/// Runs `logs-sse publish …` with `input` on stdin; exit code and stderr.
pub async fn publish(gateway: &str, args: &[&str], input: &str) -> (i32, String) {
    let mut child = cli(gateway, args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn logs-sse");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(input.as_bytes()).await;
    });
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("publish exits in time")
        .expect("wait");
    let _ = writer.await;
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `logs-sse publish` whose stdin the test writes over time.
pub struct Publisher {
    pub child: Child,
    stdin: Option<tokio::process::ChildStdin>,
}

impl Publisher {
    pub fn spawn(gateway: &str, args: &[&str]) -> Self {
        let mut child = cli(gateway, args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn logs-sse");
        let stdin = child.stdin.take();
        Publisher { child, stdin }
    }

    pub async fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).await.expect("write stdin");
        stdin.flush().await.expect("flush stdin");
    }

    /// Closes stdin and waits: exit code and stderr.
    pub async fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        let out = tokio::time::timeout(WAIT, self.child.wait_with_output())
            .await
            .expect("publish exits in time")
            .expect("wait");
        (
            out.status.code().expect("exit code"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The message of a `--json` tail line.
pub fn message(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).expect("json line");
    v["logData"]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

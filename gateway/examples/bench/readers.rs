//! Every stream of a run read on one thread over one epoll set, so the load
//! generator stays cheap beside thousands of streams and measures the
//! gateway, not its own queueing: no task per stream, no wake-up hop, one
//! `read` per readable socket, and only the send time of each log parsed
//! (`"t":` in the bench's `logData`). The thread also reports its own CPU
//! time, so a run can show the reader was not the bottleneck.
//!
//! By default the thread polls (every [`DEFAULT_POLL_US`] µs when nothing
//! is ready) instead of sleeping in `epoll_wait`: over loopback a write to
//! a socket whose reader sleeps makes the *writer* wake that thread on the
//! other core (an inter-processor interrupt, a third of the gateway's CPU
//! in a profile), a cost a gateway writing to a network card does not pay.
//! Polling adds at most that period to a measured latency.
//! `BENCH_READER_POLL_US=0` makes the thread block in `epoll_wait` instead.

use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const T_KEY: &[u8] = b"\"t\":";
/// Bytes read per `read` call.
const READ_BYTES: usize = 64 * 1024;
/// Sleep between polls that found nothing ready, in µs.
pub const DEFAULT_POLL_US: u64 = 100;

/// The polling period (`BENCH_READER_POLL_US`); zero blocks in `epoll_wait`.
pub fn poll_period() -> Duration {
    let us = std::env::var("BENCH_READER_POLL_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_POLL_US);
    Duration::from_micros(us)
}

/// What the readers saw, once stopped.
#[derive(Debug, Default)]
pub struct Received {
    /// Logs read, over every stream.
    pub deliveries: u64,
    /// Latency of each sampled log in µs (the reader's clock minus the
    /// send time the log carries), sorted.
    pub samples: Vec<u64>,
    /// Streams the gateway ended (a slow-consumer cut, or any other end).
    pub cut: usize,
    /// CPU time of the reader thread, in seconds.
    pub cpu_secs: f64,
}

/// The reader thread of one run.
pub struct Readers {
    stop: Arc<AtomicBool>,
    counting: Arc<AtomicBool>,
    thread: JoinHandle<Received>,
}

struct Conn {
    tcp: TcpStream,
    /// The start of an event split across reads.
    carry: Vec<u8>,
    sample: bool,
    open: bool,
}

impl Readers {
    /// Starts reading `streams` (already past their `status` events). Logs
    /// count from [`Readers::count`] on; `sample(i)` says whether stream
    /// `i` records latencies; `clock()` is in the unit of the logs' `t`.
    pub fn start(
        streams: Vec<std::net::TcpStream>,
        sample: impl Fn(usize) -> bool,
        clock: impl Fn() -> u64 + Send + 'static,
    ) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let counting = Arc::new(AtomicBool::new(false));
        let mut conns: Vec<Conn> = streams
            .into_iter()
            .enumerate()
            .map(|(i, tcp)| {
                tcp.set_nonblocking(true).unwrap();
                Conn {
                    tcp: TcpStream::from_std(tcp),
                    carry: Vec::new(),
                    sample: sample(i),
                    open: true,
                }
            })
            .collect();
        let (stop_flag, counting_flag) = (stop.clone(), counting.clone());
        let period = poll_period();
        let thread = std::thread::spawn(move || {
            let mut poll = Poll::new().unwrap();
            for (i, conn) in conns.iter_mut().enumerate() {
                poll.registry()
                    .register(&mut conn.tcp, Token(i), Interest::READABLE)
                    .unwrap();
            }
            let cpu_before = thread_cpu_secs();
            let mut events = Events::with_capacity(1024);
            let mut buf = vec![0u8; READ_BYTES];
            let mut received = Received::default();
            while !stop_flag.load(Ordering::Relaxed) {
                let wait = if period.is_zero() {
                    Duration::from_millis(20)
                } else {
                    Duration::ZERO
                };
                if let Err(e) = poll.poll(&mut events, Some(wait)) {
                    assert_eq!(e.kind(), ErrorKind::Interrupted, "{e}");
                    continue;
                }
                if events.is_empty() && !period.is_zero() {
                    std::thread::sleep(period);
                    continue;
                }
                let counting = counting_flag.load(Ordering::Relaxed);
                for event in &events {
                    let conn = &mut conns[event.token().0];
                    read_ready(conn, &mut buf, counting, &clock, &mut received);
                }
                // Under a real-time policy this thread would otherwise keep
                // the publisher, on the same core, waiting for as long as
                // logs keep arriving.
                std::thread::yield_now();
            }
            received.cpu_secs = thread_cpu_secs() - cpu_before;
            received.cut = conns.iter().filter(|c| !c.open).count();
            received.samples.sort_unstable();
            received
        });
        Readers {
            stop,
            counting,
            thread,
        }
    }

    /// Starts (or stops) counting and sampling logs.
    pub fn count(&self, on: bool) {
        self.counting.store(on, Ordering::Relaxed);
    }

    /// Stops the thread and returns what it saw; the streams are closed.
    pub fn stop(self) -> Received {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Reads what a readable socket holds (edge-triggered: until it would
/// block) and parses the complete events.
fn read_ready(
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    counting: bool,
    clock: &impl Fn() -> u64,
    received: &mut Received,
) {
    while conn.open {
        let carry = conn.carry.len();
        if buf.len() < carry + READ_BYTES {
            buf.resize(carry + READ_BYTES, 0);
        }
        buf[..carry].copy_from_slice(&conn.carry);
        let n = match conn.tcp.read(&mut buf[carry..]) {
            Ok(0) => {
                conn.open = false;
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                conn.open = false;
                return;
            }
        };
        let data = &buf[..carry + n];
        let complete = memchr::memmem::rfind(data, b"\n\n").map_or(0, |i| i + 2);
        conn.carry.clear();
        conn.carry.extend_from_slice(&data[complete..]);
        if !counting {
            continue;
        }
        let now = if conn.sample { clock() } else { 0 };
        for at in memchr::memmem::find_iter(&data[..complete], T_KEY) {
            received.deliveries += 1;
            if conn.sample {
                let digits = &data[at + T_KEY.len()..complete];
                let sent = digits
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                received.samples.push(now.saturating_sub(sent));
            }
        }
    }
}

/// CPU time (user + system) of the calling thread, from `/proc`.
fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or("", |(_, rest)| rest)
        .split(' ')
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // USER_HZ is 100 on every Linux architecture this runs on.
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

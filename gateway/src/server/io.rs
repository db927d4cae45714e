//! A socket that records when bytes last moved and since when a write has
//! been waiting, so the connection's watchdog can end connections that went
//! idle or whose client stopped reading.
//!
//! Timestamps are milliseconds since the connection's start on tokio's
//! clock, kept in atomics: the socket is owned by hyper, the watchdog only
//! reads them.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// No write is waiting.
const NOT_BLOCKED: u64 = u64::MAX;

/// What the watchdog knows about one connection's socket.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_io_ms: AtomicU64,
    write_blocked_since_ms: AtomicU64,
}

/// Why the watchdog ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// No byte read or written for the idle timeout.
    Idle,
    /// A write has waited for the client longer than the write timeout.
    WriteStalled,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            start: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            write_blocked_since_ms: AtomicU64::new(NOT_BLOCKED),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn moved(&self) {
        self.last_io_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn wrote(&self) {
        self.moved();
        self.write_blocked_since_ms
            .store(NOT_BLOCKED, Ordering::Relaxed);
    }

    fn write_blocked(&self) {
        // Only the first Pending of a wait counts: the wait started then.
        let _ = self.write_blocked_since_ms.compare_exchange(
            NOT_BLOCKED,
            self.now_ms(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Whether the connection outlived one of its timeouts at `now`.
    pub fn expired(&self, now: Instant, idle: Duration, write: Duration) -> Option<Expired> {
        let now_ms = u64::try_from(now.saturating_duration_since(self.start).as_millis())
            .unwrap_or(u64::MAX - 1);
        let blocked = self.write_blocked_since_ms.load(Ordering::Relaxed);
        if blocked != NOT_BLOCKED && now_ms.saturating_sub(blocked) >= millis(write) {
            return Some(Expired::WriteStalled);
        }
        let last = self.last_io_ms.load(Ordering::Relaxed);
        (now_ms.saturating_sub(last) >= millis(idle)).then_some(Expired::Idle)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A socket whose reads and writes update an [`Activity`].
#[derive(Debug)]
pub struct WatchedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> WatchedIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        WatchedIo { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.moved();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> WatchedIo<T> {
    fn record(&self, result: &Poll<io::Result<usize>>) {
        match result {
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.wrote(),
            Poll::Pending => self.activity.write_blocked(),
            _ => {}
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.record(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.record(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_and_stalled_writes_expire_after_their_timeouts() {
        let (idle, write) = (Duration::from_secs(60), Duration::from_secs(30));
        let activity = Activity::new();
        let at = |secs| activity.start + Duration::from_secs(secs);
        assert_eq!(activity.expired(at(59), idle, write), None);
        assert_eq!(activity.expired(at(60), idle, write), Some(Expired::Idle));
        tokio::time::advance(Duration::from_secs(50)).await;
        activity.moved();
        assert_eq!(activity.expired(at(100), idle, write), None);
        activity.write_blocked();
        tokio::time::advance(Duration::from_secs(10)).await;
        activity.write_blocked();
        assert_eq!(activity.expired(at(79), idle, write), None);
        assert_eq!(
            activity.expired(at(80), idle, write),
            Some(Expired::WriteStalled),
            "the wait counts from its first Pending"
        );
        activity.wrote();
        assert_eq!(activity.expired(at(80), idle, write), None);
    }
}

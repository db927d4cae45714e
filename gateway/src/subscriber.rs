//! One stream's bounded send queue.
//!
//! Publishers never wait for a browser: [`Subscriber::deliver`] only tries to
//! enqueue. When a stream's queue is full, by event count or by bytes, the
//! stream is closed as a slow consumer and removed from every channel. It
//! reconnects and resumes from its cursors, so nothing is lost while the
//! gateway's memory stays bounded by the queue limits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use logs_sse_protocol::CloseReason;
use tokio::sync::{mpsc, Notify};

use crate::frame::Frame;

/// The publishing side of one stream, shared with every channel it joined.
#[derive(Debug)]
pub struct Subscriber {
    id: u64,
    tx: mpsc::Sender<Frame>,
    queued_bytes: AtomicUsize,
    max_queued_bytes: usize,
    closed: OnceLock<CloseReason>,
    wake: Notify,
}

/// The stream side: yields queued frames until the subscriber is closed.
#[derive(Debug)]
pub struct SubscriberQueue {
    rx: mpsc::Receiver<Frame>,
    subscriber: Arc<Subscriber>,
}

/// What the stream should send next.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    Closed(CloseReason),
}

/// Result of offering a frame to a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Queued,
    /// The queue was full: the subscriber has just been closed.
    SlowConsumer,
    /// The subscriber was already closed or its stream is gone.
    Gone,
}

impl Subscriber {
    /// Creates a subscriber whose queue holds at most `max_events` frames and
    /// `max_bytes` bytes.
    pub fn new(id: u64, max_events: usize, max_bytes: usize) -> (Arc<Subscriber>, SubscriberQueue) {
        let (tx, rx) = mpsc::channel(max_events.max(1));
        let subscriber = Arc::new(Subscriber {
            id,
            tx,
            queued_bytes: AtomicUsize::new(0),
            max_queued_bytes: max_bytes,
            closed: OnceLock::new(),
            wake: Notify::new(),
        });
        let queue = SubscriberQueue {
            rx,
            subscriber: subscriber.clone(),
        };
        (subscriber, queue)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get().is_some() || self.tx.is_closed()
    }

    /// Bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Offers a frame without waiting. Once this returns anything but
    /// [`Delivery::Queued`] it never queues again, so a stream never skips a
    /// log and then receives a later one.
    pub fn deliver(&self, frame: &Frame) -> Delivery {
        if self.is_closed() {
            return Delivery::Gone;
        }
        let len = frame.len();
        let queued = self.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
        if queued > self.max_queued_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            return self.overflow();
        }
        match self.tx.try_send(frame.clone()) {
            Ok(()) => Delivery::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                self.overflow()
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                Delivery::Gone
            }
        }
    }

    fn overflow(&self) -> Delivery {
        if self.close(CloseReason::SlowConsumer) {
            Delivery::SlowConsumer
        } else {
            Delivery::Gone
        }
    }

    /// Ends the stream with `reason`. Returns false if it was already closed.
    pub fn close(&self, reason: CloseReason) -> bool {
        let first = self.closed.set(reason).is_ok();
        if first {
            self.wake.notify_one();
        }
        first
    }
}

impl SubscriberQueue {
    /// Waits for the next frame, or for the subscriber to be closed. A closed
    /// subscriber's remaining frames are discarded: its client resumes from
    /// its cursors instead.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(reason) = self.subscriber.closed.get() {
                return Next::Closed(*reason);
            }
            tokio::select! {
                biased;
                () = self.subscriber.wake.notified() => {}
                frame = self.rx.recv() => {
                    // The sender lives in `self.subscriber`, so the channel never ends.
                    let Some(frame) = frame else { return Next::Closed(CloseReason::Shutdown) };
                    self.subscriber.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
                    return Next::Frame(frame);
                }
            }
        }
    }

    /// Takes an already-queued frame without waiting, if the stream is open.
    pub fn try_next(&mut self) -> Option<Frame> {
        if self.subscriber.closed.get().is_some() {
            return None;
        }
        let frame = self.rx.try_recv().ok()?;
        self.subscriber
            .queued_bytes
            .fetch_sub(frame.len(), Ordering::Relaxed);
        Some(frame)
    }

    pub fn subscriber(&self) -> &Arc<Subscriber> {
        &self.subscriber
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn full_queue_closes_once_and_never_queues_again() {
        let (sub, mut queue) = Subscriber::new(1, 2, 1024);
        let f = Bytes::from_static(b"x");
        assert_eq!(sub.deliver(&f), Delivery::Queued);
        assert_eq!(sub.deliver(&f), Delivery::Queued);
        assert_eq!(sub.deliver(&f), Delivery::SlowConsumer);
        // Space frees up, but a closed subscriber must not receive later logs.
        assert!(matches!(
            queue.next().await,
            Next::Closed(CloseReason::SlowConsumer)
        ));
        assert_eq!(sub.deliver(&f), Delivery::Gone);
    }

    #[tokio::test]
    async fn byte_bound_applies_before_count_bound() {
        let (sub, mut queue) = Subscriber::new(1, 100, 10);
        let f = Bytes::from_static(b"123456");
        assert_eq!(sub.deliver(&f), Delivery::Queued);
        assert_eq!(sub.queued_bytes(), 6);
        assert_eq!(sub.deliver(&f), Delivery::SlowConsumer);
        assert_eq!(sub.queued_bytes(), 6);
        assert!(matches!(queue.next().await, Next::Closed(_)));
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_release_their_bytes() {
        let (sub, mut queue) = Subscriber::new(1, 10, 100);
        for i in 0..3u8 {
            sub.deliver(&Bytes::from(vec![i; 4]));
        }
        let Next::Frame(first) = queue.next().await else {
            panic!()
        };
        assert_eq!(first[0], 0);
        assert_eq!(queue.try_next().unwrap()[0], 1);
        assert_eq!(queue.try_next().unwrap()[0], 2);
        assert!(queue.try_next().is_none());
        assert_eq!(sub.queued_bytes(), 0);
    }
}

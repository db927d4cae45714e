//! One stream's bounded send queue.
//!
//! Publishers never wait for a browser: [`Subscriber::deliver`] only tries to
//! enqueue. When a stream's queue is full, by event count or by bytes, the
//! stream is closed as a slow consumer and removed from every channel. It
//! reconnects and resumes from its cursors, so nothing is lost while the
//! gateway's memory stays bounded by the queue limits.
//!
//! The queue is a `VecDeque` behind a mutex, allocated on demand: an idle
//! stream holds no slots (a bounded tokio channel allocated a block of 32
//! and two cache-padded halves per stream), and a queue that drained after
//! a burst gives its slots back. Publishers wake the stream only when its
//! queue goes from empty to non-empty: a stream that is already awake takes
//! the rest in its next write. The wake-up is an [`AtomicWaker`] the stream
//! registers when it finds the queue empty (lock-free, and nothing to
//! re-register or unlink per frame, unlike a `Notify` waiter).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use logs_sse_protocol::CloseReason;

use crate::frame::Frame;

/// Slots a drained queue may keep; more are given back.
const KEEP_SLOTS: usize = 16;

/// The publishing side of one stream, shared with every channel it joined.
#[derive(Debug)]
pub struct Subscriber {
    id: u64,
    queue: Mutex<Queue>,
    max_events: usize,
    max_queued_bytes: usize,
    closed: OnceLock<CloseReason>,
    wake: AtomicWaker,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Frame>,
    bytes: usize,
    /// Frames taken so far: the position of the front frame.
    taken: u64,
    /// Replays queued by channel changes, outside the live bounds: the
    /// positions of each one's frames (`start..end`), oldest first.
    replays: VecDeque<(u64, u64)>,
    /// Frames and bytes of those replays still queued.
    replay_frames: usize,
    replay_bytes: usize,
}

/// The stream side: yields queued frames until the subscriber is closed.
/// Dropping it closes the subscriber, so channels stop queueing for it.
#[derive(Debug)]
pub struct SubscriberQueue {
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
        let subscriber = Arc::new(Subscriber {
            id,
            queue: Mutex::new(Queue::default()),
            max_events: max_events.max(1),
            max_queued_bytes: max_bytes,
            closed: OnceLock::new(),
            wake: AtomicWaker::new(),
        });
        let queue = SubscriberQueue {
            subscriber: subscriber.clone(),
        };
        (subscriber, queue)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get().is_some()
    }

    /// Bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue holds no invariant a panic could break halfway.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Offers a frame without waiting. Once this returns anything but
    /// [`Delivery::Queued`] it never queues again, so a stream never skips a
    /// log and then receives a later one.
    pub fn deliver(&self, frame: &Frame) -> Delivery {
        let was_empty = {
            let mut queue = self.lock();
            // Checked under the lock: `close` empties the queue under it, so
            // nothing is queued after a close.
            if self.is_closed() {
                return Delivery::Gone;
            }
            // A queued replay counts toward neither bound (see
            // `deliver_replay`).
            if queue.frames.len() - queue.replay_frames >= self.max_events
                || queue.bytes - queue.replay_bytes + frame.len() > self.max_queued_bytes
            {
                drop(queue);
                return self.overflow();
            }
            queue.bytes += frame.len();
            queue.frames.push_back(frame.clone());
            queue.frames.len() == 1
        };
        if was_empty {
            // A stream not waiting yet looks at the queue again after it
            // registers: no lost wake-up.
            self.wake.wake();
        }
        Delivery::Queued
    }

    /// Queues the statuses and replay of a channel change behind what is
    /// queued. Like the replay sent when a stream opens, they count toward
    /// neither live bound (a replay of a full history would otherwise cut
    /// the stream at once); they are bounded by `max_frames` replay frames
    /// queued at a time, past which the stream is closed as a slow
    /// consumer. The frames are shared with the history, so they hold
    /// little memory of their own.
    pub fn deliver_replay(&self, frames: Vec<Frame>, max_frames: usize) -> Delivery {
        if frames.is_empty() {
            return Delivery::Queued;
        }
        let was_empty = {
            let mut queue = self.lock();
            if self.is_closed() {
                return Delivery::Gone;
            }
            if queue.replay_frames + frames.len() > max_frames {
                drop(queue);
                return self.overflow();
            }
            let was_empty = queue.frames.is_empty();
            let bytes: usize = frames.iter().map(Frame::len).sum();
            let start = queue.taken + queue.frames.len() as u64;
            queue.replay_frames += frames.len();
            queue.replay_bytes += bytes;
            queue.bytes += bytes;
            queue.frames.extend(frames);
            let end = queue.taken + queue.frames.len() as u64;
            queue.replays.push_back((start, end));
            was_empty
        };
        if was_empty {
            self.wake.wake();
        }
        Delivery::Queued
    }

    fn overflow(&self) -> Delivery {
        if self.close(CloseReason::SlowConsumer) {
            Delivery::SlowConsumer
        } else {
            Delivery::Gone
        }
    }

    /// Ends the stream with `reason` and frees its queue. Returns false if
    /// it was already closed.
    pub fn close(&self, reason: CloseReason) -> bool {
        let first = {
            let mut queue = self.lock();
            let first = self.closed.set(reason).is_ok();
            if first {
                // The client resumes from its cursors: the rest is not sent.
                *queue = Queue::default();
            }
            first
        };
        if first {
            self.wake.wake();
        }
        first
    }

    /// Takes the oldest frame, giving back the slots of a drained queue.
    fn pop(&self) -> Option<Frame> {
        let mut queue = self.lock();
        let frame = queue.frames.pop_front()?;
        queue.bytes -= frame.len();
        queue.taken += 1;
        if let Some(&(start, end)) = queue.replays.front() {
            let position = queue.taken - 1;
            if position >= start {
                queue.replay_frames -= 1;
                queue.replay_bytes -= frame.len();
                if position + 1 == end {
                    queue.replays.pop_front();
                }
            }
        }
        if queue.frames.is_empty() && queue.frames.capacity() > KEEP_SLOTS {
            queue.frames = VecDeque::new();
        }
        Some(frame)
    }
}

impl SubscriberQueue {
    /// Waits for the next frame, or for the subscriber to be closed. A closed
    /// subscriber's remaining frames are discarded: its client resumes from
    /// its cursors instead.
    pub async fn next(&mut self) -> Next {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`SubscriberQueue::next`] as a poll: registers `cx` to be woken by
    /// the next frame or the close when there is nothing to take.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        if let Some(next) = self.ready() {
            return Poll::Ready(next);
        }
        self.subscriber.wake.register(cx.waker());
        // Queued or closed between the first look and the registration.
        match self.ready() {
            Some(next) => Poll::Ready(next),
            None => Poll::Pending,
        }
    }

    fn ready(&self) -> Option<Next> {
        if let Some(reason) = self.subscriber.closed.get() {
            return Some(Next::Closed(*reason));
        }
        self.subscriber.pop().map(Next::Frame)
    }

    /// Takes an already-queued frame without waiting, if the stream is open.
    pub fn try_next(&mut self) -> Option<Frame> {
        if self.subscriber.is_closed() {
            return None;
        }
        self.subscriber.pop()
    }

    pub fn subscriber(&self) -> &Arc<Subscriber> {
        &self.subscriber
    }
}

impl Drop for SubscriberQueue {
    fn drop(&mut self) {
        self.subscriber.close(CloseReason::Shutdown);
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
        // Closing frees what was queued at once: the client resumes instead.
        assert_eq!(sub.queued_bytes(), 0);
        assert!(matches!(queue.next().await, Next::Closed(_)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Deliver(usize),
        Take,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![(1usize..8).prop_map(Op::Deliver), Just(Op::Take)]
    }

    proptest::proptest! {
        /// Against a model: frames come out in order, each once; the first
        /// frame over either bound closes the stream and nothing is queued
        /// or taken after it; the byte count is always what is queued.
        #[test]
        fn queue_matches_its_model(
            ops in proptest::collection::vec(op(), 0..200),
            max_events in 1usize..8,
            max_bytes in 1usize..32,
        ) {
            let (sub, mut queue) = Subscriber::new(1, max_events, max_bytes);
            let mut model: VecDeque<Bytes> = VecDeque::new();
            let mut closed = false;
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Deliver(len) => {
                        let frame = Bytes::from(vec![n as u8; len]);
                        let queued: usize = model.iter().map(Bytes::len).sum();
                        let expected = if closed {
                            Delivery::Gone
                        } else if model.len() >= max_events || queued + len > max_bytes {
                            closed = true;
                            model.clear();
                            Delivery::SlowConsumer
                        } else {
                            model.push_back(frame.clone());
                            Delivery::Queued
                        };
                        proptest::prop_assert_eq!(sub.deliver(&frame), expected);
                    }
                    Op::Take => {
                        let got = queue.try_next();
                        let want = if closed { None } else { model.pop_front() };
                        proptest::prop_assert_eq!(got, want);
                    }
                }
                proptest::prop_assert_eq!(sub.queued_bytes(), model.iter().map(Bytes::len).sum::<usize>());
                proptest::prop_assert_eq!(sub.is_closed(), closed);
            }
        }
    }

    /// A publisher thread racing the stream: the stream sees every frame in
    /// order, none twice, and is never left asleep with a frame waiting.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_racing_publisher_loses_no_wake_up() {
        const FRAMES: u32 = 20_000;
        let (sub, mut queue) = Subscriber::new(1, FRAMES as usize, usize::MAX);
        let publisher = std::thread::spawn(move || {
            for i in 0..FRAMES {
                assert_eq!(
                    sub.deliver(&Bytes::from(i.to_be_bytes().to_vec())),
                    Delivery::Queued
                );
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        for want in 0..FRAMES {
            let next = tokio::time::timeout(std::time::Duration::from_secs(10), queue.next())
                .await
                .expect("a queued frame must wake the stream");
            let Next::Frame(frame) = next else {
                panic!("closed")
            };
            assert_eq!(u32::from_be_bytes(frame[..].try_into().unwrap()), want);
        }
        publisher.join().unwrap();
        assert!(queue.try_next().is_none());
    }

    #[test]
    fn a_dropped_stream_closes_its_subscriber_and_a_drained_queue_gives_slots_back() {
        let (sub, queue) = Subscriber::new(1, 1000, usize::MAX);
        let mut queue = queue;
        for _ in 0..100 {
            sub.deliver(&Bytes::from_static(b"x"));
        }
        while queue.try_next().is_some() {}
        assert_eq!(sub.lock().frames.capacity(), 0);
        drop(queue);
        assert!(sub.is_closed());
        assert_eq!(sub.deliver(&Bytes::from_static(b"x")), Delivery::Gone);
    }

    #[test]
    fn a_replay_counts_toward_neither_live_bound_but_toward_its_own() {
        let (sub, mut queue) = Subscriber::new(1, 2, 10);
        let f = |b: u8| Bytes::from(vec![b; 4]);
        assert_eq!(sub.deliver(&f(0)), Delivery::Queued);
        assert_eq!(
            sub.deliver_replay(vec![f(1), f(2), f(3)], 5),
            Delivery::Queued
        );
        // One live frame queued, 4 of 10 bytes: another fits beside the replay.
        assert_eq!(sub.deliver(&f(4)), Delivery::Queued);
        for want in 0..=4 {
            assert_eq!(queue.try_next().unwrap()[0], want);
        }
        assert_eq!(sub.queued_bytes(), 0);
        // Replays behind live frames, twice: each is released as it is taken.
        sub.deliver(&f(5));
        sub.deliver_replay(vec![f(6), f(7)], 5);
        sub.deliver(&f(8));
        sub.deliver_replay(vec![f(9), f(10), f(11)], 5);
        assert_eq!(queue.try_next().unwrap()[0], 5);
        assert_eq!(queue.try_next().unwrap()[0], 6);
        // Two live frames queued (8 and a new one) would reach the count bound.
        assert_eq!(sub.deliver(&f(12)), Delivery::Queued);
        assert_eq!(sub.deliver(&f(13)), Delivery::SlowConsumer);
        assert!(sub.is_closed());

        // Past its own bound, a replay closes the stream.
        let (sub, _queue) = Subscriber::new(1, 2, 10);
        assert_eq!(sub.deliver_replay(vec![f(1), f(2)], 3), Delivery::Queued);
        assert_eq!(
            sub.deliver_replay(vec![f(3), f(4)], 3),
            Delivery::SlowConsumer
        );
        assert_eq!(sub.deliver_replay(vec![f(5)], 3), Delivery::Gone);
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

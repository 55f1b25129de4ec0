//! The simulator's SQS queues: what a standard queue does with messages,
//! without the wire protocol (that is `sqs.rs`).
//!
//! A received message stays in the queue, invisible, until its visibility
//! timeout ends; then it is visible again and its next receive gets a new
//! receipt handle. Only the latest handle deletes it. Visibility and long
//! polling run on tokio's clock (real time, or paused time in tests), not on
//! the simulator's clock: the exporter waits for them in real time whatever
//! the scenario's clock does. Message timestamps (`SentTimestamp`) are on
//! the simulator's clock, like the events they carry.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::{Clock, Nanos};
use crate::sync::lock;

/// A queue's visibility timeout when a receive does not give one (SQS's
/// default for a new queue).
pub const DEFAULT_VISIBILITY: Duration = Duration::from_secs(30);

/// Receipt handles of deleted messages remembered, so that deleting twice
/// succeeds as SQS does; bounded so that a long run does not grow.
const REMEMBERED_DELETES: usize = 10_000;

/// What a queue answers instead of doing its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueFault {
    /// 403 `AccessDenied`: the caller's policy (or the queue's) does not
    /// allow the call.
    AccessDenied,
    /// `QueueDoesNotExist`, as if the queue had been deleted.
    QueueDoesNotExist,
    /// 503 `ServiceUnavailable` for the next this many calls, then the
    /// queue works again: a passing fault (a connection the service
    /// closed, a brief outage) that a client's retry hides.
    Unavailable(u32),
}

/// Messages in a queue: visible (receivable now) and in flight (received,
/// neither deleted nor back yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    pub visible: usize,
    pub in_flight: usize,
}

/// A queue's depth and what it has seen since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueStats {
    pub visible: usize,
    pub in_flight: usize,
    pub sent: u64,
    pub received: u64,
    pub deleted: u64,
    /// Image Builder's events are published to it.
    pub events: bool,
    pub fault: Option<QueueFault>,
}

/// A message as one receive hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Received {
    pub id: String,
    pub receipt: String,
    pub body: String,
    pub receive_count: u32,
    pub sent_at: Nanos,
    pub first_received_at: Nanos,
}

#[derive(Debug)]
struct Message {
    id: String,
    body: String,
    sent_at: Nanos,
    receive_count: u32,
    first_received_at: Option<Nanos>,
    /// Until when it stays invisible (`None`: never received).
    invisible_until: Option<Instant>,
    /// The handle of its latest receive.
    receipt: Option<String>,
}

impl Message {
    fn visible(&self, now: Instant) -> bool {
        self.invisible_until.is_none_or(|t| t <= now)
    }
}

#[derive(Debug)]
pub(crate) struct Queue {
    /// By sequence number: receives take the oldest visible first.
    messages: BTreeMap<u64, Message>,
    next_seq: u64,
    /// Makes every receipt handle unique, even for one message.
    receives: u64,
    pub(crate) events: bool,
    pub(crate) fault: Option<QueueFault>,
    deleted_handles: HashSet<String>,
    deleted_order: VecDeque<String>,
    sent: u64,
    received: u64,
    deleted: u64,
    /// Wakes long polls when a message arrives.
    notify: Arc<Notify>,
}

impl Queue {
    fn new() -> Self {
        Self {
            messages: BTreeMap::new(),
            next_seq: 1,
            receives: 0,
            events: false,
            fault: None,
            deleted_handles: HashSet::new(),
            deleted_order: VecDeque::new(),
            sent: 0,
            received: 0,
            deleted: 0,
            notify: Arc::new(Notify::new()),
        }
    }

    fn send(&mut self, body: String, now: Nanos) -> String {
        let seq = self.next_seq;
        self.next_seq += 1;
        // Message IDs look like SQS's (a UUID), and never repeat.
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (seq >> 32) as u32 ^ 0x5a5a_0000,
            (seq >> 16) & 0xffff,
            (seq >> 4) & 0xfff,
            seq & 0xf,
            seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) & 0xffff_ffff_ffff
        );
        self.messages.insert(
            seq,
            Message {
                id: id.clone(),
                body,
                sent_at: now,
                receive_count: 0,
                first_received_at: None,
                invisible_until: None,
                receipt: None,
            },
        );
        self.sent += 1;
        self.notify.notify_waiters();
        id
    }

    /// Takes up to `max` visible messages, oldest first, and hides them for
    /// `visibility`.
    fn take(
        &mut self,
        max: usize,
        visibility: Duration,
        now: Instant,
        sim_now: Nanos,
    ) -> Vec<Received> {
        let mut out = Vec::new();
        for (seq, m) in self.messages.iter_mut() {
            if out.len() >= max {
                break;
            }
            if !m.visible(now) {
                continue;
            }
            self.receives += 1;
            let receipt = format!("AQEB{seq:016x}{:016x}", self.receives);
            m.receipt = Some(receipt.clone());
            m.invisible_until = Some(now + visibility);
            m.receive_count += 1;
            let first = *m.first_received_at.get_or_insert(sim_now);
            out.push(Received {
                id: m.id.clone(),
                receipt,
                body: m.body.clone(),
                receive_count: m.receive_count,
                sent_at: m.sent_at,
                first_received_at: first,
            });
        }
        self.received += out.len() as u64;
        out
    }

    /// When the next in-flight message becomes visible again.
    fn next_return(&self, now: Instant) -> Option<Instant> {
        self.messages
            .values()
            .filter_map(|m| m.invisible_until)
            .filter(|t| *t > now)
            .min()
    }

    /// Deletes the message `handle` was last received with. A handle of a
    /// message already deleted succeeds again (as in SQS); an unknown or
    /// superseded handle does not.
    pub(crate) fn delete(&mut self, handle: &str) -> bool {
        if self.deleted_handles.contains(handle) {
            return true;
        }
        let Some(seq) = handle
            .strip_prefix("AQEB")
            .filter(|h| h.len() == 32 && h.is_ascii())
            .and_then(|h| u64::from_str_radix(&h[..16], 16).ok())
        else {
            return false;
        };
        if self.messages.get(&seq).and_then(|m| m.receipt.as_deref()) != Some(handle) {
            return false;
        }
        self.messages.remove(&seq);
        self.deleted += 1;
        self.deleted_handles.insert(handle.to_string());
        self.deleted_order.push_back(handle.to_string());
        if self.deleted_order.len() > REMEMBERED_DELETES {
            if let Some(old) = self.deleted_order.pop_front() {
                self.deleted_handles.remove(&old);
            }
        }
        true
    }

    pub(crate) fn depth(&self, now: Instant) -> QueueDepth {
        let visible = self.messages.values().filter(|m| m.visible(now)).count();
        QueueDepth {
            visible,
            in_flight: self.messages.len() - visible,
        }
    }

    fn stats(&self, now: Instant) -> QueueStats {
        let d = self.depth(now);
        QueueStats {
            visible: d.visible,
            in_flight: d.in_flight,
            sent: self.sent,
            received: self.received,
            deleted: self.deleted,
            events: self.events,
            fault: self.fault,
        }
    }
}

/// The queues of the simulated account, by name.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    queues: Mutex<BTreeMap<String, Queue>>,
    /// The server is stopping: long polls answer at once.
    closing: AtomicBool,
}

impl Queues {
    /// Creates the queue if it does not exist.
    pub(crate) fn create(&self, name: &str) {
        lock(&self.queues)
            .entry(name.to_string())
            .or_insert_with(Queue::new);
    }

    /// Runs `f` on a queue, if it exists.
    pub(crate) fn with<R>(&self, name: &str, f: impl FnOnce(&mut Queue) -> R) -> Option<R> {
        lock(&self.queues).get_mut(name).map(f)
    }

    pub(crate) fn send(&self, name: &str, body: String, now: Nanos) -> Option<String> {
        self.with(name, |q| q.send(body, now))
    }

    /// Sends each body to every queue that takes events.
    pub(crate) fn publish(&self, bodies: &[String], now: Nanos) {
        for q in lock(&self.queues).values_mut().filter(|q| q.events) {
            for b in bodies {
                q.send(b.clone(), now);
            }
        }
    }

    pub(crate) fn any_events(&self) -> bool {
        lock(&self.queues).values().any(|q| q.events)
    }

    pub(crate) fn stats(&self, name: &str) -> Option<QueueStats> {
        self.with(name, |q| q.stats(Instant::now()))
    }

    /// Receives up to `max` messages, waiting up to `wait` for the first
    /// one (long polling): answers as soon as a message is visible, be it
    /// new or back from its visibility timeout. `None`: no such queue.
    pub(crate) async fn receive(
        &self,
        name: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
        clock: &dyn Clock,
    ) -> Option<Vec<Received>> {
        let deadline = Instant::now() + wait;
        let notify = self.with(name, |q| q.notify.clone())?;
        loop {
            // Registered before looking, so that a message sent between the
            // look and the wait still wakes this poll.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let wake = {
                let mut queues = lock(&self.queues);
                let q = queues.get_mut(name)?;
                let got = q.take(max, visibility, now, clock.now());
                if !got.is_empty() || now >= deadline || self.closing.load(Ordering::SeqCst) {
                    return Some(got);
                }
                q.next_return(now).map_or(deadline, |t| t.min(deadline))
            };
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Ends every long poll now and any later one at once, until `open`.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        for q in lock(&self.queues).values() {
            q.notify.notify_waiters();
        }
    }

    pub(crate) fn open(&self) {
        self.closing.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const T0: Nanos = 1_788_981_143_418_000_000;

    fn queues() -> (Arc<Queues>, Arc<ManualClock>) {
        let q = Arc::new(Queues::default());
        q.create("q");
        (q, ManualClock::new(T0))
    }

    async fn receive(
        q: &Queues,
        clock: &ManualClock,
        max: usize,
        vis: u64,
        wait: u64,
    ) -> Vec<Received> {
        q.receive(
            "q",
            max,
            Duration::from_secs(vis),
            Duration::from_secs(wait),
            clock,
        )
        .await
        .expect("queue exists")
    }

    #[tokio::test(start_paused = true)]
    async fn a_received_message_is_invisible_until_its_timeout_then_back_with_a_new_handle() {
        let (q, clock) = queues();
        q.send("q", "one".into(), T0).unwrap();
        let first = receive(&q, &clock, 10, 30, 0).await;
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].body.as_str(), first[0].receive_count), ("one", 1));
        assert_eq!(
            q.with("q", |q| q.depth(Instant::now())).unwrap(),
            QueueDepth {
                visible: 0,
                in_flight: 1
            }
        );
        assert!(receive(&q, &clock, 10, 30, 0).await.is_empty(), "invisible");
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(
            receive(&q, &clock, 10, 30, 0).await.is_empty(),
            "still invisible at 29 s"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let again = receive(&q, &clock, 10, 30, 0).await;
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].id.as_str(), again[0].receive_count),
            (first[0].id.as_str(), 2)
        );
        assert_ne!(again[0].receipt, first[0].receipt, "a new receipt handle");
        // The superseded handle no longer deletes; the new one does, twice.
        assert!(!q.with("q", |q| q.delete(&first[0].receipt)).unwrap());
        assert!(q.with("q", |q| q.delete(&again[0].receipt)).unwrap());
        assert!(q.with("q", |q| q.delete(&again[0].receipt)).unwrap());
        assert_eq!(q.stats("q").unwrap().deleted, 1);
        assert_eq!(
            q.with("q", |q| q.depth(Instant::now())).unwrap(),
            QueueDepth::default()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_receive_takes_at_most_max_oldest_first() {
        let (q, clock) = queues();
        for i in 0..12 {
            q.send("q", format!("m{i}"), T0).unwrap();
        }
        let got = receive(&q, &clock, 10, 30, 0).await;
        let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(
            bodies,
            ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]
        );
        let rest = receive(&q, &clock, 10, 30, 0).await;
        assert_eq!(rest.len(), 2);
        // A visibility timeout of 0 leaves a message visible at once.
        let zero = receive(&q, &clock, 1, 0, 0).await;
        assert!(zero.is_empty(), "all twelve are in flight");
        q.send("q", "z".into(), T0).unwrap();
        assert_eq!(receive(&q, &clock, 1, 0, 0).await.len(), 1);
        assert_eq!(receive(&q, &clock, 1, 0, 0).await.len(), 1, "visible again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_poll_answers_as_soon_as_a_message_arrives_or_returns() {
        let (q, clock) = queues();
        let start = Instant::now();
        // Nothing comes: the poll lasts its whole wait.
        assert!(receive(&q, &clock, 10, 30, 20).await.is_empty());
        assert_eq!(start.elapsed(), Duration::from_secs(20));

        // A message sent 3 s into the poll is answered at 3 s.
        let sender = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            sender.send("q", "late".into(), T0);
        });
        let start = Instant::now();
        let got = receive(&q, &clock, 10, 5, 20).await;
        assert_eq!(got.len(), 1);
        assert_eq!(start.elapsed(), Duration::from_secs(3));

        // The message's visibility timeout (5 s) ends during the next poll:
        // it is answered then, not at the end of the wait.
        let start = Instant::now();
        let back = receive(&q, &clock, 10, 5, 20).await;
        assert_eq!(back.len(), 1);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn closing_ends_long_polls() {
        let (q, clock) = queues();
        let closer = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            closer.close();
        });
        let start = Instant::now();
        assert!(receive(&q, &clock, 10, 30, 20).await.is_empty());
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(q
            .receive("nope", 1, DEFAULT_VISIBILITY, Duration::ZERO, &*clock)
            .await
            .is_none());
    }

    #[test]
    fn bad_receipt_handles_delete_nothing() {
        let (q, _) = queues();
        q.send("q", "one".into(), T0).unwrap();
        for bad in [
            "",
            "AQEB",
            "nonsense",
            "AQEB00000000000000010000000000000001",
            "AQEB0000000000000001000000000000000Z",
        ] {
            assert!(!q.with("q", |q| q.delete(bad)).unwrap(), "{bad:?}");
        }
        assert_eq!(q.stats("q").unwrap().visible, 1);
    }
}

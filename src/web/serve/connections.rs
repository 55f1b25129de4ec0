//! Which connections are open, which of them wait for a request, and which
//! one to close when the server is full.
//!
//! A connection that sends part of a request and then nothing (a half-open
//! or "slowloris" client, a scanner, a stuck proxy) holds a slot until the
//! header read timeout. With every slot held that way, a health probe used
//! to queue behind them for that timeout, long enough for a kubelet or load
//! balancer to restart a healthy exporter. So when the server is full, a
//! new connection is accepted anyway and an *idle* one (no request being
//! answered: waiting for its request headers, or between two requests of a
//! keep-alive connection) is closed in its place: the oldest idle one of
//! the client address that holds the most connections. A request being
//! answered is never cut; only when every connection is busy do new ones
//! wait in the listen backlog.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The open connections of one server.
#[derive(Debug)]
pub(crate) struct Connections {
    max: usize,
    state: Mutex<State>,
    /// Woken when a connection closes or turns idle: the accept loop may
    /// have room again.
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// A counter that orders "became idle" without a clock.
    tick: u64,
    open: HashMap<u64, Slot>,
    per_address: HashMap<IpAddr, usize>,
    /// Open connections with no request being answered.
    idle: usize,
}

#[derive(Debug)]
struct Slot {
    address: IpAddr,
    /// Requests being answered (more than one when pipelined).
    requests: usize,
    /// The tick at which it last became idle.
    idle_since: u64,
    /// Told when the connection is to be closed to make room.
    shed: Arc<Notify>,
}

/// A connection that was closed to make room, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shed {
    pub address: IpAddr,
    /// Connections that address held, the shed one included.
    pub held: usize,
}

impl Connections {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        crate::base::sync::lock(&self.state)
    }

    /// True if a new connection can be served: a free slot, or an idle
    /// connection to close for it.
    pub(crate) fn has_room(&self) -> bool {
        let s = self.state();
        s.open.len() < self.max || s.idle > 0
    }

    /// Returns once [`Connections::has_room`] (a closed or idle connection
    /// makes room).
    pub(crate) async fn room(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so that no change is missed.
            changed.as_mut().enable();
            if self.has_room() {
                return;
            }
            changed.await;
        }
    }

    /// Registers a new connection from `address`. When the server is full,
    /// the oldest idle connection of the address holding the most
    /// connections is told to close, and returned.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr) -> (Admitted, Option<Shed>) {
        let mut s = self.state();
        let shed = if s.open.len() >= self.max {
            s.shed_one()
        } else {
            None
        };
        let id = s.next_id;
        s.next_id += 1;
        s.tick += 1;
        let slot = Slot {
            address,
            requests: 0,
            idle_since: s.tick,
            shed: Arc::new(Notify::new()),
        };
        let notify = slot.shed.clone();
        s.open.insert(id, slot);
        *s.per_address.entry(address).or_insert(0) += 1;
        s.idle += 1;
        drop(s);
        let admitted = Admitted {
            connections: self.clone(),
            id,
            shed: notify,
        };
        (admitted, shed)
    }

    /// Open connections, and how many of them are idle.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let s = self.state();
        (s.open.len(), s.idle)
    }

    fn request_started(&self, id: u64) {
        let mut s = self.state();
        let Some(slot) = s.open.get_mut(&id) else {
            return;
        };
        slot.requests += 1;
        if slot.requests == 1 {
            s.idle -= 1;
        }
    }

    fn request_ended(&self, id: u64) {
        let mut s = self.state();
        s.tick += 1;
        let tick = s.tick;
        let Some(slot) = s.open.get_mut(&id) else {
            return;
        };
        slot.requests = slot.requests.saturating_sub(1);
        if slot.requests == 0 {
            slot.idle_since = tick;
            s.idle += 1;
            drop(s);
            self.changed.notify_waiters();
        }
    }

    fn close(&self, id: u64) {
        let mut s = self.state();
        if s.remove(id).is_some() {
            drop(s);
            self.changed.notify_waiters();
        }
    }
}

impl State {
    fn remove(&mut self, id: u64) -> Option<Slot> {
        let slot = self.open.remove(&id)?;
        if slot.requests == 0 {
            self.idle -= 1;
        }
        if let Some(n) = self.per_address.get_mut(&slot.address) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&slot.address);
            }
        }
        Some(slot)
    }

    /// Closes the oldest idle connection of the address that holds the
    /// most connections: one client holding many slots open loses its
    /// own first, and a scraper's keep-alive connection from elsewhere is
    /// left alone. Linear in the open connections, which are bounded.
    fn shed_one(&mut self) -> Option<Shed> {
        let (&id, victim) = self
            .open
            .iter()
            .filter(|(_, slot)| slot.requests == 0)
            .max_by_key(|(_, slot)| {
                let held = self.per_address.get(&slot.address).copied().unwrap_or(0);
                (held, std::cmp::Reverse(slot.idle_since))
            })?;
        let held = self.per_address.get(&victim.address).copied().unwrap_or(0);
        let slot = self.remove(id)?;
        slot.shed.notify_one();
        Some(Shed {
            address: slot.address,
            held,
        })
    }
}

/// A registered connection; dropping it unregisters the connection.
#[derive(Debug)]
pub(crate) struct Admitted {
    connections: Arc<Connections>,
    id: u64,
    shed: Arc<Notify>,
}

impl Admitted {
    /// Completes when the connection is to be closed to make room (also if
    /// that was decided before this is first awaited).
    pub(crate) async fn shed(&self) {
        self.shed.notified().await;
    }

    /// Marks a request as being answered until the returned guard drops
    /// (with the response body, once it is sent).
    pub(crate) fn request(&self) -> Busy {
        self.connections.request_started(self.id);
        Busy {
            connections: self.connections.clone(),
            id: self.id,
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.close(self.id);
    }
}

/// A request being answered: its connection is not idle.
#[derive(Debug)]
pub(crate) struct Busy {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connections.request_ended(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[tokio::test]
    async fn below_the_limit_nothing_is_shed() {
        let c = Connections::new(3);
        let a = c.admit(ip(1));
        let b = c.admit(ip(1));
        assert!(a.1.is_none() && b.1.is_none());
        assert_eq!(c.counts(), (2, 2));
        drop(a);
        assert_eq!(c.counts(), (1, 1));
    }

    #[tokio::test]
    async fn when_full_the_oldest_idle_of_the_busiest_address_is_shed() {
        let c = Connections::new(4);
        // A scraper's keep-alive connection, idle for longest.
        let (scraper, _) = c.admit(ip(9));
        let (first, _) = c.admit(ip(1));
        let (second, _) = c.admit(ip(1));
        let (third, _) = c.admit(ip(1));
        // A new client: the oldest of ip(1)'s three goes, not the scraper's.
        let (probe, shed) = c.admit(ip(2));
        assert_eq!(
            shed,
            Some(Shed {
                address: ip(1),
                held: 3
            })
        );
        // Told, even before it waits.
        tokio::time::timeout(std::time::Duration::from_secs(1), first.shed())
            .await
            .expect("the oldest is told to close");
        assert_eq!(c.counts(), (4, 4));
        // Its own drop later changes nothing.
        drop(first);
        assert_eq!(c.counts(), (4, 4));
        let (_next, shed) = c.admit(ip(3));
        assert_eq!(shed.map(|s| s.address), Some(ip(1)));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(10), third.shed())
                .await
                .is_err(),
            "the newest of ip(1) stays"
        );
        drop((scraper, second, probe));
    }

    #[tokio::test]
    async fn a_request_being_answered_is_never_shed() {
        let c = Connections::new(2);
        let (a, _) = c.admit(ip(1));
        let (b, _) = c.admit(ip(1));
        let busy_a = a.request();
        let busy_b = b.request();
        assert_eq!(c.counts(), (2, 0));
        assert!(!c.has_room(), "every slot busy: new connections wait");
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.room().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        // The answer sent, the connection is idle (keep-alive): room again,
        // and it is the one a new connection replaces.
        drop(busy_b);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken when a connection turns idle")
            .expect("joins");
        let (_c, shed) = c.admit(ip(2));
        assert_eq!(shed.map(|s| s.address), Some(ip(1)));
        tokio::time::timeout(std::time::Duration::from_secs(1), b.shed())
            .await
            .expect("the idle one is shed");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(10), a.shed())
                .await
                .is_err(),
            "the busy one is not"
        );
        drop(busy_a);
    }

    #[tokio::test]
    async fn pipelined_requests_keep_a_connection_busy_until_the_last_ends() {
        let c = Connections::new(1);
        let (a, _) = c.admit(ip(1));
        let one = a.request();
        let two = a.request();
        drop(one);
        assert_eq!(c.counts(), (1, 0));
        drop(two);
        assert_eq!(c.counts(), (1, 1));
    }
}

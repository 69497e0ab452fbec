//! Admission after accept: the connection cap, the overflow lane beyond it, and the cap
//! per client address.
//!
//! Every connection is accepted, so the kernel's backlog stays empty and a load
//! balancer's probe on a new connection is read at once. Up to `--max-connections` are
//! served in full. Beyond, a connection enters the overflow lane, where only probes and
//! scrapes (`/health/*`, `/metrics`) are served; anything else is answered `503
//! overloaded` with `Connection: close`, and the connection lives a short while at most
//! ([`Limits::overflow_deadline`]). The lane is bounded too: when it is full, a newer
//! connection displaces the oldest one there that is not being answered (a trickler, not
//! a probe, which is answered as soon as its headers arrive); when every one there is
//! being answered, the newcomer is closed at once. Closing costs nothing: no buffer, no
//! task.
//!
//! Apart from these, one peer address holds `--max-connections-per-address` connections
//! at most; a connection beyond is closed at once (peers in `--trusted-proxies` are
//! exempt: a load balancer carries everyone).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::address::Cidr;
use super::connection::Conn;
use crate::config::Limits;

/// Which lane a connection was admitted to; a request extension, so that the router
/// serves only exempt routes to the overflow lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionLane {
    Regular,
    Overflow,
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address holds `--max-connections-per-address` already.
    PerAddress,
    /// The overflow lane is full of connections being answered.
    OverflowFull,
}

impl Refusal {
    /// The `reason` label of `slotd_http_connections_refused_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::PerAddress => "per-address",
            Refusal::OverflowFull => "overflow-full",
        }
    }
}

/// The connection counts. Only the accept loop admits; connections leave from their own
/// tasks, concurrently.
#[derive(Debug)]
pub struct Admission {
    max: usize,
    /// Regular connections open. Relaxed: a read-modify-write loses no update whatever
    /// the ordering, and the count publishes no other memory.
    open: AtomicUsize,
    overflow_max: usize,
    overflow: Mutex<Overflow>,
    per_address: usize,
    /// Connections per peer address, for addresses that hold at least one (an entry
    /// is removed with its last connection, so the map holds only who is connected).
    addresses: DashMap<IpAddr, usize>,
    trusted: Vec<Cidr>,
}

/// The overflow lane: its connections, oldest first. Entries of connections that ended
/// or were displaced stay until a scan meets them or the queue is compacted.
#[derive(Debug, Default)]
struct Overflow {
    queue: VecDeque<Arc<Conn>>,
    /// Connections in the lane that have neither ended nor been displaced.
    live: usize,
}

/// A connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    lane: ConnectionLane,
    /// The address counted, when one was.
    address: Option<IpAddr>,
    conn: Arc<Conn>,
}

impl Ticket {
    pub fn lane(&self) -> ConnectionLane {
        self.lane
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let a = &self.admission;
        match self.lane {
            ConnectionLane::Regular => {
                a.open.fetch_sub(1, Ordering::Relaxed);
            }
            ConnectionLane::Overflow => {
                let mut lane = a.overflow.lock().unwrap_or_else(PoisonError::into_inner);
                // Under the lock, as eviction: a displaced connection was uncounted then.
                if !self.conn.evicted() {
                    lane.live -= 1;
                }
                self.conn.end();
            }
        }
        if let Some(ip) = self.address {
            a.release(ip);
        }
    }
}

impl Admission {
    pub fn new(limits: &Limits) -> Arc<Admission> {
        Arc::new(Admission {
            max: limits.max_connections,
            open: AtomicUsize::new(0),
            overflow_max: limits.overflow_connections(),
            overflow: Mutex::new(Overflow::default()),
            per_address: limits.max_connections_per_address,
            addresses: DashMap::new(),
            trusted: limits.trusted_proxies.clone(),
        })
    }

    /// Admits `conn`, just accepted from `peer`, or says why it is closed at once. When
    /// the overflow lane is full, this displaces an older connection there (see
    /// [`Conn::evict`]).
    pub fn admit(self: &Arc<Self>, peer: IpAddr, conn: &Arc<Conn>) -> Result<Ticket, Refusal> {
        let address = self.count_address(peer)?;
        let ticket = |lane| Ticket {
            admission: self.clone(),
            lane,
            address,
            conn: conn.clone(),
        };
        if self.open.fetch_add(1, Ordering::Relaxed) < self.max {
            return Ok(ticket(ConnectionLane::Regular));
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
        let mut lane = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        if lane.live >= self.overflow_max {
            let oldest_idle = lane
                .queue
                .iter()
                .position(|c| !c.ended() && !c.evicted() && !c.serving());
            match oldest_idle {
                Some(i) => {
                    if let Some(old) = lane.queue.remove(i) {
                        old.evict();
                        lane.live -= 1;
                    }
                }
                None => {
                    drop(lane);
                    if let Some(ip) = address {
                        self.release(ip);
                    }
                    return Err(Refusal::OverflowFull);
                }
            }
        }
        // Forget finished entries now and then: amortised, the queue stays within twice
        // the lane's size.
        if lane.queue.len() >= 2 * self.overflow_max {
            lane.queue.retain(|c| !c.ended() && !c.evicted());
        }
        lane.queue.push_back(conn.clone());
        lane.live += 1;
        drop(lane);
        Ok(ticket(ConnectionLane::Overflow))
    }

    /// Counts one more connection from `peer`, unless it has its share already; the
    /// address counted, if any.
    fn count_address(&self, peer: IpAddr) -> Result<Option<IpAddr>, Refusal> {
        // An IPv4 client on a dual-stack listener is `::ffff:a.b.c.d`: one address.
        let ip = peer.to_canonical();
        if self.per_address == 0 || self.trusted.iter().any(|c| c.contains(ip)) {
            return Ok(None);
        }
        let mut n = self.addresses.entry(ip).or_insert(0);
        if *n >= self.per_address {
            return Err(Refusal::PerAddress);
        }
        *n += 1;
        Ok(Some(ip))
    }

    fn release(&self, ip: IpAddr) {
        if let Entry::Occupied(mut e) = self.addresses.entry(ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }

    /// Regular connections open (for tests).
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_address: usize) -> Limits {
        Limits {
            max_connections: max,
            max_connections_per_address: per_address,
            ..Limits::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn one_address_holds_its_share_and_a_closed_connection_frees_a_place() {
        let a = Admission::new(&limits(100, 2));
        let one = a.admit(ip("10.0.0.1"), &Conn::new()).expect("first");
        let _two = a.admit(ip("10.0.0.1"), &Conn::new()).expect("second");
        assert_eq!(
            a.admit(ip("::ffff:10.0.0.1"), &Conn::new()).err(),
            Some(Refusal::PerAddress),
            "the same address, dual-stack"
        );
        assert!(
            a.admit(ip("10.0.0.2"), &Conn::new()).is_ok(),
            "another address"
        );
        drop(one);
        assert!(a.admit(ip("10.0.0.1"), &Conn::new()).is_ok());
    }

    #[test]
    fn trusted_proxies_and_zero_are_not_capped_and_the_map_forgets_who_left() {
        let mut l = limits(100, 1);
        l.trusted_proxies = vec![Cidr::parse("10.0.0.0/8").expect("cidr")];
        let a = Admission::new(&l);
        let held: Vec<_> = (0..5)
            .map(|_| a.admit(ip("10.1.1.1"), &Conn::new()).expect("a proxy"))
            .collect();
        let other = a.admit(ip("192.0.2.1"), &Conn::new()).expect("one");
        assert!(a.admit(ip("192.0.2.1"), &Conn::new()).is_err());
        drop(other);
        assert!(a.addresses.is_empty(), "only who is connected");
        drop(held);
        let off = Admission::new(&limits(100, 0));
        let _all: Vec<_> = (0..50)
            .map(|_| off.admit(ip("192.0.2.1"), &Conn::new()).expect("no cap"))
            .collect();
    }

    #[test]
    fn beyond_the_cap_connections_go_to_the_overflow_lane() {
        let a = Admission::new(&limits(2, 0));
        let regular: Vec<_> = (0..2)
            .map(|_| a.admit(ip("10.0.0.1"), &Conn::new()).expect("room"))
            .collect();
        assert!(regular.iter().all(|t| t.lane() == ConnectionLane::Regular));
        let extra = a.admit(ip("10.0.0.1"), &Conn::new()).expect("overflow");
        assert_eq!(extra.lane(), ConnectionLane::Overflow);
        assert_eq!(a.open(), 2);
        drop(regular);
        assert_eq!(a.open(), 0);
        let again = a.admit(ip("10.0.0.1"), &Conn::new()).expect("room again");
        assert_eq!(again.lane(), ConnectionLane::Regular);
    }

    #[test]
    fn a_full_overflow_lane_displaces_its_oldest_idle_connection() {
        let a = Admission::new(&limits(1, 0));
        let _regular = a.admit(ip("10.0.0.1"), &Conn::new()).expect("regular");
        let lane = a.overflow_max;
        let conns: Vec<Arc<Conn>> = (0..lane).map(|_| Conn::new()).collect();
        let mut tickets: Vec<Ticket> = conns
            .iter()
            .map(|c| a.admit(ip("10.0.0.1"), c).expect("lane"))
            .collect();
        // The oldest is being answered (a probe): the next oldest is displaced.
        let _answering = conns[0].begin(false);
        let newer = Conn::new();
        tickets.push(a.admit(ip("10.0.0.1"), &newer).expect("displaces"));
        assert!(!conns[0].evicted() && conns[1].evicted() && !newer.evicted());
        // When every one there is being answered, the newcomer is refused.
        let _all: Vec<_> = conns[2..]
            .iter()
            .chain([&newer])
            .map(|c| c.begin(false))
            .collect();
        assert_eq!(
            a.admit(ip("10.0.0.1"), &Conn::new()).err(),
            Some(Refusal::OverflowFull)
        );
        // A displaced connection's ticket does not free a second place when it goes.
        let displaced = tickets.remove(1);
        drop(displaced);
        assert_eq!(a.overflow.lock().expect("lock").live, lane);
        drop(tickets);
        assert_eq!(a.overflow.lock().expect("lock").live, 0);
    }
}

//! Client addresses: where a request came from, and a token bucket per address on the
//! routes a flood uses (bookings, availability, captchas, logins).
//!
//! Behind a load balancer every request comes from the balancer's address: with
//! `--trusted-proxies` the address is the last one of `X-Forwarded-For` that is not a
//! trusted proxy (the one the outermost trusted proxy saw), and a client cannot forge
//! its way past that, since the entries before it are its own claims. The default rate
//! is generous: a carrier's NAT puts thousands of phones behind one address.

use std::net::IpAddr;
use std::num::NonZeroU32;

use http::HeaderMap;

/// A trusted proxy range: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `192.168.1.7` (a single address), `fd00::/8`.
    pub fn parse(raw: &str) -> Option<Cidr> {
        let (addr, prefix) = match raw.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw.trim(), None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => match v.to_ipv4_mapped() {
                    Some(v4) => (u128::from(u32::from(v4)), 32),
                    None => (u128::from(v), 128),
                },
            }
        };
        let (net, width) = bits(self.net);
        let (ip, w) = bits(ip);
        if width != w {
            return false;
        }
        let shift = u32::from(width - self.prefix.min(width));
        if shift >= 128 {
            return true;
        }
        net >> shift == ip >> shift
    }
}

/// The client's address: the peer, or behind trusted proxies the address the outermost
/// of them saw.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    if !trusted.iter().any(|c| c.contains(peer)) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !trusted.iter().any(|c| c.contains(*ip)))
        .unwrap_or(peer)
}

/// A token bucket per client address.
#[derive(Debug)]
pub struct AddressLimits {
    limiter: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
}

impl AddressLimits {
    /// `per_second` requests per address, bursts of `burst`; 0: no limit.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    /// Whether `ip` may make one more request now.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|l| l.check_key(&ip).is_ok())
    }

    /// Forgets addresses whose bucket is full again.
    pub fn prune(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ranges_match_their_addresses() {
        let c = Cidr::parse("10.0.0.0/8").expect("cidr");
        assert!(c.contains(ip("10.1.2.3")) && !c.contains(ip("11.0.0.1")));
        assert!(
            Cidr::parse("127.0.0.1")
                .expect("one")
                .contains(ip("127.0.0.1"))
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
        assert!(Cidr::parse("fd00::/8").expect("v6").contains(ip("fd12::1")));
        assert!(
            Cidr::parse("10.0.0.0/8")
                .expect("v4")
                .contains(ip("::ffff:10.0.0.1"))
        );
        for bad in ["10.0.0.0/33", "nope", "10.0.0/8", ""] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_last_untrusted_forwarded_address() {
        let trusted = vec![Cidr::parse("10.0.0.0/8").expect("cidr")];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 203.0.113.9, 10.0.0.5"),
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        // A peer that is not a trusted proxy is the client, whatever it claims.
        assert_eq!(
            client_ip(ip("198.51.100.7"), &h, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn each_address_has_its_own_bucket() {
        let l = AddressLimits::new(2, 2);
        assert!(l.allow(ip("1.1.1.1")) && l.allow(ip("1.1.1.1")));
        assert!(!l.allow(ip("1.1.1.1")));
        assert!(l.allow(ip("2.2.2.2")));
        assert!((0..100).all(|_| AddressLimits::new(0, 0).allow(ip("1.1.1.1"))));
    }
}

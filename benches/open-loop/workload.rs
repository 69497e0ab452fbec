//! The requests of a run: request `i` is a booking by person `first_person + i` into a
//! slot drawn from the slot list, or (a `--get-share` of them) an availability read.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use slotd::domain::synthetic_id;
use slotd::token::{Claims, Scope, TokenKey};

/// How requests are made; shared by every request task.
#[derive(Debug)]
pub struct Workload {
    pub booking_path: String,
    pub availability_path: String,
    /// Percent of requests that read availability instead of booking.
    pub get_share: u64,
    pub slots: Vec<String>,
    pub key: TokenKey,
    /// Unix seconds at which the tokens expire: after the run.
    pub expires_at: i64,
    /// The serial of request 0's person; request `i` books for `first_person + i`, so
    /// every booking is a distinct person and none is refused as a second booking.
    pub first_person: u64,
    /// `Idempotency-Key` prefix, unique per generator process; `None`: no key.
    pub idempotency: Option<String>,
    pub host: HeaderValue,
}

/// SplitMix64: spreads consecutive request numbers over slots and over the GET share
/// without a random generator to share between tasks.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Workload {
    /// Request number `i` of the run.
    pub fn request(&self, i: u64) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        if mix(i) % 100 < self.get_share {
            return Request::builder()
                .method(Method::GET)
                .uri(&self.availability_path)
                .header(HOST, self.host.clone())
                .body(Full::new(Bytes::new()));
        }
        self.booking(i)
    }

    /// Request number `i` as a booking, whatever the GET share.
    pub fn booking(&self, i: u64) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let slot = &self.slots[(mix(i) >> 8) as usize % self.slots.len()];
        let token = self.key.sign(Claims {
            person: synthetic_id(self.first_person + i),
            scope: Scope::Booking,
            expires_at: self.expires_at,
            partner: None,
        });
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(&self.booking_path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(prefix) = &self.idempotency {
            req = req.header("idempotency-key", format!("{prefix}-{i}"));
        }
        req.body(Full::new(Bytes::from(format!(r#"{{"slot":"{slot}"}}"#))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(get_share: u64) -> Workload {
        Workload {
            booking_path: "/v1/phases/01/bookings".into(),
            availability_path: "/v1/phases/01/availability".into(),
            get_share,
            slots: vec!["A".into(), "B".into(), "C".into()],
            key: TokenKey::new(b"secret"),
            expires_at: 4_000_000_000,
            first_person: 7,
            idempotency: Some("k".into()),
            host: HeaderValue::from_static("bench"),
        }
    }

    #[test]
    fn each_booking_is_signed_for_its_own_person() {
        let w = workload(0);
        let key = TokenKey::new(b"secret");
        for i in 0..3 {
            let req = w.request(i).expect("a valid request");
            assert_eq!(req.method(), Method::POST);
            let auth = req.headers()[AUTHORIZATION].to_str().expect("ascii");
            let token = auth.strip_prefix("Bearer ").expect("a bearer token");
            let claims = key.verify(token, 0).expect("signed with the secret");
            assert_eq!(claims.person, synthetic_id(7 + i));
            assert_eq!(req.headers()["idempotency-key"], format!("k-{i}").as_str());
        }
    }

    #[test]
    fn the_get_share_is_roughly_kept() {
        let w = workload(20);
        let gets = (0..10_000)
            .filter(|&i| w.request(i).expect("a valid request").method() == Method::GET)
            .count();
        assert!((1_800..2_200).contains(&gets), "{gets} GETs of 10,000");
    }
}

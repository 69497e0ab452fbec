//! Request ids: taken from `X-Request-Id` when the client (or a proxy) sends a sane one,
//! else made here; echoed in the answer, in a problem's `instance`, and in the access log.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;

/// The header name.
pub const HEADER: &str = "x-request-id";
/// Longest id taken from a client.
const MAX_LEN: usize = 64;

/// This process's prefix: random, so ids of several instances never collide.
fn prefix() -> u32 {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    *PREFIX.get_or_init(|| {
        let mut raw = [0u8; 4];
        // Without randomness, the process id keeps instances apart well enough.
        if getrandom::fill(&mut raw).is_err() {
            return std::process::id();
        }
        u32::from_le_bytes(raw)
    })
}

/// The request's id: the client's `X-Request-Id` when it is 1 to 64 of `A-Z a-z 0-9 - _ .
/// :`, else `PREFIX-SEQUENCE` in hex.
pub fn of(headers: &HeaderMap) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    if let Some(v) = headers.get(HEADER).and_then(|v| v.to_str().ok())
        && !v.is_empty()
        && v.len() <= MAX_LEN
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
    {
        return v.to_string();
    }
    format!(
        "{:08x}-{:x}",
        prefix(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_client_id_is_kept_and_anything_else_replaced() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, "lb-7f3a.42".parse().expect("header"));
        assert_eq!(of(&h), "lb-7f3a.42");
        h.insert(HEADER, "has space".parse().expect("header"));
        assert_ne!(of(&h), "has space");
        let a = of(&HeaderMap::new());
        let b = of(&HeaderMap::new());
        assert_ne!(a, b, "made ids differ");
        assert!(a.len() <= MAX_LEN);
    }
}

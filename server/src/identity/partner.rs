//! Kiosk partners: convenience-store chains, pharmacies and health centres whose
//! card-reader terminals log people in. Each has an API key; only its hash is kept.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The kinds of partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartnerKind {
    ConvenienceStore,
    Pharmacy,
    HealthCentre,
}

/// A registered partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    pub partner: String,
    pub name: String,
    pub kind: PartnerKind,
    /// Kiosk logins per second across all of the partner's terminals, per instance.
    pub rate_per_second: u32,
    /// Hex SHA-256 of the current key. A key is random (256 bits), so a plain hash is
    /// enough: there is nothing to guess that a slow hash would protect.
    pub key_hash: String,
}

/// Whether a partner id is acceptable: 1 to 64 of `A-Z a-z 0-9 - _`.
pub fn valid_partner_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Whether a terminal id is acceptable: 1 to 64 printable ASCII characters.
pub fn valid_terminal_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|c| c.is_ascii_graphic())
}

/// A fresh random key, `pk_` and 43 base64url characters.
pub fn new_key() -> Result<String, getrandom::Error> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw)?;
    Ok(format!("pk_{}", URL_SAFE_NO_PAD.encode(raw)))
}

/// The stored form of a key.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let a = new_key().expect("random");
        let b = new_key().expect("random");
        assert_ne!(a, b);
        assert!(a.starts_with("pk_") && a.len() == 46);
        assert_eq!(key_hash(&a), key_hash(&a));
        assert_ne!(key_hash(&a), key_hash(&b));
        assert_eq!(key_hash(&a).len(), 64);
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_partner_id("seven-eleven_01"));
        assert!(!valid_partner_id("a b"));
        assert!(!valid_partner_id(""));
        assert!(valid_terminal_id("T-0001"));
        assert!(!valid_terminal_id("T 1"));
    }
}

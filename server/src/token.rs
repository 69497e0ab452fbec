//! Person tokens: HMAC-SHA256 signed `scope.expiry.sealed-id`, verifiable by any instance.
//!
//! Form: `booking.1626141600.<sealed id>.<base64url signature>`; a kiosk token also names
//! its partner before the signature (`kiosk.1626141600.<sealed id>.family-mart.<sig>`), and
//! a staff token its site (`staff.….S0001.<sig>`; its sealed id is the staff member's, or
//! [`no_person`]). The id number is not in
//! clear: the sealed id is a random 8-byte nonce and the packed id XORed with a keystream
//! of HMAC-SHA256 (under a key derived from the shared secret) over that nonce, so a
//! token in a log, a proxy or a browser's storage does not tell whose it is, and two
//! tokens of one person do not look alike. The signature over the whole payload is what
//! makes it trustworthy; the keystream only hides.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::IdNumber;

type HmacSha256 = Hmac<Sha256>;

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Booking,
    Registration,
    Kiosk,
    /// Check-in staff of one site (the token names the site).
    Staff,
}

impl Scope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Booking => "booking",
            Scope::Registration => "registration",
            Scope::Kiosk => "kiosk",
            Scope::Staff => "staff",
        }
    }

    fn parse(raw: &str) -> Option<Scope> {
        match raw {
            "booking" => Some(Scope::Booking),
            "registration" => Some(Scope::Registration),
            "kiosk" => Some(Scope::Kiosk),
            "staff" => Some(Scope::Staff),
            _ => None,
        }
    }
}

/// The id number a staff token carries when it was minted for a site, not a person.
pub fn no_person() -> IdNumber {
    crate::domain::synthetic_id(0)
}

/// A verified token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub person: IdNumber,
    pub scope: Scope,
    /// Unix seconds.
    pub expires_at: i64,
    /// The kiosk partner whose terminal logged the person in (kiosk tokens), or the site
    /// a staff token is for (staff tokens, where it is required). An id of
    /// `A-Z a-z 0-9 - _`, so it never holds the `.` separator.
    pub partner: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct TokenKey {
    mac: HmacSha256,
    /// Keys the keystream that hides the id number.
    seal: HmacSha256,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from a shared secret (any length; at least 32 bytes is sensible).
    pub fn new(secret: &[u8]) -> Self {
        let mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        let mut derive = mac.clone();
        derive.update(b"slotd-token-seal-v1");
        let seal = HmacSha256::new_from_slice(&derive.finalize().into_bytes())
            .expect("HMAC takes keys of any length");
        Self { mac, seal }
    }

    fn keystream(&self, nonce: &[u8; 8]) -> u64 {
        let mut m = self.seal.clone();
        m.update(nonce);
        let out = m.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&out[..8]);
        u64::from_le_bytes(first)
    }

    /// Signs claims into a token.
    pub fn sign(&self, claims: Claims) -> String {
        let mut nonce = [0u8; 8];
        if getrandom::fill(&mut nonce).is_err() {
            // Without randomness the nonce is the clock: still unique enough to keep two
            // tokens apart; the signature, not the nonce, protects the claims.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nonce = t.to_le_bytes();
        }
        let sealed = claims.person.packed() ^ self.keystream(&nonce);
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&nonce);
        raw[8..].copy_from_slice(&sealed.to_le_bytes());
        let mut payload = format!(
            "{}.{}.{}",
            claims.scope.as_str(),
            claims.expires_at,
            URL_SAFE_NO_PAD.encode(raw)
        );
        if let Some(p) = &claims.partner {
            payload.push('.');
            payload.push_str(p);
        }
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// Verifies a token's signature and expiry at `now` (unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let (payload, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let mut parts = payload.split('.');
        let (Some(scope), Some(exp), Some(sealed), partner, None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed);
        };
        let raw = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| TokenError::Malformed)?;
        let (Ok(nonce), Ok(sealed)) = (
            <[u8; 8]>::try_from(raw.get(..8).unwrap_or_default()),
            <[u8; 8]>::try_from(raw.get(8..).unwrap_or_default()),
        ) else {
            return Err(TokenError::Malformed);
        };
        let packed = u64::from_le_bytes(sealed) ^ self.keystream(&nonce);
        let claims = Claims {
            person: IdNumber::from_packed(packed).ok_or(TokenError::Malformed)?,
            scope: Scope::parse(scope).ok_or(TokenError::Malformed)?,
            expires_at: exp.parse().map_err(|_| TokenError::Malformed)?,
            partner: partner.map(str::to_owned),
        };
        match (claims.scope, &claims.partner) {
            (Scope::Kiosk, _) | (Scope::Staff, Some(_)) | (_, None) => {}
            _ => return Err(TokenError::Malformed),
        }
        if claims.scope == Scope::Staff && claims.partner.is_none() {
            return Err(TokenError::Malformed);
        }
        if claims.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Compares two secrets in constant time (for the admin bearer secret).
pub fn secrets_match(given: &[u8], expected: &[u8]) -> bool {
    let mut mac = HmacSha256::new_from_slice(b"slotd-admin-compare").expect("any key length");
    mac.update(given);
    let mut other = HmacSha256::new_from_slice(b"slotd-admin-compare").expect("any key length");
    other.update(expected);
    mac.verify_slice(&other.finalize().into_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            person: IdNumber::parse("A123456789").expect("valid"),
            scope: Scope::Booking,
            expires_at: exp,
            partner: None,
        }
    }

    #[test]
    fn a_signed_token_verifies_with_its_claims() {
        let key = TokenKey::new(b"secret");
        let t = key.sign(claims(2_000));
        assert!(t.starts_with("booking.2000."));
        assert!(
            !t.contains("A123456789"),
            "the id number is not in clear: {t}"
        );
        assert_eq!(key.verify(&t, 1_000), Ok(claims(2_000)));
        let again = key.sign(claims(2_000));
        assert_ne!(t, again, "two tokens of one person do not look alike");
        assert_eq!(key.verify(&again, 1_000), Ok(claims(2_000)));
    }

    #[test]
    fn another_secret_or_a_changed_payload_fails() {
        let t = TokenKey::new(b"secret").sign(claims(2_000));
        assert_eq!(
            TokenKey::new(b"other").verify(&t, 0),
            Err(TokenError::BadSignature)
        );
        let forged = t.replacen("booking", "kiosk", 1);
        assert_eq!(
            TokenKey::new(b"secret").verify(&forged, 0),
            Err(TokenError::BadSignature)
        );
        // Another person's sealed id under this signature.
        let other = TokenKey::new(b"secret").sign(Claims {
            person: IdNumber::parse("B123456780").expect("valid"),
            ..claims(2_000)
        });
        let mut parts: Vec<&str> = t.split('.').collect();
        parts[2] = other.split('.').nth(2).expect("sealed id");
        let forged = parts.join(".");
        assert_eq!(
            TokenKey::new(b"secret").verify(&forged, 0),
            Err(TokenError::BadSignature)
        );
        let forged = t.replacen("2000", "9000", 1);
        assert_eq!(
            TokenKey::new(b"secret").verify(&forged, 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expired_and_malformed_tokens_are_refused() {
        let key = TokenKey::new(b"secret");
        assert_eq!(
            key.verify(&key.sign(claims(1_000)), 1_000),
            Err(TokenError::Expired)
        );
        assert_eq!(key.verify("nonsense", 0), Err(TokenError::Malformed));
        assert_eq!(key.verify("a.b.c.d", 0), Err(TokenError::Malformed));
        assert_eq!(key.verify("", 0), Err(TokenError::Malformed));
    }

    #[test]
    fn scopes_are_signed() {
        let key = TokenKey::new(b"secret");
        let t = key.sign(Claims {
            scope: Scope::Kiosk,
            partner: Some("family-mart".into()),
            ..claims(5)
        });
        let c = key.verify(&t, 0).expect("valid");
        assert_eq!(
            (c.scope, c.partner.as_deref()),
            (Scope::Kiosk, Some("family-mart"))
        );
        let other = t.replacen("family-mart", "seven-eleven", 1);
        assert_eq!(key.verify(&other, 0), Err(TokenError::BadSignature));
    }

    #[test]
    fn admin_secrets_compare_exactly() {
        assert!(secrets_match(b"abc", b"abc"));
        assert!(!secrets_match(b"abc", b"abd"));
        assert!(!secrets_match(b"abc", b"abcd"));
    }

    #[test]
    fn every_scope_round_trips() {
        let key = TokenKey::new(b"secret");
        for scope in [Scope::Booking, Scope::Registration, Scope::Kiosk] {
            let t = key.sign(Claims { scope, ..claims(5) });
            assert_eq!(key.verify(&t, 0).map(|c| c.scope), Ok(scope));
        }
    }

    #[test]
    fn the_sealed_id_is_neither_the_id_nor_the_same_twice() {
        let key = TokenKey::new(b"secret");
        let sealed = |t: &str| {
            let raw = URL_SAFE_NO_PAD
                .decode(t.split('.').nth(2).expect("sealed part"))
                .expect("base64");
            u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes"))
        };
        let (a, b) = (key.sign(claims(2_000)), key.sign(claims(2_000)));
        let packed = claims(0).person.packed();
        assert_ne!(sealed(&a), packed, "the packed id is not in the token");
        assert_ne!(sealed(&a), sealed(&b), "a fresh keystream for every token");
    }

    #[test]
    fn a_key_does_not_print_its_secret() {
        assert_eq!(format!("{:?}", TokenKey::new(b"secret")), "TokenKey(..)");
    }
}

//! Person tokens: HMAC-SHA256 signed `id.scope.expiry`, verifiable by any instance.
//!
//! Form: `A123456789.booking.1626141600.<base64url signature>`. The payload is plain so
//! that operators can read a token in a log; the signature over it, with the secret all
//! instances share, is what makes it trustworthy.

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
}

impl Scope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Booking => "booking",
            Scope::Registration => "registration",
            Scope::Kiosk => "kiosk",
        }
    }

    fn parse(raw: &str) -> Option<Scope> {
        match raw {
            "booking" => Some(Scope::Booking),
            "registration" => Some(Scope::Registration),
            "kiosk" => Some(Scope::Kiosk),
            _ => None,
        }
    }
}

/// A verified token's claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub person: IdNumber,
    pub scope: Scope,
    /// Unix seconds.
    pub expires_at: i64,
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
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from a shared secret (any length; at least 32 bytes is sensible).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            mac: HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length"),
        }
    }

    /// Signs claims into a token.
    pub fn sign(&self, claims: Claims) -> String {
        let payload = format!(
            "{}.{}.{}",
            claims.person,
            claims.scope.as_str(),
            claims.expires_at
        );
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
        let (Some(id), Some(scope), Some(exp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let claims = Claims {
            person: IdNumber::parse(id).map_err(|_| TokenError::Malformed)?,
            scope: Scope::parse(scope).ok_or(TokenError::Malformed)?,
            expires_at: exp.parse().map_err(|_| TokenError::Malformed)?,
        };
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
        }
    }

    #[test]
    fn a_signed_token_verifies_with_its_claims() {
        let key = TokenKey::new(b"secret");
        let t = key.sign(claims(2_000));
        assert!(t.starts_with("A123456789.booking.2000."));
        assert_eq!(key.verify(&t, 1_000), Ok(claims(2_000)));
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
            ..claims(5)
        });
        assert_eq!(key.verify(&t, 0).map(|c| c.scope), Ok(Scope::Kiosk));
    }

    #[test]
    fn admin_secrets_compare_exactly() {
        assert!(secrets_match(b"abc", b"abc"));
        assert!(!secrets_match(b"abc", b"abd"));
        assert!(!secrets_match(b"abc", b"abcd"));
    }
}

//! Opaque string identifiers: phases, sites, slots and bookings.

use std::fmt;
use std::sync::Arc;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an identifier is 1 to 64 characters")]
    Length,
    #[error("an identifier uses only A-Z, a-z, 0-9, '-' and '_'")]
    Characters,
}

fn check(raw: &str) -> Result<(), IdError> {
    if raw.is_empty() || raw.len() > 64 {
        return Err(IdError::Length);
    }
    if !raw
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err(IdError::Characters);
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Cheap to clone (`Arc<str>`); the characters are checked once, at parse time,
        /// so ids are safe to embed in Redis keys and journal records.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parses an identifier: 1 to 64 of `[A-Za-z0-9_-]`.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check(raw)?;
                Ok(Self(raw.into()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        /// Lets maps keyed by the id be searched with a plain `&str`; hashing and
        /// equality are those of the text, as `Borrow` requires.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A booking phase (期), e.g. `02`.
    PhaseId
);
string_id!(
    /// A vaccination site, e.g. `S0001`.
    SiteId
);
string_id!(
    /// One site, date, period and vaccine, e.g. `S0001-20210716-AM-AZ`.
    SlotId
);
string_id!(
    /// A booking, unique across every phase and every instance.
    BookingId
);

const ALPHABET: &[u8; 26] = b"ACDEFGHJKLMNPQRTUVWXY34679";
const MODULUS: u64 = 26u64.pow(6);
/// Odd and not a multiple of 13: coprime to 26^6.
const MULTIPLIER: u64 = 199_999_999;

/// The short human code shown at check-in: six characters from an alphabet
/// without look-alikes (no 0/O, 1/I, 2/Z, 5/S, 8/B).
///
/// A bijection of the booking's sequence number over `26^6` values (multiplying
/// by a constant coprime to the modulus), so codes are unique for the first
/// 308 million bookings and do not reveal the order of booking.
pub fn human_code(sequence: u64) -> String {
    let mut n = (sequence % MODULUS) * MULTIPLIER % MODULUS;
    let mut out = [0u8; 6];
    for c in out.iter_mut().rev() {
        *c = ALPHABET[(n % 26) as usize];
        n /= 26;
    }
    out.iter().map(|&c| c as char).collect()
}

/// The sequence number (below `26^6`) whose [`human_code`] is `code`; lower case is
/// accepted, as staff type what the person shows them.
pub fn sequence_of_code(code: &str) -> Option<u64> {
    if code.len() != 6 {
        return None;
    }
    let mut n: u64 = 0;
    for c in code.bytes() {
        let d = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())?;
        n = n * 26 + d as u64;
    }
    // The multiplier's inverse modulo 26^6, by Euler: φ(26^6) = 26^6 / 2 × 12 / 13.
    let phi = MODULUS / 26 * 12;
    let inverse = pow_mod(MULTIPLIER % MODULUS, phi - 1, MODULUS);
    Some(u64::try_from(u128::from(n) * u128::from(inverse) % u128::from(MODULUS)).unwrap_or(0))
}

fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut acc: u128 = 1;
    let mut b = u128::from(base % m);
    while exp > 0 {
        if exp & 1 == 1 {
            acc = acc * b % u128::from(m);
        }
        b = b * b % u128::from(m);
        exp >>= 1;
    }
    base = acc as u64;
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_safe_characters_only() {
        assert!(SlotId::parse("S0001-20210716-AM-AZ").is_ok());
        assert_eq!(PhaseId::parse(""), Err(IdError::Length));
        assert_eq!(PhaseId::parse(&"x".repeat(65)), Err(IdError::Length));
        assert_eq!(SlotId::parse("a b"), Err(IdError::Characters));
        assert_eq!(SlotId::parse("a{b}"), Err(IdError::Characters));
    }

    #[test]
    fn human_codes_are_unique_and_six_characters() {
        let codes: std::collections::HashSet<_> = (0..100_000).map(human_code).collect();
        assert_eq!(codes.len(), 100_000);
        assert!(codes.iter().all(|c| c.len() == 6));
    }

    #[test]
    fn a_code_gives_back_its_sequence() {
        for seq in [0, 1, 2, 77, 123_456, MODULUS - 1] {
            assert_eq!(sequence_of_code(&human_code(seq)), Some(seq));
        }
        assert_eq!(sequence_of_code(&human_code(99).to_lowercase()), Some(99));
        assert_eq!(sequence_of_code("AAAAA"), None);
        assert_eq!(sequence_of_code("AAAAA0"), None);
    }
}

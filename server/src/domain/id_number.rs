//! `IdNumber`: a Taiwan national ID or resident-certificate number, checksummed.

use std::fmt;
use std::str::FromStr;

/// A person's national ID (`A123456789`) or resident-certificate number, in the
/// 2021 format (`A800000014`) or the old format (`AC01234567`).
///
/// Stored packed in a `u64` so that it is `Copy`, hashes fast and costs eight
/// bytes per entry in the per-person tables that hold millions of people.
/// Layout: `letter (0..26) * 14 * 10^8 + second (0..14) * 10^8 + eight digits`,
/// where `second` is the digit `0..=9`, or `10..=13` for the letters `A..=D`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber(u64);

/// Why a string is not an [`IdNumber`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("an id number has 10 characters")]
    Length,
    #[error("an id number starts with a capital letter A-Z")]
    FirstLetter,
    #[error(
        "the second character must be 1 or 2 (national ID), 8 or 9, or A-D (resident certificate)"
    )]
    SecondCharacter,
    #[error("characters 3 to 10 must be digits")]
    Digits,
    #[error("the check digit does not match")]
    Checksum,
}

/// The two-digit code of each initial letter (the county of first registration).
const LETTER_CODES: [u32; 26] = [
    10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21, 22, 35, 23, 24, 25, 26, 27, 28, 29, 32, 30,
    31, 33,
];
const DIGITS: u64 = 100_000_000;

impl IdNumber {
    /// Parses and checks an id number; lowercase letters are accepted and normalised.
    pub fn parse(raw: &str) -> Result<Self, IdNumberError> {
        let b = raw.as_bytes();
        if b.len() != 10 {
            return Err(IdNumberError::Length);
        }
        let first = b[0].to_ascii_uppercase();
        if !first.is_ascii_uppercase() {
            return Err(IdNumberError::FirstLetter);
        }
        let letter = u32::from(first - b'A');
        let second = match b[1].to_ascii_uppercase() {
            c @ (b'1' | b'2' | b'8' | b'9') => u32::from(c - b'0'),
            c @ b'A'..=b'D' => 10 + u32::from(c - b'A'),
            _ => return Err(IdNumberError::SecondCharacter),
        };
        let mut digits = [0u32; 8];
        for (d, c) in digits.iter_mut().zip(&b[2..]) {
            if !c.is_ascii_digit() {
                return Err(IdNumberError::Digits);
            }
            *d = u32::from(c - b'0');
        }
        // The old resident format uses the units digit of the second letter's code.
        let second_digit = if second >= 10 {
            LETTER_CODES[(second - 10) as usize] % 10
        } else {
            second
        };
        let code = LETTER_CODES[letter as usize];
        let mut sum = code / 10 + (code % 10) * 9 + second_digit * 8;
        for (d, w) in digits[..7].iter().zip([7, 6, 5, 4, 3, 2, 1]) {
            sum += d * w;
        }
        sum += digits[7];
        if !sum.is_multiple_of(10) {
            return Err(IdNumberError::Checksum);
        }
        let number = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(*d));
        Ok(Self(
            (u64::from(letter) * 14 + u64::from(second)) * DIGITS + number,
        ))
    }

    /// The packed form, a stable key for maps and stores.
    pub fn packed(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from [`IdNumber::packed`]; `None` if the value was never packed by us.
    pub fn from_packed(v: u64) -> Option<Self> {
        let head = v / DIGITS;
        (head < 26 * 14).then_some(Self(v))
    }

    fn chars(self) -> [u8; 10] {
        let head = self.0 / DIGITS;
        let (letter, second) = ((head / 14) as u8, (head % 14) as u8);
        let mut out = [0u8; 10];
        out[0] = b'A' + letter;
        out[1] = if second >= 10 {
            b'A' + second - 10
        } else {
            b'0' + second
        };
        let mut n = self.0 % DIGITS;
        for i in (2..10).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars = self.chars();
        // Only ASCII is ever written into `chars`.
        f.write_str(std::str::from_utf8(&chars).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({self})")
    }
}

impl FromStr for IdNumber {
    type Err = IdNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for IdNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IdNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Builds a valid national ID from a serial number: used by demos, drills and tests
/// to make millions of distinct, checksummed people.
pub fn synthetic_id(serial: u64) -> IdNumber {
    let letter = (serial / 20_000_000 % 26) as u8;
    let sex = if (serial / 10_000_000).is_multiple_of(2) {
        b'1'
    } else {
        b'2'
    };
    let body = serial % 10_000_000;
    let mut raw = [0u8; 10];
    raw[0] = b'A' + letter;
    raw[1] = sex;
    let mut n = body;
    for i in (2..9).rev() {
        raw[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for check in b'0'..=b'9' {
        raw[9] = check;
        if let Ok(id) = IdNumber::parse(std::str::from_utf8(&raw).unwrap_or_default()) {
            return id;
        }
    }
    unreachable!("exactly one check digit makes the sum divisible by ten")
}

/// A random serial for [`synthetic_id`]: any of the 520 million IDs it can make.
pub fn random_serial() -> u64 {
    u64::from(getrandom::u32().unwrap_or(0)) % (26 * 20_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_make_valid_and_varied_ids() {
        let ids: std::collections::HashSet<String> = (0..200)
            .map(|_| synthetic_id(random_serial()).to_string())
            .collect();
        assert!(ids.len() > 190, "{}", ids.len());
        for id in &ids {
            assert!(IdNumber::parse(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn accepts_the_reference_vectors() {
        for raw in ["A123456789", "A800000014", "AC01234567"] {
            let id = IdNumber::parse(raw).expect(raw);
            assert_eq!(id.to_string(), raw);
            assert_eq!(IdNumber::from_packed(id.packed()), Some(id));
        }
    }

    #[test]
    fn lowercase_is_normalised() {
        assert_eq!(
            IdNumber::parse("a123456789").map(|i| i.to_string()),
            Ok("A123456789".into())
        );
    }

    #[test]
    fn rejects_typical_mistakes_with_typed_errors() {
        assert_eq!(IdNumber::parse("A12345678"), Err(IdNumberError::Length));
        assert_eq!(IdNumber::parse("A1234567890"), Err(IdNumberError::Length));
        assert_eq!(
            IdNumber::parse("1123456789"),
            Err(IdNumberError::FirstLetter)
        );
        assert_eq!(
            IdNumber::parse("A323456789"),
            Err(IdNumberError::SecondCharacter)
        );
        assert_eq!(
            IdNumber::parse("AE01234567"),
            Err(IdNumberError::SecondCharacter)
        );
        assert_eq!(IdNumber::parse("A12345678X"), Err(IdNumberError::Digits));
        assert_eq!(IdNumber::parse("A123456788"), Err(IdNumberError::Checksum));
        assert_eq!(IdNumber::parse("A800000015"), Err(IdNumberError::Checksum));
        assert_eq!(IdNumber::parse("AC01234568"), Err(IdNumberError::Checksum));
        assert_eq!(IdNumber::parse("Ａ123456789"), Err(IdNumberError::Length));
    }

    #[test]
    fn exactly_one_check_digit_is_valid() {
        let valid = (0..10)
            .filter(|d| IdNumber::parse(&format!("B12345678{d}")).is_ok())
            .count();
        assert_eq!(valid, 1);
    }

    #[test]
    fn synthetic_ids_are_valid_and_distinct() {
        let ids: std::collections::HashSet<_> = (0..50_000).map(synthetic_id).collect();
        assert_eq!(ids.len(), 50_000);
        for id in ids.iter().take(100) {
            assert_eq!(IdNumber::parse(&id.to_string()), Ok(*id));
        }
    }
}

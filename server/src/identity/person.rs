//! `InsuredPerson`: what the health-insurance authority knows of a person, and the
//! `NhiCard` number that identifies their card.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::IdNumber;

/// A 12-digit NHI (health-insurance) card number, packed into a `u64`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhiCard(u64);

/// Why a string is not an [`NhiCard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an NHI card number is 12 digits")]
pub struct NhiCardError;

impl NhiCard {
    /// Parses exactly 12 ASCII digits.
    pub fn parse(raw: &str) -> Result<Self, NhiCardError> {
        if raw.len() != 12 || !raw.bytes().all(|c| c.is_ascii_digit()) {
            return Err(NhiCardError);
        }
        raw.parse().map(NhiCard).map_err(|_| NhiCardError)
    }

    /// From a number below 10^12.
    pub fn from_u64(v: u64) -> Option<Self> {
        (v < 1_000_000_000_000).then_some(NhiCard(v))
    }

    /// The packed form, for maps and keys.
    pub fn packed(self) -> u64 {
        self.0
    }

    /// The number with all but the first two and last two digits hidden.
    pub fn masked(self) -> String {
        let s = self.to_string();
        format!("{}********{}", &s[..2], &s[10..])
    }
}

impl fmt::Display for NhiCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012}", self.0)
    }
}

/// Never prints the number: card numbers stay out of logs.
impl fmt::Debug for NhiCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NhiCard({})", self.masked())
    }
}

impl Serialize for NhiCard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NhiCard {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One insured person as the registry holds them. Categories are set by the authority,
/// never declared by the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsuredPerson {
    pub id_number: IdNumber,
    pub nhi_card: NhiCard,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    #[serde(default)]
    pub categories: Vec<u16>,
    /// An argon2id PHC string; `None` when the person has no card password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// The TOTP secret of the NHI app, base32; `None` when the person has no app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_secret: Option<String>,
}

/// Masks an id number for answers: `A12*****89`.
pub fn mask_id(id: IdNumber) -> String {
    let s = id.to_string();
    format!("{}*****{}", &s[..3], &s[8..])
}

/// Masks a mobile number for answers: `0912***678`.
pub fn mask_mobile(mobile: &str) -> String {
    if mobile.len() == 10 && mobile.is_ascii() {
        format!("{}***{}", &mobile[..4], &mobile[7..])
    } else {
        "**********".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_twelve_digits() {
        assert_eq!(
            NhiCard::parse("000012345678").map(|c| c.to_string()),
            Ok("000012345678".to_string())
        );
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "+12345678901",
        ] {
            assert_eq!(NhiCard::parse(bad), Err(NhiCardError), "{bad}");
        }
    }

    #[test]
    fn masks_hide_the_middle() {
        let card = NhiCard::parse("123456789012").expect("valid");
        assert_eq!(card.masked(), "12********12");
        assert_eq!(format!("{card:?}"), "NhiCard(12********12)");
        let id = IdNumber::parse("A123456789").expect("valid");
        assert_eq!(mask_id(id), "A12*****89");
        assert_eq!(mask_mobile("0912345678"), "0912***678");
    }
}

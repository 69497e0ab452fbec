//! `Registration`: a person's intent to be vaccinated (意願登記), its form and its history.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{Geography, IdNumber, canonical};

/// The vaccine brands a person may choose; ticked by default.
pub const BRANDS: [&str; 2] = ["AZ", "Moderna"];

/// The life of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationStatus {
    Registered,
    Cancelled,
}

/// What the person fills in, validated: name, mobile, area and brands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationForm {
    pub name: String,
    pub mobile: String,
    pub county: String,
    pub district: String,
    pub vaccines: Vec<String>,
}

/// The form as it arrives; `vaccines` may be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForm {
    pub name: String,
    pub mobile: String,
    pub county: String,
    pub district: String,
    #[serde(default)]
    pub vaccines: Option<Vec<String>>,
}

/// Why a form is refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}{}", one_of(.choices))]
pub struct FormError {
    pub field: &'static str,
    pub reason: String,
    /// The valid values, where they are few enough to name (counties, districts).
    pub choices: Vec<&'static str>,
}

fn one_of(choices: &[&str]) -> String {
    if choices.is_empty() {
        String::new()
    } else {
        format!("; one of: {}", choices.join(", "))
    }
}

fn err(field: &'static str, reason: &'static str) -> FormError {
    FormError {
        field,
        reason: reason.to_string(),
        choices: Vec::new(),
    }
}

impl RawForm {
    /// Checks every field; `vaccines` defaults to every brand. The everyday spelling
    /// 台 is accepted for 臺 in county names.
    pub fn validate(self) -> Result<RegistrationForm, FormError> {
        let name = self.name.trim().to_string();
        let chars = name.chars().count();
        if chars == 0 || chars > 50 {
            return Err(err("name", "must be 1 to 50 characters"));
        }
        // Control characters, and the bidirectional overrides and isolates that make a
        // name display as something else (U+202A..U+202E, U+2066..U+2069).
        if name.chars().any(|c| {
            c.is_control()
                || ('\u{202A}'..='\u{202E}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        }) {
            return Err(err(
                "name",
                "must not contain control or direction-override characters",
            ));
        }
        let mobile = self.mobile.trim().to_string();
        if mobile.len() != 10
            || !mobile.starts_with("09")
            || !mobile.bytes().all(|c| c.is_ascii_digit())
        {
            return Err(err(
                "mobile",
                "must be a Taiwan mobile number, 09 and 8 digits",
            ));
        }
        let county = canonical(&self.county);
        let district = canonical(&self.district);
        Geography::get()
            .check(Some(&county), Some(&district))
            .map_err(|u| FormError {
                field: u.field,
                reason: u.reason,
                choices: u.choices,
            })?;
        let vaccines = match self.vaccines {
            None => BRANDS.iter().map(|b| (*b).to_string()).collect(),
            Some(v) => {
                if v.is_empty() {
                    return Err(err("vaccines", "choose at least one brand"));
                }
                // Kept in the order of BRANDS, each once.
                let mut chosen = Vec::new();
                for b in &v {
                    if !BRANDS.contains(&b.as_str()) {
                        return Err(err("vaccines", "each must be AZ or Moderna"));
                    }
                }
                for b in BRANDS {
                    if v.iter().any(|x| x == b) {
                        chosen.push(b.to_string());
                    }
                }
                chosen
            }
        };
        Ok(RegistrationForm {
            name,
            mobile,
            county,
            district,
            vaccines,
        })
    }
}

/// A registration as the stores keep it. The serial (登記序號) is unique, increasing and
/// never reused: modifying keeps it, registering again after a cancel gets a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub serial: u64,
    pub person: IdNumber,
    #[serde(flatten)]
    pub form: RegistrationForm,
    pub status: RegistrationStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub modified_at: OffsetDateTime,
}

impl Registration {
    pub fn is_live(&self) -> bool {
        self.status == RegistrationStatus::Registered
    }

    /// Whether the person chose this vaccine.
    pub fn chose(&self, vaccine: &str) -> bool {
        self.form.vaccines.iter().any(|v| v == vaccine)
    }
}

/// One change in a person's registration history; replaying a person's events in
/// order gives their current registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RegistrationEvent {
    Registered { registration: Registration },
    Modified { registration: Registration },
    Cancelled { registration: Registration },
}

impl RegistrationEvent {
    pub fn registration(&self) -> &Registration {
        match self {
            RegistrationEvent::Registered { registration }
            | RegistrationEvent::Modified { registration }
            | RegistrationEvent::Cancelled { registration } => registration,
        }
    }
}

/// How a registration attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    Registered(Registration),
    /// The person already holds a live registration (409, the body carries it).
    AlreadyRegistered(Registration),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str, mobile: &str, vaccines: Option<Vec<&str>>) -> RawForm {
        RawForm {
            name: name.into(),
            mobile: mobile.into(),
            county: "台北市".into(),
            district: "中正區".into(),
            vaccines: vaccines.map(|v| v.into_iter().map(String::from).collect()),
        }
    }

    #[test]
    fn a_valid_form_defaults_to_every_brand_and_normalises_the_county() {
        let f = raw("  王小明 ", "0912345678", None)
            .validate()
            .expect("valid");
        assert_eq!(f.name, "王小明");
        assert_eq!(f.county, "臺北市");
        assert_eq!(f.vaccines, vec!["AZ", "Moderna"]);
    }

    #[test]
    fn brands_are_a_nonempty_subset_in_a_stable_order() {
        let f = raw("a", "0912345678", Some(vec!["Moderna", "AZ", "AZ"]))
            .validate()
            .expect("valid");
        assert_eq!(f.vaccines, vec!["AZ", "Moderna"]);
        assert_eq!(
            raw("a", "0912345678", Some(vec![]))
                .validate()
                .map_err(|e| e.field),
            Err("vaccines")
        );
        assert_eq!(
            raw("a", "0912345678", Some(vec!["BNT"]))
                .validate()
                .map_err(|e| e.field),
            Err("vaccines")
        );
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(
            raw(" ", "0912345678", None).validate().map_err(|e| e.field),
            Err("name")
        );
        let long: String = "名".repeat(51);
        assert_eq!(
            raw(&long, "0912345678", None)
                .validate()
                .map_err(|e| e.field),
            Err("name")
        );
        assert!(raw(&"名".repeat(50), "0912345678", None).validate().is_ok());
        for m in ["0812345678", "091234567", "09123456789", "09-2345678"] {
            assert_eq!(
                raw("a", m, None).validate().map_err(|e| e.field),
                Err("mobile"),
                "{m}"
            );
        }
        assert_eq!(
            raw("a\u{202E}b", "0912345678", None)
                .validate()
                .map_err(|e| e.field),
            Err("name")
        );
        let mut r = raw("a", "0912345678", None);
        r.district = "板橋區".into();
        assert_eq!(r.validate().map_err(|e| e.field), Err("district"));
    }
}

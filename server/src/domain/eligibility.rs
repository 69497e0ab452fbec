//! `Eligibility`: who a phase invites, as the calendar states it.
//!
//! Every rule is optional; a phase without any invites every live registration. The
//! rules are checked against the registration as it stood at settlement time, and the
//! insured person's birth date and priority categories from the registry.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::calendar::{CalendarError, parse_date};
use super::geography::Geography;

/// The eligibility rules of a phase (`"eligibility"` in the calendar).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    /// Registered strictly before this instant. A registration modified later keeps its
    /// `registered_at`: a modification never moves a person past the cutoff.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub registered_before: Option<OffsetDateTime>,
    /// The registrant ticked at least one of these brands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vaccines: Vec<String>,
    /// The registration's county is one of these (a regional trial).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counties: Vec<String>,
    /// The person is in at least one of these priority categories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<u16>,
    /// `YYYY-MM-DD`: born on or before (the oldest band's lower age bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born_on_or_before: Option<String>,
    /// `YYYY-MM-DD`: born on or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born_on_or_after: Option<String>,
}

impl Eligibility {
    /// Checks the rules on their own; `offered` are the phase's vaccines.
    pub fn validate(&self, phase: &str, offered: &[String]) -> Result<(), CalendarError> {
        let err = |m: String| Err(CalendarError(format!("phase {phase}: eligibility: {m}")));
        for v in &self.vaccines {
            if !offered.contains(v) {
                return err(format!("vaccine {v} is not one the phase offers"));
            }
        }
        for c in &self.counties {
            if Geography::get().county(c).is_none() {
                return err(format!("{c} is not a county of tw-districts.csv"));
            }
        }
        if self.categories.iter().any(|&c| c == 0 || c > MAX_CATEGORY) {
            return err(format!("categories are 1 to {MAX_CATEGORY}"));
        }
        let (before, after) = match self.birth_bounds() {
            Ok(b) => b,
            Err(m) => return err(m),
        };
        if let (Some(b), Some(a)) = (before, after)
            && a > b
        {
            return err("born_on_or_after is after born_on_or_before".into());
        }
        Ok(())
    }

    /// The birth-date bounds, parsed: `(born_on_or_before, born_on_or_after)`.
    pub fn birth_bounds(&self) -> Result<(Option<Date>, Option<Date>), String> {
        let parse = |field: &str, raw: &Option<String>| match raw {
            None => Ok(None),
            Some(r) => parse_date(r)
                .map(Some)
                .ok_or_else(|| format!("{field} must be YYYY-MM-DD")),
        };
        Ok((
            parse("born_on_or_before", &self.born_on_or_before)?,
            parse("born_on_or_after", &self.born_on_or_after)?,
        ))
    }
}

/// The highest priority category number (Taiwan's 2021 list had ten; room is left).
pub const MAX_CATEGORY: u16 = 31;

#[cfg(test)]
mod tests {
    use super::*;

    fn offered() -> Vec<String> {
        vec!["AZ".into(), "Moderna".into()]
    }

    #[test]
    fn rules_name_what_is_wrong() {
        let ok = Eligibility {
            counties: vec!["金門縣".into(), "連江縣".into(), "澎湖縣".into()],
            vaccines: vec!["AZ".into()],
            categories: vec![1, 10],
            born_on_or_before: Some("1956-07-31".into()),
            born_on_or_after: Some("1900-01-01".into()),
            ..Eligibility::default()
        };
        assert_eq!(ok.validate("01", &offered()), Ok(()));
        let bad = |e: Eligibility, needle: &str| {
            let got = e.validate("01", &offered()).expect_err("refused");
            assert!(got.0.contains(needle), "{got}");
        };
        bad(
            Eligibility {
                vaccines: vec!["BNT".into()],
                ..ok.clone()
            },
            "BNT",
        );
        bad(
            Eligibility {
                counties: vec!["東京都".into()],
                ..ok.clone()
            },
            "東京都",
        );
        bad(
            Eligibility {
                categories: vec![0],
                ..ok.clone()
            },
            "categories",
        );
        bad(
            Eligibility {
                born_on_or_before: Some("1956-02-30".into()),
                ..ok.clone()
            },
            "born_on_or_before",
        );
        bad(
            Eligibility {
                born_on_or_after: Some("1960-01-01".into()),
                ..ok.clone()
            },
            "after",
        );
    }

    #[test]
    fn unknown_rules_are_refused_rather_than_ignored() {
        let r: Result<Eligibility, _> = serde_json::from_str(r#"{"region": ["金門縣"]}"#);
        assert!(r.is_err());
    }
}

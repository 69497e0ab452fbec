//! `Rules`: a phase's eligibility compiled to masks and integers, checked per registrant.

use crate::domain::{Geography, Phase};
use crate::identity::BRANDS;

use super::registrant::{Registrant, julian_day};

/// A phase's rules, ready to test millions of registrants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Registered strictly before these unix seconds.
    pub registered_before: Option<i64>,
    /// Brands one of which the registrant ticked: the rule's, else the phase's vaccines.
    pub vaccines: u8,
    /// Counties (bit per [`Geography::counties`] index); `None` admits every county.
    pub counties: Option<u64>,
    /// Categories (bit per category); `None` admits everyone.
    pub categories: Option<u32>,
    /// Julian-day bounds of the birth date, both inclusive.
    pub born_on_or_before: Option<i32>,
    pub born_on_or_after: Option<i32>,
}

fn brand_mask<'a>(names: impl IntoIterator<Item = &'a String>) -> u8 {
    names
        .into_iter()
        .filter_map(|n| BRANDS.iter().position(|b| b == n))
        .fold(0, |m, i| m | 1 << i)
}

impl Rules {
    /// The rules of `phase`. A calendar is validated before it is loaded, so every
    /// name here is known; a listed name that were not would match nobody (a rule that
    /// lists only unknown counties admits no one, never everyone).
    pub fn of(phase: &Phase) -> Self {
        let e = phase.eligibility.clone().unwrap_or_default();
        let geo = Geography::get();
        let (before, after) = e.birth_bounds().unwrap_or((None, None));
        Self {
            registered_before: e.registered_before.map(|t| t.unix_timestamp()),
            vaccines: if e.vaccines.is_empty() {
                brand_mask(&phase.vaccines)
            } else {
                brand_mask(&e.vaccines)
            },
            counties: (!e.counties.is_empty()).then(|| {
                e.counties
                    .iter()
                    .filter_map(|c| geo.county_index(c))
                    .fold(0, |m, i| m | 1 << i)
            }),
            categories: (!e.categories.is_empty()).then(|| {
                e.categories
                    .iter()
                    .filter(|&&c| (1..=31).contains(&c))
                    .fold(0, |m, &c| m | 1 << c)
            }),
            born_on_or_before: before.map(julian_day),
            born_on_or_after: after.map(julian_day),
        }
    }

    /// Whether the registrant is eligible.
    pub fn admits(&self, r: &Registrant) -> bool {
        self.registered_before.is_none_or(|t| r.registered_at < t)
            && r.vaccines & self.vaccines != 0
            && self.counties.is_none_or(|m| m & (1 << r.county) != 0)
            && self.categories.is_none_or(|m| m & r.categories != 0)
            && self.born_on_or_before.is_none_or(|d| r.birth <= d)
            && self.born_on_or_after.is_none_or(|d| r.birth >= d)
    }
}

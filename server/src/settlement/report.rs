//! `Report`: what a settlement run invited, counted four ways; JSON and Markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use time::Date;

use crate::domain::Geography;
use crate::identity::BRANDS;

use super::registrant::Registrant;

/// The age bands of Taiwan's 2021 priority list, on the phase's opening date.
pub fn age_band(age: i32) -> &'static str {
    match age {
        ..18 => "0-17",
        18..=49 => "18-49",
        50..=64 => "50-64",
        65..=74 => "65-74",
        _ => "75+",
    }
}

/// Counts of the people a run invited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub by_county: BTreeMap<String, u64>,
    /// By the person's most urgent category (`none` without one).
    pub by_category: BTreeMap<String, u64>,
    pub by_age_band: BTreeMap<String, u64>,
    /// By each brand ticked: one person may count under both.
    pub by_vaccine: BTreeMap<String, u64>,
}

impl Report {
    /// Counts `invited`, ages taken on `day`.
    pub fn of<'a>(invited: impl IntoIterator<Item = &'a Registrant>, day: Date) -> Self {
        let geo = Geography::get();
        let mut r = Report::default();
        for p in invited {
            let county = geo
                .counties
                .get(usize::from(p.county))
                .map_or("?", |c| c.name);
            *r.by_county.entry(county.to_string()).or_default() += 1;
            let category = p
                .first_category()
                .map_or_else(|| "none".to_string(), |c| c.to_string());
            *r.by_category.entry(category).or_default() += 1;
            *r.by_age_band
                .entry(age_band(p.age_on(day)).to_string())
                .or_default() += 1;
            for (i, b) in BRANDS.iter().enumerate() {
                if p.vaccines & (1 << i) != 0 {
                    *r.by_vaccine.entry((*b).to_string()).or_default() += 1;
                }
            }
        }
        r
    }

    /// The report as Markdown: a heading line, then one table per dimension.
    pub fn markdown(&self, title: &str, totals: &[(&str, u64)]) -> String {
        let mut out = format!("# {title}\n\n| | count |\n|---|---:|\n");
        for (k, v) in totals {
            let _ = writeln!(out, "| {k} | {v} |");
        }
        for (name, counts) in [
            ("county", &self.by_county),
            ("category", &self.by_category),
            ("age band", &self.by_age_band),
            ("vaccine", &self.by_vaccine),
        ] {
            let _ = write!(out, "\n| {name} | invited |\n|---|---:|\n");
            for (k, v) in counts {
                let _ = writeln!(out, "| {k} | {v} |");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settlement::registrant::tests::{person, registration};

    #[test]
    fn counts_every_dimension_and_renders_tables() {
        let a = Registrant::new(
            &person(1, "1940-01-01", &[3]),
            &registration(1, 1, "金門縣", &["AZ", "Moderna"]),
        )
        .expect("a");
        let b = Registrant::new(
            &person(2, "1990-08-01", &[]),
            &registration(2, 2, "澎湖縣", &["AZ"]),
        )
        .expect("b");
        let r = Report::of([&a, &b], time::macros::date!(2021 - 07 - 13));
        assert_eq!(r.by_county["金門縣"], 1);
        assert_eq!(r.by_category["3"], 1);
        assert_eq!(r.by_category["none"], 1);
        assert_eq!(r.by_age_band["75+"], 1);
        assert_eq!(r.by_age_band["18-49"], 1);
        assert_eq!((r.by_vaccine["AZ"], r.by_vaccine["Moderna"]), (2, 1));
        let md = r.markdown("第01期", &[("invited", 2)]);
        assert!(md.contains("| 金門縣 | 1 |"), "{md}");
        assert!(md.contains("| invited | 2 |"));
        assert_eq!(age_band(17), "0-17");
        assert_eq!(age_band(74), "65-74");
    }
}

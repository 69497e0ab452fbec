//! The built-in demo national calendar, generated from the embedded geography.
//!
//! Sites in every inhabited district, their number proportional to the county's
//! population per district (about 1,800 in all); phase `01` open now for everyone, with
//! five days × two periods × two vaccines; phase `02` opening in a week for invited
//! people only. Capacities follow site size, so a busy district has big sites.

use time::{Duration, OffsetDateTime};

use crate::domain::{Calendar, Geography, Phase, PhaseId, Site, SiteId, Slot, SlotId};

/// Sites per thousand inhabitants: 23.4 million people give about 1,800 sites.
const SITES_PER_THOUSAND: f64 = 0.077;
/// Districts with a postal code but no resident population.
const UNINHABITED: [&str; 3] = ["釣魚臺列嶼", "東沙群島", "南沙群島"];
const PERIODS: [(&str, &str); 2] = [("AM", "09:00-12:00"), ("PM", "13:30-16:30")];

fn id<T>(parse: fn(&str) -> Result<T, crate::domain::IdError>, raw: String) -> T {
    parse(&raw).expect("generated ids use safe characters")
}

/// The demo sites: `S0001`, `S0002`, ... with a capacity weight each.
fn sites() -> Vec<(Site, u32)> {
    let geo = Geography::get();
    let mut out = Vec::new();
    for county in &geo.counties {
        let districts: Vec<_> = geo
            .districts_of(county.name)
            .filter(|d| !UNINHABITED.contains(&d.name))
            .collect();
        let per_district = (f64::from(county.population_thousands) * SITES_PER_THOUSAND
            / districts.len().max(1) as f64)
            .round()
            .max(1.0) as usize;
        for d in districts {
            for n in 0..per_district {
                let number = out.len() + 1;
                let name = if n == 0 {
                    format!("{}{}衛生所", d.county, d.name)
                } else {
                    format!("{}{}接種站{}", d.county, d.name, n)
                };
                // Health centres are small; the mass-vaccination stations of big districts larger.
                let weight = if n == 0 { 1 } else { 2 + (n as u32 % 3) };
                out.push((
                    Site {
                        id: id(SiteId::parse, format!("S{number:04}")),
                        name,
                        county: d.county.to_string(),
                        district: d.name.to_string(),
                        address: format!("{}{} ({}) {}", d.county, d.name, d.zipcode, d.name_en),
                    },
                    weight,
                ));
            }
        }
    }
    out
}

/// The demo calendar as of `now`.
pub fn calendar(now: OffsetDateTime) -> Calendar {
    let now = now.to_offset(crate::domain::TAIWAN);
    let today = now.date();
    let hour = now
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(now);
    let sites = sites();
    let slots = |phase: &str, first: i64, days: i64, vaccines: &[&str], base: u32| {
        let mut slots = Vec::new();
        for (site, weight) in &sites {
            for day in first..first + days {
                let date = today + Duration::days(day);
                // `Date` displays as ISO 8601, `2021-07-16`.
                let iso = date.to_string();
                let ymd = iso.replace('-', "");
                for (tag, period) in PERIODS {
                    for v in vaccines {
                        slots.push(Slot {
                            id: id(
                                SlotId::parse,
                                format!("{}-{phase}-{ymd}-{tag}-{v}", site.id),
                            ),
                            site: site.id.clone(),
                            date: iso.clone(),
                            period: period.to_string(),
                            vaccine: v.to_string(),
                            capacity: base * weight,
                        });
                    }
                }
            }
        }
        slots
    };
    let open = Phase {
        id: id(PhaseId::parse, "01".into()),
        name: "第01期".into(),
        vaccines: vec!["AZ".into(), "Moderna".into()],
        opens_at: hour - Duration::hours(1),
        closes_at: hour + Duration::days(30),
        invitation_required: false,
        registration_required: false,
        eligibility: None,
        doses: None,
        waiting_room: None,
        slots: slots("01", 1, 5, &["AZ", "Moderna"], 30),
    };
    let upcoming = Phase {
        id: id(PhaseId::parse, "02".into()),
        name: "第02期".into(),
        vaccines: vec!["AZ".into()],
        opens_at: hour + Duration::days(7),
        closes_at: hour + Duration::days(9) + Duration::hours(7),
        invitation_required: true,
        registration_required: false,
        eligibility: None,
        doses: None,
        waiting_room: None,
        slots: slots("02", 10, 2, &["AZ"], 40),
    };
    Calendar {
        sites: sites.into_iter().map(|(s, _)| s).collect(),
        phases: vec![open, upcoming],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_calendar_is_national_valid_and_open_now() {
        let now = OffsetDateTime::now_utc();
        let cal = calendar(now);
        assert_eq!(cal.validate(), Ok(()));
        assert!(
            (1_500..=2_000).contains(&cal.sites.len()),
            "{}",
            cal.sites.len()
        );
        let districts: std::collections::HashSet<_> =
            cal.sites.iter().map(|s| (&s.county, &s.district)).collect();
        assert_eq!(districts.len(), 368, "every inhabited district has a site");
        let open = &cal.phases[0];
        assert!(open.opens_at <= now && now < open.closes_at && !open.invitation_required);
        assert!(open.slots.len() > 30_000);
        assert!(cal.phases[1].opens_at > now && cal.phases[1].invitation_required);
    }
}

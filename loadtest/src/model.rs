//! The demand model: who is invited, where they live, which sites and times they want,
//! when they arrive; and the calendar that supplies them. Calibrated to phase 2 of 2021.
//!
//! Sources (see `../shared/data/README.md`):
//! - Phase 2 (AZ), window 7/13 10:00 – 7/15 17:00 (55 h): 1,109,747 invited by SMS,
//!   930,061 booked (83.8 %).
//! - Population per county: Ministry of the Interior (`tw-county-population.csv`).
//! - Demand was heavily bunched at the opening minute (the site went down at 10:00 of
//!   7/13); popular sites filled within minutes while others had seats for days.
//!
//! Time is compressed: a person who arrives `t` real seconds after the opening arrives
//! `t / compression` seconds into the drill.

use std::collections::HashMap;

use slotd::domain::{
    Calendar, Geography, IdNumber, Phase, PhaseId, Site, SiteId, Slot, SlotId, synthetic_id,
};
use time::{Duration, OffsetDateTime};

/// Every parameter of the model, with its default and why.
#[derive(Debug, Clone)]
pub struct Params {
    /// Fraction of the national phase to replay (1.0 = 1,109,747 invited people).
    pub scale: f64,
    /// People invited nationally: phase 2 of 2021.
    pub invited_national: f64,
    /// Share of the invited who try to book at all. Above `supply_ratio`, so demand
    /// exceeds supply and people are turned away, as in 2021.
    pub attempt_share: f64,
    /// Seats offered per invited person. When every seat is taken, this is the share of
    /// the invited who booked: 0.838 in 2021 (930,061 of 1,109,747).
    pub supply_ratio: f64,
    /// Booking window in real hours (7/13 10:00 – 7/15 17:00).
    pub window_hours: f64,
    /// Drill seconds the whole window is compressed into.
    pub window_seconds: f64,
    /// Share of attempts in the opening minute, and in the rest of the first hour.
    pub opening_minute_share: f64,
    pub first_hour_share: f64,
    /// Zipf exponents: popularity of sites (rank within a county) and of time slots
    /// (earliest most wanted).
    pub zipf_sites: f64,
    pub zipf_times: f64,
    /// Where people look: own district, else own county, else anywhere.
    pub own_district_share: f64,
    pub own_county_share: f64,
    /// Vaccination days and periods per site.
    pub days: usize,
    /// Booking attempts per person before giving up until the next phase.
    pub max_attempts: usize,
    /// Behaviours.
    pub kiosk_share: f64,
    pub double_click_share: f64,
    pub change_share: f64,
    pub cancel_share: f64,
    pub malformed_share: f64,
    pub bad_token_share: f64,
    /// Seed of every random choice: the same seed gives the same people and calendar.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            scale: 0.01,
            invited_national: 1_109_747.0,
            attempt_share: 0.92,
            supply_ratio: 0.838,
            window_hours: 55.0,
            window_seconds: 60.0,
            opening_minute_share: 0.30,
            first_hour_share: 0.35,
            zipf_sites: 1.1,
            zipf_times: 0.8,
            own_district_share: 0.75,
            own_county_share: 0.22,
            days: 6,
            max_attempts: 6,
            kiosk_share: 0.10,
            double_click_share: 0.05,
            change_share: 0.03,
            cancel_share: 0.02,
            malformed_share: 0.01,
            bad_token_share: 0.01,
            seed: 20_210_713,
        }
    }
}

/// A small, fast, seeded generator (SplitMix64): the model must be reproducible and
/// needs no cryptographic quality.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
    /// An index drawn from weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// Zipf weights `1 / rank^s` for ranks 1..=n.
pub fn zipf(n: usize, s: f64) -> Vec<f64> {
    (1..=n).map(|r| 1.0 / (r as f64).powf(s)).collect()
}

/// One invited person.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: IdNumber,
    pub county: &'static str,
    pub district: &'static str,
    /// Whether they try to book at all, and when (real seconds after the opening).
    pub arrives_at: Option<f64>,
}

/// A drill site with its popularity.
#[derive(Debug, Clone)]
pub struct DrillSite {
    pub site: Site,
    pub popularity: f64,
}

/// The whole scenario: people, sites, calendar.
#[derive(Debug)]
pub struct Scenario {
    pub params: Params,
    pub phase: PhaseId,
    pub people: Vec<Person>,
    pub sites: Vec<DrillSite>,
    pub calendar: Calendar,
    pub capacity: u64,
}

const UNINHABITED: [&str; 3] = ["釣魚臺列嶼", "東沙群島", "南沙群島"];

impl Scenario {
    /// Builds the scenario; the phase opens at `opens_at`.
    pub fn build(params: Params, phase: PhaseId, opens_at: OffsetDateTime) -> Scenario {
        let geo = Geography::get();
        let mut rng = Rng::new(params.seed);
        let invited = (params.invited_national * params.scale).round().max(1.0) as usize;
        let national: f64 = geo
            .counties
            .iter()
            .map(|c| f64::from(c.population_thousands))
            .sum();

        // Sites: about 1,400 nationally at scale 1 (mass-vaccination sites of 2021),
        // proportional to population, at least one per county.
        let site_target = (1_400.0 * params.scale).max(1.0);
        let mut sites = Vec::new();
        let mut by_county: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for county in &geo.counties {
            let districts: Vec<_> = geo
                .districts_of(county.name)
                .filter(|d| !UNINHABITED.contains(&d.name))
                .collect();
            let share = f64::from(county.population_thousands) / national;
            let n = (site_target * share).round().max(1.0) as usize;
            let weights = zipf(n, params.zipf_sites);
            for (rank, w) in weights.iter().enumerate() {
                let d = districts[if rank < districts.len() {
                    rank
                } else {
                    rng.below(districts.len())
                }];
                let index = sites.len();
                let id =
                    SiteId::parse(&format!("D{:04}", index + 1)).expect("generated ids are valid");
                sites.push(DrillSite {
                    site: Site {
                        id,
                        name: format!("{}{}接種站{}", d.county, d.name, rank + 1),
                        county: d.county.to_string(),
                        district: d.name.to_string(),
                        address: format!("{} {}", d.zipcode, d.name_en),
                    },
                    popularity: *w,
                });
                by_county.entry(county.name).or_default().push(index);
            }
        }

        // People: per county by population; a home district each; arrival times.
        let mut people = Vec::with_capacity(invited);
        for county in &geo.counties {
            let districts: Vec<_> = geo
                .districts_of(county.name)
                .filter(|d| !UNINHABITED.contains(&d.name))
                .collect();
            let n = (invited as f64 * f64::from(county.population_thousands) / national).round()
                as usize;
            for _ in 0..n {
                let d = districts[rng.below(districts.len())];
                let arrives_at = rng
                    .chance(params.attempt_share)
                    .then(|| arrival(&mut rng, &params));
                people.push(Person {
                    // Serial numbers from 5,000,000: clear of the ids tests and demos use.
                    id: synthetic_id(5_000_000 + people.len() as u64),
                    county: county.name,
                    district: d.name,
                    arrives_at,
                });
            }
        }

        // Supply: seats per county by population, per site by popularity^0.5 (big
        // sites are bigger, but not as much bigger as they are more wanted), spread
        // evenly over the site's slots.
        let total_seats = invited as f64 * params.supply_ratio;
        let periods = [("AM", "09:00-12:00"), ("PM", "13:30-16:30")];
        let first_day = (opens_at + Duration::days(3)).date();
        let mut slots = Vec::new();
        let mut capacity = 0u64;
        for county in &geo.counties {
            let Some(members) = by_county.get(county.name) else {
                continue;
            };
            let seats = total_seats * f64::from(county.population_thousands) / national;
            let weights: Vec<f64> = members
                .iter()
                .map(|&s| sites[s].popularity.sqrt())
                .collect();
            let sum: f64 = weights.iter().sum();
            for (&s, w) in members.iter().zip(&weights) {
                let per_slot = (seats * w / sum / (params.days * periods.len()) as f64)
                    .round()
                    .max(1.0) as u32;
                for day in 0..params.days {
                    let date = first_day + Duration::days(day as i64);
                    // `Date` displays as ISO 8601, `2021-07-16`.
                    let iso = date.to_string();
                    let ymd = iso.replace('-', "");
                    for (tag, period) in periods {
                        slots.push(Slot {
                            id: SlotId::parse(&format!(
                                "{}-{}-{ymd}-{tag}",
                                phase, sites[s].site.id
                            ))
                            .expect("generated ids are valid"),
                            site: sites[s].site.id.clone(),
                            date: iso.clone(),
                            period: period.to_string(),
                            vaccine: "AZ".into(),
                            capacity: per_slot,
                        });
                        capacity += u64::from(per_slot);
                    }
                }
            }
        }
        let window = Duration::seconds_f64(params.window_hours * 3600.0 / compression(&params));
        let calendar = Calendar {
            sites: sites.iter().map(|s| s.site.clone()).collect(),
            phases: vec![Phase {
                id: phase.clone(),
                name: format!("演練 {phase}"),
                vaccines: vec!["AZ".into()],
                opens_at,
                // The compressed window, plus slack so that the last arrivals finish.
                closes_at: opens_at + window + Duration::minutes(10),
                invitation_required: true,
                // Only registrants book: the drill registers everyone first.
                registration_required: true,
                eligibility: None,
                doses: None,
                slots,
            }],
        };
        Scenario {
            params,
            phase,
            people,
            sites,
            calendar,
            capacity,
        }
    }

    /// People who will try to book, in order of arrival.
    pub fn arrivals(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.people.len())
            .filter(|&i| self.people[i].arrives_at.is_some())
            .collect();
        order.sort_by(|&a, &b| {
            self.people[a]
                .arrives_at
                .partial_cmp(&self.people[b].arrives_at)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        order
    }

    /// Real seconds per drill second.
    pub fn compression(&self) -> f64 {
        compression(&self.params)
    }
}

fn compression(p: &Params) -> f64 {
    (p.window_hours * 3600.0 / p.window_seconds.max(1.0)).max(1.0)
}

/// Real seconds after the opening at which an attempting person arrives.
fn arrival(rng: &mut Rng, p: &Params) -> f64 {
    let window = p.window_hours * 3600.0;
    let u = rng.unit();
    if u < p.opening_minute_share {
        rng.exp(15.0).min(60.0)
    } else if u < p.opening_minute_share + p.first_hour_share {
        60.0 + rng.exp(900.0).min(3_540.0)
    } else {
        // The long tail: evenings and the next days, thinning out.
        (3_600.0 + rng.exp(6.0 * 3600.0)).min(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scenario_is_national_and_short_of_supply() {
        let s = Scenario::build(
            Params::default(),
            PhaseId::parse("T1").expect("id"),
            OffsetDateTime::now_utc(),
        );
        assert_eq!(s.calendar.validate(), Ok(()));
        let invited = s.people.len() as f64;
        assert!((invited - 11_097.0).abs() < 50.0, "{invited}");
        let attempting = s.arrivals().len() as f64;
        assert!(attempting > s.capacity as f64, "demand exceeds supply");
        let counties: std::collections::HashSet<_> =
            s.sites.iter().map(|x| x.site.county.clone()).collect();
        assert_eq!(counties.len(), 22, "every county has a site");
        let first_minute = s
            .people
            .iter()
            .filter(|p| p.arrives_at.is_some_and(|t| t <= 60.0))
            .count() as f64;
        assert!(first_minute / attempting > 0.25, "bunched at the opening");
    }

    #[test]
    fn the_same_seed_gives_the_same_people() {
        let a = Scenario::build(
            Params::default(),
            PhaseId::parse("T1").expect("id"),
            OffsetDateTime::now_utc(),
        );
        let b = Scenario::build(
            Params::default(),
            PhaseId::parse("T1").expect("id"),
            OffsetDateTime::now_utc(),
        );
        assert_eq!(a.people.len(), b.people.len());
        assert!(
            a.people
                .iter()
                .zip(&b.people)
                .all(|(x, y)| x.id == y.id && x.arrives_at == y.arrives_at)
        );
    }
}

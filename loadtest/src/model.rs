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
    Calendar, Eligibility, Geography, IdNumber, Phase, PhaseId, Site, SiteId, Slot, SlotId, TAIWAN,
    WaitingRoom, synthetic_id,
};
use time::{Date, Duration, OffsetDateTime};

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
    /// Replay only the arrivals of the first this many real seconds after the opening
    /// (`--minutes`); everyone else is left out of the drill, not counted as unserved.
    pub replay_seconds: Option<f64>,
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
    /// Vaccination periods per site, all on the drill's day (today in Taiwan), so that
    /// check-in and the close-out of that day run inside the drill.
    pub periods: usize,
    /// Booking attempts per person before giving up until the next phase.
    pub max_attempts: usize,
    /// Behaviours.
    pub kiosk_share: f64,
    pub double_click_share: f64,
    pub change_share: f64,
    pub cancel_share: f64,
    /// Share who look at their booking (`GET /v1/me/bookings`, their real token) after
    /// making it.
    pub own_read_share: f64,
    pub malformed_share: f64,
    pub bad_token_share: f64,
    /// Share who register only at arrival, after the settlement's cutoff: not eligible
    /// in this phase, so never invited nor texted; they carry over to the next.
    pub late_registration_share: f64,
    /// Of those arriving without an invitation, the share who try to book anyway (a
    /// neighbour got a text): each must be refused `403 not-invited`.
    pub uninvited_try_share: f64,
    /// Share of live bookings whose person does not come on the day (2021: about 3 %).
    pub no_show_rate: f64,
    /// Share of check-ins where staff type the ID number instead of scanning the code.
    pub id_number_check_in_share: f64,
    /// Share of the invited who are bots: scripts that are there at the opening instant
    /// (in the pre-queue, when there is a waiting room), never wait for `Retry-After`, and
    /// try more often. The report compares their share of bookings with their share of
    /// people.
    pub bot_share: f64,
    /// Whether the phase has a waiting room: its pre-queue opens at the announcement, and
    /// the people there at the opening minute (and every bot) queue in it beforehand.
    pub waiting_room: bool,
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
            replay_seconds: None,
            opening_minute_share: 0.30,
            first_hour_share: 0.35,
            zipf_sites: 1.1,
            zipf_times: 0.8,
            own_district_share: 0.75,
            own_county_share: 0.22,
            periods: 12,
            max_attempts: 6,
            kiosk_share: 0.10,
            double_click_share: 0.05,
            change_share: 0.03,
            cancel_share: 0.02,
            own_read_share: 0.3,
            malformed_share: 0.01,
            bad_token_share: 0.01,
            late_registration_share: 0.02,
            uninvited_try_share: 0.5,
            no_show_rate: 0.03,
            id_number_check_in_share: 0.1,
            bot_share: 0.05,
            waiting_room: false,
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
    /// Registers only at arrival, after the settlement's cutoff (see
    /// [`Params::late_registration_share`]).
    pub late: bool,
    /// A script, not a person (see [`Params::bot_share`]).
    pub bot: bool,
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
    /// The phase after: settled once the drill's day is closed out, to prove the
    /// carry-over (no-shows and invitees who never booked come back, attendees do not).
    pub next_phase: PhaseId,
    /// The vaccination day: today in Taiwan when the scenario was built.
    pub day: Date,
    pub people: Vec<Person>,
    pub sites: Vec<DrillSite>,
    pub calendar: Calendar,
    pub capacity: u64,
}

const UNINHABITED: [&str; 3] = ["釣魚臺列嶼", "東沙群島", "南沙群島"];

impl Scenario {
    /// Builds the scenario. The phase is announced later ([`Scenario::announced`]), once
    /// the registration wave is over; until then it opens at `tentative`, far enough
    /// away that nobody books early. Its slots are all dated today in Taiwan.
    pub fn build(params: Params, phase: PhaseId, tentative: OffsetDateTime) -> Scenario {
        let opens_at = tentative;
        let day = OffsetDateTime::now_utc().to_offset(TAIWAN).date();
        let next_phase =
            PhaseId::parse(&format!("{phase}-next")).expect("a phase id with a suffix is valid");
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
                let late = rng.chance(params.late_registration_share);
                // Decided apart from the stream above, so that the share of bots changes
                // nothing else about the people.
                let bot = !late && params.bot(people.len());
                people.push(Person {
                    // Serial numbers from 5,000,000: clear of the ids tests and demos use.
                    id: synthetic_id(5_000_000 + people.len() as u64),
                    county: county.name,
                    district: d.name,
                    // A bot is there at the opening instant, every time.
                    arrives_at: if bot { Some(0.0) } else { arrives_at },
                    late,
                    bot,
                });
            }
        }

        // Supply: seats per county by population, per site by popularity^0.5 (big
        // sites are bigger, but not as much bigger as they are more wanted), spread
        // evenly over the site's slots.
        let total_seats = invited as f64 * params.supply_ratio;
        // One-hour periods from 08:00, all on the drill's day.
        let periods: Vec<(String, String)> = (0..params.periods.max(1))
            .map(|i| {
                let h = 8 + i % 16;
                (
                    format!("P{:02}", i + 1),
                    format!("{h:02}:00-{:02}:00", h + 1),
                )
            })
            .collect();
        // `Date` displays as ISO 8601, `2021-07-16`.
        let iso = day.to_string();
        let ymd = iso.replace('-', "");
        let mut slots = Vec::new();
        let mut next_slots = Vec::new();
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
                let site = &sites[s].site.id;
                let per_slot = (seats * w / sum / periods.len() as f64).round().max(1.0) as u32;
                for (tag, period) in &periods {
                    slots.push(Slot {
                        id: SlotId::parse(&format!("{phase}-{site}-{ymd}-{tag}"))
                            .expect("generated ids are valid"),
                        site: site.clone(),
                        date: iso.clone(),
                        period: period.clone(),
                        vaccine: "AZ".into(),
                        capacity: per_slot,
                    });
                    capacity += u64::from(per_slot);
                }
                // The next phase needs no seats in the drill, only its settlement: one
                // token slot a week later per site.
                let later = (day + Duration::days(7)).to_string();
                next_slots.push(Slot {
                    id: SlotId::parse(&format!(
                        "{next_phase}-{site}-{}-P01",
                        later.replace('-', "")
                    ))
                    .expect("generated ids are valid"),
                    site: site.clone(),
                    date: later,
                    period: "08:00-09:00".into(),
                    vaccine: "AZ".into(),
                    capacity: 1,
                });
            }
        }
        let window = Duration::seconds_f64(params.window_hours * 3600.0 / compression(&params));
        let everyone = people.len() as u64;
        let calendar = Calendar {
            sites: sites.iter().map(|s| s.site.clone()).collect(),
            phases: vec![
                Phase {
                    id: phase.clone(),
                    name: format!("演練 {phase}"),
                    vaccines: vec!["AZ".into()],
                    opens_at,
                    // The compressed window, plus slack so that the last arrivals finish.
                    closes_at: opens_at + window + Duration::minutes(10),
                    // Settlement decides who may book: registered before the cutoff
                    // (set at the announcement) and AZ ticked; doses for everyone, so
                    // every eligible registrant is invited.
                    invitation_required: true,
                    // Only registrants book.
                    registration_required: true,
                    eligibility: Some(Eligibility {
                        registered_before: Some(opens_at),
                        vaccines: vec!["AZ".into()],
                        ..Eligibility::default()
                    }),
                    doses: Some(everyone),
                    waiting_room: None,
                    slots,
                },
                Phase {
                    id: next_phase.clone(),
                    name: format!("演練 {next_phase}"),
                    vaccines: vec!["AZ".into()],
                    opens_at: opens_at + Duration::days(7),
                    closes_at: opens_at + Duration::days(9),
                    invitation_required: true,
                    registration_required: true,
                    // No cutoff: the late registrants come in with the carry-over.
                    eligibility: Some(Eligibility {
                        vaccines: vec!["AZ".into()],
                        ..Eligibility::default()
                    }),
                    doses: Some(everyone),
                    waiting_room: None,
                    slots: next_slots,
                },
            ],
        };
        Scenario {
            params,
            phase,
            next_phase,
            day,
            people,
            sites,
            calendar,
            capacity,
        }
    }

    /// The calendar as announced once the registration wave is over: registrations
    /// before `cutoff` count, and the window opens at `opens_at`.
    pub fn announced(&self, cutoff: OffsetDateTime, opens_at: OffsetDateTime) -> Calendar {
        let mut c = self.calendar.clone();
        let p = &mut c.phases[0];
        if self.params.waiting_room {
            // The pre-queue opens with the announcement.
            p.waiting_room = Some(WaitingRoom {
                prequeue_opens_at: cutoff - Duration::seconds(1),
            });
        }
        let length = p.closes_at - p.opens_at;
        p.opens_at = opens_at;
        p.closes_at = opens_at + length;
        if let Some(e) = p.eligibility.as_mut() {
            e.registered_before = Some(cutoff);
        }
        c
    }

    /// Whether `person` queues in the pre-queue before the opening: with a waiting room,
    /// every bot and everyone who comes in the opening minute (they sit at the screen at
    /// 10:00 sharp, so with a pre-queue they are in it).
    pub fn early(&self, person: usize) -> bool {
        let p = &self.people[person];
        self.params.waiting_room && (p.bot || p.arrives_at.is_some_and(|t| t < 60.0))
    }

    /// People who will try to book, in order of arrival.
    pub fn arrivals(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.people.len())
            .filter(|&i| {
                self.people[i]
                    .arrives_at
                    .is_some_and(|t| self.params.replay_seconds.is_none_or(|end| t <= end))
            })
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

/// A yes-or-no that depends only on the seed, a salt naming the question, and the person:
/// the same person gets the same answer whichever goose user or task asks, in any order.
fn decide(seed: u64, salt: u64, person: usize, share: f64) -> bool {
    let mut rng = Rng::new(seed ^ salt ^ (person as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    rng.next_u64();
    rng.chance(share)
}

impl Params {
    /// Whether `person` is a bot.
    pub fn bot(&self, person: usize) -> bool {
        decide(self.seed, 0x626f_7473, person, self.bot_share)
    }

    /// Whether `person` stays away on the day of a live booking.
    pub fn no_show(&self, person: usize) -> bool {
        decide(self.seed, 0x006e_6f2d_7368_6f77, person, self.no_show_rate)
    }

    /// Whether staff check `person` in by ID number rather than by booking code.
    pub fn checks_in_by_id(&self, person: usize) -> bool {
        decide(
            self.seed,
            0x6964_2d6e_756d,
            person,
            self.id_number_check_in_share,
        )
    }
}

/// Whether `observed` no-shows out of `bookings` fit the rate `rate`: within four
/// binomial standard deviations, plus one booking for rounding.
pub fn no_shows_fit(observed: u64, bookings: u64, rate: f64) -> bool {
    if bookings == 0 {
        return observed == 0;
    }
    let n = bookings as f64;
    let sigma = (n * rate * (1.0 - rate)).sqrt();
    (observed as f64 - n * rate).abs() <= 4.0 * sigma + 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_shows_are_chosen_the_same_way_every_time_and_near_the_rate() {
        let p = Params::default();
        let a: Vec<bool> = (0..20_000).map(|i| p.no_show(i)).collect();
        let b: Vec<bool> = (0..20_000).rev().map(|i| p.no_show(i)).collect();
        assert!(
            a.iter().eq(b.iter().rev()),
            "independent of the order asked"
        );
        let n = a.iter().filter(|x| **x).count() as u64;
        assert!(no_shows_fit(n, 20_000, p.no_show_rate), "{n} of 20000");
        let other = Params {
            seed: 7,
            ..Params::default()
        };
        assert_ne!(
            a,
            (0..20_000).map(|i| other.no_show(i)).collect::<Vec<_>>(),
            "another seed, other no-shows"
        );
        let by_id = (0..20_000).filter(|&i| p.checks_in_by_id(i)).count();
        assert!((1_500..2_500).contains(&by_id), "{by_id}");
        let both = (0..20_000)
            .filter(|&i| p.no_show(i) && p.checks_in_by_id(i))
            .count();
        assert!(both < 150, "the two choices are independent: {both}");
    }

    #[test]
    fn the_no_show_tolerance_takes_sampling_noise_but_not_a_wrong_rate() {
        assert!(no_shows_fit(300, 10_000, 0.03));
        assert!(no_shows_fit(360, 10_000, 0.03));
        assert!(!no_shows_fit(0, 10_000, 0.03));
        assert!(!no_shows_fit(600, 10_000, 0.03));
        assert!(no_shows_fit(0, 0, 0.03));
        assert!(no_shows_fit(1, 10, 0.03));
    }

    #[test]
    fn minutes_replay_only_the_first_arrivals_in_order_and_real_time_is_uncompressed() {
        let now = OffsetDateTime::now_utc();
        let id = PhaseId::parse("T1").expect("id");
        let whole = Scenario::build(Params::default(), id.clone(), now + Duration::days(1));
        let first = Scenario::build(
            Params {
                replay_seconds: Some(600.0),
                window_seconds: 55.0 * 3600.0,
                ..Params::default()
            },
            id,
            now + Duration::days(1),
        );
        assert_eq!(first.compression(), 1.0, "real time");
        let all = whole.arrivals();
        let ten = first.arrivals();
        let expected: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| whole.people[i].arrives_at.is_some_and(|t| t <= 600.0))
            .collect();
        assert_eq!(ten, expected, "the same people, in arrival order");
        // The model's opening: 30 % of attempts in the first minute, more in the next nine.
        assert!(
            ten.len() > all.len() * 3 / 10 && ten.len() < all.len() / 2,
            "{} of {}",
            ten.len(),
            all.len()
        );
    }

    #[test]
    fn the_drill_day_is_today_and_the_announcement_sets_the_cutoff() {
        let now = OffsetDateTime::now_utc();
        let s = Scenario::build(
            Params::default(),
            PhaseId::parse("T1").expect("id"),
            now + Duration::days(1),
        );
        let today = now.to_offset(TAIWAN).date().to_string();
        assert!(
            s.calendar.phases[0].slots.iter().all(|x| x.date == today),
            "every slot of the phase is today"
        );
        assert_eq!(s.calendar.phases[1].id.as_str(), "T1-next");
        let c = s.announced(now, now + Duration::seconds(5));
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.phases[0].opens_at, now + Duration::seconds(5));
        assert_eq!(
            c.phases[0]
                .eligibility
                .as_ref()
                .and_then(|e| e.registered_before),
            Some(now)
        );
        assert!(c.phases[0].invitation_required);
        let late = s.people.iter().filter(|p| p.late).count();
        assert!(late > 100 && late < 400, "{late}");
    }

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

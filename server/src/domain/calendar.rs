//! The calendar file: sites, phases and slots, as operators write it, and its validation.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::eligibility::Eligibility;
use super::geography::Geography;
use super::ids::{PhaseId, SiteId, SlotId};

/// A vaccination site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    pub county: String,
    pub district: String,
    #[serde(default)]
    pub address: String,
}

/// A booking phase (期) with its window and slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub id: PhaseId,
    pub name: String,
    pub vaccines: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub opens_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub closes_at: OffsetDateTime,
    #[serde(default)]
    pub invitation_required: bool,
    /// Only people with a live intent registration that chose the slot's vaccine book.
    #[serde(default)]
    pub registration_required: bool,
    /// Who settlement invites; `None`: settlement invites every live registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligibility: Option<Eligibility>,
    /// The doses on offer, which bound how many settlement invites; `None`: the sum of
    /// the phase's slot capacities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doses: Option<u64>,
    /// A waiting room in front of the opening; `None`: bookings are first come, first
    /// served from `opens_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<WaitingRoom>,
    #[serde(default)]
    pub slots: Vec<Slot>,
}

/// A phase's waiting room: people queue from `prequeue_opens_at`; at `opens_at` those
/// already there are shuffled, later ones queue behind in arrival order; while the room
/// is active (until the phase closes) a booking needs an admitted ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitingRoom {
    #[serde(with = "time::serde::rfc3339")]
    pub prequeue_opens_at: OffsetDateTime,
}

/// One site, date, period and vaccine, with a capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub id: SlotId,
    pub site: SiteId,
    /// `YYYY-MM-DD`, the local (Taiwan) date.
    pub date: String,
    /// `HH:MM-HH:MM`.
    pub period: String,
    pub vaccine: String,
    pub capacity: u32,
}

/// A whole calendar: what `--calendar FILE` and `PUT /v1/admin/calendar` take.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calendar {
    #[serde(default)]
    pub sites: Vec<Site>,
    #[serde(default)]
    pub phases: Vec<Phase>,
}

/// Why a calendar cannot be loaded; the message names the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CalendarError(pub String);

/// The largest capacity of one slot: counters are `u32`, and no site vaccinates more
/// than this in one period.
pub const MAX_SLOT_CAPACITY: u32 = 1_000_000;

impl Calendar {
    /// Checks the calendar on its own: unique ids, known sites, counties and districts,
    /// sane windows, dates, periods and vaccines. Capacity changes against what is already
    /// booked are checked by the store when the calendar is applied.
    pub fn validate(&self) -> Result<(), CalendarError> {
        let err = |m: String| Err(CalendarError(m));
        let geo = Geography::get();
        let mut sites = HashSet::new();
        for s in &self.sites {
            if !sites.insert(&s.id) {
                return err(format!("site {} appears twice", s.id));
            }
            if !geo.is_known(&s.county, &s.district) {
                return err(format!(
                    "site {}: {} {} is not a county and district of tw-districts.csv",
                    s.id, s.county, s.district
                ));
            }
        }
        let mut phases = HashSet::new();
        let mut slots = HashSet::new();
        for p in &self.phases {
            if !phases.insert(&p.id) {
                return err(format!("phase {} appears twice", p.id));
            }
            if p.closes_at <= p.opens_at {
                return err(format!("phase {}: closes_at must be after opens_at", p.id));
            }
            if let Some(w) = &p.waiting_room
                && w.prequeue_opens_at > p.opens_at
            {
                return err(format!(
                    "phase {}: waiting_room.prequeue_opens_at must not be after opens_at",
                    p.id
                ));
            }
            if let Some(e) = &p.eligibility {
                e.validate(p.id.as_str(), &p.vaccines)?;
            }
            for s in &p.slots {
                if !slots.insert(&s.id) {
                    return err(format!("slot {} appears twice", s.id));
                }
                if !sites.contains(&s.site) {
                    return err(format!("slot {}: unknown site {}", s.id, s.site));
                }
                if !p.vaccines.iter().any(|v| v == &s.vaccine) {
                    return err(format!(
                        "slot {}: vaccine {} is not one of phase {}",
                        s.id, s.vaccine, p.id
                    ));
                }
                if parse_date(&s.date).is_none() {
                    return err(format!("slot {}: date must be YYYY-MM-DD", s.id));
                }
                if !valid_period(&s.period) {
                    return err(format!("slot {}: period must be HH:MM-HH:MM", s.id));
                }
                if s.capacity > MAX_SLOT_CAPACITY {
                    return err(format!("slot {}: capacity above {MAX_SLOT_CAPACITY}", s.id));
                }
            }
        }
        Ok(())
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Option<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &fmt).ok()
}

fn valid_period(raw: &str) -> bool {
    let fmt = time::macros::format_description!("[hour]:[minute]");
    match raw.split_once('-') {
        Some((a, b)) => match (time::Time::parse(a, &fmt), time::Time::parse(b, &fmt)) {
            (Ok(a), Ok(b)) => a < b,
            _ => false,
        },
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Calendar {
        serde_json::from_str(
            r#"{"sites":[{"id":"S0001","name":"臺大醫院","county":"臺北市","district":"中正區","address":"x"}],
            "phases":[{"id":"02","name":"第02期","vaccines":["AZ"],
              "opens_at":"2021-07-13T10:00:00+08:00","closes_at":"2021-07-15T17:00:00+08:00",
              "invitation_required":true,
              "slots":[{"id":"S0001-20210716-AM-AZ","site":"S0001","date":"2021-07-16",
                        "period":"09:00-12:00","vaccine":"AZ","capacity":120}]}]}"#,
        )
        .expect("the contract's example parses")
    }

    #[test]
    fn the_contract_example_is_valid() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn invalid_calendars_name_the_problem() {
        let mut c = sample();
        c.sites[0].district = "板橋區".into();
        assert!(c.validate().is_err_and(|e| e.0.contains("S0001")));
        let mut c = sample();
        c.phases[0].slots[0].vaccine = "BNT".into();
        assert!(c.validate().is_err());
        let mut c = sample();
        c.phases[0].slots[0].period = "12:00-09:00".into();
        assert!(c.validate().is_err());
        let mut c = sample();
        c.phases[0].slots[0].date = "2021-02-30".into();
        assert!(c.validate().is_err());
        let mut c = sample();
        c.phases[0].closes_at = c.phases[0].opens_at;
        assert!(c.validate().is_err());
        let mut c = sample();
        let dup = c.phases[0].slots[0].clone();
        c.phases[0].slots.push(dup);
        assert!(c.validate().is_err());
    }
}

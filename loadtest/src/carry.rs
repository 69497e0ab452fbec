//! The next phase: settled after the close-out, it must carry over the no-shows, the
//! invitees who never booked and the registrants left out before, and leave out everyone
//! who attended. Then the texts are tallied: every invitation of both phases exactly once
//! in the gateway's file, and nobody booked before their text came.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::day::Day;
use crate::provision::{get, post};
use crate::state::Drill;

/// The next phase's settlement against what the day left.
#[derive(Debug, Clone, Serialize)]
pub struct CarryOver {
    pub settlement: Value,
    pub invited: u64,
    pub eligible: u64,
    /// Live registrations less the day's attendees: whom the rules admit.
    pub eligible_expected: u64,
    /// Persons with a text for the next phase.
    pub texted: usize,
    /// Of this phase's no-shows, invitees who never booked (or cancelled), and
    /// registrants never invited: how many there were, and how many the next phase
    /// left out (each must be 0).
    pub no_shows: usize,
    pub no_shows_missing: usize,
    pub never_booked: usize,
    pub never_booked_missing: usize,
    pub never_invited: usize,
    pub never_invited_missing: usize,
    /// Attendees invited again: must be 0.
    pub attended_reinvited: usize,
}

impl CarryOver {
    pub fn ok(&self) -> bool {
        self.no_shows_missing == 0
            && self.never_booked_missing == 0
            && self.never_invited_missing == 0
            && self.attended_reinvited == 0
            && self.eligible == self.eligible_expected
            && self.invited == self.eligible
            && self.texted as u64 == self.invited
    }
}

/// The texts in the gateway's file against the invitations.
#[derive(Debug, Clone, Serialize)]
pub struct Texts {
    /// Invitations of both phases (the settlements' `invited`).
    pub expected: u64,
    pub lines: u64,
    pub unique: u64,
    pub duplicates: u64,
    pub unreadable: u64,
    pub unknown_to: u64,
    pub per_phase: BTreeMap<String, u64>,
    /// Texts of the phase per second, first to last as the tail saw them.
    pub per_second: f64,
    pub spread_seconds: f64,
    /// The outbox's own figures (`queued`, `sent`, `failed`, `dead`, `per_second`).
    pub outbox: Value,
    /// Acknowledged bookings made before the person's text was seen: must be 0.
    pub booked_before_text: usize,
}

/// Settles the next phase, waits for every text to be written, and checks both.
pub async fn run(
    client: &reqwest::Client,
    target: &str,
    admin: &str,
    d: &Arc<Drill>,
    day: &Day,
) -> anyhow::Result<(CarryOver, Texts)> {
    let next = &d.scenario.next_phase;
    let settlement = post(
        client,
        format!("{target}/v1/admin/phases/{next}/settlement"),
        admin,
        None,
    )
    .await?;
    let invited_first = d
        .settlement
        .get()
        .and_then(|s| s["invited"].as_u64())
        .unwrap_or(0);
    let invited = settlement["invited"].as_u64().unwrap_or(0);
    let expected = invited_first + invited;
    // The outbox drains at the instances' --sms-rate; the tail follows the file.
    let waiting = Instant::now();
    let outbox = loop {
        let o = get(client, format!("{target}/v1/admin/sms"), admin).await?;
        let done = o["sent"].as_u64().unwrap_or(0) + o["dead"].as_u64().unwrap_or(0);
        let seen = d.texts.lock().map(|l| l.lines).unwrap_or(0);
        let drained = o["queued"] == 0 && done >= expected && seen >= done;
        if drained || waiting.elapsed() > Duration::from_secs(120) {
            break o;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let registrations = get(
        client,
        format!("{target}/v1/admin/registrations/audit"),
        admin,
    )
    .await?;
    let live = registrations["live"].as_u64().unwrap_or(0);
    let acked = d.acked.lock().map(|a| a.clone()).unwrap_or_default();
    let mut booked = vec![false; d.scenario.people.len()];
    for a in acked.iter().filter(|a| a.live) {
        booked[a.person] = true;
    }
    let log = d
        .texts
        .lock()
        .map_err(|_| anyhow::anyhow!("the SMS tail's log is poisoned"))?;
    let mut carry = CarryOver {
        invited,
        eligible: settlement["eligible"].as_u64().unwrap_or(0),
        eligible_expected: live.saturating_sub(day.closed_attended),
        texted: log.next.len(),
        settlement: settlement.clone(),
        no_shows: day.no_shows.len(),
        no_shows_missing: day
            .no_shows
            .iter()
            .filter(|p| !log.next.contains(p))
            .count(),
        never_booked: 0,
        never_booked_missing: 0,
        never_invited: 0,
        never_invited_missing: 0,
        attended_reinvited: day.attended.iter().filter(|p| log.next.contains(p)).count(),
    };
    for (p, (received, registered)) in log.received.iter().zip(&d.registered).enumerate() {
        let texted = received.is_some();
        let registered = registered.load(Ordering::Acquire);
        let missing = !log.next.contains(&p);
        if texted && !booked[p] {
            carry.never_booked += 1;
            carry.never_booked_missing += usize::from(missing);
        } else if !texted && registered {
            carry.never_invited += 1;
            carry.never_invited_missing += usize::from(missing);
        }
    }
    let spread = match (log.first, log.last) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let phase_texts = log.of(d.scenario.phase.as_str());
    let texts = Texts {
        expected,
        lines: log.lines,
        unique: log.unique(),
        duplicates: log.duplicates,
        unreadable: log.unreadable,
        unknown_to: log.unknown_to,
        per_phase: log.per_phase.clone(),
        per_second: phase_texts as f64 / spread.max(0.02),
        spread_seconds: spread,
        outbox,
        booked_before_text: acked
            .iter()
            .filter(|a| log.received[a.person].is_none_or(|t| t > a.at))
            .count(),
    };
    Ok((carry, texts))
}

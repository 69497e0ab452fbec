//! After the cycle: the store's audits (bookings with the journey of both phases, and
//! registrations), and every acknowledged booking looked up again.

use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use slotd::token::{Claims, Scope};

use crate::answer::{Bookings, read};
use crate::state::Drill;

/// The invariants, each a count that must be zero.
#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    /// Every phase audit `ok`, its `journey` included (one message per invitation, every
    /// invitee eligible, no booking without invitation, attended within seats, nobody
    /// attended twice).
    pub audit_ok: bool,
    /// Each phase's `{phase, ok, journey}`.
    pub journeys: Vec<Value>,
    pub overbooked_slots: usize,
    pub double_booked_people: usize,
    pub counter_mismatches: usize,
    pub acknowledged: usize,
    pub acknowledged_missing: usize,
    /// Lookups of acknowledged bookings that never finished (a checker that failed): any
    /// of them fails the drill, since their bookings were not looked up.
    pub lookups_not_done: usize,
    /// The registration audit: histories replay, serials unique.
    pub registrations_ok: bool,
    pub registrations: Value,
    pub idempotency_mismatches: u64,
    pub totals: Value,
}

impl Checks {
    pub fn ok(&self) -> bool {
        self.audit_ok
            && self.overbooked_slots == 0
            && self.double_booked_people == 0
            && self.counter_mismatches == 0
            && self.acknowledged_missing == 0
            && self.lookups_not_done == 0
            && self.registrations_ok
            && self.idempotency_mismatches == 0
    }
}

/// Runs the audit on the first target and looks up every acknowledged booking, spread
/// over all targets.
pub async fn verify(
    client: &reqwest::Client,
    targets: &[String],
    admin: &str,
    d: &Arc<Drill>,
) -> anyhow::Result<Checks> {
    let mut journeys = Vec::new();
    let mut audits = Vec::new();
    for phase in [&d.scenario.phase, &d.scenario.next_phase] {
        let url = format!("{}/v1/admin/phases/{phase}/audit?journey=true", targets[0]);
        let audit: Value = client
            .get(&url)
            .header("authorization", format!("Bearer {admin}"))
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .context("audit answer")?;
        journeys.push(serde_json::json!({
            "phase": phase, "ok": audit["ok"], "journey": audit["journey"],
            "breaches": audit["breaches"],
        }));
        audits.push(audit);
    }
    let audit_ok = audits
        .iter()
        .all(|a| a["ok"] == true && a["journey"]["ok"] == true);
    let audit = &audits[0];
    let kinds = |k: &str| {
        audits
            .iter()
            .filter_map(|a| a["breaches"].as_array())
            .map(|b| b.iter().filter(|x| x["kind"] == k).count())
            .sum::<usize>()
    };
    let acked = d.acked.lock().map(|a| a.clone()).unwrap_or_default();
    let mut missing = 0;
    let mut tasks = tokio::task::JoinSet::new();
    let mut lookups_not_done = 0;
    let mut sizes = std::collections::HashMap::new();
    for (n, chunk) in acked.chunks(acked.len().div_ceil(32).max(1)).enumerate() {
        let (client, d, chunk) = (client.clone(), d.clone(), chunk.to_vec());
        let size = chunk.len();
        let base = targets[n % targets.len()].clone();
        let handle = tasks.spawn(async move {
            let mut missing = 0;
            for a in chunk {
                let token = d.keys.sign(Claims {
                    person: d.scenario.people[a.person].id,
                    scope: Scope::Booking,
                    expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + 600,
                    partner: None,
                });
                let found = match client
                    .get(format!("{base}/v1/me/bookings"))
                    .header("authorization", format!("Bearer {token}"))
                    .send()
                    .await
                {
                    Ok(r) => r.bytes().await.ok().is_some_and(|body| {
                        read::<Bookings<'_>>(&body).is_some_and(|l| {
                            l.bookings.iter().any(|b| {
                                // After the close-out a live booking is
                                // attended or a no-show; a cancelled one stays so.
                                b.booking == Some(a.booking.as_str())
                                    && (b.status != Some("cancelled")) == a.live
                            })
                        })
                    }),
                    Err(_) => false,
                };
                if !found {
                    missing += 1;
                }
            }
            missing
        });
        sizes.insert(handle.id(), size);
    }
    while let Some(r) = tasks.join_next_with_id().await {
        match r {
            Ok((_, m)) => missing += m,
            Err(e) => lookups_not_done += sizes.remove(&e.id()).unwrap_or(1),
        }
    }
    let url = format!("{}/v1/admin/registrations/audit", targets[0]);
    let registrations: Value = client
        .get(&url)
        .header("authorization", format!("Bearer {admin}"))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?
        .json()
        .await
        .context("registration audit answer")?;
    Ok(Checks {
        audit_ok,
        journeys,
        overbooked_slots: kinds("overbooked"),
        double_booked_people: kinds("double-booked"),
        counter_mismatches: kinds("counter-mismatch"),
        acknowledged: acked.len(),
        acknowledged_missing: missing,
        lookups_not_done,
        registrations_ok: registrations["ok"] == true,
        registrations,
        idempotency_mismatches: d
            .idempotency_mismatches
            .load(std::sync::atomic::Ordering::Relaxed),
        totals: audit["totals"].clone(),
    })
}

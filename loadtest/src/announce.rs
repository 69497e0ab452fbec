//! The announcement: once the registration wave is over, the phase's cutoff and opening
//! are published (the calendar loaded again), and the phase is settled: settlement
//! invites the eligible registrants and queues their texts, which the SMS tail then
//! hands to the people.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use time::OffsetDateTime;

use crate::provision::{post, put};
use crate::state::Drill;

/// When the phase was announced and what its settlement did.
#[derive(Debug, Clone, Serialize)]
pub struct Announcement {
    /// Seconds the registration wave took, from the start of the attack.
    pub wave_seconds: f64,
    pub settlement_seconds: f64,
    /// The settlement's answer (`invited`, `eligible`, `by_county`, ...).
    pub settlement: serde_json::Value,
}

/// Waits for the wave, announces the phase to open `lead` after it, settles it, and sets
/// the drill's opening. On failure the users are told to stop waiting.
pub async fn announce(
    client: reqwest::Client,
    target: String,
    admin: String,
    d: Arc<Drill>,
    lead: Duration,
) -> anyhow::Result<Announcement> {
    let r = run(&client, &target, &admin, &d, lead).await;
    if r.is_err() {
        d.aborted.store(true, Ordering::Release);
    }
    r
}

async fn run(
    client: &reqwest::Client,
    target: &str,
    admin: &str,
    d: &Arc<Drill>,
    lead: Duration,
) -> anyhow::Result<Announcement> {
    let started = Instant::now();
    while d.wave_done.load(Ordering::Acquire) < d.wave_size {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wave_seconds = started.elapsed().as_secs_f64();
    // Registration times are whole seconds and the rule is "strictly before": the cutoff
    // is the next whole second after the wave, so the wave's last registration counts.
    let now = OffsetDateTime::now_utc();
    let cutoff = now.replace_nanosecond(0).unwrap_or(now) + time::Duration::seconds(1);
    let opens_at = OffsetDateTime::now_utc() + lead;
    let opening = Instant::now() + lead;
    let calendar = serde_json::to_vec(&d.scenario.announced(cutoff, opens_at))?;
    put(
        client,
        format!("{target}/v1/admin/calendar"),
        admin,
        "application/json",
        calendar,
    )
    .await
    .context("announcing the phase")?;
    let settling = Instant::now();
    let settlement = post(
        client,
        format!("{target}/v1/admin/phases/{}/settlement", d.scenario.phase),
        admin,
        None,
    )
    .await?;
    let settlement_seconds = settling.elapsed().as_secs_f64();
    eprintln!(
        "slotd-drill: registration wave {wave_seconds:.1} s; settlement invited {} of {} eligible in {settlement_seconds:.2} s; the phase opens in {:.1} s",
        settlement["invited"],
        settlement["eligible"],
        opening
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
    );
    let _ = d.settlement.set(settlement.clone());
    let _ = d.opening.set(opening);
    Ok(Announcement {
        wave_seconds,
        settlement_seconds,
        settlement,
    })
}

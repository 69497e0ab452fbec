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

use crate::provision::{get, post, put};
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
    if d.scenario.params.waiting_room {
        tokio::spawn(read_shuffle(
            client.clone(),
            target.to_string(),
            admin.to_string(),
            d.clone(),
            opening,
        ));
    }
    Ok(Announcement {
        wave_seconds,
        settlement_seconds,
        settlement,
    })
}

/// After the opening, reads the room's recorded seed and orders the people who queued
/// before it by their lottery numbers, as the room does: the order in which the drill's
/// users then take them (all of them poll at once in life; the room admits them in this
/// order), and the positions their polls must answer.
async fn read_shuffle(
    client: reqwest::Client,
    target: String,
    admin: String,
    d: Arc<Drill>,
    opening: Instant,
) {
    let phase = d.scenario.phase.to_string();
    let url = format!("{target}/v1/admin/phases/{phase}/queue");
    tokio::time::sleep_until(opening.into()).await;
    let give_up = Instant::now() + Duration::from_secs(30);
    let failed = |why: String| {
        let _ = d.room.order_error.set(why);
        let _ = d.room.order.set(Vec::new());
    };
    loop {
        // The queue wave must be over: a ticket got after the shuffle is a late arrival.
        let wave_over = d.room.early_done.load(Ordering::Acquire) >= d.room.early.len();
        match get(&client, url.clone(), &admin).await {
            Ok(room) if wave_over && room["seed"].is_string() => {
                let Some(seed) = room["seed"].as_str().and_then(hex16) else {
                    return failed(format!(
                        "the room's seed is not 16 hex bytes: {}",
                        room["seed"]
                    ));
                };
                let mut queued: Vec<(u64, usize)> = d
                    .room
                    .early
                    .iter()
                    .filter(|&&i| d.room.prequeued_at(i))
                    .map(|&i| {
                        (
                            slotd::waiting_room::lottery(&seed, &phase, d.scenario.people[i].id),
                            i,
                        )
                    })
                    .collect();
                queued.sort_unstable();
                if queued.len() as u64 != room["pre_queue"].as_u64().unwrap_or(0) {
                    return failed(format!(
                        "the room counts {} in its pre-queue, the drill queued {}",
                        room["pre_queue"],
                        queued.len()
                    ));
                }
                let order: Vec<usize> = queued.into_iter().map(|(_, i)| i).collect();
                let expected = order
                    .iter()
                    .enumerate()
                    .map(|(place, &i)| (i, place as u64 + 1))
                    .collect();
                let _ = d.room.expected.set(expected);
                let _ = d.room.order.set(order);
                return;
            }
            Ok(_) | Err(_) if Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(room) => {
                return failed(format!(
                    "the room was not shuffled 30 s after the opening: {room}"
                ));
            }
            Err(e) => return failed(format!("reading the room: {e:#}")),
        }
    }
}

fn hex16(s: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    if s.len() != 32 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

//! The SMS dispatcher: claims due messages from the outbox, renders the invitation text,
//! sends at most `--sms-rate` messages a second through the gateway, and records what
//! became of each.
//!
//! A claim leases its batch for as long as sending it can take (the rate's wait, then
//! one send timeout per round of `--sms-concurrency` sends, and two more), so with
//! several instances each message has one dispatcher at a time. A failure is tried again
//! after an exponential backoff with full jitter (1 s doubling to 5 minutes); a permanent
//! refusal, or `--sms-max-attempts` failures, make the message dead. A dispatcher killed
//! between a send and its record leaves the message to be claimed again after the lease:
//! the gateways are idempotent per message id, so the person still gets one text.
//!
//! A carrier that is down as a whole must not use up every queued text's attempts: after
//! [`BREAKER_AFTER`] first tries in a row fail (retries do not count: they are the texts
//! that failed before) the dispatcher stops claiming and waits (2 s doubling to a
//! minute), then probes with one text; the first success resumes.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::app::App;
use crate::catalog::Catalog;
use crate::log_limit::Limited;
use crate::metrics as m;
use crate::sms::{Gateway, Outgoing, SendError, Template, backoff};
use crate::store::Store;
use crate::store::outbox::{Delivery, Message};

/// Messages claimed per round at most.
const MAX_BATCH: usize = 500;
/// How long an idle dispatcher waits before it looks again.
const IDLE: Duration = Duration::from_millis(200);
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Retryable failures in a row after which the whole gateway is paused.
pub const BREAKER_AFTER: u32 = 20;
const PAUSE_BASE: Duration = Duration::from_secs(2);
const PAUSE_MAX: Duration = Duration::from_secs(60);

static CLAIM_FAILED: Limited = Limited::new();
static RECORD_FAILED: Limited = Limited::new();

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn unit_random() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// The text of a message, or why it cannot be sent (its phase is gone).
fn render(catalog: &Catalog, template: &Template, url: &str, m: &Message) -> Option<Outgoing> {
    let p = catalog.phase(m.phase.as_str())?;
    Some(Outgoing {
        message: m.id.clone(),
        to: m.to.clone(),
        phase: m.phase.to_string(),
        text: template.render(&p.phase.name, p.phase.opens_at, p.phase.closes_at, url),
    })
}

/// What to record for a send result of a message that had failed `attempts` times.
pub fn outcome(
    attempts: u32,
    result: Result<(), SendError>,
    max_attempts: u32,
    now_ms: i64,
) -> Delivery {
    let attempts = attempts + 1;
    match result {
        Ok(()) => Delivery::Sent,
        Err(SendError::Permanent(error)) => Delivery::Dead { attempts, error },
        Err(SendError::Retry(error)) if attempts >= max_attempts => {
            Delivery::Dead { attempts, error }
        }
        Err(SendError::Retry(error)) => Delivery::Retry {
            attempts,
            due_ms: now_ms
                + backoff(attempts, BACKOFF_BASE, BACKOFF_MAX, unit_random()).as_millis() as i64,
            error,
        },
    }
}

/// Runs until `stop` turns true; the owner awaits it at shutdown.
pub async fn run<S: Store>(
    app: Arc<App<S>>,
    gateway: Arc<dyn Gateway>,
    template: Template,
    mut stop: watch::Receiver<bool>,
) {
    let cfg = app.sms.config.clone();
    let rate = NonZeroU32::new(cfg.rate).unwrap_or(NonZeroU32::MIN);
    let limiter = governor::RateLimiter::direct(governor::Quota::per_second(rate));
    let batch = MAX_BATCH.min(cfg.rate as usize).max(1);
    let rounds = batch.div_ceil(cfg.concurrency.max(1)) as u32 + 2;
    let lease_ms = (cfg.timeout * rounds + Duration::from_secs(1)).as_millis() as i64;
    // The breaker: failures in a row, and how many times it has opened since a success.
    let (mut in_a_row, mut opened) = (0u32, 0u32);
    let mut last_sample = std::time::Instant::now() - Duration::from_secs(1);
    tracing::info!(
        gateway = gateway.name(),
        rate = cfg.rate,
        "SMS dispatcher started"
    );
    while !*stop.borrow() {
        if last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = std::time::Instant::now();
            if let Ok(s) = app.sms.outbox.stats().await {
                app.sms.sample(s.sent);
                metrics::gauge!(m::SMS_QUEUED).set(s.queued as f64);
            }
        }
        // Open breaker: wait, then probe with a single text.
        let probing = in_a_row >= BREAKER_AFTER;
        if probing {
            let pause = (PAUSE_BASE * 2u32.saturating_pow(opened)).min(PAUSE_MAX);
            opened = opened.saturating_add(1);
            tracing::warn!(
                failures = in_a_row,
                pause_s = pause.as_secs(),
                "SMS gateway failing; pausing before one probe"
            );
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stop.changed() => continue,
            }
        }
        let want = if probing { 1 } else { batch };
        let claimed = match app.sms.outbox.claim(now_ms(), want, lease_ms).await {
            Ok(c) => c,
            Err(e) => {
                if let Some(folded) = CLAIM_FAILED.check(std::time::Instant::now()) {
                    tracing::warn!(folded, "SMS claim failed: {e}");
                }
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(IDLE) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let catalog = app.store.catalog();
        let mut outgoing = Vec::with_capacity(claimed.len());
        let mut sending = Vec::with_capacity(claimed.len());
        let mut outcomes = Vec::with_capacity(claimed.len());
        for msg in &claimed {
            match render(&catalog, &template, &cfg.booking_url, msg) {
                Some(o) => {
                    outgoing.push(o);
                    sending.push(msg);
                }
                None => outcomes.push((
                    msg.id.clone(),
                    Delivery::Dead {
                        attempts: msg.attempts + 1,
                        error: format!("phase {} is not in the calendar", msg.phase),
                    },
                )),
            }
        }
        // The carrier's cap: the batch waits for its share of the rate.
        for _ in 0..outgoing.len() {
            limiter.until_ready().await;
        }
        let results = gateway.send(&outgoing).await;
        let now = now_ms();
        for (msg, result) in sending.iter().zip(results) {
            // Only first tries (and probes) count towards the breaker: a batch of retries
            // is mostly texts that failed before, and says little about the carrier.
            match &result {
                Ok(()) => (in_a_row, opened) = (0, 0),
                Err(SendError::Retry(_)) if msg.attempts == 0 || probing => {
                    in_a_row = in_a_row.saturating_add(1);
                }
                Err(_) => {}
            }
            let d = outcome(msg.attempts, result, cfg.max_attempts, now);
            let label = match &d {
                Delivery::Sent => "sent",
                Delivery::Retry { .. } => "failed",
                Delivery::Dead { .. } => "dead",
            };
            metrics::counter!(m::SMS_SENDS, "outcome" => label).increment(1);
            outcomes.push((msg.id.clone(), d));
        }
        if let Err(e) = app.sms.outbox.record(outcomes).await {
            // The lease runs out and the messages are sent again; the gateway dedups.
            if let Some(folded) = RECORD_FAILED.check(std::time::Instant::now()) {
                tracing::warn!(folded, "SMS outcomes not recorded: {e}");
            }
        }
    }
    tracing::info!("SMS dispatcher stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_until_the_last_attempt_and_refusals_are_dead_at_once() {
        let now = 1_000_000;
        assert_eq!(outcome(0, Ok(()), 3, now), Delivery::Sent);
        match outcome(0, Err(SendError::Retry("503".into())), 3, now) {
            Delivery::Retry {
                attempts, due_ms, ..
            } => {
                assert_eq!(attempts, 1);
                assert!((now..=now + 1_000).contains(&due_ms));
            }
            other => panic!("{other:?}"),
        }
        match outcome(1, Err(SendError::Retry("503".into())), 3, now) {
            Delivery::Retry { due_ms, .. } => assert!(due_ms <= now + 2_000),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outcome(2, Err(SendError::Retry("503".into())), 3, now),
            Delivery::Dead { attempts: 3, .. }
        ));
        assert!(matches!(
            outcome(0, Err(SendError::Permanent("400".into())), 3, now),
            Delivery::Dead { attempts: 1, .. }
        ));
    }
}

//! The SMS dispatcher: claims due messages from the outbox, renders the invitation text,
//! sends at most `--sms-rate` messages a second through the gateway, and records what
//! became of each.
//!
//! A claim leases messages for four send timeouts, so with several instances each
//! message has one dispatcher at a time. A failure is tried again after an exponential
//! backoff with full jitter (1 s doubling to 5 minutes); a permanent refusal, or
//! `--sms-max-attempts` failures, make the message dead. A dispatcher killed between a
//! send and its record leaves the message to be claimed again after the lease: the
//! gateways are idempotent per message id, so the person still gets one text.

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
    let lease_ms = (cfg.timeout * 4).as_millis() as i64;
    let batch = MAX_BATCH.min(cfg.rate as usize).max(1);
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
        let claimed = match app.sms.outbox.claim(now_ms(), batch, lease_ms).await {
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

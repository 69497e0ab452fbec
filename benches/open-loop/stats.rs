//! What one run saw: answers by status, latencies from each request's intended start,
//! `Retry-After` values, failures, and the one-line JSON summary made of them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// How a request that got no answer ended.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// The TCP connect or the HTTP/1.1 handshake failed.
    Connect,
    /// The request was sent and the connection broke before a whole answer came back.
    Request,
    /// No whole answer within `--timeout`.
    Timeout,
}

/// Counters and latencies of one run. One lock around all of it: a completion holds it
/// for a push and two increments, far below the cost of the request it records.
#[derive(Debug, Default)]
pub struct Stats {
    /// Answers by HTTP status.
    statuses: BTreeMap<u16, u64>,
    /// Microseconds from intended start to the whole answer, every answer.
    all_us: Vec<u32>,
    /// The same, for `503` and `429` answers only (the shed ones).
    shed_us: Vec<u32>,
    /// 2xx answers that came within the SLO given to [`Stats::summary`].
    ok_us: Vec<u32>,
    /// `Retry-After` seconds seen on shed answers, by value.
    retry_after: BTreeMap<u64, u64>,
    /// Shed answers without a (numeric) `Retry-After`.
    retry_after_missing: u64,
    connect_errors: u64,
    request_errors: u64,
    timeouts: u64,
}

/// Whether a status is a shedding answer: the server said "not now".
fn is_shed(status: u16) -> bool {
    status == 503 || status == 429
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The `p`-quantile (0..=1) of sorted microseconds, in milliseconds; `null` when empty.
fn quantile_ms(sorted: &[u32], p: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    ms(sorted[rank - 1])
}

fn ms(us: u32) -> Value {
    json!((f64::from(us) / 10.0).round() / 100.0)
}

impl Stats {
    /// Records a whole answer.
    pub fn answer(&mut self, status: u16, latency: Duration, retry_after: Option<u64>) {
        let us = micros(latency);
        *self.statuses.entry(status).or_default() += 1;
        self.all_us.push(us);
        if (200..300).contains(&status) {
            self.ok_us.push(us);
        }
        if is_shed(status) {
            self.shed_us.push(us);
            match retry_after {
                Some(secs) => *self.retry_after.entry(secs).or_default() += 1,
                None => self.retry_after_missing += 1,
            }
        }
    }

    /// Records a request that got no answer.
    pub fn failure(&mut self, failure: Failure) {
        match failure {
            Failure::Connect => self.connect_errors += 1,
            Failure::Request => self.request_errors += 1,
            Failure::Timeout => self.timeouts += 1,
        }
    }

    /// The run as one JSON object. `scheduled` requests were due in `seconds`; `sent`
    /// of them went out, the rest were due while `--connections` were in flight.
    pub fn summary(mut self, run: &RunFacts) -> Value {
        self.all_us.sort_unstable();
        self.shed_us.sort_unstable();
        let slo_us = micros(run.slo);
        let answered = self.all_us.len() as u64;
        let ok = self.ok_us.len() as u64;
        let ok_in_slo = self.ok_us.iter().filter(|&&us| us <= slo_us).count() as u64;
        let shed = self.shed_us.len() as u64;
        let secs = run.seconds.max(f64::MIN_POSITIVE);
        let rate = |n: u64| (n as f64 / secs).round();
        let statuses: serde_json::Map<String, Value> = self
            .statuses
            .iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect();
        json!({
            "target": run.target,
            "offered_rps": run.offered_rps,
            "seconds": run.seconds,
            "scheduled": run.scheduled,
            "sent": run.sent,
            "send_rps": rate(run.sent),
            "not_sent": run.scheduled - run.sent,
            "answered": answered,
            "goodput_rps": rate(ok),
            "goodput_slo_rps": rate(ok_in_slo),
            "slo_ms": run.slo.as_millis() as u64,
            "statuses": statuses,
            "shed": shed,
            "shed_pct": if answered == 0 { 0.0 } else {
                (shed as f64 * 10_000.0 / answered as f64).round() / 100.0
            },
            "p50_ms": quantile_ms(&self.all_us, 0.50),
            "p99_ms": quantile_ms(&self.all_us, 0.99),
            "max_ms": self.all_us.last().map_or(Value::Null, |&us| ms(us)),
            "shed_p50_ms": quantile_ms(&self.shed_us, 0.50),
            "shed_p99_ms": quantile_ms(&self.shed_us, 0.99),
            "shed_max_ms": self.shed_us.last().map_or(Value::Null, |&us| ms(us)),
            "errors": {
                "connect": self.connect_errors,
                "request": self.request_errors,
                "timeout": self.timeouts,
            },
            "retry_after": {
                "seen": self.retry_after.values().sum::<u64>(),
                "missing": self.retry_after_missing,
                "min": self.retry_after.keys().next(),
                "max": self.retry_after.keys().next_back(),
                "distinct": self.retry_after.len(),
            },
            "connections_opened": run.connections_opened,
            "max_dispatch_lag_ms": (run.max_lag.as_micros() as f64 / 10.0).round() / 100.0,
        })
    }
}

/// Facts of a run that the generator, not the answers, knows.
#[derive(Debug)]
pub struct RunFacts {
    pub target: String,
    pub offered_rps: f64,
    pub seconds: f64,
    pub scheduled: u64,
    pub sent: u64,
    pub connections_opened: u64,
    /// The most a request went out after its intended start (the generator behind).
    pub max_lag: Duration,
    /// A 2xx slower than this does not count in `goodput_slo_rps`.
    pub slo: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).map(|n| n * 1000).collect();
        assert_eq!(quantile_ms(&sorted, 0.5), json!(50.0));
        assert_eq!(quantile_ms(&sorted, 0.99), json!(99.0));
        assert_eq!(quantile_ms(&[], 0.99), Value::Null);
    }

    #[test]
    fn shed_answers_are_counted_apart_with_their_retry_after() {
        let mut s = Stats::default();
        s.answer(201, Duration::from_millis(2), None);
        s.answer(503, Duration::from_millis(1), Some(1));
        s.answer(429, Duration::from_millis(3), Some(2));
        s.answer(503, Duration::from_millis(1), None);
        s.failure(Failure::Timeout);
        let out = s.summary(&RunFacts {
            target: "t".into(),
            offered_rps: 5.0,
            seconds: 1.0,
            scheduled: 6,
            sent: 5,
            connections_opened: 1,
            max_lag: Duration::ZERO,
            slo: Duration::from_secs(1),
        });
        assert_eq!(out["goodput_rps"], json!(1.0));
        assert_eq!(out["shed"], json!(3));
        assert_eq!(out["not_sent"], json!(1));
        assert_eq!(out["retry_after"]["min"], json!(1));
        assert_eq!(out["retry_after"]["max"], json!(2));
        assert_eq!(out["retry_after"]["missing"], json!(1));
        assert_eq!(out["errors"]["timeout"], json!(1));
        assert_eq!(out["shed_max_ms"], json!(3.0));
    }
}

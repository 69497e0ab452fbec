//! Metric handles of the request path, registered once and then looked up by index.
//!
//! `metrics::counter!(name, labels…)` builds and hashes a label set on every call. On a
//! path that serves tens of thousands of requests a second per core, that is a
//! measurable share of the work, so the handles for every route × status (and the few
//! other hot metrics) are made once. Statuses outside a route's list fall back to the
//! macro; they are rare by definition.

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram};

use super::router::ROUTES;
use crate::domain::Channel;
use crate::metrics as m;

/// Reasons a booking attempt is refused, as metric labels.
const REJECTIONS: [&str; 3] = ["slot-full", "already-booked", "not-invited"];

/// Statuses any route may answer besides its own list.
const ANY_ROUTE: [u16; 4] = [405, 413, 500, 503];

/// One route's handles.
pub struct RouteMetrics {
    statuses: Vec<(u16, Counter)>,
    /// Latency by outcome: ok, client error, server error.
    latency: [Histogram; 3],
}

/// Every hot handle.
pub struct Telemetry {
    routes: Vec<RouteMetrics>,
    pub in_flight: Gauge,
    committed: [Counter; 3],
    rejected: [(&'static str, Counter); 3],
}

fn status_label(status: u16) -> String {
    status.to_string()
}

impl Telemetry {
    /// The handles; made on first use, after the recorder is installed.
    pub fn get() -> &'static Telemetry {
        static T: OnceLock<Telemetry> = OnceLock::new();
        T.get_or_init(|| Telemetry {
            routes: ROUTES
                .iter()
                .map(|r| RouteMetrics {
                    statuses: r
                        .statuses
                        .iter()
                        .chain(ANY_ROUTE.iter())
                        .map(|&s| {
                            let c = metrics::counter!(m::HTTP_REQUESTS, "route" => r.template, "method" => r.method, "status" => status_label(s));
                            (s, c)
                        })
                        .collect(),
                    latency: ["ok", "client_error", "server_error"].map(|outcome| {
                        metrics::histogram!(m::HTTP_DURATION, "route" => r.template, "outcome" => outcome)
                    }),
                })
                .collect(),
            in_flight: metrics::gauge!(m::HTTP_IN_FLIGHT),
            committed: [Channel::Web, Channel::App, Channel::Kiosk]
                .map(|c| metrics::counter!(m::BOOKINGS_COMMITTED, "channel" => c.as_str())),
            rejected: REJECTIONS.map(|r| (r, metrics::counter!(m::BOOKING_REJECTIONS, "reason" => r))),
        })
    }

    /// Counts one answer of route `index` (into [`ROUTES`]) and its latency.
    pub fn record(&self, index: usize, status: u16, seconds: f64) {
        let Some(r) = self.routes.get(index) else {
            return;
        };
        match r.statuses.iter().find(|(s, _)| *s == status) {
            Some((_, c)) => c.increment(1),
            None => {
                let spec = &ROUTES[index];
                metrics::counter!(m::HTTP_REQUESTS, "route" => spec.template, "method" => spec.method, "status" => status_label(status))
                    .increment(1);
            }
        }
        let outcome = match status {
            0..=399 => 0,
            400..=499 => 1,
            _ => 2,
        };
        r.latency[outcome].record(seconds);
    }

    /// Counts one refused booking attempt.
    pub fn rejected(&self, reason: &'static str) {
        match self.rejected.iter().find(|(r, _)| *r == reason) {
            Some((_, c)) => c.increment(1),
            None => metrics::counter!(m::BOOKING_REJECTIONS, "reason" => reason).increment(1),
        }
    }

    /// Counts one acknowledged booking.
    pub fn committed(&self, channel: Channel) {
        let i = match channel {
            Channel::Web => 0,
            Channel::App => 1,
            Channel::Kiosk => 2,
        };
        self.committed[i].increment(1);
    }
}

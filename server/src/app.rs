//! `App`: the state every request handler shares, and its background tasks.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;

use crate::availability::Availability;
use crate::config::Limits;
use crate::rate_limit::RateLimiter;
use crate::store::Store;
use crate::token::TokenKey;

/// Shared state of one server.
#[derive(Debug)]
pub struct App<S: Store> {
    pub store: Arc<S>,
    pub tokens: TokenKey,
    pub admin_token: String,
    pub limits: Limits,
    pub availability: Availability,
    pub rate: RateLimiter,
    pub metrics: PrometheusHandle,
    /// Requests being served; beyond `limits.max_in_flight`, new ones are shed.
    pub in_flight: AtomicUsize,
}

impl<S: Store> App<S> {
    /// State over a store whose calendar is loaded.
    pub fn new(store: Arc<S>, tokens: TokenKey, admin_token: String, limits: Limits) -> Self {
        let availability = Availability::new(store.catalog(), store.inventory());
        Self {
            rate: RateLimiter::new(limits.person_write_rate),
            store,
            tokens,
            admin_token,
            limits,
            availability,
            metrics: crate::metrics::install(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Starts the background work: availability snapshots every `interval`, metrics
    /// upkeep and rate-limiter pruning. The caller owns the handle and aborts it at
    /// shutdown.
    pub fn spawn_background(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                app.availability
                    .rebuild(app.store.catalog(), app.store.inventory());
                n += 1;
                if n.is_multiple_of(20) {
                    app.metrics.run_upkeep();
                    app.rate
                        .prune(time::OffsetDateTime::now_utc().unix_timestamp());
                }
            }
        })
    }
}

//! `App`: the state every request handler shares, and its background tasks.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;

use crate::availability::Availability;
use crate::config::{IdentityConfig, Limits};
use crate::identity::captcha::Captchas;
use crate::rate_limit::RateLimiter;
use crate::store::Store;
use crate::store::identity::IdentityStore;
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
    pub identity: Identity,
}

/// What registration and logins share: their store, captchas, the CPU pool and the
/// kiosk partners' rate limiters.
#[derive(Debug)]
pub struct Identity {
    pub store: Arc<dyn IdentityStore>,
    pub captchas: Captchas,
    pub config: IdentityConfig,
    /// CPU-heavy identity work running at once (`--hashing-threads`): argon2id hashes
    /// (~14 ms and 19 MiB each) and captcha drawings (~2 ms). Each runs on a blocking
    /// thread and holds a permit, so an opening's logins queue here instead of starving
    /// the booking path's threads or exhausting memory.
    pub cpu_pool: Arc<tokio::sync::Semaphore>,
    /// Admission to `cpu_pool`: `--hashing-threads` + `--hashing-queue` permits. Taken
    /// without waiting; when none is left the request is shed with 503.
    pub cpu_admission: Arc<tokio::sync::Semaphore>,
    /// One limiter per kiosk partner, at the partner's rate, in this instance.
    pub partner_limits: dashmap::DashMap<String, (u32, governor::DefaultDirectRateLimiter)>,
}

impl Identity {
    /// The identity half of the state.
    pub fn new(store: Arc<dyn IdentityStore>, token_secret: &[u8], config: IdentityConfig) -> Self {
        let captchas = Captchas::new(
            token_secret,
            config.captcha_test_secret.as_deref().map(str::as_bytes),
            config.captcha_ttl.as_secs() as i64,
        );
        Self {
            store,
            captchas,
            cpu_pool: Arc::new(tokio::sync::Semaphore::new(config.hashing_threads.max(1))),
            cpu_admission: Arc::new(tokio::sync::Semaphore::new(
                config.hashing_threads.max(1) + config.hashing_queue,
            )),
            config,
            partner_limits: dashmap::DashMap::new(),
        }
    }
}

impl<S: Store> App<S> {
    /// State over a store whose calendar is loaded.
    pub fn new(
        store: Arc<S>,
        tokens: TokenKey,
        admin_token: String,
        limits: Limits,
        identity: Identity,
    ) -> Self {
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
            identity,
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

//! `App`: the state every request handler shares, and its background tasks.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::availability::Availability;
use crate::config::{IdentityConfig, Limits, SmsConfig};
use crate::identity::captcha::Captchas;
use crate::rate_limit::RateLimiter;
use crate::store::Store;
use crate::store::identity::IdentityStore;
use crate::store::outbox::Outbox;
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
    /// Own-bookings reads per person (`--person-read-rate`).
    pub read_rate: RateLimiter,
    /// A token bucket per client address (`--address-rate`).
    pub addresses: crate::http::AddressLimits,
    pub metrics: PrometheusHandle,
    /// Requests being served; beyond `limits.max_in_flight`, new ones are shed.
    pub in_flight: AtomicUsize,
    pub identity: Identity,
    pub sms: Sms,
    /// The phases' waiting rooms.
    pub rooms: crate::waiting_room::WaitingRooms,
}

/// Settlement and the invitation texts: the outbox (the booking store itself), the
/// configuration, the lock that keeps settlement runs of this instance apart, the send
/// rate and the dispatcher this instance runs.
#[derive(Debug)]
pub struct Sms {
    pub outbox: Arc<dyn Outbox>,
    pub config: SmsConfig,
    /// Held by a settlement run: two runs at once would each fill up to the target.
    pub settling: tokio::sync::Mutex<()>,
    /// `(when, messages sent in total)`, one a second, the last ten seconds.
    samples: Mutex<VecDeque<(Instant, u64)>>,
    dispatcher: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

impl Sms {
    pub fn new(outbox: Arc<dyn Outbox>, config: SmsConfig) -> Self {
        Self {
            outbox,
            config,
            settling: tokio::sync::Mutex::new(()),
            samples: Mutex::new(VecDeque::new()),
            dispatcher: Mutex::new(None),
        }
    }

    /// Records the outbox's sent count now.
    pub fn sample(&self, sent: u64) {
        let mut s = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        s.push_back((Instant::now(), sent));
        while s.len() > 11 {
            s.pop_front();
        }
    }

    /// Messages sent per second over the last ten seconds (by every instance: the
    /// count is the store's).
    pub fn per_second(&self) -> f64 {
        let s = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        match (s.front(), s.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                b.1.saturating_sub(a.1) as f64 / (b.0 - a.0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Hands the running dispatcher to this state, which stops it at shutdown.
    pub fn own_dispatcher(&self, stop: watch::Sender<bool>, task: JoinHandle<()>) {
        *self
            .dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((stop, task));
    }

    /// Stops the dispatcher: it finishes the batch in hand (bounded by `grace`).
    pub async fn stop(&self, grace: Duration) {
        let taken = self
            .dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((stop, task)) = taken {
            let _ = stop.send(true);
            let abort = task.abort_handle();
            if tokio::time::timeout(grace, task).await.is_err() {
                abort.abort();
            }
        }
    }
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
        sms: Sms,
        rooms: crate::waiting_room::WaitingRooms,
    ) -> Self {
        let availability = Availability::new(store.catalog(), store.inventory());
        Self {
            rate: RateLimiter::new(limits.person_write_rate),
            read_rate: RateLimiter::new(limits.person_read_rate),
            addresses: crate::http::AddressLimits::new(limits.address_rate, limits.address_burst),
            store,
            tokens,
            admin_token,
            limits,
            availability,
            metrics: crate::metrics::install(),
            in_flight: AtomicUsize::new(0),
            identity,
            sms,
            rooms,
        }
    }

    /// Keeps the waiting rooms: twice a second, shuffle at an opening, refresh the
    /// mirrors, and step the admission controller. The caller aborts it at shutdown.
    pub fn spawn_rooms(self: &Arc<Self>) -> JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let snapshot = app.availability.snapshot();
                if !snapshot
                    .catalog
                    .phases
                    .iter()
                    .any(|p| p.phase.waiting_room.is_some())
                {
                    continue;
                }
                // The booking path is near its limit: requests in flight past three
                // quarters of the shedding threshold.
                let in_flight = app.in_flight.load(std::sync::atomic::Ordering::Relaxed);
                let overloaded = in_flight * 4 > app.limits.max_in_flight * 3;
                app.rooms
                    .tick(&snapshot, overloaded, time::OffsetDateTime::now_utc())
                    .await;
            }
        })
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
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    app.rate.prune(now);
                    app.read_rate.prune(now);
                    app.addresses.prune();
                }
            }
        })
    }
}

//! The drill's shared state: the scenario, the arrival queue, and what was observed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use slotd::token::TokenKey;

use crate::model::Scenario;

/// The routes the drill calls, named by template (never by URL with ids in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Route {
    Availability,
    Book,
    MyBookings,
    Change,
    Cancel,
}

impl Route {
    pub const ALL: [Route; 5] = [
        Route::Availability,
        Route::Book,
        Route::MyBookings,
        Route::Change,
        Route::Cancel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::Availability => "GET /v1/phases/{phase}/availability",
            Route::Book => "POST /v1/phases/{phase}/bookings",
            Route::MyBookings => "GET /v1/me/bookings",
            Route::Change => "PUT /v1/me/bookings/{booking}",
            Route::Cancel => "DELETE /v1/me/bookings/{booking}",
        }
    }
}

/// One request as the drill saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Milliseconds since the opening (negative: before it).
    pub at_ms: i64,
    pub route: Route,
    /// 0 when no answer came (connection error).
    pub status: u16,
    pub latency_us: u32,
    /// The problem `code` of an error answer.
    pub code: Option<String>,
}

/// A booking that got a 201, and whether the person then cancelled it.
#[derive(Debug, Clone)]
pub struct Acked {
    pub person: usize,
    pub booking: String,
    pub live: bool,
}

/// Everything the goose users share.
#[derive(Debug)]
pub struct Drill {
    pub scenario: Scenario,
    pub arrivals: Vec<usize>,
    pub targets: Vec<String>,
    pub keys: TokenKey,
    pub popularity: HashMap<String, f64>,
    /// The instant the phase opens; arrivals are scheduled from it.
    pub opening: Instant,
    /// People not yet started after this are counted as unserved.
    pub deadline: Instant,
    pub next: AtomicUsize,
    pub samples: Mutex<Vec<Sample>>,
    /// `(ms since the opening, free seats)` every 250 ms.
    pub seats: Mutex<Vec<(i64, u64)>>,
    pub acked: Mutex<Vec<Acked>>,
    pub gave_up: AtomicU64,
    pub unserved: AtomicU64,
    pub idempotency_mismatches: AtomicU64,
}

impl Drill {
    pub fn since_open_ms(&self, at: Instant) -> i64 {
        if at >= self.opening {
            at.duration_since(self.opening).as_millis() as i64
        } else {
            -(self.opening.duration_since(at).as_millis() as i64)
        }
    }

    pub fn record(&self, sample: Sample) {
        if let Ok(mut s) = self.samples.lock() {
            s.push(sample);
        }
    }
}

static DRILL: OnceLock<Arc<Drill>> = OnceLock::new();

/// Installs the drill state (once, before the attack starts).
pub fn install(drill: Drill) -> Arc<Drill> {
    let d = Arc::new(drill);
    let _ = DRILL.set(d.clone());
    d
}

/// The installed drill state.
///
/// # Panics
/// If called before [`install`]; `main` installs it before goose starts any user.
pub fn drill() -> Arc<Drill> {
    DRILL
        .get()
        .cloned()
        .expect("main installs the drill before the attack")
}

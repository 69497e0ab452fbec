//! The drill's shared state: the scenario, the arrival queue, and what was observed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use slotd::identity::captcha::Captchas;
use slotd::token::TokenKey;

use crate::model::Scenario;
use crate::page::Slots;
use crate::sms::TextLog;

/// The routes the drill calls, named by template (never by URL with ids in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Route {
    Availability,
    Book,
    MyBookings,
    Change,
    Cancel,
    RegistrationSession,
    Register,
    Login,
    KioskLogin,
    CheckIn,
    Queue,
    QueuePoll,
}

impl Route {
    pub const ALL: [Route; 12] = [
        Route::RegistrationSession,
        Route::Register,
        Route::Login,
        Route::KioskLogin,
        Route::Queue,
        Route::QueuePoll,
        Route::Availability,
        Route::Book,
        Route::MyBookings,
        Route::Change,
        Route::Cancel,
        Route::CheckIn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::RegistrationSession => "POST /v1/registration/sessions",
            Route::Register => "POST /v1/me/registration",
            Route::Login => "POST /v1/sessions",
            Route::KioskLogin => "POST /v1/kiosk/sessions",
            Route::Availability => "GET /v1/phases/{phase}/availability",
            Route::Book => "POST /v1/phases/{phase}/bookings",
            Route::MyBookings => "GET /v1/me/bookings",
            Route::Change => "PUT /v1/me/bookings/{booking}",
            Route::Cancel => "DELETE /v1/me/bookings/{booking}",
            Route::CheckIn => "POST /v1/sites/{site}/check-ins",
            Route::Queue => "POST /v1/phases/{phase}/queue",
            Route::QueuePoll => "GET /v1/phases/{phase}/queue",
        }
    }
}

/// One request as the drill saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the request was sent.
    pub at: Instant,
    pub route: Route,
    /// 0 when no answer came (connection error).
    pub status: u16,
    pub latency_us: u32,
    /// The problem `code` of an error answer.
    pub code: Option<String>,
}

/// A solved captcha, `{"answer", "id"}` in a request body.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Solved {
    pub answer: String,
    pub id: String,
}

/// A booking that got a 201, and whether the person then cancelled it.
#[derive(Debug, Clone)]
pub struct Acked {
    pub person: usize,
    pub booking: String,
    /// The booking code staff scan, and the site it is for (after any change).
    pub code: String,
    pub site: String,
    pub live: bool,
    /// When the booking request that made it was sent.
    pub at: Instant,
}

/// Everything the goose users share.
#[derive(Debug)]
pub struct Drill {
    pub scenario: Scenario,
    pub arrivals: Vec<usize>,
    pub targets: Vec<String>,
    pub keys: TokenKey,
    /// Makes test-mode captcha challenges (the instances run with the same
    /// `--captcha-test-secret`), as a frontend would get them from `GET /v1/captcha`.
    pub captchas: Captchas,
    /// The drill's kiosk partner key (from provisioning).
    pub partner_key: String,
    /// The next person of the registration wave, the people the wave is for (all but the
    /// late registrants), and how many of them it has tried.
    pub next_registration: AtomicUsize,
    pub wave_size: usize,
    pub wave_done: AtomicUsize,
    /// Whether each person (by index) holds a registration.
    pub registered: Vec<AtomicBool>,
    /// Registrations made before the opening, and at arrival (the wave had not reached them).
    pub registered_early: AtomicU64,
    pub registered_late: AtomicU64,
    pub registration_failures: AtomicU64,
    pub logins: AtomicU64,
    pub login_failures: AtomicU64,
    /// The phase's slots by id and index, with their sites' popularity; reads pages.
    pub slots: Slots,
    /// Zipf weights of a slot's rank in time at its site (earliest most wanted), computed
    /// once: every choice of a seat uses them.
    pub time_weights: Vec<f64>,
    /// The instant the phase opens, set when it is announced after the registration
    /// wave; arrivals are scheduled from it.
    pub opening: OnceLock<Instant>,
    /// The window compressed; people not yet started `window + 60 s` after the opening
    /// are counted as unserved.
    pub window: Duration,
    /// The phase's settlement answer, once it ran.
    pub settlement: OnceLock<serde_json::Value>,
    /// Set when the announcement failed: the users stop waiting for an opening.
    pub aborted: AtomicBool,
    /// The SMS tail's findings.
    pub texts: Mutex<TextLog>,
    pub next: AtomicUsize,
    pub samples: Mutex<Vec<Sample>>,
    /// `(when, free seats)` every 250 ms.
    pub seats: Mutex<Vec<(Instant, u64)>>,
    pub acked: Mutex<Vec<Acked>>,
    pub gave_up: AtomicU64,
    pub unserved: AtomicU64,
    pub idempotency_mismatches: AtomicU64,
    /// Double-clicks replayed (the same `Idempotency-Key`, answered `201` again).
    pub replays: AtomicU64,
    /// People who read their own bookings with their real token, and those whose fresh
    /// booking was not in the answer.
    pub own_reads: AtomicU64,
    pub own_reads_missing: AtomicU64,
    /// Arrivals without a text: who stayed home, who tried anyway, and what the tries got.
    pub uninvited_stayed: AtomicU64,
    pub uninvited_tries: AtomicU64,
    pub uninvited_refused: AtomicU64,
    pub uninvited_booked: AtomicU64,
    /// Tries refused for another reason (`slot-full` when the slot filled meanwhile).
    pub uninvited_other: AtomicU64,
    /// The waiting room (when the phase has one): the people who queue before the
    /// opening, in arrival order, and how far the pre-opening queue wave got.
    pub room: Room,
}

impl Room {
    /// Whether `person` got a ticket before the opening.
    pub fn prequeued_at(&self, person: usize) -> bool {
        self.tickets.get(person).is_some_and(|t| t.get().is_some())
    }
}

/// What the drill knows of the waiting room.
#[derive(Debug, Default)]
pub struct Room {
    pub early: Vec<usize>,
    pub next_early: AtomicUsize,
    pub early_done: AtomicUsize,
    /// Per person: the booking token and queue ticket got before the opening.
    pub tickets: Vec<OnceLock<(String, String)>>,
    /// The queued early people by their lottery number, from the recorded seed: the order
    /// in which the room admits them. Set once the room is shuffled.
    pub order: OnceLock<Vec<usize>>,
    /// Each early person's place in `order` (1-based), to check what polls answer.
    pub expected: OnceLock<HashMap<usize, u64>>,
    pub next_in_order: AtomicUsize,
    /// Queued before the opening (a ticket got in time).
    pub prequeued: AtomicU64,
    /// Polls that answered a position other than the recorded shuffle's.
    pub position_mismatches: AtomicU64,
    /// Bookings refused `not-admitted` although the ticket had been seen admitted.
    pub refused_admitted: AtomicU64,
    /// Seconds from the opening to admission, humans and bots apart.
    pub waits: Mutex<Vec<(bool, f64)>>,
    /// Queue polls answered (`GET .../queue`).
    pub polls: AtomicU64,
    /// Why the shuffle could not be read, if it could not.
    pub order_error: OnceLock<String>,
    /// People waiting to poll again, earliest due first, and how many a user holds now.
    pub waiting: Mutex<std::collections::BinaryHeap<std::cmp::Reverse<crate::journey::Waiting>>>,
    pub in_hand: AtomicUsize,
}

impl Drill {
    /// The NHI card number of person `index` (provisioning imports it).
    pub fn card(index: usize) -> String {
        format!("{:012}", 100_000_000_000u64 + index as u64)
    }

    /// A solved test-mode captcha, as requests carry it.
    pub fn captcha(&self) -> Solved {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let c = self.captchas.issue(now);
        let answer = self.captchas.answer(&c.id);
        Solved { id: c.id, answer }
    }

    /// Milliseconds from the opening to `at` (negative: before it; before the phase is
    /// announced, from now).
    pub fn since_open_ms(&self, at: Instant) -> i64 {
        let opening = self.opening.get().copied().unwrap_or_else(Instant::now);
        if at >= opening {
            at.duration_since(opening).as_millis() as i64
        } else {
            -(opening.duration_since(at).as_millis() as i64)
        }
    }

    /// After this, people not yet started are unserved; `None` before the opening is set.
    pub fn deadline(&self) -> Option<Instant> {
        self.opening
            .get()
            .map(|o| *o + self.window + Duration::from_secs(60))
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

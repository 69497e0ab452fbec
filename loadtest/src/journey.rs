//! One person's journey, as a goose transaction. Before the opening, the registration
//! wave: people identify with ID and NHI card and a captcha, and register their intent.
//! Then each arrival: log in (card + password and a captcha, or at a kiosk), poll
//! availability, pick a slot they want that has seats, book, retry elsewhere on
//! `slot-full`, honour `Retry-After`; sometimes double-click, change, cancel, or send
//! something broken.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use goose::goose::{GooseMethod, GooseRequest, GooseUser, TransactionResult};
use serde::{Deserialize, Serialize};

use crate::answer::{self, Booked, Bookings, Coded, Queued, Token};
use crate::model::{Person, Rng};
use crate::page::{Index, Page, Seat};
use crate::provision::PASSWORD;
use crate::state::{Acked, Drill, Route, Sample, Solved, drill};

/// What one HTTP exchange gave: the status (0: no answer), `Retry-After`, the body as
/// it came, an availability page's `ETag`, and an error answer's problem code.
struct Reply {
    status: u16,
    retry_after: Option<u64>,
    etag: Option<String>,
    body: Vec<u8>,
    /// The problem `code` of an answer `>= 400` (empty when it has none).
    code: Option<String>,
}

impl Reply {
    fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("")
    }

    /// The body as the answer `T` the caller expects.
    fn read<'a, T: Deserialize<'a>>(&'a self) -> Option<T> {
        answer::read(&self.body)
    }
}

#[allow(clippy::too_many_arguments)]
async fn send(
    user: &mut GooseUser,
    d: &Drill,
    route: Route,
    method: GooseMethod,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
    idem: Option<&str>,
    expected: &[u16],
) -> Result<Reply, Box<goose::goose::TransactionError>> {
    send_with(
        user, d, route, method, url, token, None, body, idem, expected,
    )
    .await
}

/// The request builder for `method` and the absolute `url`, from the user's own client.
/// Goose's `get_request_builder` would parse the URL once more only to find it absolute.
fn request_builder(user: &GooseUser, method: &GooseMethod, url: &str) -> reqwest::RequestBuilder {
    let method = match method {
        GooseMethod::Delete => reqwest::Method::DELETE,
        GooseMethod::Get => reqwest::Method::GET,
        GooseMethod::Head => reqwest::Method::HEAD,
        GooseMethod::Patch => reqwest::Method::PATCH,
        GooseMethod::Post => reqwest::Method::POST,
        GooseMethod::Put => reqwest::Method::PUT,
        // The drill names every method it sends; a custom one is never built here.
        GooseMethod::Custom => reqwest::Method::GET,
    };
    user.client.request(method, url)
}

/// Sends `rb` through goose (which times and counts it for its report), reads the whole
/// answer, marks it a success for goose when its status is `expected`, and records the
/// drill's own sample.
async fn exchange(
    user: &mut GooseUser,
    d: &Drill,
    route: Route,
    method: GooseMethod,
    url: &str,
    rb: reqwest::RequestBuilder,
    expected: &[u16],
) -> Result<Reply, Box<goose::goose::TransactionError>> {
    let request = GooseRequest::builder()
        .method(method)
        .path(url)
        .name(route.name())
        .set_request_builder(rb)
        .build();
    let started = Instant::now();
    let mut goose = user.request(request).await?;
    let mut reply = match goose.response {
        Ok(r) => {
            let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok());
            let retry_after = header("retry-after").and_then(|v| v.parse().ok());
            // Only availability pages are parsed by their tag.
            let etag = (route == Route::Availability)
                .then(|| header("etag").map(str::to_owned))
                .flatten();
            let status = r.status().as_u16();
            Reply {
                status,
                retry_after,
                etag,
                body: r.bytes().await.map(Vec::from).unwrap_or_default(),
                code: None,
            }
        }
        Err(_) => Reply {
            status: 0,
            retry_after: None,
            etag: None,
            body: Vec::new(),
            code: None,
        },
    };
    let latency = started.elapsed();
    if expected.contains(&reply.status) {
        user.set_success(&mut goose.request)?;
    }
    if reply.status >= 400 {
        let code = reply.read::<Coded<'_>>().and_then(|c| c.code).unwrap_or("");
        reply.code = Some(code.to_owned());
    }
    d.record(Sample {
        at: started,
        route,
        status: reply.status,
        latency_us: latency.as_micros().min(u128::from(u32::MAX)) as u32,
        code: reply.code.clone(),
    });
    Ok(reply)
}

/// [`send`] with a `Queue-Ticket`.
#[allow(clippy::too_many_arguments)]
async fn send_with(
    user: &mut GooseUser,
    d: &Drill,
    route: Route,
    method: GooseMethod,
    url: &str,
    token: Option<&str>,
    ticket: Option<&str>,
    body: Option<String>,
    idem: Option<&str>,
    expected: &[u16],
) -> Result<Reply, Box<goose::goose::TransactionError>> {
    let mut rb = request_builder(user, &method, url);
    if let Some(t) = token {
        rb = rb.header("authorization", format!("Bearer {t}"));
    }
    if let Some(t) = ticket {
        rb = rb.header("queue-ticket", t);
    }
    if let Some(k) = idem {
        rb = rb.header("idempotency-key", k);
    }
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b);
    }
    exchange(user, d, route, method, url, rb, expected).await
}

/// Reads an availability page answered to `url`, by its tag (see [`crate::page`]).
fn page_of(d: &Drill, url: &str, r: &Reply) -> Arc<Page> {
    d.slots.page(url, r.etag.as_deref(), &r.body)
}

/// A seat a person could take, among those of a page they have not tried.
fn candidates(page: &Page, tried: &[u32]) -> Vec<Seat> {
    page.open
        .iter()
        .filter(|s| !tried.contains(&s.slot))
        .copied()
        .collect()
}

/// Picks by site popularity times a Zipf preference for early times.
fn choose(rng: &mut Rng, d: &Drill, cands: &[Seat]) -> Option<usize> {
    if cands.is_empty() {
        return None;
    }
    let time = &d.time_weights;
    let weights: Vec<f64> = cands
        .iter()
        .map(|c| c.popularity * time[usize::from(c.rank).min(time.len() - 1)])
        .collect();
    Some(rng.weighted(&weights))
}

/// The `{"slot": …}` body that books or changes to `slot`.
fn slot_body(d: &Drill, slot: u32) -> String {
    format!("{{\"slot\":\"{}\"}}", d.slots.id(slot))
}

/// Where a person looks for seats, widening as they fail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reach {
    District,
    County,
    Anywhere,
}

fn availability_url(base: &str, d: &Drill, p: &Person, reach: Reach) -> String {
    let phase = &d.scenario.phase;
    let mut url = format!("{base}/v1/phases/{phase}/availability");
    match reach {
        Reach::District => {
            url.push_str("?county=");
            enc(&mut url, p.county);
            url.push_str("&district=");
            enc(&mut url, p.district);
        }
        Reach::County => {
            url.push_str("?county=");
            enc(&mut url, p.county);
        }
        // The page without a place is an index of seats per county: see `elsewhere`.
        Reach::Anywhere => {}
    }
    url
}

/// From the index page, a county with seats left that the person has not looked in,
/// drawn in proportion to its seats (where seats are, people go).
fn elsewhere(rng: &mut Rng, index: &Index, looked: &HashSet<String>) -> Option<String> {
    let open: Vec<(&str, f64)> = index
        .counties
        .iter()
        .filter(|(c, left)| *left > 0 && !looked.contains(c))
        .map(|(c, left)| (c.as_str(), *left as f64))
        .collect();
    if open.is_empty() {
        return None;
    }
    let weights: Vec<f64> = open.iter().map(|c| c.1).collect();
    Some(open[rng.weighted(&weights)].0.to_string())
}

/// Appends `s` percent-encoded, every byte.
fn enc(out: &mut String, s: &str) {
    for b in s.bytes() {
        let _ = write!(out, "%{b:02X}");
    }
}

/// Sleeps for a server's `Retry-After`, capped so a drill stays short.
async fn back_off(reply: &Reply) {
    let secs = reply.retry_after.unwrap_or(1).clamp(1, 2);
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

// The request bodies are plain structs, serialized without a tree of values. Their
// fields are in name order, as the drill's `json!` bodies had them, so the bytes on the
// wire are the same.

/// `POST /v1/registration/sessions`: ID, NHI card, a solved captcha.
#[derive(Serialize)]
struct Identify {
    captcha: Solved,
    id_number: String,
    nhi_card: String,
}

/// `POST /v1/me/registration`: the form.
#[derive(Serialize)]
struct Form<'a> {
    county: &'a str,
    district: &'a str,
    mobile: String,
    name: String,
}

/// Registers person `person`'s intent: identify (ID, card, captcha), then the form.
/// Answers whether they hold a registration now.
async fn register(
    user: &mut GooseUser,
    d: &Drill,
    base: &str,
    person: usize,
) -> Result<bool, Box<goose::goose::TransactionError>> {
    let p = &d.scenario.people[person];
    let body = Identify {
        id_number: p.id.to_string(),
        nhi_card: Drill::card(person),
        captcha: d.captcha(),
    };
    let r = send(
        user,
        d,
        Route::RegistrationSession,
        GooseMethod::Post,
        &format!("{base}/v1/registration/sessions"),
        None,
        Some(json(&body)),
        None,
        &[201],
    )
    .await?;
    let Some(token) = r
        .read::<Token<'_>>()
        .and_then(|t| t.token)
        .filter(|_| r.status == 201)
    else {
        return Ok(false);
    };
    let form = Form {
        name: format!("drill person {person}"),
        mobile: format!("09{:08}", person % 100_000_000),
        county: p.county,
        district: p.district,
    };
    let r = send(
        user,
        d,
        Route::Register,
        GooseMethod::Post,
        &format!("{base}/v1/me/registration"),
        Some(token),
        Some(json(&form)),
        None,
        &[201, 409],
    )
    .await?;
    Ok(matches!(r.status, 201 | 409))
}

/// A request body as JSON; the drill's bodies are plain structs that always serialize.
fn json<T: Serialize>(body: &T) -> String {
    serde_json::to_string(body).unwrap_or_default()
}

/// Registers `person` unless done; counts it as early (the wave) or late (at arrival).
async fn ensure_registered(
    user: &mut GooseUser,
    d: &Drill,
    base: &str,
    person: usize,
    early: bool,
) -> Result<bool, Box<goose::goose::TransactionError>> {
    if d.registered[person].load(Ordering::Acquire) {
        return Ok(true);
    }
    let ok = register(user, d, base, person).await?;
    if ok {
        d.registered[person].store(true, Ordering::Release);
        let counter = if early {
            &d.registered_early
        } else {
            &d.registered_late
        };
        counter.fetch_add(1, Ordering::Relaxed);
    } else {
        d.registration_failures.fetch_add(1, Ordering::Relaxed);
    }
    Ok(ok)
}

/// `POST /v1/kiosk/sessions`: a terminal, the card and its password.
#[derive(Serialize)]
struct KioskLogin<'a> {
    nhi_card: &'a str,
    password: &'a str,
    terminal: String,
}

/// `POST /v1/sessions`: card and password, with a solved captcha.
#[derive(Serialize)]
struct WebLogin<'a> {
    captcha: Solved,
    method: &'a str,
    nhi_card: &'a str,
    password: &'a str,
}

/// Logs `person` in, on the web (card + password + captcha) or at a kiosk (the partner's
/// key, a terminal, card + password); answers the token.
async fn login(
    user: &mut GooseUser,
    d: &Drill,
    base: &str,
    person: usize,
    kiosk: bool,
) -> Result<Option<String>, Box<goose::goose::TransactionError>> {
    let card = Drill::card(person);
    let (route, url, body) = if kiosk {
        let body = json(&KioskLogin {
            terminal: format!("T{:04}", person % 10_000),
            nhi_card: &card,
            password: PASSWORD,
        });
        (Route::KioskLogin, format!("{base}/v1/kiosk/sessions"), body)
    } else {
        let body = json(&WebLogin {
            method: "card-password",
            nhi_card: &card,
            password: PASSWORD,
            captcha: d.captcha(),
        });
        (Route::Login, format!("{base}/v1/sessions"), body)
    };
    let mut rb = request_builder(user, &GooseMethod::Post, &url);
    if kiosk {
        rb = rb.header("authorization", format!("Partner {}", d.partner_key));
    }
    let rb = rb.header("content-type", "application/json").body(body);
    let r = exchange(user, d, route, GooseMethod::Post, &url, rb, &[201]).await?;
    let token = r
        .read::<Token<'_>>()
        .and_then(|t| t.token)
        .filter(|_| r.status == 201);
    if token.is_some() {
        d.logins.fetch_add(1, Ordering::Relaxed);
    } else {
        d.login_failures.fetch_add(1, Ordering::Relaxed);
    }
    Ok(token.map(str::to_owned))
}

/// The goose transaction: each simulated user first works through the registration wave
/// (everyone but the late registrants), then waits for the phase to be announced and
/// settled, then works through the arrival queue. An arrival books only once the SMS
/// tail has seen their text; one without a text stays home or tries anyway.
pub async fn surge(user: &mut GooseUser) -> TransactionResult {
    let d = drill();
    let base = d.targets[user.weighted_users_index % d.targets.len()].clone();
    let mut rng =
        Rng::new(d.scenario.params.seed ^ (user.weighted_users_index as u64).wrapping_mul(0x9E37));
    loop {
        let person = d.next_registration.fetch_add(1, Ordering::Relaxed);
        if person >= d.scenario.people.len() {
            break;
        }
        if d.scenario.people[person].late {
            continue;
        }
        ensure_registered(user, &d, &base, person, true).await?;
        d.wave_done.fetch_add(1, Ordering::Release);
    }
    let opening = loop {
        if let Some(o) = d.opening.get() {
            break *o;
        }
        if d.aborted.load(Ordering::Acquire) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let deadline = d.deadline().unwrap_or(opening);
    if d.scenario.params.waiting_room {
        queue_wave(user, &d, &base, opening).await?;
        // Those who queued before the opening, in the room's order once it is shuffled.
        let order = loop {
            if let Some(o) = d.room.order.get() {
                break o;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        loop {
            serve_waiting(user, &d, &base, &mut rng, false).await?;
            let next = d.room.next_in_order.fetch_add(1, Ordering::Relaxed);
            let Some(&person) = order.get(next) else {
                break;
            };
            journey(user, &d, &base, person, &mut rng).await?;
        }
    }
    loop {
        serve_waiting(user, &d, &base, &mut rng, false).await?;
        let next = d.next.fetch_add(1, Ordering::Relaxed);
        let Some(&person) = d.arrivals.get(next) else {
            break;
        };
        if d.room.prequeued_at(person) && d.room.order.get().is_some_and(|o| !o.is_empty()) {
            continue; // served in the room's order above
        }
        if Instant::now() >= deadline {
            d.unserved.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let p = &d.scenario.people[person];
        let at = p.arrives_at.unwrap_or(0.0) / d.scenario.compression();
        let due = opening + Duration::from_secs_f64(at);
        // Until this arrival, serve the waiting people whose poll comes due.
        while let Some(wait) = due.checked_duration_since(Instant::now()) {
            serve_waiting(user, &d, &base, &mut rng, false).await?;
            tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
        }
        if wait_for_text(&d, person, deadline).await {
            journey(user, &d, &base, person, &mut rng).await?;
        } else {
            uninvited(user, &d, &base, person, &mut rng).await?;
        }
    }
    serve_waiting(user, &d, &base, &mut rng, true).await
}

/// Before the opening, with a waiting room: the opening minute's people and the bots get
/// their text, log in and queue. Those who are not queued by the opening queue at arrival
/// as everyone later does.
async fn queue_wave(
    user: &mut GooseUser,
    d: &Arc<Drill>,
    base: &str,
    opening: Instant,
) -> TransactionResult {
    loop {
        let next = d.room.next_early.fetch_add(1, Ordering::Relaxed);
        let Some(&person) = d.room.early.get(next) else {
            return Ok(());
        };
        // Done whatever happens below: the shuffle reader waits for the whole wave.
        struct Done<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Release);
            }
        }
        let _done = Done(&d.room.early_done);
        // Nobody joins in the last second before the opening: a join that races the
        // shuffle may land in either lane, and the drill must know which.
        let last_call = opening
            .checked_sub(Duration::from_secs(1))
            .unwrap_or(opening);
        if Instant::now() >= last_call || !wait_for_text(d, person, last_call).await {
            continue;
        }
        let Some(token) = login(user, d, base, person, false).await? else {
            continue;
        };
        if Instant::now() >= last_call {
            continue;
        }
        let r = send(
            user,
            d,
            Route::Queue,
            GooseMethod::Post,
            &format!("{base}/v1/phases/{}/queue", d.scenario.phase),
            Some(&token),
            None,
            None,
            &[201],
        )
        .await?;
        // In the pre-queue only if the room had not been shuffled when it answered.
        let q = r.read::<Queued<'_>>();
        if let (201, Some(ticket), Some(false)) = (
            r.status,
            q.as_ref().and_then(|q| q.ticket),
            q.as_ref().and_then(|q| q.shuffled),
        ) {
            let _ = d.room.tickets[person].set((token, ticket.to_string()));
            d.room.prequeued.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits until the tail has seen `person`'s text (true), or every text of the phase's
/// settlement without theirs, or the deadline (false).
async fn wait_for_text(d: &Drill, person: usize, deadline: Instant) -> bool {
    let invited = d
        .settlement
        .get()
        .and_then(|s| s["invited"].as_u64())
        .unwrap_or(0);
    let phase = d.scenario.phase.as_str();
    loop {
        if let Ok(log) = d.texts.lock() {
            if log.received[person].is_some() {
                return true;
            }
            if log.of(phase) >= invited {
                return false;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An arrival without a text: registers if they had not (the late registrants), and some
/// try to book anyway, which must be refused `403 not-invited`.
async fn uninvited(
    user: &mut GooseUser,
    d: &Arc<Drill>,
    base: &str,
    person: usize,
    rng: &mut Rng,
) -> TransactionResult {
    ensure_registered(user, d, base, person, false).await?;
    if !rng.chance(d.scenario.params.uninvited_try_share) {
        d.uninvited_stayed.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    let Some(token) = login(user, d, base, person, false).await? else {
        d.gave_up.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    // They pick a slot that shows seats, as anyone would; on Redis a slot the mirror
    // sees full is refused `slot-full` before the invitation is looked at.
    let url = availability_url(base, d, &d.scenario.people[person], Reach::County);
    let r = send(
        user,
        d,
        Route::Availability,
        GooseMethod::Get,
        &url,
        None,
        None,
        None,
        &[200],
    )
    .await?;
    let page = page_of(d, &url, &r);
    let slots = &d.scenario.calendar.phases[0].slots;
    let slot = page.open.first().map_or_else(
        || slots[rng.below(slots.len())].id.to_string(),
        |c| d.slots.id(c.slot).to_string(),
    );
    d.uninvited_tries.fetch_add(1, Ordering::Relaxed);
    let r = send(
        user,
        d,
        Route::Book,
        GooseMethod::Post,
        &format!("{base}/v1/phases/{}/bookings", d.scenario.phase),
        Some(&token),
        Some(format!("{{\"slot\":\"{slot}\"}}")),
        None,
        &[403],
    )
    .await?;
    match (r.status, r.code()) {
        (403, "not-invited") => d.uninvited_refused.fetch_add(1, Ordering::Relaxed),
        (200 | 201, _) => d.uninvited_booked.fetch_add(1, Ordering::Relaxed),
        _ => d.uninvited_other.fetch_add(1, Ordering::Relaxed),
    };
    Ok(())
}

async fn journey(
    user: &mut GooseUser,
    d: &Arc<Drill>,
    base: &str,
    person: usize,
    rng: &mut Rng,
) -> TransactionResult {
    let params = &d.scenario.params;
    let kiosk = rng.chance(params.kiosk_share);
    if !ensure_registered(user, d, base, person, false).await? {
        d.gave_up.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    let token = match d.room.tickets[person].get() {
        Some((token, _)) => token.clone(),
        None => match login(user, d, base, person, kiosk).await? {
            Some(token) => token,
            None => {
                d.gave_up.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        },
    };
    if params.waiting_room {
        let ticket = match d.room.tickets[person].get() {
            Some((_, t)) => t.clone(),
            None => {
                let r = send(
                    user,
                    d,
                    Route::Queue,
                    GooseMethod::Post,
                    &format!("{base}/v1/phases/{}/queue", d.scenario.phase),
                    Some(&token),
                    None,
                    None,
                    &[201],
                )
                .await?;
                match r.read::<Queued<'_>>().and_then(|q| q.ticket) {
                    Some(t) if r.status == 201 => t.to_string(),
                    _ => {
                        d.gave_up.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                }
            }
        };
        let waiting = Waiting {
            due: Instant::now(),
            person,
            // The pre-queue waits from the opening; later arrivals from now.
            since: match (d.room.prequeued_at(person), d.opening.get()) {
                (true, Some(&opening)) => opening,
                _ => Instant::now(),
            },
            token,
            ticket,
        };
        return poll(user, d, base, waiting, rng).await;
    }
    book(user, d, base, person, &token, None, rng).await
}

/// A person waiting in the room, due to poll again at `due`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Waiting {
    pub due: Instant,
    pub person: usize,
    /// When they started waiting (the opening for the pre-queue).
    since: Instant,
    token: String,
    ticket: String,
}

/// Polls a waiting person's ticket once: admitted, they book now; still waiting, they
/// are parked until the room's `Retry-After` (bots: 100 ms) and the goose user moves on
/// to whoever is due, as thousands of people wait at once in life while the drill has
/// a few dozen users.
async fn poll(
    user: &mut GooseUser,
    d: &Arc<Drill>,
    base: &str,
    mut w: Waiting,
    rng: &mut Rng,
) -> TransactionResult {
    let person = w.person;
    let bot = d.scenario.people[person].bot;
    let r = send_with(
        user,
        d,
        Route::QueuePoll,
        GooseMethod::Get,
        &format!("{base}/v1/phases/{}/queue", d.scenario.phase),
        Some(&w.token),
        Some(&w.ticket),
        None,
        None,
        &[200, 429],
    )
    .await?;
    if r.status == 200 {
        d.room.polls.fetch_add(1, Ordering::Relaxed);
        let q = r.read::<Queued<'_>>();
        // Once shuffled, a pre-queued person must be at the place the seed gives them;
        // no place at all is a mismatch too.
        if let Some(expected) = d.room.expected.get().and_then(|e| e.get(&person))
            && q.as_ref().and_then(|q| q.shuffled) == Some(true)
            && q.as_ref().and_then(|q| q.position) != Some(*expected)
        {
            d.room.position_mismatches.fetch_add(1, Ordering::Relaxed);
        }
        match q.as_ref().and_then(|q| q.state) {
            Some("admitted") => {
                // Waits are compared for the pre-queue only, where bots and people start
                // at the same instant, the opening.
                if d.room.prequeued_at(person) {
                    let waited = Instant::now().saturating_duration_since(w.since);
                    d.room
                        .waits
                        .lock()
                        .map(|mut x| x.push((bot, waited.as_secs_f64())))
                        .ok();
                }
                return book(user, d, base, person, &w.token, Some(&w.ticket), rng).await;
            }
            Some("sold-out") => {
                d.gave_up.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            _ => {}
        }
    }
    if w.since.elapsed() > Duration::from_secs(600) {
        d.gave_up.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    let pause = if bot {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(r.retry_after.unwrap_or(1).clamp(1, 60))
    };
    w.due = Instant::now() + pause;
    d.room
        .waiting
        .lock()
        .map(|mut q| q.push(std::cmp::Reverse(w)))
        .ok();
    Ok(())
}

/// Serves the waiting people whose poll is due (all of them when `drain`, sleeping until
/// each is due), then returns.
async fn serve_waiting(
    user: &mut GooseUser,
    d: &Arc<Drill>,
    base: &str,
    rng: &mut Rng,
    drain: bool,
) -> TransactionResult {
    loop {
        let next = {
            let Ok(mut q) = d.room.waiting.lock() else {
                return Ok(());
            };
            match q.peek() {
                Some(std::cmp::Reverse(w)) if drain || w.due <= Instant::now() => {
                    // Counted before the lock is let go: a draining user sees the person
                    // either parked or in someone's hands, never neither.
                    d.room.in_hand.fetch_add(1, Ordering::AcqRel);
                    q.pop().map(|std::cmp::Reverse(w)| w)
                }
                _ => None,
            }
        };
        let Some(w) = next else {
            // Draining: done only when nobody is parked and nobody is being served (who
            // may be parked again).
            if !drain || d.room.in_hand.load(Ordering::Acquire) == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        struct InHand<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for InHand<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _hand = InHand(&d.room.in_hand);
        if let Some(wait) = w.due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        poll(user, d, base, w, rng).await?;
    }
}

/// The booking itself, once logged in (and admitted, with a room).
async fn book(
    user: &mut GooseUser,
    d: &Arc<Drill>,
    base: &str,
    person: usize,
    token: &str,
    ticket: Option<&str>,
    rng: &mut Rng,
) -> TransactionResult {
    let p = &d.scenario.people[person];
    let params = &d.scenario.params;
    let token = token.to_string();
    let bot = p.bot;
    // A script tries harder, and never waits.
    let max_attempts = if bot {
        params.max_attempts * 3
    } else {
        params.max_attempts
    };
    let book_url = format!("{base}/v1/phases/{}/bookings", d.scenario.phase);
    if rng.chance(params.bad_token_share) {
        let forged = format!("{}x", &token[..token.len() - 1]);
        send(
            user,
            d,
            Route::MyBookings,
            GooseMethod::Get,
            &format!("{base}/v1/me/bookings"),
            Some(&forged),
            None,
            None,
            &[401],
        )
        .await?;
    }
    if rng.chance(params.malformed_share) {
        send(
            user,
            d,
            Route::Book,
            GooseMethod::Post,
            &book_url,
            Some(&token),
            Some("{\"slot\": ".into()),
            None,
            &[422],
        )
        .await?;
    }
    let mut reach = if rng.chance(params.own_district_share) {
        Reach::District
    } else if rng.chance(params.own_county_share / (1.0 - params.own_district_share)) {
        Reach::County
    } else {
        Reach::Anywhere
    };
    // The slots refused to this person (a handful at most: a list beats a set).
    let mut tried: Vec<u32> = Vec::new();
    let mut looked = HashSet::new();
    let mut page = Arc::new(Page::default());
    let mut stale = true;
    let mut failures = 0;
    let mut attempt = 0;
    while failures < max_attempts {
        if stale {
            let mut url = availability_url(base, d, p, reach);
            if reach == Reach::Anywhere {
                let r = send(
                    user,
                    d,
                    Route::Availability,
                    GooseMethod::Get,
                    &url,
                    None,
                    None,
                    None,
                    &[200],
                )
                .await?;
                if r.status != 200 {
                    failures += 1;
                    back_off(&r).await;
                    continue;
                }
                let index = d.slots.index(&url, r.etag.as_deref(), &r.body);
                let Some(county) = elsewhere(rng, &index, &looked) else {
                    break; // nowhere has seats
                };
                url.push_str("?county=");
                enc(&mut url, &county);
                looked.insert(county);
            }
            let r = send(
                user,
                d,
                Route::Availability,
                GooseMethod::Get,
                &url,
                None,
                None,
                None,
                &[200],
            )
            .await?;
            if r.status != 200 {
                failures += 1;
                back_off(&r).await;
                continue;
            }
            page = page_of(d, &url, &r);
            stale = false;
        }
        let cands = candidates(&page, &tried);
        let Some(pick) = choose(rng, d, &cands) else {
            // Anywhere goes on county by county until the index shows none with seats.
            if reach == Reach::County {
                looked.insert(p.county.to_string());
            }
            reach = match reach {
                Reach::District => Reach::County,
                Reach::County | Reach::Anywhere => Reach::Anywhere,
            };
            stale = true;
            continue;
        };
        let slot = cands[pick].slot;
        attempt += 1;
        let key = format!("{}-{attempt}", p.id);
        let body = slot_body(d, slot);
        let sent_at = Instant::now();
        let r = send_with(
            user,
            d,
            Route::Book,
            GooseMethod::Post,
            &book_url,
            Some(&token),
            ticket,
            Some(body.clone()),
            Some(&key),
            &[200, 201, 403, 409],
        )
        .await?;
        match (r.status, r.code()) {
            (201, _) => {
                let booked = r.read::<Booked<'_>>();
                let field = |f: Option<&str>| f.unwrap_or("").to_string();
                let booking = field(booked.as_ref().and_then(|b| b.booking));
                if rng.chance(params.double_click_share) {
                    let again = send_with(
                        user,
                        d,
                        Route::Book,
                        GooseMethod::Post,
                        &book_url,
                        Some(&token),
                        ticket,
                        Some(body),
                        Some(&key),
                        &[201],
                    )
                    .await?;
                    if again.read::<Booked<'_>>().and_then(|b| b.booking) != Some(booking.as_str())
                    {
                        d.idempotency_mismatches.fetch_add(1, Ordering::Relaxed);
                    } else {
                        d.replays.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let mut acked = Acked {
                    person,
                    booking,
                    code: field(booked.as_ref().and_then(|b| b.code)),
                    site: field(booked.as_ref().and_then(|b| b.site)),
                    live: true,
                    at: sent_at,
                };
                follow_up(user, d, base, &token, &page, &tried, &mut acked, rng).await?;
                d.acked.lock().map(|mut a| a.push(acked)).ok();
                return Ok(());
            }
            (200, _) | (409, "already-booked") => return Ok(()),
            (409, _) => {
                tried.push(slot);
                failures += 1;
                // A second refusal suggests the page is stale: look again.
                stale = failures % 2 == 0;
            }
            (403, "window-not-open") if !bot => back_off(&r).await,
            (403, "not-admitted") => {
                // The ticket was seen admitted: the room must not take that back.
                d.room.refused_admitted.fetch_add(1, Ordering::Relaxed);
                failures += 1;
            }
            (429 | 503, _) | (0, _) => {
                failures += 1;
                if !bot {
                    back_off(&r).await;
                }
            }
            (403, "window-not-open") => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => failures += 1,
        }
    }
    d.gave_up.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// After booking: a few change their slot, a few cancel.
#[allow(clippy::too_many_arguments)]
async fn follow_up(
    user: &mut GooseUser,
    d: &Arc<Drill>,
    base: &str,
    token: &str,
    page: &Page,
    tried: &[u32],
    acked: &mut Acked,
    rng: &mut Rng,
) -> TransactionResult {
    let params = &d.scenario.params;
    let url = format!("{base}/v1/me/bookings/{}", acked.booking);
    if rng.chance(params.own_read_share) {
        let r = send(
            user,
            d,
            Route::MyBookings,
            GooseMethod::Get,
            &format!("{base}/v1/me/bookings"),
            Some(token),
            None,
            None,
            &[200, 429],
        )
        .await?;
        if r.status == 200 {
            d.own_reads.fetch_add(1, Ordering::Relaxed);
            let listed = r.read::<Bookings<'_>>().is_some_and(|l| {
                l.bookings
                    .iter()
                    .any(|x| x.booking == Some(acked.booking.as_str()))
            });
            if !listed {
                d.own_reads_missing.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if rng.chance(params.change_share) {
        let cands = candidates(page, tried);
        if let Some(pick) = choose(rng, d, &cands) {
            let r = send(
                user,
                d,
                Route::Change,
                GooseMethod::Put,
                &url,
                Some(token),
                Some(slot_body(d, cands[pick].slot)),
                None,
                &[200, 409],
            )
            .await?;
            // A change may move the booking to another site: staff there check it in.
            if r.status == 200
                && let Some(b) = r.read::<Booked<'_>>()
                && let Some(site) = b.site
            {
                acked.site = site.to_string();
                if let Some(code) = b.code {
                    acked.code = code.to_string();
                }
            }
        }
    }
    if rng.chance(params.cancel_share) {
        let r = send(
            user,
            d,
            Route::Cancel,
            GooseMethod::Delete,
            &url,
            Some(token),
            None,
            None,
            &[204],
        )
        .await?;
        if r.status == 204 {
            acked.live = false;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_bodies_are_the_bytes_the_json_macro_made() {
        let solved = || Solved {
            answer: "a1b2c3".into(),
            id: "123.nonce.tag".into(),
        };
        let cases = [
            (
                json(&Identify {
                    captcha: solved(),
                    id_number: "A123456789".into(),
                    nhi_card: "100000000007".into(),
                }),
                json!({
                    "id_number": "A123456789",
                    "nhi_card": "100000000007",
                    "captcha": json!({"id": "123.nonce.tag", "answer": "a1b2c3"}),
                }),
            ),
            (
                json(&Form {
                    county: "臺北市",
                    district: "中正區",
                    mobile: "0900000007".into(),
                    name: "drill person 7".into(),
                }),
                json!({
                    "name": "drill person 7",
                    "mobile": "0900000007",
                    "county": "臺北市",
                    "district": "中正區",
                }),
            ),
            (
                json(&KioskLogin {
                    nhi_card: "100000000007",
                    password: PASSWORD,
                    terminal: "T0007".into(),
                }),
                json!({"terminal": "T0007", "nhi_card": "100000000007", "password": PASSWORD}),
            ),
            (
                json(&WebLogin {
                    captcha: solved(),
                    method: "card-password",
                    nhi_card: "100000000007",
                    password: PASSWORD,
                }),
                json!({
                    "method": "card-password",
                    "nhi_card": "100000000007",
                    "password": PASSWORD,
                    "captcha": json!({"id": "123.nonce.tag", "answer": "a1b2c3"}),
                }),
            ),
        ];
        for (typed, tree) in cases {
            assert_eq!(typed, tree.to_string());
        }
    }

    #[test]
    fn places_are_percent_encoded_byte_by_byte() {
        let mut s = String::from("?county=");
        enc(&mut s, "臺北 A");
        assert_eq!(s, "?county=%E8%87%BA%E5%8C%97%20%41");
    }
}

//! One person's journey, as a goose transaction. Before the opening, the registration
//! wave: people identify with ID and NHI card and a captcha, and register their intent.
//! Then each arrival: log in (card + password and a captcha, or at a kiosk), poll
//! availability, pick a slot they want that has seats, book, retry elsewhere on
//! `slot-full`, honour `Retry-After`; sometimes double-click, change, cancel, or send
//! something broken.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use goose::goose::{GooseMethod, GooseRequest, GooseUser, TransactionResult};
use serde_json::Value;

use crate::provision::PASSWORD;

use crate::model::{Person, Rng, zipf};
use crate::state::{Acked, Drill, Route, Sample, drill};

/// What one HTTP exchange gave.
struct Reply {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
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
    let mut rb = user.get_request_builder(&method, url)?;
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
    let request = GooseRequest::builder()
        .method(method)
        .path(url)
        .name(route.name())
        .set_request_builder(rb)
        .build();
    let started = Instant::now();
    let mut goose = user.request(request).await?;
    let (status, retry_after, body) = match goose.response {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let text = r.text().await.unwrap_or_default();
            (
                status,
                retry_after,
                serde_json::from_str(&text).unwrap_or(Value::Null),
            )
        }
        Err(_) => (0, None, Value::Null),
    };
    let latency = started.elapsed();
    if expected.contains(&status) {
        user.set_success(&mut goose.request)?;
    }
    let reply = Reply {
        status,
        retry_after,
        body,
    };
    d.record(Sample {
        at: started,
        route,
        status,
        latency_us: latency.as_micros().min(u128::from(u32::MAX)) as u32,
        code: (status >= 400).then(|| reply.code().to_string()),
    });
    Ok(reply)
}

/// A seat a person could take: (site index in the page, slot id, rank of the slot in time).
struct Candidate {
    site_popularity: f64,
    slot: String,
    time_rank: usize,
}

fn candidates(d: &Drill, page: &Value, tried: &HashSet<String>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for site in page["sites"].as_array().into_iter().flatten() {
        let popularity = site["site"]
            .as_str()
            .and_then(|id| d.popularity.get(id).copied())
            .unwrap_or(0.1);
        for (rank, slot) in site["slots"].as_array().into_iter().flatten().enumerate() {
            let Some(id) = slot["slot"].as_str() else {
                continue;
            };
            if slot["remaining"].as_u64().unwrap_or(0) > 0 && !tried.contains(id) {
                out.push(Candidate {
                    site_popularity: popularity,
                    slot: id.to_string(),
                    time_rank: rank,
                });
            }
        }
    }
    out
}

/// Picks by site popularity times a Zipf preference for early times.
fn choose(rng: &mut Rng, d: &Drill, cands: &[Candidate]) -> Option<usize> {
    if cands.is_empty() {
        return None;
    }
    let time = zipf(64, d.scenario.params.zipf_times);
    let weights: Vec<f64> = cands
        .iter()
        .map(|c| c.site_popularity * time[c.time_rank.min(63)])
        .collect();
    Some(rng.weighted(&weights))
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
    match reach {
        Reach::District => format!(
            "{base}/v1/phases/{phase}/availability?county={}&district={}",
            enc(p.county),
            enc(p.district)
        ),
        Reach::County => format!(
            "{base}/v1/phases/{phase}/availability?county={}",
            enc(p.county)
        ),
        // The page without a place is an index of seats per county: see `elsewhere`.
        Reach::Anywhere => format!("{base}/v1/phases/{phase}/availability"),
    }
}

/// From the index page, a county with seats left that the person has not looked in,
/// drawn in proportion to its seats (where seats are, people go).
fn elsewhere(rng: &mut Rng, index: &Value, looked: &HashSet<String>) -> Option<String> {
    let open: Vec<(&str, f64)> = index["counties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["county"].as_str()?, c["remaining"].as_u64()?)))
        .filter(|&(c, left)| left > 0 && !looked.contains(c))
        .map(|(c, left)| (c, left as f64))
        .collect();
    if open.is_empty() {
        return None;
    }
    let weights: Vec<f64> = open.iter().map(|c| c.1).collect();
    Some(open[rng.weighted(&weights)].0.to_string())
}

fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Sleeps for a server's `Retry-After`, capped so a drill stays short.
async fn back_off(reply: &Reply) {
    let secs = reply.retry_after.unwrap_or(1).clamp(1, 2);
    tokio::time::sleep(Duration::from_secs(secs)).await;
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
    let body = serde_json::json!({
        "id_number": p.id.to_string(),
        "nhi_card": Drill::card(person),
        "captcha": d.captcha(),
    });
    let r = send(
        user,
        d,
        Route::RegistrationSession,
        GooseMethod::Post,
        &format!("{base}/v1/registration/sessions"),
        None,
        Some(body.to_string()),
        None,
        &[201],
    )
    .await?;
    let Some(token) = r.body["token"].as_str().filter(|_| r.status == 201) else {
        return Ok(false);
    };
    let form = serde_json::json!({
        "name": format!("drill person {person}"),
        "mobile": format!("09{:08}", person % 100_000_000),
        "county": p.county,
        "district": p.district,
    });
    let r = send(
        user,
        d,
        Route::Register,
        GooseMethod::Post,
        &format!("{base}/v1/me/registration"),
        Some(token),
        Some(form.to_string()),
        None,
        &[201, 409],
    )
    .await?;
    Ok(matches!(r.status, 201 | 409))
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
        let body = serde_json::json!({
            "terminal": format!("T{:04}", person % 10_000),
            "nhi_card": card,
            "password": PASSWORD,
        });
        (Route::KioskLogin, format!("{base}/v1/kiosk/sessions"), body)
    } else {
        let body = serde_json::json!({
            "method": "card-password",
            "nhi_card": card,
            "password": PASSWORD,
            "captcha": d.captcha(),
        });
        (Route::Login, format!("{base}/v1/sessions"), body)
    };
    let mut rb = user.get_request_builder(&GooseMethod::Post, &url)?;
    if kiosk {
        rb = rb.header("authorization", format!("Partner {}", d.partner_key));
    }
    let rb = rb
        .header("content-type", "application/json")
        .body(body.to_string());
    let request = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path(url.as_str())
        .name(route.name())
        .set_request_builder(rb)
        .build();
    let started = Instant::now();
    let mut goose = user.request(request).await?;
    let (status, body) = match goose.response {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
        Err(_) => (0, Value::Null),
    };
    if status == 201 {
        user.set_success(&mut goose.request)?;
    }
    d.record(Sample {
        at: started,
        route,
        status,
        latency_us: started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
        code: (status >= 400).then(|| body["code"].as_str().unwrap_or("").to_string()),
    });
    let token = body["token"].as_str().filter(|_| status == 201);
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
        if let (201, Some(ticket), Some(false)) = (
            r.status,
            r.body["ticket"].as_str(),
            r.body["shuffled"].as_bool(),
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
    let page = send(
        user,
        d,
        Route::Availability,
        GooseMethod::Get,
        &availability_url(base, d, &d.scenario.people[person], Reach::County),
        None,
        None,
        None,
        &[200],
    )
    .await?;
    let slots = &d.scenario.calendar.phases[0].slots;
    let slot = candidates(d, &page.body, &HashSet::new())
        .first()
        .map_or_else(
            || slots[rng.below(slots.len())].id.to_string(),
            |c| c.slot.clone(),
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
                match r.body["ticket"].as_str() {
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
        // Once shuffled, a pre-queued person must be at the place the seed gives them;
        // no place at all is a mismatch too.
        if let Some(expected) = d.room.expected.get().and_then(|e| e.get(&person))
            && r.body["shuffled"] == true
            && r.body["position"].as_u64() != Some(*expected)
        {
            d.room.position_mismatches.fetch_add(1, Ordering::Relaxed);
        }
        match r.body["state"].as_str() {
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
    let mut tried = HashSet::new();
    let mut looked = HashSet::new();
    let mut page = Value::Null;
    let mut stale = true;
    let mut failures = 0;
    let mut attempt = 0;
    while failures < max_attempts {
        if stale {
            let mut url = availability_url(base, d, p, reach);
            if reach == Reach::Anywhere {
                let index = send(
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
                if index.status != 200 {
                    failures += 1;
                    back_off(&index).await;
                    continue;
                }
                let Some(county) = elsewhere(rng, &index.body, &looked) else {
                    break; // nowhere has seats
                };
                url = format!("{url}?county={}", enc(&county));
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
            page = r.body;
            stale = false;
        }
        let cands = candidates(d, &page, &tried);
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
        let slot = cands[pick].slot.clone();
        attempt += 1;
        let key = format!("{}-{attempt}", p.id);
        let body = format!("{{\"slot\":\"{slot}\"}}");
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
                let booking = r.body["booking"].as_str().unwrap_or("").to_string();
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
                    if again.body["booking"].as_str() != Some(booking.as_str()) {
                        d.idempotency_mismatches.fetch_add(1, Ordering::Relaxed);
                    } else {
                        d.replays.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let field = |k: &str| r.body[k].as_str().unwrap_or("").to_string();
                let mut acked = Acked {
                    person,
                    booking,
                    code: field("code"),
                    site: field("site"),
                    live: true,
                    at: sent_at,
                };
                follow_up(user, d, base, &token, &page, &tried, &mut acked, rng).await?;
                d.acked.lock().map(|mut a| a.push(acked)).ok();
                return Ok(());
            }
            (200, _) | (409, "already-booked") => return Ok(()),
            (409, _) => {
                tried.insert(slot);
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
    page: &Value,
    tried: &HashSet<String>,
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
            let listed = r.body["bookings"].as_array().is_some_and(|b| {
                b.iter()
                    .any(|x| x["booking"].as_str() == Some(acked.booking.as_str()))
            });
            if !listed {
                d.own_reads_missing.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    if rng.chance(params.change_share) {
        let cands = candidates(d, page, tried);
        if let Some(pick) = choose(rng, d, &cands) {
            let body = format!("{{\"slot\":\"{}\"}}", cands[pick].slot);
            let r = send(
                user,
                d,
                Route::Change,
                GooseMethod::Put,
                &url,
                Some(token),
                Some(body),
                None,
                &[200, 409],
            )
            .await?;
            // A change may move the booking to another site: staff there check it in.
            if r.status == 200
                && let Some(site) = r.body["site"].as_str()
            {
                acked.site = site.to_string();
                if let Some(code) = r.body["code"].as_str() {
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

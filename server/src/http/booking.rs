//! Person handlers, the hot path: book, list, change and cancel.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use hyper::body::Body;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::problem::{Code, Problem};
use super::request::{HttpResponse, authenticate, empty, idempotency, json, read_body, respond};
use super::telemetry::Telemetry;
use crate::app::App;
use crate::catalog::Catalog;
use crate::domain::{Booking, BookingId, Channel};
use crate::metrics as m;
use crate::service;
use crate::store::{CancelOutcome, ChangeOutcome, ReserveOutcome, Store};
use crate::token::{Claims, Scope};

const BOOKING_SCOPES: &[Scope] = &[Scope::Booking, Scope::Kiosk];

/// A booking as clients see it: the stored booking with its slot's details.
#[derive(Debug, Serialize)]
pub struct BookingView<'a> {
    booking: &'a str,
    code: &'a str,
    phase: &'a str,
    slot: &'a str,
    site: &'a str,
    site_name: &'a str,
    county: &'a str,
    district: &'a str,
    /// The site's street address, where to go.
    address: &'a str,
    date: &'a str,
    period: &'a str,
    vaccine: &'a str,
    channel: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partner: Option<&'a str>,
    status: crate::domain::BookingStatus,
    booked_at: String,
}

/// The client view of a booking as a JSON value (for members of problem answers).
pub fn view_value(catalog: &Catalog, b: &Booking) -> Value {
    serde_json::to_value(view(catalog, b)).unwrap_or(Value::Null)
}

/// A new booking's answer names where it lives: `Location: /v1/me/bookings/{id}`.
fn with_location(mut r: HttpResponse, b: &Booking) -> HttpResponse {
    if let Ok(v) = http::HeaderValue::from_str(&format!("/v1/me/bookings/{}", b.booking.as_str())) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

/// The client view of a booking, serialised straight into the answer.
pub fn view<'a>(catalog: &'a Catalog, b: &'a Booking) -> BookingView<'a> {
    let slot = catalog.slot_index(b.slot.as_str()).map(|s| catalog.slot(s));
    let site = slot.map(|s| catalog.site(s.site));
    BookingView {
        booking: b.booking.as_str(),
        code: &b.code,
        phase: b.phase.as_str(),
        slot: b.slot.as_str(),
        site: site.map_or("", |s| s.id.as_str()),
        site_name: site.map_or("", |s| s.name.as_str()),
        county: site.map_or("", |s| s.county.as_str()),
        district: site.map_or("", |s| s.district.as_str()),
        address: site.map_or("", |s| s.address.as_str()),
        date: slot.map_or("", |s| s.slot.date.as_str()),
        period: slot.map_or("", |s| s.slot.period.as_str()),
        vaccine: slot.map_or("", |s| s.slot.vaccine.as_str()),
        channel: b.channel.as_str(),
        partner: b.partner.as_deref(),
        status: b.status,
        booked_at: crate::domain::rfc3339(b.booked_at),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotBody {
    slot: String,
    #[serde(default)]
    channel: Option<String>,
}

/// Authenticates a person write and applies the per-person rate limit.
fn writer<S: Store>(
    app: &App<S>,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<Claims, Problem> {
    let claims = authenticate(app, headers, BOOKING_SCOPES, now.unix_timestamp())?;
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    if !app
        .rate
        .allow(claims.person.packed(), now.unix_timestamp(), key)
    {
        return Err(Problem::new(
            Code::RateLimited,
            "too many booking requests from this person",
        )
        .retry_after(1));
    }
    Ok(claims)
}

fn channel(claims: &Claims, requested: Option<&str>) -> Result<Channel, Problem> {
    match (claims.scope, requested) {
        (Scope::Kiosk, _) => Ok(Channel::Kiosk),
        (_, None | Some("web")) => Ok(Channel::Web),
        (_, Some("app")) => Ok(Channel::App),
        (_, Some(other)) => Err(Problem::new(
            Code::InvalidRequest,
            format!("channel must be web or app (kiosks use kiosk tokens), got {other:?}"),
        )),
    }
}

fn rejected(reason: &'static str) {
    Telemetry::get().rejected(reason);
}

/// `POST /v1/phases/{phase}/bookings`
pub async fn create<S, B>(
    app: &App<S>,
    phase: &str,
    headers: &HeaderMap,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let now = OffsetDateTime::now_utc();
    let claims = writer(app, headers, now)?;
    super::queue::admitted(app, phase, claims.person, headers, now)
        .inspect_err(|_| rejected("not-admitted"))?;
    let raw = read_body(
        body,
        app.limits.max_body_bytes,
        app.limits.body_read_timeout,
    )
    .await?;
    let req: SlotBody = json(&raw)?;
    let channel = channel(&claims, req.channel.as_deref())?;
    // The parsed request, not its bytes: a field sent with its default value is the same
    // request as the field left out, and spacing or key order change nothing.
    let asked = format!("slot={}\nchannel={}", req.slot, channel.as_str());
    let idem = idempotency(headers, "reserve", phase, claims.person, asked.as_bytes())?;
    service::check_registration(
        &*app.store,
        &*app.identity.store,
        claims.person,
        &req.slot,
        now,
    )
    .await
    .inspect_err(|_| rejected("not-registered"))?;
    let by = service::Booker {
        person: claims.person,
        channel,
        partner: claims.partner.as_deref(),
    };
    let outcome = service::reserve(&*app.store, by, phase, &req.slot, idem, now).await?;
    let catalog = app.store.catalog();
    Ok(match outcome {
        ReserveOutcome::Booked(b) => {
            Telemetry::get().committed(b.channel);
            with_location(respond(StatusCode::CREATED, &view(&catalog, &b)), &b)
        }
        ReserveOutcome::Replayed(b) => {
            with_location(respond(StatusCode::CREATED, &view(&catalog, &b)), &b)
        }
        ReserveOutcome::AlreadyHeld(b) => respond(StatusCode::OK, &view(&catalog, &b)),
        ReserveOutcome::SlotFull => {
            rejected("slot-full");
            return Err(Problem::new(
                Code::SlotFull,
                format!("slot {} has no seat left", req.slot),
            ));
        }
        ReserveOutcome::AlreadyBooked(b) => {
            rejected("already-booked");
            return Err(Problem::new(
                Code::AlreadyBooked,
                "you already hold a booking in this phase; change or cancel it",
            )
            .with("booking", view_value(&catalog, &b)));
        }
        ReserveOutcome::NotInvited => {
            rejected("not-invited");
            return Err(Problem::new(
                Code::NotInvited,
                format!("you are not invited to phase {phase}"),
            ));
        }
        ReserveOutcome::KeyReused => return Err(key_reused()),
    })
}

fn key_reused() -> Problem {
    Problem::new(
        Code::IdempotencyKeyReused,
        "this Idempotency-Key was used with another request",
    )
}

/// `GET /v1/me/bookings`
///
/// Paged: the first page holds every live booking and the newest others, up to `limit`
/// (default 50, at most 100); `next` names the cursor (`?before=`) for older ones.
/// Rate-limited per person (`--person-read-rate`).
pub async fn list<S: Store>(
    app: &App<S>,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<HttpResponse, Problem> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claims = authenticate(app, headers, BOOKING_SCOPES, now)?;
    let mut limit = PAGE;
    let mut before: Option<String> = None;
    for (k, v) in super::request::query_pairs(query) {
        match k.as_str() {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        Problem::new(
                            Code::InvalidRequest,
                            format!("limit must be 1 to {MAX_PAGE}"),
                        )
                    })?;
            }
            "before" => before = Some(v),
            _ => {}
        }
    }
    if !app.read_rate.allow(claims.person.packed(), now, None) {
        return Err(Problem::new(
            Code::RateLimited,
            "too many reads of this person's bookings",
        )
        .retry_after(1));
    }
    let bookings = app.store.bookings_of(claims.person).await?;
    // Oldest first, as the store keeps them. `before`: only those older than that one.
    let end = match &before {
        None => bookings.len(),
        Some(id) => bookings
            .iter()
            .position(|b| b.booking.as_str() == id)
            .ok_or_else(|| {
                Problem::new(Code::InvalidRequest, "before names none of your bookings")
            })?,
    };
    let older = &bookings[..end];
    // The newest `limit` of them; the first page adds every live booking older than that
    // (one per phase at most), so a person always sees what they hold.
    let start = end.saturating_sub(limit);
    let mut chosen: Vec<usize> = Vec::new();
    if before.is_none() {
        chosen.extend((0..start).filter(|&i| older[i].status.is_live()));
    }
    chosen.extend(start..end);
    let next = (start > 0).then(|| older[start].booking.to_string());
    let catalog = app.store.catalog();
    let views: Vec<BookingView<'_>> = chosen.iter().map(|&i| view(&catalog, &older[i])).collect();
    Ok(respond(
        StatusCode::OK,
        &serde_json::json!({ "bookings": views, "next": next }),
    ))
}

/// Bookings per page of `GET /v1/me/bookings`, by default and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 100;

fn booking_id(raw: &str) -> Result<BookingId, Problem> {
    BookingId::parse(raw)
        .map_err(|_| Problem::new(Code::UnknownBooking, format!("no booking {raw}")))
}

/// `PUT /v1/me/bookings/{booking}`
pub async fn change<S, B>(
    app: &App<S>,
    id: &str,
    headers: &HeaderMap,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let now = OffsetDateTime::now_utc();
    let claims = writer(app, headers, now)?;
    let booking = booking_id(id)?;
    let raw = read_body(
        body,
        app.limits.max_body_bytes,
        app.limits.body_read_timeout,
    )
    .await?;
    let req: SlotBody = json(&raw)?;
    let asked = format!("slot={}", req.slot);
    let idem = idempotency(headers, "change", id, claims.person, asked.as_bytes())?;
    service::check_registration(
        &*app.store,
        &*app.identity.store,
        claims.person,
        &req.slot,
        now,
    )
    .await?;
    let outcome =
        service::change(&*app.store, claims.person, booking, &req.slot, idem, now).await?;
    let catalog = app.store.catalog();
    match outcome {
        ChangeOutcome::Changed(b) | ChangeOutcome::Unchanged(b) => {
            Ok(respond(StatusCode::OK, &view(&catalog, &b)))
        }
        ChangeOutcome::SlotFull(old) => {
            rejected("slot-full");
            Err(Problem::new(
                Code::SlotFull,
                format!(
                    "slot {} has no seat left; your booking is unchanged",
                    req.slot
                ),
            )
            .with("booking", view_value(&catalog, &old)))
        }
        ChangeOutcome::UnknownBooking => Err(Problem::new(
            Code::UnknownBooking,
            format!("no booking {id}"),
        )),
        ChangeOutcome::NotLive(b) => Err(Problem::new(
            Code::BookingNotLive,
            format!("a booking that is {} cannot change", b.status.as_str()),
        )
        .with("booking", view_value(&catalog, &b))),
        ChangeOutcome::OtherPhase => Err(Problem::new(
            Code::UnknownSlot,
            format!("slot {} is not in this booking's phase", req.slot),
        )),
        ChangeOutcome::KeyReused => Err(key_reused()),
    }
}

/// `DELETE /v1/me/bookings/{booking}`
pub async fn cancel<S: Store>(
    app: &App<S>,
    id: &str,
    headers: &HeaderMap,
) -> Result<HttpResponse, Problem> {
    let now = OffsetDateTime::now_utc();
    let claims = writer(app, headers, now)?;
    let booking = booking_id(id)?;
    match service::cancel(&*app.store, claims.person, booking).await? {
        CancelOutcome::Cancelled(_) => {
            metrics::counter!(m::CANCELLATIONS).increment(1);
            Ok(empty(StatusCode::NO_CONTENT))
        }
        CancelOutcome::AlreadyCancelled(_) => Ok(empty(StatusCode::NO_CONTENT)),
        CancelOutcome::Final(b) => Err(Problem::new(
            Code::BookingNotLive,
            format!(
                "a booking that is {} cannot be cancelled: its seat was used",
                b.status.as_str()
            ),
        )
        .with("booking", view_value(&app.store.catalog(), &b))),
        CancelOutcome::UnknownBooking => Err(Problem::new(
            Code::UnknownBooking,
            format!("no booking {id}"),
        )),
    }
}

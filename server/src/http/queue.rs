//! The waiting room over HTTP: queueing (`POST`), polling (`GET`, answered from this
//! instance's mirror, no store round trip), the booking gate, and the admin's view with
//! the shuffle's seed.

use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::problem::{Code, Problem};
use super::request::{HttpResponse, authenticate, authenticate_admin, respond};
use crate::app::App;
use crate::catalog::PhaseInfo;
use crate::domain::{IdNumber, rfc3339};
use crate::store::Store;
use crate::store::rooms::Lane;
use crate::token::Scope;
use crate::waiting_room::Standing;

/// The header that carries a ticket.
pub const TICKET: &str = "queue-ticket";

const SCOPES: &[Scope] = &[Scope::Booking, Scope::Kiosk];

/// A poll interval, spread by up to a quarter so that a crowd does not poll in step.
fn poll_after(secs: u64) -> u64 {
    let secs = secs.clamp(1, 30);
    secs + u64::from(getrandom::u32().unwrap_or(0)) % (secs / 4 + 1)
}

fn phase_of<'a>(
    catalog: &'a crate::catalog::Catalog,
    phase: &str,
) -> Result<(usize, &'a PhaseInfo), Problem> {
    catalog
        .phase_index(phase)
        .map(|i| (i, &catalog.phases[i]))
        .ok_or_else(|| Problem::new(Code::UnknownPhase, format!("no phase {phase}")))
}

/// The body and `Retry-After` of a person's standing.
fn answer<S: Store>(
    app: &App<S>,
    index: usize,
    info: &PhaseInfo,
    ticket: &str,
    standing: Standing,
    now: OffsetDateTime,
) -> HttpResponse {
    let snapshot = app.availability.snapshot();
    let seats_left = if snapshot.catalog.phases.len() > index {
        snapshot.phase_remaining(index)
    } else {
        0
    };
    let room = app.rooms.state(&info.phase.id);
    let (state, retry) = if standing.admitted {
        ("admitted", None)
    } else if seats_left == 0 && standing.shuffled {
        ("sold-out", None)
    } else if !standing.shuffled {
        let until = (info.phase.opens_at - now).whole_seconds().max(1) as u64;
        ("waiting", Some(poll_after(until)))
    } else {
        // At most about 10 s between polls once the line moves: an admission holds its
        // window place for ADMISSION_LIFETIME_SECS, and the poll that learns of it must
        // leave most of that time to book.
        // Until the room has an admission rate (its first seconds after the shuffle),
        // about every second: the first admissions come then, and a person told to wait
        // longer would hand those seconds to whoever polls faster (scripts do).
        let wait = standing.estimated_wait_seconds.unwrap_or(4);
        ("waiting", Some(poll_after((wait / 4).min(10))))
    };
    let body = json!({
        "ticket": ticket,
        "phase": info.phase.id.as_str(),
        "state": state,
        "position": standing.position,
        "ahead": standing.ahead,
        "estimated_wait_seconds": standing.estimated_wait_seconds,
        "queued": room.total(),
        "admitted": room.admitted,
        "seats_left": seats_left,
        "shuffled": standing.shuffled,
        "opens_at": rfc3339(info.phase.opens_at),
    });
    let mut r = respond(StatusCode::OK, &body);
    if let Some(secs) = retry {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// The standing of a phase without a room: everyone may book.
fn no_room() -> Standing {
    Standing {
        position: None,
        ahead: None,
        admitted: true,
        estimated_wait_seconds: Some(0),
        shuffled: true,
        member: true,
    }
}

/// `POST /v1/phases/{phase}/queue`
pub async fn join<S: Store>(
    app: &App<S>,
    phase: &str,
    headers: &HeaderMap,
) -> Result<HttpResponse, Problem> {
    let now = OffsetDateTime::now_utc();
    let claims = authenticate(app, headers, SCOPES, now.unix_timestamp())?;
    if !app
        .read_rate
        .allow(claims.person.packed(), now.unix_timestamp(), None)
    {
        return Err(Problem::new(
            Code::RateLimited,
            "too many queue requests from this person",
        )
        .retry_after(1));
    }
    let catalog = app.store.catalog();
    let (index, info) = phase_of(&catalog, phase)?;
    let mut answered = match &info.phase.waiting_room {
        None => {
            let ticket = app.rooms.tickets.issue(phase, claims.person, None);
            answer(app, index, info, &ticket, no_room(), now)
        }
        Some(room) => {
            if now < room.prequeue_opens_at {
                let secs = (room.prequeue_opens_at - now).whole_seconds().max(1) as u64;
                return Err(Problem::new(
                    Code::WindowNotOpen,
                    format!(
                        "the waiting room of phase {phase} opens at {}",
                        rfc3339(room.prequeue_opens_at)
                    ),
                )
                .retry_after(secs));
            }
            if now >= info.phase.closes_at {
                return Err(Problem::new(
                    Code::WindowClosed,
                    format!("phase {phase} has closed"),
                ));
            }
            let (ticket, lane) = app.rooms.join(&info.phase.id, claims.person).await?;
            let standing = app.rooms.standing(&info.phase.id, claims.person, lane);
            answer(app, index, info, &ticket, standing, now)
        }
    };
    *answered.status_mut() = StatusCode::CREATED;
    Ok(answered)
}

/// The person and lane of the request's ticket for `phase`.
fn ticket_of(
    app_rooms: &crate::waiting_room::WaitingRooms,
    phase: &str,
    headers: &HeaderMap,
) -> Option<(String, IdNumber, Option<Lane>)> {
    let raw = headers.get(TICKET)?.to_str().ok()?.trim();
    let (person, lane) = app_rooms.tickets.open(phase, raw)?;
    Some((raw.to_string(), person, lane))
}

/// `GET /v1/phases/{phase}/queue` with `Queue-Ticket`.
pub fn poll<S: Store>(
    app: &App<S>,
    phase: &str,
    headers: &HeaderMap,
) -> Result<HttpResponse, Problem> {
    let now = OffsetDateTime::now_utc();
    let catalog = app.store.catalog();
    let (index, info) = phase_of(&catalog, phase)?;
    let Some((ticket, person, lane)) = ticket_of(&app.rooms, phase, headers) else {
        return Err(Problem::new(
            Code::InvalidRequest,
            format!(
                "Queue-Ticket must be a ticket of phase {phase}'s waiting room (POST /v1/phases/{phase}/queue gives one)"
            ),
        ));
    };
    let standing = match (&info.phase.waiting_room, lane) {
        (None, _) => no_room(),
        (Some(_), Some(lane)) => {
            let s = app.rooms.standing(&info.phase.id, person, lane);
            if !s.member {
                return Err(Problem::new(
                    Code::InvalidRequest,
                    format!(
                        "this ticket is not in phase {phase}'s waiting room (the room was reset): queue again with POST /v1/phases/{phase}/queue"
                    ),
                ));
            }
            s
        }
        // Issued before the phase had a room: its holder never queued.
        (Some(_), None) => {
            return Err(Problem::new(
                Code::InvalidRequest,
                format!(
                    "this ticket is from before phase {phase} had a waiting room: queue with POST /v1/phases/{phase}/queue"
                ),
            ));
        }
    };
    Ok(answer(app, index, info, &ticket, standing, now))
}

/// The booking gate: while `phase`'s room is active, a new booking needs an admitted
/// ticket of the same person.
pub fn admitted<S: Store>(
    app: &App<S>,
    phase: &str,
    person: IdNumber,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<(), Problem> {
    let catalog = app.store.catalog();
    let Ok((_, info)) = phase_of(&catalog, phase) else {
        return Ok(()); // the booking itself answers unknown-phase
    };
    let Some(room) = &info.phase.waiting_room else {
        return Ok(());
    };
    if now < room.prequeue_opens_at || now >= info.phase.closes_at {
        return Ok(()); // the window answers
    }
    let refuse =
        |detail: String, secs: u64| Err(Problem::new(Code::NotAdmitted, detail).retry_after(secs));
    match ticket_of(&app.rooms, phase, headers) {
        None => refuse(
            format!(
                "phase {phase} books through its waiting room: queue with POST /v1/phases/{phase}/queue and send its ticket as Queue-Ticket"
            ),
            1,
        ),
        Some((_, holder, _)) if holder != person => {
            refuse("this Queue-Ticket belongs to someone else".into(), 1)
        }
        Some((_, _, None)) => refuse(
            format!(
                "this ticket is from before phase {phase} had a waiting room: queue with POST /v1/phases/{phase}/queue"
            ),
            1,
        ),
        Some((_, _, Some(lane))) => {
            let s = app.rooms.standing(&info.phase.id, person, lane);
            if !s.member {
                return refuse(
                    format!(
                        "this ticket is not in phase {phase}'s waiting room (the room was reset): queue again with POST /v1/phases/{phase}/queue"
                    ),
                    1,
                );
            }
            if s.admitted {
                Ok(())
            } else {
                let detail = match s.position {
                    Some(p) => format!("not your turn yet: you are number {p} in the queue"),
                    None => "not your turn yet: the queue is shuffled at the opening".into(),
                };
                refuse(
                    detail,
                    poll_after(s.estimated_wait_seconds.unwrap_or(20) / 4),
                )
            }
        }
    }
}

/// `GET /v1/admin/phases/{phase}/queue`: the room as the store holds it, with the
/// shuffle's seed, so the order can be recomputed and audited.
pub async fn admin<S: Store>(
    app: &App<S>,
    phase: &str,
    headers: &HeaderMap,
) -> Result<HttpResponse, Problem> {
    authenticate_admin(app, headers)?;
    let catalog = app.store.catalog();
    let (_, info) = phase_of(&catalog, phase)?;
    let s = app.rooms.store.state(&info.phase.id).await?;
    let body: Value = json!({
        "phase": phase,
        "waiting_room": info.phase.waiting_room.as_ref().map(|r| json!({
            "prequeue_opens_at": rfc3339(r.prequeue_opens_at),
        })),
        "opens_at": rfc3339(info.phase.opens_at),
        "seed": s.seed.map(hex::encode),
        "pre_queue": s.pre,
        "late": s.late,
        "admitted": s.admitted,
        "window": s.window,
        "order": "the pre-queue by ascending lottery number: the first 8 bytes (big-endian) of HMAC-SHA256(key = seed, len(phase) as u32 BE ‖ phase ‖ packed ID number as u64 BE); then later arrivals in arrival order",
    });
    Ok(respond(StatusCode::OK, &body))
}

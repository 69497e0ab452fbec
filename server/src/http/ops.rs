//! Public read handlers and operations: health, metrics, OpenAPI, phases, availability.

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::problem::{Code, Problem};
use super::request::{HttpResponse, bytes_response, cached, query_pairs, respond};
use crate::app::App;
use crate::availability::Query;
use crate::catalog::WindowState;
use crate::domain::{Unknown, canonical, parse_date, rfc3339};
use crate::store::Store;

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /health/live`
pub fn live() -> HttpResponse {
    respond(StatusCode::OK, &json!({ "status": "live" }))
}

/// `GET /health/ready`: the store takes writes and a calendar is loaded.
pub async fn ready<S: Store>(app: &App<S>) -> Result<HttpResponse, Problem> {
    let calendar = !app.store.catalog().phases.is_empty();
    // Probes take no place in the budget; the node is saturated when the requests in
    // flight (stuck or slow ones) fill it: it cannot take a booking now, whatever the
    // store says.
    let busy = app.in_flight.load(std::sync::atomic::Ordering::Acquire);
    let store = if busy >= app.limits.max_in_flight {
        Err(format!(
            "saturated: {busy} requests in flight (--max-in-flight {})",
            app.limits.max_in_flight
        ))
    } else {
        app.store.ready().await
    };
    match (calendar, store) {
        (true, Ok(())) => Ok(respond(
            StatusCode::OK,
            &json!({ "status": "ready", "store": app.store.backend() }),
        )),
        (_, Err(reason)) => Err(Problem::new(
            Code::StoreUnavailable,
            format!("not ready: {reason}"),
        )
        .with("reason", reason.into())
        .retry_after(1)),
        (false, Ok(())) => Err(Problem::new(
            Code::StoreUnavailable,
            "not ready: no calendar loaded",
        )
        .with("reason", "no calendar loaded".into())
        .retry_after(1)),
    }
}

/// `GET /metrics`
pub fn metrics<S: Store>(app: &App<S>) -> HttpResponse {
    bytes_response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        Bytes::from(crate::metrics::render(&app.metrics)),
    )
}

/// `GET /openapi.json`
pub fn openapi() -> HttpResponse {
    bytes_response(
        StatusCode::OK,
        "application/json",
        Bytes::from_static(OPENAPI.as_bytes()),
    )
}

/// `GET /v1/geography`: counties, their districts, and the sites per district and phase;
/// one page per calendar, with a strong `ETag`, compressed once.
pub fn geography<S: Store>(app: &App<S>, headers: &http::HeaderMap) -> HttpResponse {
    let page = app.availability.snapshot().geography();
    cached(
        &page,
        headers,
        "application/json",
        "public, max-age=60",
        true,
    )
}

/// A county or district that is none: 422 naming the field and the valid choices.
pub fn unknown_place(e: Unknown) -> Problem {
    Problem::new(Code::InvalidRequest, e.to_string())
        .with("field", serde_json::json!(e.field))
        .with("choices", serde_json::json!(e.choices))
}

/// `GET /v1/phases`
pub fn phases<S: Store>(app: &App<S>) -> HttpResponse {
    let now = OffsetDateTime::now_utc();
    let snapshot = app.availability.snapshot();
    let catalog = app.store.catalog();
    let phases: Vec<Value> = catalog
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let status = match p.window(now) {
                WindowState::NotOpen { .. } => "upcoming",
                WindowState::Open => "open",
                WindowState::Closed => "closed",
            };
            let capacity: u64 = p.slots.iter().map(|&s| u64::from(catalog.slot(s).slot.capacity)).sum();
            let remaining = if std::sync::Arc::ptr_eq(&snapshot.catalog, &catalog) {
                snapshot.phase_remaining(i)
            } else {
                p.slots.iter().map(|&s| u64::from(app.store.inventory().remaining(s))).sum()
            };
            json!({
                "id": p.phase.id,
                "name": p.phase.name,
                "vaccines": p.phase.vaccines,
                "opens_at": rfc3339(p.phase.opens_at),
                "closes_at": rfc3339(p.phase.closes_at),
                "invitation_required": p.phase.invitation_required,
                "waiting_room": p.phase.waiting_room.as_ref().map(|w| json!({
                    "prequeue_opens_at": rfc3339(w.prequeue_opens_at),
                })),
                "registration_required": p.phase.registration_required,
                "vaccination_dates": p.dates.map(|(a, b)| json!({ "first": a.to_string(), "last": b.to_string() })),
                "status": status,
                "slots": p.slots.len(),
                "capacity": capacity,
                "remaining": remaining,
            })
        })
        .collect();
    respond(StatusCode::OK, &json!({ "phases": phases }))
}

/// `GET /v1/phases/{phase}/availability?county=&district=&date=`
pub fn availability<S: Store>(
    app: &App<S>,
    phase: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
) -> Result<HttpResponse, Problem> {
    let snapshot = app.availability.snapshot();
    let pi = snapshot
        .catalog
        .phase_index(phase)
        .ok_or_else(|| Problem::new(Code::UnknownPhase, format!("no phase {phase}")))?;
    let mut q = Query::default();
    for (k, v) in query_pairs(query) {
        let v = Some(v).filter(|v| !v.is_empty());
        match k.as_str() {
            "county" => q.county = v.map(|c| canonical(&c)),
            "district" => q.district = v.map(|d| canonical(&d)),
            "date" => {
                if let Some(d) = &v
                    && parse_date(d).is_none()
                {
                    return Err(Problem::new(
                        Code::InvalidRequest,
                        "date must be YYYY-MM-DD",
                    ));
                }
                q.date = v;
            }
            _ => {}
        }
    }
    // Only real names make a page (and a cache entry): junk cannot crowd pages out.
    crate::domain::Geography::get()
        .check(q.county.as_deref(), q.district.as_deref())
        .map_err(unknown_place)?;
    let page = snapshot.page(pi, &q);
    let cache = format!(
        "public, max-age={}",
        app.limits.availability_max_age.as_secs().max(1)
    );
    Ok(cached(&page, headers, "application/json", &cache, true))
}

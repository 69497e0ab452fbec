//! Admin handlers: calendar, invitations, tokens, audit. Behind the admin bearer secret.

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use hyper::body::Body;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::problem::{Code, Problem};
use super::request::{
    HttpResponse, authenticate_admin, json, parse_id_number, read_json, read_large_body, respond,
};
use crate::app::App;
use crate::domain::{Calendar, IdNumber, PhaseId};
use crate::settlement::audit::{Inputs, audit_phase};
use crate::store::Store;
use crate::token::{Claims, Scope};

/// Longest token lifetime an admin may mint: 30 days.
const MAX_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// `PUT /v1/admin/calendar`
pub async fn put_calendar<S, B>(
    app: &App<S>,
    headers: &HeaderMap,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    authenticate_admin(app, headers)?;
    let raw = read_large_body(
        body,
        app.limits.max_admin_body_bytes,
        app.limits.body_read_timeout,
    )
    .await?;
    let calendar: Calendar = serde_json::from_slice(&raw).map_err(|e| {
        Problem::new(
            Code::InvalidCalendar,
            format!("the calendar does not parse: {e}"),
        )
    })?;
    let report = app.store.load_calendar(calendar).await?;
    app.availability
        .rebuild(app.store.catalog(), app.store.inventory());
    Ok(respond(StatusCode::OK, &report))
}

/// Parses invitations: a JSON array of id numbers, or NDJSON (one JSON string a line).
fn parse_invitations(raw: &[u8], ndjson: bool) -> Result<Vec<IdNumber>, Problem> {
    let bad = |line: usize, e: &dyn std::fmt::Display| {
        Problem::new(Code::InvalidRequest, format!("invitation {line}: {e}"))
    };
    if !ndjson {
        let ids: Vec<String> = json(raw)?;
        return ids
            .iter()
            .enumerate()
            .map(|(i, s)| IdNumber::parse(s).map_err(|e| bad(i + 1, &e)))
            .collect();
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| Problem::new(Code::InvalidRequest, "NDJSON must be UTF-8"))?;
    let mut ids = Vec::with_capacity(raw.len() / 14);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // One JSON string per line; `"A123456789"` is the form, the quotes are required.
        let s = line
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix('"'))
            .ok_or_else(|| bad(i + 1, &"each line must be one JSON string"))?;
        ids.push(IdNumber::parse(s).map_err(|e| bad(i + 1, &e))?);
    }
    Ok(ids)
}

/// `PUT /v1/admin/phases/{phase}/invitations`
pub async fn put_invitations<S, B>(
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
    authenticate_admin(app, headers)?;
    let id = app
        .store
        .catalog()
        .phase(phase)
        .map(|p| p.phase.id.clone())
        .ok_or_else(|| Problem::new(Code::UnknownPhase, format!("no phase {phase}")))?;
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    let raw = read_large_body(
        body,
        app.limits.max_admin_body_bytes,
        app.limits.body_read_timeout,
    )
    .await?;
    let ids = parse_invitations(&raw, ndjson)?;
    let received = ids.len();
    let added = app.store.invite(id, ids).await?;
    Ok(respond(
        StatusCode::OK,
        &json!({ "phase": phase, "received": received, "added": added }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    /// The person (required except for staff tokens, where it names the staff member).
    #[serde(default)]
    id_number: Option<String>,
    scope: Scope,
    /// A staff token's site.
    #[serde(default)]
    site: Option<String>,
    #[serde(default = "default_ttl")]
    ttl_seconds: i64,
    /// A kiosk token's partner (drills that replay kiosk bookings).
    #[serde(default)]
    partner: Option<String>,
}

fn default_ttl() -> i64 {
    3600
}

/// `POST /v1/admin/tokens`
pub async fn post_token<S, B>(
    app: &App<S>,
    headers: &HeaderMap,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    authenticate_admin(app, headers)?;
    let req: TokenRequest = read_json(app, body).await?;
    let person = match (&req.id_number, req.scope) {
        (Some(raw), _) => parse_id_number(raw)?,
        (None, Scope::Staff) => crate::token::no_person(),
        (None, _) => {
            return Err(Problem::new(
                Code::InvalidRequest,
                "id_number is required for this scope",
            ));
        }
    };
    let partner = match (req.scope, req.site) {
        (Scope::Staff, Some(site)) => {
            if app.store.catalog().site_index(&site).is_none() {
                return Err(Problem::new(
                    Code::InvalidRequest,
                    format!("site: no site {site} in the calendar"),
                ));
            }
            Some(site)
        }
        (Scope::Staff, None) => {
            return Err(Problem::new(
                Code::InvalidRequest,
                "site is required for a staff token",
            ));
        }
        (_, Some(_)) => {
            return Err(Problem::new(
                Code::InvalidRequest,
                "site is for staff tokens",
            ));
        }
        (_, None) => req.partner.clone(),
    };
    if !(1..=MAX_TTL_SECONDS).contains(&req.ttl_seconds) {
        return Err(Problem::new(
            Code::InvalidRequest,
            format!("ttl_seconds must be 1 to {MAX_TTL_SECONDS}"),
        ));
    }
    if let Some(p) = &req.partner
        && (req.scope != Scope::Kiosk || !crate::identity::partner::valid_partner_id(p))
    {
        return Err(Problem::new(
            Code::InvalidRequest,
            "partner is for kiosk tokens: 1 to 64 of A-Z a-z 0-9 - _",
        ));
    }
    let expires = OffsetDateTime::now_utc().unix_timestamp() + req.ttl_seconds;
    let token = app.tokens.sign(Claims {
        person,
        scope: req.scope,
        expires_at: expires,
        partner,
    });
    let expires_at = OffsetDateTime::from_unix_timestamp(expires)
        .map(crate::domain::rfc3339)
        .unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        &json!({ "token": token, "expires_at": expires_at, "scope": req.scope.as_str() }),
    ))
}

/// `GET /v1/admin/phases/{phase}/audit`
pub async fn get_audit<S: Store>(
    app: &App<S>,
    phase: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<HttpResponse, Problem> {
    authenticate_admin(app, headers)?;
    // The journey reads every invitation, text and registration history: an operator's
    // question, asked on purpose, not part of a poll.
    let with_journey = super::request::query_pairs(query)
        .iter()
        .any(|(k, v)| k == "journey" && (v == "true" || v == "1"));
    if PhaseId::parse(phase).is_err() || app.store.catalog().phase(phase).is_none() {
        return Err(Problem::new(
            Code::UnknownPhase,
            format!("no phase {phase}"),
        ));
    }
    let report = app.store.audit().await?;
    let Some(p) = report.phase(phase) else {
        return Err(Problem::new(
            Code::UnknownPhase,
            format!("no phase {phase}"),
        ));
    };
    use crate::audit::Breach;
    let slots: std::collections::HashSet<&str> = p.slots.iter().map(|s| s.slot.as_str()).collect();
    let breaches: Vec<_> = report
        .breaches
        .iter()
        .filter(|b| match b {
            Breach::DoubleBooked { phase: bp, .. } => bp.as_str() == phase,
            Breach::Overbooked { slot, .. }
            | Breach::CounterMismatch { slot, .. }
            | Breach::UnknownSlot { slot, .. } => slots.contains(slot.as_str()),
            Breach::RecordMismatch { .. } => true,
        })
        .collect();
    let journey = if with_journey {
        let catalog = app.store.catalog();
        let inputs = Inputs::read(&*app.store, &*app.sms.outbox).await?;
        let taken: std::collections::HashMap<&str, u64> = p
            .slots
            .iter()
            .map(|s| (s.slot.as_str(), u64::from(s.booked)))
            .collect();
        Some(
            audit_phase(
                &*app.store,
                &*app.identity.store,
                &catalog,
                &p.phase,
                &inputs,
                |slot| taken.get(slot).copied().unwrap_or(0),
            )
            .await?,
        )
    } else {
        None
    };
    let journey_ok = journey.as_ref().is_none_or(|j| j.ok);
    Ok(respond(
        StatusCode::OK,
        &json!({
            "phase": phase,
            "ok": breaches.is_empty() && journey_ok,
            "totals": p.totals,
            "slots": p.slots,
            "breaches": breaches,
            "journey": journey,
        }),
    ))
}

//! Settlement handlers: settling a phase, the SMS outbox's state, and closing out a day.
//! Behind the admin bearer secret.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::Full;
use hyper::body::Body;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::problem::{Code, Problem};
use super::request::{HttpResponse, authenticate_admin, json, query_pairs, read_body, respond};
use crate::app::App;
use crate::domain::{SlotId, TAIWAN, parse_date};
use crate::metrics as m;
use crate::settlement::{SettleError, settle as run};
use crate::store::Store;

fn flag(raw: &str) -> Result<bool, Problem> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Problem::new(
            Code::InvalidRequest,
            format!("dry_run must be true or false, got {raw:?}"),
        )),
    }
}

/// `POST /v1/admin/phases/{phase}/settlement` (`?dry_run=true`, `?share=0.838`;
/// `?format=markdown` or `Accept: text/markdown` for the report as Markdown tables).
pub async fn settle<S: Store>(
    app: &App<S>,
    phase: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<HttpResponse, Problem> {
    authenticate_admin(app, headers)?;
    let mut dry_run = false;
    let mut share = app.sms.config.settlement_share;
    let mut markdown = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/markdown"));
    // A run acts on a whole phase: a parameter given twice, misspelt or unknown is an
    // error, never a guess (`?dryrun=true` must not invite anyone).
    let pairs = query_pairs(query);
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(seen, _)| seen == k) {
            return Err(Problem::new(
                Code::InvalidRequest,
                format!("{k} is given twice"),
            ));
        }
    }
    for (k, v) in pairs {
        match k.as_str() {
            "dry_run" => dry_run = flag(&v)?,
            "share" => {
                share = match v.parse::<f64>() {
                    Ok(s) if s > 0.0 && s <= 1.0 => s,
                    _ => {
                        return Err(Problem::new(
                            Code::InvalidRequest,
                            format!("share must be above 0 and at most 1, got {v:?}"),
                        ));
                    }
                }
            }
            "format" if v == "markdown" => markdown = true,
            "format" if v == "json" => markdown = false,
            "format" => {
                return Err(Problem::new(
                    Code::InvalidRequest,
                    format!("format must be json or markdown, got {v:?}"),
                ));
            }
            other => {
                return Err(Problem::new(
                    Code::InvalidRequest,
                    format!("unknown parameter {other:?}: dry_run, share and format are"),
                ));
            }
        }
    }
    // One run at a time in this instance: a second waits, then finds the target met.
    let _one = app.sms.settling.lock().await;
    let now = OffsetDateTime::now_utc();
    let s = run(
        &*app.store,
        &*app.sms.outbox,
        &*app.identity.store,
        phase,
        share,
        dry_run,
        now,
    )
    .await
    .map_err(|e| match e {
        SettleError::UnknownPhase(p) => Problem::new(Code::UnknownPhase, format!("no phase {p}")),
        SettleError::Store(e) => e.into(),
    })?;
    if !dry_run {
        metrics::counter!(m::INVITATIONS_SETTLED).increment(s.invited);
        tracing::info!(
            phase,
            invited = s.invited,
            eligible = s.eligible,
            target = s.target,
            "settlement"
        );
    }
    if markdown {
        let title = format!(
            "Settlement of phase {}{}",
            s.phase,
            if dry_run { " (dry run)" } else { "" }
        );
        let text = s.report.markdown(
            &title,
            &[
                ("invited", s.invited),
                ("eligible", s.eligible),
                ("already invited", s.already_invited),
                ("doses", s.doses),
                ("target", s.target),
            ],
        );
        let mut r = http::Response::new(Full::new(Bytes::from(text)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/markdown; charset=utf-8"),
        );
        return Ok(r);
    }
    Ok(respond(StatusCode::OK, &s))
}

/// `GET /v1/admin/sms`
pub async fn outbox<S: Store>(app: &App<S>, headers: &HeaderMap) -> Result<HttpResponse, Problem> {
    authenticate_admin(app, headers)?;
    let s = app.sms.outbox.stats().await?;
    Ok(respond(
        StatusCode::OK,
        &json!({
            "queued": s.queued,
            "sent": s.sent,
            "failed": s.failed,
            "dead": s.dead,
            "per_second": (app.sms.per_second() * 10.0).round() / 10.0,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseOutRequest {
    date: String,
}

/// `POST /v1/admin/phases/{phase}/close-out` with `{"date"}` or `?date=`.
pub async fn close_out<S, B>(
    app: &App<S>,
    phase: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    authenticate_admin(app, headers)?;
    let raw = read_body(
        body,
        app.limits.max_body_bytes,
        app.limits.body_read_timeout,
    )
    .await?;
    let from_query = query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == "date")
        .map(|(_, v)| v);
    let date = match (from_query, raw.is_empty()) {
        (Some(d), true) => d,
        (None, false) => json::<CloseOutRequest>(&raw)?.date,
        (Some(d), false) => {
            let body = json::<CloseOutRequest>(&raw)?.date;
            if body != d {
                return Err(Problem::new(
                    Code::InvalidRequest,
                    "the date in the query and in the body differ",
                ));
            }
            d
        }
        (None, true) => {
            return Err(Problem::new(
                Code::InvalidRequest,
                "date is required, as {\"date\": \"YYYY-MM-DD\"} or ?date=",
            ));
        }
    };
    let day = parse_date(&date)
        .ok_or_else(|| Problem::new(Code::InvalidRequest, "date must be YYYY-MM-DD"))?;
    let today = OffsetDateTime::now_utc().to_offset(TAIWAN).date();
    if day > today {
        return Err(Problem::new(
            Code::InvalidRequest,
            format!("{date} has not come yet: a day is closed out once it is over or under way"),
        ));
    }
    let catalog = app.store.catalog();
    let info = catalog
        .phase(phase)
        .ok_or_else(|| Problem::new(Code::UnknownPhase, format!("no phase {phase}")))?;
    let slots: Vec<SlotId> = info
        .slots
        .iter()
        .map(|&s| catalog.slot(s))
        .filter(|s| s.date == day)
        .map(|s| s.slot.id.clone())
        .collect();
    let done = app.store.close_out(info.phase.id.clone(), slots).await?;
    tracing::info!(
        phase,
        date,
        attended = done.attended,
        no_show = done.no_show,
        "close-out"
    );
    Ok(respond(
        StatusCode::OK,
        &json!({
            "phase": info.phase.id,
            "date": date,
            "attended": done.attended,
            "no_show": done.no_show,
        }),
    ))
}

//! Registry handlers (the health-insurance authority's side): the streamed NDJSON import
//! of insured persons, and the registration audit.

use std::collections::HashMap;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use hyper::body::Body;
use serde::Deserialize;
use serde_json::json;

use super::problem::{Code, Problem};
use super::request::{HttpResponse, authenticate_admin, respond};
use crate::app::App;
use crate::domain::IdNumber;
use crate::identity::{InsuredPerson, NhiCard, otp, password};
use crate::metrics as m;
use crate::store::Store;
use crate::store::identity::Upsert;

/// Persons written per store call while the body streams in.
const BATCH: usize = 20_000;
/// The longest line accepted (a person is ~250 bytes).
const MAX_LINE: usize = 4_096;
/// Priority categories per person at most.
const MAX_CATEGORIES: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id_number: IdNumber,
    nhi_card: NhiCard,
    birth_date: String,
    #[serde(default)]
    categories: Vec<u16>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    otp_secret: Option<String>,
    /// Hints that population files carry for drills; the registry does not keep them.
    #[serde(default)]
    #[allow(dead_code)]
    county: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    district: Option<String>,
}

/// A line waiting for its password to be hashed, or ready.
struct Parsed {
    person: InsuredPerson,
    plain: Option<String>,
    /// Its line in the body, for a refusal the store finds.
    line: usize,
}

/// Refused lines: where, and why.
struct Bad(usize, String);

fn parse_line(raw: &[u8], line: usize, today: time::Date) -> Result<Parsed, String> {
    // serde's own position ("at line 1 column 25") would read as a second line number.
    let l: Line = serde_json::from_slice(raw).map_err(|e| {
        let m = e.to_string();
        match m.rsplit_once(" at line ") {
            Some((what, _)) => format!("{what} (column {})", e.column()),
            None => m,
        }
    })?;
    let date = time::format_description::well_known::Iso8601::DATE;
    let born = time::Date::parse(&l.birth_date, &date)
        .map_err(|_| "birth_date must be YYYY-MM-DD".to_string())?;
    if l.birth_date.len() != 10 || born.year() < 1880 || born > today {
        return Err("birth_date must be YYYY-MM-DD, after 1880 and not in the future".into());
    }
    if l.categories.len() > MAX_CATEGORIES {
        return Err(format!("at most {MAX_CATEGORIES} categories"));
    }
    if l.password.is_some() && l.password_hash.is_some() {
        return Err("give password or password_hash, not both".into());
    }
    if let Some(h) = &l.password_hash {
        password::check_phc(h).map_err(|e| format!("password_hash: {e}"))?;
    }
    if let Some(p) = &l.password
        && (p.is_empty() || p.len() > password::MAX_PASSWORD_BYTES)
    {
        return Err(format!(
            "password must be 1 to {} bytes",
            password::MAX_PASSWORD_BYTES
        ));
    }
    if let Some(s) = &l.otp_secret {
        otp::parse_secret(s).map_err(|e| format!("otp_secret: {e}"))?;
    }
    Ok(Parsed {
        person: InsuredPerson {
            id_number: l.id_number,
            nhi_card: l.nhi_card,
            birth_date: l.birth_date,
            categories: l.categories,
            password_hash: l.password_hash,
            otp_secret: l.otp_secret,
        },
        plain: l.password,
        line,
    })
}

/// Hashes the plain passwords of a batch on the hashing pool, then writes it; a card of
/// another person refuses the batch with that line.
async fn flush<S: Store>(
    app: &App<S>,
    batch: &mut Vec<Parsed>,
) -> Result<Result<u64, Bad>, Problem> {
    let mut parsed = std::mem::take(batch);
    if parsed.iter().any(|p| p.plain.is_some()) {
        let params = app.identity.config.password;
        let _permit = app
            .identity
            .cpu_pool
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Problem::new(Code::Overloaded, "shutting down").retry_after(1))?;
        parsed = tokio::task::spawn_blocking(move || {
            for p in &mut parsed {
                if let Some(plain) = p.plain.take() {
                    p.person.password_hash = password::hash(&plain, params).ok();
                }
            }
            parsed
        })
        .await
        .map_err(|_| Problem::new(Code::Internal, "password hashing failed"))?;
    }
    let lines: Vec<usize> = parsed.iter().map(|p| p.line).collect();
    let persons: Vec<InsuredPerson> = parsed.into_iter().map(|p| p.person).collect();
    match app.identity.store.upsert_persons(persons).await? {
        Upsert::Written(n) => {
            metrics::counter!(m::REGISTRY_PERSONS_IMPORTED).increment(n);
            Ok(Ok(n))
        }
        Upsert::CardTaken { index } => Ok(Err(Bad(
            lines.get(index).copied().unwrap_or(0),
            "nhi_card belongs to another person in the registry".into(),
        ))),
    }
}

/// `PUT /v1/admin/registry`: NDJSON, one insured person a line, upserted in batches as
/// the body streams in. A bad line stops the import with `422`, its line number, and how
/// many persons before it were written (an import is idempotent: fix and send again).
pub async fn put<S, B>(app: &App<S>, headers: &HeaderMap, body: B) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    authenticate_admin(app, headers)?;
    let limit = app.limits.max_admin_body_bytes;
    let mut body = std::pin::pin!(body);
    let mut pending = BytesMut::new();
    let mut batch = Vec::with_capacity(BATCH);
    let (mut line_no, mut written, mut received) = (0usize, 0u64, 0usize);
    let bad = |line: usize, written: u64, e: String| {
        Problem::new(
            Code::InvalidRequest,
            format!(
                "line {line}: {e}. {written} persons were written before it; lines after the \
                 last batch of {BATCH} were not: fix the line and send the file again (an \
                 import is an upsert)"
            ),
        )
        .with("line", json!(line))
    };
    let today = time::OffsetDateTime::now_utc()
        .to_offset(crate::domain::TAIWAN)
        .date();
    // One card, one person, within the file too: card → the id of its first line.
    let mut cards: HashMap<u64, u64> = HashMap::new();
    let mut done = false;
    while !done {
        match super::request::next_frame(body.as_mut(), app.limits.body_read_timeout).await? {
            None => done = true,
            Some(frame) => {
                if let Ok(data) = frame.into_data() {
                    received += data.len();
                    if received > limit {
                        return Err(Problem::new(
                            Code::PayloadTooLarge,
                            format!("the body is larger than {limit} bytes"),
                        ));
                    }
                    pending.extend_from_slice(&data);
                }
            }
        }
        loop {
            let end = match pending.iter().position(|&c| c == b'\n') {
                Some(i) => i,
                None if done && !pending.is_empty() => pending.len(),
                None => {
                    if pending.len() > MAX_LINE {
                        return Err(bad(line_no + 1, written, "the line is too long".into()));
                    }
                    break;
                }
            };
            let raw = pending.split_to(end);
            if pending.has_remaining() {
                pending.advance(1);
            }
            line_no += 1;
            let mut text = raw.trim_ascii();
            if line_no == 1 {
                // A byte-order mark some editors write at the start of a file.
                text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
            }
            if text.is_empty() {
                continue;
            }
            if text.len() > MAX_LINE {
                return Err(bad(line_no, written, "the line is too long".into()));
            }
            let parsed = parse_line(text, line_no, today).map_err(|e| bad(line_no, written, e))?;
            let (card, id) = (
                parsed.person.nhi_card.packed(),
                parsed.person.id_number.packed(),
            );
            if *cards.entry(card).or_insert(id) != id {
                return Err(bad(
                    line_no,
                    written,
                    "nhi_card is another person's card earlier in this file".into(),
                ));
            }
            batch.push(parsed);
            if batch.len() == BATCH {
                match flush(app, &mut batch).await? {
                    Ok(n) => written += n,
                    Err(Bad(line, e)) => return Err(bad(line, written, e)),
                }
            }
        }
    }
    if !batch.is_empty() {
        match flush(app, &mut batch).await? {
            Ok(n) => written += n,
            Err(Bad(line, e)) => return Err(bad(line, written, e)),
        }
    }
    Ok(respond(StatusCode::OK, &json!({ "persons": written })))
}

/// `GET /v1/admin/registrations/audit`: the registration invariants over the store.
pub async fn audit<S: Store>(app: &App<S>, headers: &HeaderMap) -> Result<HttpResponse, Problem> {
    authenticate_admin(app, headers)?;
    let report = app.identity.store.audit().await?;
    Ok(respond(StatusCode::OK, &report))
}

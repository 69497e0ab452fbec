//! Reading requests at the edge: bodies under a size cap, JSON, tokens, idempotency keys,
//! query strings; and writing JSON answers.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::problem::{Code, Problem};
use crate::app::App;
use crate::domain::IdNumber;
use crate::store::{Idempotency, Store};
use crate::token::{Claims, Scope, TokenError, secrets_match};

/// The answer type of every handler.
pub type HttpResponse = Response<Full<Bytes>>;

/// Reads a whole body, refusing more than `limit` bytes with 413, and a body that has
/// not arrived within `within` with 408: a client that sends headers and then trickles
/// (or never sends) its body must not hold a request slot for long.
pub async fn read_body<B>(body: B, limit: usize, within: Duration) -> Result<Bytes, Problem>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large(limit));
    }
    match tokio::time::timeout(within, Limited::new(body, limit).collect()).await {
        Err(_) => Err(too_slow(within)),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Ok(Err(e)) => Err(Problem::new(
            Code::InvalidRequest,
            format!("could not read the body: {e}"),
        )),
    }
}

/// Reads a large admin body (calendars, invitations): each part must arrive within
/// `idle` of the previous one, however long the whole takes.
pub async fn read_large_body<B>(body: B, limit: usize, idle: Duration) -> Result<Bytes, Problem>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large(limit));
    }
    let mut body = std::pin::pin!(body);
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = next_frame(body.as_mut(), idle).await? {
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(too_large(limit));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// The next frame of a body, or 408 when none comes within `idle`.
pub async fn next_frame<B>(
    mut body: std::pin::Pin<&mut B>,
    idle: Duration,
) -> Result<Option<hyper::body::Frame<Bytes>>, Problem>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(idle, body.frame()).await {
        Err(_) => Err(too_slow(idle)),
        Ok(None) => Ok(None),
        Ok(Some(Ok(f))) => Ok(Some(f)),
        Ok(Some(Err(e))) => Err(Problem::new(
            Code::InvalidRequest,
            format!("could not read the body: {e}"),
        )),
    }
}

fn too_slow(within: Duration) -> Problem {
    Problem::new(
        Code::RequestTimeout,
        format!(
            "the body did not arrive within {} s; send it whole",
            within.as_secs()
        ),
    )
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        Code::PayloadTooLarge,
        format!("the body is larger than {limit} bytes"),
    )
}

/// Reads a person-sized body (`--max-body-bytes`, `--body-read-timeout`) and parses it as
/// JSON.
pub async fn read_json<T, S, B>(app: &App<S>, body: B) -> Result<T, Problem>
where
    T: DeserializeOwned,
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let raw = read_body(
        body,
        app.limits.max_body_bytes,
        app.limits.body_read_timeout,
    )
    .await?;
    json(&raw)
}

/// An `id_number` field, checked (422 naming the field otherwise).
pub fn parse_id_number(raw: &str) -> Result<IdNumber, Problem> {
    IdNumber::parse(raw).map_err(|e| Problem::new(Code::InvalidRequest, format!("id_number: {e}")))
}

/// An `nhi_card` field, checked (422 naming the field otherwise).
pub fn parse_nhi_card(raw: &str) -> Result<crate::identity::NhiCard, Problem> {
    crate::identity::NhiCard::parse(raw)
        .map_err(|e| Problem::new(Code::InvalidRequest, format!("nhi_card: {e}")))
}

/// Parses a JSON body.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            Code::InvalidRequest,
            format!("the body is not valid JSON for this request: {e}"),
        )
    })
}

/// A JSON answer.
pub fn respond<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> HttpResponse {
    let body = serde_json::to_vec(value).unwrap_or_default();
    bytes_response(status, "application/json", Bytes::from(body))
}

/// An answer with a given body and content type.
pub fn bytes_response(status: StatusCode, content_type: &'static str, body: Bytes) -> HttpResponse {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A cacheable page (availability, geography, the web frontend's files): `304` when
/// `If-None-Match` names it, else its body in the best coding the client takes (when
/// `compressible`), with the coding's own strong `ETag`, `cache` as `Cache-Control` and
/// `Vary: accept-encoding`.
pub fn cached(
    page: &crate::availability::Page,
    headers: &HeaderMap,
    content_type: &'static str,
    cache: &str,
    compressible: bool,
) -> HttpResponse {
    use crate::availability::Encoding;
    let encoding = if compressible {
        Encoding::negotiate(
            headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok()),
        )
    } else {
        Encoding::Identity
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| page.matches(v, encoding));
    let mut r = if not_modified {
        empty(StatusCode::NOT_MODIFIED)
    } else {
        bytes_response(StatusCode::OK, content_type, page.body(encoding))
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&page.etag(encoding)) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let (false, Some(e)) = (not_modified, encoding.header()) {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    r
}

/// An empty answer.
pub fn empty(status: StatusCode) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Verifies the person token and its scope.
pub fn authenticate<S: Store>(
    app: &App<S>,
    headers: &HeaderMap,
    scopes: &[Scope],
    now: i64,
) -> Result<Claims, Problem> {
    let unauth = |reason: &'static str, detail: &str| {
        Problem::new(Code::Unauthenticated, detail).with("reason", reason.into())
    };
    let token = bearer(headers)
        .ok_or_else(|| unauth("missing", "an Authorization: Bearer token is required"))?;
    let claims = app.tokens.verify(token, now).map_err(|e| match e {
        TokenError::Expired => unauth("expired", "the token has expired; sign in again"),
        TokenError::Malformed | TokenError::BadSignature => {
            unauth("invalid", "the token is not valid")
        }
    })?;
    if !scopes.contains(&claims.scope) {
        return Err(Problem::new(
            Code::WrongScope,
            format!("a {} token cannot do this", claims.scope.as_str()),
        ));
    }
    Ok(claims)
}

/// Checks the admin bearer secret.
pub fn authenticate_admin<S: Store>(app: &App<S>, headers: &HeaderMap) -> Result<(), Problem> {
    match bearer(headers) {
        Some(t) if secrets_match(t.as_bytes(), app.admin_token.as_bytes()) => Ok(()),
        _ => Err(
            Problem::new(Code::Unauthenticated, "the admin bearer secret is required")
                .with("reason", "admin".into()),
        ),
    }
}

/// The `Idempotency-Key` of a write, fingerprinted with what it asks: the operation, its
/// target (phase or booking), the person and the body. Costs nothing without a key.
pub fn idempotency(
    headers: &HeaderMap,
    operation: &str,
    target: &str,
    person: IdNumber,
    body: &[u8],
) -> Result<Option<Idempotency>, Problem> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 128 && k.bytes().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            Problem::new(
                Code::InvalidRequest,
                "Idempotency-Key must be 1 to 128 visible ASCII characters",
            )
        })?;
    let mut h = Sha256::new();
    let person = person.packed().to_le_bytes();
    for part in [operation.as_bytes(), target.as_bytes(), &person, body] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let digest = h.finalize();
    let fingerprint = hex::encode(&digest[..12]);
    Ok(Some(Idempotency {
        key: key.to_string(),
        fingerprint,
    }))
}

/// Decoded query parameters.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .take(32)
        .collect()
}

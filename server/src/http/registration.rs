//! Registration handlers: captchas, identifying for intent registration, and the
//! person's own registration (register, read, modify, cancel).

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use hyper::body::Body;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::problem::{Code, Problem};
use super::request::{
    HttpResponse, authenticate, empty, parse_id_number, parse_nhi_card, read_json, respond,
};
use crate::app::App;
use crate::domain::{IdNumber, rfc3339};
use crate::identity::captcha::CaptchaError;
use crate::identity::{
    RawForm, RegisterOutcome, Registration, RegistrationStatus, mask_id, mask_mobile,
};
use crate::metrics as m;
use crate::store::Store;
use crate::token::{Claims, Scope};

/// A captcha answer as requests carry it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptchaAnswer {
    pub id: String,
    pub answer: String,
}

/// A registration as clients see it: the id number and mobile masked.
#[derive(Debug, Serialize)]
pub struct RegistrationView<'a> {
    serial: u64,
    /// The serial as printed on the 2021 result page, zero-padded.
    serial_text: String,
    id_number: String,
    name: &'a str,
    mobile: String,
    county: &'a str,
    district: &'a str,
    vaccines: &'a [String],
    status: RegistrationStatus,
    registered_at: String,
    modified_at: String,
}

/// The client view of a registration.
pub fn view(r: &Registration) -> RegistrationView<'_> {
    RegistrationView {
        serial: r.serial,
        serial_text: format!("{:010}", r.serial),
        id_number: mask_id(r.person),
        name: &r.form.name,
        mobile: mask_mobile(&r.form.mobile),
        county: &r.form.county,
        district: &r.form.district,
        vaccines: &r.form.vaccines,
        status: r.status,
        registered_at: rfc3339(r.registered_at),
        modified_at: rfc3339(r.modified_at),
    }
}

fn counted(op: &'static str, outcome: &'static str) {
    metrics::counter!(m::REGISTRATIONS, "op" => op, "outcome" => outcome).increment(1);
}

/// `GET /v1/captcha`: drawn on the identity CPU pool (about 2 ms of CPU a picture).
pub async fn captcha<S: Store>(app: &App<S>) -> Result<HttpResponse, Problem> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let c = app.identity.captchas.issue(now);
    let _turn = super::login::cpu_turn(app).await?;
    let captchas = app.identity.captchas.clone();
    let id = c.id.clone();
    let image = tokio::task::spawn_blocking(move || captchas.data_url(&id))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| Problem::new(Code::Internal, "the captcha could not be drawn"))?;
    let expires_at = OffsetDateTime::from_unix_timestamp(c.expires_at)
        .map(rfc3339)
        .unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        &json!({ "captcha": c.id, "image": image, "expires_at": expires_at }),
    ))
}

/// Checks a captcha answer and burns the challenge, right or wrong: a challenge is
/// answered once. Any instance can check it; the used mark is in the shared store.
pub async fn check_captcha<S: Store>(app: &App<S>, c: &CaptchaAnswer) -> Result<(), Problem> {
    let failed = |detail: &str| Problem::new(Code::CaptchaFailed, detail);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let verdict = app.identity.captchas.check(&c.id, &c.answer, now);
    match verdict {
        Err(CaptchaError::Malformed) => return Err(failed("unknown captcha")),
        Err(CaptchaError::Expired) => return Err(failed("the captcha has expired")),
        Ok(()) | Err(CaptchaError::Wrong) => {}
    }
    let expires =
        c.id.split_once('.')
            .and_then(|(e, _)| e.parse::<i64>().ok())
            .unwrap_or(now + 1);
    if !app
        .identity
        .store
        .use_once(format!("captcha:{}", c.id), expires)
        .await?
    {
        return Err(failed("this captcha was already used; get a new one"));
    }
    verdict.map_err(|_| failed("the captcha answer is wrong; get a new one"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    id_number: String,
    nhi_card: String,
    captcha: CaptchaAnswer,
}

/// Mints a token for `person` with `scope`, living `ttl`; the `201` answer.
pub fn token_response<S: Store>(
    app: &App<S>,
    person: IdNumber,
    scope: Scope,
    partner: Option<String>,
    ttl: std::time::Duration,
) -> HttpResponse {
    let expires = OffsetDateTime::now_utc().unix_timestamp() + ttl.as_secs() as i64;
    let token = app.tokens.sign(Claims {
        person,
        scope,
        expires_at: expires,
        partner,
    });
    let expires_at = OffsetDateTime::from_unix_timestamp(expires)
        .map(rfc3339)
        .unwrap_or_default();
    respond(
        StatusCode::CREATED,
        &json!({ "token": token, "expires_at": expires_at, "scope": scope.as_str() }),
    )
}

/// `POST /v1/registration/sessions`: ID number and NHI card number, checked against the
/// registry, give a short-lived `registration` token. A mismatch never says which part.
pub async fn create_session<S, B>(
    app: &App<S>,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let _ = headers;
    let req: SessionRequest = read_json(app, body).await?;
    let id = parse_id_number(&req.id_number)?;
    let card = parse_nhi_card(&req.nhi_card)?;
    check_captcha(app, &req.captcha).await?;
    // Counted apart from the login failures: the ID and the card number are printed on
    // the card and prove no secret, so mismatches here must neither unlock a login
    // lockout (a success clears only this count) nor lock the person's logins.
    let gate = super::login::Gates::check(app, peer, &format!("regid:{}", id.packed())).await?;
    let person = app.identity.store.person_by_id(id).await?;
    if person.is_none_or(|p| p.nhi_card != card) {
        gate.failed(app).await?;
        metrics::counter!(m::LOGINS, "method" => "registration", "outcome" => "mismatch")
            .increment(1);
        return Err(Problem::new(
            Code::IdentityMismatch,
            "the ID number and the NHI card number do not match our records",
        ));
    }
    gate.succeeded(app).await?;
    metrics::counter!(m::LOGINS, "method" => "registration", "outcome" => "ok").increment(1);
    Ok(token_response(
        app,
        id,
        Scope::Registration,
        None,
        app.identity.config.registration_token_ttl,
    ))
}

/// The registration form of a request body, validated (422 naming the field otherwise).
async fn form<S, B>(app: &App<S>, body: B) -> Result<crate::identity::RegistrationForm, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let form: RawForm = read_json(app, body).await?;
    form.validate().map_err(|e| {
        let mut p = Problem::new(Code::InvalidRequest, e.to_string()).with("field", json!(e.field));
        if !e.choices.is_empty() {
            p = p.with("choices", json!(e.choices));
        }
        p
    })
}

fn registrant<S: Store>(app: &App<S>, headers: &HeaderMap) -> Result<IdNumber, Problem> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    Ok(authenticate(app, headers, &[Scope::Registration], now)?.person)
}

/// A registration write: the token, then the per-person write rate (the booking rate:
/// a person registers, modifies or cancels a few times, a script thousands).
fn registrant_writing<S: Store>(app: &App<S>, headers: &HeaderMap) -> Result<IdNumber, Problem> {
    let person = registrant(app, headers)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if !app.rate.allow(person.packed(), now, None) {
        return Err(Problem::new(
            Code::RateLimited,
            "too many registration changes from this person",
        )
        .retry_after(1));
    }
    Ok(person)
}

fn not_registered() -> Problem {
    Problem::new(Code::NotRegistered, "there is no live registration")
}

/// `POST /v1/me/registration`
pub async fn register<S, B>(
    app: &App<S>,
    headers: &HeaderMap,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let person = registrant_writing(app, headers)?;
    let form = form(app, body).await?;
    match app
        .identity
        .store
        .register(person, form, OffsetDateTime::now_utc())
        .await?
    {
        RegisterOutcome::Registered(r) => {
            counted("register", "ok");
            Ok(respond(StatusCode::CREATED, &view(&r)))
        }
        RegisterOutcome::AlreadyRegistered(r) => {
            counted("register", "already-registered");
            Err(Problem::new(
                Code::AlreadyRegistered,
                "this person already holds a live registration; modify it instead",
            )
            .with(
                "registration",
                serde_json::to_value(view(&r)).unwrap_or_default(),
            ))
        }
    }
}

/// `GET /v1/me/registration`
pub async fn get<S: Store>(app: &App<S>, headers: &HeaderMap) -> Result<HttpResponse, Problem> {
    let person = registrant(app, headers)?;
    match app.identity.store.registration(person).await? {
        Some(r) => Ok(respond(StatusCode::OK, &view(&r))),
        None => Err(not_registered()),
    }
}

/// `PUT /v1/me/registration`: the serial is kept.
pub async fn modify<S, B>(
    app: &App<S>,
    headers: &HeaderMap,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let person = registrant_writing(app, headers)?;
    let form = form(app, body).await?;
    match app
        .identity
        .store
        .modify(person, form, OffsetDateTime::now_utc())
        .await?
    {
        Some(r) => {
            counted("modify", "ok");
            Ok(respond(StatusCode::OK, &view(&r)))
        }
        None => {
            counted("modify", "not-registered");
            Err(not_registered())
        }
    }
}

/// `DELETE /v1/me/registration`: kept in the history, never erased.
pub async fn cancel<S: Store>(app: &App<S>, headers: &HeaderMap) -> Result<HttpResponse, Problem> {
    let person = registrant_writing(app, headers)?;
    match app
        .identity
        .store
        .cancel(person, OffsetDateTime::now_utc())
        .await?
    {
        Some(_) => {
            counted("cancel", "ok");
            Ok(empty(StatusCode::NO_CONTENT))
        }
        None => {
            counted("cancel", "not-registered");
            Err(not_registered())
        }
    }
}

//! Login handlers: the booking login (card + password, or the NHI app's one-time code),
//! the kiosk login, and the failure gates both share.
//!
//! Every wrong factor answers the same `401 login-failed`: an unknown card, a wrong
//! password, an unknown ID, a wrong or reused code. An unknown card still costs one
//! password hash, so timing does not tell either. Failures are counted per account and
//! per client address in the identity store, so every instance throttles alike.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Instant;

use bytes::Bytes;
use governor::{Quota, RateLimiter};
use http::{HeaderMap, StatusCode, header};
use hyper::body::Body;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::problem::{Code, Problem};
use super::registration::{CaptchaAnswer, check_captcha, token_response};
use super::request::{
    HttpResponse, authenticate_admin, parse_id_number, parse_nhi_card, read_json, respond,
};
use crate::app::App;
use crate::domain::IdNumber;
use crate::identity::login::Gate;
use crate::identity::partner::{self, Partner, PartnerKind};
use crate::identity::{InsuredPerson, NhiCard, otp, password};
use crate::metrics as m;
use crate::store::Store;
use crate::token::Scope;

/// The failure subjects of one attempt: its account and its client address.
pub struct Gates {
    account: String,
    address: Option<String>,
}

impl Gates {
    /// Begins an attempt: refused while the address is throttled, or while the account is
    /// throttled or locked, before any password is hashed, so a locked account costs
    /// nothing. Otherwise the attempt is counted against the account at once (a success
    /// clears it), so parallel attempts cannot slip past the lock.
    pub async fn check<S: Store>(
        app: &App<S>,
        peer: Option<IpAddr>,
        account: &str,
    ) -> Result<Gates, Problem> {
        let policy = app.identity.config.login;
        let store = &app.identity.store;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let address = peer.map(|ip| format!("addr:{ip}"));
        if let Some(a) = &address
            && let Gate::Throttled { retry_after } | Gate::Locked { retry_after } =
                policy.address(store.failures(a.clone(), now).await?, now)
        {
            metrics::counter!(m::LOGIN_LOCKOUTS, "subject" => "address").increment(1);
            return Err(Problem::new(
                Code::RateLimited,
                "too many failed attempts from this address; wait and try again",
            )
            .retry_after(retry_after));
        }
        match store.attempt(account.to_string(), now, policy).await? {
            Gate::Open => Ok(Gates {
                account: account.to_string(),
                address,
            }),
            Gate::Throttled { retry_after } | Gate::Locked { retry_after } => {
                metrics::counter!(m::LOGIN_LOCKOUTS, "subject" => "account").increment(1);
                Err(Problem::new(
                    Code::AccountLocked,
                    "too many failed logins for this account; wait and try again",
                )
                .retry_after(retry_after))
            }
        }
    }

    /// The attempt failed: it is already counted against the account; count it against
    /// the address too.
    pub async fn failed<S: Store>(&self, app: &App<S>) -> Result<(), Problem> {
        if let Some(a) = &self.address {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let keep = app.identity.config.login.keep_seconds();
            app.identity
                .store
                .record_failure(a.clone(), now, keep)
                .await?;
        }
        Ok(())
    }

    /// A success clears the account's failures (not the address's: one good login
    /// from a shared address does not excuse the failures of others).
    pub async fn succeeded<S: Store>(&self, app: &App<S>) -> Result<(), Problem> {
        app.identity
            .store
            .clear_failures(self.account.clone())
            .await?;
        Ok(())
    }
}

/// A turn on the identity CPU pool: admitted at once or refused with `503 overloaded`
/// when `--hashing-queue` requests already wait, then at most `--hashing-threads` run.
/// Both permits are held until the work is done.
pub async fn cpu_turn<S: Store>(
    app: &App<S>,
) -> Result<
    (
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    ),
    Problem,
> {
    let admitted = app
        .identity
        .cpu_admission
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            metrics::counter!(m::LOGIN_LOCKOUTS, "subject" => "queue").increment(1);
            Problem::new(
                Code::Overloaded,
                "too many logins and captchas waiting; retry shortly",
            )
            .retry_after(1)
        })?;
    let running = app
        .identity
        .cpu_pool
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Problem::new(Code::Overloaded, "shutting down").retry_after(1))?;
    Ok((admitted, running))
}

/// Verifies a card password on the hashing pool: at most `--hashing-threads` at once,
/// off the request threads. `None` hash: an unknown card, which costs the same.
async fn password_matches<S: Store>(
    app: &App<S>,
    hash: Option<String>,
    given: String,
) -> Result<bool, Problem> {
    let started = Instant::now();
    let _turn = cpu_turn(app).await?;
    let params = app.identity.config.password;
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => password::verify(&h, &given),
        None => {
            password::burn(&given, params);
            false
        }
    })
    .await
    .map_err(|_| Problem::new(Code::Internal, "password check failed"))?;
    metrics::histogram!(m::PASSWORD_HASH_SECONDS).record(started.elapsed().as_secs_f64());
    Ok(ok)
}

fn login_failed() -> Problem {
    Problem::new(
        Code::LoginFailed,
        "the login details are not correct; check what you entered",
    )
}

fn counted(method: &'static str, outcome: &'static str) {
    metrics::counter!(m::LOGINS, "method" => method, "outcome" => outcome).increment(1);
}

#[derive(Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
enum LoginRequest {
    CardPassword {
        nhi_card: String,
        password: String,
        captcha: CaptchaAnswer,
    },
    AppOtp {
        id_number: String,
        otp: String,
        captcha: CaptchaAnswer,
    },
}

fn valid_password(p: &str) -> Result<(), Problem> {
    if p.is_empty() || p.len() > password::MAX_PASSWORD_BYTES {
        return Err(Problem::new(
            Code::InvalidRequest,
            format!(
                "password must be 1 to {} bytes",
                password::MAX_PASSWORD_BYTES
            ),
        ));
    }
    Ok(())
}

/// Card + password: the person of the card, if the password matches.
async fn card_password<S: Store>(
    app: &App<S>,
    peer: Option<IpAddr>,
    method: &'static str,
    card: NhiCard,
    given: String,
) -> Result<InsuredPerson, Problem> {
    let person = app.identity.store.person_by_card(card).await?;
    // An unknown card is counted under the card, a known one under its person.
    let account = match &person {
        Some(p) => format!("acct:{}", p.id_number.packed()),
        None => format!("card:{}", card.packed()),
    };
    let gates = Gates::check(app, peer, &account).await?;
    let hash = person.as_ref().and_then(|p| p.password_hash.clone());
    let ok = password_matches(app, hash, given).await?;
    match person {
        Some(p) if ok => {
            gates.succeeded(app).await?;
            counted(method, "ok");
            Ok(p)
        }
        _ => {
            gates.failed(app).await?;
            counted(method, "failed");
            Err(login_failed())
        }
    }
}

/// ID number + the NHI app's code: the person, if the code is right and unused.
async fn app_otp<S: Store>(
    app: &App<S>,
    peer: Option<IpAddr>,
    id: IdNumber,
    code: &str,
) -> Result<InsuredPerson, Problem> {
    let gates = Gates::check(app, peer, &format!("acct:{}", id.packed())).await?;
    let person = app.identity.store.person_by_id(id).await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let step = person
        .as_ref()
        .and_then(|p| p.otp_secret.as_deref())
        .and_then(|s| otp::parse_secret(s).ok())
        .and_then(|secret| otp::verify(&secret, code, now.max(0) as u64));
    // A code is accepted once: the mark lives until its step (and the skew window) ends.
    let fresh = match step {
        Some(step) => {
            app.identity
                .store
                .use_once(
                    format!("otp:{}:{step}", id.packed()),
                    (step as i64 + 2) * 30,
                )
                .await?
        }
        None => false,
    };
    match person {
        Some(p) if fresh => {
            gates.succeeded(app).await?;
            counted("app-otp", "ok");
            Ok(p)
        }
        _ => {
            gates.failed(app).await?;
            counted("app-otp", if step.is_some() { "reused" } else { "failed" });
            Err(login_failed())
        }
    }
}

/// `POST /v1/sessions`: the booking login.
pub async fn create<S, B>(
    app: &App<S>,
    peer: Option<IpAddr>,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let req: LoginRequest = read_json(app, body).await?;
    let person = match req {
        LoginRequest::CardPassword {
            nhi_card,
            password,
            captcha,
        } => {
            let card = parse_nhi_card(&nhi_card)?;
            valid_password(&password)?;
            check_captcha(app, &captcha).await?;
            card_password(app, peer, "card-password", card, password).await?
        }
        LoginRequest::AppOtp {
            id_number,
            otp,
            captcha,
        } => {
            let id = parse_id_number(&id_number)?;
            if otp.len() != 6 || !otp.bytes().all(|c| c.is_ascii_digit()) {
                return Err(Problem::new(Code::InvalidRequest, "otp must be 6 digits"));
            }
            check_captcha(app, &captcha).await?;
            app_otp(app, peer, id, &otp).await?
        }
    };
    Ok(token_response(
        app,
        person.id_number,
        Scope::Booking,
        None,
        app.identity.config.booking_token_ttl,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KioskRequest {
    terminal: String,
    nhi_card: String,
    password: String,
}

fn partner_key(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("partner").then(|| key.trim())
}

/// Whether the partner may log in one more person now (its rate, in this instance).
fn partner_allows<S: Store>(app: &App<S>, p: &Partner) -> bool {
    let rate = NonZeroU32::new(p.rate_per_second).unwrap_or(NonZeroU32::MIN);
    let mut entry = app
        .identity
        .partner_limits
        .entry(p.partner.clone())
        .or_insert_with(|| (rate.get(), RateLimiter::direct(Quota::per_second(rate))));
    if entry.0 != rate.get() {
        *entry = (rate.get(), RateLimiter::direct(Quota::per_second(rate)));
    }
    entry.1.check().is_ok()
}

/// `POST /v1/kiosk/sessions`: a partner's terminal logs a person in with the card in its
/// reader and the password typed at it; no captcha (the card is physically present).
pub async fn kiosk<S, B>(
    app: &App<S>,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    body: B,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let unauth = || {
        Problem::new(
            Code::Unauthenticated,
            "an Authorization: Partner <key> header with a registered key is required",
        )
        .with("reason", json!("partner"))
    };
    let key = partner_key(headers).ok_or_else(unauth)?;
    let partner = app
        .identity
        .store
        .partner_by_key(partner::key_hash(key))
        .await?
        .ok_or_else(unauth)?;
    if !partner_allows(app, &partner) {
        return Err(Problem::new(
            Code::RateLimited,
            "this partner's kiosk login rate is exceeded",
        )
        .retry_after(1));
    }
    let req: KioskRequest = read_json(app, body).await?;
    if !partner::valid_terminal_id(&req.terminal) {
        return Err(Problem::new(
            Code::InvalidRequest,
            "terminal must be 1 to 64 visible ASCII characters",
        ));
    }
    let card = parse_nhi_card(&req.nhi_card)?;
    valid_password(&req.password)?;
    let person = card_password(app, peer, "kiosk", card, req.password).await?;
    tracing::debug!(partner = %partner.partner, terminal = %req.terminal, "kiosk login");
    Ok(token_response(
        app,
        person.id_number,
        Scope::Kiosk,
        Some(partner.partner),
        app.identity.config.kiosk_token_ttl,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerRequest {
    name: String,
    kind: PartnerKind,
    rate_per_second: u32,
}

/// `PUT /v1/admin/partners/{partner}`: registers or updates a partner and issues a new
/// key (shown once; only its hash is kept, and the previous key stops working).
pub async fn put_partner<S, B>(
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
    authenticate_admin(app, headers)?;
    if !partner::valid_partner_id(id) {
        return Err(Problem::new(
            Code::InvalidRequest,
            "a partner id is 1 to 64 of A-Z a-z 0-9 - _",
        ));
    }
    let req: PartnerRequest = read_json(app, body).await?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Problem::new(
            Code::InvalidRequest,
            "name must be 1 to 100 characters",
        ));
    }
    if !(1..=100_000).contains(&req.rate_per_second) {
        return Err(Problem::new(
            Code::InvalidRequest,
            "rate_per_second must be 1 to 100000",
        ));
    }
    let key = partner::new_key()
        .map_err(|e| Problem::new(Code::Internal, format!("no randomness: {e}")))?;
    app.identity
        .store
        .put_partner(Partner {
            partner: id.to_string(),
            name: name.to_string(),
            kind: req.kind,
            rate_per_second: req.rate_per_second,
            key_hash: partner::key_hash(&key),
        })
        .await?;
    Ok(respond(
        StatusCode::OK,
        &json!({ "partner": id, "key": key, "name": name, "kind": req.kind, "rate_per_second": req.rate_per_second }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockRequest {
    id_number: String,
}

/// `POST /v1/admin/unlock`: forgets an account's login failures (a help-desk unlock).
pub async fn unlock<S, B>(
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
    let req: UnlockRequest = read_json(app, body).await?;
    let id = parse_id_number(&req.id_number)?;
    let store = &app.identity.store;
    store
        .clear_failures(format!("acct:{}", id.packed()))
        .await?;
    if let Some(p) = store.person_by_id(id).await? {
        store
            .clear_failures(format!("card:{}", p.nhi_card.packed()))
            .await?;
    }
    Ok(respond(StatusCode::OK, &json!({ "unlocked": true })))
}

//! `Problem`: every error answer, as RFC 9457 `application/problem+json` with a stable
//! `code`, and the one place that maps domain and store errors to status codes.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use super::i18n::{Lang, title};
use crate::service::{Refusal, ServiceError};
use crate::store::StoreError;

/// The stable error codes clients branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    SlotFull,
    AlreadyBooked,
    NotInvited,
    WindowClosed,
    WindowNotOpen,
    UnknownSlot,
    UnknownPhase,
    UnknownBooking,
    BookingNotLive,
    InvalidRequest,
    IdempotencyKeyReused,
    Unauthenticated,
    WrongScope,
    RateLimited,
    Overloaded,
    StoreUnavailable,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    InvalidCalendar,
    Internal,
    IdentityMismatch,
    CaptchaFailed,
    AlreadyRegistered,
    NotRegistered,
    VaccineNotChosen,
    LoginFailed,
    AccountLocked,
    RequestTimeout,
    WrongSite,
    WrongDate,
    BookingCancelled,
    NotAdmitted,
}

impl Code {
    /// Every code, for the documentation test.
    pub const ALL: [Code; 33] = [
        Code::SlotFull,
        Code::AlreadyBooked,
        Code::NotInvited,
        Code::WindowClosed,
        Code::WindowNotOpen,
        Code::UnknownSlot,
        Code::UnknownPhase,
        Code::UnknownBooking,
        Code::BookingNotLive,
        Code::InvalidRequest,
        Code::IdempotencyKeyReused,
        Code::Unauthenticated,
        Code::WrongScope,
        Code::RateLimited,
        Code::Overloaded,
        Code::StoreUnavailable,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::PayloadTooLarge,
        Code::InvalidCalendar,
        Code::Internal,
        Code::IdentityMismatch,
        Code::CaptchaFailed,
        Code::AlreadyRegistered,
        Code::NotRegistered,
        Code::VaccineNotChosen,
        Code::LoginFailed,
        Code::AccountLocked,
        Code::RequestTimeout,
        Code::WrongSite,
        Code::WrongDate,
        Code::BookingCancelled,
        Code::NotAdmitted,
    ];

    /// The kebab-case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::SlotFull => "slot-full",
            Code::AlreadyBooked => "already-booked",
            Code::NotInvited => "not-invited",
            Code::NotAdmitted => "not-admitted",
            Code::WindowClosed => "window-closed",
            Code::WindowNotOpen => "window-not-open",
            Code::UnknownSlot => "unknown-slot",
            Code::UnknownPhase => "unknown-phase",
            Code::UnknownBooking => "unknown-booking",
            Code::BookingNotLive => "booking-not-live",
            Code::InvalidRequest => "invalid-request",
            Code::IdempotencyKeyReused => "idempotency-key-reused",
            Code::Unauthenticated => "unauthenticated",
            Code::WrongScope => "wrong-scope",
            Code::RateLimited => "rate-limited",
            Code::Overloaded => "overloaded",
            Code::StoreUnavailable => "store-unavailable",
            Code::NotFound => "not-found",
            Code::MethodNotAllowed => "method-not-allowed",
            Code::PayloadTooLarge => "payload-too-large",
            Code::InvalidCalendar => "invalid-calendar",
            Code::Internal => "internal",
            Code::IdentityMismatch => "identity-mismatch",
            Code::CaptchaFailed => "captcha-failed",
            Code::AlreadyRegistered => "already-registered",
            Code::NotRegistered => "not-registered",
            Code::VaccineNotChosen => "vaccine-not-chosen",
            Code::LoginFailed => "login-failed",
            Code::AccountLocked => "account-locked",
            Code::RequestTimeout => "request-timeout",
            Code::WrongSite => "wrong-site",
            Code::WrongDate => "wrong-date",
            Code::BookingCancelled => "booking-cancelled",
        }
    }

    /// A second status the code answers with where the route calls for it:
    /// `not-registered` is 404 on the registration itself and 403 on a booking write,
    /// where the registration is a precondition.
    pub fn also_answers(self) -> Option<StatusCode> {
        matches!(self, Code::NotRegistered).then_some(StatusCode::FORBIDDEN)
    }

    /// The HTTP status of the code.
    pub fn status(self) -> StatusCode {
        match self {
            Code::SlotFull | Code::AlreadyBooked | Code::BookingNotLive => StatusCode::CONFLICT,
            Code::NotInvited
            | Code::NotAdmitted
            | Code::WindowClosed
            | Code::WindowNotOpen
            | Code::WrongScope => StatusCode::FORBIDDEN,
            Code::UnknownSlot
            | Code::InvalidRequest
            | Code::IdempotencyKeyReused
            | Code::InvalidCalendar => StatusCode::UNPROCESSABLE_ENTITY,
            Code::UnknownPhase | Code::UnknownBooking | Code::NotFound => StatusCode::NOT_FOUND,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Overloaded | Code::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::IdentityMismatch => StatusCode::UNAUTHORIZED,
            Code::CaptchaFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Code::AlreadyRegistered => StatusCode::CONFLICT,
            Code::NotRegistered => StatusCode::NOT_FOUND,
            Code::VaccineNotChosen => StatusCode::FORBIDDEN,
            Code::LoginFailed => StatusCode::UNAUTHORIZED,
            Code::AccountLocked => StatusCode::TOO_MANY_REQUESTS,
            Code::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Code::WrongSite | Code::WrongDate | Code::BookingCancelled => StatusCode::CONFLICT,
        }
    }
}

/// An error answer under construction.
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: Code,
    pub detail: String,
    pub retry_after: Option<u64>,
    /// Extra members, e.g. the existing `booking` of `already-booked`.
    /// Boxed: most problems have none, and a `Problem` travels in every `Result` of the
    /// edge, so it is kept small.
    pub extra: Option<Box<Vec<(&'static str, Value)>>>,
    /// The `Allow` header of a 405.
    pub allow: Option<String>,
    /// Another status than the code's own (`not-registered` is 404 on the registration,
    /// 403 on a booking).
    pub status: Option<StatusCode>,
    /// RFC 9457 `instance`: this occurrence, by its request id.
    pub instance: Option<String>,
}

impl Problem {
    /// A problem with a detail message (English; titles are translated).
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            retry_after: None,
            extra: None,
            allow: None,
            status: None,
            instance: None,
        }
    }

    /// Names this occurrence by its request id (`instance`).
    pub fn instance(mut self, request_id: &str) -> Self {
        self.instance = Some(format!("urn:slotd:request:{request_id}"));
        self
    }

    /// Answers with `status` instead of the code's own.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds the `Allow` header (405).
    pub fn allow(mut self, methods: String) -> Self {
        self.allow = Some(methods);
        self
    }

    /// Adds `Retry-After` (seconds).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Adds a member to the body (a name given twice is written once, the last value).
    pub fn with(mut self, name: &'static str, value: Value) -> Self {
        let extra = self.extra.get_or_insert_with(Default::default);
        extra.retain(|(n, _)| *n != name);
        extra.push((name, value));
        self
    }

    /// The `application/problem+json` response.
    pub fn into_response(self, lang: Lang) -> Response<Full<Bytes>> {
        let status = self.status.unwrap_or_else(|| self.code.status());
        let body = Body {
            problem: &self,
            title: title(self.code, lang),
            status: status.as_u16(),
        };
        // Most problems fit: one allocation, no growth.
        let mut bytes = Vec::with_capacity(384);
        if serde_json::to_writer(&mut bytes, &body).is_err() {
            bytes.clear();
        }
        let mut r = Response::new(Full::new(Bytes::from(bytes)));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(
            header::CONTENT_LANGUAGE,
            HeaderValue::from_static(lang.tag()),
        );
        if let Some(secs) = self.retry_after {
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from(jittered(self.code, secs)),
            );
        }
        if let Some(v) = self.allow.and_then(|m| HeaderValue::from_str(&m).ok()) {
            h.insert(header::ALLOW, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"slotd\""),
            );
        }
        r
    }
}

/// `Retry-After` of a shed request (`overloaded`, `rate-limited`, `store-unavailable`,
/// `account-locked` is exact) spread over `secs ..= 2 × secs`, so that the clients shed
/// in one instant do not all come back in the same one. Other codes keep theirs exact
/// (a window that opens in N seconds opens in N seconds).
fn jittered(code: Code, secs: u64) -> u64 {
    match code {
        Code::Overloaded | Code::RateLimited | Code::StoreUnavailable => {
            secs + u64::from(getrandom::u32().unwrap_or(0)) % (secs + 1)
        }
        _ => secs,
    }
}

/// The problem+json body, written straight into bytes: at an opening most answers are
/// `409 slot-full`, so they are not built as a `serde_json::Value` first.
struct Body<'a> {
    problem: &'a Problem,
    title: &'static str,
    status: u16,
}

impl Serialize for Body<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let code = self.problem.code.as_str();
        let mut map = s.serialize_map(Some(
            5 + self.problem.extra.as_ref().map_or(0, |e| e.len())
                + usize::from(self.problem.instance.is_some()),
        ))?;
        map.serialize_entry("type", &format_args!("https://slotd.dev/problems/{code}"))?;
        map.serialize_entry("title", self.title)?;
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("detail", &self.problem.detail)?;
        map.serialize_entry("code", code)?;
        if let Some(instance) = &self.problem.instance {
            map.serialize_entry("instance", instance)?;
        }
        for (name, value) in self.problem.extra.iter().flat_map(|e| e.iter()) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => {
                static LIMIT: crate::log_limit::Limited = crate::log_limit::Limited::new();
                if let Some(folded) = LIMIT.check(std::time::Instant::now()) {
                    tracing::warn!(error = %m, folded, "store unavailable ({folded} more in the last 10 s)");
                }
                Problem::new(
                    Code::StoreUnavailable,
                    "the booking store is unavailable; retry shortly",
                )
                .retry_after(1)
            }
            StoreError::Calendar(c) => Problem::new(Code::InvalidCalendar, c.0),
            StoreError::Internal(m) => {
                tracing::error!(error = %m, "store failure");
                Problem::new(Code::Internal, "internal error")
            }
        }
    }
}

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(s) => s.into(),
            ServiceError::Refused(r) => {
                let detail = r.to_string();
                match r {
                    Refusal::UnknownPhase(_) => Problem::new(Code::UnknownPhase, detail),
                    Refusal::UnknownSlot(_) => Problem::new(Code::UnknownSlot, detail),
                    Refusal::WindowNotOpen { opens_in_secs } => {
                        Problem::new(Code::WindowNotOpen, detail).retry_after(opens_in_secs)
                    }
                    Refusal::WindowClosed => Problem::new(Code::WindowClosed, detail),
                    Refusal::NotRegistered => {
                        Problem::new(Code::NotRegistered, detail).with_status(StatusCode::FORBIDDEN)
                    }
                    Refusal::VaccineNotChosen(_) => Problem::new(Code::VaccineNotChosen, detail),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shed_answers_spread_their_retry_after_and_others_keep_it_exact() {
        let seen: std::collections::HashSet<u64> =
            (0..200).map(|_| jittered(Code::Overloaded, 2)).collect();
        assert!(seen.iter().all(|s| (2..=4).contains(s)), "{seen:?}");
        assert!(seen.len() > 1, "spread, not one value");
        assert!((0..50).all(|_| jittered(Code::WindowNotOpen, 37) == 37));
    }
}

//! The route table: one `match` from method and path to a handler, plus the per-request
//! envelope (load shedding, metrics, language).

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, header};
use hyper::body::Body;

use super::admission::ConnectionLane;
use super::i18n::Lang;
use super::problem::{Code, Problem};
use super::request::HttpResponse;
use super::server::PeerAddr;
use super::telemetry::Telemetry;
use super::{admin, booking, check_in, login, ops, queue, registration, registry, settlement};
use crate::app::App;
use crate::metrics as m;
use crate::store::Store;

/// One route: method, path template, and every status it can answer (also documented in
/// `openapi.json`; a test holds the two together). 405, 413, 500 and the load-shedding
/// 503 can come from any route and are documented once, not per route.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: &'static str,
    pub template: &'static str,
    pub statuses: &'static [u16],
}

/// Every route.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: "GET",
        template: "/health/live",
        statuses: &[200],
    },
    RouteSpec {
        method: "GET",
        template: "/health/ready",
        statuses: &[200, 429, 503],
    },
    RouteSpec {
        method: "GET",
        template: "/metrics",
        statuses: &[200, 429],
    },
    RouteSpec {
        method: "GET",
        template: "/openapi.json",
        statuses: &[200],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/phases",
        statuses: &[200],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/phases/{phase}/availability",
        statuses: &[200, 304, 404, 422],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/phases/{phase}/bookings",
        statuses: &[200, 201, 401, 403, 404, 409, 422, 429, 503],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/me/bookings",
        statuses: &[200, 401, 403, 422, 429, 503],
    },
    RouteSpec {
        method: "PUT",
        template: "/v1/me/bookings/{booking}",
        statuses: &[200, 401, 403, 404, 409, 422, 429, 503],
    },
    RouteSpec {
        method: "DELETE",
        template: "/v1/me/bookings/{booking}",
        statuses: &[204, 401, 403, 404, 409, 429, 503],
    },
    RouteSpec {
        method: "PUT",
        template: "/v1/admin/calendar",
        statuses: &[200, 401, 422, 503],
    },
    RouteSpec {
        method: "PUT",
        template: "/v1/admin/phases/{phase}/invitations",
        statuses: &[200, 401, 404, 422, 503],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/admin/tokens",
        statuses: &[200, 401, 422],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/admin/phases/{phase}/audit",
        statuses: &[200, 401, 404, 503],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/captcha",
        statuses: &[200],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/registration/sessions",
        statuses: &[201, 401, 422, 429, 503],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/me/registration",
        statuses: &[201, 401, 403, 409, 422, 503],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/me/registration",
        statuses: &[200, 401, 403, 404, 503],
    },
    RouteSpec {
        method: "PUT",
        template: "/v1/me/registration",
        statuses: &[200, 401, 403, 404, 422, 503],
    },
    RouteSpec {
        method: "DELETE",
        template: "/v1/me/registration",
        statuses: &[204, 401, 403, 404, 503],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/sessions",
        statuses: &[201, 401, 422, 429, 503],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/kiosk/sessions",
        statuses: &[201, 401, 422, 429, 503],
    },
    RouteSpec {
        method: "PUT",
        template: "/v1/admin/registry",
        statuses: &[200, 401, 422, 503],
    },
    RouteSpec {
        method: "PUT",
        template: "/v1/admin/partners/{partner}",
        statuses: &[200, 401, 422, 503],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/admin/unlock",
        statuses: &[200, 401, 422, 503],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/admin/registrations/audit",
        statuses: &[200, 401, 503],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/admin/phases/{phase}/settlement",
        statuses: &[200, 401, 404, 422, 503],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/admin/sms",
        statuses: &[200, 401, 503],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/sites/{site}/check-ins",
        statuses: &[200, 401, 403, 404, 409, 422, 503],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/admin/phases/{phase}/close-out",
        statuses: &[200, 401, 404, 422, 503],
    },
    RouteSpec {
        method: "HEAD",
        template: "/v1/phases/{phase}/availability",
        statuses: &[200, 304, 404, 422],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/geography",
        statuses: &[200, 304],
    },
    RouteSpec {
        method: "GET",
        template: "/{file}",
        statuses: &[200, 304, 404],
    },
    RouteSpec {
        method: "POST",
        template: "/v1/phases/{phase}/queue",
        statuses: &[201, 401, 403, 404, 429],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/phases/{phase}/queue",
        statuses: &[200, 404, 422],
    },
    RouteSpec {
        method: "GET",
        template: "/v1/admin/phases/{phase}/queue",
        statuses: &[200, 401, 404],
    },
];

/// A resolved route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Live,
    Ready,
    Metrics,
    OpenApi,
    Phases,
    Availability(&'a str),
    Book(&'a str),
    MyBookings,
    Change(&'a str),
    Cancel(&'a str),
    Calendar,
    Invitations(&'a str),
    Tokens,
    Audit(&'a str),
    Captcha,
    RegistrationSession,
    Register,
    MyRegistration,
    ModifyRegistration,
    CancelRegistration,
    Login,
    KioskLogin,
    Registry,
    Partner(&'a str),
    Unlock,
    RegistrationAudit,
    Settlement(&'a str),
    Sms,
    CheckIn(&'a str),
    CloseOut(&'a str),
    /// `HEAD` of an availability page: its headers (ETag, length), no body.
    AvailabilityHead(&'a str),
    Geography,
    /// A file of the reference web frontend (`/` is `/index.html`), GET or HEAD.
    Web(&'static str),
    Queue(&'a str),
    QueuePoll(&'a str),
    QueueAdmin(&'a str),
}

impl Route<'_> {
    /// This route's position in [`ROUTES`] (a test holds the two together).
    pub fn index(&self) -> usize {
        match self {
            Route::Live => 0,
            Route::Ready => 1,
            Route::Metrics => 2,
            Route::OpenApi => 3,
            Route::Phases => 4,
            Route::Availability(_) => 5,
            Route::Book(_) => 6,
            Route::MyBookings => 7,
            Route::Change(_) => 8,
            Route::Cancel(_) => 9,
            Route::Calendar => 10,
            Route::Invitations(_) => 11,
            Route::Tokens => 12,
            Route::Audit(_) => 13,
            Route::Captcha => 14,
            Route::RegistrationSession => 15,
            Route::Register => 16,
            Route::MyRegistration => 17,
            Route::ModifyRegistration => 18,
            Route::CancelRegistration => 19,
            Route::Login => 20,
            Route::KioskLogin => 21,
            Route::Registry => 22,
            Route::Partner(_) => 23,
            Route::Unlock => 24,
            Route::RegistrationAudit => 25,
            Route::Settlement(_) => 26,
            Route::Sms => 27,
            Route::CheckIn(_) => 28,
            Route::CloseOut(_) => 29,
            Route::AvailabilityHead(_) => 30,
            Route::Geography => 31,
            Route::Web(_) => 32,
            Route::Queue(_) => 33,
            Route::QueuePoll(_) => 34,
            Route::QueueAdmin(_) => 35,
        }
    }
}

/// What a method and path resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'a> {
    Found(Route<'a>, &'static str),
    MethodNotAllowed(&'static str),
    NotFound,
}

/// Resolves a request line. The template is the metrics label, never the raw path.
pub fn resolve<'a>(method: &Method, path: &'a str) -> Resolved<'a> {
    // No route has more than six segments: a path with more (up to the array) matches
    // none, and one with more still is cut off into the last slot, which matches none
    // either. No allocation: every request passes here.
    let mut segments = [""; 8];
    let mut n = 0;
    for (i, segment) in path.trim_start_matches('/').splitn(8, '/').enumerate() {
        segments[i] = segment;
        n = i + 1;
    }
    let (route, template): (Option<Route<'a>>, &'static str) = match (method, &segments[..n]) {
        (&Method::GET, ["health", "live"]) => (Some(Route::Live), "/health/live"),
        (_, ["health", "live"]) => (None, "/health/live"),
        (&Method::GET, ["health", "ready"]) => (Some(Route::Ready), "/health/ready"),
        (_, ["health", "ready"]) => (None, "/health/ready"),
        (&Method::GET, ["metrics"]) => (Some(Route::Metrics), "/metrics"),
        (_, ["metrics"]) => (None, "/metrics"),
        (&Method::GET, ["openapi.json"]) => (Some(Route::OpenApi), "/openapi.json"),
        (_, ["openapi.json"]) => (None, "/openapi.json"),
        (&Method::GET, ["v1", "phases"]) => (Some(Route::Phases), "/v1/phases"),
        (_, ["v1", "phases"]) => (None, "/v1/phases"),
        (&Method::GET, ["v1", "phases", p, "availability"]) => (
            Some(Route::Availability(p)),
            "/v1/phases/{phase}/availability",
        ),
        (&Method::HEAD, ["v1", "phases", p, "availability"]) => (
            Some(Route::AvailabilityHead(p)),
            "/v1/phases/{phase}/availability",
        ),
        (_, ["v1", "phases", _, "availability"]) => (None, "/v1/phases/{phase}/availability"),
        (&Method::POST, ["v1", "phases", p, "bookings"]) => {
            (Some(Route::Book(p)), "/v1/phases/{phase}/bookings")
        }
        (_, ["v1", "phases", _, "bookings"]) => (None, "/v1/phases/{phase}/bookings"),
        (&Method::GET, ["v1", "me", "bookings"]) => (Some(Route::MyBookings), "/v1/me/bookings"),
        (_, ["v1", "me", "bookings"]) => (None, "/v1/me/bookings"),
        (&Method::PUT, ["v1", "me", "bookings", b]) => {
            (Some(Route::Change(b)), "/v1/me/bookings/{booking}")
        }
        (&Method::DELETE, ["v1", "me", "bookings", b]) => {
            (Some(Route::Cancel(b)), "/v1/me/bookings/{booking}")
        }
        (_, ["v1", "me", "bookings", _]) => (None, "/v1/me/bookings/{booking}"),
        (&Method::PUT, ["v1", "admin", "calendar"]) => {
            (Some(Route::Calendar), "/v1/admin/calendar")
        }
        (_, ["v1", "admin", "calendar"]) => (None, "/v1/admin/calendar"),
        (&Method::PUT, ["v1", "admin", "phases", p, "invitations"]) => (
            Some(Route::Invitations(p)),
            "/v1/admin/phases/{phase}/invitations",
        ),
        (_, ["v1", "admin", "phases", _, "invitations"]) => {
            (None, "/v1/admin/phases/{phase}/invitations")
        }
        (&Method::POST, ["v1", "admin", "tokens"]) => (Some(Route::Tokens), "/v1/admin/tokens"),
        (_, ["v1", "admin", "tokens"]) => (None, "/v1/admin/tokens"),
        (&Method::GET, ["v1", "admin", "phases", p, "audit"]) => {
            (Some(Route::Audit(p)), "/v1/admin/phases/{phase}/audit")
        }
        (_, ["v1", "admin", "phases", _, "audit"]) => (None, "/v1/admin/phases/{phase}/audit"),
        (&Method::GET, ["v1", "captcha"]) => (Some(Route::Captcha), "/v1/captcha"),
        (_, ["v1", "captcha"]) => (None, "/v1/captcha"),
        (&Method::POST, ["v1", "registration", "sessions"]) => (
            Some(Route::RegistrationSession),
            "/v1/registration/sessions",
        ),
        (_, ["v1", "registration", "sessions"]) => (None, "/v1/registration/sessions"),
        (&Method::POST, ["v1", "me", "registration"]) => {
            (Some(Route::Register), "/v1/me/registration")
        }
        (&Method::GET, ["v1", "me", "registration"]) => {
            (Some(Route::MyRegistration), "/v1/me/registration")
        }
        (&Method::PUT, ["v1", "me", "registration"]) => {
            (Some(Route::ModifyRegistration), "/v1/me/registration")
        }
        (&Method::DELETE, ["v1", "me", "registration"]) => {
            (Some(Route::CancelRegistration), "/v1/me/registration")
        }
        (_, ["v1", "me", "registration"]) => (None, "/v1/me/registration"),
        (&Method::POST, ["v1", "sessions"]) => (Some(Route::Login), "/v1/sessions"),
        (_, ["v1", "sessions"]) => (None, "/v1/sessions"),
        (&Method::POST, ["v1", "kiosk", "sessions"]) => {
            (Some(Route::KioskLogin), "/v1/kiosk/sessions")
        }
        (_, ["v1", "kiosk", "sessions"]) => (None, "/v1/kiosk/sessions"),
        (&Method::PUT, ["v1", "admin", "registry"]) => {
            (Some(Route::Registry), "/v1/admin/registry")
        }
        (_, ["v1", "admin", "registry"]) => (None, "/v1/admin/registry"),
        (&Method::PUT, ["v1", "admin", "partners", p]) => {
            (Some(Route::Partner(p)), "/v1/admin/partners/{partner}")
        }
        (_, ["v1", "admin", "partners", _]) => (None, "/v1/admin/partners/{partner}"),
        (&Method::POST, ["v1", "admin", "unlock"]) => (Some(Route::Unlock), "/v1/admin/unlock"),
        (_, ["v1", "admin", "unlock"]) => (None, "/v1/admin/unlock"),
        (&Method::GET, ["v1", "admin", "registrations", "audit"]) => (
            Some(Route::RegistrationAudit),
            "/v1/admin/registrations/audit",
        ),
        (_, ["v1", "admin", "registrations", "audit"]) => (None, "/v1/admin/registrations/audit"),
        (&Method::POST, ["v1", "admin", "phases", p, "settlement"]) => (
            Some(Route::Settlement(p)),
            "/v1/admin/phases/{phase}/settlement",
        ),
        (_, ["v1", "admin", "phases", _, "settlement"]) => {
            (None, "/v1/admin/phases/{phase}/settlement")
        }
        (&Method::GET, ["v1", "admin", "sms"]) => (Some(Route::Sms), "/v1/admin/sms"),
        (_, ["v1", "admin", "sms"]) => (None, "/v1/admin/sms"),
        (&Method::POST, ["v1", "sites", s, "check-ins"]) => {
            (Some(Route::CheckIn(s)), "/v1/sites/{site}/check-ins")
        }
        (_, ["v1", "sites", _, "check-ins"]) => (None, "/v1/sites/{site}/check-ins"),
        (&Method::POST, ["v1", "admin", "phases", p, "close-out"]) => (
            Some(Route::CloseOut(p)),
            "/v1/admin/phases/{phase}/close-out",
        ),
        (_, ["v1", "admin", "phases", _, "close-out"]) => {
            (None, "/v1/admin/phases/{phase}/close-out")
        }
        (&Method::POST, ["v1", "phases", p, "queue"]) => {
            (Some(Route::Queue(p)), "/v1/phases/{phase}/queue")
        }
        (&Method::GET, ["v1", "phases", p, "queue"]) => {
            (Some(Route::QueuePoll(p)), "/v1/phases/{phase}/queue")
        }
        (_, ["v1", "phases", _, "queue"]) => (None, "/v1/phases/{phase}/queue"),
        (&Method::GET, ["v1", "admin", "phases", p, "queue"]) => {
            (Some(Route::QueueAdmin(p)), "/v1/admin/phases/{phase}/queue")
        }
        (_, ["v1", "admin", "phases", _, "queue"]) => (None, "/v1/admin/phases/{phase}/queue"),
        (&Method::GET, ["v1", "geography"]) => (Some(Route::Geography), "/v1/geography"),
        (_, ["v1", "geography"]) => (None, "/v1/geography"),
        (&Method::GET | &Method::HEAD, _) => match super::web::find(path) {
            Some(file) => (Some(Route::Web(file)), "/{file}"),
            None => return Resolved::NotFound,
        },
        _ => return Resolved::NotFound,
    };
    match route {
        Some(r) => Resolved::Found(r, template),
        None => Resolved::MethodNotAllowed(template),
    }
}

/// The routes a flood uses, limited per client address.
fn flooded(route: &Route<'_>) -> bool {
    matches!(
        route,
        // Probes take no place in the in-flight budget, and readiness asks the store:
        // the per-address limit bounds them instead (a load balancer probes a few times
        // a second).
        Route::Ready
            | Route::Metrics
            | Route::Book(_)
            | Route::Change(_)
            | Route::Cancel(_)
            | Route::Availability(_)
            | Route::AvailabilityHead(_)
            | Route::Captcha
            | Route::Login
            | Route::KioskLogin
            | Route::RegistrationSession
            | Route::MyBookings
            | Route::Queue(_)
            | Route::QueuePoll(_)
    )
}

/// The client's address (behind trusted proxies, the one they name).
fn client_address<S: Store, B>(app: &App<S>, req: &Request<B>) -> std::net::IpAddr {
    let peer = req
        .extensions()
        .get::<PeerAddr>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |p| p.0);
    super::address::client_ip(peer, req.headers(), &app.limits.trusted_proxies)
}

/// Whether a route is exempt from load shedding: probes and scrapes must answer
/// precisely when the server is busiest. They are also all the overflow lane serves.
fn exempt(route: &Route<'_>) -> bool {
    matches!(route, Route::Live | Route::Ready | Route::Metrics)
}

/// Dispatches within `--request-timeout`, except on admin routes, where an import or a
/// settlement may take minutes. A request cut off here ends as one whose client went
/// away: a booking may have been committed, and a retry with its `Idempotency-Key`
/// gets the original answer.
async fn dispatch_within<S, B>(
    app: &App<S>,
    route: Route<'_>,
    req: Request<B>,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if ROUTES[route.index()].template.starts_with("/v1/admin/") {
        return dispatch(app, route, req).await;
    }
    let limit = app.limits.request_timeout;
    // A handler that answers without waiting never arms the timer.
    match tokio::time::timeout(limit, dispatch(app, route, req)).await {
        Ok(answer) => answer,
        Err(_) => Err(Problem::new(
            Code::Overloaded,
            format!("no answer within {} s; retry shortly", limit.as_secs()),
        )
        .retry_after(1)),
    }
}

async fn dispatch<S, B>(
    app: &App<S>,
    route: Route<'_>,
    req: Request<B>,
) -> Result<HttpResponse, Problem>
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let query = req.uri().query().map(str::to_owned);
    let client = client_address(app, &req);
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(PeerAddr(client));
    let h = &parts.headers;
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0);
    match route {
        Route::Live => Ok(ops::live()),
        Route::Ready => ops::ready(app).await,
        Route::Metrics => Ok(ops::metrics(app)),
        Route::OpenApi => Ok(ops::openapi()),
        Route::Phases => Ok(ops::phases(app)),
        Route::Geography => Ok(ops::geography(app, h)),
        Route::Queue(p) => queue::join(app, p, h).await,
        Route::QueuePoll(p) => queue::poll(app, p, h),
        Route::QueueAdmin(p) => queue::admin(app, p, h).await,
        Route::Web(file) if app.limits.web => Ok(super::web::serve(file, h)),
        Route::Web(_) => Err(Problem::new(
            Code::NotFound,
            "the web frontend is off (--no-web)",
        )),
        Route::Availability(p) | Route::AvailabilityHead(p) => {
            ops::availability(app, p, query.as_deref(), h)
        }
        Route::Book(p) => booking::create(app, p, h, body).await,
        Route::MyBookings => booking::list(app, h, query.as_deref()).await,
        Route::Change(b) => booking::change(app, b, h, body).await,
        Route::Cancel(b) => booking::cancel(app, b, h).await,
        Route::Calendar => admin::put_calendar(app, h, body).await,
        Route::Invitations(p) => admin::put_invitations(app, p, h, body).await,
        Route::Tokens => admin::post_token(app, h, body).await,
        Route::Audit(p) => admin::get_audit(app, p, query.as_deref(), h).await,
        Route::Captcha => registration::captcha(app).await,
        Route::RegistrationSession => registration::create_session(app, h, peer, body).await,
        Route::Register => registration::register(app, h, body).await,
        Route::MyRegistration => registration::get(app, h).await,
        Route::ModifyRegistration => registration::modify(app, h, body).await,
        Route::CancelRegistration => registration::cancel(app, h).await,
        Route::Login => login::create(app, peer, body).await,
        Route::KioskLogin => login::kiosk(app, h, peer, body).await,
        Route::Registry => registry::put(app, h, body).await,
        Route::Partner(p) => login::put_partner(app, p, h, body).await,
        Route::Unlock => login::unlock(app, h, body).await,
        Route::RegistrationAudit => registry::audit(app, h).await,
        Route::Settlement(p) => settlement::settle(app, p, query.as_deref(), h).await,
        Route::Sms => settlement::outbox(app, h).await,
        Route::CheckIn(s) => check_in::create(app, s, h, body).await,
        Route::CloseOut(p) => settlement::close_out(app, p, query.as_deref(), h, body).await,
    }
}

/// The sampled access log: one request in `--access-log-sample` at info, 5xx at warn
/// (the first of each 10 s, with the count of the rest). Route templates only: never a path with a person's booking id in it.
fn access_log<S: Store>(
    app: &App<S>,
    method: &Method,
    route: Option<usize>,
    status: u16,
    seconds: f64,
    request_id: &str,
) {
    static SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEEN.fetch_add(1, Ordering::Relaxed);
    let sample = app.limits.access_log_sample;
    let template = route.map_or("unmatched", |i| ROUTES[i].template);
    if status >= 500 {
        // Folded: a flood shed with 503 must not write a line per request (the cause of a
        // 500 is logged at error where it happens).
        static FIVE_XX: crate::log_limit::Limited = crate::log_limit::Limited::new();
        if let Some(folded) = FIVE_XX.check(std::time::Instant::now()) {
            tracing::warn!(request_id, %method, route = template, status, ms = seconds * 1e3, folded, "request ({folded} more 5xx in the last 10 s)");
        }
    } else if sample > 0 && n.is_multiple_of(sample) {
        tracing::info!(request_id, %method, route = template, status, ms = seconds * 1e3, sampled = sample, "request");
    }
}

/// Decrements the in-flight count however the request ends (also on cancellation).
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize, &'a Telemetry);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        self.1.in_flight.decrement(1.0);
    }
}

/// Serves one request: resolve, shed load, dispatch, record metrics.
pub async fn handle<S, B>(app: &App<S>, req: Request<B>) -> HttpResponse
where
    S: Store,
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let telemetry = Telemetry::get();
    let lang = Lang::negotiate(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // Beyond --max-connections: probes and scrapes only, then the connection closes.
    let overflow = req.extensions().get::<ConnectionLane>() == Some(&ConnectionLane::Overflow);
    let http1 = req.version() < http::Version::HTTP_2;
    let request_id = super::request_id::of(req.headers());
    let origin = super::cors::allowed(req.headers(), &app.limits.cors_origins).cloned();
    // A CORS preflight from an allowed origin, for a route that exists.
    if let (Some(o), Some(asked)) = (
        &origin,
        super::cors::preflight_method(&method, req.headers()),
    ) && let Resolved::Found(_, t) | Resolved::MethodNotAllowed(t) = resolve(&asked, &path)
    {
        return super::cors::preflight(o, t);
    }
    let (result, route_index) = match resolve(&method, &path) {
        Resolved::NotFound => (
            Err(Problem::new(Code::NotFound, format!("no route {path}"))),
            None,
        ),
        Resolved::MethodNotAllowed(t) => {
            let allowed: Vec<&str> = ROUTES
                .iter()
                .filter(|r| r.template == t)
                .map(|r| r.method)
                .collect();
            let problem = Problem::new(
                Code::MethodNotAllowed,
                format!("{method} is not allowed on {t}"),
            )
            .allow(allowed.join(", "));
            (Err(problem), ROUTES.iter().position(|r| r.template == t))
        }
        Resolved::Found(route, _) if overflow && !exempt(&route) => (
            Err(
                Problem::new(Code::Overloaded, "the server is at its connection limit")
                    .retry_after(1),
            ),
            Some(route.index()),
        ),
        Resolved::Found(route, _)
            if flooded(&route) && !app.addresses.allow(client_address(app, &req)) =>
        {
            (
                Err(
                    Problem::new(Code::RateLimited, "too many requests from this address")
                        .retry_after(1),
                ),
                Some(route.index()),
            )
        }
        // Probes and scrapes neither take a place in the budget nor are shed by it: a
        // probe must not cost a booking its place, and it reports on the others.
        Resolved::Found(route, _) if exempt(&route) => {
            let index = route.index();
            (dispatch_within(app, route, req).await, Some(index))
        }
        Resolved::Found(route, _) => {
            // Relaxed would do for a counter; AcqRel keeps the count exact across cores
            // at the limit, where it decides who is shed.
            let now = app.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
            telemetry.in_flight.increment(1.0);
            let _guard = InFlight(&app.in_flight, telemetry);
            let index = route.index();
            if now > app.limits.max_in_flight {
                (
                    Err(
                        Problem::new(Code::Overloaded, "too many requests in flight")
                            .retry_after(1),
                    ),
                    Some(index),
                )
            } else {
                (dispatch_within(app, route, req).await, Some(index))
            }
        }
    };
    let mut response = result.unwrap_or_else(|p| p.instance(&request_id).into_response(lang));
    if let Ok(v) = header::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(super::request_id::HEADER, v);
    }
    if overflow && http1 {
        // An overflow connection serves one request: the place is for the next probe.
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    super::cors::decorate(
        &mut response,
        origin.as_ref(),
        !app.limits.cors_origins.is_empty(),
    );
    // Only what says it may be cached is: person data, tokens and errors are not.
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    access_log(
        app,
        &method,
        route_index,
        response.status().as_u16(),
        seconds,
        &request_id,
    );
    match route_index {
        Some(i) => telemetry.record(i, response.status().as_u16(), seconds),
        None => {
            metrics::counter!(m::HTTP_REQUESTS, "route" => "unmatched", "method" => "any", "status" => "404")
                .increment(1);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(template: &str) -> String {
        template
            .replace("{phase}", "02")
            .replace("{booking}", "b1")
            .replace("{partner}", "seven")
            .replace("{file}", "index.html")
    }

    #[test]
    fn every_listed_route_resolves_to_its_own_template() {
        for spec in ROUTES {
            let method: Method = spec.method.parse().expect("method");
            match resolve(&method, &sample(spec.template)) {
                Resolved::Found(route, t) => {
                    assert_eq!(t, spec.template);
                    assert_eq!(ROUTES[route.index()].template, spec.template);
                    assert_eq!(ROUTES[route.index()].method, spec.method);
                }
                other => panic!("{} {} resolved to {other:?}", spec.method, spec.template),
            }
        }
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        assert_eq!(resolve(&Method::GET, "/nope"), Resolved::NotFound);
        assert_eq!(
            resolve(&Method::GET, "/v1/phases/02/bookings/x"),
            Resolved::NotFound
        );
        assert_eq!(
            resolve(&Method::DELETE, "/v1/phases"),
            Resolved::MethodNotAllowed("/v1/phases")
        );
    }
}

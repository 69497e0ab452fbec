//! `spawn_app`: a real slotd server on port 0 with a test calendar, and a typed client.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use slotd::config::Config;
use slotd::domain::{Calendar, IdNumber, Phase, PhaseId, SiteId, Slot, SlotId, synthetic_id};
use slotd::store::contract;
use slotd::token::{Claims, Scope, TokenKey};
use time::{Duration as TDuration, OffsetDateTime};
use tokio::sync::oneshot;

pub const ADMIN: &str = "test-admin-secret";
pub const SECRET: &str = "test-token-secret";

/// A running server; dropping it shuts the server down.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: Client<HttpConnector, Full<Bytes>>,
    pub keys: TokenKey,
    /// Kept so the journal directory lives as long as the server.
    _data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// An answer: status, headers and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The problem `code` of an error answer; empty for a success (whose `code` is the
    /// booking's human code).
    pub fn code(&self) -> &str {
        if self.status.is_success() {
            return "";
        }
        self.body["code"].as_str().unwrap_or("")
    }
}

/// The contract fixture plus: `F01`..`F20` (capacity 10) in the open phase, `P3` not
/// open yet (slot `R`), `P4` closed (slot `S`).
pub fn calendar(now: OffsetDateTime) -> Calendar {
    let mut cal = contract::fixture(now);
    let slot = |id: &str, cap| Slot {
        id: SlotId::parse(id).expect("id"),
        site: SiteId::parse("S2").expect("id"),
        date: "2021-07-17".into(),
        period: "13:00-16:00".into(),
        vaccine: "AZ".into(),
        capacity: cap,
    };
    for n in 1..=20 {
        cal.phases[0].slots.push(slot(&format!("F{n:02}"), 10));
    }
    let phase = |id: &str, opens: OffsetDateTime, closes: OffsetDateTime, s: &str| Phase {
        id: PhaseId::parse(id).expect("id"),
        name: id.into(),
        vaccines: vec!["AZ".into()],
        opens_at: opens,
        closes_at: closes,
        invitation_required: false,
        registration_required: false,
        eligibility: None,
        doses: None,
        waiting_room: None,
        slots: vec![slot(s, 10)],
    };
    cal.phases.push(phase(
        "P3",
        now + TDuration::hours(1),
        now + TDuration::hours(2),
        "R",
    ));
    cal.phases.push(phase(
        "P4",
        now - TDuration::hours(2),
        now - TDuration::hours(1),
        "S",
    ));
    cal
}

/// Starts a server with the test calendar and a writable journal; `tune` may adjust the
/// configuration.
pub async fn spawn_app_with(tune: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("tempdir");
    let file = data_dir.path().join("calendar.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&calendar(OffsetDateTime::now_utc())).expect("json"),
    )
    .expect("write calendar");
    let mut config = Config {
        data_dir: data_dir.path().join("store"),
        calendar: Some(file),
        admin_token: Some(ADMIN.into()),
        token_secret: Some(SECRET.into()),
        ..Config::default()
    };
    config.limits.person_write_rate = 1_000;
    config.limits.person_read_rate = 1_000;
    // Every test client is 127.0.0.1 (one test checks the limit itself).
    config.limits.address_rate = 0;
    config.limits.max_connections_per_address = 0;
    tune(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        slotd::bootstrap::serve_on(config, listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("server runs");
    });
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let app = TestApp {
        addr,
        client,
        keys: TokenKey::new(SECRET.as_bytes()),
        _data_dir: data_dir,
        stop: Some(stop),
        server: Some(server),
    };
    app.wait_ready().await;
    app
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

impl TestApp {
    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(a) = self
                .try_send(Method::GET, "/health/ready", None, None, &[])
                .await
                && a.status == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("server did not become ready");
    }

    /// A booking token for `person`.
    pub fn token(&self, person: IdNumber) -> String {
        self.token_with(person, Scope::Booking, 3600)
    }

    pub fn token_with(&self, person: IdNumber, scope: Scope, ttl: i64) -> String {
        self.keys.sign(Claims {
            person,
            scope,
            expires_at: OffsetDateTime::now_utc().unix_timestamp() + ttl,
            partner: None,
        })
    }

    /// A token for the `n`th synthetic person.
    pub fn person(&self, n: u64) -> String {
        self.token(synthetic_id(n))
    }

    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, hyper_util::client::legacy::Error> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{}", self.addr, path));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .expect("request");
        let res = self.client.request(req).await?;
        let (parts, body) = res.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_send(method, path, token, body, headers)
            .await
            .expect("the server answers")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(Method::GET, path, token, None, &[]).await
    }

    pub async fn book(&self, token: &str, phase: &str, slot: &str) -> Answer {
        let body = Bytes::from(json!({ "slot": slot }).to_string());
        self.send(
            Method::POST,
            &format!("/v1/phases/{phase}/bookings"),
            Some(token),
            Some(body),
            &[],
        )
        .await
    }

    pub async fn change(&self, token: &str, booking: &str, slot: &str) -> Answer {
        let body = Bytes::from(json!({ "slot": slot }).to_string());
        self.send(
            Method::PUT,
            &format!("/v1/me/bookings/{booking}"),
            Some(token),
            Some(body),
            &[],
        )
        .await
    }

    pub async fn cancel(&self, token: &str, booking: &str) -> Answer {
        self.send(
            Method::DELETE,
            &format!("/v1/me/bookings/{booking}"),
            Some(token),
            None,
            &[],
        )
        .await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| Bytes::from(b.to_string()));
        self.send(method, path, Some(ADMIN), body, &[]).await
    }

    /// The audit of a phase; panics unless it is clean.
    pub async fn assert_audit_clean(&self, phase: &str) -> Value {
        let a = self
            .admin(
                Method::GET,
                &format!("/v1/admin/phases/{phase}/audit?journey=true"),
                None,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        assert_eq!(
            a.body["ok"],
            json!(true),
            "breaches: {}",
            a.body["breaches"]
        );
        a.body
    }

    /// Remaining seats of a slot according to the audit (exact, not the snapshot).
    pub async fn remaining(&self, phase: &str, slot: &str) -> u64 {
        let audit = self.assert_audit_clean(phase).await;
        audit["slots"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["slot"] == slot))
            .and_then(|s| s["remaining"].as_u64())
            .expect("slot in audit")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

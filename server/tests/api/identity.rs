//! Registration, logins and kiosks over HTTP: the citizen journey before the booking.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use slotd::domain::{IdNumber, synthetic_id};
use slotd::identity::otp;
use slotd::token::Scope;
use time::OffsetDateTime;

use crate::helpers::{ADMIN, Answer, TestApp, spawn_app_with};

const CAPTCHA_SECRET: &str = "test-captcha-secret";
const PASSWORD: &str = "card-pass-1";
/// Base32 of "12345678901234567890", the RFC 6238 test secret.
const OTP_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// An app with captchas in test mode, cheap hashes, and a strict lockout.
async fn app() -> TestApp {
    spawn_app_with(|c| {
        c.identity.captcha_test_secret = Some(CAPTCHA_SECRET.into());
        c.identity.password.memory_kib = 64;
        c.identity.password.iterations = 1;
        c.identity.login.throttle_after = 3;
        c.identity.login.lock_after = 3;
    })
    .await
}

fn card(n: u64) -> String {
    format!("{:012}", 300_000_000_000 + n)
}

/// The test-mode answer, computed as the contract defines it.
fn answer(id: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(CAPTCHA_SECRET.as_bytes()).expect("key");
    m.update(id.as_bytes());
    m.finalize().into_bytes()[..3]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> Answer {
    app.send(
        Method::POST,
        path,
        token,
        Some(Bytes::from(body.to_string())),
        &[],
    )
    .await
}

async fn captcha(app: &TestApp) -> Value {
    let c = app.get("/v1/captcha", None).await;
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.body);
    assert!(
        c.body["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("data:image/png;base64,"))
    );
    let id = c.body["captcha"].as_str().expect("id").to_string();
    json!({ "id": id, "answer": answer(&id) })
}

/// Imports persons `ns` with the test password and OTP secret.
async fn import(app: &TestApp, ns: &[u64]) {
    let body: String = ns
        .iter()
        .map(|&n| {
            json!({
                "id_number": synthetic_id(n).to_string(), "nhi_card": card(n),
                "birth_date": "1950-03-01", "categories": [9],
                "password": PASSWORD, "otp_secret": OTP_SECRET,
            })
            .to_string()
                + "\n"
        })
        .collect();
    let a = app
        .send(
            Method::PUT,
            "/v1/admin/registry",
            Some(ADMIN),
            Some(Bytes::from(body)),
            &[("content-type", "application/x-ndjson")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["persons"], json!(ns.len()));
}

async fn registration_token(app: &TestApp, n: u64) -> String {
    let body = json!({ "id_number": synthetic_id(n).to_string(), "nhi_card": card(n), "captcha": captcha(app).await });
    let a = post(app, "/v1/registration/sessions", None, body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["scope"], json!("registration"));
    a.body["token"].as_str().expect("token").to_string()
}

async fn card_login(app: &TestApp, n: u64, password: &str) -> Answer {
    let body = json!({ "method": "card-password", "nhi_card": card(n), "password": password, "captcha": captcha(app).await });
    post(app, "/v1/sessions", None, body).await
}

fn form(vaccines: Option<&[&str]>) -> Value {
    let mut f = json!({ "name": " 王小明 ", "mobile": "0912345678", "county": "台北市", "district": "中正區" });
    if let Some(v) = vaccines {
        f["vaccines"] = json!(v);
    }
    f
}

#[tokio::test]
async fn a_person_registers_modifies_cancels_and_registers_again() {
    let app = app().await;
    import(&app, &[1]).await;
    let token = registration_token(&app, 1).await;
    let first = post(&app, "/v1/me/registration", Some(&token), form(None)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let serial = first.body["serial"].as_u64().expect("serial");
    assert_eq!(
        first.body["vaccines"],
        json!(["AZ", "Moderna"]),
        "both ticked by default"
    );
    assert_eq!(first.body["name"], json!("王小明"));
    assert_eq!(first.body["county"], json!("臺北市"));
    assert_eq!(first.body["mobile"], json!("0912***678"));
    let id = synthetic_id(1).to_string();
    assert_eq!(
        first.body["id_number"],
        json!(format!("{}*****{}", &id[..3], &id[8..]))
    );
    let again = post(&app, "/v1/me/registration", Some(&token), form(None)).await;
    assert_eq!(again.code(), "already-registered");
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["registration"]["serial"], json!(serial));

    let put = app
        .send(
            Method::PUT,
            "/v1/me/registration",
            Some(&token),
            Some(Bytes::from(form(Some(&["Moderna"])).to_string())),
            &[],
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["serial"], json!(serial), "modify keeps the serial");
    assert_eq!(put.body["vaccines"], json!(["Moderna"]));

    let del = app
        .send(
            Method::DELETE,
            "/v1/me/registration",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/v1/me/registration", Some(&token)).await.code(),
        "not-registered"
    );
    let del = app
        .send(
            Method::DELETE,
            "/v1/me/registration",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (del.status, del.code()),
        (StatusCode::NOT_FOUND, "not-registered")
    );

    let new = post(
        &app,
        "/v1/me/registration",
        Some(&token),
        form(Some(&["AZ"])),
    )
    .await;
    assert_eq!(new.status, StatusCode::CREATED);
    assert!(new.body["serial"].as_u64().expect("serial") > serial);

    let bad = post(
        &app,
        "/v1/me/registration",
        Some(&token),
        json!({ "name": "a", "mobile": "0812345678", "county": "臺北市", "district": "中正區" }),
    )
    .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request")
    );
    assert_eq!(bad.body["field"], json!("mobile"));
    let elsewhere = post(
        &app,
        "/v1/me/registration",
        Some(&token),
        json!({ "name": "a", "mobile": "0912345678", "county": "台北市", "district": "板橋區" }),
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(elsewhere.body["field"], json!("district"));
    let choices = elsewhere.body["choices"].as_array().expect("choices");
    assert_eq!(choices.len(), 12, "臺北市's districts");
    assert!(choices.contains(&json!("中正區")));
    let audit = app
        .admin(Method::GET, "/v1/admin/registrations/audit", None)
        .await;
    assert_eq!(audit.body["ok"], json!(true), "{:?}", audit.body);
    assert_eq!(
        (audit.body["live"].clone(), audit.body["events"].clone()),
        (json!(1), json!(4))
    );
}

#[tokio::test]
async fn a_mismatched_identity_never_says_which_part_is_wrong() {
    let app = app().await;
    import(&app, &[2, 3]).await;
    let attempts = [
        (synthetic_id(2), card(3)),  // another person's card
        (synthetic_id(99), card(2)), // not in the registry
    ];
    let mut bodies = Vec::new();
    for (id, c) in attempts {
        let body =
            json!({ "id_number": id.to_string(), "nhi_card": c, "captcha": captcha(&app).await });
        let a = post(&app, "/v1/registration/sessions", None, body).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::UNAUTHORIZED, "identity-mismatch")
        );
        bodies.push(a.body["detail"].clone());
    }
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn a_captcha_is_single_use_burnt_by_a_wrong_answer_and_expires() {
    let app = app().await;
    import(&app, &[4]).await;
    let session = |c: Value| json!({ "id_number": synthetic_id(4).to_string(), "nhi_card": card(4), "captcha": c });
    let c = captcha(&app).await;
    let ok = post(&app, "/v1/registration/sessions", None, session(c.clone())).await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let reused = post(&app, "/v1/registration/sessions", None, session(c)).await;
    assert_eq!(reused.code(), "captcha-failed");

    let mut c = captcha(&app).await;
    let right = c["answer"].clone();
    c["answer"] = json!("zzzzzz");
    let wrong = post(&app, "/v1/registration/sessions", None, session(c.clone())).await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "captcha-failed")
    );
    c["answer"] = right;
    let burnt = post(&app, "/v1/registration/sessions", None, session(c)).await;
    assert_eq!(
        burnt.code(),
        "captcha-failed",
        "a wrong answer burns the challenge"
    );

    // A challenge issued (under the server's secret) 200 s ago: it expired 80 s ago.
    let issuer = slotd::identity::captcha::Captchas::new(
        crate::helpers::SECRET.as_bytes(),
        Some(CAPTCHA_SECRET.as_bytes()),
        120,
    );
    let old = issuer.issue(OffsetDateTime::now_utc().unix_timestamp() - 200);
    let expired = json!({ "id": old.id, "answer": answer(&old.id) });
    let a = post(&app, "/v1/registration/sessions", None, session(expired)).await;
    assert_eq!(a.code(), "captcha-failed");
    assert!(
        a.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired"))
    );
}

#[tokio::test]
async fn both_logins_give_a_booking_token_and_an_otp_code_works_once() {
    let app = app().await;
    import(&app, &[5]).await;
    let a = card_login(&app, 5, PASSWORD).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["scope"], json!("booking"));
    let token = a.body["token"].as_str().expect("token").to_string();
    assert!(
        !token.contains(&synthetic_id(5).to_string()),
        "no id in clear"
    );
    let mine = app.get("/v1/me/bookings", Some(&token)).await;
    assert_eq!(mine.status, StatusCode::OK);

    let secret = otp::parse_secret(OTP_SECRET).expect("secret");
    let code = otp::code_at(&secret, OffsetDateTime::now_utc().unix_timestamp() as u64);
    let login = |code: String| {
        let app = &app;
        async move {
            let body = json!({ "method": "app-otp", "id_number": synthetic_id(5).to_string(), "otp": code, "captcha": captcha(app).await });
            post(app, "/v1/sessions", None, body).await
        }
    };
    let first = login(code.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let reuse = login(code).await;
    assert_eq!(
        (reuse.status, reuse.code()),
        (StatusCode::UNAUTHORIZED, "login-failed")
    );
}

#[tokio::test]
async fn failures_lock_the_account_without_saying_which_factor_was_wrong() {
    let app = app().await;
    import(&app, &[6]).await;
    let wrong_password = card_login(&app, 6, "not-it").await;
    let unknown_card = card_login(&app, 7, PASSWORD).await;
    assert_eq!(wrong_password.code(), "login-failed");
    assert_eq!(unknown_card.code(), "login-failed");
    assert_eq!(wrong_password.body["detail"], unknown_card.body["detail"]);
    for _ in 0..2 {
        assert_eq!(card_login(&app, 6, "not-it").await.code(), "login-failed");
    }
    let locked = card_login(&app, 6, PASSWORD).await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::TOO_MANY_REQUESTS, "account-locked"),
        "even the right password waits"
    );
    assert!(locked.headers.contains_key("retry-after"));
    let unlock = app
        .admin(
            Method::POST,
            "/v1/admin/unlock",
            Some(json!({ "id_number": synthetic_id(6).to_string() })),
        )
        .await;
    assert_eq!(unlock.status, StatusCode::OK);
    assert_eq!(
        card_login(&app, 6, PASSWORD).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_kiosk_partner_logs_people_in_and_books_on_the_kiosk_channel() {
    let app = app().await;
    import(&app, &[8]).await;
    let p = app
        .admin(
            Method::PUT,
            "/v1/admin/partners/family-mart",
            Some(json!({ "name": "全家便利商店", "kind": "convenience-store", "rate_per_second": 1 })),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{:?}", p.body);
    let key = p.body["key"].as_str().expect("key").to_string();
    let kiosk = |key: String| {
        let app = &app;
        async move {
            let auth = format!("Partner {key}");
            app.send(
                Method::POST,
                "/v1/kiosk/sessions",
                None,
                Some(Bytes::from(
                    json!({ "terminal": "FM-0001", "nhi_card": card(8), "password": PASSWORD })
                        .to_string(),
                )),
                &[("authorization", auth.as_str())],
            )
            .await
        }
    };
    let a = kiosk(key.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["scope"], json!("kiosk"));
    let token = a.body["token"].as_str().expect("token").to_string();
    let booked = app.book(&token, "P1", "E").await;
    assert_eq!(booked.status, StatusCode::CREATED, "{:?}", booked.body);
    assert_eq!(booked.body["channel"], json!("kiosk"));
    assert_eq!(
        booked.body["partner"],
        json!("family-mart"),
        "the booking names the partner"
    );
    let mine = app.get("/v1/me/bookings", Some(&token)).await;
    assert_eq!(mine.body["bookings"][0]["partner"], json!("family-mart"));
    assert_eq!(
        kiosk(key).await.code(),
        "rate-limited",
        "one login a second"
    );
    assert_eq!(
        kiosk("pk_forged".into()).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_phase_that_requires_registration_books_only_the_chosen_vaccine() {
    let app = app().await;
    import(&app, &[9, 10]).await;
    let now = OffsetDateTime::now_utc();
    let mut cal = crate::helpers::calendar(now);
    let mut phase = cal.phases[0].clone();
    phase.id = slotd::domain::PhaseId::parse("PR").expect("id");
    phase.registration_required = true;
    phase.vaccines = vec!["AZ".into(), "Moderna".into()];
    let mut az = phase.slots[0].clone();
    az.id = slotd::domain::SlotId::parse("PR-AZ").expect("id");
    let mut moderna = az.clone();
    moderna.id = slotd::domain::SlotId::parse("PR-M").expect("id");
    moderna.vaccine = "Moderna".into();
    phase.slots = vec![az, moderna];
    cal.phases = vec![phase];
    let loaded = app
        .admin(
            Method::PUT,
            "/v1/admin/calendar",
            Some(serde_json::to_value(&cal).expect("json")),
        )
        .await;
    assert_eq!(loaded.status, StatusCode::OK, "{:?}", loaded.body);

    let unregistered = app.book(&app.person(10), "PR", "PR-AZ").await;
    assert_eq!(
        (unregistered.status, unregistered.code()),
        (StatusCode::FORBIDDEN, "not-registered")
    );
    let t = registration_token(&app, 9).await;
    let r = post(&app, "/v1/me/registration", Some(&t), form(Some(&["AZ"]))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let booking = app.token(synthetic_id(9));
    let moderna = app.book(&booking, "PR", "PR-M").await;
    assert_eq!(
        (moderna.status, moderna.code()),
        (StatusCode::FORBIDDEN, "vaccine-not-chosen")
    );
    let en = app
        .send(
            Method::POST,
            "/v1/phases/PR/bookings",
            Some(&booking),
            Some(Bytes::from(json!({ "slot": "PR-M" }).to_string())),
            &[("accept-language", "vi")],
        )
        .await;
    assert_eq!(
        en.body["title"],
        json!("Bạn chưa chọn loại vắc-xin này khi đăng ký")
    );
    assert_eq!(
        app.book(&booking, "PR", "PR-AZ").await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_bad_registry_line_is_refused_with_its_number() {
    let app = app().await;
    let good = json!({ "id_number": synthetic_id(20).to_string(), "nhi_card": card(20), "birth_date": "1970-01-01" });
    let cases = [
        json!({ "id_number": "A123456788", "nhi_card": card(21), "birth_date": "1970-01-01" }),
        json!({ "id_number": synthetic_id(21).to_string(), "nhi_card": "123", "birth_date": "1970-01-01" }),
        json!({ "id_number": synthetic_id(21).to_string(), "nhi_card": card(21), "birth_date": "1970-13-01" }),
        json!({ "id_number": synthetic_id(21).to_string(), "nhi_card": card(21), "birth_date": "1970-01-01",
                "password_hash": "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA" }),
        json!({ "id_number": synthetic_id(21).to_string(), "nhi_card": card(21), "birth_date": "1970-01-01", "otp_secret": "not base32!" }),
    ];
    for bad in cases {
        let body = format!("{good}\n\n{bad}\n");
        let a = app
            .send(
                Method::PUT,
                "/v1/admin/registry",
                Some(ADMIN),
                Some(Bytes::from(body)),
                &[],
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request"),
            "{bad}"
        );
        assert_eq!(a.body["line"], json!(3), "{:?}", a.body);
    }
    let none = app
        .send(
            Method::PUT,
            "/v1/admin/registry",
            Some("wrong"),
            Some(Bytes::from(good.to_string())),
            &[],
        )
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
}

/// Every route × every credential: exactly the allowed cells get past authentication.
#[tokio::test]
async fn the_authorization_matrix_allows_exactly_the_listed_cells() {
    let app = app().await;
    let person: IdNumber = synthetic_id(30);
    let creds: Vec<(&str, Option<String>)> = vec![
        ("none", None),
        (
            "registration",
            Some(app.token_with(person, Scope::Registration, 600)),
        ),
        ("booking", Some(app.token_with(person, Scope::Booking, 600))),
        ("kiosk", Some(app.token_with(person, Scope::Kiosk, 600))),
        ("admin", Some(ADMIN.to_string())),
        (
            "forged",
            Some(
                slotd::token::TokenKey::new(b"another-secret").sign(slotd::token::Claims {
                    person,
                    scope: Scope::Booking,
                    expires_at: OffsetDateTime::now_utc().unix_timestamp() + 600,
                    partner: None,
                }),
            ),
        ),
        ("expired", Some(app.token_with(person, Scope::Booking, -10))),
    ];
    let reg = form(None);
    let slot = json!({ "slot": "D" });
    // (method, path, body, who may)
    let person_routes: Vec<(Method, &str, Value, &[&str])> = vec![
        (
            Method::POST,
            "/v1/phases/P1/bookings",
            slot.clone(),
            &["booking", "kiosk"],
        ),
        (
            Method::GET,
            "/v1/me/bookings",
            Value::Null,
            &["booking", "kiosk"],
        ),
        (
            Method::PUT,
            "/v1/me/bookings/nope",
            slot.clone(),
            &["booking", "kiosk"],
        ),
        (
            Method::DELETE,
            "/v1/me/bookings/nope",
            Value::Null,
            &["booking", "kiosk"],
        ),
        (
            Method::GET,
            "/v1/me/registration",
            Value::Null,
            &["registration"],
        ),
        (
            Method::PUT,
            "/v1/me/registration",
            reg.clone(),
            &["registration"],
        ),
        (
            Method::DELETE,
            "/v1/me/registration",
            Value::Null,
            &["registration"],
        ),
        (
            Method::POST,
            "/v1/me/registration",
            reg.clone(),
            &["registration"],
        ),
        (Method::PUT, "/v1/admin/calendar", json!({}), &["admin"]),
        (
            Method::PUT,
            "/v1/admin/phases/P2/invitations",
            json!([]),
            &["admin"],
        ),
        (
            Method::POST,
            "/v1/admin/tokens",
            json!({"id_number": person.to_string(), "scope": "booking", "ttl_seconds": 60}),
            &["admin"],
        ),
        (
            Method::GET,
            "/v1/admin/phases/P1/audit",
            Value::Null,
            &["admin"],
        ),
        (Method::PUT, "/v1/admin/registry", Value::Null, &["admin"]),
        (
            Method::PUT,
            "/v1/admin/partners/p1",
            json!({"name": "x", "kind": "pharmacy", "rate_per_second": 5}),
            &["admin"],
        ),
        (
            Method::POST,
            "/v1/admin/unlock",
            json!({"id_number": person.to_string()}),
            &["admin"],
        ),
        (
            Method::GET,
            "/v1/admin/registrations/audit",
            Value::Null,
            &["admin"],
        ),
        (
            Method::GET,
            "/v1/phases",
            Value::Null,
            &[
                "none",
                "registration",
                "booking",
                "kiosk",
                "admin",
                "forged",
                "expired",
            ],
        ),
        (
            Method::GET,
            "/v1/captcha",
            Value::Null,
            &[
                "none",
                "registration",
                "booking",
                "kiosk",
                "admin",
                "forged",
                "expired",
            ],
        ),
    ];
    for (method, path, body, allowed) in &person_routes {
        for (who, cred) in &creds {
            let body = (!body.is_null()).then(|| Bytes::from(body.to_string()));
            let a = app
                .send(method.clone(), path, cred.as_deref(), body, &[])
                .await;
            let refused = matches!(a.code(), "unauthenticated" | "wrong-scope");
            if allowed.contains(who) {
                assert!(!refused, "{who} must pass {method} {path}: {:?}", a.body);
                assert!(
                    a.status.as_u16() < 500,
                    "{who} {method} {path}: {:?}",
                    a.body
                );
            } else {
                assert!(
                    refused,
                    "{who} must be refused {method} {path}: {} {:?}",
                    a.status, a.body
                );
                assert!(matches!(a.status.as_u16(), 401 | 403));
            }
        }
    }
}

/// A login flood sheds itself: beyond `--hashing-threads` + `--hashing-queue` waiting
/// logins the rest get `503 overloaded` at once, and a booking still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_is_shed_and_bookings_go_on() {
    let app = spawn_app_with(|c| {
        c.identity.captcha_test_secret = Some(CAPTCHA_SECRET.into());
        c.identity.hashing_threads = 1;
        c.identity.hashing_queue = 2;
    })
    .await;
    // One deliberately slow hash shared by 40 people: every login costs real time.
    let heavy = slotd::identity::password::PasswordParams {
        memory_kib: 16_384,
        iterations: 2,
        parallelism: 1,
    };
    let hash = slotd::identity::password::hash(PASSWORD, heavy).expect("hash");
    let body: String = (100..140u64)
        .map(|n| {
            json!({ "id_number": synthetic_id(n).to_string(), "nhi_card": card(n),
                    "birth_date": "1950-03-01", "password_hash": hash })
            .to_string()
                + "\n"
        })
        .collect();
    let imported = app
        .send(
            Method::PUT,
            "/v1/admin/registry",
            Some(ADMIN),
            Some(Bytes::from(body)),
            &[],
        )
        .await;
    assert_eq!(imported.status, StatusCode::OK, "{:?}", imported.body);
    let issuer = slotd::identity::captcha::Captchas::new(
        crate::helpers::SECRET.as_bytes(),
        Some(CAPTCHA_SECRET.as_bytes()),
        120,
    );
    let app = std::sync::Arc::new(app);
    let logins: Vec<_> = (100..140u64)
        .map(|n| {
            let c = issuer.issue(OffsetDateTime::now_utc().unix_timestamp());
            let body = json!({ "method": "card-password", "nhi_card": card(n), "password": PASSWORD,
                               "captcha": { "id": c.id, "answer": answer(&c.id) } });
            let app = app.clone();
            tokio::spawn(async move { post(&app, "/v1/sessions", None, body).await })
        })
        .collect();
    let booked = app.book(&app.person(500), "P1", "E").await;
    assert_eq!(booked.status, StatusCode::CREATED, "{:?}", booked.body);
    let (mut ok, mut shed) = (0, 0);
    for l in logins {
        let a = l.await.expect("task");
        match (a.status, a.code()) {
            (StatusCode::CREATED, _) => ok += 1,
            (StatusCode::SERVICE_UNAVAILABLE, "overloaded") => {
                assert!(a.headers.contains_key("retry-after"));
                shed += 1;
            }
            other => panic!("unexpected {other:?}: {:?}", a.body),
        }
    }
    assert!(ok >= 3, "the admitted logins succeed: {ok}");
    assert!(shed > 0, "the rest are shed at once: {ok} ok, {shed} shed");
}

/// The ID and card number are printed on the card and prove no secret: identifying for
/// a registration neither clears a login lockout nor counts toward one.
#[tokio::test]
async fn a_registration_session_neither_unlocks_nor_locks_logins() {
    let app = app().await;
    import(&app, &[40, 41]).await;
    for _ in 0..2 {
        assert_eq!(card_login(&app, 40, "not-it").await.code(), "login-failed");
    }
    registration_token(&app, 40).await;
    assert_eq!(card_login(&app, 40, "not-it").await.code(), "login-failed");
    assert_eq!(
        card_login(&app, 40, PASSWORD).await.code(),
        "account-locked",
        "three failures lock, whatever happened in between"
    );
    // Someone with person 41's ID but a wrong card: their registration attempts are
    // throttled, their logins are not.
    for _ in 0..5 {
        let body = json!({ "id_number": synthetic_id(41).to_string(), "nhi_card": card(40), "captcha": captcha(&app).await });
        post(&app, "/v1/registration/sessions", None, body).await;
    }
    assert_eq!(
        card_login(&app, 41, PASSWORD).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_card_belongs_to_one_person() {
    let app = app().await;
    import(&app, &[50]).await;
    let line = |n: u64, c: u64| {
        json!({ "id_number": synthetic_id(n).to_string(), "nhi_card": card(c), "birth_date": "1970-01-01" })
            .to_string()
    };
    let in_file = format!("{}\n{}\n", line(51, 51), line(52, 51));
    let a = app
        .send(
            Method::PUT,
            "/v1/admin/registry",
            Some(ADMIN),
            Some(Bytes::from(in_file)),
            &[],
        )
        .await;
    assert_eq!(
        (a.code(), a.body["line"].clone()),
        ("invalid-request", json!(2))
    );
    let taken = format!("{}\n{}\n", line(53, 53), line(54, 50));
    let a = app
        .send(
            Method::PUT,
            "/v1/admin/registry",
            Some(ADMIN),
            Some(Bytes::from(taken)),
            &[],
        )
        .await;
    assert_eq!(
        (a.code(), a.body["line"].clone()),
        ("invalid-request", json!(2)),
        "{:?}",
        a.body
    );
    assert_eq!(
        card_login(&app, 50, PASSWORD).await.status,
        StatusCode::CREATED,
        "50 keeps the card"
    );
}

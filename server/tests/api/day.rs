//! The citizen journey, part 2, over HTTP: settlement picks whom a phase invites, the
//! outbox texts them, staff check them in at the site, and a close-out marks no-shows,
//! who then carry over to the next phase.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use slotd::domain::synthetic_id;
use slotd::sms::GatewaySpec;
use slotd::token::Scope;
use time::{Duration as TDuration, OffsetDateTime};

use crate::helpers::{ADMIN, Answer, TestApp, spawn_app_with};

/// A registrant: (n, county, vaccines, birth date, categories).
type Person = (
    u64,
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static [u16],
);

const PEOPLE: &[Person] = &[
    (1, "金門縣", &["AZ"], "1940-01-01", &[]),
    (2, "金門縣", &["AZ"], "1990-01-01", &[1]),
    (3, "臺北市", &["AZ"], "1930-01-01", &[]),
    (4, "金門縣", &["Moderna"], "1930-01-01", &[]),
    (5, "金門縣", &["AZ", "Moderna"], "1950-01-01", &[]),
    (6, "金門縣", &["AZ"], "1960-01-01", &[]),
];

fn today() -> time::Date {
    OffsetDateTime::now_utc()
        .to_offset(slotd::domain::TAIWAN)
        .date()
}

fn date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// Phase `T1`: the regional trial (Kinmen), three doses, slots at S1 today and tomorrow
/// and at S2 today. Phase `T2`: everyone who ticked AZ, ten doses.
fn phases(now: OffsetDateTime) -> Value {
    let slot = |id: &str, site: &str, day: time::Date| {
        json!({"id": id, "site": site, "date": date(day), "period": "09:00-12:00",
               "vaccine": "AZ", "capacity": 5})
    };
    json!({"sites": [
        {"id": "S1", "name": "site S1", "county": "臺北市", "district": "中正區"},
        {"id": "S2", "name": "site S2", "county": "臺北市", "district": "大安區"}],
        "phases": [
        {"id": "T1", "name": "第01期", "vaccines": ["AZ"],
         "opens_at": slotd::domain::rfc3339(now - TDuration::hours(1)),
         "closes_at": slotd::domain::rfc3339(now + TDuration::days(2)),
         "invitation_required": true, "registration_required": true, "doses": 3,
         "eligibility": {"counties": ["金門縣", "連江縣", "澎湖縣"],
                         "registered_before": slotd::domain::rfc3339(now + TDuration::hours(1))},
         "slots": [slot("T1-S1-TODAY", "S1", today()),
                   slot("T1-S1-TOMORROW", "S1", today() + TDuration::days(1)),
                   slot("T1-S2-TODAY", "S2", today())]},
        {"id": "T2", "name": "第02期", "vaccines": ["AZ"],
         "opens_at": slotd::domain::rfc3339(now - TDuration::hours(1)),
         "closes_at": slotd::domain::rfc3339(now + TDuration::days(2)),
         "invitation_required": true, "doses": 10,
         "slots": [slot("T2-S1-TODAY", "S1", today())]}
    ]})
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

/// An app whose texts go to `sms`, with the phases loaded and the people registered.
async fn journey(sms: &std::path::Path) -> TestApp {
    let path = sms.to_path_buf();
    let app = spawn_app_with(move |c| c.sms.gateway = Some(GatewaySpec::File(path))).await;
    let now = OffsetDateTime::now_utc();
    let loaded = app
        .admin(Method::PUT, "/v1/admin/calendar", Some(phases(now)))
        .await;
    assert_eq!(loaded.status, StatusCode::OK, "{:?}", loaded.body);
    let registry: String = PEOPLE
        .iter()
        .map(|(n, _, _, birth, cats)| {
            json!({"id_number": synthetic_id(*n).to_string(),
                   "nhi_card": format!("{:012}", 400_000_000_000 + n),
                   "birth_date": birth, "categories": cats})
            .to_string()
                + "\n"
        })
        .collect();
    let a = app
        .send(
            Method::PUT,
            "/v1/admin/registry",
            Some(ADMIN),
            Some(Bytes::from(registry)),
            &[("content-type", "application/x-ndjson")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    for (n, county, vaccines, _, _) in PEOPLE {
        let token = app.token_with(synthetic_id(*n), Scope::Registration, 600);
        let district = slotd::domain::Geography::get()
            .districts_of(county)
            .next()
            .map(|d| d.name)
            .expect("district");
        let r = post(
            &app,
            "/v1/me/registration",
            Some(&token),
            json!({"name": "王小明", "mobile": format!("09{n:08}"), "county": county,
                   "district": district, "vaccines": vaccines}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    app
}

async fn settle(app: &TestApp, phase: &str, query: &str) -> Answer {
    let a = app
        .admin(
            Method::POST,
            &format!("/v1/admin/phases/{phase}/settlement{query}"),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a
}

/// The file gateway's lines, once `want` messages are sent.
async fn texts(app: &TestApp, file: &std::path::Path, want: u64) -> Vec<Value> {
    for _ in 0..200 {
        let s = app.admin(Method::GET, "/v1/admin/sms", None).await;
        if s.body["sent"] == json!(want) {
            let raw = std::fs::read_to_string(file).expect("sms file");
            return raw
                .lines()
                .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{want} messages were not sent");
}

fn mobiles(lines: &[Value]) -> Vec<String> {
    let mut m: Vec<String> = lines
        .iter()
        .map(|l| l["to"].as_str().unwrap_or("").to_string())
        .collect();
    m.sort();
    m
}

async fn staff(app: &TestApp, site: &str) -> String {
    let a = app
        .admin(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"scope": "staff", "site": site})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body["token"].as_str().expect("token").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phase_invites_its_eligible_registrants_texts_them_checks_them_in_and_carries_over_no_shows()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("sms.ndjson");
    let app = journey(&file).await;

    // Kinmen only and AZ ticked: 1, 2, 5 and 6 are eligible; three doses: category 1
    // first (2), then the oldest (1, then 5).
    let dry = settle(&app, "T1", "?dry_run=true").await;
    assert_eq!(
        (dry.body["eligible"].clone(), dry.body["invited"].clone()),
        (json!(4), json!(3))
    );
    assert_eq!(dry.body["by_county"], json!({"金門縣": 3}));
    assert_eq!(dry.body["by_category"], json!({"1": 1, "none": 2}));
    assert_eq!(dry.body["by_age_band"], json!({"18-49": 1, "75+": 2}));
    let nobody = post(
        &app,
        "/v1/phases/T1/bookings",
        Some(&app.person(2)),
        json!({"slot": "T1-S1-TODAY"}),
    )
    .await;
    assert_eq!(nobody.code(), "not-invited", "a dry run invites nobody");
    let md = app
        .send(
            Method::POST,
            "/v1/admin/phases/T1/settlement?dry_run=true&format=markdown",
            Some(ADMIN),
            None,
            &[],
        )
        .await;
    assert_eq!(md.status, StatusCode::OK);
    assert!(
        md.headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/markdown")
    );

    let real = settle(&app, "T1", "").await;
    assert_eq!(real.body["invited"], json!(3));
    assert_eq!(
        settle(&app, "T1", "").await.body["invited"],
        json!(0),
        "idempotent"
    );
    let lines = texts(&app, &file, 3).await;
    assert_eq!(lines.len(), 3, "one text per invitation");
    assert_eq!(
        mobiles(&lines),
        vec!["0900000001", "0900000002", "0900000005"]
    );
    for l in &lines {
        let text = l["text"].as_str().unwrap_or("");
        assert!(
            text.contains("第01期") && text.contains("https://1922.gov.tw"),
            "{text}"
        );
        assert_eq!(l["phase"], "T1");
    }

    // The invited book; 6 was not invited.
    let b2 = post(
        &app,
        "/v1/phases/T1/bookings",
        Some(&app.person(2)),
        json!({"slot": "T1-S1-TODAY"}),
    )
    .await;
    assert_eq!(b2.status, StatusCode::CREATED, "{:?}", b2.body);
    let b1 = post(
        &app,
        "/v1/phases/T1/bookings",
        Some(&app.person(1)),
        json!({"slot": "T1-S1-TODAY"}),
    )
    .await;
    assert_eq!(b1.status, StatusCode::CREATED);
    let b5 = post(
        &app,
        "/v1/phases/T1/bookings",
        Some(&app.person(5)),
        json!({"slot": "T1-S1-TOMORROW"}),
    )
    .await;
    assert_eq!(b5.status, StatusCode::CREATED);
    let b6 = post(
        &app,
        "/v1/phases/T1/bookings",
        Some(&app.person(6)),
        json!({"slot": "T1-S1-TODAY"}),
    )
    .await;
    assert_eq!(b6.code(), "not-invited");

    // Check-in rules.
    let s1 = staff(&app, "S1").await;
    let s2 = staff(&app, "S2").await;
    let code = |b: &Answer| b.body["code"].as_str().expect("code").to_string();
    let check = |token: String, site: &'static str, body: Value| {
        let app = &app;
        async move {
            post(
                app,
                &format!("/v1/sites/{site}/check-ins"),
                Some(&token),
                body,
            )
            .await
        }
    };
    let in2 = check(s1.clone(), "S1", json!({"code": code(&b2).to_lowercase()})).await;
    assert_eq!(
        (in2.status, in2.body["status"].clone()),
        (StatusCode::OK, json!("attended"))
    );
    let again = check(
        s1.clone(),
        "S1",
        json!({"id_number": synthetic_id(2).to_string()}),
    )
    .await;
    assert_eq!(
        (again.status, again.body["booking"].clone()),
        (StatusCode::OK, b2.body["booking"].clone())
    );
    let other_site = check(s1.clone(), "S2", json!({"code": code(&b1)})).await;
    assert_eq!(
        (other_site.status, other_site.code()),
        (StatusCode::FORBIDDEN, "wrong-scope")
    );
    let wrong_site = check(s2.clone(), "S2", json!({"code": code(&b1)})).await;
    assert_eq!(
        (wrong_site.status, wrong_site.code()),
        (StatusCode::CONFLICT, "wrong-site")
    );
    let wrong_day = check(s1.clone(), "S1", json!({"code": code(&b5)})).await;
    assert_eq!(
        (wrong_day.status, wrong_day.code()),
        (StatusCode::CONFLICT, "wrong-date")
    );
    assert_eq!(wrong_day.body["booking"]["booking"], b5.body["booking"]);
    let unknown = check(s1.clone(), "S1", json!({"code": "AAAAAA"})).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "unknown-booking")
    );
    let both = check(
        s1.clone(),
        "S1",
        json!({"code": code(&b1), "id_number": synthetic_id(1).to_string()}),
    )
    .await;
    assert_eq!(both.code(), "invalid-request");
    let person_token = check(app.person(1), "S1", json!({"code": code(&b1)})).await;
    assert_eq!(person_token.code(), "wrong-scope");
    let id5 = b5.body["booking"].as_str().expect("id").to_string();
    assert_eq!(
        app.cancel(&app.person(5), &id5).await.status,
        StatusCode::NO_CONTENT
    );
    let cancelled = check(s1.clone(), "S1", json!({"code": code(&b5)})).await;
    assert_eq!(
        (cancelled.status, cancelled.code()),
        (StatusCode::CONFLICT, "booking-cancelled")
    );
    // Attended is final.
    let id2 = b2.body["booking"].as_str().expect("id").to_string();
    let keep = app.cancel(&app.person(2), &id2).await;
    assert_eq!(
        (keep.status, keep.code()),
        (StatusCode::CONFLICT, "booking-not-live")
    );

    // Close-out of today: 2 attended, 1 a no-show whose seat stays taken.
    let future = app
        .admin(
            Method::POST,
            &format!(
                "/v1/admin/phases/T1/close-out?date={}",
                date(today() + TDuration::days(1))
            ),
            None,
        )
        .await;
    assert_eq!(future.code(), "invalid-request");
    let closed = app
        .admin(
            Method::POST,
            "/v1/admin/phases/T1/close-out",
            Some(json!({"date": date(today())})),
        )
        .await;
    assert_eq!(
        (
            closed.status,
            closed.body["attended"].clone(),
            closed.body["no_show"].clone()
        ),
        (StatusCode::OK, json!(1), json!(1))
    );
    let mine = app.get("/v1/me/bookings", Some(&app.person(1))).await;
    assert_eq!(mine.body["bookings"][0]["status"], "no-show");
    let rebook = post(
        &app,
        "/v1/phases/T1/bookings",
        Some(&app.person(1)),
        json!({"slot": "T1-S2-TODAY"}),
    )
    .await;
    assert_eq!(
        (rebook.status, rebook.code()),
        (StatusCode::CONFLICT, "already-booked")
    );
    let audit = app.assert_audit_clean("T1").await;
    let today_slot = audit["slots"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["slot"] == "T1-S1-TODAY"))
        .expect("slot");
    assert_eq!(
        today_slot["remaining"], 3,
        "the no-show's seat is not returned"
    );

    // The next phase: 2 attended (out); 1 (no-show), 5 (cancelled) and 6 (never invited)
    // carry over with 3 (Taipei is in); 4 ticked Moderna only.
    let next = settle(&app, "T2", "").await;
    assert_eq!(
        (next.body["eligible"].clone(), next.body["invited"].clone()),
        (json!(4), json!(4))
    );
    let lines = texts(&app, &file, 7).await;
    let t2: Vec<Value> = lines.into_iter().filter(|l| l["phase"] == "T2").collect();
    assert_eq!(
        mobiles(&t2),
        vec!["0900000001", "0900000003", "0900000005", "0900000006"]
    );
    let outbox = app.admin(Method::GET, "/v1/admin/sms", None).await;
    assert_eq!(
        (outbox.body["queued"].clone(), outbox.body["dead"].clone()),
        (json!(0), json!(0))
    );
    let by_phase: HashMap<String, usize> =
        texts(&app, &file, 7)
            .await
            .iter()
            .fold(HashMap::new(), |mut m, l| {
                *m.entry(l["phase"].as_str().unwrap_or("").to_string())
                    .or_default() += 1;
                m
            });
    assert_eq!((by_phase["T1"], by_phase["T2"]), (3, 4));
}

#[tokio::test]
async fn settlement_and_close_out_refuse_bad_input_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = journey(&dir.path().join("sms.ndjson")).await;
    let unknown = app
        .admin(Method::POST, "/v1/admin/phases/NOPE/settlement", None)
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "unknown-phase")
    );
    for q in [
        "?share=0",
        "?share=1.5",
        "?share=x",
        "?dry_run=maybe",
        "?dry_run=1",
        "?dry_run=true&dry_run=false",
        "?dryrun=true",
        "?format=xml",
    ] {
        let a = app
            .admin(
                Method::POST,
                &format!("/v1/admin/phases/T1/settlement{q}"),
                None,
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request"),
            "{q}"
        );
    }
    let half = settle(&app, "T1", "?share=0.5&dry_run=true").await;
    assert_eq!(
        (half.body["target"].clone(), half.body["invited"].clone()),
        (json!(1), json!(1))
    );
    let no_auth = app
        .send(
            Method::GET,
            "/v1/admin/sms",
            Some(&app.person(1)),
            None,
            &[],
        )
        .await;
    assert_eq!(no_auth.status, StatusCode::UNAUTHORIZED);
    for (path, body) in [
        ("/v1/admin/phases/T1/close-out", None),
        ("/v1/admin/phases/T1/close-out?date=2021-02-30", None),
        (
            "/v1/admin/phases/T1/close-out?date=2021-07-16",
            Some(json!({"date": "2021-07-17"})),
        ),
        (
            "/v1/admin/phases/T1/close-out",
            Some(json!({"day": "2021-07-17"})),
        ),
    ] {
        let a = app.admin(Method::POST, path, body).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request"),
            "{path}"
        );
    }
    let nophase = app
        .admin(
            Method::POST,
            "/v1/admin/phases/NOPE/close-out?date=2021-07-16",
            None,
        )
        .await;
    assert_eq!(nophase.code(), "unknown-phase");
    let staffless = app
        .admin(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"scope": "staff"})),
        )
        .await;
    assert_eq!(staffless.code(), "invalid-request");
    let nosite = app
        .admin(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"scope": "staff", "site": "S9"})),
        )
        .await;
    assert_eq!(nosite.code(), "invalid-request");
    let personless = app
        .admin(
            Method::POST,
            "/v1/admin/tokens",
            Some(json!({"scope": "booking"})),
        )
        .await;
    assert_eq!(personless.code(), "invalid-request");
}

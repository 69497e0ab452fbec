//! The identity store on a real `redis-server`: the shared contract, and what several
//! instances on one Redis must agree on (serials, single-use marks, failure counts).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use slotd::config::Durability;
use slotd::domain::synthetic_id;
use slotd::identity::RegisterOutcome;
use slotd::store::RedisStore;
use slotd::store::identity::{IdentityStore, RedisIdentity, contract};
use slotd_system_tests::redis_server::RedisServer;
use time::OffsetDateTime;

const TIMEOUT: Duration = Duration::from_secs(2);

async fn identity(url: &str, prefix: &str) -> (RedisStore, RedisIdentity) {
    let store = RedisStore::connect(url, prefix, TIMEOUT, Durability::Fast, false)
        .await
        .expect("connects to the test Redis");
    let (conn, prefix, timeout) = store.shared_connection();
    let identity = RedisIdentity::new(conn, &prefix, timeout);
    (store, identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_identity_store_meets_the_contract() {
    let redis = RedisServer::fast();
    let n = AtomicUsize::new(0);
    let keep = std::sync::Mutex::new(Vec::new());
    contract::run_all(|| {
        let (url, prefix) = (
            redis.url(),
            format!("i{}", n.fetch_add(1, Ordering::Relaxed)),
        );
        let keep = &keep;
        async move {
            let (store, identity) = identity(&url, &prefix).await;
            keep.lock().expect("lock").push(store);
            identity
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_serials_marks_and_failures() {
    let redis = RedisServer::fast();
    let url = redis.url();
    let mut stores = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (s, i) = identity(&url, "x").await;
        stores.push(s);
        ids.push(Arc::new(i));
    }
    // 150 people register through three instances at once: serials are unique and
    // dense, whichever instance took them.
    let now = OffsetDateTime::now_utc();
    let tasks: Vec<_> = (0..150u64)
        .map(|n| {
            let id = ids[n as usize % 3].clone();
            tokio::spawn(async move {
                id.register(synthetic_id(n), contract::form("x", &["AZ"]), now)
                    .await
                    .expect("register")
            })
        })
        .collect();
    let mut serials = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            RegisterOutcome::Registered(r) => serials.push(r.serial),
            other => panic!("{other:?}"),
        }
    }
    serials.sort_unstable();
    assert_eq!(serials, (1..=150).collect::<Vec<u64>>());
    // A registration made on one instance is seen and modified on another.
    let seen = ids[1].registration(synthetic_id(0)).await.expect("read");
    let modified = ids[2]
        .modify(synthetic_id(0), contract::form("moved", &["Moderna"]), now)
        .await
        .expect("modify")
        .expect("registered");
    assert_eq!(seen.map(|r| r.serial), Some(modified.serial));
    let again = ids[0].registration(synthetic_id(0)).await.expect("read");
    assert_eq!(again.map(|r| r.form.name), Some("moved".to_string()));
    // A captcha answered on one instance cannot be answered again on another.
    let exp = now.unix_timestamp() + 60;
    assert!(
        ids[0]
            .use_once("captcha:c1".into(), exp)
            .await
            .expect("mark")
    );
    assert!(
        !ids[1]
            .use_once("captcha:c1".into(), exp)
            .await
            .expect("mark")
    );
    assert!(
        !ids[2]
            .use_once("captcha:c1".into(), exp)
            .await
            .expect("mark")
    );
    // Failures counted on each instance add up.
    let t = now.unix_timestamp();
    for id in &ids {
        id.record_failure("acct:1".into(), t, 60)
            .await
            .expect("record");
    }
    assert_eq!(
        ids[0]
            .failures("acct:1".into(), t)
            .await
            .expect("read")
            .count,
        3
    );
    let audit = ids[2].audit().await.expect("audit");
    assert!(audit.ok, "{audit:?}");
    assert_eq!((audit.live, audit.last_serial), (150, 150));
}

/// Two real `slotd` processes on one Redis: a captcha issued by one is answered at the
/// other and then refused everywhere; a registration made through one is read through
/// the other; failed logins counted on both lock the account on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captchas_registrations_and_lockouts_hold_across_instances() {
    use serde_json::json;
    use slotd_system_tests::calendars;
    use slotd_system_tests::slotd_process::{Http, Slotd};

    let redis = RedisServer::fast();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("calendar.json");
    let cal = calendars::open_phase(&[("X00".to_string(), 10)]);
    std::fs::write(&file, serde_json::to_vec(&cal).expect("json")).expect("calendar");
    let secret = "cross-captcha-secret";
    let start = |i: usize| {
        let args: Vec<String> = [
            "--store",
            &redis.url(),
            "--admin-token",
            "cross-admin-secret",
            "--token-secret",
            "cross-token-secret",
            "--captcha-test-secret",
            secret,
            "--login-throttle-after",
            "3",
            "--login-lock-after",
            "3",
            "--calendar",
            &file.to_string_lossy(),
            "--data-dir",
            &dir.path().join(format!("i{i}")).to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Slotd::start(&args)
    };
    let (a, b) = (start(0), start(1));
    let http = Http::new(Duration::from_secs(10));
    let admin = Some("cross-admin-secret");
    let person = synthetic_id(77);
    let hash = slotd::identity::password::hash(
        "pw-77",
        slotd::identity::password::PasswordParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
    )
    .expect("hash");
    let line = json!({ "id_number": person.to_string(), "nhi_card": "077700000077",
                       "birth_date": "1950-01-01", "password_hash": hash });
    let imported = http
        .call(
            "PUT",
            &format!("{}/v1/admin/registry", a.base),
            admin,
            Some(&line),
        )
        .await
        .expect("answers");
    assert_eq!(imported.status, 200, "{}", imported.body);

    let answer = |id: &str| {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        m.update(id.as_bytes());
        m.finalize().into_bytes()[..3]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let c = http
        .call("GET", &format!("{}/v1/captcha", a.base), None, None)
        .await
        .expect("answers");
    let id = c.body["captcha"].as_str().expect("id").to_string();
    let session = json!({ "id_number": person.to_string(), "nhi_card": "077700000077",
                          "captcha": { "id": id, "answer": answer(&id) } });
    let on_b = http
        .call(
            "POST",
            &format!("{}/v1/registration/sessions", b.base),
            None,
            Some(&session),
        )
        .await
        .expect("answers");
    assert_eq!(
        on_b.status, 201,
        "a captcha of A is answered at B: {}",
        on_b.body
    );
    for base in [&a.base, &b.base] {
        let again = http
            .call(
                "POST",
                &format!("{base}/v1/registration/sessions"),
                None,
                Some(&session),
            )
            .await
            .expect("answers");
        assert_eq!(again.body["code"], "captcha-failed", "reused at {base}");
    }
    let token = on_b.body["token"].as_str().expect("token").to_string();
    let form = json!({ "name": "跨實例", "mobile": "0911111111", "county": "臺北市", "district": "中正區" });
    let made = http
        .call(
            "POST",
            &format!("{}/v1/me/registration", b.base),
            Some(&token),
            Some(&form),
        )
        .await
        .expect("answers");
    assert_eq!(made.status, 201);
    let read = http
        .call(
            "GET",
            &format!("{}/v1/me/registration", a.base),
            Some(&token),
            None,
        )
        .await
        .expect("answers");
    assert_eq!(read.body["serial"], made.body["serial"]);

    // Failures on A and on B add up: the third locks the account on both.
    let mut codes = Vec::new();
    for base in [&a.base, &b.base, &a.base, &b.base, &a.base] {
        let c = http
            .call("GET", &format!("{base}/v1/captcha"), None, None)
            .await
            .expect("answers");
        let id = c.body["captcha"].as_str().expect("id").to_string();
        let login = json!({ "method": "card-password", "nhi_card": "077700000077",
                            "password": "wrong", "captcha": { "id": id, "answer": answer(&id) } });
        let r = http
            .call("POST", &format!("{base}/v1/sessions"), None, Some(&login))
            .await
            .expect("answers");
        codes.push(r.body["code"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(
        codes,
        [
            "login-failed",
            "login-failed",
            "login-failed",
            "account-locked",
            "account-locked"
        ]
    );
}

/// An empty Redis gets the demo's phase (open to everyone) only with `--demo`: a wrong
/// prefix or a flushed Redis must not open a phase by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_redis_gets_the_demo_only_when_asked() {
    use slotd_system_tests::slotd_process::{Http, Slotd};
    let redis = RedisServer::fast();
    let dir = tempfile::tempdir().expect("tempdir");
    let args = |i: usize, demo: bool| {
        let mut a: Vec<String> = [
            "--store",
            &redis.url(),
            "--admin-token",
            "demo-admin-secret",
            "--token-secret",
            "demo-token-secret",
            "--data-dir",
            &dir.path().join(format!("i{i}")).to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if demo {
            a.push("--demo".into());
        }
        a
    };
    let http = Http::new(Duration::from_secs(10));
    let plain = Slotd::start(&args(0, false));
    let phases = http
        .call("GET", &format!("{}/v1/phases", plain.base), None, None)
        .await
        .expect("answers");
    assert_eq!(
        phases.body["phases"],
        serde_json::json!([]),
        "no phase by itself"
    );
    let ready = http
        .call("GET", &format!("{}/health/ready", plain.base), None, None)
        .await
        .expect("answers");
    assert_eq!(ready.status, 503, "not ready without a calendar");
    drop(plain);
    let demo = Slotd::start(&args(1, true));
    let phases = http
        .call("GET", &format!("{}/v1/phases", demo.base), None, None)
        .await
        .expect("answers");
    assert_eq!(phases.body["phases"][0]["id"], "01", "{}", phases.body);
}

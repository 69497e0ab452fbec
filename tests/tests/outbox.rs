//! The SMS outbox end to end with the real `slotd` binary: each invitation's text reaches
//! the carrier once (by its message id) across `kill -9` of an instance mid-send, on the
//! embedded store and with two instances on one Redis; a failing carrier gets retries
//! with backoff and the dead-letter state.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use slotd::domain::synthetic_id;
use slotd_system_tests::calendars;
use slotd_system_tests::redis_server::RedisServer;
use slotd_system_tests::slotd_process::{Http, Slotd, embedded_args};

const SECRET: &str = "outbox-token-secret";
const ADMIN: &str = "outbox-admin-secret";
const PEOPLE: u64 = 300;

fn mobile(n: u64) -> String {
    format!("09{:08}", 10_000 + n)
}

/// Phase `P1` open to invitees only, with room for everyone.
fn write_calendar(dir: &Path) {
    let mut cal = calendars::open_phase(&[("X".into(), PEOPLE as u32 * 2)]);
    cal.phases[0].invitation_required = true;
    std::fs::write(
        dir.join("calendar.json"),
        serde_json::to_vec(&cal).expect("json"),
    )
    .expect("calendar");
}

async fn admin(http: &Http, base: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let a = http
        .call(method, &format!("{base}{path}"), Some(ADMIN), body)
        .await
        .expect("answer");
    assert!(a.status.is_success(), "{path}: {} {:?}", a.status, a.body);
    a.body
}

/// Imports and registers `PEOPLE` people, then settles `P1`: every one is invited.
async fn register_and_settle(http: &Http, base: &str) {
    let registry: String = (0..PEOPLE)
        .map(|n| {
            json!({"id_number": synthetic_id(n).to_string(),
                   "nhi_card": format!("{:012}", 500_000_000_000 + n),
                   "birth_date": "1950-01-01"})
            .to_string()
                + "\n"
        })
        .collect();
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let req = Request::put(format!("{base}/v1/admin/registry"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/x-ndjson")
        .body(Full::new(Bytes::from(registry)))
        .expect("request");
    let res = client.request(req).await.expect("registry");
    assert_eq!(res.status(), StatusCode::OK);
    for n in 0..PEOPLE {
        let t = admin(
            http,
            base,
            "POST",
            "/v1/admin/tokens",
            Some(&json!({"id_number": synthetic_id(n).to_string(), "scope": "registration"})),
        )
        .await;
        let token = t["token"].as_str().expect("token");
        let form = json!({"name": "王小明", "mobile": mobile(n), "county": "臺北市",
                          "district": "中正區", "vaccines": ["AZ"]});
        let r = http
            .call(
                "POST",
                &format!("{base}/v1/me/registration"),
                Some(token),
                Some(&form),
            )
            .await
            .expect("answer");
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let s = admin(http, base, "POST", "/v1/admin/phases/P1/settlement", None).await;
    assert_eq!(s["invited"], json!(PEOPLE));
}

async fn wait_sent(http: &Http, base: &str, want: u64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(a) = http
            .call("GET", &format!("{base}/v1/admin/sms"), Some(ADMIN), None)
            .await
            && a.body["sent"].as_u64().unwrap_or(0) + a.body["dead"].as_u64().unwrap_or(0) >= want
        {
            return a.body;
        }
        assert!(
            Instant::now() < deadline,
            "{want} texts not settled in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lines the file gateway has written so far.
fn lines(f: &Path) -> usize {
    std::fs::read_to_string(f)
        .unwrap_or_default()
        .lines()
        .count()
}

/// Waits until the file gateway has written `n` lines (a server is mid-send).
async fn wait_lines(file: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines(file) < n {
        assert!(Instant::now() < deadline, "no texts written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One POST as the carrier saw it.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    to: String,
    text: String,
}

/// A local carrier: records every POST; `answer(key, to, nth try of this key)` decides
/// the status, after `delay`.
struct Carrier {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

type Decide = dyn Fn(&str, u32) -> StatusCode + Send + Sync;

async fn carrier(delay: Duration, decide: Arc<Decide>) -> Carrier {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/sms", listener.local_addr().expect("addr"));
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (seen, decide) = (seen.clone(), decide.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (seen, decide) = (seen.clone(), decide.clone());
                    async move {
                        let key = req
                            .headers()
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let body = req.into_body().collect().await.map(|c| c.to_bytes());
                        let v: Value = body
                            .ok()
                            .and_then(|b| serde_json::from_slice(&b).ok())
                            .unwrap_or(Value::Null);
                        let to = v["to"].as_str().unwrap_or("").to_string();
                        let tries = {
                            let mut s = seen.lock().expect("lock");
                            s.push(Received {
                                key: key.clone(),
                                to: to.clone(),
                                text: v["text"].as_str().unwrap_or("").to_string(),
                            });
                            s.iter().filter(|r| r.key == key).count() as u32
                        };
                        tokio::time::sleep(delay).await;
                        let mut res = Response::new(Full::new(Bytes::new()));
                        *res.status_mut() = decide(&to, tries);
                        Ok::<_, Infallible>(res)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Carrier { url, received }
}

impl Carrier {
    fn snapshot(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

fn serve_args(dir: &Path, gateway: &str, extra: &[&str]) -> Vec<String> {
    let mut args = embedded_args(dir, ADMIN, SECRET);
    args.extend(["--sms-gateway".into(), gateway.into()]);
    args.extend(extra.iter().map(|s| (*s).to_string()));
    args
}

/// Each person's text was delivered under exactly one message id, and a repeated POST
/// (a send cut short by the kill) repeats the same id and text.
fn assert_once_per_person(seen: &[Received]) {
    let mut key_of: HashMap<&str, &str> = HashMap::new();
    let mut text_of: HashMap<&str, &str> = HashMap::new();
    for r in seen {
        let k = key_of.entry(r.to.as_str()).or_insert(r.key.as_str());
        assert_eq!(*k, r.key, "{} got two message ids", r.to);
        let t = text_of.entry(r.key.as_str()).or_insert(r.text.as_str());
        assert_eq!(*t, r.text, "a retry of {} changed its text", r.key);
    }
    let people: HashSet<String> = (0..PEOPLE).map(mobile).collect();
    let reached: HashSet<String> = key_of.keys().map(|s| s.to_string()).collect();
    assert_eq!(reached, people, "every invitee was texted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_text_is_sent_once_per_invitation_across_kill_9_mid_send() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_calendar(dir.path());
    // A slow carrier: at any moment 8 sends are in flight.
    let carrier = carrier(Duration::from_millis(150), Arc::new(|_, _| StatusCode::OK)).await;
    let args = serve_args(
        dir.path(),
        &carrier.url,
        &[
            "--sms-concurrency",
            "8",
            "--sms-timeout",
            "2",
            "--sms-rate",
            "1000",
        ],
    );
    let http = Http::new(Duration::from_secs(10));
    let mut first = Slotd::start(&args);
    register_and_settle(&http, &first.base).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while carrier.snapshot().len() < 40 {
        assert!(Instant::now() < deadline, "the carrier got no texts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9();
    let before = carrier.snapshot().len();
    assert!(before < PEOPLE as usize, "killed mid-send ({before} sent)");
    let second = Slotd::start(&args);
    let stats = wait_sent(&http, &second.base, PEOPLE, Duration::from_secs(60)).await;
    assert_eq!(
        (stats["sent"].clone(), stats["dead"].clone()),
        (json!(PEOPLE), json!(0))
    );
    let seen = carrier.snapshot();
    assert_once_per_person(&seen);
    let keys: HashSet<&str> = seen.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), PEOPLE as usize);
    // Only what was in flight at the kill (a batch) is posted twice, under its own key.
    assert!(
        seen.len() - keys.len() <= 500,
        "{} repeats",
        seen.len() - keys.len()
    );
    let audit = http
        .call(
            "GET",
            &format!("{}/v1/admin/phases/P1/audit?journey=true", second.base),
            Some(ADMIN),
            None,
        )
        .await
        .expect("audit");
    assert_eq!(audit.body["journey"]["messages"], json!(PEOPLE));
    assert_eq!(audit.body["ok"], json!(true), "{}", audit.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_gateway_writes_each_text_once_across_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_calendar(dir.path());
    let file = dir.path().join("sms.ndjson");
    let gateway = format!("file:{}", file.display());
    let args = serve_args(dir.path(), &gateway, &["--sms-rate", "100"]);
    let http = Http::new(Duration::from_secs(10));
    let mut first = Slotd::start(&args);
    register_and_settle(&http, &first.base).await;
    wait_lines(&file, 50).await;
    first.kill9();
    assert!(lines(&file) < PEOPLE as usize, "killed mid-send");
    let second = Slotd::start(&args);
    wait_sent(&http, &second.base, PEOPLE, Duration::from_secs(30)).await;
    let raw = std::fs::read_to_string(&file).expect("file");
    let ids: Vec<String> = raw
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a whole JSON line");
            v["message"].as_str().expect("id").to_string()
        })
        .collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (PEOPLE as usize, PEOPLE as usize)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_redis_text_each_invitation_once_when_one_is_killed() {
    let redis = RedisServer::fast();
    let dir = tempfile::tempdir().expect("tempdir");
    write_calendar(dir.path());
    let file = dir.path().join("sms.ndjson");
    let gateway = format!("file:{}", file.display());
    let args = |with_calendar: bool| {
        let mut a = vec![
            "--store".to_string(),
            redis.url(),
            "--admin-token".into(),
            ADMIN.into(),
            "--token-secret".into(),
            SECRET.into(),
            "--sms-gateway".into(),
            gateway.clone(),
            "--sms-rate".into(),
            "60".into(),
            "--sms-timeout".into(),
            "1".into(),
        ];
        if with_calendar {
            a.extend([
                "--calendar".into(),
                dir.path()
                    .join("calendar.json")
                    .to_string_lossy()
                    .into_owned(),
            ]);
        }
        a
    };
    let mut a = Slotd::start(&args(true));
    let b = Slotd::start(&args(false));
    let http = Http::new(Duration::from_secs(10));
    register_and_settle(&http, &b.base).await;
    wait_lines(&file, 40).await;
    a.kill9();
    // The survivor sends the rest, and what the killed one had claimed once its lease
    // (4 × the 1 s timeout) runs out.
    wait_sent(&http, &b.base, PEOPLE, Duration::from_secs(40)).await;
    let raw = std::fs::read_to_string(&file).expect("file");
    let mut ids: Vec<String> = raw
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("a whole JSON line")["message"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((all, ids.len()), (PEOPLE as usize, PEOPLE as usize));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_carrier_gets_retries_with_backoff_and_refusals_go_dead() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_calendar(dir.path());
    let (refused, broken) = (mobile(7), mobile(8));
    // One number in ten is flaky (its first two tries fail); one is refused, one broken.
    let flaky = |to: &str| to.ends_with('1');
    let decide: Arc<Decide> = Arc::new(move |to: &str, tries: u32| {
        if to == refused {
            StatusCode::BAD_REQUEST
        } else if to == broken || (flaky(to) && tries <= 2) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    });
    let carrier = carrier(Duration::ZERO, decide).await;
    let args = serve_args(
        dir.path(),
        &carrier.url,
        &["--sms-max-attempts", "3", "--sms-rate", "1000"],
    );
    let http = Http::new(Duration::from_secs(10));
    let server = Slotd::start(&args);
    let started = Instant::now();
    register_and_settle(&http, &server.base).await;
    let stats = wait_sent(&http, &server.base, PEOPLE, Duration::from_secs(60)).await;
    assert_eq!(
        (
            stats["sent"].clone(),
            stats["dead"].clone(),
            stats["failed"].clone()
        ),
        (json!(PEOPLE - 2), json!(2), json!(0)),
        "{stats}"
    );
    let seen = carrier.snapshot();
    let tries = |m: &str| seen.iter().filter(|r| r.to == m).count();
    assert_eq!(tries(&mobile(7)), 1, "a refusal is not retried");
    assert_eq!(
        tries(&mobile(8)),
        3,
        "a broken number is tried --sms-max-attempts times"
    );
    assert_eq!(tries(&mobile(1)), 3, "two 503s, then the text goes through");
    assert_eq!(tries(&mobile(2)), 1);
    // Backoff: the third try of anyone came at least a moment after the first.
    assert!(started.elapsed() >= Duration::from_millis(500));
    let audit = http
        .call(
            "GET",
            &format!("{}/v1/admin/phases/P1/audit?journey=true", server.base),
            Some(ADMIN),
            None,
        )
        .await
        .expect("audit");
    assert_eq!(audit.body["journey"]["dead"], json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_outage_pauses_the_dispatcher_instead_of_using_up_attempts() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_calendar(dir.path());
    let down_until = Instant::now() + Duration::from_secs(3);
    let decide: Arc<Decide> = Arc::new(move |_: &str, _: u32| {
        if Instant::now() < down_until {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    });
    let carrier = carrier(Duration::ZERO, decide).await;
    // Three attempts only: without the pause, a 3 s outage would kill the texts it met.
    let args = serve_args(
        dir.path(),
        &carrier.url,
        &["--sms-max-attempts", "3", "--sms-rate", "50"],
    );
    let http = Http::new(Duration::from_secs(10));
    let server = Slotd::start(&args);
    register_and_settle(&http, &server.base).await;
    let stats = wait_sent(&http, &server.base, PEOPLE, Duration::from_secs(90)).await;
    assert_eq!(
        (stats["sent"].clone(), stats["dead"].clone()),
        (json!(PEOPLE), json!(0)),
        "{stats}"
    );
    let failed_during_outage = carrier
        .snapshot()
        .iter()
        .map(|r| r.key.clone())
        .collect::<Vec<_>>()
        .len()
        - PEOPLE as usize;
    assert!(
        failed_during_outage <= 2 * 50 + 10,
        "the outage met about one batch and the probes, not every text: {failed_during_outage}"
    );
}

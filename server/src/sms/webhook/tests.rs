//! The webhook gateway against a real local HTTP/1 carrier that fails on purpose.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::*;

/// How many times `/flaky` answers 503 to each Idempotency-Key before it answers 200.
const FAILURES: u32 = 2;
/// How long `/slow` takes to answer.
const SLOW: Duration = Duration::from_millis(150);

/// One request as the carrier received it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    key: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

/// What the carrier's routes share.
struct Shared {
    seen: Mutex<Vec<Seen>>,
    attempts: Mutex<HashMap<String, u32>>,
    in_flight: AtomicUsize,
    /// The most `/pair` requests ever in flight at once.
    most_in_flight: watch::Sender<usize>,
}

/// A carrier on 127.0.0.1:0. Routes:
/// - `/ok`: 200. `/bad`: 400. `/status/N`: N.
/// - `/flaky`: 503 for the first [`FAILURES`] requests of each Idempotency-Key, then 200.
/// - `/hang`: never answers. `/slow`: answers 200 after [`SLOW`].
/// - `/mixed`: by key: `bad…` 400, `busy…` 429, anything else 200.
/// - `/pair`: holds each request until two have been in flight at once, then 200.
///
/// Dropping it stops the accept loop and, with it, every connection.
struct Carrier {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Carrier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Carrier {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            seen: Mutex::new(Vec::new()),
            attempts: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            most_in_flight: watch::Sender::new(0),
        });
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                // Owns every connection: aborting the accept loop drops them all.
                let mut connections = JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let shared = shared.clone();
                    let service = service_fn(move |req| answer(shared.clone(), req));
                    connections.spawn(async move {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        Self { addr, shared, task }
    }

    fn gateway(&self, path: &str, timeout: Duration, concurrency: usize) -> WebhookGateway {
        let uri = format!("http://{}{path}", self.addr).parse().expect("uri");
        WebhookGateway::new(
            uri,
            WebhookOptions {
                timeout,
                concurrency,
                ca_file: None,
            },
        )
        .expect("http gateway")
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("not poisoned").clone()
    }
}

async fn answer(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (key, content_type) = (header("idempotency-key"), header("content-type"));
    let path = req.uri().path().to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    shared.seen.lock().expect("not poisoned").push(Seen {
        path: path.clone(),
        key: key.clone(),
        content_type,
        body,
    });
    let key = key.unwrap_or_default();
    let status = match path.as_str() {
        "/ok" => 200,
        "/bad" => 400,
        "/flaky" => {
            let mut attempts = shared.attempts.lock().expect("not poisoned");
            let n = attempts.entry(key).or_insert(0);
            *n += 1;
            if *n <= FAILURES { 503 } else { 200 }
        }
        "/hang" => {
            std::future::pending::<()>().await;
            200
        }
        "/slow" => {
            tokio::time::sleep(SLOW).await;
            200
        }
        "/mixed" if key.starts_with("bad") => 400,
        "/mixed" if key.starts_with("busy") => 429,
        "/mixed" => 200,
        "/pair" => {
            let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            shared
                .most_in_flight
                .send_modify(|most| *most = (*most).max(now));
            let mut most = shared.most_in_flight.subscribe();
            // The bound only keeps a broken gateway from hanging the test.
            let paired = tokio::time::timeout(Duration::from_secs(5), most.wait_for(|m| *m >= 2));
            let status = if paired.await.is_ok() { 200 } else { 500 };
            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            status
        }
        other => other
            .strip_prefix("/status/")
            .and_then(|code| code.parse().ok())
            .unwrap_or(404),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"carrier says no")));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
    Ok(response)
}

fn message(id: &str) -> Outgoing {
    Outgoing {
        message: id.to_owned(),
        to: "0912345678".to_owned(),
        phase: "p2".to_owned(),
        text: "【疫苗預約】您已符合第二期疫苗接種資格".to_owned(),
    }
}

fn batch(ids: &[&str]) -> Vec<Outgoing> {
    ids.iter().map(|id| message(id)).collect()
}

const TIMEOUT: Duration = Duration::from_secs(3);

fn is_retry(r: &Result<(), SendError>) -> bool {
    matches!(r, Err(SendError::Retry(_)))
}

fn is_permanent(r: &Result<(), SendError>) -> bool {
    matches!(r, Err(SendError::Permanent(_)))
}

#[tokio::test]
async fn post_carries_the_message_as_json_under_its_idempotency_key() {
    let carrier = Carrier::start().await;
    let gateway = carrier.gateway("/ok", TIMEOUT, 4);
    assert_eq!(gateway.send(&batch(&["m1f"])).await, vec![Ok(())]);
    let seen = carrier.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/ok");
    assert_eq!(seen[0].key.as_deref(), Some("m1f"));
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&seen[0].body).expect("a JSON object");
    let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["message", "phase", "text", "to"]);
    assert_eq!(
        serde_json::from_slice::<Outgoing>(&seen[0].body).expect("an Outgoing"),
        message("m1f")
    );
}

#[tokio::test]
async fn server_errors_are_retry_and_the_same_key_succeeds_once_they_stop() {
    let carrier = Carrier::start().await;
    let gateway = carrier.gateway("/flaky", TIMEOUT, 4);
    let messages = batch(&["m1", "m2"]);
    for _ in 0..FAILURES {
        let results = gateway.send(&messages).await;
        assert!(results.iter().all(is_retry), "{results:?}");
        assert!(format!("{:?}", results[0]).contains("503"), "{results:?}");
    }
    assert_eq!(gateway.send(&messages).await, vec![Ok(()), Ok(())]);
    let keys: Vec<_> = carrier.seen().into_iter().filter_map(|s| s.key).collect();
    for id in ["m1", "m2"] {
        let tries = keys.iter().filter(|k| *k == id).count();
        assert_eq!(tries as u32, FAILURES + 1, "{id}: {keys:?}");
    }
}

#[tokio::test]
async fn carrier_that_never_answers_is_retry_soon_after_the_timeout() {
    let carrier = Carrier::start().await;
    let timeout = Duration::from_millis(300);
    let gateway = carrier.gateway("/hang", timeout, 4);
    let started = Instant::now();
    let results = gateway.send(&batch(&["m1", "m2"])).await;
    let took = started.elapsed();
    assert!(results.iter().all(is_retry), "{results:?}");
    assert!(
        format!("{:?}", results[0]).contains("no answer"),
        "{results:?}"
    );
    // Both posts run at once, each under its own timeout: about one timeout in all.
    assert!(took >= timeout, "returned before the timeout: {took:?}");
    assert!(took < timeout + Duration::from_secs(2), "took {took:?}");
    assert_eq!(carrier.seen().len(), 2, "both requests reached the carrier");
}

#[tokio::test]
async fn slow_answer_within_the_timeout_is_ok() {
    let carrier = Carrier::start().await;
    let gateway = carrier.gateway("/slow", TIMEOUT, 4);
    assert_eq!(gateway.send(&batch(&["m1"])).await, vec![Ok(())]);
}

#[tokio::test]
async fn bad_request_is_permanent() {
    let carrier = Carrier::start().await;
    let gateway = carrier.gateway("/bad", TIMEOUT, 4);
    let results = gateway.send(&batch(&["m1"])).await;
    assert!(is_permanent(&results[0]), "{results:?}");
    assert!(format!("{:?}", results[0]).contains("400"), "{results:?}");
}

#[tokio::test]
async fn statuses_are_classified_into_ok_retry_and_permanent() {
    let carrier = Carrier::start().await;
    let cases = [
        (200, "ok"),
        (202, "ok"),
        (204, "ok"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (302, "retry"),
        (401, "retry"),
        (403, "retry"),
        (404, "retry"),
        (400, "permanent"),
        (409, "permanent"),
        (422, "permanent"),
    ];
    for (status, want) in cases {
        let gateway = carrier.gateway(&format!("/status/{status}"), TIMEOUT, 1);
        let got = gateway.send(&batch(&["m1"])).await.remove(0);
        let class = match got {
            Ok(()) => "ok",
            Err(SendError::Retry(_)) => "retry",
            Err(SendError::Permanent(_)) => "permanent",
        };
        assert_eq!(class, want, "status {status}: {got:?}");
    }
}

#[tokio::test]
async fn results_keep_the_order_of_the_batch() {
    let carrier = Carrier::start().await;
    let gateway = carrier.gateway("/mixed", TIMEOUT, 3);
    let results = gateway
        .send(&batch(&["ok1", "bad1", "ok2", "busy1", "ok3"]))
        .await;
    assert_eq!(results.len(), 5);
    assert_eq!(results[0], Ok(()));
    assert!(is_permanent(&results[1]), "{results:?}");
    assert_eq!(results[2], Ok(()));
    assert!(is_retry(&results[3]), "{results:?}");
    assert_eq!(results[4], Ok(()));
}

#[tokio::test]
async fn posts_in_flight_are_bounded_by_concurrency() {
    let carrier = Carrier::start().await;
    let gateway = carrier.gateway("/pair", TIMEOUT, 2);
    let results = gateway
        .send(&batch(&["m1", "m2", "m3", "m4", "m5", "m6"]))
        .await;
    // `/pair` answers only once two were in flight together: all Ok proves the batch
    // ran two at a time, and the high-water mark proves never more.
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(*carrier.shared.most_in_flight.borrow(), 2);
}

#[tokio::test]
async fn refused_connection_is_retry() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    let uri = format!("http://{addr}/sms").parse().expect("uri");
    let options = WebhookOptions {
        timeout: TIMEOUT,
        concurrency: 1,
        ca_file: None,
    };
    let gateway = WebhookGateway::new(uri, options).expect("http gateway");
    let results = gateway.send(&batch(&["m1"])).await;
    assert!(is_retry(&results[0]), "{results:?}");
}

#[tokio::test]
async fn message_id_unfit_for_a_header_is_permanent_without_a_request() {
    let carrier = Carrier::start().await;
    let gateway = carrier.gateway("/ok", TIMEOUT, 1);
    let results = gateway.send(&batch(&["m1\nX-Injected: 1"])).await;
    assert!(is_permanent(&results[0]), "{results:?}");
    assert!(carrier.seen().is_empty());
}

#[tokio::test]
async fn empty_batch_answers_nothing() {
    let carrier = Carrier::start().await;
    let gateway = carrier.gateway("/ok", TIMEOUT, 1);
    assert!(gateway.send(&[]).await.is_empty());
    assert!(carrier.seen().is_empty());
}

/// An https carrier with a certificate from a private CA, made with `openssl` for the
/// test; the gateway trusts it through `ca_file` and nothing else.
#[cfg(feature = "https-webhook")]
mod https {
    use std::path::Path;
    use std::process::Command;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ca.pem`, and `server.pem` / `server.key` for localhost and 127.0.0.1, signed by it.
    fn certificates(dir: &Path) {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=slotd test CA",
        ]);
        openssl(dir, &ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        openssl(dir, &csr);
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .expect("ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        );
    }

    /// Serves TLS on 127.0.0.1:0, answering 200 and keeping each Idempotency-Key.
    async fn carrier(dir: &Path) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.pem"))
                .expect("pem")
                .map(|c| c.expect("cert"))
                .collect();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let keys: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = keys.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen) = (acceptor.clone(), seen.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: http::Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            if let Some(k) = req
                                .headers()
                                .get("idempotency-key")
                                .and_then(|v| v.to_str().ok())
                            {
                                seen.lock().expect("lock").push(k.to_string());
                            }
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (addr, keys)
    }

    #[tokio::test]
    async fn an_https_carrier_is_reached_when_its_ca_is_trusted_and_refused_otherwise() {
        let dir = tempfile::tempdir().expect("tempdir");
        certificates(dir.path());
        let (addr, keys) = carrier(dir.path()).await;
        let uri: Uri = format!("https://localhost:{}/sms", addr.port())
            .parse()
            .expect("uri");
        let trusting = WebhookGateway::new(
            uri.clone(),
            WebhookOptions {
                timeout: TIMEOUT,
                concurrency: 1,
                ca_file: Some(dir.path().join("ca.pem")),
            },
        )
        .expect("https gateway");
        let results = trusting.send(&batch(&["m1-0a0b0c0d"])).await;
        assert_eq!(results, vec![Ok(())]);
        assert_eq!(*keys.lock().expect("lock"), vec!["m1-0a0b0c0d".to_string()]);

        // The system's roots do not know the test CA: the handshake fails, and a failed
        // handshake is a passing fault (retried), never a text sent in clear.
        let doubting = WebhookGateway::new(
            uri,
            WebhookOptions {
                timeout: TIMEOUT,
                concurrency: 1,
                ca_file: None,
            },
        );
        match doubting {
            Ok(g) => {
                let results = g.send(&batch(&["m2-0a0b0c0d"])).await;
                assert!(is_retry(&results[0]), "{results:?}");
                assert_eq!(
                    keys.lock().expect("lock").len(),
                    1,
                    "nothing reached the carrier"
                );
            }
            // A machine without any system roots refuses at start instead.
            Err(GatewayError::Tls(e)) => assert!(e.contains("no trusted root"), "{e}"),
            Err(e) => panic!("{e}"),
        }
        let missing = WebhookGateway::new(
            format!("https://localhost:{}/sms", addr.port())
                .parse()
                .expect("uri"),
            WebhookOptions {
                timeout: TIMEOUT,
                concurrency: 1,
                ca_file: Some(dir.path().join("no-such.pem")),
            },
        );
        assert!(matches!(missing, Err(GatewayError::Tls(e)) if e.contains("no-such.pem")));
    }
}

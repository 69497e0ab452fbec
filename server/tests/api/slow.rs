//! Slow and silent clients: a body that never comes is refused with 408 within the body
//! timeout, and the request slots it held serve everyone else again; headers trickled
//! byte by byte are cut off at the header timeout, connections beyond the cap still get
//! their probes answered, and one address holds its share of connections only.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_comes_is_refused_and_frees_its_slot() {
    let app = spawn_app_with(|c| {
        c.limits.max_in_flight = 4;
        c.limits.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    let token = app.person(1);
    // Four clients announce a booking body and send nothing: every request slot is held.
    let mut silent = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(app.addr)
            .await
            .expect("connect");
        let head = format!(
            "POST /v1/phases/P1/bookings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.expect("write");
        silent.push(s);
    }
    let started = Instant::now();
    for mut s in silent {
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut answer))
            .await
            .expect("an answer comes within the body timeout")
            .expect("read");
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("request-timeout"), "{text}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The slots are free again: a real booking goes through.
    let booked = app.book(&app.person(2), "P1", "E").await;
    assert_eq!(booked.status, StatusCode::CREATED, "{:?}", booked.body);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_problems_name_it() {
    let app = crate::helpers::spawn_app().await;
    let given = app
        .send(
            http::Method::GET,
            "/v1/phases/nope/availability",
            None,
            None,
            &[("x-request-id", "lb-42.7")],
        )
        .await;
    assert_eq!(given.headers["x-request-id"], "lb-42.7");
    assert_eq!(given.body["instance"], "urn:slotd:request:lb-42.7");
    let made = app.get("/health/live", None).await;
    let id = made.headers["x-request-id"].to_str().expect("ascii");
    assert!(!id.is_empty() && id != "lb-42.7");
    let junk = app
        .send(
            http::Method::GET,
            "/health/live",
            None,
            None,
            &[("x-request-id", "has spaces and more")],
        )
        .await;
    assert_ne!(junk.headers["x-request-id"], "has spaces and more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_says_so_when_stuck_requests_fill_the_in_flight_budget() {
    use tokio::io::AsyncWriteExt;
    let app = crate::helpers::spawn_app_with(|c| c.limits.max_in_flight = 2).await;
    assert_eq!(
        app.get("/health/ready", None).await.status,
        http::StatusCode::OK
    );
    // Two requests whose bodies never come hold the budget (until the body timeout).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(app.addr)
            .await
            .expect("connect");
        s.write_all(
            format!(
                "POST /v1/phases/P1/bookings HTTP/1.1\r\nhost: slotd\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n",
                app.person(1)
            )
            .as_bytes(),
        )
        .await
        .expect("headers");
        held.push(s);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = app.get("/health/ready", None).await;
        if r.status == http::StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                r.body["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("saturated"),
                "{}",
                r.body
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "readiness stayed 200");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The probes took no place: neither held request was shed to make room for them.
    for s in held.iter_mut() {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let answered =
            tokio::time::timeout(std::time::Duration::from_millis(100), s.read(&mut buf)).await;
        assert!(
            answered.is_err(),
            "a held request was answered: {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.get("/health/ready", None).await.status != http::StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "ready again once they are gone"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_that_only_answers_pings_is_closed() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.limits.idle_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let tcp = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2c handshake");
    // The connection task answers the server's PINGs for as long as it runs.
    let closed = tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/health/live", app.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let res = send.send_request(req).await.expect("answer");
    assert_eq!(res.status(), http::StatusCode::OK);
    let started = std::time::Instant::now();
    // Well before the header timeout (10 s): the idle one closes it.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(6), closed).await;
    assert!(ended.is_ok(), "the server closed the idle h2 connection");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1_500),
        "not before the idle timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_per_connection_are_capped() {
    let app = crate::helpers::spawn_app().await;
    let tcp = TcpStream::connect(app.addr).await.expect("connect");
    let (client, mut connection) = h2::client::handshake(tcp).await.expect("h2c handshake");
    let req = http::Request::get(format!("http://{}/health/live", app.addr))
        .body(())
        .expect("request");
    let (answer, _) = client
        .ready()
        .await
        .expect("ready")
        .send_request(req, true)
        .expect("stream");
    // Drive the connection until the answer: the server's SETTINGS came before it.
    let res = tokio::select! {
        r = answer => r.expect("answer"),
        r = &mut connection => panic!("the connection ended first: {r:?}"),
    };
    assert_eq!(res.status(), StatusCode::OK);
    // What the server allows one connection: a client that opens more is refused the
    // extra streams (REFUSED_STREAM) by the protocol layer.
    assert_eq!(connection.max_concurrent_send_streams(), 256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_rapid_reset_flood_is_cut_off_and_others_are_served() {
    let app = crate::helpers::spawn_app().await;
    let tcp = TcpStream::connect(app.addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2c handshake");
    let ended = tokio::spawn(connection);
    // CVE-2023-44487: open a stream and cancel it at once, again and again. Each costs
    // the server work while the client's concurrency limit never fills.
    let mut sent = 0;
    for _ in 0..20_000 {
        let Ok(mut ready) = client.clone().ready().await else {
            break;
        };
        let req = http::Request::get(format!("http://{}/v1/phases/P1/availability", app.addr))
            .body(())
            .expect("request");
        let Ok((_answer, mut stream)) = ready.send_request(req, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
        if sent % 100 == 0 {
            tokio::task::yield_now().await;
        }
        if ended.is_finished() {
            break;
        }
    }
    let outcome = tokio::time::timeout(Duration::from_secs(5), ended)
        .await
        .expect("the server ends the connection")
        .expect("connection task");
    let error = outcome.expect_err("the connection ends in an error, not cleanly");
    assert!(
        sent < 20_000,
        "the server cut the flood off before its end ({sent} streams sent)"
    );
    assert!(
        error.is_go_away() || error.is_io() || error.reason().is_some(),
        "{error:?}"
    );
    // A route inside the in-flight budget, not an exempt probe.
    let (status, _, _) = fresh(
        app.addr,
        get(app.addr, "/v1/phases"),
        Duration::from_secs(2),
    )
    .await
    .expect("phases");
    assert_eq!(status, StatusCode::OK);
}

/// One request on a new connection, answered within `within`: status, headers, body.
async fn fresh(
    addr: SocketAddr,
    req: http::Request<Full<Bytes>>,
    within: Duration,
) -> Result<(StatusCode, http::HeaderMap, Bytes), String> {
    let exchange = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let res = send.send_request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((parts.status, parts.headers, body))
    };
    tokio::time::timeout(within, exchange)
        .await
        .map_err(|_| format!("no answer within {within:?}"))?
}

fn get(addr: SocketAddr, path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("http://{addr}{path}"))
        .header("host", "slotd")
        .body(Full::default())
        .expect("request")
}

fn booking(addr: SocketAddr, token: &str, slot: &str) -> http::Request<Full<Bytes>> {
    http::Request::post(format!("http://{addr}/v1/phases/P1/bookings"))
        .header("host", "slotd")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(r#"{{"slot":"{slot}"}}"#))))
        .expect("request")
}

/// Sends `head` on `s`, then one more header byte every `every` until the server closes
/// the connection; how long after `head` that was.
async fn trickle(mut s: TcpStream, head: &'static [u8], every: Duration) -> Duration {
    let started = Instant::now();
    if s.write_all(head).await.is_err() {
        return started.elapsed();
    }
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            },
            _ = tick.tick() => {
                if s.write_all(b"x").await.is_err() {
                    return started.elapsed();
                }
            }
        }
    }
}

/// Reads one HTTP/1.1 answer with a `content-length` from `s`; its head.
async fn read_answer(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return head;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("an answer")
            .expect("read");
        assert!(
            n > 0,
            "closed before the answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A connection to `addr` from the loopback address `from` (127.0.0.0/8 is all loopback
/// on Linux): a client address of its own for the per-address cap.
async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    let ip: IpAddr = from.parse().expect("ip");
    socket.bind(SocketAddr::new(ip, 0)).expect("bind");
    socket.connect(addr).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickled_headers_cannot_hold_the_server_and_probes_answer_throughout() {
    let header = Duration::from_secs(2);
    let app = spawn_app_with(|c| {
        c.limits.max_connections = 200;
        c.limits.header_read_timeout = header;
        // Every client here is 127.0.0.1.
        c.limits.max_connections_per_address = 0;
    })
    .await;
    // A client whose keep-alive connection dates from before the flood.
    let tcp = TcpStream::connect(app.addr).await.expect("connect");
    let (mut early, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let res = early
        .send_request(get(app.addr, "/health/live"))
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::OK);
    // The flood: 300 connections, 100 more than the cap, trickle a booking's headers one
    // byte a second.
    let flood = Instant::now();
    let mut tricklers = Vec::new();
    for _ in 0..300 {
        let s = TcpStream::connect(app.addr).await.expect("connect");
        tricklers.push(tokio::spawn(trickle(
            s,
            b"POST /v1/phases/P1/bookings HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            Duration::from_secs(1),
        )));
    }
    // The cap holds: a booking on a new connection is shed, in the overflow lane.
    loop {
        let (status, headers, body) = fresh(
            app.addr,
            booking(app.addr, &app.person(7), "E"),
            Duration::from_secs(1),
        )
        .await
        .expect("a booking on a new connection is answered during the flood");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let body: serde_json::Value = serde_json::from_slice(&body).expect("problem");
            assert_eq!(body["code"], "overloaded", "{body}");
            assert_eq!(headers["connection"], "close");
            assert!(headers.contains_key("retry-after"));
            break;
        }
        assert!(
            flood.elapsed() < header,
            "the tricklers never filled the cap: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The client from before the flood books on its own connection.
    let res = early
        .send_request(booking(app.addr, &app.person(8), "E"))
        .await
        .expect("answer");
    assert_eq!(res.status(), StatusCode::CREATED);
    // A probe on a new connection answers within a second until every trickler is gone.
    let mut probes = 0;
    while tricklers.iter().any(|t| !t.is_finished()) {
        let started = Instant::now();
        let (status, headers, _) = fresh(
            app.addr,
            get(app.addr, "/health/live"),
            Duration::from_secs(1),
        )
        .await
        .unwrap_or_else(|e| panic!("probe {probes} after {:?}: {e}", flood.elapsed()));
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() < Duration::from_secs(1));
        if headers.get("connection").is_some_and(|v| v == "close") {
            probes += 1;
        }
        assert!(flood.elapsed() < header * 4, "tricklers still open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(probes > 0, "some probes came through the overflow lane");
    // Each trickler was cut off about the header timeout after its first byte, however
    // it kept sending.
    for t in tricklers {
        let held = t.await.expect("trickler");
        assert!(held < header + Duration::from_secs(2), "held {held:?}");
    }
    // And the places are free again: a new connection books.
    let (status, _, body) = fresh(
        app.addr,
        booking(app.addr, &app.person(9), "E"),
        Duration::from_secs(2),
    )
    .await
    .expect("answer");
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_closes_at_the_header_timeout_and_an_idle_one_only_when_trickling() {
    let header = Duration::from_secs(1);
    let app = spawn_app_with(|c| {
        c.limits.header_read_timeout = header;
        c.limits.idle_timeout = Duration::from_secs(8);
    })
    .await;
    // Connects and says nothing.
    let silent = {
        let mut s = TcpStream::connect(app.addr).await.expect("connect");
        tokio::spawn(async move {
            let started = Instant::now();
            let mut buf = [0u8; 64];
            let r = tokio::time::timeout(Duration::from_secs(6), s.read(&mut buf)).await;
            (r, started.elapsed())
        })
    };
    // A keep-alive connection after a complete request, idle past the header timeout.
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    let request = b"GET /health/live HTTP/1.1\r\nhost: slotd\r\n\r\n";
    s.write_all(request).await.expect("write");
    assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(header * 2).await;
    s.write_all(request).await.expect("write after idling");
    assert!(
        read_answer(&mut s).await.starts_with("HTTP/1.1 200"),
        "open after idling twice the header timeout"
    );
    // Its next request trickles: the header timeout counts from that request's first byte.
    let held = trickle(
        s,
        b"GET /health/live HTTP/1.1\r\nX-Slow: ",
        Duration::from_millis(200),
    )
    .await;
    assert!(
        held >= header - Duration::from_millis(100) && held < header * 3,
        "cut off a header timeout after its first byte, not at the idle timeout: {held:?}"
    );
    let (read, after) = silent.await.expect("silent");
    let read = read.expect("the silent connection is closed before the test gives up");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answered: {read:?}"
    );
    assert!(
        after >= header - Duration::from_millis(100) && after < header * 3,
        "closed at the header timeout: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_its_share_of_connections_and_a_closed_one_frees_a_place() {
    let app = spawn_app_with(|c| c.limits.max_connections_per_address = 10).await;
    let request = b"GET /health/live HTTP/1.1\r\nhost: slotd\r\n\r\n";
    // Ten connections from 127.0.0.2, each answered, so each is counted.
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut s = connect_from("127.0.0.2", app.addr).await;
        s.write_all(request).await.expect("write");
        assert!(read_answer(&mut s).await.starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    // The eleventh is closed unanswered.
    let mut eleventh = connect_from("127.0.0.2", app.addr).await;
    let _ = eleventh.write_all(request).await;
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(2), eleventh.read(&mut buf))
        .await
        .expect("closed at once");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "refused, not answered: {read:?}"
    );
    // Another address is not affected.
    assert_eq!(app.get("/health/live", None).await.status, StatusCode::OK);
    // One of the ten leaves: a new connection from the address is served again, once the
    // server has seen the close.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut s = connect_from("127.0.0.2", app.addr).await;
        let _ = s.write_all(request).await;
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await
            && buf[..n].starts_with(b"HTTP/1.1 200")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the place was not freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Counted by reason.
    let (_, _, metrics) = fresh(app.addr, get(app.addr, "/metrics"), Duration::from_secs(2))
        .await
        .expect("metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    let refused = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"slotd_http_connections_refused_total{reason="per-address"} "#)
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no per-address refusals counted:\n{metrics}"));
    assert!(refused >= 1.0);
}

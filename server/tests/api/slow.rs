//! Slow and silent clients: a body that never comes is refused with 408 within the body
//! timeout, and the request slots it held serve everyone else again.

use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), closed).await;
    assert!(ended.is_ok(), "the server closed the idle h2 connection");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1_500),
        "not before the idle timeout: {:?}",
        started.elapsed()
    );
}

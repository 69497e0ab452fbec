//! The accept loop, the route table and the bodies: the ceiling's hyper stack, with the
//! booking itself left to a `Book` store.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use super::{Book, Outcome, SlotTable};

/// The largest booking body read; a booking is about 30 bytes.
const MAX_BODY: usize = 4096;

const SLOT_FULL: &[u8] = br#"{"type":"about:blank","code":"slot-full"}"#;
const ALREADY_BOOKED: &[u8] = br#"{"type":"about:blank","code":"already-booked"}"#;
const UNAVAILABLE: &[u8] = br#"{"type":"about:blank","code":"unavailable"}"#;

type Answer = Response<Full<Bytes>>;

struct Edge<B> {
    slots: SlotTable,
    store: B,
}

/// Serves `listener` for ever: one task per connection, HTTP/1.1 or HTTP/2 (hyper-util's
/// auto builder, default settings, as in the ceiling).
pub async fn serve<B: Book>(listener: TcpListener, slots: SlotTable, store: B) {
    let edge = Arc::new(Edge { slots, store });
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close rather
                // than spin on the error.
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Answers are small: Nagle would hold each back for the client's ACK.
        let _ = stream.set_nodelay(true);
        let edge = edge.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, edge.clone()));
            // How a connection ends (closed, reset, malformed) concerns it alone.
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// The route table: `GET` any path is the floor of a request; `POST
/// /v1/phases/{phase}/bookings` books; anything else is `404`.
async fn handle<B: Book>(req: Request<Incoming>, edge: Arc<Edge<B>>) -> Result<Answer, Infallible> {
    if req.method() == Method::GET {
        return Ok(Response::new(Full::new(Bytes::from_static(b"ok"))));
    }
    Ok(book(req, &edge).await)
}

#[derive(Deserialize)]
struct BookingBody {
    slot: String,
}

/// The `201` body: the shape (and about the size, ~300 bytes) of slotd's.
#[derive(Serialize)]
struct Booked<'a> {
    booking: String,
    code: &'a str,
    phase: &'a str,
    slot: &'a str,
    site: &'a str,
    site_name: &'a str,
    county: &'a str,
    district: &'a str,
    status: &'a str,
}

async fn book<B: Book>(req: Request<Incoming>, edge: &Edge<B>) -> Answer {
    let (parts, body) = req.into_parts();
    let Some(phase) = booking_phase(parts.uri.path()).filter(|_| parts.method == Method::POST)
    else {
        return json(StatusCode::NOT_FOUND, &b"{}"[..]);
    };
    let person = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .filter(|p| !p.is_empty());
    let Ok(body) = Limited::new(body, MAX_BODY).collect().await else {
        return json(StatusCode::BAD_REQUEST, &b"{}"[..]);
    };
    let parsed: Option<BookingBody> = serde_json::from_slice(&body.to_bytes()).ok();
    let (Some(person), Some(parsed)) = (person, parsed) else {
        return json(StatusCode::BAD_REQUEST, &b"{}"[..]);
    };
    let Some(slot) = edge.slots.get(&parsed.slot).filter(|s| s.phase == phase) else {
        return json(StatusCode::NOT_FOUND, &b"{}"[..]);
    };
    match edge.store.book(slot, person).await {
        Outcome::Booked(number) => {
            let booked = Booked {
                booking: format!("B{number:016x}"),
                code: "K7Q2XD",
                phase: &slot.phase,
                slot: &slot.id,
                site: &slot.site.id,
                site_name: &slot.site.name,
                county: &slot.site.county,
                district: &slot.site.district,
                status: "booked",
            };
            match serde_json::to_vec(&booked) {
                Ok(body) => json(StatusCode::CREATED, body),
                // Strings and a number always serialize; were one not to, the seat is
                // taken and the answer says the store failed.
                Err(_) => json(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
            }
        }
        Outcome::SlotFull => json(StatusCode::CONFLICT, SLOT_FULL),
        Outcome::AlreadyBooked => json(StatusCode::CONFLICT, ALREADY_BOOKED),
        Outcome::Unavailable => json(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
    }
}

/// `{phase}` of `/v1/phases/{phase}/bookings`.
fn booking_phase(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/phases/")?
        .strip_suffix("/bookings")
        .filter(|p| !p.is_empty() && !p.contains('/'))
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    use super::booking_phase;

    #[test]
    fn booking_phase_is_the_path_segment_between_phases_and_bookings() {
        assert_eq!(booking_phase("/v1/phases/01/bookings"), Some("01"));
        assert_eq!(booking_phase("/v1/phases//bookings"), None);
        assert_eq!(booking_phase("/v1/phases/01/x/bookings"), None);
        assert_eq!(booking_phase("/v1/phases/01/bookings/B1"), None);
        assert_eq!(booking_phase("/health/live"), None);
    }
}

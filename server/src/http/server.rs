//! The accept loop: admission after accept, per-connection clocks, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::admission::{Admission, ConnectionLane, Refusal};
use super::connection::{Clocks, Closed, Conn, Watched, watch};
use super::router::handle;
use crate::app::App;
use crate::log_limit::Limited;
use crate::metrics as m;
use crate::store::Store;

/// Serves `app` on an already-bound listener until `shutdown` resolves; then stops
/// accepting, drains open connections for up to the grace period, and flushes the store.
pub async fn run<S: Store>(
    listener: TcpListener,
    app: Arc<App<S>>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = app.limits.clone();
    let admission = Admission::new(&limits);
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // hyper 1.12's own header timer runs from the end of one response to the headers
        // of the next, idle keep-alive time included, so it cannot tell a load balancer's
        // pooled connection from a client trickling headers; and it costs a boxed timer
        // armed and dropped on every request. Each connection's watchdog
        // (`connection::watch`) applies the header and idle timeouts instead.
        .header_read_timeout(None)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.idle_timeout))
        .max_concurrent_streams(256);
    tokio::pin!(shutdown);
    loop {
        // Always accept, and decide after: a probe on a new connection is never left in
        // the kernel's backlog behind clients that hold every place.
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = Conn::new();
        let ticket = match admission.admit(peer.ip(), &conn) {
            Ok(t) => t,
            Err(refusal) => {
                metrics::counter!(m::HTTP_CONNECTIONS_REFUSED, "reason" => refusal.as_str())
                    .increment(1);
                static REFUSED: Limited = Limited::new();
                if let Some(folded) = REFUSED.check(std::time::Instant::now()) {
                    let hint = match refusal {
                        Refusal::PerAddress => {
                            "; a load balancer's address belongs in --trusted-proxies"
                        }
                        Refusal::OverflowFull => "",
                    };
                    tracing::warn!(
                        reason = refusal.as_str(),
                        folded,
                        "closing a new connection unanswered ({folded} more in the last 10 s){hint}"
                    );
                }
                // Closed unanswered, at once: no buffer, no task.
                drop(stream);
                continue;
            }
        };
        let lane = ticket.lane();
        if lane == ConnectionLane::Overflow {
            metrics::counter!(m::HTTP_OVERFLOW_CONNECTIONS).increment(1);
            static OVERFLOW: Limited = Limited::new();
            if let Some(folded) = OVERFLOW.check(std::time::Instant::now()) {
                tracing::warn!(
                    max = limits.max_connections,
                    folded,
                    "at --max-connections: a new connection serves probes and scrapes only ({folded} more in the last 10 s)"
                );
            }
        }
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Watched::new(stream, conn.clone()));
        let service = {
            let (app, conn) = (app.clone(), conn.clone());
            service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                // Called once the headers are parsed: the request has begun.
                let request = conn.begin(req.version() == http::Version::HTTP_2);
                let app = app.clone();
                // The client address, for per-address limits (login failures).
                req.extensions_mut().insert(PeerAddr(peer.ip()));
                req.extensions_mut().insert(lane);
                async move {
                    let response = handle(&app, req).await;
                    drop(request);
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let served = graceful.watch(builder.serve_connection(io, service).into_owned());
        let clocks = Clocks {
            header: limits.header_read_timeout,
            idle: limits.idle_timeout,
            lifetime: (lane == ConnectionLane::Overflow).then_some(limits.overflow_deadline),
        };
        tokio::spawn(async move {
            metrics::gauge!(m::HTTP_CONNECTIONS).increment(1.0);
            tokio::select! {
                r = served => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                closed = watch(&conn, clocks) => {
                    if closed == Closed::Displaced {
                        metrics::counter!(m::HTTP_CONNECTIONS_REFUSED, "reason" => closed.as_str())
                            .increment(1);
                    }
                    tracing::debug!(reason = closed.as_str(), "closing a connection");
                }
            }
            metrics::gauge!(m::HTTP_CONNECTIONS).decrement(1.0);
            drop(ticket);
        });
    }
    drop(listener);
    tracing::info!("stopped accepting; draining connections");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace = ?limits.shutdown_grace, "grace period over; closing remaining connections");
        }
    }
    app.sms
        .stop(app.sms.config.timeout + Duration::from_secs(1))
        .await;
    app.store.shutdown().await;
    app.identity.store.shutdown().await;
}

/// The address of the client a request came from (the TCP peer; a proxy in front of
/// slotd would need to pass the real one, which slotd does not read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::IpAddr);

//! The accept loop: bounded connections, timeouts, graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::router::handle;
use crate::app::App;
use crate::metrics as m;
use crate::store::Store;

/// Resolves when the connection has had no request in progress, none begun and none
/// ended, for `timeout`. Requests, not bytes: an HTTP/2 client that only answers the
/// server's PINGs, or a client trickling headers that never make a request, is idle.
async fn idle(epoch: Instant, last: Arc<AtomicU64>, active: Arc<AtomicUsize>, timeout: Duration) {
    let step = (timeout / 4).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(step).await;
        let quiet = epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(last.load(Ordering::Relaxed)));
        if quiet >= timeout && active.load(Ordering::Acquire) == 0 {
            return;
        }
    }
}

/// Serves `app` on an already-bound listener until `shutdown` resolves; then stops
/// accepting, drains open connections for up to the grace period, and flushes the store.
pub async fn run<S: Store>(
    listener: TcpListener,
    app: Arc<App<S>>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = app.limits.clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper 1.12 runs this timer from the end of one response to the headers of the
        // next, idle keep-alive time included. Below the idle timeout it would close idle
        // connections early, under a load balancer that still reuses them (which then
        // answers 502): so it is the larger of the two, and `idle` closes idle ones.
        .header_read_timeout(limits.header_read_timeout.max(limits.idle_timeout))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.idle_timeout))
        .max_concurrent_streams(256);
    tokio::pin!(shutdown);
    loop {
        // Wait for room before accepting: beyond the limit, clients queue in the
        // kernel's backlog instead of costing us memory.
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
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
        let _ = stream.set_nodelay(true);
        let epoch = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        let active = Arc::new(AtomicUsize::new(0));
        let io = TokioIo::new(stream);
        let service = {
            let (app, active, last) = (app.clone(), active.clone(), last.clone());
            service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let (app, active, last) = (app.clone(), active.clone(), last.clone());
                // The client address, for per-address limits (login failures).
                req.extensions_mut().insert(PeerAddr(peer.ip()));
                // Relaxed: a watchdog that reads a slightly old instant closes a little later.
                let touch =
                    move || last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                async move {
                    touch();
                    active.fetch_add(1, Ordering::AcqRel);
                    let response = handle(&app, req).await;
                    active.fetch_sub(1, Ordering::AcqRel);
                    touch();
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let conn = graceful.watch(builder.serve_connection(io, service).into_owned());
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            metrics::gauge!(m::HTTP_CONNECTIONS).increment(1.0);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                () = idle(epoch, last, active, idle_timeout) => {
                    tracing::debug!("closing an idle connection");
                }
            }
            metrics::gauge!(m::HTTP_CONNECTIONS).decrement(1.0);
            drop(permit);
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

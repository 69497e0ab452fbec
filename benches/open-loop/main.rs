//! `open-loop`: an open-loop (fixed-rate) HTTP load generator for slotd's booking path.
//!
//! Request `i` is due at `start + i / rate`, whatever became of the earlier ones, and its
//! latency is counted from that intended start: time spent waiting in the generator (a
//! late timer, a busy core) counts against the answer, so coordinated omission cannot
//! hide a slow server. Requests go out over keep-alive HTTP/1.1 connections, one request
//! on each at a time, at most `--connections` in flight; a request that falls due while
//! that many are in flight (sent, or spawned and still waiting for the generator's own
//! CPU) is not sent and is counted as `not_sent`, never dropped silently: a run with
//! `not_sent` offered less than its rate. Prints one JSON line (see
//! `scripts/bench-goodput` and BENCHMARKS.md).
//!
//! - `workload`: the requests (bookings by distinct people, availability reads).
//! - `pool`: the keep-alive connections.
//! - `stats`: what the answers said, and the JSON line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use hyper::header::HeaderValue;
use slotd::token::TokenKey;
use tokio::task::JoinSet;

mod pool;
mod stats;
mod workload;

use pool::Pool;
use stats::{Failure, RunFacts, Stats};
use workload::Workload;

/// Sends bookings at a fixed rate and reports goodput, latency and shedding as JSON.
#[derive(Debug, Parser)]
#[command(name = "open-loop")]
struct Args {
    /// The server, HOST:PORT.
    #[arg(long)]
    target: SocketAddr,
    /// Requests per second offered.
    #[arg(long)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Requests in flight at most, each on its own connection; a request due beyond is
    /// counted as `not_sent`.
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// Connections opened before the run [default: --connections]. Opened mid-run, in a
    /// burst, they would overflow the server's listen backlog and wait out a 1 s SYN
    /// retransmission, which is the generator's doing, not the server's.
    #[arg(long)]
    preconnect: Option<usize>,
    /// The phase booked.
    #[arg(long, default_value = "01")]
    phase: String,
    /// A file of slot ids, one a line; bookings draw from them evenly.
    #[arg(long)]
    slots: PathBuf,
    /// The server's `--token-secret`, to sign person tokens.
    #[arg(long)]
    token_secret: String,
    /// Serial (`slotd::domain::synthetic_id`) of the first request's person.
    #[arg(long, default_value_t = 0)]
    first_person: u64,
    /// Percent of requests that read availability instead of booking.
    #[arg(long, default_value_t = 0)]
    get_share: u64,
    /// Query string of the availability reads, e.g. `?date=2021-07-16`.
    #[arg(long, default_value = "")]
    get_query: String,
    /// Send bookings without an `Idempotency-Key`.
    #[arg(long)]
    no_idempotency_key: bool,
    /// Milliseconds a request may take from being sent to its whole answer.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// A 2xx slower than this (from its intended start) is left out of `goodput_slo_rps`.
    #[arg(long, default_value_t = 1000)]
    slo_ms: u64,
    /// Runtime worker threads [default: the CPUs this process may run on].
    #[arg(long)]
    threads: Option<usize>,
    /// The `target` label in the JSON line [default: the address].
    #[arg(long)]
    label: Option<String>,
    /// Skip the one booking sent (and required to succeed) before the run.
    #[arg(long)]
    no_check: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(args.rate) || !positive(args.seconds) {
        bail!("--rate and --seconds must be positive");
    }
    if args.connections == 0 || args.get_share > 100 {
        bail!("--connections must be positive and --get-share at most 100");
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        runtime.worker_threads(n);
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let summary = runtime.block_on(run(args))?;
    println!("{summary}");
    Ok(())
}

fn workload(args: &Args) -> anyhow::Result<Workload> {
    let slots: Vec<String> = std::fs::read_to_string(&args.slots)
        .with_context(|| format!("reading {}", args.slots.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if slots.is_empty() {
        bail!("{} names no slot", args.slots.display());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    Ok(Workload {
        booking_path: format!("/v1/phases/{}/bookings", args.phase),
        availability_path: format!("/v1/phases/{}/availability{}", args.phase, args.get_query),
        get_share: args.get_share,
        slots,
        key: TokenKey::new(args.token_secret.as_bytes()),
        // Valid well past the run and its timeouts.
        expires_at: now.as_secs() as i64 + 2 * 3600,
        first_person: args.first_person,
        idempotency: (!args.no_idempotency_key).then(|| format!("ol{}", now.as_nanos())),
        host: HeaderValue::from_str(&args.target.to_string()).context("the target as a Host")?,
    })
}

async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let rate = args.rate;
    let total = (rate * args.seconds).round().max(1.0) as u64;
    let timeout = Duration::from_millis(args.timeout_ms);
    let workload = Arc::new(workload(&args)?);
    let pool = Arc::new(Pool::new(args.target));

    if !args.no_check {
        // One booking outside the run's people (request number `total`) must succeed:
        // a wrong secret, phase or slot list fails here, not as a run of 4xx.
        let req = workload
            .booking(total)
            .context("building the check request")?;
        match tokio::time::timeout(timeout, pool.send(req)).await {
            Ok(Ok(a)) if (200..300).contains(&a.status) => {}
            Ok(Ok(a)) => bail!("the check booking answered {}", a.status),
            Ok(Err(f)) => bail!("the check booking failed: {f:?}"),
            Err(_) => bail!("the check booking took over {timeout:?}"),
        }
    }
    pool.preconnect(
        args.preconnect
            .unwrap_or(args.connections)
            .min(args.connections),
    )
    .await
    .map_err(|f| anyhow::anyhow!("opening connections to {}: {f:?}", args.target))?;

    let stats = Arc::new(Mutex::new(Stats::default()));
    // Requests in flight. Only the dispatcher adds; tasks take themselves off when done.
    // Relaxed is enough: the count bounds concurrency and orders no other memory.
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let intended = |i: u64| start + Duration::from_secs_f64(i as f64 / rate);
    let (mut next, mut sent, mut max_lag) = (0u64, 0u64, Duration::ZERO);
    while next < total {
        let now = Instant::now();
        // Every request whose intended start has passed goes now: a late wake-up sends
        // a burst, and each request's latency still counts from its own intended start.
        let due = ((now.duration_since(start).as_secs_f64() * rate) as u64 + 1).min(total);
        while next < due {
            let at = intended(next);
            max_lag = max_lag.max(now.saturating_duration_since(at));
            if in_flight.load(Ordering::Relaxed) < args.connections {
                in_flight.fetch_add(1, Ordering::Relaxed);
                sent += 1;
                let (workload, pool, stats, in_flight) = (
                    workload.clone(),
                    pool.clone(),
                    stats.clone(),
                    in_flight.clone(),
                );
                tasks.spawn(async move {
                    let outcome = match workload.request(next) {
                        Ok(req) => tokio::time::timeout(timeout, pool.send(req)).await,
                        Err(_) => Ok(Err(Failure::Request)),
                    };
                    let latency = at.elapsed();
                    {
                        let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
                        match outcome {
                            Ok(Ok(a)) => s.answer(a.status, latency, a.retry_after),
                            Ok(Err(f)) => s.failure(f),
                            Err(_) => s.failure(Failure::Timeout),
                        }
                    }
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                });
            }
            next += 1;
        }
        // Finished tasks are reaped as the run goes, so the set holds only live ones.
        while tasks.try_join_next().is_some() {}
        if next < total {
            tokio::time::sleep_until(intended(next).into()).await;
        }
    }
    // Every task ends within its timeout.
    while tasks.join_next().await.is_some() {}

    let stats = std::mem::take(&mut *stats.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(stats.summary(&RunFacts {
        target: args.label.unwrap_or_else(|| args.target.to_string()),
        offered_rps: rate,
        seconds: args.seconds,
        scheduled: total,
        sent,
        connections_opened: pool.opened(),
        max_lag,
        slo: Duration::from_millis(args.slo_ms),
    }))
}

//! Building a running server from a [`Config`]: store, calendar, secrets, background
//! tasks, then the accept loop; and the offline audit.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::net::TcpListener;

use crate::app::App;
use crate::app::{Identity, Sms};
use crate::config::{
    AuditArgs, Config, ConfigError, Durability, EXIT_CONFIG, PopulationArgs, RepairArgs, StoreKind,
    parse_store,
};
use crate::domain::Calendar;
use crate::identity::password;
use crate::identity::population::{self, PopulationSpec};
use crate::settlement::audit::{Inputs, JourneyAudit, audit_phase};
use crate::sms::{Template, WebhookOptions};
use crate::store::identity::{EmbeddedIdentity, IdentityStore, RedisIdentity, Upsert};
use crate::store::outbox::Outbox;
use crate::store::rooms::{MemoryRooms, RedisRooms, RoomStore};
use crate::store::{EmbeddedStore, RedisStore, Store, StoreError};
use crate::token::TokenKey;
use crate::waiting_room::WaitingRooms;

/// Each Redis round trip of the offline audit: its pages are larger than a request's.
const AUDIT_REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the server could not start or the audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(String),
}

impl BootError {
    /// The process exit code: 64 for configuration, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            BootError::Config(_) => EXIT_CONFIG as u8,
            _ => 1,
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}

/// Binds `config.listen` and serves until `shutdown`.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), BootError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| BootError::Bind {
            addr: config.listen.to_string(),
            source,
        })?;
    serve_on(config, listener, shutdown).await
}

/// Serves on an already-bound listener until `shutdown` (tests bind port 0).
pub async fn serve_on(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BootError> {
    match &config.store {
        StoreKind::Embedded => {
            let (store, has_calendar, identity) = if config.ephemeral {
                tracing::warn!("ephemeral store: no journal, nothing survives a restart");
                (
                    EmbeddedStore::ephemeral(),
                    false,
                    EmbeddedIdentity::ephemeral(),
                )
            } else {
                let (store, report) =
                    EmbeddedStore::open(&config.data_dir, config.journal_max_batch)?;
                tracing::info!(
                    dir = %config.data_dir.display(),
                    records = report.records,
                    cut_bytes = report.truncated_bytes,
                    "journal replayed"
                );
                let (identity, records, cut) =
                    EmbeddedIdentity::open(&config.data_dir, config.journal_max_batch)?;
                tracing::info!(records, cut_bytes = cut, "identity journal replayed");
                (store, report.has_calendar, identity)
            };
            let store = Arc::new(store);
            store.spawn_compactor(config.snapshot_every_bytes);
            start(
                config,
                store,
                Arc::new(identity),
                Arc::new(MemoryRooms::default()),
                has_calendar,
                listener,
                shutdown,
            )
            .await
        }
        StoreKind::Redis(url) => {
            let store = RedisStore::connect_with(
                url,
                &config.redis_prefix,
                config.redis_timeout,
                config.durability,
                config.fast_path,
                config.snapshot_interval,
            )
            .await?;
            store.set_ledger_retention(config.ledger_retention);
            store.set_replication(config.redis_wait_replicas, config.redis_wait_timeout);
            let has_calendar = store.has_calendar();
            let (conn, prefix, timeout) = store.shared_connection();
            let identity = RedisIdentity::new(conn.clone(), &prefix, timeout);
            start(
                config,
                Arc::new(store),
                Arc::new(identity),
                Arc::new(RedisRooms::new(conn, &prefix, timeout)),
                has_calendar,
                listener,
                shutdown,
            )
            .await
        }
    }
}

/// Insured persons of the demo: enough for a walk-through and a browser test, their
/// credentials in the README.
pub const DEMO_PEOPLE: u64 = 1_000;

/// Loads the demo population into an empty registry: [`DEMO_PEOPLE`] synthetic people of
/// [`population::DEMO_SEED`], all with the password [`population::DRILL_PASSWORD`].
async fn load_demo_population(
    identity: &dyn IdentityStore,
    params: password::PasswordParams,
) -> Result<(), BootError> {
    if identity.person_count().await? > 0 {
        return Ok(());
    }
    let hash = password::hash(population::DRILL_PASSWORD, params)
        .map_err(|e| BootError::Io(format!("demo password: {e}")))?;
    let spec = PopulationSpec::new(DEMO_PEOPLE, population::DEMO_SEED);
    let people = (0..DEMO_PEOPLE)
        .map(|i| population::person(&spec, i, &hash).person)
        .collect();
    match identity.upsert_persons(people).await? {
        Upsert::Written(n) => tracing::info!(persons = n, "demo population loaded"),
        Upsert::CardTaken { .. } => {
            return Err(BootError::Io(
                "the demo population's cards belong to other persons in this store".into(),
            ));
        }
    }
    Ok(())
}

async fn start<S: Store + Outbox>(
    config: Config,
    store: Arc<S>,
    identity: Arc<dyn IdentityStore>,
    rooms: Arc<dyn RoomStore>,
    has_calendar: bool,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BootError> {
    if let Some(path) = &config.calendar {
        let calendar = read_calendar(path)?;
        let report = store.load_calendar(calendar).await?;
        tracing::info!(file = %path.display(), ?report, "calendar loaded");
    } else if !has_calendar && (config.demo || config.store == StoreKind::Embedded) {
        let report = store
            .load_calendar(crate::demo::calendar(OffsetDateTime::now_utc()))
            .await?;
        tracing::info!(?report, "demo national calendar loaded");
        load_demo_population(&*identity, config.identity.password).await?;
    } else if !has_calendar {
        tracing::warn!(
            "the store holds no calendar and none was given: no phase is served until one is \
             loaded (PUT /v1/admin/calendar, --calendar FILE, or --demo for the demo)"
        );
    }
    if config.identity.captcha_test_secret.is_some() {
        tracing::warn!(
            "CAPTCHA TEST MODE IS ON (--captcha-test-secret): answers are derivable by anyone \
             who knows the secret. For tests and drills only, never in production"
        );
    }
    let admin_token = secret(&config, config.admin_token.clone(), "admin-token")?;
    let token_secret = secret(&config, config.token_secret.clone(), "token-secret")?;
    let template = match &config.sms.template {
        Some(path) => {
            Template::from_file(path).map_err(|e| BootError::Io(format!("--sms-template: {e}")))?
        }
        None => Template::builtin(),
    };
    let gateway = crate::sms::open(
        &config.sms.gateway_or_default(&config.data_dir),
        WebhookOptions {
            timeout: config.sms.timeout,
            concurrency: config.sms.concurrency,
            ca_file: config.sms.ca_file.clone(),
        },
    )
    .map_err(|e| BootError::Io(format!("--sms-gateway: {e}")))?;
    let outbox: Arc<dyn Outbox> = store.clone();
    let app = Arc::new(App::new(
        store,
        TokenKey::new(token_secret.as_bytes()),
        admin_token,
        config.limits.clone(),
        Identity::new(identity, token_secret.as_bytes(), config.identity.clone()),
        Sms::new(outbox, config.sms.clone()),
        WaitingRooms::new(rooms, token_secret.as_bytes()),
    ));
    let background = app.spawn_background(config.snapshot_interval);
    let room_keeper = app.spawn_rooms();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(crate::dispatcher::run(
        app.clone(),
        gateway,
        template,
        stopped,
    ));
    app.sms.own_dispatcher(stop, dispatcher);
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(%addr, store = app.store.backend(), "slotd listening");
    if app.limits.web {
        tracing::info!(
            files = crate::http::web_files(),
            "web frontend at http://{addr}/ (--no-web turns it off)"
        );
    }
    crate::http::run(listener, app, shutdown).await;
    background.abort();
    room_keeper.abort();
    Ok(())
}

/// Reads and parses a calendar file.
pub fn read_calendar(path: &Path) -> Result<Calendar, BootError> {
    let raw = std::fs::read(path)
        .map_err(|e| BootError::Io(format!("calendar {}: {e}", path.display())))?;
    serde_json::from_slice(&raw)
        .map_err(|e| BootError::Io(format!("calendar {} does not parse: {e}", path.display())))
}

/// A configured secret, or the one kept in `DATA_DIR/<name>`, or a new random one
/// written there (mode 0600) so that restarts keep tokens valid.
fn secret(config: &Config, configured: Option<String>, name: &str) -> Result<String, BootError> {
    if let Some(s) = configured {
        return Ok(s);
    }
    let path = config.data_dir.join(name);
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if s.len() >= 8 {
            return Ok(s);
        }
    }
    let mut raw = [0u8; 24];
    getrandom::fill(&mut raw)
        .map_err(|e| BootError::Io(format!("no randomness for {name}: {e}")))?;
    let s = hex::encode(raw);
    std::fs::create_dir_all(&config.data_dir)
        .and_then(|()| write_private(&path, &s))
        .map_err(|e| BootError::Io(format!("cannot write {}: {e}", path.display())))?;
    tracing::info!(file = %path.display(), "generated {name}");
    Ok(s)
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(content.as_bytes())
}

/// `slotd repair`: reads each journal of the data directory, salvaging every valid
/// record around damaged ones, and says what the damage took (acknowledged bookings and
/// registration serials, from the gaps the survivors leave). With `--drop-damaged` it
/// saves each damaged file aside and rewrites it with the survivors. Answers whether the
/// directory is now free of damage.
pub fn repair(args: &RepairArgs, env: &HashMap<String, String>) -> Result<bool, BootError> {
    use crate::store::journal;
    let dir = args
        .data_dir
        .clone()
        .or_else(|| env.get("SLOTD_DATA_DIR").cloned())
        .unwrap_or_else(|| "data".into());
    let dir = Path::new(&dir);
    let io = |e: std::io::Error| BootError::Io(format!("repair: {e}"));
    let mut clean = true;
    for stem in ["journal", "identity"] {
        let files = crate::store::segments::list(dir, stem).map_err(io)?;
        // Every file of the journal: the snapshots and the segments, oldest first. What a
        // damaged file lost is judged against the records of all of them.
        let mut paths: Vec<(Option<u64>, std::path::PathBuf)> = files
            .snapshots
            .iter()
            .map(|(k, p)| (Some(*k), p.clone()))
            .collect();
        paths.extend(files.segments.iter().map(|(_, p)| (None, p.clone())));
        let mut all_records = Vec::new();
        let mut damaged_files = Vec::new();
        for (snapshot, path) in &paths {
            let (records, damaged) = journal::salvage(path).map_err(io)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let body = match snapshot {
                // A snapshot's header and end frames are not records.
                Some(_) => records
                    .iter()
                    .filter(|r| !r.starts_with(br#"{"snapshot":"#) && !r.starts_with(br#"{"end":"#))
                    .cloned()
                    .collect(),
                None => records.clone(),
            };
            if damaged.is_empty() {
                println!("{name}: {} records, no damage", body.len());
            } else {
                println!("{name}: DAMAGED, {} valid records survive", body.len());
                for d in &damaged {
                    println!(
                        "  bytes {}..{} unreadable ({}): {} bytes dropped",
                        d.offset,
                        d.resumes_at,
                        d.reason,
                        d.resumes_at - d.offset
                    );
                }
                damaged_files.push((*snapshot, path.clone(), name, body.clone()));
            }
            all_records.extend(body);
        }
        if damaged_files.is_empty() {
            continue;
        }
        if stem == "journal" {
            let lost = crate::store::lost_in(&all_records);
            println!(
                "  acknowledged bookings lost ({}): {}",
                lost.bookings.len(),
                lost.bookings.join(" ")
            );
            if !lost.orphans.is_empty() {
                println!(
                    "  changes or cancellations of lost bookings: {}",
                    lost.orphans.join(" ")
                );
            }
            if !lost.has_calendar {
                println!("  the calendar record is lost: load the calendar again (--calendar)");
            }
        } else {
            let lost = crate::store::identity::lost_serials(&all_records);
            let list: Vec<String> = lost.iter().map(u64::to_string).collect();
            println!(
                "  registrations lost (serials, {}): {}",
                lost.len(),
                list.join(" ")
            );
        }
        for (snapshot, path, name, body) in damaged_files {
            if args.drop_damaged {
                let aside = dir.join(format!(
                    "{name}.damaged-{}",
                    OffsetDateTime::now_utc().unix_timestamp()
                ));
                let framed: Vec<Vec<u8>> = match snapshot {
                    Some(k) => {
                        let mut v = vec![format!("{{\"snapshot\":{k}}}").into_bytes()];
                        v.extend(body.iter().cloned());
                        v.push(format!("{{\"end\":{}}}", body.len()).into_bytes());
                        v
                    }
                    None => body.clone(),
                };
                journal::rewrite(&path, &framed, &aside).map_err(io)?;
                println!(
                    "  saved the damaged file as {}; {name} now holds the {} valid records",
                    aside.display(),
                    body.len()
                );
            } else {
                clean = false;
                println!(
                    "  {name}: nothing changed: run again with --drop-damaged to drop the damaged records"
                );
            }
        }
    }
    Ok(clean)
}

/// `slotd population`: writes a synthetic population as registry NDJSON; answers how many
/// people it wrote. Everyone's password is [`population::DRILL_PASSWORD`], hashed once.
pub fn population(args: &PopulationArgs) -> Result<u64, BootError> {
    let params = password::PasswordParams {
        memory_kib: args.argon2_memory_kib,
        iterations: args.argon2_iterations,
        ..password::PasswordParams::default()
    };
    params.validate().map_err(|e| {
        BootError::Config(crate::config::ConfigError {
            setting: "--argon2-memory-kib".into(),
            reason: e,
        })
    })?;
    let spec = PopulationSpec {
        start: args.start,
        ..PopulationSpec::new(args.count, args.seed)
    };
    let io = |e: std::io::Error| BootError::Io(format!("population: {e}"));
    match &args.out {
        Some(path) => {
            let mut f = std::fs::File::create(path).map_err(io)?;
            population::write_ndjson(&spec, params, &mut f).map_err(io)
        }
        None => population::write_ndjson(&spec, params, &mut std::io::stdout().lock()).map_err(io),
    }
}

/// The journey audit of every phase.
async fn journeys<S: Store>(
    store: &S,
    outbox: &dyn Outbox,
    identity: &dyn IdentityStore,
    report: &crate::audit::AuditReport,
) -> Result<Vec<(String, JourneyAudit)>, StoreError> {
    let catalog = store.catalog();
    let inputs = Inputs::read(store, outbox).await?;
    let mut out = Vec::new();
    for p in &report.phases {
        let taken: HashMap<&str, u64> = p
            .slots
            .iter()
            .map(|s| (s.slot.as_str(), u64::from(s.booked)))
            .collect();
        let j = audit_phase(store, identity, &catalog, &p.phase, &inputs, |slot| {
            taken.get(slot).copied().unwrap_or(0)
        })
        .await?;
        out.push((p.phase.to_string(), j));
    }
    Ok(out)
}

/// `slotd audit`: replays a store read-only, prints the result, and answers whether
/// every invariant holds.
pub async fn audit(args: &AuditArgs, env: &HashMap<String, String>) -> Result<bool, BootError> {
    let store = parse_store(
        args.store
            .clone()
            .or_else(|| env.get("SLOTD_STORE").cloned()),
    )?;
    let report = match store {
        StoreKind::Embedded => {
            let dir = args
                .data_dir
                .clone()
                .or_else(|| env.get("SLOTD_DATA_DIR").cloned())
                .unwrap_or_else(|| "data".into());
            let (store, _) = EmbeddedStore::open_read_only(Path::new(&dir))?;
            let identity = EmbeddedIdentity::open_read_only(Path::new(&dir))?;
            let report = store.audit().await?;
            let journeys = journeys(&store, &store, &identity, &report).await?;
            (report, identity.audit().await?, journeys)
        }
        StoreKind::Redis(url) => {
            let prefix = args
                .redis_prefix
                .clone()
                .or_else(|| env.get("SLOTD_REDIS_PREFIX").cloned())
                .unwrap_or_else(|| "slotd".into());
            // Read-only, and the fast profile's check only warns: the audit runs against
            // whatever Redis the servers use. No fast path: the audit takes no seats.
            let store =
                RedisStore::connect(&url, &prefix, AUDIT_REDIS_TIMEOUT, Durability::None, false)
                    .await?;
            let report = store.audit().await;
            let (conn, prefix, timeout) = store.shared_connection();
            let identity = RedisIdentity::new(conn, &prefix, timeout.max(AUDIT_REDIS_TIMEOUT));
            let registrations = identity.audit().await;
            let journeys = match &report {
                Ok(r) => journeys(&store, &store, &identity, r).await,
                Err(e) => Err(e.clone()),
            };
            store.shutdown().await;
            (report?, registrations?, journeys?)
        }
    };
    let (report, registrations, journeys) = report;
    let ok = report.ok && registrations.ok && journeys.iter().all(|j| j.1.ok);
    // Written to a locked stdout, ignoring a closed pipe (`slotd audit --json | head`).
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({
                    "ok": ok,
                    "bookings": report,
                    "registrations": registrations,
                    "journeys": journeys.iter().map(|(p, j)| serde_json::json!({"phase": p, "journey": j})).collect::<Vec<_>>(),
                })
            )
            .unwrap_or_default()
        );
    } else {
        for p in &report.phases {
            let t = &p.totals;
            let _ = writeln!(
                out,
                "phase {}: {} slots, capacity {}, booked {}, live bookings {}, remaining {}, cancelled {}",
                p.phase,
                p.slots.len(),
                t.capacity,
                t.booked,
                t.live_bookings,
                t.remaining,
                t.cancelled_bookings
            );
        }
        for b in &report.breaches {
            let _ = writeln!(
                out,
                "BREACH {}",
                serde_json::to_string(b).unwrap_or_default()
            );
        }
        let r = &registrations;
        let _ = writeln!(
            out,
            "registrations: {} insured persons, {} events, {} live, {} cancelled, last serial {}",
            r.persons, r.events, r.live, r.cancelled, r.last_serial
        );
        for b in &r.breaches {
            let _ = writeln!(out, "BREACH registration: {b}");
        }
        for (phase, j) in &journeys {
            let _ = writeln!(
                out,
                "phase {phase} journey: invited {}, settled {}, messages {} (sent {}, dead {}), attended {}, no-show {}",
                j.invited, j.settled, j.messages, j.sent, j.dead, j.attended, j.no_show
            );
            for b in &j.breaches {
                let _ = writeln!(out, "BREACH phase {phase}: {b}");
            }
        }
        let _ = writeln!(out, "{}", if ok { "audit: ok" } else { "audit: FAILED" });
    }
    Ok(ok)
}

//! `Config`: every setting and limit, parsed from flags and `SLOTD_*` variables by a pure
//! function and validated before anything binds.
//!
//! Precedence: a flag, then its environment variable (`--data-dir` ↔ `SLOTD_DATA_DIR`),
//! then the default documented on the field.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::identity::login::LoginPolicy;
use crate::identity::password::PasswordParams;

/// The exit code for invalid configuration (`EX_USAGE`).
pub const EXIT_CONFIG: i32 = 64;

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "slotd", version, about = "Vaccination slot-booking server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `slotd serve` or `slotd audit`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the booking API.
    Serve(Box<ServeArgs>),
    /// Check a store's invariants offline; exits non-zero on any breach.
    Audit(AuditArgs),
    /// Write a synthetic national population as registry NDJSON (for `PUT /v1/admin/registry`).
    Population(PopulationArgs),
    /// Show what a damaged journal holds; with --drop-damaged, keep every valid record.
    Repair(RepairArgs),
    /// Print the configuration `slotd serve` would run with (secrets masked); exits 64
    /// when it is invalid.
    CheckConfig(Box<ServeArgs>),
    /// Print the built-in demo national calendar, as of now, as calendar JSON (a starting
    /// point for your own, or to load again with a phase's window moved).
    DemoCalendar,
    /// Make valid national ID numbers (checksummed, as the API requires), or check one.
    Id(IdArgs),
}

/// Flags of `slotd id`.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Random ones (the default unless --serial or --check is given).
    #[arg(long, conflicts_with_all = ["serial", "check"])]
    pub random: bool,
    /// How many, one a line.
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// The synthetic person of this serial and the ones after it (the numbering of the
    /// drill and of `slotd population`).
    #[arg(long, conflicts_with = "check")]
    pub serial: Option<u64>,
    /// Check one: prints it back when valid (exit 0), else the reason (exit 1).
    #[arg(long)]
    pub check: Option<String>,
}

/// Flags of `slotd repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The embedded store's directory (its `journal.log` and `identity.log`) [default: ./data].
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Save each damaged journal aside (`NAME.damaged-UNIXTIME`) and rewrite it with every
    /// valid record, dropping the damaged ones. Without it nothing is changed.
    #[arg(long)]
    pub drop_damaged: bool,
}

/// Flags of `slotd population`.
#[derive(Debug, Args)]
pub struct PopulationArgs {
    /// How many people.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Different seeds give unrelated populations; 2021 is the demo's.
    #[arg(long, default_value_t = 2021)]
    pub seed: u64,
    /// The first person's index, to write disjoint shards.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
    /// The file to write [default: standard output].
    #[arg(long)]
    pub out: Option<String>,
    /// argon2id memory of the one shared password hash, KiB.
    #[arg(long, default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// argon2id passes of the shared password hash.
    #[arg(long, default_value_t = 2)]
    pub argon2_iterations: u32,
}

/// Flags of `slotd serve`; each also reads `SLOTD_<FLAG>`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// `embedded` or `redis://HOST:PORT[/DB]` [default: embedded].
    #[arg(long)]
    pub store: Option<String>,
    /// The embedded store's journal directory [default: ./data].
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Embedded store without a journal: nothing survives a restart.
    #[arg(long)]
    pub ephemeral: bool,
    /// Calendar JSON file [default: none; an empty embedded store gets the demo calendar].
    #[arg(long)]
    pub calendar: Option<String>,
    /// Load the built-in demo national calendar and population into an empty store, also
    /// a Redis one (an empty embedded store gets them without this flag).
    #[arg(long)]
    pub demo: bool,
    /// Admin bearer secret [default: generated and written to DATA_DIR/admin-token].
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Token signing secret shared by all instances [default: generated into DATA_DIR/token-secret].
    #[arg(long)]
    pub token_secret: Option<String>,
    /// Largest request body for person endpoints, bytes [default: 16384].
    #[arg(long)]
    pub max_body_bytes: Option<String>,
    /// Largest request body for admin endpoints (calendars, invitations), bytes [default: 536870912].
    #[arg(long)]
    pub max_admin_body_bytes: Option<String>,
    /// Seconds a request's headers have to arrive whole, counted from their first byte
    /// (a new connection's first request: from the accept); trickling cannot extend it.
    /// Idle time between requests counts against --idle-timeout instead [default: 10].
    #[arg(long)]
    pub header_read_timeout: Option<String>,
    /// Seconds a request body may take to arrive (a large admin body: between two parts)
    /// [default: 10].
    #[arg(long)]
    pub body_read_timeout: Option<String>,
    /// Log one request in N at info (5xx at warn, folded per 10 s); 0 logs none [default: 1000].
    #[arg(long)]
    pub access_log_sample: Option<String>,
    /// Seconds an idle keep-alive connection is kept [default: 75].
    #[arg(long)]
    pub idle_timeout: Option<String>,
    /// Seconds a request may take from its headers to its answer; beyond, 503 `overloaded`
    /// (admin routes, which stream large bodies, are not bounded) [default: 30].
    #[arg(long)]
    pub request_timeout: Option<String>,
    /// Open connections at most. Beyond, a connection is still accepted, into a small
    /// overflow lane (max(64, this / 8) connections, 2 s each) that serves /health/* and
    /// /metrics and answers 503 `overloaded` to anything else [default: 20000].
    #[arg(long)]
    pub max_connections: Option<String>,
    /// Open connections from one client address at most; beyond, a new one is closed at
    /// once. Peers in --trusted-proxies are exempt; 0: no limit [default: 256].
    #[arg(long)]
    pub max_connections_per_address: Option<String>,
    /// Requests in flight at most; beyond, 503 `overloaded` [default: 8192].
    #[arg(long)]
    pub max_in_flight: Option<String>,
    /// Booking writes per person per second; beyond, 429 `rate-limited` [default: 10].
    #[arg(long)]
    pub person_write_rate: Option<String>,
    /// Reads of one's own bookings per person per second; beyond, 429 [default: 5].
    #[arg(long)]
    pub person_read_rate: Option<String>,
    /// Requests per second from one client address to bookings, availability, captchas
    /// and logins; beyond, 429; 0: no limit [default: 200, generous for carrier NAT].
    #[arg(long)]
    pub address_rate: Option<String>,
    /// The burst a client address may take above its rate [default: 2 × the rate].
    #[arg(long)]
    pub address_burst: Option<String>,
    /// Proxies whose X-Forwarded-For names the client, comma-separated addresses or
    /// ranges (`10.0.0.0/8,192.168.1.7`) [default: none: the TCP peer is the client].
    #[arg(long)]
    pub trusted_proxies: Option<String>,
    /// Seconds to drain connections at shutdown [default: 10].
    #[arg(long)]
    pub shutdown_grace: Option<String>,
    /// Records per journal group commit at most [default: 8192].
    #[arg(long)]
    pub journal_max_batch: Option<String>,
    /// Journal bytes after which the embedded store writes a snapshot and starts a new
    /// segment, so that a restart reads little journal; 0: never [default: 67108864].
    #[arg(long)]
    pub snapshot_every_bytes: Option<String>,
    /// Milliseconds between availability snapshots [default: 250].
    #[arg(long)]
    pub snapshot_interval_ms: Option<String>,
    /// Key prefix in Redis [default: slotd].
    #[arg(long)]
    pub redis_prefix: Option<String>,
    /// Seconds of Redis ledger kept behind its newest entry; older entries are trimmed
    /// (instances' mirrors read them within a fraction of a second) [default: 600].
    #[arg(long)]
    pub ledger_retention_secs: Option<String>,
    /// Milliseconds before a Redis call counts as failed [default: 2000].
    #[arg(long)]
    pub redis_timeout_ms: Option<String>,
    /// Redis durability profile: `fast`, `durable` or `none` [default: fast].
    #[arg(long)]
    pub durability: Option<String>,
    /// `on` or `off`: answer known-full slots from the local mirror [default: on].
    #[arg(long)]
    pub fast_path: Option<String>,
    /// Redis replicas that must hold a booking before it is acknowledged (`WAIT`); a
    /// write they do not confirm in time answers 503 [default: 0].
    #[arg(long)]
    pub redis_wait_replicas: Option<String>,
    /// Milliseconds a write waits for those replicas [default: 500].
    #[arg(long)]
    pub redis_wait_timeout_ms: Option<String>,
    /// TESTS AND DRILLS ONLY: captcha answers become derivable from this secret (the
    /// first 6 hex characters of HMAC-SHA256(secret, id)) [default: off].
    #[arg(long)]
    pub captcha_test_secret: Option<String>,
    /// Seconds a captcha challenge stays valid [default: 120].
    #[arg(long)]
    pub captcha_ttl: Option<String>,
    /// argon2id memory per password hash, KiB [default: 19456, OWASP's minimum].
    #[arg(long)]
    pub argon2_memory_kib: Option<String>,
    /// argon2id passes [default: 2].
    #[arg(long)]
    pub argon2_iterations: Option<String>,
    /// Password hashes computed at once; the rest wait [default: the number of cores].
    #[arg(long)]
    pub hashing_threads: Option<String>,
    /// Logins and captchas waiting for a hashing thread at most; beyond, 503 [default: 256].
    #[arg(long)]
    pub hashing_queue: Option<String>,
    /// Login failures after which an account waits --login-throttle-seconds between tries [default: 5].
    #[arg(long)]
    pub login_throttle_after: Option<String>,
    /// [default: 30].
    #[arg(long)]
    pub login_throttle_seconds: Option<String>,
    /// Login failures after which an account is locked, at most 100 [default: 20].
    #[arg(long)]
    pub login_lock_after: Option<String>,
    /// [default: 3600].
    #[arg(long)]
    pub login_lock_seconds: Option<String>,
    /// Login failures from one client address before it is throttled [default: 200].
    #[arg(long)]
    pub login_address_throttle_after: Option<String>,
    /// Seconds a registration token lives [default: 1200].
    #[arg(long)]
    pub registration_token_ttl: Option<String>,
    /// Seconds a booking token from a login lives [default: 86400].
    #[arg(long)]
    pub booking_token_ttl: Option<String>,
    /// Seconds a kiosk token lives [default: 600].
    #[arg(long)]
    pub kiosk_token_ttl: Option<String>,
    /// Where invitation texts go: `file:PATH` (one JSON line per message) or an
    /// `http://` (or, built with `--features https-webhook`, `https://`) webhook
    /// [default: file:DATA_DIR/sms.ndjson].
    #[arg(long)]
    pub sms_gateway: Option<String>,
    /// Messages sent per second at most, across this instance [default: 100].
    #[arg(long)]
    pub sms_rate: Option<String>,
    /// Failed sends after which a message is dead [default: 12].
    #[arg(long)]
    pub sms_max_attempts: Option<String>,
    /// Seconds a webhook call may take [default: 10].
    #[arg(long)]
    pub sms_timeout: Option<String>,
    /// Webhook calls in flight at once [default: 16].
    #[arg(long)]
    pub sms_concurrency: Option<String>,
    /// The booking address the invitation text names [default: https://1922.gov.tw].
    #[arg(long)]
    pub sms_booking_url: Option<String>,
    /// A zh-TW invitation template file with {phase}, {opens}, {closes}, {url}
    /// [default: the built-in text].
    #[arg(long)]
    pub sms_template: Option<String>,
    /// Share of a phase's doses that settlement invites up to, 0 < share <= 1 [default: 1].
    #[arg(long)]
    pub settlement_share: Option<String>,
    /// PEM certificates an https SMS webhook may chain to, besides the system's roots.
    #[arg(long)]
    pub sms_ca_file: Option<String>,
    /// A browser origin allowed to call the API (`https://host[:port]`); repeat the flag
    /// for more, or list them comma-separated in SLOTD_CORS_ORIGINS [default: none].
    #[arg(long = "cors-origin")]
    pub cors_origin: Vec<String>,
    /// Do not serve the reference web frontend at `/` [default: served].
    #[arg(long)]
    pub no_web: bool,
}

/// Flags of `slotd audit`.
#[derive(Debug, Default, Args)]
pub struct AuditArgs {
    /// The embedded store's journal directory [default: ./data].
    #[arg(long)]
    pub data_dir: Option<String>,
    /// `embedded` or `redis://...` [default: embedded].
    #[arg(long)]
    pub store: Option<String>,
    /// Key prefix in Redis [default: slotd].
    #[arg(long)]
    pub redis_prefix: Option<String>,
    /// Print the whole report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Which store holds the bookings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// In memory with a journal in `data_dir` (unless ephemeral).
    Embedded,
    /// Redis at this URL.
    Redis(String),
}

/// What a Redis crash may lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// AOF `everysec`: up to about a second of acknowledged bookings. A Redis without AOF
    /// is refused at start-up.
    Fast,
    /// AOF `always`, checked at start-up: nothing acknowledged.
    Durable,
    /// `--durability none`: whatever Redis keeps, AOF or not (a warning is logged). For
    /// throwaway runs and read-only tools, never for an opening.
    None,
}

/// Identity: captchas, password hashing, login throttling and token lifetimes.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Default none (off). Tests and drills only; logged as a warning at start.
    pub captcha_test_secret: Option<String>,
    /// Default 120 s.
    pub captcha_ttl: Duration,
    /// Default: argon2id, 19 MiB, 2 passes, 1 lane (see [`PasswordParams`]).
    pub password: PasswordParams,
    /// Default: the number of cores. Each hash holds one thread and `memory_kib`.
    pub hashing_threads: usize,
    /// Default 256: requests waiting for a hashing thread; beyond, `503 overloaded` at
    /// once, so a login or captcha flood cannot hold the in-flight budget bookings share.
    pub hashing_queue: usize,
    /// Default: see [`LoginPolicy`].
    pub login: LoginPolicy,
    /// Default 20 minutes: long enough to fill in the form.
    pub registration_token_ttl: Duration,
    /// Default 24 hours: a person logs in once for the opening day, so the hashing
    /// capacity is spent once per person, not once per visit.
    pub booking_token_ttl: Duration,
    /// Default 10 minutes: one person at one terminal.
    pub kiosk_token_ttl: Duration,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            captcha_test_secret: None,
            captcha_ttl: Duration::from_secs(120),
            password: PasswordParams::default(),
            hashing_threads: std::thread::available_parallelism().map_or(1, usize::from),
            hashing_queue: 256,
            login: LoginPolicy::default(),
            registration_token_ttl: Duration::from_secs(1200),
            booking_token_ttl: Duration::from_secs(86_400),
            kiosk_token_ttl: Duration::from_secs(600),
        }
    }
}

/// Settlement and the invitation texts.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// Default none: `file:` `sms.ndjson` in the data directory.
    pub gateway: Option<crate::sms::GatewaySpec>,
    /// Default 100 messages/s: carriers cap throughput per sender.
    pub rate: u32,
    /// Default 12: the waits between tries are drawn up to 1, 2, 4 … s, capped at 5
    /// minutes, so a text is tried for up to about 18 minutes (9 on average) before it is
    /// dead. While the carrier is down as a whole the dispatcher pauses instead (see
    /// `dispatcher`), so an outage does not use up attempts.
    pub max_attempts: u32,
    /// Default 10 s per webhook call; a claim's lease is four times this.
    pub timeout: Duration,
    /// Default 16 webhook calls in flight.
    pub concurrency: usize,
    /// Default `https://1922.gov.tw`, the 2021 booking site.
    pub booking_url: String,
    /// Default none: the built-in text.
    pub template: Option<PathBuf>,
    /// Default none: the system's roots only.
    pub ca_file: Option<PathBuf>,
    /// Default 1.0 (2021 filled 83.8 % of phase 2's doses).
    pub settlement_share: f64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            gateway: None,
            rate: 100,
            max_attempts: 12,
            timeout: Duration::from_secs(10),
            concurrency: 16,
            booking_url: "https://1922.gov.tw".into(),
            template: None,
            ca_file: None,
            settlement_share: 1.0,
        }
    }
}

impl SmsConfig {
    /// The gateway to use: the configured one, else the file in `data_dir`.
    pub fn gateway_or_default(&self, data_dir: &std::path::Path) -> crate::sms::GatewaySpec {
        self.gateway
            .clone()
            .unwrap_or_else(|| crate::sms::GatewaySpec::File(data_dir.join("sms.ndjson")))
    }
}

/// Bounds on what clients may make the server hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Person endpoints' body limit. Default 16 KiB: a booking body is under 100 bytes.
    pub max_body_bytes: usize,
    /// Admin body limit. Default 512 MiB: 20 million invitations as NDJSON.
    pub max_admin_body_bytes: usize,
    /// Default 10 s: a request's headers must arrive whole within it of their first byte,
    /// and a new connection's first request within it of the accept (see
    /// `http::connection`); trickling bytes does not extend it.
    pub header_read_timeout: Duration,
    /// Default 10 s: a request body (a person's is under 1 KiB) must arrive whole within
    /// it; a large admin body, each part within it. Beyond, `408 request-timeout`.
    pub body_read_timeout: Duration,
    /// Default none: browser origins allowed to call the API (CORS).
    pub cors_origins: Vec<String>,
    /// Default on: the reference web frontend is served at `/` (`--no-web` turns it off).
    pub web: bool,
    /// Default 1 s: `Cache-Control: max-age` of availability pages, the snapshot's age
    /// rounded up (set from `--snapshot-interval-ms`).
    pub availability_max_age: Duration,
    /// Default 1,000: one request in a thousand is logged at info (5xx at warn, folded
    /// per 10 s); 0 logs none.
    pub access_log_sample: u64,
    /// Default 75 s (longer than common load balancers' 60 s, so they close first).
    pub idle_timeout: Duration,
    /// Default 30 s: a backstop on a request from its headers to its answer (the
    /// store's own timeouts and the body timeout come first); beyond, `503 overloaded`.
    /// Admin routes are not bounded: an import or a settlement may take minutes.
    pub request_timeout: Duration,
    /// Default 20,000. Beyond, connections go to the overflow lane (see
    /// [`Limits::overflow_connections`]).
    pub max_connections: usize,
    /// Default 256 connections from one peer address (0: no limit); peers in
    /// `trusted_proxies` are exempt. Beyond, a new connection is closed at once.
    pub max_connections_per_address: usize,
    /// Default 2 s: how long an overflow-lane connection may stay open while it is not
    /// being answered.
    pub overflow_deadline: Duration,
    /// Default 8,192: beyond this, queueing only adds latency; shed with 503.
    pub max_in_flight: usize,
    /// Default 10 writes per person per second: people click; scripts hammer.
    pub person_write_rate: u32,
    /// Default 5: a person's own-bookings reads per second (a page is cheap, a script
    /// polling it in a loop is not).
    pub person_read_rate: u32,
    /// Default 200 requests/s per client address (0: none), on the routes a flood uses.
    pub address_rate: u32,
    /// Default 400.
    pub address_burst: u32,
    /// Default none.
    pub trusted_proxies: Vec<crate::http::Cidr>,
    /// Default 10 s.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            max_admin_body_bytes: 512 << 20,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            cors_origins: Vec::new(),
            web: true,
            availability_max_age: Duration::from_secs(1),
            access_log_sample: 1_000,
            idle_timeout: Duration::from_secs(75),
            request_timeout: Duration::from_secs(30),
            max_connections: 20_000,
            max_connections_per_address: 256,
            overflow_deadline: Duration::from_secs(2),
            max_in_flight: 8_192,
            person_write_rate: 10,
            person_read_rate: 5,
            address_rate: 200,
            address_burst: 400,
            trusted_proxies: Vec::new(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// Connections the overflow lane holds at most, beyond `max_connections`:
    /// max(64, `max_connections` / 8). Probes and scrapes need few; when it is full, a new
    /// connection displaces the oldest one there that is not being answered.
    pub fn overflow_connections(&self) -> usize {
        (self.max_connections / 8).max(64)
    }
}

/// The whole configuration of `slotd serve`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Default embedded.
    pub store: StoreKind,
    /// Default `./data`.
    pub data_dir: PathBuf,
    /// Default false.
    pub ephemeral: bool,
    /// Default none: the demo national calendar, unless the store already has one.
    pub calendar: Option<PathBuf>,
    /// Default off: the demo calendar and population go only into an empty *embedded*
    /// store; a Redis store gets them only with `--demo` (a wrong prefix or a flushed
    /// Redis must not open a phase to everyone).
    pub demo: bool,
    /// Default none: generated (see [`ServeArgs::admin_token`]).
    pub admin_token: Option<String>,
    /// Default none: generated (see [`ServeArgs::token_secret`]).
    pub token_secret: Option<String>,
    pub limits: Limits,
    /// Default 8,192.
    pub journal_max_batch: usize,
    /// Default 64 MiB: a segment of that size replays in about a second.
    pub snapshot_every_bytes: u64,
    /// Default 250 ms.
    pub snapshot_interval: Duration,
    /// How much Redis ledger is kept behind its newest entry.
    pub ledger_retention: Duration,
    /// Default `slotd`.
    pub redis_prefix: String,
    /// Default 2 s.
    pub redis_timeout: Duration,
    /// Default fast.
    pub durability: Durability,
    /// Default on.
    pub fast_path: bool,
    /// Replicas that must confirm each booking write (`WAIT`), and for how long.
    pub redis_wait_replicas: u32,
    pub redis_wait_timeout: Duration,
    pub identity: IdentityConfig,
    pub sms: SmsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: StoreKind::Embedded,
            data_dir: PathBuf::from("data"),
            ephemeral: false,
            calendar: None,
            demo: false,
            admin_token: None,
            token_secret: None,
            limits: Limits::default(),
            journal_max_batch: 8_192,
            snapshot_every_bytes: 64 << 20,
            snapshot_interval: Duration::from_millis(250),
            ledger_retention: Duration::from_secs(600),
            redis_prefix: "slotd".into(),
            redis_timeout: Duration::from_secs(2),
            durability: Durability::Fast,
            fast_path: true,
            redis_wait_replicas: 0,
            redis_wait_timeout: Duration::from_millis(500),
            identity: IdentityConfig::default(),
            sms: SmsConfig::default(),
        }
    }
}

/// Invalid configuration: one line naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    /// The flag (`--max-body-bytes`) or the variable (`SLOTD_MAX_BODY_BYTES`) the value
    /// came from.
    pub setting: String,
    pub reason: String,
}

fn bad(setting: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.into(),
        reason: reason.into(),
    }
}

struct Source<'a> {
    env: &'a HashMap<String, String>,
}

impl Source<'_> {
    /// The flag's value, else `SLOTD_<NAME>`.
    fn get(&self, flag: &Option<String>, var: &str) -> Option<String> {
        flag.clone().or_else(|| self.env.get(var).cloned())
    }

    /// What an error names: the flag when it was given, else the variable.
    fn origin(&self, flag: &Option<String>, var: &str) -> String {
        if flag.is_some() {
            flag_name(var)
        } else {
            var.to_string()
        }
    }

    fn number<T>(
        &self,
        flag: &Option<String>,
        var: &'static str,
        default: T,
        min: T,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        match self.get(flag, var) {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<T>() {
                Ok(v) if v >= min => Ok(v),
                Ok(_) => Err(bad(
                    self.origin(flag, var),
                    format!("must be at least {min}, got {raw}"),
                )),
                Err(_) => Err(bad(
                    self.origin(flag, var),
                    format!("not a number: {raw:?}"),
                )),
            },
        }
    }

    fn flag(&self, flag: bool, var: &'static str) -> Result<bool, ConfigError> {
        // A flag given on the command line cannot be invalid: it is present or absent.
        if flag {
            return Ok(true);
        }
        parse_bool(self.env.get(var).map(String::as_str), var, false)
    }
}

/// `SLOTD_MAX_BODY_BYTES` → `--max-body-bytes`.
fn flag_name(var: &str) -> String {
    format!(
        "--{}",
        var.trim_start_matches("SLOTD_")
            .to_ascii_lowercase()
            .replace('_', "-")
    )
}

fn parse_bool(raw: Option<&str>, var: &str, default: bool) -> Result<bool, ConfigError> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off" | "") => Ok(false),
        Some(other) => Err(bad(var, format!("expected on or off, got {other:?}"))),
    }
}

/// Parses a store URL: `embedded` or `redis://...` (`rediss://` for TLS is not built in).
pub fn parse_store(raw: Option<String>) -> Result<StoreKind, ConfigError> {
    match raw.as_deref().map(str::trim) {
        None | Some("" | "embedded") => Ok(StoreKind::Embedded),
        Some(url) if url.starts_with("redis://") || url.starts_with("redis+unix://") => {
            Ok(StoreKind::Redis(url.to_string()))
        }
        Some(other) => Err(bad(
            "SLOTD_STORE",
            format!("expected embedded or redis://HOST:PORT[/DB], got {other:?}"),
        )),
    }
}

impl Config {
    /// The effective configuration, one `name = value` a line, secrets masked: what
    /// `slotd check-config` prints.
    pub fn describe(&self) -> String {
        let secret = |s: &Option<String>, generated: &str| match s {
            Some(v) => format!("set ({} characters, masked)", v.chars().count()),
            None => generated.to_string(),
        };
        let store = match &self.store {
            StoreKind::Embedded => "embedded".to_string(),
            StoreKind::Redis(url) => match url.split_once('@') {
                // A password in the URL is a secret too.
                Some((_, host)) => format!("redis://***@{host}"),
                None => url.clone(),
            },
        };
        let l = &self.limits;
        let i = &self.identity;
        let lines = [
            ("listen", self.listen.to_string()),
            ("store", store),
            ("data-dir", self.data_dir.display().to_string()),
            ("ephemeral", self.ephemeral.to_string()),
            (
                "calendar",
                self.calendar.as_ref().map_or_else(
                    || "none (the store's; the demo into an empty embedded store)".into(),
                    |c| c.display().to_string(),
                ),
            ),
            ("demo", self.demo.to_string()),
            (
                "admin-token",
                secret(&self.admin_token, "generated into DATA_DIR/admin-token"),
            ),
            (
                "token-secret",
                secret(&self.token_secret, "generated into DATA_DIR/token-secret"),
            ),
            ("max-body-bytes", l.max_body_bytes.to_string()),
            ("max-admin-body-bytes", l.max_admin_body_bytes.to_string()),
            (
                "header-read-timeout",
                format!("{:?}", l.header_read_timeout),
            ),
            ("body-read-timeout", format!("{:?}", l.body_read_timeout)),
            ("idle-timeout", format!("{:?}", l.idle_timeout)),
            ("request-timeout", format!("{:?}", l.request_timeout)),
            (
                "max-connections",
                format!(
                    "{}, then an overflow lane of {} for /health/* and /metrics",
                    l.max_connections,
                    l.overflow_connections()
                ),
            ),
            (
                "max-connections-per-address",
                match l.max_connections_per_address {
                    0 => "no limit".to_string(),
                    n => n.to_string(),
                },
            ),
            ("max-in-flight", l.max_in_flight.to_string()),
            ("person-write-rate", l.person_write_rate.to_string()),
            ("person-read-rate", l.person_read_rate.to_string()),
            (
                "address-rate",
                format!("{}/s, burst {}", l.address_rate, l.address_burst),
            ),
            ("trusted-proxies", format!("{:?}", l.trusted_proxies)),
            ("web", l.web.to_string()),
            ("shutdown-grace", format!("{:?}", l.shutdown_grace)),
            ("journal-max-batch", self.journal_max_batch.to_string()),
            (
                "snapshot-every-bytes",
                self.snapshot_every_bytes.to_string(),
            ),
            ("snapshot-interval", format!("{:?}", self.snapshot_interval)),
            ("ledger-retention", format!("{:?}", self.ledger_retention)),
            ("redis-prefix", self.redis_prefix.clone()),
            ("redis-timeout", format!("{:?}", self.redis_timeout)),
            (
                "durability",
                format!("{:?}", self.durability).to_lowercase(),
            ),
            ("fast-path", self.fast_path.to_string()),
            ("redis-wait-replicas", self.redis_wait_replicas.to_string()),
            (
                "redis-wait-timeout",
                format!("{:?}", self.redis_wait_timeout),
            ),
            ("captcha-test-secret", secret(&i.captcha_test_secret, "off")),
            ("captcha-ttl", format!("{:?}", i.captcha_ttl)),
            (
                "argon2",
                format!(
                    "argon2id, {} KiB, {} iterations, {} lane(s)",
                    i.password.memory_kib, i.password.iterations, i.password.parallelism
                ),
            ),
            ("hashing-threads", i.hashing_threads.to_string()),
            ("hashing-queue", i.hashing_queue.to_string()),
            (
                "login",
                format!(
                    "throttle after {} for {} s, lock after {} for {} s, address throttle after {}",
                    i.login.throttle_after,
                    i.login.throttle_seconds,
                    i.login.lock_after,
                    i.login.lock_seconds,
                    i.login.address_throttle_after
                ),
            ),
            (
                "registration-token-ttl",
                format!("{:?}", i.registration_token_ttl),
            ),
            ("booking-token-ttl", format!("{:?}", i.booking_token_ttl)),
            ("kiosk-token-ttl", format!("{:?}", i.kiosk_token_ttl)),
            (
                "sms-gateway",
                self.sms.gateway_or_default(&self.data_dir).to_string(),
            ),
            ("sms-rate", format!("{}/s", self.sms.rate)),
            ("sms-max-attempts", self.sms.max_attempts.to_string()),
            ("sms-timeout", format!("{:?}", self.sms.timeout)),
            ("sms-concurrency", self.sms.concurrency.to_string()),
            ("sms-booking-url", self.sms.booking_url.clone()),
            (
                "sms-template",
                self.sms
                    .template
                    .as_ref()
                    .map_or_else(|| "built-in".into(), |p| p.display().to_string()),
            ),
            (
                "sms-ca-file",
                self.sms
                    .ca_file
                    .as_ref()
                    .map_or_else(|| "none".into(), |p| p.display().to_string()),
            ),
            ("settlement-share", self.sms.settlement_share.to_string()),
        ];
        lines
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Builds and validates the configuration from parsed flags and an environment.
    pub fn from_args(
        args: &ServeArgs,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let src = Source { env };
        let d = Config::default();
        let dl = Limits::default();
        let listen = match src.get(&args.listen, "SLOTD_LISTEN") {
            None => d.listen,
            Some(raw) => raw.parse().map_err(|_| {
                bad(
                    src.origin(&args.listen, "SLOTD_LISTEN"),
                    format!("not an address like 127.0.0.1:8080: {raw:?}"),
                )
            })?,
        };
        let secs = |flag: &Option<String>, var: &'static str, default: Duration| {
            src.number(flag, var, default.as_secs(), 1)
                .map(Duration::from_secs)
        };
        let limits = Limits {
            availability_max_age: Duration::from_secs(1),
            max_body_bytes: src.number(
                &args.max_body_bytes,
                "SLOTD_MAX_BODY_BYTES",
                dl.max_body_bytes,
                256,
            )?,
            max_admin_body_bytes: src.number(
                &args.max_admin_body_bytes,
                "SLOTD_MAX_ADMIN_BODY_BYTES",
                dl.max_admin_body_bytes,
                1024,
            )?,
            header_read_timeout: secs(
                &args.header_read_timeout,
                "SLOTD_HEADER_READ_TIMEOUT",
                dl.header_read_timeout,
            )?,
            body_read_timeout: secs(
                &args.body_read_timeout,
                "SLOTD_BODY_READ_TIMEOUT",
                dl.body_read_timeout,
            )?,
            web: !src.flag(args.no_web, "SLOTD_NO_WEB")?,
            cors_origins: {
                let (list, origin) = if args.cors_origin.is_empty() {
                    let env = src
                        .env
                        .get("SLOTD_CORS_ORIGINS")
                        .cloned()
                        .unwrap_or_default();
                    (
                        env.split(',')
                            .map(|o| o.trim().to_string())
                            .filter(|o| !o.is_empty())
                            .collect::<Vec<_>>(),
                        "SLOTD_CORS_ORIGINS",
                    )
                } else {
                    (args.cors_origin.clone(), "--cors-origin")
                };
                if let Some(wrong) = list.iter().find(|o| !crate::http::valid_origin(o)) {
                    return Err(bad(
                        origin,
                        format!(
                            "{wrong:?} is not an origin: scheme://host[:port], as a browser sends it"
                        ),
                    ));
                }
                list
            },
            idle_timeout: secs(&args.idle_timeout, "SLOTD_IDLE_TIMEOUT", dl.idle_timeout)?,
            request_timeout: secs(
                &args.request_timeout,
                "SLOTD_REQUEST_TIMEOUT",
                dl.request_timeout,
            )?,
            max_connections_per_address: src.number(
                &args.max_connections_per_address,
                "SLOTD_MAX_CONNECTIONS_PER_ADDRESS",
                dl.max_connections_per_address,
                0,
            )?,
            overflow_deadline: dl.overflow_deadline,
            access_log_sample: src.number(
                &args.access_log_sample,
                "SLOTD_ACCESS_LOG_SAMPLE",
                dl.access_log_sample,
                0,
            )?,
            max_connections: src.number(
                &args.max_connections,
                "SLOTD_MAX_CONNECTIONS",
                dl.max_connections,
                1,
            )?,
            max_in_flight: src.number(
                &args.max_in_flight,
                "SLOTD_MAX_IN_FLIGHT",
                dl.max_in_flight,
                1,
            )?,
            address_rate: src.number(
                &args.address_rate,
                "SLOTD_ADDRESS_RATE",
                dl.address_rate,
                0,
            )?,
            address_burst: {
                let rate: u32 =
                    src.number(&args.address_rate, "SLOTD_ADDRESS_RATE", dl.address_rate, 0)?;
                src.number(
                    &args.address_burst,
                    "SLOTD_ADDRESS_BURST",
                    rate.saturating_mul(2),
                    0,
                )?
            },
            trusted_proxies: match src.get(&args.trusted_proxies, "SLOTD_TRUSTED_PROXIES") {
                None => Vec::new(),
                Some(raw) => {
                    let mut out = Vec::new();
                    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        out.push(crate::http::Cidr::parse(part).ok_or_else(|| {
                            bad(
                                src.origin(&args.trusted_proxies, "SLOTD_TRUSTED_PROXIES"),
                                format!("{part:?} is not an address or a range like 10.0.0.0/8"),
                            )
                        })?);
                    }
                    out
                }
            },
            person_read_rate: src.number(
                &args.person_read_rate,
                "SLOTD_PERSON_READ_RATE",
                dl.person_read_rate,
                1,
            )?,
            person_write_rate: src.number(
                &args.person_write_rate,
                "SLOTD_PERSON_WRITE_RATE",
                dl.person_write_rate,
                1,
            )?,
            shutdown_grace: secs(
                &args.shutdown_grace,
                "SLOTD_SHUTDOWN_GRACE",
                dl.shutdown_grace,
            )?,
        };
        let secret =
            |flag: &Option<String>, var: &'static str| -> Result<Option<String>, ConfigError> {
                match src.get(flag, var) {
                    Some(s) if s.len() < 8 => {
                        Err(bad(src.origin(flag, var), "must be at least 8 characters"))
                    }
                    other => Ok(other),
                }
            };
        let durability = match src.get(&args.durability, "SLOTD_DURABILITY").as_deref() {
            None | Some("fast") => Durability::Fast,
            Some("durable") => Durability::Durable,
            Some("none") => Durability::None,
            Some(other) => {
                return Err(bad(
                    src.origin(&args.durability, "SLOTD_DURABILITY"),
                    format!("expected fast, durable or none, got {other:?}"),
                ));
            }
        };
        let di = IdentityConfig::default();
        let dp = di.password;
        let dl_login = di.login;
        let identity = IdentityConfig {
            captcha_test_secret: secret(&args.captcha_test_secret, "SLOTD_CAPTCHA_TEST_SECRET")?,
            captcha_ttl: secs(&args.captcha_ttl, "SLOTD_CAPTCHA_TTL", di.captcha_ttl)?,
            password: PasswordParams {
                memory_kib: src.number(
                    &args.argon2_memory_kib,
                    "SLOTD_ARGON2_MEMORY_KIB",
                    dp.memory_kib,
                    8,
                )?,
                iterations: src.number(
                    &args.argon2_iterations,
                    "SLOTD_ARGON2_ITERATIONS",
                    dp.iterations,
                    1,
                )?,
                parallelism: dp.parallelism,
            },
            hashing_threads: src.number(
                &args.hashing_threads,
                "SLOTD_HASHING_THREADS",
                di.hashing_threads,
                1,
            )?,
            hashing_queue: src.number(
                &args.hashing_queue,
                "SLOTD_HASHING_QUEUE",
                di.hashing_queue,
                1,
            )?,
            login: LoginPolicy {
                throttle_after: src.number(
                    &args.login_throttle_after,
                    "SLOTD_LOGIN_THROTTLE_AFTER",
                    dl_login.throttle_after,
                    1,
                )?,
                throttle_seconds: src.number(
                    &args.login_throttle_seconds,
                    "SLOTD_LOGIN_THROTTLE_SECONDS",
                    dl_login.throttle_seconds,
                    1,
                )?,
                lock_after: src.number(
                    &args.login_lock_after,
                    "SLOTD_LOGIN_LOCK_AFTER",
                    dl_login.lock_after,
                    1,
                )?,
                lock_seconds: src.number(
                    &args.login_lock_seconds,
                    "SLOTD_LOGIN_LOCK_SECONDS",
                    dl_login.lock_seconds,
                    1,
                )?,
                address_throttle_after: src.number(
                    &args.login_address_throttle_after,
                    "SLOTD_LOGIN_ADDRESS_THROTTLE_AFTER",
                    dl_login.address_throttle_after,
                    1,
                )?,
            },
            registration_token_ttl: secs(
                &args.registration_token_ttl,
                "SLOTD_REGISTRATION_TOKEN_TTL",
                di.registration_token_ttl,
            )?,
            booking_token_ttl: secs(
                &args.booking_token_ttl,
                "SLOTD_BOOKING_TOKEN_TTL",
                di.booking_token_ttl,
            )?,
            kiosk_token_ttl: secs(
                &args.kiosk_token_ttl,
                "SLOTD_KIOSK_TOKEN_TTL",
                di.kiosk_token_ttl,
            )?,
        };
        identity.password.validate().map_err(|e| {
            bad(
                src.origin(&args.argon2_memory_kib, "SLOTD_ARGON2_MEMORY_KIB"),
                e,
            )
        })?;
        identity.login.validate().map_err(|e| {
            bad(
                src.origin(&args.login_lock_after, "SLOTD_LOGIN_LOCK_AFTER"),
                e,
            )
        })?;
        let ds = SmsConfig::default();
        let sms = SmsConfig {
            gateway: match src.get(&args.sms_gateway, "SLOTD_SMS_GATEWAY") {
                None => None,
                Some(raw) => Some(raw.parse().map_err(|e: crate::sms::SpecError| {
                    bad(
                        src.origin(&args.sms_gateway, "SLOTD_SMS_GATEWAY"),
                        e.to_string(),
                    )
                })?),
            },
            rate: src.number(&args.sms_rate, "SLOTD_SMS_RATE", ds.rate, 1)?,
            max_attempts: src.number(
                &args.sms_max_attempts,
                "SLOTD_SMS_MAX_ATTEMPTS",
                ds.max_attempts,
                1,
            )?,
            timeout: secs(&args.sms_timeout, "SLOTD_SMS_TIMEOUT", ds.timeout)?,
            concurrency: src.number(
                &args.sms_concurrency,
                "SLOTD_SMS_CONCURRENCY",
                ds.concurrency,
                1,
            )?,
            booking_url: src
                .get(&args.sms_booking_url, "SLOTD_SMS_BOOKING_URL")
                .unwrap_or(ds.booking_url),
            template: src
                .get(&args.sms_template, "SLOTD_SMS_TEMPLATE")
                .map(PathBuf::from),
            ca_file: src
                .get(&args.sms_ca_file, "SLOTD_SMS_CA_FILE")
                .map(PathBuf::from),
            settlement_share: match src.get(&args.settlement_share, "SLOTD_SETTLEMENT_SHARE") {
                None => ds.settlement_share,
                Some(raw) => match raw.parse::<f64>() {
                    Ok(v) if v > 0.0 && v <= 1.0 => v,
                    _ => {
                        return Err(bad(
                            src.origin(&args.settlement_share, "SLOTD_SETTLEMENT_SHARE"),
                            format!("expected a share above 0 and at most 1, got {raw:?}"),
                        ));
                    }
                },
            },
        };
        let config = Config {
            sms,
            identity,
            listen,
            store: parse_store(src.get(&args.store, "SLOTD_STORE"))
                .map_err(|e| bad(src.origin(&args.store, "SLOTD_STORE"), e.reason))?,
            data_dir: src
                .get(&args.data_dir, "SLOTD_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or(d.data_dir),
            ephemeral: src.flag(args.ephemeral, "SLOTD_EPHEMERAL")?,
            calendar: src.get(&args.calendar, "SLOTD_CALENDAR").map(PathBuf::from),
            demo: src.flag(args.demo, "SLOTD_DEMO")?,
            admin_token: secret(&args.admin_token, "SLOTD_ADMIN_TOKEN")?,
            token_secret: secret(&args.token_secret, "SLOTD_TOKEN_SECRET")?,
            limits,
            snapshot_every_bytes: src.number(
                &args.snapshot_every_bytes,
                "SLOTD_SNAPSHOT_EVERY_BYTES",
                d.snapshot_every_bytes,
                0,
            )?,
            journal_max_batch: src.number(
                &args.journal_max_batch,
                "SLOTD_JOURNAL_MAX_BATCH",
                d.journal_max_batch,
                1,
            )?,
            snapshot_interval: Duration::from_millis(src.number(
                &args.snapshot_interval_ms,
                "SLOTD_SNAPSHOT_INTERVAL_MS",
                250,
                10,
            )?),
            redis_prefix: src
                .get(&args.redis_prefix, "SLOTD_REDIS_PREFIX")
                .unwrap_or(d.redis_prefix),
            redis_wait_replicas: src.number(
                &args.redis_wait_replicas,
                "SLOTD_REDIS_WAIT_REPLICAS",
                d.redis_wait_replicas,
                0,
            )?,
            redis_wait_timeout: Duration::from_millis(src.number(
                &args.redis_wait_timeout_ms,
                "SLOTD_REDIS_WAIT_TIMEOUT_MS",
                500,
                1,
            )?),
            ledger_retention: Duration::from_secs(src.number(
                &args.ledger_retention_secs,
                "SLOTD_LEDGER_RETENTION_SECS",
                d.ledger_retention.as_secs(),
                1,
            )?),
            redis_timeout: Duration::from_millis(src.number(
                &args.redis_timeout_ms,
                "SLOTD_REDIS_TIMEOUT_MS",
                2000,
                10,
            )?),
            durability,
            fast_path: parse_bool(
                src.get(&args.fast_path, "SLOTD_FAST_PATH").as_deref(),
                &src.origin(&args.fast_path, "SLOTD_FAST_PATH"),
                true,
            )?,
        };
        let mut config = config;
        // An availability page is as old as the snapshot it comes from.
        config.limits.availability_max_age =
            Duration::from_secs(config.snapshot_interval.as_millis().div_ceil(1000).max(1) as u64);
        if config.redis_prefix.is_empty()
            || !config
                .redis_prefix
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(bad(
                src.origin(&args.redis_prefix, "SLOTD_REDIS_PREFIX"),
                "use letters, digits, '-' and '_'",
            ));
        }
        if config.ephemeral && config.store != StoreKind::Embedded {
            let name = if args.ephemeral {
                "--ephemeral"
            } else {
                "SLOTD_EPHEMERAL"
            };
            return Err(bad(name, "only applies to the embedded store"));
        }
        if let StoreKind::Redis(_) = config.store {
            // Every instance must verify every other's tokens and take the same admin
            // secret: generated ones would differ per instance.
            for (value, var) in [
                (&config.token_secret, "SLOTD_TOKEN_SECRET"),
                (&config.admin_token, "SLOTD_ADMIN_TOKEN"),
            ] {
                if value.is_none() {
                    return Err(bad(
                        flag_name(var),
                        format!(
                            "is required with a Redis store (or {var}): every instance needs the same one"
                        ),
                    ));
                }
            }
        }
        if let Some(c) = &config.calendar
            && !c.is_file()
        {
            return Err(bad(
                src.origin(&args.calendar, "SLOTD_CALENDAR"),
                format!("no such file: {}", c.display()),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_flags_or_environment() {
        let c = Config::from_args(&ServeArgs::default(), &env(&[])).expect("valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.store, StoreKind::Embedded);
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert!(!c.ephemeral && c.fast_path);
        assert_eq!(c.limits.max_body_bytes, 16 * 1024);
        assert_eq!(c.limits.max_connections_per_address, 256);
        assert_eq!(c.limits.request_timeout, Duration::from_secs(30));
        assert_eq!(c.limits.overflow_connections(), 2_500);
    }

    #[test]
    fn flags_win_over_environment() {
        let args = ServeArgs {
            listen: Some("127.0.0.1:9000".into()),
            ..ServeArgs::default()
        };
        let c = Config::from_args(
            &args,
            &env(&[
                ("SLOTD_LISTEN", "127.0.0.1:7000"),
                ("SLOTD_STORE", "redis://127.0.0.1:6379/2"),
                ("SLOTD_TOKEN_SECRET", "shared-token-secret"),
                ("SLOTD_ADMIN_TOKEN", "shared-admin-secret"),
                ("SLOTD_MAX_IN_FLIGHT", "99"),
                ("SLOTD_FAST_PATH", "off"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.store, StoreKind::Redis("redis://127.0.0.1:6379/2".into()));
        assert_eq!(c.limits.max_in_flight, 99);
        assert!(!c.fast_path);
    }

    #[test]
    fn sms_settings_parse_and_default_to_a_file_in_the_data_directory() {
        let c = Config::from_args(&ServeArgs::default(), &env(&[])).expect("valid");
        assert_eq!(
            c.sms.gateway_or_default(&c.data_dir).to_string(),
            "file:data/sms.ndjson"
        );
        assert_eq!((c.sms.rate, c.sms.settlement_share), (100, 1.0));
        let c = Config::from_args(
            &ServeArgs::default(),
            &env(&[
                ("SLOTD_SMS_GATEWAY", "http://127.0.0.1:9/sms"),
                ("SLOTD_SMS_RATE", "250"),
                ("SLOTD_SETTLEMENT_SHARE", "0.838"),
            ]),
        )
        .expect("valid");
        assert!(matches!(
            c.sms.gateway,
            Some(crate::sms::GatewaySpec::Webhook(_))
        ));
        assert_eq!((c.sms.rate, c.sms.settlement_share), (250, 0.838));
    }

    #[test]
    fn invalid_settings_are_named() {
        let cases = [
            ("SLOTD_LISTEN", "nowhere"),
            ("SLOTD_STORE", "postgres://x"),
            ("SLOTD_MAX_BODY_BYTES", "ten"),
            ("SLOTD_MAX_CONNECTIONS", "0"),
            ("SLOTD_MAX_CONNECTIONS_PER_ADDRESS", "-1"),
            ("SLOTD_REQUEST_TIMEOUT", "0"),
            ("SLOTD_ADMIN_TOKEN", "short"),
            ("SLOTD_DURABILITY", "sometimes"),
            ("SLOTD_EPHEMERAL", "maybe"),
            ("SLOTD_CALENDAR", "/no/such/calendar.json"),
            ("SLOTD_SMS_GATEWAY", "smtp://carrier"),
            ("SLOTD_SMS_RATE", "0"),
            ("SLOTD_SETTLEMENT_SHARE", "0"),
            ("SLOTD_SETTLEMENT_SHARE", "1.2"),
        ];
        for (var, value) in cases {
            let err =
                Config::from_args(&ServeArgs::default(), &env(&[(var, value)])).expect_err(var);
            assert_eq!(err.setting, var, "{err}");
        }
    }

    #[test]
    fn errors_name_the_flag_when_the_value_came_from_a_flag() {
        let args = ServeArgs {
            max_in_flight: Some("0".into()),
            ..ServeArgs::default()
        };
        let err = Config::from_args(&args, &env(&[])).expect_err("invalid");
        assert_eq!(err.setting, "--max-in-flight");
        let err = Config::from_args(&ServeArgs::default(), &env(&[("SLOTD_MAX_IN_FLIGHT", "0")]))
            .expect_err("invalid");
        assert_eq!(err.setting, "SLOTD_MAX_IN_FLIGHT");
    }

    #[test]
    fn redis_needs_shared_secrets() {
        let redis = [("SLOTD_STORE", "redis://127.0.0.1:6379")];
        let err = Config::from_args(&ServeArgs::default(), &env(&redis)).expect_err("invalid");
        assert_eq!(err.setting, "--token-secret");
        let with = [
            ("SLOTD_STORE", "redis://127.0.0.1:6379"),
            ("SLOTD_TOKEN_SECRET", "0123456789"),
            ("SLOTD_ADMIN_TOKEN", "0123456789"),
        ];
        assert!(Config::from_args(&ServeArgs::default(), &env(&with)).is_ok());
    }

    #[test]
    fn the_described_configuration_masks_secrets() {
        let c = Config::from_args(
            &ServeArgs::default(),
            &env(&[
                ("SLOTD_STORE", "redis://:hunter2hunter2@127.0.0.1:6379"),
                ("SLOTD_TOKEN_SECRET", "token-secret-value"),
                ("SLOTD_ADMIN_TOKEN", "admin-secret-value"),
            ]),
        )
        .expect("valid");
        let text = c.describe();
        for secret in ["token-secret-value", "admin-secret-value", "hunter2"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            text.contains("token-secret = set (18 characters, masked)"),
            "{text}"
        );
        assert!(
            text.contains("store = redis://***@127.0.0.1:6379"),
            "{text}"
        );
    }
}

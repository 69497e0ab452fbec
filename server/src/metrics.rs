//! Metric names, their descriptions, and the Prometheus recorder.
//!
//! Labels are low-cardinality only: route template, method, status class or outcome,
//! store backend. Never a slot, a person or a booking id.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "slotd_http_requests_total";
pub const HTTP_DURATION: &str = "slotd_http_request_duration_seconds";
pub const HTTP_IN_FLIGHT: &str = "slotd_http_requests_in_flight";
pub const HTTP_CONNECTIONS: &str = "slotd_http_connections";
pub const HTTP_CONNECTIONS_REFUSED: &str = "slotd_http_connections_refused_total";
pub const HTTP_OVERFLOW_CONNECTIONS: &str = "slotd_http_overflow_connections_total";
pub const BOOKINGS_COMMITTED: &str = "slotd_bookings_committed_total";
pub const BOOKING_REJECTIONS: &str = "slotd_booking_rejections_total";
pub const CANCELLATIONS: &str = "slotd_cancellations_total";
pub const JOURNAL_BATCH_RECORDS: &str = "slotd_journal_batch_records";
pub const JOURNAL_FSYNC_SECONDS: &str = "slotd_journal_fsync_seconds";
pub const SNAPSHOT_BUILD_SECONDS: &str = "slotd_availability_snapshot_build_seconds";
pub const SEATS_REMAINING: &str = "slotd_seats_remaining";
pub const STORE_ROUND_TRIP_SECONDS: &str = "slotd_store_round_trip_seconds";
pub const STORE_BATCH_COMMANDS: &str = "slotd_store_batch_commands";
pub const STORE_ERRORS: &str = "slotd_store_errors_total";
pub const FAST_PATH_REJECTIONS: &str = "slotd_fast_path_rejections_total";
pub const REGISTRATIONS: &str = "slotd_registrations_total";
pub const LOGINS: &str = "slotd_logins_total";
pub const LOGIN_LOCKOUTS: &str = "slotd_login_lockouts_total";
pub const PASSWORD_HASH_SECONDS: &str = "slotd_password_hash_seconds";
pub const SMS_SENDS: &str = "slotd_sms_sends_total";
pub const SMS_QUEUED: &str = "slotd_sms_queued";
pub const INVITATIONS_SETTLED: &str = "slotd_invitations_settled_total";
pub const CHECK_INS: &str = "slotd_check_ins_total";
pub const REGISTRY_PERSONS_IMPORTED: &str = "slotd_registry_persons_imported_total";
pub const BUILD_INFO: &str = "slotd_build_info";
pub const QUEUE_JOINS: &str = "slotd_queue_joins_total";
pub const QUEUE_LENGTH: &str = "slotd_queue_waiting";
pub const QUEUE_ADMITTED: &str = "slotd_queue_admitted";
pub const QUEUE_WINDOW: &str = "slotd_queue_window";
pub const QUEUE_WAIT_SECONDS: &str = "slotd_queue_estimated_wait_seconds";

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// Installs the global Prometheus recorder (once per process) and describes every metric.
/// A second call (tests start many servers in one process) returns the first handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_records".into()), BATCH_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_commands".into()), BATCH_BUCKETS)
                })
                .expect("bucket lists are non-empty constants");
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (an embedding program's): render an empty one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe();
            process_collector().describe();
            start_at_zero();
            handle
        })
        .clone()
}

/// The process's own figures (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, `process_start_time_seconds`, threads, ...), read from `/proc`.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: std::sync::OnceLock<metrics_process::Collector> = std::sync::OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Renders every metric for a scrape, the process's figures read at this instant.
pub fn render(handle: &PrometheusHandle) -> String {
    process_collector().collect();
    handle.render()
}

/// Counters of events that may not have happened yet exist at zero from start-up, so
/// that `rate()` sees the first failure, a dashboard panel shows 0 rather than "no
/// data", and an alert on them has a series to watch. Labelled ones start with the
/// labels their first events will carry.
fn start_at_zero() {
    for name in [
        FAST_PATH_REJECTIONS,
        CANCELLATIONS,
        INVITATIONS_SETTLED,
        REGISTRY_PERSONS_IMPORTED,
        HTTP_OVERFLOW_CONNECTIONS,
    ] {
        metrics::counter!(name).absolute(0);
    }
    for reason in ["per-address", "overflow-full", "overflow-displaced"] {
        metrics::counter!(HTTP_CONNECTIONS_REFUSED, "reason" => reason).absolute(0);
    }
    for channel in ["web", "app", "kiosk"] {
        metrics::counter!(BOOKINGS_COMMITTED, "channel" => channel).absolute(0);
    }
    for op in [
        "reserve",
        "change",
        "cancel",
        "bookings_of",
        "ping",
        "refresh",
    ] {
        metrics::counter!(STORE_ERRORS, "op" => op).absolute(0);
    }
    for outcome in ["sent", "failed", "dead"] {
        metrics::counter!(SMS_SENDS, "outcome" => outcome).absolute(0);
    }
    for outcome in ["attended", "repeat", "refused"] {
        metrics::counter!(CHECK_INS, "outcome" => outcome).absolute(0);
    }
    for subject in ["address", "account", "queue"] {
        metrics::counter!(LOGIN_LOCKOUTS, "subject" => subject).absolute(0);
    }
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

fn describe() {
    describe_counter!(
        REGISTRATIONS,
        "intent registration writes, by operation (register, modify, cancel) and outcome"
    );
    describe_counter!(
        LOGINS,
        "login attempts, by method (card-password, app-otp, kiosk, registration) and outcome"
    );
    describe_counter!(
        LOGIN_LOCKOUTS,
        "login attempts refused because the account or address was throttled or locked"
    );
    describe_histogram!(
        PASSWORD_HASH_SECONDS,
        Unit::Seconds,
        "time to verify or compute one argon2id password hash, waiting for a hashing slot included"
    );
    describe_counter!(
        REGISTRY_PERSONS_IMPORTED,
        "insured persons written by registry imports"
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route and outcome"
    );
    describe_gauge!(
        HTTP_IN_FLIGHT,
        "HTTP requests being served (probes and scrapes are not counted)"
    );
    describe_counter!(
        QUEUE_JOINS,
        "people queued in a phase's waiting room, by lane (pre: before the shuffle)"
    );
    describe_gauge!(QUEUE_LENGTH, "people in a waiting room not admitted yet");
    describe_gauge!(
        QUEUE_ADMITTED,
        "positions of a waiting room admitted to book"
    );
    describe_gauge!(
        QUEUE_WINDOW,
        "the admission controller's window: admitted people who may not have booked yet"
    );
    describe_gauge!(
        QUEUE_WAIT_SECONDS,
        "estimated wait of the last person in a waiting room, at the current admission rate"
    );
    describe_gauge!(HTTP_CONNECTIONS, "open HTTP connections");
    describe_counter!(
        HTTP_CONNECTIONS_REFUSED,
        "connections closed unanswered, by reason: per-address (over \
         --max-connections-per-address), overflow-full (the overflow lane held only \
         connections being answered), overflow-displaced (made room for a newer one there)"
    );
    describe_counter!(
        HTTP_OVERFLOW_CONNECTIONS,
        "connections accepted beyond --max-connections into the overflow lane, which \
         serves /health/* and /metrics only"
    );
    describe_counter!(
        BOOKINGS_COMMITTED,
        "bookings acknowledged to clients, by channel"
    );
    describe_counter!(BOOKING_REJECTIONS, "booking attempts refused, by reason");
    describe_counter!(CANCELLATIONS, "bookings cancelled");
    describe_histogram!(
        JOURNAL_BATCH_RECORDS,
        Unit::Count,
        "records per journal group commit"
    );
    describe_histogram!(
        JOURNAL_FSYNC_SECONDS,
        Unit::Seconds,
        "journal write + fdatasync per batch"
    );
    describe_histogram!(
        SNAPSHOT_BUILD_SECONDS,
        Unit::Seconds,
        "availability snapshot rebuild time"
    );
    describe_gauge!(
        SEATS_REMAINING,
        "free seats per phase (from the last snapshot)"
    );
    describe_histogram!(
        STORE_ROUND_TRIP_SECONDS,
        Unit::Seconds,
        "store round trips by operation"
    );
    describe_histogram!(
        STORE_BATCH_COMMANDS,
        Unit::Count,
        "commands per pipelined store round trip"
    );
    describe_counter!(STORE_ERRORS, "store calls that failed, by operation");
    describe_counter!(
        SMS_SENDS,
        "invitation text sends, by outcome (sent, failed, dead)"
    );
    describe_gauge!(SMS_QUEUED, "invitation texts waiting for their first send");
    describe_counter!(INVITATIONS_SETTLED, "people invited by settlement runs");
    describe_gauge!(BUILD_INFO, "1, labelled with the slotd version that runs");
    describe_counter!(CHECK_INS, "check-ins at sites, by outcome");
    describe_counter!(
        FAST_PATH_REJECTIONS,
        "slot-full answers given from the local mirror"
    );
}

//! `slotd-drill`: replays a national booking phase against running slotd instances, end
//! to end: the registration wave, the settlement and its texts, the opening surge (goose),
//! the day's check-ins and close-out, and the next phase's carry-over; then proves the
//! invariants and writes a report.
//!
//! `slotd-drill --targets URL[,URL…] --admin-token T --token-secret S [model options]
//! [goose options]`. The model's options are listed by `--help-model`; everything else
//! goes to goose (`--users`, `--increase-rate`, `--run-time`, `--report-file`, …).

mod announce;
mod answer;
mod carry;
mod day;
mod journey;
mod model;
mod page;
mod provision;
mod report;
mod sms;
mod state;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::prelude::*;
use slotd::domain::PhaseId;
use slotd::identity::captcha::Captchas;
use slotd::token::TokenKey;

use crate::journey::surge;
use crate::model::Params;
use crate::state::{Drill, install};

const MODEL_HELP: &str = "model options:
  --targets URL[,URL...]   slotd instances (required); goose users are spread over them
  --admin-token SECRET     admin bearer secret of the instances (required)
  --token-secret SECRET    token signing secret shared by the instances (required)
  --captcha-secret SECRET  the instances' --captcha-test-secret (required): people solve
                           captchas to register and log in
  --scale F                fraction of phase 2 of 2021 (1,109,747 invited) [0.01]
  --window-seconds S       drill seconds the 55-hour window is compressed into [60]
  --real-time              no compression: a drill second is a real second (the whole
                           window would take 55 hours; pair it with --minutes)
  --minutes M              replay only the people who arrive in the first M real minutes
                           after the opening; the deadline is M minutes (compressed) + 60 s
  --sms-file PATH          the instances' file SMS gateway (required): people book only
                           once their text is in it
  --lead-seconds S         seconds from the settlement to the opening: the texts go out
                           in them, and with a waiting room its pre-queue is open
                           [5; 30 with --waiting-room]
  --no-show-rate F         share of live bookings whose person stays away [0.03]
  --seed N                 seed of the model [20210713]
  --bot-share F            share of the invited who are bots: at the opening instant,
                           never waiting for Retry-After [0.05]
  --waiting-room           the phase has a waiting room: its pre-queue opens at the
                           announcement; bots and the opening minute's people queue in it
  --phase ID               phase id [drill-<unix time>]
  --out DIR                report folder [drill-out]";

/// The model's options, taken out of the command line; the rest is goose's.
struct Options {
    targets: Vec<String>,
    admin: String,
    secret: String,
    captcha_secret: String,
    params: Params,
    lead: Option<f64>,
    sms_file: PathBuf,
    phase: String,
    out: PathBuf,
    goose_args: Vec<String>,
}

fn parse(args: Vec<String>) -> anyhow::Result<Options> {
    let mut o = Options {
        targets: Vec::new(),
        admin: String::new(),
        secret: String::new(),
        captcha_secret: String::new(),
        params: Params::default(),
        lead: None,
        sms_file: PathBuf::new(),
        phase: format!("drill-{}", time::OffsetDateTime::now_utc().unix_timestamp()),
        out: PathBuf::from("drill-out"),
        goose_args: Vec::new(),
    };
    let mut it = args.into_iter().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--help-model" => bail!("{MODEL_HELP}"),
            "--targets" => {
                o.targets = value("--targets")?
                    .split(',')
                    .map(|s| s.trim_end_matches('/').to_string())
                    .collect()
            }
            "--admin-token" => o.admin = value("--admin-token")?,
            "--token-secret" => o.secret = value("--token-secret")?,
            "--captcha-secret" => o.captcha_secret = value("--captcha-secret")?,
            "--scale" => o.params.scale = value("--scale")?.parse().context("--scale")?,
            "--window-seconds" => {
                o.params.window_seconds = value("--window-seconds")?
                    .parse()
                    .context("--window-seconds")?
            }
            "--real-time" => o.params.window_seconds = o.params.window_hours * 3600.0,
            "--minutes" => {
                let m: f64 = value("--minutes")?.parse().context("--minutes")?;
                if !(m.is_finite() && m > 0.0) {
                    bail!("--minutes must be a positive number");
                }
                o.params.replay_seconds = Some(m * 60.0);
            }
            "--lead-seconds" => {
                o.lead = Some(value("--lead-seconds")?.parse().context("--lead-seconds")?)
            }
            "--sms-file" => o.sms_file = PathBuf::from(value("--sms-file")?),
            "--no-show-rate" => {
                o.params.no_show_rate =
                    value("--no-show-rate")?.parse().context("--no-show-rate")?
            }
            "--seed" => o.params.seed = value("--seed")?.parse().context("--seed")?,
            "--bot-share" => {
                o.params.bot_share = value("--bot-share")?.parse().context("--bot-share")?
            }
            "--waiting-room" => o.params.waiting_room = true,
            "--phase" => o.phase = value("--phase")?,
            "--out" => o.out = PathBuf::from(value("--out")?),
            _ => o.goose_args.push(arg),
        }
    }
    if o.targets.is_empty()
        || o.admin.is_empty()
        || o.secret.is_empty()
        || o.captcha_secret.is_empty()
        || o.sms_file.as_os_str().is_empty()
    {
        bail!(
            "--targets, --admin-token, --token-secret, --captcha-secret and --sms-file are required\n{MODEL_HELP}"
        );
    }
    if !(0.0..=1.0).contains(&o.params.bot_share) {
        bail!("--bot-share must be in [0, 1]");
    }
    if !(0.0..=1.0).contains(&o.params.no_show_rate) {
        bail!("--no-show-rate must be in [0, 1]");
    }
    if !(o.params.scale > 0.0 && o.params.scale <= 2.0) {
        bail!("--scale must be in (0, 2]");
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("slotd-drill: an invariant failed; see the summary");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("slotd-drill: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> anyhow::Result<bool> {
    let o = parse(std::env::args().collect())?;
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let phase = PhaseId::parse(&o.phase).context("--phase")?;
    // With a waiting room the lead is the pre-queue: long enough for the opening
    // minute's people to get their text, log in and queue.
    let lead = o
        .lead
        .unwrap_or(if o.params.waiting_room { 30.0 } else { 5.0 });
    let lead = Duration::from_secs_f64(lead.max(0.0));
    // Tentative: the phase is announced (cutoff and opening) after the registration wave.
    let tentative = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let scenario = model::Scenario::build(o.params.clone(), phase, tentative);
    let arrivals = scenario.arrivals();
    eprintln!(
        "slotd-drill: {} people, {} will try, {} seats in {} slots at {} sites on {}; window compressed {:.0}x",
        scenario.people.len(),
        arrivals.len(),
        scenario.capacity,
        scenario.calendar.phases[0].slots.len(),
        scenario.sites.len(),
        scenario.day,
        scenario.compression()
    );
    let client = reqwest::Client::new();
    let provisioning = provision::provision(&client, &o.targets[0], &o.admin, &scenario).await?;
    // With --minutes, the drill's window is that part of the real one, compressed.
    let window = Duration::from_secs_f64(match o.params.replay_seconds {
        Some(real) => o.params.window_seconds.min(real / scenario.compression()),
        None => o.params.window_seconds,
    });
    let slots = page::Slots::new(&scenario);
    // Slots are ranked in time at their site; past the 64th all weigh as the 64th.
    let time_weights = model::zipf(64, scenario.params.zipf_times);
    let people = scenario.people.len();
    let wave_size = scenario.people.iter().filter(|p| !p.late).count();
    let room = state::Room {
        early: arrivals
            .iter()
            .copied()
            .filter(|&i| scenario.early(i))
            .collect(),
        tickets: (0..people).map(|_| OnceLock::new()).collect(),
        ..state::Room::default()
    };
    let drill = install(Drill {
        scenario,
        arrivals,
        targets: o.targets.clone(),
        keys: TokenKey::new(o.secret.as_bytes()),
        // Issued under the instances' token secret, as their own are: the ids carry its tag.
        captchas: Captchas::new(o.secret.as_bytes(), Some(o.captcha_secret.as_bytes()), 120),
        partner_key: provisioning.partner_key.clone(),
        next_registration: AtomicUsize::new(0),
        wave_size,
        wave_done: AtomicUsize::new(0),
        registered: (0..people).map(|_| AtomicBool::new(false)).collect(),
        registered_early: AtomicU64::new(0),
        registered_late: AtomicU64::new(0),
        registration_failures: AtomicU64::new(0),
        logins: AtomicU64::new(0),
        login_failures: AtomicU64::new(0),
        slots,
        time_weights,
        opening: OnceLock::new(),
        window,
        settlement: OnceLock::new(),
        aborted: AtomicBool::new(false),
        texts: Mutex::new(sms::TextLog::new(people)),
        next: AtomicUsize::new(0),
        samples: Mutex::new(Vec::new()),
        seats: Mutex::new(Vec::new()),
        acked: Mutex::new(Vec::new()),
        gave_up: AtomicU64::new(0),
        unserved: AtomicU64::new(0),
        idempotency_mismatches: AtomicU64::new(0),
        replays: AtomicU64::new(0),
        own_reads: AtomicU64::new(0),
        own_reads_missing: AtomicU64::new(0),
        uninvited_stayed: AtomicU64::new(0),
        uninvited_tries: AtomicU64::new(0),
        uninvited_refused: AtomicU64::new(0),
        uninvited_booked: AtomicU64::new(0),
        uninvited_other: AtomicU64::new(0),
        room,
    });
    let sampler = report::spawn_seat_sampler(client.clone(), o.targets[0].clone(), drill.clone());
    let tail = sms::spawn_tail(o.sms_file.clone(), drill.clone());
    let announcing = tokio::spawn(announce::announce(
        client.clone(),
        o.targets[0].clone(),
        o.admin.clone(),
        drill.clone(),
        lead,
    ));

    let config = GooseConfiguration::parse_args_default(&o.goose_args)
        .map_err(|e| anyhow::anyhow!("goose options: {e}"))?;
    let html = o.out.join("goose-report.html");
    let metrics = goose_run(config, &o, &html)
        .await
        .map_err(|e| anyhow::anyhow!("goose: {e:?}"))?;
    sampler.abort();
    let announcement = announcing.await.context("the announcement task")??;
    let day = day::run(&client, &o.targets, &o.admin, &drill).await?;
    eprintln!(
        "slotd-drill: day {}: {} checked in, {} refused; close-out {} attended, {} no-shows",
        day.date,
        day.checked_in,
        day.refused_total(),
        day.closed_attended,
        day.closed_no_show
    );
    let (carry, texts) = carry::run(&client, &o.targets[0], &o.admin, &drill, &day).await?;
    tail.abort();
    let checks = verify::verify(&client, &o.targets, &o.admin, &drill).await?;
    let cycle = report::Cycle {
        announcement: &announcement,
        day: &day,
        carry: &carry,
        texts: &texts,
    };
    let ok = report::write(&o.out, &drill, &metrics, &provisioning, &checks, &cycle)?;
    eprintln!(
        "slotd-drill: report in {}",
        o.out.join("summary.md").display()
    );
    Ok(ok)
}

/// The goose attack: one scenario whose users work through the arrival queue.
async fn goose_run(
    config: GooseConfiguration,
    o: &Options,
    html: &std::path::Path,
) -> Result<goose::metrics::GooseMetrics, GooseError> {
    GooseAttack::initialize_with_config(config)?
        .register_scenario(
            scenario!("PhaseOpening")
                .register_transaction(transaction!(surge).set_name("person journey")),
        )
        .set_default(GooseDefault::Host, o.targets[0].as_str())?
        .set_default(GooseDefault::Users, 64)?
        .set_default(GooseDefault::IncreaseRate, "64")?
        .set_default(GooseDefault::Iterations, 1)?
        .set_default(GooseDefault::NoTelnet, true)?
        .set_default(GooseDefault::NoWebSocket, true)?
        // Its terminal summary counts every non-2xx as an error, even the refusals the
        // model expects; summary.md counts answers by code instead.
        .set_default(GooseDefault::NoPrintMetrics, true)?
        .set_default(GooseDefault::NoErrorSummary, true)?
        .set_default(GooseDefault::ReportFile, html.to_string_lossy().as_ref())?
        .execute()
        .await
}

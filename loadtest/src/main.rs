//! `slotd-drill`: replays the opening of a national booking phase against running slotd
//! instances with goose, then proves the invariants and writes a report.
//!
//! `slotd-drill --targets URL[,URL…] --admin-token T --token-secret S [model options]
//! [goose options]`. The model's options are listed by `--help-model`; everything else
//! goes to goose (`--users`, `--increase-rate`, `--run-time`, `--report-file`, …).

mod journey;
mod model;
mod provision;
mod report;
mod state;
mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

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
  --lead-seconds S         seconds from the end of provisioning to the opening: the
                           registration wave runs in them, and who it has not reached
                           registers on arrival [5]
  --seed N                 seed of the model [20210713]
  --phase ID               phase id [drill-<unix time>]
  --out DIR                report folder [drill-out]";

/// The model's options, taken out of the command line; the rest is goose's.
struct Options {
    targets: Vec<String>,
    admin: String,
    secret: String,
    captcha_secret: String,
    params: Params,
    lead: f64,
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
        lead: 5.0,
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
            "--lead-seconds" => {
                o.lead = value("--lead-seconds")?.parse().context("--lead-seconds")?
            }
            "--seed" => o.params.seed = value("--seed")?.parse().context("--seed")?,
            "--phase" => o.phase = value("--phase")?,
            "--out" => o.out = PathBuf::from(value("--out")?),
            _ => o.goose_args.push(arg),
        }
    }
    if o.targets.is_empty()
        || o.admin.is_empty()
        || o.secret.is_empty()
        || o.captcha_secret.is_empty()
    {
        bail!(
            "--targets, --admin-token, --token-secret and --captcha-secret are required\n{MODEL_HELP}"
        );
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
    let lead = Duration::from_secs_f64(o.lead.max(0.0));
    let opens_at = time::OffsetDateTime::now_utc() + lead + Duration::from_secs(2);
    let scenario = model::Scenario::build(o.params.clone(), phase, opens_at);
    let arrivals = scenario.arrivals();
    eprintln!(
        "slotd-drill: {} invited, {} will try, {} seats in {} slots at {} sites; window compressed {:.0}x",
        scenario.people.len(),
        arrivals.len(),
        scenario.capacity,
        scenario.calendar.phases[0].slots.len(),
        scenario.sites.len(),
        scenario.compression()
    );
    let client = reqwest::Client::new();
    let provisioning = provision::provision(&client, &o.targets[0], &o.admin, &scenario).await?;
    // The opening, in this process's clock: the calendar's `opens_at` minus now.
    let to_open = (opens_at - time::OffsetDateTime::now_utc()).max(time::Duration::ZERO);
    let opening = Instant::now() + Duration::try_from(to_open).unwrap_or_default();
    let window = Duration::from_secs_f64(o.params.window_seconds);
    let popularity = scenario
        .sites
        .iter()
        .map(|s| (s.site.id.to_string(), s.popularity))
        .collect::<HashMap<_, _>>();
    let people = scenario.people.len();
    let drill = install(Drill {
        scenario,
        arrivals,
        targets: o.targets.clone(),
        keys: TokenKey::new(o.secret.as_bytes()),
        // Issued under the instances' token secret, as their own are: the ids carry its tag.
        captchas: Captchas::new(o.secret.as_bytes(), Some(o.captcha_secret.as_bytes()), 120),
        partner_key: provisioning.partner_key.clone(),
        next_registration: AtomicUsize::new(0),
        registered: (0..people).map(|_| AtomicBool::new(false)).collect(),
        registered_early: AtomicU64::new(0),
        registered_late: AtomicU64::new(0),
        registration_failures: AtomicU64::new(0),
        logins: AtomicU64::new(0),
        login_failures: AtomicU64::new(0),
        popularity,
        opening,
        deadline: opening + window + Duration::from_secs(60),
        next: AtomicUsize::new(0),
        samples: Mutex::new(Vec::new()),
        seats: Mutex::new(Vec::new()),
        acked: Mutex::new(Vec::new()),
        gave_up: AtomicU64::new(0),
        unserved: AtomicU64::new(0),
        idempotency_mismatches: AtomicU64::new(0),
    });
    let sampler = report::spawn_seat_sampler(client.clone(), o.targets[0].clone(), drill.clone());

    let config = GooseConfiguration::parse_args_default(&o.goose_args)
        .map_err(|e| anyhow::anyhow!("goose options: {e}"))?;
    let html = o.out.join("goose-report.html");
    let metrics = goose_run(config, &o, &html)
        .await
        .map_err(|e| anyhow::anyhow!("goose: {e:?}"))?;
    sampler.abort();
    let checks = verify::verify(&client, &o.targets, &o.admin, &drill).await?;
    let ok = report::write(&o.out, &drill, &metrics, &provisioning, &checks)?;
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
        .set_default(GooseDefault::ReportFile, html.to_string_lossy().as_ref())?
        .execute()
        .await
}

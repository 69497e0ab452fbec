//! The `slotd` binary: parse the command line, install telemetry, hand over to the library.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use slotd::bootstrap;
use slotd::config::{Cli, Command, Config, EXIT_CONFIG};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let msg = e.to_string();
            eprintln!(
                "slotd: {}",
                msg.lines().next().unwrap_or("invalid command line")
            );
            return ExitCode::from(EXIT_CONFIG as u8);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLOTD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // SLOTD_LOG_FORMAT=json: one JSON object a line, for log shippers.
    if std::env::var("SLOTD_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("slotd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let config = match Config::from_args(&args, &env) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("slotd: invalid configuration: {e}");
                    return ExitCode::from(EXIT_CONFIG as u8);
                }
            };
            match runtime.block_on(bootstrap::serve(config, bootstrap::shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("slotd: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::DemoCalendar => {
            use std::io::Write as _;
            let calendar = slotd::demo::calendar(time::OffsetDateTime::now_utc());
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = serde_json::to_writer(&mut out, &calendar)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
                .and_then(|()| out.flush());
            match written {
                // A reader that stopped early (`| head`) is not an error of ours.
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("slotd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Id(args) => {
            if let Some(raw) = &args.check {
                return match slotd::domain::IdNumber::parse(raw.trim()) {
                    Ok(id) => {
                        println!("{id}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("slotd: {raw:?} is not a valid ID number: {e}");
                        ExitCode::from(1)
                    }
                };
            }
            for n in 0..args.count {
                let serial = match args.serial {
                    Some(first) => first.saturating_add(n),
                    None => slotd::domain::random_serial(),
                };
                println!("{}", slotd::domain::synthetic_id(serial));
            }
            ExitCode::SUCCESS
        }
        Command::Population(args) => match bootstrap::population(&args) {
            Ok(n) => {
                eprintln!("slotd: wrote {n} people");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("slotd: {e}");
                ExitCode::from(e.exit_code())
            }
        },
        Command::CheckConfig(args) => match Config::from_args(&args, &env) {
            Ok(c) => {
                println!("{}", c.describe());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("slotd: invalid configuration: {e}");
                ExitCode::from(EXIT_CONFIG as u8)
            }
        },
        Command::Repair(args) => match bootstrap::repair(&args, &env) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("slotd: {e}");
                ExitCode::from(e.exit_code())
            }
        },
        Command::Audit(args) => match runtime.block_on(bootstrap::audit(&args, &env)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("slotd: {e}");
                ExitCode::from(e.exit_code())
            }
        },
    }
}

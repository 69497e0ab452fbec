//! `peer-postgres`: the booking design a team would otherwise pick, behind the same HTTP
//! edge as `bare`: one Postgres transaction per booking on a pooled connection, the
//! seat count in a row (`booked < capacity`) and the person rule in a UNIQUE constraint.
//! Default Postgres settings: with `synchronous_commit` on, a `201` is sent after the
//! commit's WAL flush, as slotd sends it after its journal's.
//!
//! - `schema`: the tables, created afresh at start, and the booking statements.
//! - `pool`: a fixed number of connections, each with its statements prepared.
//! - `store`: the booking transaction.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use slotd_benches::edge::{self, SlotTable};

mod pool;
mod schema;
mod store;

use pool::Pool;
use store::Postgres;

/// Serves bookings from Postgres, one transaction each.
#[derive(Debug, Parser)]
#[command(name = "peer-postgres")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8091")]
    listen: SocketAddr,
    /// Calendar JSON (what `slotd serve --calendar` takes): the slots and their seats.
    #[arg(long)]
    calendar: PathBuf,
    /// The database, as a libpq connection string or URL (no TLS).
    #[arg(
        long,
        default_value = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    )]
    database_url: String,
    /// Schema for the tables; dropped and created afresh at start.
    #[arg(long, default_value = "slotd_peer", value_parser = schema::name)]
    schema: String,
    /// Connections to the database, each serving one booking at a time.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pool: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let slots = SlotTable::load(&args.calendar)?;
    let mut config: tokio_postgres::Config = args
        .database_url
        .parse()
        .context("--database-url is not a Postgres connection string")?;
    // The name lets a bench find this server's backends in pg_stat_activity; the timeout
    // bounds a reconnection while the database is down (each waiting booking gets 503).
    config
        .application_name("peer-postgres")
        .connect_timeout(Duration::from_secs(5));
    schema::create(&config, &args.schema, &slots).await?;
    let pool = Pool::open(
        config,
        schema::Statements::new(&args.schema),
        args.pool.into(),
    )
    .await
    .context("opening the connection pool")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!(
        "peer-postgres: {} slots in schema {}, {} connections, listening on {}",
        slots.len(),
        args.schema,
        args.pool,
        args.listen
    );
    edge::serve(listener, slots, Postgres::new(pool)).await;
    Ok(())
}

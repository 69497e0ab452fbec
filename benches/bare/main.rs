//! `bare`: the bare hyper stack, the measuring stick of `scripts/bench-http`.
//!
//! `shared/bench/ceiling` on the bench's calendar: the same HTTP edge as the other bench
//! servers, and a booking that is one atomic decrement of the slot's seats. No token
//! check, no person rule, no journal, no metrics: what the stack itself costs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::Context;
use clap::Parser;
use slotd_benches::edge::{self, Book, Outcome, SlotEntry, SlotTable};

/// Serves bookings from an atomic counter per slot.
#[derive(Debug, Parser)]
#[command(name = "bare")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Calendar JSON (what `slotd serve --calendar` takes): the slots and their seats.
    #[arg(long)]
    calendar: PathBuf,
}

/// Seats left per slot, by `SlotEntry::index`.
struct Seats(Vec<AtomicI64>);

impl Book for Seats {
    async fn book(&self, slot: &SlotEntry, _person: &[u8]) -> Outcome {
        let Some(seats) = self.0.get(slot.index) else {
            return Outcome::Unavailable;
        };
        // The counter is the only shared state, so any ordering keeps it exact; AcqRel
        // is the ceiling's, kept so that the two cost the same.
        let left = seats.fetch_sub(1, Ordering::AcqRel);
        if left > 0 {
            // Slot and seat make a number no other booking gets: seats are never given
            // back, so each value of `left` is taken once.
            Outcome::Booked(((slot.index as u64) << 32) | left as u64)
        } else {
            // Give the overdraft back, so the counter cannot wrap under a long surge.
            seats.fetch_add(1, Ordering::AcqRel);
            Outcome::SlotFull
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let slots = SlotTable::load(&args.calendar)?;
    let seats = Seats(
        slots
            .iter()
            .map(|s| AtomicI64::new(s.capacity.into()))
            .collect(),
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    eprintln!("bare: {} slots, listening on {}", slots.len(), args.listen);
    edge::serve(listener, slots, seats).await;
    Ok(())
}

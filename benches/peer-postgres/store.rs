//! The booking transaction: take a seat, record the booking, commit.

use std::sync::atomic::{AtomicU64, Ordering};

use slotd_benches::edge::{Book, Outcome, SlotEntry};
use tokio_postgres::error::SqlState;

use crate::pool::Pool;

pub struct Postgres {
    pool: Pool,
    /// Bookings answered `503` so far, for the log's sake only (hence Relaxed).
    failures: AtomicU64,
}

impl Postgres {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            failures: AtomicU64::new(0),
        }
    }

    /// `BEGIN; UPDATE slots ...; INSERT INTO bookings ...; COMMIT`, four round trips.
    async fn try_book(&self, slot: &SlotEntry, person: &str) -> anyhow::Result<Outcome> {
        let mut lease = self.pool.get().await?;
        let conn = &mut *lease;
        let tx = conn.client.transaction().await?;
        if tx.execute(&conn.reserve, &[&slot.id]).await? == 0 {
            // The edge only passes slots that exist: no row updated means no seat left.
            tx.rollback().await?;
            return Ok(Outcome::SlotFull);
        }
        let row = match tx
            .query_one(&conn.insert, &[&slot.phase, &slot.id, &person])
            .await
        {
            Ok(row) => row,
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                // Gives the seat back with the rest of the transaction.
                tx.rollback().await?;
                return Ok(Outcome::AlreadyBooked);
            }
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        let id: i64 = row.try_get(0)?;
        Ok(Outcome::Booked(id.cast_unsigned()))
    }
}

impl Book for Postgres {
    async fn book(&self, slot: &SlotEntry, person: &[u8]) -> Outcome {
        let person = String::from_utf8_lossy(person);
        match self.try_book(slot, &person).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                // The 1st, 2nd, 4th, 8th... failure: an outage is visible, not a flood.
                if n.is_power_of_two() {
                    eprintln!("peer-postgres: {n} bookings failed so far; the latest: {e:#}");
                }
                Outcome::Unavailable
            }
        }
    }
}

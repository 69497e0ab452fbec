//! The tables, created afresh at start, and the statements a booking runs.

use anyhow::{Context, bail};
use slotd_benches::edge::SlotTable;
use tokio_postgres::{Config, NoTls};

/// `--schema`: a plain lower-case identifier, so it goes into SQL text unquoted.
pub fn name(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if first_ok
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(s.to_owned())
    } else {
        Err("a schema name is [a-z_][a-z0-9_]*, at most 63 characters".to_owned())
    }
}

/// The SQL of a booking, qualified with the schema.
#[derive(Debug, Clone)]
pub struct Statements {
    /// Takes a seat if one is left; 0 rows: the slot is full. Under READ COMMITTED a
    /// concurrent taker of the same row waits for the first to commit, then rechecks
    /// `booked < capacity` on the new row version, so the count never passes capacity.
    pub reserve: String,
    /// Records the booking; a second one for the person in the phase violates
    /// `UNIQUE (phase, person)`.
    pub insert: String,
}

impl Statements {
    pub fn new(schema: &str) -> Self {
        Self {
            reserve: format!(
                "UPDATE {schema}.slots SET booked = booked + 1 WHERE id = $1 AND booked < capacity"
            ),
            insert: format!(
                "INSERT INTO {schema}.bookings (phase, slot, person) VALUES ($1, $2, $3) RETURNING id"
            ),
        }
    }
}

/// Drops and creates `schema` with the two tables, loads every slot of the calendar in
/// one statement, and prints the server's durability settings to stderr.
pub async fn create(config: &Config, schema: &str, slots: &SlotTable) -> anyhow::Result<()> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting to the database")?;
    // Ends when `client` is dropped at the end of this function.
    let connection = tokio::spawn(connection);

    let show = |name: &'static str| {
        let client = &client;
        async move {
            let row = client.query_one(&format!("SHOW {name}"), &[]).await?;
            row.try_get::<_, String>(0)
        }
    };
    eprintln!(
        "peer-postgres: PostgreSQL {}, synchronous_commit={}, fsync={}, wal_sync_method={}, commit_delay={}",
        show("server_version").await?,
        show("synchronous_commit").await?,
        show("fsync").await?,
        show("wal_sync_method").await?,
        show("commit_delay").await?,
    );

    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE;
             CREATE SCHEMA {schema};
             CREATE TABLE {schema}.slots (
                 id text PRIMARY KEY,
                 capacity int NOT NULL,
                 booked int NOT NULL DEFAULT 0
             );
             CREATE TABLE {schema}.bookings (
                 id bigserial PRIMARY KEY,
                 phase text NOT NULL,
                 slot text NOT NULL REFERENCES {schema}.slots,
                 person text NOT NULL,
                 created_at timestamptz NOT NULL DEFAULT now(),
                 UNIQUE (phase, person)
             );"
        ))
        .await
        .with_context(|| format!("creating schema {schema}"))?;

    let ids: Vec<&str> = slots.iter().map(|s| s.id.as_str()).collect();
    let capacities = slots
        .iter()
        .map(|s| i32::try_from(s.capacity))
        .collect::<Result<Vec<i32>, _>>()
        .context("a slot capacity does not fit an int")?;
    let loaded = client
        .execute(
            &format!(
                "INSERT INTO {schema}.slots (id, capacity) SELECT * FROM unnest($1::text[], $2::int[])"
            ),
            &[&ids, &capacities],
        )
        .await
        .context("loading the slots")?;
    if loaded != ids.len() as u64 {
        bail!("loaded {loaded} of {} slots", ids.len());
    }
    client
        .batch_execute(&format!("ANALYZE {schema}.slots"))
        .await
        .context("analyzing the slots")?;
    drop(client);
    connection
        .await
        .context("the setup connection's task")?
        .context("the setup connection")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::name;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(name("slotd_peer").is_ok());
        assert!(name("_x9").is_ok());
        assert!(name("").is_err());
        assert!(name("9x").is_err());
        assert!(name("Peer").is_err());
        assert!(name("a; DROP TABLE x").is_err());
        assert!(name(&"a".repeat(64)).is_err());
    }
}

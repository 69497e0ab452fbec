//! A fixed number of database connections, each serving one booking at a time.
//!
//! A semaphore holds one permit per connection and a mutex the idle ones: a booking
//! waits (first come, first served) for a permit, then takes any idle connection. A
//! connection that is closed (the database went away) is opened afresh by the booking
//! that finds it so; a failed reopening fails only that booking and leaves the pool one
//! connection short, which the next booking to find no idle one opens again.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};

use anyhow::Context;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::schema::Statements;

/// One connection with the booking statements prepared on it.
pub struct Conn {
    pub client: Client,
    pub reserve: Statement,
    pub insert: Statement,
}

pub struct Pool {
    config: Config,
    statements: Statements,
    /// At most `permits`' count of connections; never locked across an `.await`.
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

impl Pool {
    /// Opens `size` connections.
    pub async fn open(config: Config, statements: Statements, size: usize) -> anyhow::Result<Self> {
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            idle.push(connect(&config, &statements).await?);
        }
        Ok(Self {
            config,
            statements,
            idle: Mutex::new(idle),
            permits: Semaphore::new(size),
        })
    }

    /// A connection for one booking, back in the pool when the lease drops.
    pub async fn get(&self) -> anyhow::Result<Lease<'_>> {
        let permit = self.permits.acquire().await.context("the pool is closed")?;
        // Holding a permit, this task may use one connection; one is idle unless a
        // reopening failed (see the module comment).
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) if !conn.client.is_closed() => conn,
            _ => connect(&self.config, &self.statements).await?,
        };
        Ok(Lease {
            conn: Some(conn),
            pool: self,
            _permit: permit,
        })
    }
}

/// A connection taken from the pool.
pub struct Lease<'a> {
    /// `Some` until dropped.
    conn: Option<Conn>,
    pool: &'a Pool,
    /// Released after `drop` has put the connection back (fields drop after it).
    _permit: SemaphorePermit<'a>,
}

impl Deref for Lease<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl Drop for Lease<'_> {
    /// Puts the connection back. A booking dropped mid-transaction (its client went
    /// away) is safe to reuse: tokio-postgres queues a ROLLBACK for a transaction that
    /// was neither committed nor rolled back, ahead of the next user's statements.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }
}

async fn connect(config: &Config, statements: &Statements) -> anyhow::Result<Conn> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting to the database")?;
    // The connection's I/O task: it ends when `client` is dropped or the socket fails,
    // and the pool then sees `is_closed` and reconnects.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!(
                "peer-postgres: a database connection failed: {:#}",
                anyhow::Error::from(e)
            );
        }
    });
    let reserve = client
        .prepare(&statements.reserve)
        .await
        .context("preparing the reserve statement")?;
    let insert = client
        .prepare(&statements.insert)
        .await
        .context("preparing the insert statement")?;
    Ok(Conn {
        client,
        reserve,
        insert,
    })
}

//! Keep-alive HTTP/1.1 connections to the target: one request at a time on each, opened
//! when no idle one is left, kept after an answer unless the server closes it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONNECTION, RETRY_AFTER};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::stats::Failure;

type Sender = SendRequest<Full<Bytes>>;

/// A whole answer: its status and numeric `Retry-After`, if any.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
}

/// The connections not carrying a request now. The caller bounds requests in flight
/// (`--connections`), and each holds one connection, so at most that many are open.
#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<Sender>>,
    opened: AtomicU64,
}

impl Pool {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Mutex::new(Vec::new()),
            opened: AtomicU64::new(0),
        }
    }

    /// Connections opened so far (reconnections included).
    pub fn opened(&self) -> u64 {
        // Relaxed: a counter read once the run is over.
        self.opened.load(Ordering::Relaxed)
    }

    /// Opens `n` connections ahead of the run, so that its first requests do not all pay
    /// for a handshake.
    pub async fn preconnect(&self, n: usize) -> Result<(), Failure> {
        for _ in 0..n {
            let sender = self.connect().await?;
            self.put_back(sender);
        }
        Ok(())
    }

    async fn connect(&self) -> Result<Sender, Failure> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|_| Failure::Connect)?;
        stream.set_nodelay(true).map_err(|_| Failure::Connect)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        // The connection task is owned by its `SendRequest`: it ends when the sender is
        // dropped (or the server closes the connection), so nothing outlives the run.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn put_back(&self, sender: Sender) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sender);
    }

    /// Sends one request on an idle connection, or a new one, and reads the whole answer.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Answer, Failure> {
        let mut sender = match self.take_idle() {
            Some(s) => s,
            None => self.connect().await?,
        };
        if sender.ready().await.is_err() {
            // A kept connection the server closed since: the request was not sent yet,
            // so it goes out on a fresh one.
            sender = self.connect().await?;
            sender.ready().await.map_err(|_| Failure::Connect)?;
        }
        let resp = sender
            .send_request(req)
            .await
            .map_err(|_| Failure::Request)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let close = resp
            .headers()
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        resp.into_body()
            .collect()
            .await
            .map_err(|_| Failure::Request)?;
        if !close && !sender.is_closed() {
            self.put_back(sender);
        }
        Ok(Answer {
            status,
            retry_after,
        })
    }
}

//! SMS gateways: how invitation text messages reach a carrier.
//!
//! A dispatcher claims messages from the durable outbox and hands them, in batches, to a
//! [`Gateway`]; the gateway answers one result per message. The outbox gives
//! at-least-once delivery (a dispatcher may die after sending and before marking a
//! message sent), so every gateway is idempotent per message id: sending a message again
//! never sends a second text.
//!
//! - [`Gateway`], [`Outgoing`], [`SendError`]: the seam the dispatcher calls.
//! - [`GatewaySpec`], [`open`]: choosing a gateway from configuration (`file:PATH` or an
//!   `http://` URL) and opening it.
//! - [`FileGateway`]: appends one JSON line per message to a file; for drills, demos and
//!   carriers that collect files.
//! - [`WebhookGateway`]: POSTs one JSON object per message, with an `Idempotency-Key`.
//! - [`backoff`]: when to try a message again after [`SendError::Retry`].
//! - [`Template`]: the zh-TW invitation text.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

mod backoff;
mod file;
mod spec;
mod template;
mod webhook;

pub use backoff::backoff;
pub use file::FileGateway;
pub use spec::{GatewayError, GatewaySpec, SpecError, open};
pub use template::{Template, TemplateError};
pub use webhook::{WebhookGateway, WebhookOptions};

/// A boxed future: the trait is used as `dyn Gateway`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One text message to send. It is also the JSON object both gateways emit, field for
/// field, so a carrier sees the same shape whichever gateway carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The outbox message id, e.g. `m1f`; the idempotency key of the send.
    pub message: String,
    /// The mobile number, `09xxxxxxxx`.
    pub to: String,
    /// The phase the invitation is for.
    pub phase: String,
    /// The rendered text.
    pub text: String,
}

/// Why a message was not sent. Which variant decides what the dispatcher does next, so
/// a gateway picks [`Permanent`](SendError::Permanent) only when sending the same
/// message again cannot succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A passing failure (a timeout, a refused connection, a carrier that is busy): try
    /// again later, after [`backoff`].
    #[error("retry: {0}")]
    Retry(String),
    /// The carrier refused this message and will refuse it again: give up on it.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Carries messages to a carrier.
pub trait Gateway: Send + Sync + std::fmt::Debug + 'static {
    /// `file` or `webhook`: a low-cardinality label for logs and metrics.
    fn name(&self) -> &'static str;

    /// Sends a batch; one result per message, same order. Must be idempotent per message
    /// id: a message sent before (by this process or, where the gateway can know, by
    /// another) answers `Ok` without a second text.
    fn send<'a>(&'a self, batch: &'a [Outgoing]) -> BoxFuture<'a, Vec<Result<(), SendError>>>;
}

//! The webhook gateway: one HTTP POST per message, with the message id as its
//! `Idempotency-Key`, classified into sent, retry or give up.

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{BoxFuture, Gateway, GatewayError, Outgoing, SendError};

/// The header that makes a resend safe: the carrier keeps the first answer per key.
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// How much of a response body is read: enough for an error message, and a bound on
/// what a misbehaving carrier can make us buffer.
const MAX_RESPONSE: usize = 64 * 1024;

/// How much of an error response's body is quoted in the error.
const QUOTED: usize = 200;

/// How a webhook gateway talks to its carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    /// The most one request may take, connecting and reading the answer included. A
    /// carrier that does not answer in time gets the message again later, under the same
    /// key.
    pub timeout: Duration,
    /// The most requests of one batch in flight at once: the carrier's rate limit, not
    /// ours, is what this respects.
    pub concurrency: usize,
    /// PEM certificates trusted for `https://` besides the system's roots (a carrier
    /// with a private CA); `None`: the system's roots only.
    pub ca_file: Option<std::path::PathBuf>,
}

#[cfg(feature = "https-webhook")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "https-webhook"))]
type Connector = HttpConnector;

/// Speaks TLS (rustls on aws-lc-rs, TLS 1.2 and 1.3) to `https://` carriers, trusting
/// the system's roots and `ca_file`; plain HTTP to `http://` ones.
#[cfg(feature = "https-webhook")]
fn connector(
    http: HttpConnector,
    ca_file: Option<&std::path::Path>,
) -> Result<Connector, GatewayError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let tls = |e: String| GatewayError::Tls(e);
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| tls(format!("--sms-ca-file {}: {e}", path.display())))?
        {
            let cert = cert.map_err(|e| tls(format!("--sms-ca-file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| tls(format!("--sms-ca-file {}: {e}", path.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(tls(format!(
            "no trusted root certificate: none of the system's ({added} usable) and no --sms-ca-file"
        )));
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

#[cfg(not(feature = "https-webhook"))]
fn connector(
    http: HttpConnector,
    _ca_file: Option<&std::path::Path>,
) -> Result<Connector, GatewayError> {
    Ok(http)
}

/// POSTs each message as JSON, `{"message","to","phase","text"}`, with
/// `Idempotency-Key: <message id>`, over HTTP, or HTTPS with the `https-webhook` feature
/// (see [`GatewayError::HttpsUnsupported`]). Idempotency rests on the carrier honouring
/// the key: a message whose answer was lost is sent again under the same key.
pub struct WebhookGateway {
    client: Client<Connector, Full<Bytes>>,
    uri: Uri,
    options: WebhookOptions,
}

impl std::fmt::Debug for WebhookGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookGateway")
            .field("uri", &self.uri)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl WebhookGateway {
    /// A gateway posting to `uri`: `http://`, or `https://` in a build with TLS.
    pub fn new(uri: Uri, options: WebhookOptions) -> Result<Self, GatewayError> {
        if uri.scheme_str() == Some("https") && cfg!(not(feature = "https-webhook")) {
            return Err(GatewayError::HttpsUnsupported(uri));
        }
        if options.timeout.is_zero() {
            return Err(GatewayError::ZeroOption("timeout"));
        }
        if options.concurrency == 0 {
            return Err(GatewayError::ZeroOption("concurrency"));
        }
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(options.timeout));
        http.set_nodelay(true);
        // hyper-rustls hands https URLs to the inner connector, which must allow them.
        http.enforce_http(false);
        let connector = connector(http, options.ca_file.as_deref())?;
        let client = Client::builder(TokioExecutor::new())
            // Without a timer the pool never closes idle connections.
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            client,
            uri,
            options,
        })
    }

    /// Sends one message under the timeout.
    async fn post(&self, m: &Outgoing) -> Result<(), SendError> {
        let key = HeaderValue::from_str(&m.message).map_err(|_| {
            SendError::Permanent(format!(
                "message id {:?} cannot be an Idempotency-Key",
                m.message
            ))
        })?;
        let body = serde_json::to_vec(m)
            .map_err(|e| SendError::Permanent(format!("cannot encode the message: {e}")))?;
        let request = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_KEY, key)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Permanent(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| SendError::Retry(format!("{}: {}", self.uri, causes(&e))))?;
            let status = response.status();
            // Read to the end, so the connection goes back to the pool.
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| SendError::Retry(format!("{}: reading the answer: {e}", self.uri)))?
                .to_bytes();
            classify(status, &body)
        };
        tokio::time::timeout(self.options.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Retry(format!(
                    "{}: no answer within {:?}",
                    self.uri, self.options.timeout
                )))
            })
    }
}

/// What an answer means for the message: 2xx sent; 408, 425, 429 and 5xx a passing
/// refusal; any other 4xx a refusal of this message that a resend cannot change. 401,
/// 403 and 404, and anything else (a redirect, say), are faults of configuration (an
/// expired key, a wrong path) rather than of the message, so they are retried: nothing
/// is dropped while an operator fixes the gateway.
fn classify(status: StatusCode, body: &[u8]) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let quoted = String::from_utf8_lossy(&body[..body.len().min(QUOTED)]);
    let detail = format!("carrier answered {status}: {}", quoted.trim());
    match status.as_u16() {
        401 | 403 | 404 | 408 | 425 | 429 | 500..=599 => Err(SendError::Retry(detail)),
        400..=499 => Err(SendError::Permanent(detail)),
        _ => Err(SendError::Retry(detail)),
    }
}

/// An error with its causes: the legacy client's own message ("client error
/// (Connect)") names none of them.
fn causes(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Gateway for WebhookGateway {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, batch: &'a [Outgoing]) -> BoxFuture<'a, Vec<Result<(), SendError>>> {
        // `buffered` keeps input order and at most `concurrency` posts in flight.
        Box::pin(
            futures_util::stream::iter(batch)
                .map(|m| self.post(m))
                .buffered(self.options.concurrency)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests;

//! Choosing a gateway: the `--sms-gateway` value, parsed, and the gateway it opens.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use http::Uri;

use super::{FileGateway, Gateway, WebhookGateway, WebhookOptions};

/// Where messages go: `file:PATH` or an `http://` / `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewaySpec {
    /// Append JSON lines to this file.
    File(PathBuf),
    /// POST each message to this URL.
    Webhook(Uri),
}

/// Why a gateway value was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("SMS gateway {0:?} is neither file:PATH nor an http:// or https:// URL")]
    Unknown(String),
    #[error("SMS gateway file: needs a path, e.g. file:/var/lib/slotd/sms.ndjson")]
    EmptyPath,
    #[error("SMS gateway URL {url:?} is not valid: {reason}")]
    BadUrl { url: String, reason: String },
}

/// Why a gateway could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot open SMS gateway file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// This build has no TLS: the `https-webhook` feature (rustls on aws-lc-rs) is off by
    /// default, keeping the aws-lc-sys C build out of a plain server build.
    #[error(
        "SMS webhook {0} is https, and this slotd was built without TLS: build it with \
         `--features https-webhook`, or give the http:// URL of a local TLS-terminating proxy"
    )]
    HttpsUnsupported(Uri),
    /// The TLS setup failed (an unreadable `--sms-ca-file`, no usable root).
    #[error("SMS webhook TLS: {0}")]
    Tls(String),
    #[error("SMS webhook {0} must be above zero")]
    ZeroOption(&'static str),
}

impl FromStr for GatewaySpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err(SpecError::EmptyPath);
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if !(s.starts_with("http://") || s.starts_with("https://")) {
            return Err(SpecError::Unknown(s.to_owned()));
        }
        let bad = |reason: String| SpecError::BadUrl {
            url: s.to_owned(),
            reason,
        };
        let uri: Uri = s
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(bad("it has no host".to_owned()));
        }
        Ok(Self::Webhook(uri))
    }
}

impl fmt::Display for GatewaySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Webhook(uri) => write!(f, "{uri}"),
        }
    }
}

/// Opens the gateway `spec` names; `webhook` applies to webhooks only. Called once at
/// start: opening a file gateway reads the file through (blocking), so that a server
/// that cannot write its messages stops before it accepts bookings.
pub fn open(spec: &GatewaySpec, webhook: WebhookOptions) -> Result<Arc<dyn Gateway>, GatewayError> {
    Ok(match spec {
        GatewaySpec::File(path) => {
            Arc::new(
                FileGateway::open(path).map_err(|source| GatewayError::File {
                    path: path.clone(),
                    source,
                })?,
            )
        }
        GatewaySpec::Webhook(uri) => Arc::new(WebhookGateway::new(uri.clone(), webhook)?),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const OPTIONS: WebhookOptions = WebhookOptions {
        timeout: Duration::from_secs(2),
        concurrency: 4,
        ca_file: None,
    };

    fn parse(s: &str) -> Result<GatewaySpec, SpecError> {
        s.parse()
    }

    #[test]
    fn file_and_urls_are_understood() {
        assert_eq!(
            parse("file:/var/lib/slotd/sms.ndjson"),
            Ok(GatewaySpec::File("/var/lib/slotd/sms.ndjson".into()))
        );
        assert_eq!(
            parse("file:relative/sms.ndjson"),
            Ok(GatewaySpec::File("relative/sms.ndjson".into()))
        );
        let http = parse("http://127.0.0.1:9000/sms").expect("http");
        assert_eq!(http.to_string(), "http://127.0.0.1:9000/sms");
        assert!(matches!(
            parse("https://sms.example.tw/v1/send"),
            Ok(GatewaySpec::Webhook(_))
        ));
    }

    #[test]
    fn anything_else_is_refused_with_the_accepted_forms_named() {
        let err = parse("smtp://mail.example.tw").expect_err("unknown scheme");
        assert!(err.to_string().contains("file:PATH"), "{err}");
        assert!(err.to_string().contains("http://"), "{err}");
        assert_eq!(parse("file:"), Err(SpecError::EmptyPath));
        assert!(matches!(parse("http://"), Err(SpecError::BadUrl { .. })));
        assert!(matches!(
            parse("http://exa mple.tw/"),
            Err(SpecError::BadUrl { .. })
        ));
        assert!(matches!(parse(""), Err(SpecError::Unknown(_))));
    }

    #[cfg(not(feature = "https-webhook"))]
    #[test]
    fn https_webhook_is_refused_at_open_naming_the_reason() {
        let spec = parse("https://sms.example.tw/send").expect("parses");
        let err = open(&spec, OPTIONS).expect_err("https refused");
        assert!(matches!(err, GatewayError::HttpsUnsupported(_)));
        let text = err.to_string();
        assert!(text.contains("https") && text.contains("proxy"), "{text}");
    }

    #[test]
    fn open_answers_the_gateway_each_spec_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = GatewaySpec::File(dir.path().join("sms.ndjson"));
        assert_eq!(open(&file, OPTIONS).expect("file opens").name(), "file");
        let hook = parse("http://127.0.0.1:9/sms").expect("parses");
        assert_eq!(
            open(&hook, OPTIONS).expect("webhook opens").name(),
            "webhook"
        );
    }

    #[test]
    fn webhook_options_of_zero_are_refused() {
        let hook = parse("http://127.0.0.1:9/sms").expect("parses");
        let zero_timeout = WebhookOptions {
            timeout: Duration::ZERO,
            ..OPTIONS.clone()
        };
        let zero_concurrency = WebhookOptions {
            concurrency: 0,
            ..OPTIONS.clone()
        };
        assert!(matches!(
            open(&hook, zero_timeout),
            Err(GatewayError::ZeroOption("timeout"))
        ));
        assert!(matches!(
            open(&hook, zero_concurrency),
            Err(GatewayError::ZeroOption("concurrency"))
        ));
    }

    #[test]
    fn unwritable_file_path_is_refused_at_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        // The path is a directory: it cannot be opened for appending.
        let spec = GatewaySpec::File(dir.path().to_owned());
        assert!(matches!(
            open(&spec, OPTIONS),
            Err(GatewayError::File { .. })
        ));
    }
}

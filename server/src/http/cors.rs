//! CORS: browser frontends served from the configured origins (`--cors-origin`) may call
//! the API. A preflight (`OPTIONS` with `Access-Control-Request-Method`) from such an
//! origin, for a route that exists, answers `204` with what the route allows; every
//! answer to such an origin names it and exposes the headers a frontend reads. Other
//! origins get no CORS headers, so a browser keeps their pages out; `Vary: Origin` tells
//! caches the answer depends on it.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;

use super::request::HttpResponse;
use super::router::ROUTES;

/// Request headers a frontend may send.
const ALLOW_HEADERS: &str =
    "authorization, content-type, idempotency-key, accept-language, queue-ticket, x-request-id";
/// Answer headers a frontend may read besides the simple ones.
const EXPOSE_HEADERS: &str =
    "retry-after, etag, location, x-request-id, content-language, www-authenticate";
/// How long a browser may reuse a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

/// The request's `Origin`, when it is one of `allowed`.
pub fn allowed<'a>(headers: &'a HeaderMap, allowed: &[String]) -> Option<&'a HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let o = origin.to_str().ok()?;
    allowed.iter().any(|a| a == o).then_some(origin)
}

/// The answer to a preflight for `template` (as the router resolved the path with the
/// requested method), from an allowed `origin`.
pub fn preflight(origin: &HeaderValue, template: &str) -> HttpResponse {
    let methods: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.template == template)
        .map(|r| r.method)
        .collect();
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    h.append(header::VARY, HeaderValue::from_static("origin"));
    r
}

/// Whether a request is a CORS preflight, and for which method.
pub fn preflight_method(method: &Method, headers: &HeaderMap) -> Option<Method> {
    if method != Method::OPTIONS {
        return None;
    }
    let m = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
    Method::from_bytes(m.as_bytes()).ok()
}

/// Adds the CORS headers of an answer: the origin when it is allowed, and `Vary:
/// Origin` whenever CORS is configured at all.
pub fn decorate(response: &mut HttpResponse, origin: Option<&HeaderValue>, configured: bool) {
    let h = response.headers_mut();
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    if configured {
        h.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

/// Checks a `--cors-origin` value: `http(s)://host[:port]`, as browsers send it.
pub fn valid_origin(o: &str) -> bool {
    let Some(rest) = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty() && !rest.contains(['/', '?', '#', ' ', '*']) && o.parse::<http::Uri>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert!(valid_origin("https://1922.gov.tw"));
        assert!(valid_origin("http://localhost:5173"));
        for bad in [
            "*",
            "1922.gov.tw",
            "https://",
            "https://a.tw/",
            "https://a.tw/x",
            "ftp://a.tw",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }

    #[test]
    fn only_listed_origins_are_echoed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        let list = vec!["https://1922.gov.tw".to_string()];
        assert!(allowed(&h, &list).is_none());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://1922.gov.tw"),
        );
        assert_eq!(
            allowed(&h, &list).map(|v| v.as_bytes()),
            Some(&b"https://1922.gov.tw"[..])
        );
    }
}

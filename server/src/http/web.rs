//! The reference web frontend (`web/`), embedded at build time and served at `/`, with a
//! strong `ETag`, gzip and brotli (compressed once, on first demand) and a strict
//! Content-Security-Policy: every script, style and font comes from this server, so the
//! booking day depends on no third party.

use std::collections::HashMap;
use std::sync::LazyLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::request::{HttpResponse, cached, empty};
use crate::availability::Page;

mod files {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// Scripts, styles and connections only from this origin; captcha pictures and QR codes
/// are `data:` images; no inline script or style, no framing.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
    script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// One file of the frontend.
struct Asset {
    content_type: &'static str,
    /// Text compresses; pictures are served as they are.
    compressible: bool,
    page: Page,
}

static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    files::FILES
        .iter()
        .map(|&(path, bytes)| {
            let (content_type, compressible) = content_type(path);
            let asset = Asset {
                content_type,
                compressible,
                page: Page::new(Bytes::from_static(bytes)),
            };
            (path, asset)
        })
        .collect()
});

fn content_type(path: &str) -> (&'static str, bool) {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "html" => ("text/html; charset=utf-8", true),
        "js" | "mjs" => ("text/javascript; charset=utf-8", true),
        "css" => ("text/css; charset=utf-8", true),
        "json" | "webmanifest" => ("application/json", true),
        "svg" => ("image/svg+xml", true),
        "txt" | "md" => ("text/plain; charset=utf-8", true),
        "png" => ("image/png", false),
        "ico" => ("image/x-icon", false),
        "woff2" => ("font/woff2", false),
        _ => ("application/octet-stream", false),
    }
}

/// The embedded file a path names (`/` is `/index.html`), as its canonical path.
pub fn find(path: &str) -> Option<&'static str> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.get_key_value(path).map(|(k, _)| *k)
}

/// The number of embedded files (none when the build had no `web/`).
pub fn count() -> usize {
    files::FILES.len()
}

/// `GET` (or `HEAD`) of a file found by [`find`].
pub fn serve(path: &'static str, headers: &HeaderMap) -> HttpResponse {
    let Some(asset) = ASSETS.get(path) else {
        return empty(StatusCode::NOT_FOUND);
    };
    // No hashed file names (no build step): a browser or CDN revalidates each time, and
    // an unchanged file costs a 304.
    let mut r = cached(
        &asset.page,
        headers,
        asset.content_type,
        "no-cache",
        asset.compressible,
    );
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_index_and_only_embedded_files_are_found() {
        assert!(count() > 0, "the build embeds web/");
        assert_eq!(find("/"), Some("/index.html"));
        assert_eq!(find("/index.html"), Some("/index.html"));
        assert_eq!(find("/../Cargo.toml"), None);
        assert_eq!(find("/nope.js"), None);
        assert_eq!(find(""), None);
    }

    #[test]
    fn pages_carry_their_type_tag_and_policy_and_revalidate_with_304() {
        let r = serve("/index.html", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        let tag = h[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(
            serve("/index.html", &again).status(),
            StatusCode::NOT_MODIFIED
        );
        let mut gz = HeaderMap::new();
        gz.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(
            serve("/index.html", &gz).headers()[header::CONTENT_ENCODING],
            "gzip"
        );
    }

    #[test]
    fn types_follow_the_extension() {
        assert_eq!(
            content_type("/a/app.js").0,
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("/style.css").0, "text/css; charset=utf-8");
        assert_eq!(content_type("/x.png"), ("image/png", false));
        assert_eq!(content_type("/LICENSE").0, "application/octet-stream");
    }
}

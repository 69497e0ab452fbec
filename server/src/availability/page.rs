//! `Page`: one rendered availability page, with its strong `ETag` and its gzip and
//! brotli forms, each compressed at most once per snapshot (on first demand), so that a
//! CDN or a million browsers polling it cost one compression per snapshot, not one per
//! request.

use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;

/// A content coding the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    /// The `Content-Encoding` value, if any.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }

    /// The best coding `Accept-Encoding` allows: brotli, then gzip, else none. A coding
    /// with `q=0` is refused; `*` stands for the ones not named.
    pub fn negotiate(accept: Option<&str>) -> Encoding {
        let Some(accept) = accept else {
            return Encoding::Identity;
        };
        let mut br = None;
        let mut gzip = None;
        let mut star = None;
        for part in accept.split(',') {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_owned))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match name.as_str() {
                "br" => br = Some(q),
                "gzip" | "x-gzip" => gzip = Some(q),
                "*" => star = Some(q),
                _ => {}
            }
        }
        let ok = |q: Option<f32>| q.or(star).is_some_and(|q| q > 0.0);
        if ok(br) {
            Encoding::Brotli
        } else if ok(gzip) {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }
}

/// Brotli quality: 5 compresses a county page about 50× in a few milliseconds; 11 would
/// take a second.
const BROTLI_QUALITY: u32 = 5;

/// A rendered page and its encodings.
#[derive(Debug)]
pub struct Page {
    json: Bytes,
    etag: String,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
}

impl Page {
    pub fn new(json: Bytes) -> Self {
        // From the content, so that every instance gives the same page the same tag.
        let etag = format!("\"{:08x}-{:x}\"", crc32fast::hash(&json), json.len());
        Self {
            json,
            etag,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    /// The strong entity tag of the page in `encoding`, quoted: each content coding is
    /// its own representation, so each has its own tag (RFC 9110, 8.8.3.3).
    pub fn etag(&self, encoding: Encoding) -> String {
        let base = self.etag.trim_end_matches('"');
        match encoding {
            Encoding::Identity => self.etag.clone(),
            Encoding::Gzip => format!("{base}-gz\""),
            Encoding::Brotli => format!("{base}-br\""),
        }
    }

    /// The page in `encoding`.
    pub fn body(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::Identity => self.json.clone(),
            Encoding::Gzip => self
                .gzip
                .get_or_init(|| {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    // Writing into a Vec cannot fail.
                    let _ = e.write_all(&self.json);
                    Bytes::from(e.finish().unwrap_or_default())
                })
                .clone(),
            Encoding::Brotli => self
                .brotli
                .get_or_init(|| {
                    let mut out = Vec::new();
                    {
                        let mut w =
                            brotli::CompressorWriter::new(&mut out, 64 * 1024, BROTLI_QUALITY, 22);
                        let _ = w.write_all(&self.json);
                    }
                    Bytes::from(out)
                })
                .clone(),
        }
    }

    /// Whether an `If-None-Match` value names this page in `encoding`.
    pub fn matches(&self, if_none_match: &str, encoding: Encoding) -> bool {
        let tag = self.etag(encoding);
        if_none_match
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == tag)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn codings_are_negotiated_by_preference_and_q() {
        assert_eq!(Encoding::negotiate(None), Encoding::Identity);
        assert_eq!(
            Encoding::negotiate(Some("gzip, deflate, br")),
            Encoding::Brotli
        );
        assert_eq!(Encoding::negotiate(Some("gzip")), Encoding::Gzip);
        assert_eq!(
            Encoding::negotiate(Some("br;q=0, gzip;q=0.5")),
            Encoding::Gzip
        );
        assert_eq!(Encoding::negotiate(Some("identity")), Encoding::Identity);
        assert_eq!(Encoding::negotiate(Some("*")), Encoding::Brotli);
        assert_eq!(Encoding::negotiate(Some("*;q=0")), Encoding::Identity);
    }

    #[test]
    fn every_encoding_gives_back_the_page_and_the_tag_follows_the_content() {
        let json =
            Bytes::from("{\"sites\":[".to_string() + &"{\"site\":\"S1\"},".repeat(500) + "]}");
        let p = Page::new(json.clone());
        let mut gz = String::new();
        flate2::read::GzDecoder::new(&p.body(Encoding::Gzip)[..])
            .read_to_string(&mut gz)
            .expect("gzip");
        assert_eq!(gz.as_bytes(), &json[..]);
        let mut br = Vec::new();
        brotli::Decompressor::new(&p.body(Encoding::Brotli)[..], 4096)
            .read_to_end(&mut br)
            .expect("brotli");
        assert_eq!(br, json.to_vec());
        assert!(p.body(Encoding::Brotli).len() < json.len() / 10);
        let id = Encoding::Identity;
        assert!(p.matches(&p.etag(id), id) && p.matches(&format!("W/{}, \"x\"", p.etag(id)), id));
        assert!(!Page::new(Bytes::from_static(b"{}")).matches(&p.etag(id), id));
        // Each coding is its own representation with its own tag.
        let (gz, br) = (Encoding::Gzip, Encoding::Brotli);
        assert!(p.etag(gz) != p.etag(id) && p.etag(br) != p.etag(gz));
        assert!(p.matches(&p.etag(br), br) && !p.matches(&p.etag(gz), br));
    }
}

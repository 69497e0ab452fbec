//! `Captchas`: stateless captcha challenges that any instance can check.
//!
//! A challenge id is `"{expires_at}.{16 random bytes}.{tag}"` (base64url), where the tag
//! is an HMAC of the rest under a key every instance shares, and its answer is an HMAC of
//! the whole id. So no instance stores the answer, any instance can check it, the expiry
//! cannot be altered, and an id we did not issue is refused before anything is stored.
//!
//! Single use is *not* this module's job: the caller marks an id used (a wrong answer
//! burns it too) in a store shared by every instance, until the id's expiry. Only issued
//! ids get that far (the tag), and their expiry is at most the time to live away, which
//! keeps that store bounded by the rate of `GET /v1/captcha`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Characters of a production answer: digits and capitals that are hard to confuse
/// (no `0 O 1 I L`) and that the captcha font can draw.
const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters in an answer, in both modes.
const ANSWER_LEN: usize = 6;
/// Longer ids are not ours: `i64` expiry (at most 20 bytes), a dot, 22 base64 bytes, a
/// dot, a 16-character tag.
const MAX_ID_LEN: usize = 64;
/// Bytes of the id's tag: 96 bits.
const TAG_BYTES: usize = 12;
/// How far past `now + ttl` an expiry may lie and still be accepted, for clocks that
/// differ between instances. Anything further was not issued by us.
const CLOCK_SKEW_SECONDS: i64 = 30;
/// Domain separation for the production answer key and the id key.
const ANSWER_KEY_LABEL: &[u8] = b"slotd-captcha-v1";
const ID_KEY_LABEL: &[u8] = b"slotd-captcha-id-v1";

/// The captcha crate draws on a fixed 400 x 300 canvas, text starting at x = 100.
const CANVAS_WIDTH: u32 = 400;
const CANVAS_HEIGHT: u32 = 300;
/// The cropped image: at least this wide, and this high.
const IMAGE_MIN_WIDTH: u32 = 220;
const IMAGE_HEIGHT: u32 = 120;
/// Space kept left and right of the text when cropping.
const IMAGE_MARGIN: u32 = 20;

/// A freshly issued challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub id: String,
    /// Unix seconds; the challenge is refused from this second on.
    pub expires_at: i64,
}

/// Why an answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaptchaError {
    #[error("the captcha id is not one we issue")]
    Malformed,
    #[error("the captcha has expired")]
    Expired,
    #[error("the captcha answer is wrong")]
    Wrong,
}

/// Issues and checks challenges. Cheap to share: holds only derived keys.
#[derive(Clone)]
pub struct Captchas {
    /// Production answer key, `HMAC-SHA256(secret, "slotd-captcha-v1")`. Also keys the
    /// constant-time comparison of answers in both modes.
    answer_key: [u8; 32],
    /// Tags the ids we issue, `HMAC-SHA256(secret, "slotd-captcha-id-v1")`.
    id_key: [u8; 32],
    /// Test mode: the published key over which drills compute answers themselves.
    test_key: Option<Vec<u8>>,
    ttl_seconds: i64,
}

impl Captchas {
    /// `secret` is the deployment's shared secret; `test_secret`, when set, switches to
    /// the published test-mode answers (drills and tests only). A `ttl_seconds` below one
    /// is raised to one.
    pub fn new(secret: &[u8], test_secret: Option<&[u8]>, ttl_seconds: i64) -> Self {
        let answer_key = hmac(secret, ANSWER_KEY_LABEL);
        Captchas {
            answer_key,
            id_key: hmac(secret, ID_KEY_LABEL),
            test_key: test_secret.map(<[u8]>::to_vec),
            ttl_seconds: ttl_seconds.max(1),
        }
    }

    /// Whether answers are the published test-mode ones.
    pub fn test_mode(&self) -> bool {
        self.test_key.is_some()
    }

    /// A new challenge valid for the configured time to live.
    pub fn issue(&self, now_unix: i64) -> Challenge {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)
            .expect("the operating system's random source is available to the server");
        let expires_at = now_unix.saturating_add(self.ttl_seconds);
        let head = format!("{expires_at}.{}", URL_SAFE_NO_PAD.encode(nonce));
        let tag = self.tag(&head);
        Challenge {
            id: format!("{head}.{tag}"),
            expires_at,
        }
    }

    fn tag(&self, head: &str) -> String {
        URL_SAFE_NO_PAD.encode(&hmac(&self.id_key, head.as_bytes())[..TAG_BYTES])
    }

    /// Whether `id` carries our tag (constant time).
    fn issued(&self, id: &str) -> bool {
        let Some((head, tag)) = id.rsplit_once('.') else {
            return false;
        };
        let Ok(given) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        let mut mac = new_mac(&self.id_key);
        mac.update(head.as_bytes());
        given.len() == TAG_BYTES && mac.verify_truncated_left(&given).is_ok()
    }

    /// The answer to challenge `id`. Production: six characters of [`ALPHABET`] drawn
    /// from `HMAC-SHA256(answer_key, id)`. Test mode: the first six characters of the
    /// lowercase hex `HMAC-SHA256(test_secret, id)`, a published contract.
    pub fn answer(&self, id: &str) -> String {
        match &self.test_key {
            Some(key) => hmac(key, id.as_bytes())
                .iter()
                .flat_map(|b| [b >> 4, b & 0xf])
                .take(ANSWER_LEN)
                .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
                .collect(),
            None => {
                let mac = hmac(&self.answer_key, id.as_bytes());
                let mut head = [0u8; 8];
                head.copy_from_slice(&mac[..8]);
                // 31^6 is below 2^30, so repeated division of a 64-bit value has a bias
                // far below anything an attacker could use.
                let mut n = u64::from_be_bytes(head);
                (0..ANSWER_LEN)
                    .map(|_| {
                        let c = ALPHABET[(n % ALPHABET.len() as u64) as usize];
                        n /= ALPHABET.len() as u64;
                        char::from(c)
                    })
                    .collect()
            }
        }
    }

    /// Checks `answer` to challenge `id` at `now_unix`. Production answers are
    /// case-insensitive; test-mode answers are compared in lowercase. The comparison
    /// is of HMACs of both strings, so it takes the same time wherever they differ.
    ///
    /// An expiry further than the time to live (plus clock skew) from now is
    /// [`CaptchaError::Malformed`]: we never issue one, so the id was forged.
    pub fn check(&self, id: &str, answer: &str, now_unix: i64) -> Result<(), CaptchaError> {
        let expires_at = parse_expiry(id)?;
        if !self.issued(id) {
            return Err(CaptchaError::Malformed);
        }
        if expires_at
            > now_unix
                .saturating_add(self.ttl_seconds)
                .saturating_add(CLOCK_SKEW_SECONDS)
        {
            return Err(CaptchaError::Malformed);
        }
        if now_unix >= expires_at {
            return Err(CaptchaError::Expired);
        }
        let given = if self.test_mode() {
            answer.to_ascii_lowercase()
        } else {
            answer.to_ascii_uppercase()
        };
        let expected = hmac(&self.answer_key, self.answer(id).as_bytes());
        let mut mac = new_mac(&self.answer_key);
        mac.update(given.as_bytes());
        mac.verify_slice(&expected).map_err(|_| CaptchaError::Wrong)
    }

    /// The challenge drawn as a PNG, or `None` if the drawing failed or the id is not
    /// one we issue. The font lacks `0` (and `O`, `I`, `L`, `o`): production answers
    /// never use them, and a test-mode `0` is left out of the picture (drills compute
    /// test answers, they do not read them).
    pub fn image_png(&self, id: &str) -> Option<Vec<u8>> {
        parse_expiry(id).ok()?;
        let answer = self.answer(id);
        let mut captcha = captcha::Captcha::new();
        let supported = captcha.supported_chars();
        let mut drawn = 0;
        for c in answer.chars().filter(|c| supported.contains(c)) {
            captcha.set_chars(&[c]).add_char();
            drawn += 1;
        }
        // Crop first, then distort: the filters then touch a fifth of the 400 x 300
        // canvas (measured: 2.9 ms a challenge with the filters on the whole canvas).
        if drawn > 0 {
            captcha.extract(crop_around(captcha.text_area()));
        }
        captcha
            .apply_filter(captcha::filters::Noise::new(0.2))
            .apply_filter(captcha::filters::Wave::new(2.0, 12.0).horizontal())
            .apply_filter(captcha::filters::Wave::new(2.0, 12.0).vertical());
        captcha.as_png()
    }

    /// [`Captchas::image_png`] as a `data:` URL for JSON answers.
    pub fn data_url(&self, id: &str) -> Option<String> {
        self.image_png(id)
            .map(|png| format!("data:image/png;base64,{}", STANDARD.encode(png)))
    }
}

/// Never prints a key.
impl fmt::Debug for Captchas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Captchas")
            .field("test_mode", &self.test_mode())
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

/// The expiry at the head of an id we could have issued.
fn parse_expiry(id: &str) -> Result<i64, CaptchaError> {
    if id.len() > MAX_ID_LEN {
        return Err(CaptchaError::Malformed);
    }
    let (head, nonce) = id.split_once('.').ok_or(CaptchaError::Malformed)?;
    if head.is_empty() || !head.bytes().all(|b| b.is_ascii_digit()) || nonce.is_empty() {
        return Err(CaptchaError::Malformed);
    }
    head.parse().map_err(|_| CaptchaError::Malformed)
}

/// A crop of the canvas around the drawn text, kept inside the canvas (the crate's own
/// `view` can step outside it and panic). Six of the widest glyphs overflow the canvas
/// by a few pixels; that happens for about one answer in a million and only clips the
/// last glyph's edge.
fn crop_around(text: captcha::Geometry) -> captcha::Geometry {
    let text_width = text.right.saturating_sub(text.left);
    let width = (text_width + 2 * IMAGE_MARGIN).clamp(IMAGE_MIN_WIDTH, CANVAS_WIDTH);
    let centre_x = (text.left + text.right) / 2;
    let left = centre_x.saturating_sub(width / 2).min(CANVAS_WIDTH - width);
    let centre_y = (text.top + text.bottom) / 2;
    let top = centre_y
        .saturating_sub(IMAGE_HEIGHT / 2)
        .min(CANVAS_HEIGHT - IMAGE_HEIGHT);
    captcha::Geometry::new(left, left + width, top, top + IMAGE_HEIGHT)
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = new_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_625_097_600;

    fn production() -> Captchas {
        Captchas::new(b"deployment secret", None, 120)
    }

    #[test]
    fn answer_is_deterministic_per_id_and_differs_between_ids() {
        let c = production();
        let a = c.issue(NOW);
        let b = c.issue(NOW);
        assert_ne!(a.id, b.id);
        assert_eq!(c.answer(&a.id), c.answer(&a.id));
        assert_ne!(c.answer(&a.id), c.answer(&b.id));
        let answer = c.answer(&a.id);
        assert_eq!(answer.len(), 6);
        assert!(answer.bytes().all(|b| ALPHABET.contains(&b)), "{answer}");
        // Another instance with the same secret agrees.
        assert_eq!(production().answer(&a.id), answer);
        assert_ne!(Captchas::new(b"other", None, 120).answer(&a.id), answer);
    }

    #[test]
    fn issued_id_carries_its_expiry() {
        let ch = production().issue(NOW);
        assert_eq!(ch.expires_at, NOW + 120);
        assert!(ch.id.starts_with(&format!("{}.", NOW + 120)));
        assert_eq!(ch.id.len(), 10 + 1 + 22 + 1 + 16);
    }

    #[test]
    fn correct_answer_passes_in_any_case() {
        let c = production();
        let ch = c.issue(NOW);
        let answer = c.answer(&ch.id);
        assert_eq!(c.check(&ch.id, &answer, NOW), Ok(()));
        assert_eq!(c.check(&ch.id, &answer.to_lowercase(), NOW + 119), Ok(()));
    }

    #[test]
    fn test_mode_answer_is_the_published_hmac_hex_prefix() {
        let c = Captchas::new(b"ignored", Some(b"drill-key"), 120);
        assert!(c.test_mode());
        let issued = c.issue(NOW);
        let id = issued.id.as_str();
        // Computed independently of `Captchas::answer`.
        let mut mac = HmacSha256::new_from_slice(b"drill-key").expect("any key");
        mac.update(id.as_bytes());
        let hex = hex::encode(mac.finalize().into_bytes());
        assert_eq!(c.answer(id), hex[..6]);
        assert_eq!(c.check(id, &hex[..6], NOW), Ok(()));
        assert_eq!(c.check(id, &hex[..6].to_uppercase(), NOW), Ok(()));
    }

    #[test]
    fn wrong_expired_and_malformed_are_told_apart() {
        let c = production();
        let ch = c.issue(NOW);
        let answer = c.answer(&ch.id);
        assert_eq!(c.check(&ch.id, "ZZZZZZ", NOW), Err(CaptchaError::Wrong));
        assert_eq!(c.check(&ch.id, "", NOW), Err(CaptchaError::Wrong));
        assert_eq!(
            c.check(&ch.id, &format!("{answer}X"), NOW),
            Err(CaptchaError::Wrong)
        );
        assert_eq!(
            c.check(&ch.id, &answer, ch.expires_at),
            Err(CaptchaError::Expired)
        );
        for bad in [
            "",
            "nodot",
            ".abc",
            "123.",
            "-5.abc",
            "+5.abc",
            "12x.abc",
            &format!("1.{}", "a".repeat(64)),
        ] {
            assert_eq!(
                c.check(bad, "ABCDEF", NOW),
                Err(CaptchaError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn altering_the_expiry_changes_the_answer() {
        let c = production();
        let ch = c.issue(NOW);
        let (_, rest) = ch.id.split_once('.').expect("issued ids have a dot");
        let later = format!("{}.{rest}", ch.expires_at + 10);
        assert_ne!(c.answer(&later), c.answer(&ch.id));
        // The tag no longer matches: refused before any answer is compared or stored.
        for answer in [c.answer(&ch.id), c.answer(&later)] {
            assert_eq!(c.check(&later, &answer, NOW), Err(CaptchaError::Malformed));
        }
    }

    #[test]
    fn ids_we_did_not_issue_are_refused_even_with_their_answer() {
        let c = production();
        let forged = format!("{}.AAAAAAAAAAAAAAAAAAAAAA", NOW + 60);
        assert_eq!(
            c.check(&forged, &c.answer(&forged), NOW),
            Err(CaptchaError::Malformed)
        );
        let other = Captchas::new(b"another deployment", None, 120).issue(NOW);
        assert_eq!(
            c.check(&other.id, &c.answer(&other.id), NOW),
            Err(CaptchaError::Malformed)
        );
        let test_mode = Captchas::new(b"secret", Some(b"k"), 120);
        let mine = test_mode.issue(NOW);
        let answer = test_mode.answer(&mine.id);
        assert_eq!(test_mode.check(&mine.id, &answer, NOW), Ok(()));
        let untagged = mine.id.rsplit_once('.').expect("tag").0.to_string();
        assert_eq!(
            test_mode.check(&untagged, &test_mode.answer(&untagged), NOW),
            Err(CaptchaError::Malformed)
        );
    }

    #[test]
    fn expiry_beyond_the_time_to_live_is_not_ours() {
        let c = production();
        let far = format!("{}.AAAA", NOW + 3600);
        assert_eq!(
            c.check(&far, &c.answer(&far), NOW),
            Err(CaptchaError::Malformed)
        );
    }

    #[test]
    fn image_is_a_png() {
        let c = production();
        let ch = c.issue(NOW);
        let png = c.image_png(&ch.id).expect("drawn");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let url = c.data_url(&ch.id).expect("drawn");
        assert!(url.starts_with("data:image/png;base64,iVBORw0KGgo"));
        assert_eq!(c.image_png("nodot"), None);
    }

    #[test]
    fn widest_and_empty_answers_still_draw() {
        // Six of the widest glyphs, and a test-mode answer the font cannot draw at all.
        let mut captcha = captcha::Captcha::new();
        for _ in 0..6 {
            captcha.set_chars(&['W']).add_char();
        }
        let area = crop_around(captcha.text_area());
        assert!(area.right <= CANVAS_WIDTH && area.bottom <= CANVAS_HEIGHT);
        assert!(captcha.extract(area).as_png().is_some());
        let c = Captchas::new(b"s", Some(b"t"), 120);
        let id = (0..)
            .map(|n| format!("{}.{n}", NOW + 60))
            .find(|id| c.answer(id).starts_with('0'))
            .expect("some id's answer starts with 0");
        assert!(c.image_png(&id).is_some());
    }

    #[test]
    fn debug_shows_no_keys() {
        let c = Captchas::new(b"deployment secret", Some(b"drill-key"), 120);
        let shown = format!("{c:?}");
        assert!(shown.contains("test_mode: true"), "{shown}");
        assert!(
            !shown.contains("answer_key") && !shown.contains("drill"),
            "{shown}"
        );
    }
}

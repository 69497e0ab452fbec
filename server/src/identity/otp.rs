//! One-time codes of the NHI app: TOTP (RFC 6238), six digits, SHA-1, 30-second steps.
//!
//! Those are the parameters every authenticator app supports. A code is accepted in
//! the current step and one step either side, for clock skew between phone and
//! server; [`verify`] returns the step that matched so that the caller can refuse a
//! second use of the same step (a replay) in its store.

use totp_rs::{Algorithm, Secret, TOTP};

/// Digits in a code.
pub const DIGITS: usize = 6;
/// Seconds per time step.
pub const STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: u64 = 1;
/// Longest secret accepted, in decoded bytes (RFC 4226 recommends 20).
pub const MAX_SECRET_BYTES: usize = 64;
/// Shortest secret accepted: RFC 4226 §4 requires at least 128 bits.
pub const MIN_SECRET_BYTES: usize = 16;

/// Why a base32 secret is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    #[error("an OTP secret is base32 (RFC 4648)")]
    Base32,
    #[error("an OTP secret is 16 to 64 bytes (RFC 4226: at least 128 bits)")]
    Length,
}

/// Decodes a base32 secret as apps and registries write it: either case, with or
/// without `=` padding, 16 to 64 bytes decoded.
pub fn parse_secret(base32: &str) -> Result<Vec<u8>, OtpError> {
    let trimmed = base32.trim_end_matches('=');
    if trimmed.is_empty() {
        return Err(OtpError::Length);
    }
    // Eight base32 characters per five bytes: refuse absurd input before decoding.
    if trimmed.len() > MAX_SECRET_BYTES.div_ceil(5) * 8 {
        return Err(OtpError::Length);
    }
    if !trimmed
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || (b'2'..=b'7').contains(&b))
    {
        return Err(OtpError::Base32);
    }
    let bytes = Secret::Encoded(trimmed.to_ascii_uppercase())
        .to_bytes()
        .map_err(|_| OtpError::Base32)?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
        return Err(OtpError::Length);
    }
    Ok(bytes)
}

/// The code for `secret` at `unix` seconds.
pub fn code_at(secret: &[u8], unix: u64) -> String {
    totp(secret).generate(unix)
}

/// Checks `code` at `now_unix`, accepting the current step and [`SKEW_STEPS`] either
/// side. Returns the matched time step (`unix / 30`), or `None`. Anything but exactly
/// six ASCII digits is refused. All candidate steps are computed and compared without
/// an early exit, so the time taken does not say which step (if any) matched.
pub fn verify(secret: &[u8], code: &str, now_unix: u64) -> Option<u64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret);
    let current = now_unix / STEP_SECONDS;
    let mut matched = None;
    // Current step first, so that it wins the (one in a million) case where a code
    // is valid in two steps.
    let candidates = [
        Some(current),
        current.checked_sub(SKEW_STEPS),
        current.checked_add(SKEW_STEPS),
    ];
    for step in candidates.into_iter().flatten() {
        let expected = totp.generate(step * STEP_SECONDS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

fn totp(secret: &[u8]) -> TOTP {
    // Unchecked: registries hold secrets shorter than the 128 bits `TOTP::new` insists on.
    TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP_SECONDS, secret.to_vec())
}

/// Compares equal-length byte strings in time that depends only on their length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";
    /// RFC 6238 Appendix B, SHA-1 column.
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc_6238_vectors_hold() {
        let eight = TOTP::new_unchecked(Algorithm::SHA1, 8, 0, 30, RFC_SECRET.to_vec());
        for (t, expected) in RFC_VECTORS {
            assert_eq!(eight.generate(t), expected, "t={t}");
            assert_eq!(code_at(RFC_SECRET, t), expected[2..], "t={t}");
        }
    }

    #[test]
    fn current_and_adjacent_steps_are_accepted() {
        let now = 1_234_567_890;
        let step = now / 30;
        assert_eq!(
            verify(RFC_SECRET, &code_at(RFC_SECRET, now), now),
            Some(step)
        );
        assert_eq!(
            verify(RFC_SECRET, &code_at(RFC_SECRET, now - 30), now),
            Some(step - 1)
        );
        assert_eq!(
            verify(RFC_SECRET, &code_at(RFC_SECRET, now + 30), now),
            Some(step + 1)
        );
        assert_eq!(
            verify(RFC_SECRET, &code_at(RFC_SECRET, now - 60), now),
            None
        );
        assert_eq!(
            verify(RFC_SECRET, &code_at(RFC_SECRET, now + 60), now),
            None
        );
    }

    #[test]
    fn at_the_epoch_there_is_no_previous_step() {
        assert_eq!(verify(RFC_SECRET, &code_at(RFC_SECRET, 0), 5), Some(0));
    }

    #[test]
    fn wrong_or_malformed_codes_are_refused() {
        let now = 1_234_567_890;
        let right = code_at(RFC_SECRET, now);
        let wrong = format!(
            "{:06}",
            (right.parse::<u32>().expect("digits") + 1) % 1_000_000
        );
        assert_eq!(verify(RFC_SECRET, &wrong, now), None);
        for bad in ["", "12345", "1234567", "12345a", " 12345", "１２３４５６"] {
            assert_eq!(verify(RFC_SECRET, bad, now), None, "{bad:?}");
        }
        assert_eq!(verify(RFC_SECRET, &format!("{right} "), now), None);
    }

    #[test]
    fn base32_secrets_parse_in_either_case_with_or_without_padding() {
        // "12345678901234567890" in base32.
        let upper = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(parse_secret(upper).as_deref(), Ok(RFC_SECRET));
        assert_eq!(
            parse_secret(&upper.to_lowercase()).as_deref(),
            Ok(RFC_SECRET)
        );
        let sixteen = &b"1234567890123456"[..];
        assert_eq!(
            parse_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY======").as_deref(),
            Ok(sixteen)
        );
        assert_eq!(
            parse_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY").as_deref(),
            Ok(sixteen)
        );
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert_eq!(parse_secret(""), Err(OtpError::Length));
        assert_eq!(parse_secret("===="), Err(OtpError::Length));
        assert_eq!(parse_secret("MZXW1"), Err(OtpError::Base32));
        assert_eq!(
            parse_secret("MZXW6==="),
            Err(OtpError::Length),
            "3 bytes: too short"
        );
        assert_eq!(parse_secret("AA"), Err(OtpError::Length));
        assert_eq!(parse_secret("MZ W6"), Err(OtpError::Base32));
        assert_eq!(parse_secret(&"A".repeat(104)), Err(OtpError::Length));
        assert_eq!(parse_secret(&"A".repeat(103)).map(|s| s.len()), Ok(64));
    }
}

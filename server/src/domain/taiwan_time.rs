//! Times on the wire: RFC 3339 at Taiwan's offset, `+08:00`, whatever the server's zone.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Taiwan's offset from UTC; Taiwan has no daylight-saving time.
pub const TAIWAN: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// `t` as RFC 3339 at `+08:00`, e.g. `2021-07-13T10:00:00+08:00`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(TAIWAN).format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_at_taiwan_offset() {
        let t = OffsetDateTime::from_unix_timestamp(1_626_141_600).expect("valid");
        assert_eq!(rfc3339(t), "2021-07-13T10:00:00+08:00");
    }
}

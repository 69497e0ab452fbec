//! The answers the drill reads, as typed views that borrow from the body: each names only
//! the fields the drill looks at, so reading an answer builds no tree of values and
//! copies no string it does not keep.
//!
//! The fields read are the server's ids, codes, tokens and states, plain ASCII that JSON
//! never escapes, so they borrow as `&str`. A body that is not the answer expected (or
//! whose field has another type) reads as `None`, as a missing field did before.

use serde::Deserialize;

/// Parses `body` as `T`, or `None`.
pub fn read<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

/// `{"code"}`: a problem's code in an error answer, or a booking's code in a booking.
#[derive(Debug, Deserialize)]
pub struct Coded<'a> {
    #[serde(borrow)]
    pub code: Option<&'a str>,
}

/// `{"token"}`: a registration session or a login.
#[derive(Debug, Deserialize)]
pub struct Token<'a> {
    #[serde(borrow)]
    pub token: Option<&'a str>,
}

/// `{"booking", "code", "site"}`: a booking made, or changed.
#[derive(Debug, Deserialize)]
pub struct Booked<'a> {
    #[serde(borrow)]
    pub booking: Option<&'a str>,
    #[serde(borrow)]
    pub code: Option<&'a str>,
    #[serde(borrow)]
    pub site: Option<&'a str>,
}

/// `{"ticket", "shuffled", "position", "state"}`: a place in the waiting room, when
/// joining and when polling.
#[derive(Debug, Deserialize)]
pub struct Queued<'a> {
    #[serde(borrow)]
    pub ticket: Option<&'a str>,
    pub shuffled: Option<bool>,
    pub position: Option<u64>,
    #[serde(borrow)]
    pub state: Option<&'a str>,
}

/// `{"bookings": [{"booking", "status"}]}`: a person's own bookings.
#[derive(Debug, Deserialize)]
pub struct Bookings<'a> {
    #[serde(borrow, default)]
    pub bookings: Vec<Listed<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct Listed<'a> {
    #[serde(borrow)]
    pub booking: Option<&'a str>,
    #[serde(borrow)]
    pub status: Option<&'a str>,
}

/// `{"code", "status"}`: a check-in's answer (`status` is `attended` when it took).
#[derive(Debug, Deserialize)]
pub struct CheckedIn<'a> {
    #[serde(borrow)]
    pub code: Option<&'a str>,
    #[serde(borrow)]
    pub status: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_only_its_fields_and_ignores_the_rest() {
        let body = br#"{"booking":"B1","code":"K7","site":"S0001","slot":"x","extra":{"a":[1,2]}}"#;
        let b: Booked<'_> = read(body).expect("a booking");
        assert_eq!(
            (b.booking, b.code, b.site),
            (Some("B1"), Some("K7"), Some("S0001"))
        );
        let p: Coded<'_> =
            read(br#"{"type":"about:blank","code":"slot-full","status":409}"#).expect("a problem");
        assert_eq!(p.code, Some("slot-full"));
        assert!(read::<Token<'_>>(b"not json").is_none());
        let t: Token<'_> = read(b"{}").expect("no token is an answer too");
        assert_eq!(t.token, None);
    }

    #[test]
    fn a_queue_answer_reads_a_null_position_as_none() {
        let q: Queued<'_> =
            read(br#"{"ticket":"T","shuffled":false,"position":null,"state":"waiting"}"#)
                .expect("a queue answer");
        assert_eq!(q.position, None);
        assert_eq!(
            (q.ticket, q.shuffled, q.state),
            (Some("T"), Some(false), Some("waiting"))
        );
    }

    #[test]
    fn own_bookings_list_each_booking_with_its_status() {
        let l: Bookings<'_> = read(
            br#"{"bookings":[{"booking":"B1","status":"booked"},{"booking":"B2","status":"cancelled"}]}"#,
        )
        .expect("a list");
        assert_eq!(l.bookings.len(), 2);
        assert_eq!(
            (l.bookings[1].booking, l.bookings[1].status),
            (Some("B2"), Some("cancelled"))
        );
    }
}

//! Queue tickets: one per person and phase, the same every time it is asked for, bound
//! to the person (a ticket moved to another token is refused) and unforgeable.
//!
//! A ticket is `base64url(version ‖ lane ‖ n ‖ sealed id ‖ tag)`: `tag` is a truncated
//! HMAC-SHA256 over the phase, the person, the lane and `n`; the ID number is hidden by a
//! keystream derived from the tag (a synthetic-IV construction), so a ticket reveals
//! nothing about its person, two people's tickets look unrelated, and the same person
//! always gets the same ticket without the store keeping it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::IdNumber;
use crate::store::rooms::Lane;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const TAG: usize = 16;
const LEN: usize = 1 + 1 + 8 + 8 + TAG;

/// The keys of tickets, derived from the token secret every instance shares.
#[derive(Clone)]
pub struct TicketKey {
    tag: HmacSha256,
    seal: HmacSha256,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

fn derived(secret: &[u8], label: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(label);
    HmacSha256::new_from_slice(&m.finalize().into_bytes()).expect("HMAC takes keys of any length")
}

/// Where a ticket places its holder: in a room's lane, or (`None`) nowhere, for a phase
/// that had no room when it was issued.
fn lane_parts(lane: Option<Lane>) -> (u8, u64) {
    match lane {
        Some(Lane::Pre) => (0, 0),
        Some(Lane::Late(n)) => (1, n),
        None => (2, 0),
    }
}

impl TicketKey {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            tag: derived(secret, b"slotd-queue-ticket-tag-v1"),
            seal: derived(secret, b"slotd-queue-ticket-seal-v1"),
        }
    }

    fn tag_mac(&self, phase: &str, person: IdNumber, lane: Option<Lane>) -> HmacSha256 {
        let (kind, n) = lane_parts(lane);
        let mut m = self.tag.clone();
        m.update(&(phase.len() as u32).to_be_bytes());
        m.update(phase.as_bytes());
        m.update(&person.packed().to_be_bytes());
        m.update(&[kind]);
        m.update(&n.to_be_bytes());
        m
    }

    fn tag(&self, phase: &str, person: IdNumber, lane: Option<Lane>) -> [u8; TAG] {
        let mut out = [0u8; TAG];
        out.copy_from_slice(&self.tag_mac(phase, person, lane).finalize().into_bytes()[..TAG]);
        out
    }

    fn keystream(&self, tag: &[u8; TAG]) -> u64 {
        let mut m = self.seal.clone();
        m.update(tag);
        let mut first = [0u8; 8];
        first.copy_from_slice(&m.finalize().into_bytes()[..8]);
        u64::from_be_bytes(first)
    }

    /// The ticket of `person` in `phase`'s room, in `lane` (`None`: the phase has no room;
    /// such a ticket admits only while it has none).
    pub fn issue(&self, phase: &str, person: IdNumber, lane: Option<Lane>) -> String {
        let (kind, n) = lane_parts(lane);
        let tag = self.tag(phase, person, lane);
        let mut raw = [0u8; LEN];
        raw[0] = VERSION;
        raw[1] = kind;
        raw[2..10].copy_from_slice(&n.to_be_bytes());
        raw[10..18].copy_from_slice(&(person.packed() ^ self.keystream(&tag)).to_be_bytes());
        raw[18..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The person and lane of a ticket of `phase`'s room; `None` for anything else
    /// (malformed, forged, altered, of another phase).
    pub fn open(&self, phase: &str, ticket: &str) -> Option<(IdNumber, Option<Lane>)> {
        if ticket.len() > 64 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(ticket.trim()).ok()?;
        if raw.len() != LEN || raw[0] != VERSION {
            return None;
        }
        let n = u64::from_be_bytes(raw[2..10].try_into().ok()?);
        let lane = match (raw[1], n) {
            (0, 0) => Some(Lane::Pre),
            (1, n) if n > 0 => Some(Lane::Late(n)),
            (2, 0) => None,
            _ => return None,
        };
        let tag: [u8; TAG] = raw[18..].try_into().ok()?;
        let sealed = u64::from_be_bytes(raw[10..18].try_into().ok()?);
        let person = IdNumber::from_packed(sealed ^ self.keystream(&tag))?;
        // In constant time: the check must not tell how much of a forged tag was right.
        self.tag_mac(phase, person, lane)
            .verify_truncated_left(&tag)
            .is_ok()
            .then_some((person, lane))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::synthetic_id;

    #[test]
    fn a_ticket_is_stable_opens_to_its_person_and_lane_and_nothing_else() {
        let key = TicketKey::new(b"secret");
        let a = synthetic_id(1);
        let t = key.issue("02", a, Some(Lane::Pre));
        assert_eq!(
            t,
            key.issue("02", a, Some(Lane::Pre)),
            "the same ticket every time"
        );
        assert_eq!(key.open("02", &t), Some((a, Some(Lane::Pre))));
        let open = key.issue("02", a, None);
        assert_eq!(key.open("02", &open), Some((a, None)));
        assert_ne!(open, t, "a ticket of no room is not a pre-queue one");
        let late = key.issue("02", a, Some(Lane::Late(7)));
        assert_eq!(key.open("02", &late), Some((a, Some(Lane::Late(7)))));

        assert_eq!(key.open("03", &t), None, "another phase");
        assert_eq!(
            TicketKey::new(b"other").open("02", &t),
            None,
            "another secret"
        );
        assert_eq!(key.open("02", "junk"), None);
        assert_eq!(key.open("02", ""), None);
        // Every single-byte change is refused (the lane, the number, the id, the tag).
        let raw = URL_SAFE_NO_PAD.decode(&t).expect("base64");
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                key.open("02", &URL_SAFE_NO_PAD.encode(&bad)),
                None,
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_key_prints_nothing_of_its_secret() {
        let key = TicketKey::new(b"do-not-print-me");
        assert_eq!(format!("{key:?}"), "TicketKey(..)");
    }

    #[test]
    fn tickets_hide_their_person() {
        let key = TicketKey::new(b"secret");
        let (a, b) = (synthetic_id(1), synthetic_id(2));
        let (ta, tb) = (
            key.issue("02", a, Some(Lane::Pre)),
            key.issue("02", b, Some(Lane::Pre)),
        );
        let (ra, rb) = (
            URL_SAFE_NO_PAD.decode(&ta).expect("a"),
            URL_SAFE_NO_PAD.decode(&tb).expect("b"),
        );
        // Neighbouring ids differ in one low digit; their sealed forms differ widely.
        let sealed = |r: &[u8]| u64::from_be_bytes(r[10..18].try_into().expect("8 bytes"));
        assert!((sealed(&ra) ^ sealed(&rb)).count_ones() > 8);
        assert!(!ta.contains(&a.to_string()));
    }
}

//! Availability pages as a person reads them: only the seats they could take, named by
//! the slot's index in the drill's own calendar, so that reading a page allocates no
//! string per slot and choosing among its seats compares integers.
//!
//! A page is parsed once from its body, borrowing its strings (only the fields a person
//! reads: each slot's id and seats left, each county's name and seats left), and each
//! parsed page is kept by its strong `ETag` for a moment: the server renders a page once
//! per snapshot (about 250 ms), so the many people who read the same page of the same
//! snapshot read the same bytes, and the drill parses them once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::model::Scenario;

/// A seat a person could take: the slot (its index in the phase's calendar), its site's
/// popularity, and the slot's rank in time at its site (its place in the site's list).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seat {
    pub slot: u32,
    pub popularity: f64,
    pub rank: u16,
}

/// The seats of one page that had seats left, in the page's order (sites, then slots).
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    pub open: Vec<Seat>,
}

/// The index page (no place asked): the seats left per county.
#[derive(Debug, Default, PartialEq)]
pub struct Index {
    /// `(county, seats left)`, in the page's order.
    pub counties: Vec<(String, u64)>,
}

/// A parsed page, from the cache or fresh.
#[derive(Debug, Clone)]
pub enum Parsed {
    Page(Arc<Page>),
    Index(Arc<Index>),
}

/// The phase's slots as the drill made them: each id's index, and each slot's site
/// popularity. Pages name slots by id; the journey works with indices.
#[derive(Debug)]
pub struct Slots {
    index: HashMap<String, u32>,
    ids: Vec<String>,
    popularity: Vec<f64>,
    /// Recently parsed pages by strong `ETag`, and the parses saved by them.
    cache: Mutex<Cache>,
}

/// Parsed pages by strong `ETag`, each with the URL it answered: a tag is a checksum
/// and length of the page, so a page is reused only for the same URL and tag.
#[derive(Debug, Default)]
struct Cache {
    pages: HashMap<Box<str>, (Box<str>, Parsed)>,
}

/// Pages kept at most: a snapshot's worth of districts and counties, then the cache
/// starts over (an `ETag` names one snapshot's page, so old entries only go stale).
const MAX_CACHED: usize = 4096;

impl Slots {
    pub fn new(scenario: &Scenario) -> Self {
        let popularity_of: HashMap<&str, f64> = scenario
            .sites
            .iter()
            .map(|s| (s.site.id.as_str(), s.popularity))
            .collect();
        let slots = &scenario.calendar.phases[0].slots;
        let ids: Vec<String> = slots.iter().map(|s| s.id.to_string()).collect();
        Self {
            index: ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i as u32))
                .collect(),
            // A site the scenario does not know reads as little wanted, as before.
            popularity: slots
                .iter()
                .map(|s| popularity_of.get(s.site.as_str()).copied().unwrap_or(0.1))
                .collect(),
            ids,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The id of slot `slot`.
    pub fn id(&self, slot: u32) -> &str {
        &self.ids[slot as usize]
    }

    /// The index of the slot with id `id`, if it is one of the phase's.
    pub fn find(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// Reads a place's page (`?county=`, `&district=`) that `url` answered with `body`
    /// and `etag`: an empty page when the body is not one, as a person sees no seats.
    pub fn page(&self, url: &str, etag: Option<&str>, body: &[u8]) -> Arc<Page> {
        if let Some(Parsed::Page(p)) = self.cached(url, etag) {
            return p;
        }
        let page = Arc::new(self.parse_page(body).unwrap_or_default());
        self.keep(url, etag, Parsed::Page(page.clone()));
        page
    }

    /// Reads the index page that `url` answered: no county when the body is not one.
    pub fn index(&self, url: &str, etag: Option<&str>, body: &[u8]) -> Arc<Index> {
        if let Some(Parsed::Index(p)) = self.cached(url, etag) {
            return p;
        }
        let index = Arc::new(parse_index(body).unwrap_or_default());
        self.keep(url, etag, Parsed::Index(index.clone()));
        index
    }

    // The lock is held for one map lookup or insert, never across an await.
    fn cached(&self, url: &str, etag: Option<&str>) -> Option<Parsed> {
        let c = self.cache.lock().ok()?;
        let (for_url, parsed) = c.pages.get(etag?)?;
        (**for_url == *place(url)).then(|| parsed.clone())
    }

    fn keep(&self, url: &str, etag: Option<&str>, parsed: Parsed) {
        let Some(etag) = etag else {
            return;
        };
        if let Ok(mut c) = self.cache.lock() {
            if c.pages.len() >= MAX_CACHED {
                c.pages.clear();
            }
            c.pages.insert(etag.into(), (place(url).into(), parsed));
        }
    }

    /// The seats of a place's page: every slot with seats left, as the page lists them.
    /// A slot the drill's calendar does not have cannot be booked by id here; the pages
    /// of the drill's phase list only its own slots.
    fn parse_page(&self, body: &[u8]) -> Option<Page> {
        #[derive(Deserialize)]
        struct RawSlot<'a> {
            #[serde(borrow)]
            slot: Option<Cow<'a, str>>,
            remaining: Option<u64>,
        }
        #[derive(Deserialize)]
        struct RawSite<'a> {
            #[serde(borrow, default)]
            slots: Vec<RawSlot<'a>>,
        }
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(borrow, default)]
            sites: Vec<RawSite<'a>>,
        }
        let raw: Raw<'_> = serde_json::from_slice(body).ok()?;
        let mut open = Vec::new();
        for site in &raw.sites {
            for (rank, s) in site.slots.iter().enumerate() {
                let Some(slot) = s.slot.as_deref().and_then(|id| self.find(id)) else {
                    continue;
                };
                if s.remaining.unwrap_or(0) > 0 {
                    open.push(Seat {
                        slot,
                        popularity: self.popularity[slot as usize],
                        rank: rank.min(usize::from(u16::MAX)) as u16,
                    });
                }
            }
        }
        Some(Page { open })
    }
}

/// The path and query of `url`: every instance renders the same page for it, with the
/// same tag.
fn place(url: &str) -> &str {
    url.find("/v1/").map_or(url, |i| &url[i..])
}

/// The index page's counties with their seats left; entries without both are skipped.
fn parse_index(body: &[u8]) -> Option<Index> {
    #[derive(Deserialize)]
    struct RawCounty<'a> {
        #[serde(borrow)]
        county: Option<Cow<'a, str>>,
        remaining: Option<u64>,
    }
    #[derive(Deserialize)]
    struct Raw<'a> {
        #[serde(borrow, default)]
        counties: Vec<RawCounty<'a>>,
    }
    let raw: Raw<'_> = serde_json::from_slice(body).ok()?;
    Some(Index {
        counties: raw
            .counties
            .into_iter()
            .filter_map(|c| Some((c.county?.into_owned(), c.remaining?)))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Params;
    use slotd::domain::PhaseId;

    fn slots() -> (Scenario, Slots) {
        let s = Scenario::build(
            Params {
                scale: 0.001,
                ..Params::default()
            },
            PhaseId::parse("T1").expect("id"),
            time::OffsetDateTime::now_utc(),
        );
        let slots = Slots::new(&s);
        (s, slots)
    }

    /// A page as the server renders it: every field, most of them not read here.
    fn page_body(site: &str, slots: &[(&str, u32)]) -> String {
        let slots: Vec<String> = slots
            .iter()
            .map(|(id, left)| {
                format!(
                    r#"{{"slot":"{id}","date":"2021-07-16","period":"08:00-09:00","vaccine":"AZ","capacity":9,"remaining":{left}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"phase":"T1","as_of":"2021-07-16T02:00:00Z","sites":[{{"site":"{site}","name":"臺大醫院","county":"臺北市","district":"中正區","address":"x","slots":[{}]}}]}}"#,
            slots.join(",")
        )
    }

    #[test]
    fn a_page_keeps_the_slots_with_seats_by_index_rank_and_popularity() {
        let (s, slots) = slots();
        let cal = &s.calendar.phases[0].slots;
        let (a, b, c) = (cal[0].id.as_str(), cal[1].id.as_str(), cal[2].id.as_str());
        let body = page_body(cal[0].site.as_str(), &[(a, 3), (b, 0), ("nope", 5), (c, 1)]);
        let page = slots.page("http://x/v1/p?county=a", None, body.as_bytes());
        let popularity = s
            .sites
            .iter()
            .find(|x| x.site.id == cal[0].site)
            .expect("site");
        assert_eq!(
            page.open,
            vec![
                Seat {
                    slot: 0,
                    popularity: popularity.popularity,
                    rank: 0
                },
                Seat {
                    slot: 2,
                    popularity: s
                        .sites
                        .iter()
                        .find(|x| x.site.id == cal[2].site)
                        .expect("site")
                        .popularity,
                    rank: 3
                },
            ],
            "full and unknown slots are left out; ranks count every slot listed"
        );
        assert_eq!(slots.id(2), c);
        assert_eq!(slots.find(b), Some(1));
    }

    #[test]
    fn a_body_that_is_no_page_reads_as_no_seats() {
        let (_, slots) = slots();
        let problem = br#"{"type":"about:blank","code":"unknown-phase","status":404}"#;
        assert!(slots.page("u", None, problem).open.is_empty());
        assert!(slots.page("u", None, b"<html>").open.is_empty());
        assert!(slots.index("u", None, b"[]").counties.is_empty());
    }

    #[test]
    fn the_index_lists_counties_with_their_seats() {
        let (_, slots) = slots();
        let body = r#"{"phase":"T1","as_of":"x","sites":[],"counties":[
            {"county":"臺北市","sites":2,"remaining":7,"districts":[]},
            {"county":"新北市","sites":1,"remaining":0,"districts":[]},
            {"sites":1,"remaining":4}]}"#;
        let index = slots.index("u", None, body.as_bytes());
        assert_eq!(
            index.counties,
            vec![("臺北市".to_string(), 7), ("新北市".to_string(), 0)]
        );
    }

    #[test]
    fn a_tagged_page_is_parsed_once_per_place_whichever_instance_answered() {
        let (s, slots) = slots();
        let cal = &s.calendar.phases[0].slots;
        let one = page_body(cal[0].site.as_str(), &[(cal[0].id.as_str(), 3)]);
        let first = slots.page(
            "http://127.0.0.1:1/v1/phases/T1/availability?county=a",
            Some("\"1-2-gz\""),
            one.as_bytes(),
        );
        // The same tag for the same place: the parsed page is reused, body unread.
        let again = slots.page(
            "http://127.0.0.1:2/v1/phases/T1/availability?county=a",
            Some("\"1-2-gz\""),
            b"not read",
        );
        assert!(Arc::ptr_eq(&first, &again));
        // The same tag for another place is not taken for it.
        let other = slots.page(
            "http://127.0.0.1:1/v1/phases/T1/availability?county=b",
            Some("\"1-2-gz\""),
            b"{}",
        );
        assert!(other.open.is_empty());
        // Without a tag, every body is read.
        let untagged = slots.page("http://127.0.0.1:1/v1/x", None, one.as_bytes());
        assert!(!Arc::ptr_eq(&first, &untagged));
        assert_eq!(*first, *untagged);
    }
}

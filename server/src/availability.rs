//! `Availability`: seats per slot as a snapshot, rebuilt every ~250 ms by one task.
//!
//! A request never walks the counters: it reads the current snapshot (one atomic load)
//! and gets the rendered JSON for its filter, which the snapshot renders once and
//! keeps until the next rebuild. At an opening, when a million people poll the same
//! few pages, each page is rendered a few times a second, not a million times.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use dashmap::DashMap;
use serde::Serialize;
use time::OffsetDateTime;

use crate::catalog::Catalog;
use crate::inventory::{Inventory, SlotIndex};
use crate::metrics as m;

mod page;

pub use page::{Encoding, Page};

/// Rendered pages kept per snapshot at most; beyond, pages are rendered uncached.
const MAX_CACHED_PAGES: usize = 4096;

/// A filter on one phase's availability.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Query {
    pub county: Option<String>,
    pub district: Option<String>,
    pub date: Option<String>,
}

/// One phase's slots grouped by site, sites ordered by county, district and id.
#[derive(Debug)]
struct PhaseLayout {
    sites: Vec<(usize, Vec<SlotIndex>)>,
}

/// Counters copied at one instant, with the catalog they index.
#[derive(Debug)]
pub struct Snapshot {
    pub as_of: OffsetDateTime,
    pub catalog: Arc<Catalog>,
    remaining: Vec<u32>,
    layouts: Arc<Vec<PhaseLayout>>,
    /// `GET /v1/geography`, rendered once per catalog.
    geography: Arc<Page>,
    pages: DashMap<(usize, Query), Arc<Page>>,
}

impl Snapshot {
    /// Seats free in slot `s` at `as_of`.
    pub fn remaining(&self, s: SlotIndex) -> u32 {
        self.remaining.get(s as usize).copied().unwrap_or(0)
    }

    /// Free seats of a whole phase.
    pub fn phase_remaining(&self, phase: usize) -> u64 {
        self.catalog.phases[phase]
            .slots
            .iter()
            .map(|&s| u64::from(self.remaining(s)))
            .sum()
    }

    /// Counties and districts with the number of sites per phase in each (one page per
    /// catalog).
    pub fn geography(&self) -> Arc<Page> {
        self.geography.clone()
    }

    /// The page for `phase` and `query`, rendered once per snapshot. Callers key it only
    /// on valid names (see the availability handler), so junk queries cannot crowd real
    /// pages out of the cache.
    pub fn page(&self, phase: usize, query: &Query) -> Arc<Page> {
        let key = (phase, query.clone());
        if let Some(p) = self.pages.get(&key) {
            return p.clone();
        }
        let page = Arc::new(Page::new(self.render(phase, query)));
        // A date outside the phase's vaccination days is a valid date with no slots: it is
        // answered but not kept, so that many such dates cannot crowd real pages out.
        let dates = self.catalog.phases[phase].dates;
        let on_a_day = query.date.as_deref().is_none_or(|d| {
            crate::domain::parse_date(d)
                .is_some_and(|d| dates.is_some_and(|(first, last)| first <= d && d <= last))
        });
        if on_a_day && self.pages.len() < MAX_CACHED_PAGES {
            self.pages.insert(key, page.clone());
        }
        page
    }

    fn render(&self, phase: usize, q: &Query) -> Bytes {
        if q.county.is_none() && q.district.is_none() {
            return self.render_index(phase, q.date.as_deref());
        }
        #[derive(Serialize)]
        struct SlotView<'a> {
            slot: &'a str,
            date: &'a str,
            period: &'a str,
            vaccine: &'a str,
            capacity: u32,
            remaining: u32,
        }
        #[derive(Serialize)]
        struct SiteView<'a> {
            site: &'a str,
            name: &'a str,
            county: &'a str,
            district: &'a str,
            address: &'a str,
            slots: Vec<SlotView<'a>>,
        }
        #[derive(Serialize)]
        struct Page<'a> {
            phase: &'a str,
            as_of: String,
            sites: Vec<SiteView<'a>>,
        }
        let c = &self.catalog;
        let mut sites = Vec::new();
        for (site, slots) in &self.layouts[phase].sites {
            let s = c.site(*site);
            if q.county.as_deref().is_some_and(|x| x != s.county)
                || q.district.as_deref().is_some_and(|x| x != s.district)
            {
                continue;
            }
            let slots: Vec<_> = slots
                .iter()
                .map(|&i| (i, &c.slot(i).slot))
                .filter(|(_, sl)| q.date.as_deref().is_none_or(|d| d == sl.date))
                .map(|(i, sl)| SlotView {
                    slot: sl.id.as_str(),
                    date: &sl.date,
                    period: &sl.period,
                    vaccine: &sl.vaccine,
                    capacity: sl.capacity,
                    remaining: self.remaining(i),
                })
                .collect();
            if !slots.is_empty() {
                sites.push(SiteView {
                    site: s.id.as_str(),
                    name: &s.name,
                    county: &s.county,
                    district: &s.district,
                    address: &s.address,
                    slots,
                });
            }
        }
        let page = Page {
            phase: c.phases[phase].phase.id.as_str(),
            as_of: crate::domain::rfc3339(self.as_of),
            sites,
        };
        Bytes::from(serde_json::to_vec(&page).unwrap_or_default())
    }
}

impl Snapshot {
    /// The page without a place: no sites, only the seats left per county and district
    /// (on `date` if given), so that one page stays small however large the phase. A
    /// frontend or a person looking anywhere picks a county from it.
    fn render_index(&self, phase: usize, date: Option<&str>) -> Bytes {
        #[derive(Serialize, Default)]
        struct DistrictView<'a> {
            district: &'a str,
            sites: usize,
            remaining: u64,
        }
        #[derive(Serialize, Default)]
        struct CountyView<'a> {
            county: &'a str,
            sites: usize,
            remaining: u64,
            districts: Vec<DistrictView<'a>>,
        }
        #[derive(Serialize)]
        struct Index<'a> {
            phase: &'a str,
            as_of: String,
            /// Always empty here: sites come with `?county=`.
            sites: [(); 0],
            counties: Vec<CountyView<'a>>,
        }
        let c = &self.catalog;
        // The layout is ordered by county, then district: runs fold in one pass.
        let mut counties: Vec<CountyView<'_>> = Vec::new();
        for (site, slots) in &self.layouts[phase].sites {
            let s = c.site(*site);
            let mut dated = slots
                .iter()
                .filter(|&&i| date.is_none_or(|d| d == c.slot(i).slot.date))
                .peekable();
            if dated.peek().is_none() {
                continue; // no slot on that date here
            }
            let remaining: u64 = dated.map(|&i| u64::from(self.remaining(i))).sum();
            if counties.last().is_none_or(|x| x.county != s.county) {
                counties.push(CountyView {
                    county: &s.county,
                    ..CountyView::default()
                });
            }
            let county = counties.last_mut().expect("pushed above");
            county.sites += 1;
            county.remaining += remaining;
            if county
                .districts
                .last()
                .is_none_or(|x| x.district != s.district)
            {
                county.districts.push(DistrictView {
                    district: &s.district,
                    ..DistrictView::default()
                });
            }
            let district = county.districts.last_mut().expect("pushed above");
            district.sites += 1;
            district.remaining += remaining;
        }
        let index = Index {
            phase: c.phases[phase].phase.id.as_str(),
            as_of: crate::domain::rfc3339(self.as_of),
            sites: [],
            counties,
        };
        Bytes::from(serde_json::to_vec(&index).unwrap_or_default())
    }
}

/// The current snapshot, swapped atomically.
#[derive(Debug)]
pub struct Availability {
    current: ArcSwap<Snapshot>,
}

fn layouts(catalog: &Catalog) -> Vec<PhaseLayout> {
    catalog
        .phases
        .iter()
        .map(|p| {
            let mut by_site: BTreeMap<(&str, &str, &str), (usize, Vec<SlotIndex>)> =
                BTreeMap::new();
            for &s in &p.slots {
                let site = catalog.slot(s).site;
                let st = catalog.site(site);
                by_site
                    .entry((&st.county, &st.district, st.id.as_str()))
                    .or_insert_with(|| (site, Vec::new()))
                    .1
                    .push(s);
            }
            PhaseLayout {
                sites: by_site.into_values().collect(),
            }
        })
        .collect()
}

/// Builds a snapshot of `inventory` for `catalog`, reusing `previous`'s layout when the
/// catalog has not changed.
pub fn build(
    catalog: Arc<Catalog>,
    inventory: &Inventory,
    previous: Option<&Snapshot>,
) -> Snapshot {
    let (layouts, geography) = match previous {
        Some(p) if Arc::ptr_eq(&p.catalog, &catalog) => (p.layouts.clone(), p.geography.clone()),
        _ => {
            let layouts = layouts(&catalog);
            let geography = Arc::new(Page::new(geography(&catalog, &layouts)));
            (Arc::new(layouts), geography)
        }
    };
    let remaining = (0..catalog.slots.len() as SlotIndex)
        .map(|s| inventory.remaining(s))
        .collect();
    Snapshot {
        as_of: OffsetDateTime::now_utc(),
        catalog,
        remaining,
        layouts,
        geography,
        pages: DashMap::new(),
    }
}

/// Every county and district of the reference table, each district with the number of
/// sites that have slots in each phase (phases without any there are left out).
fn geography(catalog: &Catalog, layouts: &[PhaseLayout]) -> Bytes {
    #[derive(Serialize)]
    struct DistrictView<'a> {
        name: &'a str,
        name_en: &'a str,
        zipcode: &'a str,
        sites: BTreeMap<&'a str, usize>,
    }
    #[derive(Serialize)]
    struct CountyView<'a> {
        name: &'a str,
        name_en: &'a str,
        districts: Vec<DistrictView<'a>>,
    }
    let mut sites: BTreeMap<(&str, &str), BTreeMap<&str, usize>> = BTreeMap::new();
    for (phase, layout) in catalog.phases.iter().zip(layouts) {
        for (site, _) in &layout.sites {
            let st = catalog.site(*site);
            *sites
                .entry((st.county.as_str(), st.district.as_str()))
                .or_default()
                .entry(phase.phase.id.as_str())
                .or_default() += 1;
        }
    }
    let geo = crate::domain::Geography::get();
    let counties: Vec<CountyView<'_>> = geo
        .counties
        .iter()
        .map(|c| CountyView {
            name: c.name,
            name_en: c.name_en,
            districts: geo
                .districts_of(c.name)
                .map(|d| DistrictView {
                    name: d.name,
                    name_en: d.name_en,
                    zipcode: d.zipcode,
                    sites: sites.remove(&(d.county, d.name)).unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let phases: Vec<&str> = catalog.phases.iter().map(|p| p.phase.id.as_str()).collect();
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({"phases": phases, "counties": counties}))
            .unwrap_or_default(),
    )
}

impl Availability {
    /// Starts with a snapshot of the given state.
    pub fn new(catalog: Arc<Catalog>, inventory: &Inventory) -> Self {
        Self {
            current: ArcSwap::from_pointee(build(catalog, inventory, None)),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot with a fresh one.
    pub fn rebuild(&self, catalog: Arc<Catalog>, inventory: &Inventory) {
        let started = Instant::now();
        let next = build(catalog, inventory, Some(&self.current.load()));
        for (i, p) in next.catalog.phases.iter().enumerate() {
            metrics::gauge!(m::SEATS_REMAINING, "phase" => p.phase.id.to_string())
                .set(next.phase_remaining(i) as f64);
        }
        self.current.store(Arc::new(next));
        metrics::histogram!(m::SNAPSHOT_BUILD_SECONDS).record(started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;

    #[test]
    fn pages_of_dates_outside_the_phase_are_answered_but_not_kept() {
        let (catalog, _) = Catalog::default()
            .merge(&contract::fixture(OffsetDateTime::now_utc()))
            .expect("catalog");
        let catalog = Arc::new(catalog);
        let inventory = Inventory::new();
        let snap = build(catalog, &inventory, None);
        let on = |date: &str| Query {
            date: Some(date.into()),
            ..Query::default()
        };
        let far = snap.page(0, &on("2031-01-01"));
        assert!(!far.body(Encoding::Identity).is_empty());
        assert_eq!(snap.pages.len(), 0, "a day without slots is not cached");
        snap.page(0, &on("2021-07-16"));
        snap.page(0, &Query::default());
        assert_eq!(snap.pages.len(), 2, "the phase's day and the index are");
    }
}

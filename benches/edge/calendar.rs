//! The slots of a calendar file (as `scripts/bench-http` writes it), each with its phase
//! and site: what the edge needs to tell `404` from a booking and to write the `201` body.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use slotd::domain::Calendar;

/// The site fields a booking body carries.
#[derive(Debug)]
pub(super) struct Site {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) county: String,
    pub(super) district: String,
}

/// One slot of the calendar.
#[derive(Debug)]
pub struct SlotEntry {
    /// Its place in calendar order, `0..SlotTable::len()`: stores index their own
    /// per-slot state by it, so a booking costs one hash lookup, as in the ceiling.
    pub index: usize,
    pub id: String,
    pub phase: String,
    pub capacity: u32,
    pub(super) site: Arc<Site>,
}

/// Every slot of every phase, by id.
#[derive(Debug)]
pub struct SlotTable {
    slots: Vec<SlotEntry>,
    by_id: HashMap<String, usize>,
}

impl SlotTable {
    /// Reads and validates calendar JSON (the format of `slotd serve --calendar`).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let calendar: Calendar = serde_json::from_slice(&raw)
            .with_context(|| format!("parsing {} as calendar JSON", path.display()))?;
        calendar
            .validate()
            .with_context(|| format!("{} is not a valid calendar", path.display()))?;
        Ok(Self::new(&calendar))
    }

    /// The slots of a valid calendar (ids unique, every slot's site known).
    pub fn new(calendar: &Calendar) -> Self {
        let sites: HashMap<&str, Arc<Site>> = calendar
            .sites
            .iter()
            .map(|s| {
                let site = Site {
                    id: s.id.as_str().to_owned(),
                    name: s.name.clone(),
                    county: s.county.clone(),
                    district: s.district.clone(),
                };
                (s.id.as_str(), Arc::new(site))
            })
            .collect();
        let mut slots = Vec::new();
        for phase in &calendar.phases {
            for s in &phase.slots {
                // `validate` rejects a slot of an unknown site; one that slipped through
                // gets an empty site rather than a panic.
                let site = sites.get(s.site.as_str()).cloned().unwrap_or_else(|| {
                    Arc::new(Site {
                        id: s.site.as_str().to_owned(),
                        name: String::new(),
                        county: String::new(),
                        district: String::new(),
                    })
                });
                slots.push(SlotEntry {
                    index: slots.len(),
                    id: s.id.as_str().to_owned(),
                    phase: phase.id.as_str().to_owned(),
                    capacity: s.capacity,
                    site,
                });
            }
        }
        let by_id = slots.iter().map(|s| (s.id.clone(), s.index)).collect();
        Self { slots, by_id }
    }

    /// The slot with this id, in any phase.
    pub fn get(&self, id: &str) -> Option<&SlotEntry> {
        self.by_id.get(id).map(|&i| &self.slots[i])
    }

    /// All slots, in calendar order (`index` order).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &SlotEntry> {
        self.slots.iter()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

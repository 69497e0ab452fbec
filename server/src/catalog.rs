//! `Catalog`: the loaded calendar compiled for lookups, with dense slot indices.
//!
//! A catalog is immutable; loading a calendar builds a new one with [`Catalog::merge`]
//! and swaps it in. Merging keeps every existing slot at its index, so the
//! [`Inventory`](crate::inventory::Inventory) counters stay valid across loads.

use std::collections::HashMap;
use std::sync::Arc;

use time::{Date, OffsetDateTime};

use crate::domain::{
    Calendar, CalendarError, Phase, PhaseId, Site, SiteId, Slot, SlotId, parse_date,
};
use crate::inventory::{Inventory, SlotIndex};

/// A slot with its indices resolved.
#[derive(Debug, Clone)]
pub struct SlotInfo {
    pub slot: Slot,
    pub date: Date,
    pub phase: usize,
    pub site: usize,
}

/// A phase with its slot indices.
#[derive(Debug, Clone)]
pub struct PhaseInfo {
    pub phase: Phase,
    pub slots: Vec<SlotIndex>,
    /// First and last vaccination date, if the phase has slots.
    pub dates: Option<(Date, Date)>,
}

/// Where a phase's booking window stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// Opens in this many seconds (rounded up).
    NotOpen {
        opens_in_secs: u64,
    },
    Open,
    Closed,
}

impl PhaseInfo {
    /// The window's state at `now`.
    pub fn window(&self, now: OffsetDateTime) -> WindowState {
        if now < self.phase.opens_at {
            let secs = (self.phase.opens_at - now).whole_milliseconds().max(0) as u64;
            WindowState::NotOpen {
                opens_in_secs: secs.div_ceil(1000).max(1),
            }
        } else if now >= self.phase.closes_at {
            WindowState::Closed
        } else {
            WindowState::Open
        }
    }
}

/// The compiled calendar.
#[derive(Debug, Default)]
pub struct Catalog {
    pub sites: Vec<Site>,
    pub phases: Vec<PhaseInfo>,
    pub slots: Vec<SlotInfo>,
    site_index: HashMap<SiteId, usize, Fast>,
    phase_index: HashMap<PhaseId, usize, Fast>,
    slot_index: HashMap<SlotId, SlotIndex, Fast>,
}

/// The indexes' hasher: every booking looks its slot up, more than once.
type Fast = foldhash::fast::RandomState;

/// What a merge changes in the inventory: `(slot, new capacity)` for every slot that
/// is new or whose capacity differs.
pub type CapacityChanges = Vec<(SlotIndex, u32)>;

impl Catalog {
    /// The index of a phase.
    pub fn phase_index(&self, id: &str) -> Option<usize> {
        self.phase_index.get(id).copied()
    }

    /// The index of a site.
    pub fn site_index(&self, id: &str) -> Option<usize> {
        self.site_index.get(id).copied()
    }

    /// A phase by id.
    pub fn phase(&self, id: &str) -> Option<&PhaseInfo> {
        self.phase_index(id).map(|i| &self.phases[i])
    }

    /// The index of a slot.
    pub fn slot_index(&self, id: &str) -> Option<SlotIndex> {
        self.slot_index.get(id).copied()
    }

    /// A slot by index.
    pub fn slot(&self, i: SlotIndex) -> &SlotInfo {
        &self.slots[i as usize]
    }

    /// A site by index.
    pub fn site(&self, i: usize) -> &Site {
        &self.sites[i]
    }

    /// The calendar this catalog holds, as a file would state it.
    pub fn to_calendar(&self) -> Calendar {
        Calendar {
            sites: self.sites.clone(),
            phases: self
                .phases
                .iter()
                .map(|p| Phase {
                    slots: p.slots.iter().map(|&s| self.slot(s).slot.clone()).collect(),
                    ..p.phase.clone()
                })
                .collect(),
        }
    }

    /// A new catalog: this one with `calendar` laid over it. Sites, phases and slots
    /// are matched by id; new ones are added (new slots at the end of the index), known
    /// ones take the new fields. Nothing is removed. A slot may not move to another phase.
    pub fn merge(&self, calendar: &Calendar) -> Result<(Catalog, CapacityChanges), CalendarError> {
        calendar.validate()?;
        let mut next = Catalog {
            sites: self.sites.clone(),
            phases: self.phases.clone(),
            slots: self.slots.clone(),
            site_index: self.site_index.clone(),
            phase_index: self.phase_index.clone(),
            slot_index: self.slot_index.clone(),
        };
        for site in &calendar.sites {
            match next.site_index.get(&site.id) {
                Some(&i) => next.sites[i] = site.clone(),
                None => {
                    next.site_index.insert(site.id.clone(), next.sites.len());
                    next.sites.push(site.clone());
                }
            }
        }
        let mut changes = Vec::new();
        for phase in &calendar.phases {
            let pi = match next.phase_index.get(&phase.id) {
                Some(&i) => i,
                None => {
                    next.phase_index.insert(phase.id.clone(), next.phases.len());
                    next.phases.push(PhaseInfo {
                        phase: phase.clone(),
                        slots: Vec::new(),
                        dates: None,
                    });
                    next.phases.len() - 1
                }
            };
            next.phases[pi].phase = Phase {
                slots: Vec::new(),
                ..phase.clone()
            };
            for slot in &phase.slots {
                let info = SlotInfo {
                    date: parse_date(&slot.date)
                        .ok_or_else(|| CalendarError(format!("slot {}: bad date", slot.id)))?,
                    phase: pi,
                    site: next.site_index.get(&slot.site).copied().ok_or_else(|| {
                        CalendarError(format!("slot {}: unknown site {}", slot.id, slot.site))
                    })?,
                    slot: slot.clone(),
                };
                match next.slot_index.get(&slot.id) {
                    Some(&si) => {
                        let old = &next.slots[si as usize];
                        if old.phase != pi {
                            return Err(CalendarError(format!(
                                "slot {} belongs to phase {}; it cannot move to phase {}",
                                slot.id, next.phases[old.phase].phase.id, phase.id
                            )));
                        }
                        if old.slot.capacity != slot.capacity {
                            changes.push((si, slot.capacity));
                        }
                        next.slots[si as usize] = info;
                    }
                    None => {
                        let si = next.slots.len();
                        if si >= Inventory::max_slots() {
                            return Err(CalendarError(format!(
                                "more than {} slots in all",
                                Inventory::max_slots()
                            )));
                        }
                        let si = si as SlotIndex;
                        next.slot_index.insert(slot.id.clone(), si);
                        next.slots.push(info);
                        next.phases[pi].slots.push(si);
                        changes.push((si, slot.capacity));
                    }
                }
            }
        }
        for p in &mut next.phases {
            let dates = p.slots.iter().map(|&s| next.slots[s as usize].date);
            p.dates = dates
                .clone()
                .min()
                .zip(p.slots.iter().map(|&s| next.slots[s as usize].date).max());
        }
        Ok((next, changes))
    }

    /// Applies a merge's capacity changes to an inventory, all or nothing: the lowerings,
    /// then the raises (see [`Catalog::apply_lowerings`]).
    pub fn apply_capacities(
        &self,
        inventory: &Inventory,
        changes: &CapacityChanges,
    ) -> Result<(), CalendarError> {
        let raises = self.apply_lowerings(inventory, changes)?;
        apply_raises(inventory, &raises);
        Ok(())
    }

    /// Applies the lowerings among `changes`, all or nothing, and answers the raises,
    /// which the caller applies with [`apply_raises`] once it may. Lowerings can fail
    /// (below the booked seats) and undoing one is a raise, which cannot fail.
    ///
    /// A store with a journal queues the calendar's record between the two steps: a seat
    /// that a raise creates must exist in the journal before any booking that takes it,
    /// or replay would meet that booking with the old, full capacity.
    pub fn apply_lowerings(
        &self,
        inventory: &Inventory,
        changes: &CapacityChanges,
    ) -> Result<CapacityChanges, CalendarError> {
        let (lower, raise): (Vec<_>, Vec<_>) = changes
            .iter()
            .partition(|&&(slot, capacity)| capacity < inventory.capacity(slot));
        let mut done: Vec<(SlotIndex, u32)> = Vec::with_capacity(lower.len());
        for &(slot, capacity) in lower {
            let before = inventory.capacity(slot);
            if let Err(e) = inventory.set_capacity(slot, capacity) {
                for &(s, c) in done.iter().rev() {
                    let _raise_cannot_fail = inventory.set_capacity(s, c);
                }
                return Err(CalendarError(format!(
                    "slot {}: {e}",
                    self.slot(slot).slot.id
                )));
            }
            done.push((slot, before));
        }
        Ok(raise.into_iter().copied().collect())
    }
}

/// Applies raises (and new slots' capacities), which cannot fail.
pub fn apply_raises(inventory: &Inventory, raises: &CapacityChanges) {
    for &(slot, capacity) in raises {
        let _raise_cannot_fail = inventory.set_capacity(slot, capacity);
    }
}

/// A shared, swappable catalog.
pub type SharedCatalog = Arc<arc_swap::ArcSwap<Catalog>>;

//! The report: `summary.md`, `summary.json` and SVG charts drawn here (goose's HTML
//! report loads its charts from a CDN, which a drill machine may not reach).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use goose::metrics::GooseMetrics;
use plotters::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use crate::announce::Announcement;
use crate::carry::{CarryOver, Texts};
use crate::day::Day;
use crate::model::no_shows_fit;
use crate::provision::Provisioning;
use crate::state::{Drill, Route, Sample};
use crate::verify::Checks;

/// Polls the phase's free seats every 250 ms until aborted.
pub fn spawn_seat_sampler(
    client: reqwest::Client,
    base: String,
    d: Arc<Drill>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let url = format!("{base}/v1/phases");
        loop {
            let at = std::time::Instant::now();
            if let Ok(r) = client.get(&url).send().await
                && let Ok(v) = r.json::<Value>().await
                && let Some(rem) = v["phases"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["id"] == d.scenario.phase.as_str()))
                    .and_then(|p| p["remaining"].as_u64())
                && let Ok(mut s) = d.seats.lock()
            {
                s.push((at, rem));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

fn load_u(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Latency percentiles of one route, in milliseconds.
#[derive(Debug, Clone, Serialize)]
struct RouteFigures {
    route: &'static str,
    requests: usize,
    per_second: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    statuses: BTreeMap<u16, usize>,
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn route_figures(samples: &[Sample], seconds: f64) -> Vec<RouteFigures> {
    Route::ALL
        .iter()
        .filter_map(|&r| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.route == r).collect();
            if mine.is_empty() {
                return None;
            }
            let mut lat: Vec<u32> = mine.iter().map(|s| s.latency_us).collect();
            lat.sort_unstable();
            let mut statuses = BTreeMap::new();
            for s in &mine {
                *statuses.entry(s.status).or_default() += 1;
            }
            Some(RouteFigures {
                route: r.name(),
                requests: mine.len(),
                per_second: mine.len() as f64 / seconds.max(0.001),
                p50_ms: percentile(&lat, 0.50),
                p95_ms: percentile(&lat, 0.95),
                p99_ms: percentile(&lat, 0.99),
                max_ms: percentile(&lat, 1.0),
                statuses,
            })
        })
        .collect()
}

/// Seconds from the opening until `share` of all seats were taken, if ever.
fn time_to(seats: &[(i64, u64)], capacity: u64, share: f64) -> Option<f64> {
    let need = (capacity as f64 * share).ceil() as u64;
    seats
        .iter()
        .find(|(_, rem)| capacity.saturating_sub(*rem) >= need)
        .map(|(t, _)| *t as f64 / 1000.0)
}

fn fmt_time(t: Option<f64>) -> String {
    t.map_or("not reached".into(), |t| format!("{t:.1} s"))
}

/// Per-second buckets: (second, requests, p50 ms, p99 ms).
fn per_second(d: &Drill, samples: &[Sample]) -> Vec<(i64, usize, f64, f64)> {
    let mut buckets: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for s in samples {
        buckets
            .entry(d.since_open_ms(s.at).div_euclid(1000))
            .or_default()
            .push(s.latency_us);
    }
    buckets
        .into_iter()
        .map(|(sec, mut lat)| {
            lat.sort_unstable();
            (
                sec,
                lat.len(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
            )
        })
        .collect()
}

/// One line of a chart: its name, its points, its colour.
type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

fn chart(path: &Path, title: &str, y_label: &str, series: &[Series<'_>]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.1.iter().map(|p| p.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let y1 = ys.fold(0.0f64, f64::max);
    let (x0, x1) = if x0 <= x1 {
        (x0, x1.max(x0 + 1.0))
    } else {
        (0.0, 1.0)
    };
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..(y1 * 1.1).max(1.0))?;
    c.configure_mesh()
        .x_desc("seconds since the opening")
        .y_desc(y_label)
        .draw()?;
    for (name, points, color) in series {
        let color = *color;
        c.draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))?
        .label(*name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    c.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}

/// The stages after the surge, for the report.
#[derive(Debug)]
pub struct Cycle<'a> {
    pub announcement: &'a Announcement,
    pub day: &'a Day,
    pub carry: &'a CarryOver,
    pub texts: &'a Texts,
}

impl Cycle<'_> {
    /// No-shows at close-out against the rate, over the live bookings of the day.
    fn no_shows_fit(&self, rate: f64) -> bool {
        let day = self.day;
        no_shows_fit(
            day.closed_no_show,
            day.closed_attended + day.closed_no_show,
            rate,
        )
    }

    /// The journey's invariants, as (what, count that must be 0).
    fn invariants(&self, d: &Drill, rate: f64) -> Vec<(String, u64)> {
        let (day, carry, texts) = (self.day, self.carry, self.texts);
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        vec![
            (
                format!(
                    "texts in the file not matching the invitations ({} lines, {} message ids, {} invitations)",
                    texts.lines, texts.unique, texts.expected
                ),
                texts.lines.abs_diff(texts.expected) + texts.unique.abs_diff(texts.expected),
            ),
            ("message ids written twice".into(), texts.duplicates),
            (
                format!(
                    "fresh bookings missing from their person's own list (of {} reads with real tokens)",
                    load(&d.own_reads)
                ),
                load(&d.own_reads_missing),
            ),
            (
                "gateway lines unreadable or to nobody of the drill".into(),
                texts.unreadable + texts.unknown_to,
            ),
            (
                "texts dead in the outbox".into(),
                texts.outbox["dead"].as_u64().unwrap_or(0),
            ),
            (
                "bookings made before the person's text".into(),
                texts.booked_before_text as u64,
            ),
            (
                format!(
                    "uninvited people who booked (of {} who tried; {} refused not-invited, {} otherwise)",
                    load(&d.uninvited_tries),
                    load(&d.uninvited_refused),
                    load(&d.uninvited_other)
                ),
                load(&d.uninvited_booked),
            ),
            ("check-ins refused".into(), day.refused_total() as u64),
            (
                format!(
                    "close-out attended differing from check-ins ({} vs {})",
                    day.closed_attended, day.checked_in
                ),
                day.closed_attended.abs_diff(day.checked_in as u64),
            ),
            (
                format!(
                    "no-shows outside the rate's tolerance ({} of {}, rate {rate})",
                    day.closed_no_show,
                    day.closed_attended + day.closed_no_show
                ),
                u64::from(!self.no_shows_fit(rate)),
            ),
            (
                format!("no-shows not carried over (of {})", carry.no_shows),
                carry.no_shows_missing as u64,
            ),
            (
                format!(
                    "invitees who never booked not carried over (of {})",
                    carry.never_booked
                ),
                carry.never_booked_missing as u64,
            ),
            (
                format!(
                    "registrants never invited not carried over (of {})",
                    carry.never_invited
                ),
                carry.never_invited_missing as u64,
            ),
            (
                "attendees invited again".into(),
                carry.attended_reinvited as u64,
            ),
            (
                format!(
                    "next phase eligible/invited/texted off the expected {} ({} / {} / {})",
                    carry.eligible_expected, carry.eligible, carry.invited, carry.texted
                ),
                u64::from(!carry.ok()),
            ),
        ]
    }
}

/// The waiting room's invariants, when the phase has one.
fn room_invariants(d: &Drill) -> Vec<(String, u64)> {
    if !d.scenario.params.waiting_room {
        return Vec::new();
    }
    let room = &d.room;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    vec![
        (
            format!(
                "the room's shuffle unreadable or its pre-queue miscounted{}",
                room.order_error
                    .get()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
            u64::from(room.order_error.get().is_some()),
        ),
        (
            format!(
                "queue positions off the recorded seed's permutation (of {} polls)",
                load(&room.polls)
            ),
            load(&room.position_mismatches),
        ),
        (
            "bookings refused not-admitted after the ticket was admitted".into(),
            load(&room.refused_admitted),
        ),
    ]
}

/// Bots against people: their shares of the people who tried, of the bookings, and of
/// the first seats taken (where a head start shows).
#[derive(Debug, Default, Serialize)]
struct Fairness {
    tried: usize,
    bots_tried: usize,
    booked: usize,
    bots_booked: usize,
    /// The first tenth of the bookings made, by when they were sent.
    first_tenth: usize,
    bots_in_first_tenth: usize,
    room: bool,
    prequeued: u64,
    bots_prequeued: usize,
    polls: u64,
    /// Seconds from the opening to admission: p50 and p99, people and bots.
    wait_people: Option<(f64, f64)>,
    wait_bots: Option<(f64, f64)>,
}

impl Fairness {
    fn of(d: &Drill, acked: &[crate::state::Acked]) -> Self {
        let bot = |i: usize| d.scenario.people[i].bot;
        let mut by_time: Vec<_> = acked.iter().collect();
        by_time.sort_by_key(|a| a.at);
        let first_tenth = by_time.len().div_ceil(10);
        let waits = d.room.waits.lock().map(|w| w.clone()).unwrap_or_default();
        let quantiles = |of_bots: bool| {
            let mut w: Vec<f64> = waits
                .iter()
                .filter(|(b, _)| *b == of_bots)
                .map(|(_, s)| *s)
                .collect();
            w.sort_by(f64::total_cmp);
            let at = |q: f64| w[((w.len() - 1) as f64 * q).round() as usize];
            (!w.is_empty()).then(|| (at(0.5), at(0.99)))
        };
        Self {
            tried: d.arrivals.len(),
            bots_tried: d.arrivals.iter().filter(|&&i| bot(i)).count(),
            booked: acked.len(),
            bots_booked: acked.iter().filter(|a| bot(a.person)).count(),
            first_tenth,
            bots_in_first_tenth: by_time[..first_tenth]
                .iter()
                .filter(|a| bot(a.person))
                .count(),
            room: d.scenario.params.waiting_room,
            prequeued: d.room.prequeued.load(Ordering::Relaxed),
            bots_prequeued: d
                .room
                .early
                .iter()
                .filter(|&&i| bot(i) && d.room.prequeued_at(i))
                .count(),
            polls: d.room.polls.load(Ordering::Relaxed),
            wait_people: quantiles(false),
            wait_bots: quantiles(true),
        }
    }

    fn write(&self, md: &mut String, d: &Drill) {
        let share = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
        let _ = writeln!(
            md,
            "## Fairness: bots {} a waiting room\n",
            if self.room { "with" } else { "without" }
        );
        let _ = writeln!(
            md,
            "| | people who tried | bookings | the first tenth of bookings |\n|---|---:|---:|---:|"
        );
        let _ = writeln!(
            md,
            "| bots | {} ({:.1} %) | {} ({:.1} %) | {} ({:.1} %) |",
            self.bots_tried,
            share(self.bots_tried, self.tried),
            self.bots_booked,
            share(self.bots_booked, self.booked),
            self.bots_in_first_tenth,
            share(self.bots_in_first_tenth, self.first_tenth),
        );
        let _ = writeln!(
            md,
            "| everyone | {} | {} | {} |\n",
            self.tried, self.booked, self.first_tenth
        );
        if self.room {
            let fmt = |w: Option<(f64, f64)>| {
                w.map_or("none".to_string(), |(a, b)| format!("{a:.1} s / {b:.1} s"))
            };
            let _ = writeln!(
                md,
                "- the room: {} queued before the opening (of {} bots and opening-minute people), {} of them bots ({:.1} %: their fair share of the first bookings), shuffled by the recorded seed; {} queue polls; in the pre-queue, wait from the opening to admission, p50 / p99: people {}, bots {} (bots poll every 100 ms, people when `Retry-After` says)\n",
                self.prequeued,
                d.room.early.len(),
                self.bots_prequeued,
                share(self.bots_prequeued, self.prequeued as usize),
                self.polls,
                fmt(self.wait_people),
                fmt(self.wait_bots),
            );
        } else {
            let _ = writeln!(
                md,
                "- no waiting room: bots are there at the opening instant and never wait for `Retry-After`\n"
            );
        }
    }
}

/// How many the first settlement invited.
fn settled_invited(cycle: &Cycle<'_>) -> String {
    cycle.announcement.settlement["invited"].to_string()
}

/// Writes the report; answers whether every invariant held.
pub fn write(
    out: &Path,
    d: &Drill,
    metrics: &GooseMetrics,
    prov: &Provisioning,
    checks: &Checks,
    cycle: &Cycle<'_>,
) -> anyhow::Result<bool> {
    let samples = d.samples.lock().map(|s| s.clone()).unwrap_or_default();
    let seats: Vec<(i64, u64)> = d
        .seats
        .lock()
        .map(|s| s.iter().map(|(at, r)| (d.since_open_ms(*at), *r)).collect())
        .unwrap_or_default();
    let first = samples
        .iter()
        .map(|s| d.since_open_ms(s.at))
        .min()
        .unwrap_or(0);
    let last = samples
        .iter()
        .map(|s| d.since_open_ms(s.at))
        .max()
        .unwrap_or(0);
    let seconds = (last - first) as f64 / 1000.0;
    let routes = route_figures(&samples, seconds);
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.status >= 400 || s.status == 0) {
        let key = match (&s.code, s.status) {
            (_, 0) => "no answer (connection error)".to_string(),
            (Some(c), st) if !c.is_empty() => format!("{st} {c}"),
            (_, st) => format!("{st}"),
        };
        *errors.entry(key).or_default() += 1;
    }
    let acked = d.acked.lock().map(|a| a.clone()).unwrap_or_default();
    let tried = d.arrivals.len();
    let booked_people = acked.len();
    let capacity = d.scenario.capacity;
    let taken = checks.totals["booked"].as_u64().unwrap_or(0);
    let t50 = time_to(&seats, capacity, 0.5);
    let t90 = time_to(&seats, capacity, 0.9);
    let t100 = time_to(&seats, capacity, 1.0);
    let rate = d.scenario.params.no_show_rate;
    let mut journey = cycle.invariants(d, rate);
    journey.extend(room_invariants(d));
    let ok = checks.ok() && journey.iter().all(|(_, n)| *n == 0);
    let fairness = Fairness::of(d, &acked);

    let buckets = per_second(d, &samples);
    chart(
        &out.join("requests-per-second.svg"),
        "Requests per second",
        "requests/s",
        &[(
            "all routes",
            buckets.iter().map(|b| (b.0 as f64, b.1 as f64)).collect(),
            BLUE,
        )],
    )?;
    chart(
        &out.join("latency.svg"),
        "Latency per second (all routes)",
        "ms",
        &[
            (
                "p50",
                buckets.iter().map(|b| (b.0 as f64, b.2)).collect(),
                GREEN,
            ),
            (
                "p99",
                buckets.iter().map(|b| (b.0 as f64, b.3)).collect(),
                RED,
            ),
        ],
    )?;
    chart(
        &out.join("seats-remaining.svg"),
        "Seats remaining",
        "seats",
        &[(
            "remaining",
            seats
                .iter()
                .map(|(t, r)| (*t as f64 / 1000.0, *r as f64))
                .collect(),
            BLUE,
        )],
    )?;

    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Drill: phase {} and its carry-over into {}\n",
        d.scenario.phase, d.scenario.next_phase
    );
    // The verdict, first: what an SRE reads in ten seconds.
    let count = |f: &dyn Fn(&crate::state::Sample) -> bool| samples.iter().filter(|s| f(s)).count();
    let answered_201 = count(&|s| s.route == Route::Book && s.status == 201);
    let replays = d.replays.load(Ordering::Relaxed);
    let cancelled = acked.iter().filter(|a| !a.live).count();
    let shed = count(&|s| matches!(s.status, 0 | 429 | 503));
    let server_errors = count(&|s| s.status >= 500 && s.status != 503);
    let book = routes.iter().find(|r| r.route == Route::Book.name());
    let breaches = [
        checks.overbooked_slots as u64,
        checks.double_booked_people as u64,
        checks.acknowledged_missing as u64,
        checks.counter_mismatches as u64,
    ]
    .iter()
    .sum::<u64>()
        + journey.iter().map(|(_, n)| n).sum::<u64>();
    let _ = writeln!(
        md,
        "## Verdict: {}\n",
        if ok {
            "PASS, every invariant holds"
        } else {
            "FAIL, see the invariants below"
        }
    );
    let _ = writeln!(
        md,
        "- **live bookings at the end: {taken}** = seats taken, of {capacity} seats ({:.1} %); invariant breaches: {breaches}",
        100.0 * taken as f64 / capacity.max(1) as f64
    );
    let _ = writeln!(
        md,
        "- booking requests answered `201`: {answered_201} = {} bookings made + {replays} replays",
        acked.len()
    );
    let _ = writeln!(
        md,
        "  - a *replay* is a double-click: the same `Idempotency-Key` sent again, answered `201` with the same booking, no second seat"
    );
    let _ = writeln!(
        md,
        "  - {cancelled} of the {} bookings made were then cancelled by their people, freeing the seat: {} − {cancelled} = {} live",
        acked.len(),
        acked.len(),
        acked.len() - cancelled
    );
    let _ = writeln!(
        md,
        "- booking latency p50 / p99: {} ms; shed (`429`, `503`, no answer): {shed}; other 5xx: {server_errors}",
        book.map_or("-".into(), |b| format!("{:.1} / {:.1}", b.p50_ms, b.p99_ms))
    );
    let _ = writeln!(
        md,
        "- the cycle: {} registered, {} invited, {} texted, {} booked, {} checked in, {} no-shows carried into phase {}\n",
        checks.registrations["live"],
        settled_invited(cycle),
        cycle
            .texts
            .per_phase
            .get(d.scenario.phase.as_str())
            .copied()
            .unwrap_or(0),
        acked.len(),
        cycle.day.checked_in,
        cycle.day.closed_no_show,
        d.scenario.next_phase
    );
    let _ = writeln!(
        md,
        "Goose's terminal summary is off (`--no-print-metrics`, `--no-error-summary`): it lists every non-2xx answer as an error, even the `409 slot-full` and `409 already-booked` this model expects and counts as successes, so it read as failures that were not. Its HTML report is kept; this page counts answers by code below.\n"
    );
    let _ = writeln!(md, "## Invariants\n");
    let _ = writeln!(md, "| invariant | count (must be 0) |\n|---|---|");
    let _ = writeln!(md, "| overbooked slots | {} |", checks.overbooked_slots);
    let _ = writeln!(
        md,
        "| people with two live bookings | {} |",
        checks.double_booked_people
    );
    let _ = writeln!(
        md,
        "| acknowledged bookings missing from the store (of {}) | {} |",
        checks.acknowledged, checks.acknowledged_missing
    );
    let _ = writeln!(
        md,
        "| acknowledged bookings not looked up (a checker failed) | {} |",
        checks.lookups_not_done
    );
    let _ = writeln!(
        md,
        "| seat counters disagreeing with bookings | {} |",
        checks.counter_mismatches
    );
    let _ = writeln!(
        md,
        "| registration audit breaches (histories, serials) | {} |",
        checks.registrations["breaches"]
            .as_array()
            .map_or(usize::from(!checks.registrations_ok), Vec::len)
    );
    let _ = writeln!(
        md,
        "| double-clicks answered with another booking | {} |",
        checks.idempotency_mismatches
    );
    for j in &checks.journeys {
        let _ = writeln!(
            md,
            "| phase {} audit not ok, journey included ({}) | {} |",
            j["phase"].as_str().unwrap_or("?"),
            j["journey"]["breaches"]
                .as_array()
                .map_or(0, Vec::len)
                .to_string()
                + " journey breaches",
            u8::from(!(j["ok"] == true && j["journey"]["ok"] == true))
        );
    }
    for (what, n) in &journey {
        let _ = writeln!(md, "| {what} | {n} |");
    }
    let _ = writeln!(md);
    let (ann, day, carry, texts) = (cycle.announcement, cycle.day, cycle.carry, cycle.texts);
    let settled = &ann.settlement;
    let _ = writeln!(md, "## The cycle, stage by stage\n");
    let _ = writeln!(md, "| stage | figures |\n|---|---|");
    let _ = writeln!(
        md,
        "| 1. registration | {} in the wave ({:.1} s), {} late (after the cutoff), {} failed; {} live in the store |",
        load_u(&d.registered_early),
        ann.wave_seconds,
        load_u(&d.registered_late),
        load_u(&d.registration_failures),
        checks.registrations["live"]
    );
    let _ = writeln!(
        md,
        "| 2. settlement of {} | {} invited of {} eligible (target {}, doses {}) in {:.2} s; by vaccine {} |",
        d.scenario.phase,
        settled["invited"],
        settled["eligible"],
        settled["target"],
        settled["doses"],
        ann.settlement_seconds,
        settled["by_vaccine"]
    );
    let _ = writeln!(
        md,
        "| 3. texts | {} lines in the file: {} for this phase, {} for the next; this phase's reached the tail over {:.1} s ({:.0}/s); outbox: {} sent, {} dead, {}/s at the end |",
        texts.lines,
        texts
            .per_phase
            .get(d.scenario.phase.as_str())
            .copied()
            .unwrap_or(0),
        texts
            .per_phase
            .get(d.scenario.next_phase.as_str())
            .copied()
            .unwrap_or(0),
        texts.spread_seconds,
        texts.per_second,
        texts.outbox["sent"],
        texts.outbox["dead"],
        texts.outbox["per_second"]
    );
    let _ = writeln!(
        md,
        "| 4. bookings | {} made by invitees after their text; uninvited arrivals: {} stayed home, {} tried: {} refused not-invited, {} otherwise, {} booked |",
        acked.len(),
        load_u(&d.uninvited_stayed),
        load_u(&d.uninvited_tries),
        load_u(&d.uninvited_refused),
        load_u(&d.uninvited_other),
        load_u(&d.uninvited_booked)
    );
    let _ = writeln!(
        md,
        "| 5. check-ins on {} | {} of {} live bookings checked in ({} by code, {} by ID number) in {:.1} s; {} stayed away (rate {rate}) |",
        day.date,
        day.checked_in,
        day.live_bookings,
        day.by_code,
        day.by_id_number,
        day.check_in_seconds,
        day.stayed_away
    );
    let _ = writeln!(
        md,
        "| 6. close-out | {} attended, {} no-shows ({:.1} %) |",
        day.closed_attended,
        day.closed_no_show,
        100.0 * day.closed_no_show as f64
            / (day.closed_attended + day.closed_no_show).max(1) as f64
    );
    let _ = writeln!(
        md,
        "| 7. settlement of {} | {} invited of {} eligible: carried over {} no-shows, {} invitees who never booked, {} never invited before; {} attendees left out |\n",
        d.scenario.next_phase,
        carry.invited,
        carry.eligible,
        carry.no_shows - carry.no_shows_missing,
        carry.never_booked - carry.never_booked_missing,
        carry.never_invited - carry.never_invited_missing,
        day.attended.len() - carry.attended_reinvited
    );
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(md, "## Registration and login\n");
    let _ = writeln!(
        md,
        "- {} insured persons imported in {:.1} s; registrations: {} in the wave before the opening, {} at arrival, {} failed; the store holds {} live (last serial {})",
        prov.persons,
        prov.registry_seconds,
        load(&d.registered_early),
        load(&d.registered_late),
        load(&d.registration_failures),
        checks.registrations["live"],
        checks.registrations["last_serial"],
    );
    let _ = writeln!(
        md,
        "- logins before booking (web with a captcha, or at a kiosk): {} succeeded, {} failed\n",
        load(&d.logins),
        load(&d.login_failures),
    );
    fairness.write(&mut md, d);
    let p = &d.scenario.params;
    let _ = writeln!(md, "## Demand and supply\n");
    let _ = writeln!(
        md,
        "- scale {} of phase 2 of 2021: {} people ({} invited), {} tried to book, {} seats in {} slots at {} sites",
        p.scale,
        d.scenario.people.len(),
        settled["invited"],
        tried,
        capacity,
        prov.slots,
        d.scenario.sites.len()
    );
    let _ = writeln!(
        md,
        "- 55-hour window compressed {:.0}x into {} s; targets: {}",
        d.scenario.compression(),
        p.window_seconds,
        d.targets.join(", ")
    );
    if let Some(real) = p.replay_seconds {
        let would = d
            .scenario
            .people
            .iter()
            .filter(|x| x.arrives_at.is_some())
            .count();
        let _ = writeln!(
            md,
            "- replayed: the first {:.1} real minutes after the opening only, {} of the {would} people who try in the whole window",
            real / 60.0,
            d.arrivals.len()
        );
    }
    let _ = writeln!(
        md,
        "- bookings made: {booked_people} ({:.1} % of those who tried, {:.1} % of the invited (2021: 83.8 %); {:.1} % of seats taken, audit says {taken} live)",
        100.0 * booked_people as f64 / tried.max(1) as f64,
        100.0 * booked_people as f64 / settled["invited"].as_u64().unwrap_or(0).max(1) as f64,
        100.0 * taken as f64 / capacity.max(1) as f64
    );
    let _ = writeln!(
        md,
        "- gave up after {} attempts (wait for the next phase): {}; not started before the deadline: {}",
        p.max_attempts,
        d.gave_up.load(Ordering::Relaxed),
        d.unserved.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        md,
        "- time to 50 % / 90 % / 100 % of seats taken: {} / {} / {}",
        fmt_time(t50),
        fmt_time(t90),
        fmt_time(t100)
    );
    let _ = writeln!(
        md,
        "- provisioning: calendar {:.2} s; invitations by settlement (above)\n",
        prov.calendar_seconds
    );
    let _ = writeln!(
        md,
        "## Requests ({} in {seconds:.1} s, {:.0}/s)\n",
        samples.len(),
        samples.len() as f64 / seconds.max(0.001)
    );
    let _ = writeln!(
        md,
        "| route | requests | per second | p50 ms | p95 ms | p99 ms | max ms | statuses |\n|---|---|---|---|---|---|---|---|"
    );
    for r in &routes {
        let statuses: Vec<String> = r
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let _ = writeln!(
            md,
            "| `{}` | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            r.route,
            r.requests,
            r.per_second,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.max_ms,
            statuses.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "\n## Answers other than success, by code\n\n| status and code | count |\n|---|---|"
    );
    for (k, n) in &errors {
        let _ = writeln!(md, "| {k} | {n} |");
    }
    let _ = writeln!(
        md,
        "\nExpected refusals (`409 slot-full`, `409 already-booked`, `403 window-not-open`, the deliberate `401`/`422`) are part of the model; `429`, `503` and connection errors are load the servers shed.\n"
    );
    let _ = writeln!(
        md,
        "## Charts\n\n![requests per second](requests-per-second.svg)\n\n![latency](latency.svg)\n\n![seats remaining](seats-remaining.svg)\n"
    );
    let _ = writeln!(
        md,
        "Raw figures: [summary.json](summary.json). Goose's own report: [goose-report.html](goose-report.html) (its charts need a CDN; its tables do not)."
    );
    std::fs::write(out.join("summary.md"), md).context("writing summary.md")?;

    let raw = json!({
        "phase": d.scenario.phase,
        "ok": ok,
        "invariants": checks,
        "journey": {
            "invariants": journey.iter().map(|(w, n)| json!({"what": w, "count": n})).collect::<Vec<_>>(),
            "announcement": ann,
            "day": day,
            "carry_over": carry,
            "texts": texts,
            "uninvited": {
                "stayed": load_u(&d.uninvited_stayed),
                "tried": load_u(&d.uninvited_tries),
                "refused": load_u(&d.uninvited_refused),
                "refused_otherwise": load_u(&d.uninvited_other),
                "booked": load_u(&d.uninvited_booked),
            },
        },
        "fairness": fairness,
        "params": format!("{:?}", d.scenario.params),
        "invited": d.scenario.people.len(),
        "tried": tried,
        "capacity": capacity,
        "bookings_made": booked_people,
        "seats_taken": taken,
        "gave_up": d.gave_up.load(Ordering::Relaxed),
        "unserved": d.unserved.load(Ordering::Relaxed),
        "time_to_seconds": { "50": t50, "90": t90, "100": t100 },
        "provisioning": prov,
        "seconds": seconds,
        "requests": samples.len(),
        "routes": routes,
        "errors": errors,
        "goose_duration_seconds": metrics.duration,
        "per_second": buckets.iter().map(|b| json!({"second": b.0, "requests": b.1, "p50_ms": b.2, "p99_ms": b.3})).collect::<Vec<_>>(),
        "seats_remaining": seats.iter().map(|(t, r)| json!([t, r])).collect::<Vec<_>>(),
    });
    std::fs::write(out.join("summary.json"), serde_json::to_vec_pretty(&raw)?)
        .context("writing summary.json")?;
    Ok(ok)
}

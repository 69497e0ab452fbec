//! Availability over the demo national calendar: building a snapshot (first, and the
//! periodic rebuild that reuses the layout), and a county page rendered fresh vs cached.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use slotd::availability::{self, Query};
use slotd::store::Store;
use slotd_benches::{ephemeral_store, runtime};
use time::OffsetDateTime;

fn snapshot(c: &mut Criterion) {
    let rt = runtime();
    let calendar = slotd::demo::calendar(OffsetDateTime::now_utc());
    // The county with the most sites: the heaviest county page.
    let mut sites_per_county: HashMap<&str, usize> = HashMap::new();
    for s in &calendar.sites {
        *sites_per_county.entry(&s.county).or_default() += 1;
    }
    let county = sites_per_county
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, _)| (*c).to_owned())
        .expect("the demo calendar has sites");
    let store = ephemeral_store(&rt, calendar.clone());
    let catalog = store.catalog();
    let inventory = store.inventory();
    let phase = catalog
        .phase_index(slotd_benches::OPEN_PHASE)
        .expect("the demo calendar has phase 01");
    let previous = availability::build(catalog.clone(), inventory, None);

    let mut g = c.benchmark_group("snapshot/build");
    g.bench_function("first", |b| {
        b.iter(|| availability::build(catalog.clone(), inventory, None))
    });
    g.bench_function("rebuild", |b| {
        b.iter(|| availability::build(catalog.clone(), inventory, Some(&previous)))
    });
    g.finish();

    let by_county = Query {
        county: Some(county),
        ..Query::default()
    };
    let mut g = c.benchmark_group("snapshot/page");
    // A fresh snapshot per iteration (built untimed): the first request for the page
    // after a rebuild renders and caches it.
    g.bench_function("county_fresh", |b| {
        b.iter_batched(
            || availability::build(catalog.clone(), inventory, Some(&previous)),
            |snap| {
                let page = snap.page(phase, &by_county);
                (snap, page)
            },
            BatchSize::SmallInput,
        )
    });
    // Every later request until the next rebuild.
    let cached = availability::build(catalog.clone(), inventory, Some(&previous));
    black_box(cached.page(phase, &by_county));
    g.bench_function("county_cached", |b| {
        b.iter(|| cached.page(phase, black_box(&by_county)))
    });
    // The page without a place: seats per county and district over the whole phase.
    g.sample_size(10);
    g.bench_function("index_fresh", |b| {
        b.iter_batched(
            || availability::build(catalog.clone(), inventory, Some(&previous)),
            |snap| {
                let page = snap.page(phase, &Query::default());
                (snap, page)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    println!(
        "snapshot: {} slots; county page {} bytes, index page {} bytes",
        catalog.slots.len(),
        cached
            .page(phase, &by_county)
            .body(slotd::availability::Encoding::Identity)
            .len(),
        cached
            .page(phase, &Query::default())
            .body(slotd::availability::Encoding::Identity)
            .len()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = snapshot
}
criterion_main!(benches);

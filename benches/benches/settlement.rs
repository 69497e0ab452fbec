//! Settlement at national scale: choosing 1.1 million invitees (2021's phase 2) out of
//! one and ten million registrants (2021's order of magnitude) on one core, with the
//! eligibility rules of a phase, side by side with the naive baseline in the same run
//! (filter, sort everyone, take the first). Registrants are synthetic and packed the
//! way the stores hand them to settlement.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slotd::domain::{Eligibility, Phase, synthetic_id};
use slotd::settlement::{Registrant, Rules, Standing, julian_day, plan};
use time::macros::date;

/// 2021 phase 2's invitations.
const INVITED: u64 = 1_100_000;

/// `n` registrants: birth dates over 1920–2003, one in ten in a priority category, every
/// county, brands mixed, registered over the four weeks before the cutoff.
fn registrants(n: u64) -> Vec<Registrant> {
    let oldest = julian_day(date!(1920 - 01 - 01));
    let span = (julian_day(date!(2003 - 12 - 31)) - oldest) as u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        // xorshift64*: cheap and deterministic.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    (0..n)
        .map(|i| {
            let r = next();
            Registrant {
                person: synthetic_id(i),
                serial: i + 1,
                registered_at: 1_624_000_000 + (r % (28 * 86_400)) as i64,
                birth: oldest + ((r >> 20) % span) as i32,
                categories: if (r >> 40) % 10 == 0 {
                    1 << (1 + (r >> 44) % 10)
                } else {
                    0
                },
                mobile: (r >> 8) as u32 % 100_000_000,
                county: ((r >> 48) % 22) as u8,
                vaccines: 1 + ((r >> 56) % 3) as u8,
            }
        })
        .collect()
}

/// Phase 2's rules: AZ ticked, registered before the cutoff.
fn rules() -> Rules {
    let phase: Phase = serde_json::from_value(serde_json::json!({
        "id": "02", "name": "第02期", "vaccines": ["AZ"],
        "opens_at": "2021-07-13T10:00:00+08:00", "closes_at": "2021-07-15T17:00:00+08:00",
        "eligibility": Eligibility {
            registered_before: Some(time::macros::datetime!(2021-07-12 17:00 +08:00)),
            ..Eligibility::default()
        },
    }))
    .expect("phase");
    Rules::of(&phase)
}

/// The baseline: every eligible registrant sorted by the same key, the first taken.
fn sort_everyone(rs: &[Registrant], rules: &Rules, target: u64) -> Vec<u32> {
    let mut all: Vec<(u16, i32, u64, u32)> = rs
        .iter()
        .enumerate()
        .filter(|(_, r)| rules.admits(r))
        .map(|(i, r)| {
            (
                r.first_category().unwrap_or(u16::MAX),
                r.birth,
                r.serial,
                i as u32,
            )
        })
        .collect();
    all.sort_unstable();
    all.truncate(target as usize);
    all.into_iter().map(|t| t.3).collect()
}

fn settle(c: &mut Criterion) {
    let rules = rules();
    for n in [1_000_000u64, 10_000_000] {
        let rs = registrants(n);
        let mut g = c.benchmark_group(format!("settlement/{}M registrants", n / 1_000_000));
        g.throughput(Throughput::Elements(n)).sample_size(10);
        let chosen = plan(&rs, &rules, |_| Standing::Open, 0, INVITED);
        let naive = sort_everyone(&rs, &rules, INVITED);
        assert_eq!(
            chosen.invite, naive,
            "both choose the same people in the same order"
        );
        g.bench_function("plan (partition, sort the chosen)", |b| {
            b.iter(|| plan(black_box(&rs), &rules, |_| Standing::Open, 0, INVITED))
        });
        g.bench_function("baseline: sort everyone", |b| {
            b.iter(|| sort_everyone(black_box(&rs), &rules, INVITED))
        });
        g.finish();
    }
}

/// Settlement end to end on the embedded stores, a dry run (everything but the writes):
/// one million registrations read from the identity store and joined with the
/// registry, the bookings and invited set read, the plan, the report. One real run is
/// timed once and printed.
fn end_to_end(c: &mut Criterion) {
    use slotd::identity::population::{self, PopulationSpec};
    use slotd::identity::{BRANDS, RegistrationForm};
    use slotd::store::Store;
    use slotd::store::identity::{EmbeddedIdentity, IdentityStore};

    const N: u64 = 1_000_000;
    let rt = slotd_benches::runtime();
    let identity = EmbeddedIdentity::ephemeral();
    let spec = PopulationSpec::new(N, population::DEMO_SEED);
    let now = time::OffsetDateTime::now_utc();
    rt.block_on(async {
        for start in (0..N).step_by(100_000) {
            let people: Vec<_> = (start..start + 100_000)
                .map(|i| population::person(&spec, i, "unused"))
                .collect();
            identity
                .upsert_persons(people.iter().map(|p| p.person.clone()).collect())
                .await
                .expect("registry");
            for p in &people {
                let form = RegistrationForm {
                    name: "王小明".into(),
                    mobile: format!("09{:08}", p.person.id_number.packed() % 100_000_000),
                    county: p.county.into(),
                    district: p.district.into(),
                    vaccines: BRANDS.iter().map(|b| b.to_string()).collect(),
                };
                identity
                    .register(p.person.id_number, form, now)
                    .await
                    .expect("register");
            }
        }
    });
    let mut cal = slotd::demo::calendar(now);
    cal.phases[1].doses = Some(INVITED);
    let store = slotd_benches::ephemeral_store(&rt, cal);
    let phase = store.catalog().phases[1].phase.id.to_string();
    let mut g = c.benchmark_group("settlement/end to end, embedded, 1M registrations");
    g.throughput(Throughput::Elements(N)).sample_size(10);
    g.bench_function("dry run", |b| {
        b.iter(|| {
            rt.block_on(slotd::settlement::settle(
                &store, &store, &identity, &phase, 1.0, true, now,
            ))
            .expect("settle")
        })
    });
    g.finish();
    let started = std::time::Instant::now();
    let real = rt
        .block_on(slotd::settlement::settle(
            &store, &store, &identity, &phase, 1.0, false, now,
        ))
        .expect("settle");
    println!(
        "settlement/end to end, embedded, 1M registrations/real run: {} invited in {:.2} s",
        real.invited,
        started.elapsed().as_secs_f64()
    );
}

criterion_group!(benches, settle, end_to_end);
criterion_main!(benches);

//! The identity hot spots: one argon2id password check (the login's cost, so logins per
//! second per core is its inverse) under several parameter sets of equal OWASP strength,
//! a TOTP check, a captcha drawn and checked, and a registration written to the embedded
//! store, side by side with a booking in the same run (the baseline).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slotd::domain::synthetic_id;
use slotd::identity::captcha::Captchas;
use slotd::identity::password::{self, PasswordParams};
use slotd::identity::{RegistrationForm, otp};
use slotd::service::{self, Booker};
use slotd::store::identity::{EmbeddedIdentity, IdentityStore};
use slotd_benches::{OPEN_PHASE, ephemeral_store, one_site_calendar, open_slots, runtime};
use time::OffsetDateTime;

/// OWASP's argon2id settings (Password Storage Cheat Sheet), all of equal strength: less
/// memory is paid for with more passes. The first is slotd's default.
const PARAMS: [(u32, u32); 3] = [(19_456, 2), (12_288, 3), (7_168, 5)];

fn passwords(c: &mut Criterion) {
    let mut g = c.benchmark_group("login/password");
    g.throughput(Throughput::Elements(1)).sample_size(20);
    for (memory_kib, iterations) in PARAMS {
        let params = PasswordParams {
            memory_kib,
            iterations,
            parallelism: 1,
        };
        let phc = password::hash("slotd-drill-1234", params).expect("hash");
        g.bench_function(format!("verify m={memory_kib}KiB t={iterations}"), |b| {
            b.iter(|| assert!(password::verify(black_box(&phc), "slotd-drill-1234")))
        });
    }
    g.finish();
}

fn otp_and_captcha(c: &mut Criterion) {
    let mut g = c.benchmark_group("login/other");
    g.throughput(Throughput::Elements(1));
    let secret = otp::parse_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").expect("secret");
    let now = OffsetDateTime::now_utc().unix_timestamp() as u64;
    let code = otp::code_at(&secret, now);
    g.bench_function("totp verify", |b| {
        b.iter(|| assert!(otp::verify(&secret, black_box(&code), now).is_some()))
    });
    let captchas = Captchas::new(b"bench-secret", None, 120);
    g.bench_function("captcha issue and draw", |b| {
        b.iter(|| {
            let ch = captchas.issue(now as i64);
            black_box(captchas.data_url(&ch.id)).expect("drawn")
        })
    });
    let ch = captchas.issue(now as i64);
    let answer = captchas.answer(&ch.id);
    g.bench_function("captcha check", |b| {
        b.iter(|| {
            captchas
                .check(black_box(&ch.id), &answer, now as i64)
                .expect("right")
        })
    });
    g.finish();
}

fn registration(c: &mut Criterion) {
    let rt = runtime();
    let now = OffsetDateTime::now_utc();
    let mut g = c.benchmark_group("registration/ephemeral");
    g.throughput(Throughput::Elements(1));
    let form = RegistrationForm {
        name: "王小明".into(),
        mobile: "0912345678".into(),
        county: "臺北市".into(),
        district: "中正區".into(),
        vaccines: vec!["AZ".into(), "Moderna".into()],
    };
    g.bench_function("register", |b| {
        b.iter_custom(|iters| {
            let store = EmbeddedIdentity::ephemeral();
            let t = Instant::now();
            rt.block_on(async {
                for n in 0..iters {
                    let r = store.register(synthetic_id(n), form.clone(), now).await;
                    black_box(r).expect("registered");
                }
            });
            t.elapsed()
        })
    });
    // The baseline, in the same run: a booking through the same kind of store.
    let cal = one_site_calendar(now, slotd::domain::MAX_SLOT_CAPACITY);
    let slots = open_slots(&cal);
    g.bench_function("reserve (baseline)", |b| {
        b.iter_custom(|iters| {
            let store = ephemeral_store(&rt, cal.clone());
            let t = Instant::now();
            rt.block_on(async {
                for n in 0..iters {
                    let slot = &slots[n as usize % slots.len()];
                    let r = service::reserve(
                        &store,
                        Booker::web(synthetic_id(n)),
                        OPEN_PHASE,
                        slot,
                        None,
                        now,
                    )
                    .await;
                    black_box(r).ok();
                }
            });
            t.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, passwords, otp_and_captcha, registration);
criterion_main!(benches);

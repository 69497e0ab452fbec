//! A synthetic national population: insured persons for drills, demos and benchmarks.
//!
//! Person `i` of a population is a pure function of `(seed, i)`: no global state and no
//! sequence, so a drill client can recompute anyone (their id, card, OTP secret) without
//! the file the registry was loaded from, and shards can generate disjoint ranges.
//!
//! Uniqueness is by construction rather than by luck: the id number and the NHI card
//! are bijective scrambles of the index, so no two indices below [`MAX_PEOPLE`] share
//! either, whatever the seed.

use std::io::Write;
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use time::{Date, Duration};

use crate::domain::{Geography, IdNumber, synthetic_id};
use crate::identity::password::{self, PasswordParams};
use crate::identity::person::{InsuredPerson, NhiCard};

/// The seed of the built-in demo population.
pub const DEMO_SEED: u64 = 2021;
/// The one password every synthetic person has. Argon2 makes a million distinct hashes
/// infeasible to prepare, so the population shares one hash, computed once.
pub const DRILL_PASSWORD: &str = "slotd-drill-1234";
/// Indices at or above this would repeat id numbers: 26 letters x 2 x 10^7 serials.
pub const MAX_PEOPLE: u64 = ID_SERIALS;

/// Which people a population holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopulationSpec {
    /// How many people [`write_ndjson`] writes.
    pub count: u64,
    /// Different seeds give unrelated populations.
    pub seed: u64,
    /// The first index written, so that shards can write disjoint ranges.
    pub start: u64,
    /// Draw ages from 18 up only, as the 2021 registrants were. Default true.
    pub adults_only: bool,
}

impl PopulationSpec {
    /// `count` adults from index 0.
    pub fn new(count: u64, seed: u64) -> Self {
        PopulationSpec {
            count,
            seed,
            start: 0,
            adults_only: true,
        }
    }
}

/// One synthetic person, with what a drill needs to log in as them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticPerson {
    pub person: InsuredPerson,
    /// County of residence, by population weight.
    pub county: &'static str,
    /// A district of that county.
    pub district: &'static str,
    /// The plain card password: always [`DRILL_PASSWORD`].
    pub password: String,
}

/// Person `index` of the population `spec.seed`. `shared_password_hash` is the PHC hash
/// of [`DRILL_PASSWORD`], computed once by the caller. `index` must be below
/// [`MAX_PEOPLE`] for ids to stay unique.
pub fn person(spec: &PopulationSpec, index: u64, shared_password_hash: &str) -> SyntheticPerson {
    let id_number = id_number(spec.seed, index);
    let mut draw = Draw::new(spec.seed, index, STREAM_PROFILE);
    let tables = tables();
    let (county, districts) = &tables.counties[draw.weighted(&tables.county_weights)];
    let district = districts[draw.below(districts.len() as u64) as usize];
    let age = draw_age(&mut draw, spec.adults_only);
    let birth_date = birth_date(age, draw.below(365));
    let categories = categories(age, draw.below(10_000));
    SyntheticPerson {
        person: InsuredPerson {
            id_number,
            nhi_card: nhi_card(spec.seed, index),
            birth_date: birth_date.to_string(),
            categories,
            password_hash: Some(shared_password_hash.to_string()),
            otp_secret: Some(otp_secret(spec.seed, id_number)),
        },
        county,
        district,
        password: DRILL_PASSWORD.to_string(),
    }
}

/// The id number of person `index`: about 98.5 % national IDs, 0.75 % resident
/// certificates of the 2021 format (second character 8 or 9) and 0.75 % of the old
/// format (A-D). Every format encodes the same scrambled serial of the index, and the
/// formats differ in their second character, so ids are unique across formats.
pub fn id_number(seed: u64, index: u64) -> IdNumber {
    let mut draw = Draw::new(seed, index, STREAM_ID);
    let serial = scramble(
        index,
        ID_MULTIPLIER,
        splitmix64(seed ^ STREAM_ID),
        ID_SERIALS,
    );
    match draw.below(10_000) {
        0..75 => resident_id(serial, None),
        75..150 => resident_id(serial, Some(draw.below(2) == 1)),
        _ => synthetic_id(serial),
    }
}

/// The NHI card of person `index`: 12 digits, `index * 3^25 + offset (mod 10^12)`, a
/// bijection because 3^25 is coprime to 10^12.
pub fn nhi_card(seed: u64, index: u64) -> NhiCard {
    let n = scramble(
        index,
        CARD_MULTIPLIER,
        splitmix64(seed ^ STREAM_CARD),
        CARDS,
    );
    NhiCard::from_u64(n).expect("reduced modulo 10^12, so below 10^12")
}

/// The raw TOTP secret of a person: the first 20 bytes of `HMAC-SHA256(key = the seed
/// as 8 big-endian bytes, message = the id number as written)`.
pub fn otp_secret_bytes(seed: u64, id: IdNumber) -> [u8; 20] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&seed.to_be_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(id.to_string().as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 20];
    out.copy_from_slice(&full[..20]);
    out
}

/// [`otp_secret_bytes`] in base32 (RFC 4648, no padding), as the registry stores it.
pub fn otp_secret(seed: u64, id: IdNumber) -> String {
    base32(&otp_secret_bytes(seed, id))
}

/// Writes people `spec.start .. spec.start + spec.count` as registry NDJSON, one
/// `{"id_number", "nhi_card", "birth_date", "categories", "password_hash",
/// "otp_secret", "county", "district"}` per line (the importer ignores the last two,
/// hints for drills). Hashes [`DRILL_PASSWORD`] once under `params`. Buffers
/// internally. Returns the number of lines.
pub fn write_ndjson(
    spec: &PopulationSpec,
    params: PasswordParams,
    out: &mut impl Write,
) -> std::io::Result<u64> {
    let end = spec
        .start
        .checked_add(spec.count)
        .filter(|&end| end <= MAX_PEOPLE)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("a population holds at most {MAX_PEOPLE} people"),
            )
        })?;
    let hash = password::hash(DRILL_PASSWORD, params).map_err(std::io::Error::other)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    for index in spec.start..end {
        let p = person(spec, index, &hash);
        let line = Line {
            id_number: p.person.id_number,
            nhi_card: p.person.nhi_card,
            birth_date: &p.person.birth_date,
            categories: &p.person.categories,
            password_hash: &hash,
            otp_secret: p.person.otp_secret.as_deref().unwrap_or_default(),
            county: p.county,
            district: p.district,
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(spec.count)
}

#[derive(Serialize)]
struct Line<'a> {
    id_number: IdNumber,
    nhi_card: NhiCard,
    birth_date: &'a str,
    categories: &'a [u16],
    password_hash: &'a str,
    otp_secret: &'a str,
    county: &'static str,
    district: &'static str,
}

// --- ids and cards ---------------------------------------------------------------

/// Serials per id format: 26 letters x 2 sexes x 10^7 bodies.
const ID_SERIALS: u64 = 520_000_000;
/// 3^18: coprime to 520,000,000 = 2^9 x 5^7 x 13, so `i -> i * m + c` permutes serials.
const ID_MULTIPLIER: u64 = 387_420_489;
const CARDS: u64 = 1_000_000_000_000;
/// 3^25: coprime to 10^12.
const CARD_MULTIPLIER: u64 = 847_288_609_443;

/// `(index * multiplier + offset) mod modulus`: a permutation of `0..modulus` when
/// `multiplier` is coprime to `modulus`.
fn scramble(index: u64, multiplier: u64, offset: u64, modulus: u64) -> u64 {
    let n = (u128::from(index) * u128::from(multiplier) + u128::from(offset)) % u128::from(modulus);
    // Reduced modulo a u64, so it fits.
    n as u64
}

/// A resident-certificate number laid out like [`synthetic_id`]: letter
/// `serial / 2*10^7`, sex `serial / 10^7 % 2`, body `serial % 10^7`. `old` is `None`
/// for the 2021 format (`8` male, `9` female), or `Some(bit)` for the old format (`A`
/// or `C` male, `B` or `D` female, the bit choosing between them).
fn resident_id(serial: u64, old: Option<bool>) -> IdNumber {
    let female = (serial / 10_000_000) % 2 == 1;
    let second = match old {
        None if female => b'9',
        None => b'8',
        Some(alt) => b"ABCD"[usize::from(female) + 2 * usize::from(alt)],
    };
    let mut raw = [0u8; 10];
    raw[0] = b'A' + (serial / 20_000_000 % 26) as u8;
    raw[1] = second;
    let mut body = serial % 10_000_000;
    for c in raw[2..9].iter_mut().rev() {
        *c = b'0' + (body % 10) as u8;
        body /= 10;
    }
    (b'0'..=b'9')
        .find_map(|check| {
            raw[9] = check;
            IdNumber::parse(std::str::from_utf8(&raw).ok()?).ok()
        })
        .expect("exactly one check digit makes the weighted sum divisible by ten")
}

// --- where people live -------------------------------------------------------------

/// Counties with their districts, and cumulative county weights (population in
/// thousands), built once from the embedded geography.
struct Tables {
    counties: Vec<(&'static str, Vec<&'static str>)>,
    county_weights: Vec<u64>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let geo = Geography::get();
        let mut counties = Vec::new();
        let mut county_weights = Vec::new();
        let mut total = 0;
        for c in &geo.counties {
            let districts: Vec<&'static str> = geo.districts_of(c.name).map(|d| d.name).collect();
            if districts.is_empty() || c.population_thousands == 0 {
                continue;
            }
            total += u64::from(c.population_thousands);
            counties.push((c.name, districts));
            county_weights.push(total);
        }
        assert!(!counties.is_empty(), "the embedded geography has counties");
        Tables {
            counties,
            county_weights,
        }
    })
}

// --- ages and categories -----------------------------------------------------------

/// Ages are as of this date, the middle of the 2021 campaign.
const REFERENCE: Date = time::macros::date!(2021 - 07 - 01);

/// Age bands `(first age, last age, per mille)`, approximating the Ministry of the
/// Interior's 2021 age distribution of Taiwan. Ages are uniform within a band. The
/// first band is skipped for adults-only populations (the 2021 registrants were 18+).
const AGE_BANDS: [(u64, u64, u64); 7] = [
    (0, 17, 160),
    (18, 29, 150),
    (30, 39, 150),
    (40, 49, 160),
    (50, 64, 220),
    (65, 74, 100),
    (75, 99, 60),
];

fn draw_age(draw: &mut Draw, adults_only: bool) -> u64 {
    let bands = if adults_only {
        &AGE_BANDS[1..]
    } else {
        &AGE_BANDS[..]
    };
    let cumulative: Vec<u64> = bands
        .iter()
        .scan(0, |sum, &(_, _, w)| {
            *sum += w;
            Some(*sum)
        })
        .collect();
    let (first, last, _) = bands[draw.weighted(&cumulative)];
    first + draw.below(last - first + 1)
}

/// A birth date making the person exactly `age` on [`REFERENCE`]: `days_back` (below
/// 365) days before their birthday in `2021 - age`.
fn birth_date(age: u64, days_back: u64) -> Date {
    let year = REFERENCE.year() - age as i32;
    let birthday = REFERENCE
        .replace_year(year)
        .expect("1 July exists in every year from 1922");
    birthday - Duration::days(days_back as i64)
}

/// Priority categories of the 2021 COVID-19 programme (approximate shares):
/// 1 medical workers 1 %, 2 epidemic-prevention officials 0.1 %, 3 high-contact
/// front-line workers 0.5 %, 4 essential travel abroad 0.2 %, 5 care-home residents
/// and carers 0.5 %, 7 workers keeping society running 1 %, 8 high-risk conditions
/// aged 19-64 5 %, 9 rare or major illness 1 %: at most one of these, from `roll`
/// (0..10,000), workers (1-4, 7) aged 18-64 only and 5 adults only. Categories 6
/// (75 and over) and 10 (50-64) follow from age. Most people have none.
fn categories(age: u64, roll: u64) -> Vec<u16> {
    let worker = (18..=64).contains(&age);
    let drawn = match roll {
        0..100 if worker => Some(1),
        100..110 if worker => Some(2),
        110..160 if worker => Some(3),
        160..180 if worker => Some(4),
        180..230 if age >= 18 => Some(5),
        230..330 if worker => Some(7),
        330..830 if (19..=64).contains(&age) => Some(8),
        830..930 => Some(9),
        _ => None,
    };
    let by_age = match age {
        75.. => Some(6),
        50..=64 => Some(10),
        _ => None,
    };
    let mut out: Vec<u16> = drawn.into_iter().chain(by_age).collect();
    out.sort_unstable();
    out
}

// --- deterministic draws -----------------------------------------------------------

const STREAM_ID: u64 = 0x6964_6e75_6d62_6572;
const STREAM_CARD: u64 = 0x6e68_6963_6172_6400;
const STREAM_PROFILE: u64 = 0x7072_6f66_696c_6500;

/// A SplitMix64 sequence seeded from `(seed, index, stream)`: independent streams per
/// purpose, so adding a draw to one never shifts another.
struct Draw(u64);

impl Draw {
    fn new(seed: u64, index: u64, stream: u64) -> Self {
        Draw(splitmix64(seed ^ splitmix64(index ^ stream)))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        splitmix64(self.0)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-32 for our `n`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// An index into `cumulative` (ascending running totals), by weight.
    fn weighted(&mut self, cumulative: &[u64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0);
        let roll = self.below(total);
        cumulative
            .partition_point(|&c| c <= roll)
            .min(cumulative.len().saturating_sub(1))
    }
}

/// The SplitMix64 finaliser: a bijective 64-bit mix.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// RFC 4648 base32 without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::identity::otp;

    const HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn people(spec: &PopulationSpec, n: u64) -> Vec<SyntheticPerson> {
        (0..n).map(|i| person(spec, i, HASH)).collect()
    }

    fn age_on_reference(birth: &str) -> u64 {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let born = Date::parse(birth, format).expect("YYYY-MM-DD");
        let mut age = REFERENCE.year() - born.year();
        if (REFERENCE.month() as u8, REFERENCE.day()) < (born.month() as u8, born.day()) {
            age -= 1;
        }
        age as u64
    }

    #[test]
    fn a_person_is_a_function_of_seed_and_index() {
        let spec = PopulationSpec::new(10, DEMO_SEED);
        assert_eq!(person(&spec, 7, HASH), person(&spec, 7, HASH));
        assert_ne!(person(&spec, 7, HASH), person(&spec, 8, HASH));
        let other = PopulationSpec::new(10, DEMO_SEED + 1);
        assert_ne!(
            person(&spec, 7, HASH).person,
            person(&other, 7, HASH).person
        );
        let p = person(&spec, 7, HASH);
        assert_eq!(p.password, DRILL_PASSWORD);
        assert_eq!(p.person.password_hash.as_deref(), Some(HASH));
    }

    #[test]
    fn ids_are_unique_valid_and_mix_formats() {
        let n = 200_000;
        let mut seen = HashSet::new();
        let (mut new_resident, mut old_resident) = (0, 0);
        for i in 0..n {
            let id = id_number(DEMO_SEED, i);
            assert!(seen.insert(id), "duplicate {id} at {i}");
            let raw = id.to_string();
            assert_eq!(IdNumber::parse(&raw), Ok(id));
            match raw.as_bytes()[1] {
                b'8' | b'9' => new_resident += 1,
                b'A'..=b'D' => old_resident += 1,
                _ => {}
            }
        }
        let share = |k: u64| k as f64 / n as f64;
        assert!(
            (0.006..0.009).contains(&share(new_resident)),
            "{new_resident}"
        );
        assert!(
            (0.006..0.009).contains(&share(old_resident)),
            "{old_resident}"
        );
    }

    #[test]
    fn ids_stay_unique_when_every_format_is_forced() {
        // Whatever format each index draws, the encoded serial is the index's own.
        let mut seen = HashSet::new();
        for i in 0..20_000 {
            let serial = scramble(i, ID_MULTIPLIER, 12_345, ID_SERIALS);
            for id in [
                synthetic_id(serial),
                resident_id(serial, None),
                resident_id(serial, Some(i % 2 == 0)),
            ] {
                assert!(seen.insert(id), "duplicate {id}");
            }
        }
    }

    #[test]
    fn cards_are_unique_twelve_digits() {
        let mut seen = HashSet::new();
        for i in 0..200_000 {
            let card = nhi_card(DEMO_SEED, i);
            assert!(seen.insert(card));
            assert_eq!(card.to_string().len(), 12);
        }
    }

    #[test]
    fn ages_follow_the_2021_pyramid() {
        let n = 100_000;
        let all = PopulationSpec {
            adults_only: false,
            ..PopulationSpec::new(n, DEMO_SEED)
        };
        let mut per_band = [0u64; 7];
        for p in people(&all, n) {
            let age = age_on_reference(&p.person.birth_date);
            let band = AGE_BANDS
                .iter()
                .position(|&(lo, hi, _)| (lo..=hi).contains(&age))
                .expect("every age is in a band");
            per_band[band] += 1;
        }
        for (count, (lo, _, per_mille)) in per_band.iter().zip(AGE_BANDS) {
            let share = *count as f64 / n as f64;
            let want = per_mille as f64 / 1000.0;
            assert!((share - want).abs() < 0.01, "band {lo}: {share} vs {want}");
        }
    }

    #[test]
    fn adults_only_draws_no_minors() {
        let spec = PopulationSpec::new(20_000, DEMO_SEED);
        let ages: Vec<u64> = people(&spec, 20_000)
            .iter()
            .map(|p| age_on_reference(&p.person.birth_date))
            .collect();
        assert!(ages.iter().all(|&a| (18..=99).contains(&a)));
        assert!(ages.contains(&18) && ages.contains(&99));
    }

    #[test]
    fn counties_follow_population_and_districts_are_known() {
        let n = 100_000;
        let geo = Geography::get();
        let total: u32 = geo.counties.iter().map(|c| c.population_thousands).sum();
        let mut per_county: HashMap<&str, u64> = HashMap::new();
        for p in people(&PopulationSpec::new(n, DEMO_SEED), n) {
            assert!(
                geo.is_known(p.county, p.district),
                "{} {}",
                p.county,
                p.district
            );
            *per_county.entry(p.county).or_default() += 1;
        }
        for c in &geo.counties {
            let share = per_county.get(c.name).copied().unwrap_or(0) as f64 / n as f64;
            let want = f64::from(c.population_thousands) / f64::from(total);
            assert!((share - want).abs() < 0.01, "{}: {share} vs {want}", c.name);
        }
        let most = per_county.iter().max_by_key(|(_, n)| **n).map(|(c, _)| *c);
        assert_eq!(most, Some("新北市"));
    }

    #[test]
    fn categories_are_mostly_none_and_follow_age() {
        let n = 50_000;
        let everyone = people(&PopulationSpec::new(n, DEMO_SEED), n);
        let none = everyone
            .iter()
            .filter(|p| p.person.categories.is_empty())
            .count();
        assert!(none as f64 / n as f64 > 0.5, "{none}");
        for p in &everyone {
            let age = age_on_reference(&p.person.birth_date);
            let c = &p.person.categories;
            assert!(c.iter().all(|k| (1..=10).contains(k)), "{c:?}");
            assert_eq!(c.contains(&6), age >= 75, "{age} {c:?}");
            assert_eq!(c.contains(&10), (50..=64).contains(&age), "{age} {c:?}");
            assert!(c.is_sorted(), "{c:?}");
        }
        assert!(everyone.iter().any(|p| p.person.categories.contains(&1)));
    }

    #[test]
    fn otp_secret_is_derivable_base32() {
        let spec = PopulationSpec::new(1, DEMO_SEED);
        let p = person(&spec, 3, HASH);
        let secret = p
            .person
            .otp_secret
            .expect("every synthetic person has the app");
        assert_eq!(secret.len(), 32);
        let bytes = otp::parse_secret(&secret).expect("valid base32");
        assert_eq!(bytes, otp_secret_bytes(DEMO_SEED, p.person.id_number));
        assert_eq!(base32(b"foo"), "MZXW6");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn ndjson_lines_import_as_insured_persons() {
        let spec = PopulationSpec {
            start: 100,
            ..PopulationSpec::new(20, DEMO_SEED)
        };
        let fast = PasswordParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let mut out = Vec::new();
        assert_eq!(write_ndjson(&spec, fast, &mut out).expect("writes"), 20);
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20);
        for (i, line) in lines.iter().enumerate() {
            let parsed: InsuredPerson = serde_json::from_str(line).expect("an insured person");
            let expected = person(&spec, 100 + i as u64, "").person;
            assert_eq!(parsed.id_number, expected.id_number);
            assert_eq!(parsed.nhi_card, expected.nhi_card);
            assert_eq!(parsed.birth_date, expected.birth_date);
            assert_eq!(parsed.categories, expected.categories);
            assert_eq!(parsed.otp_secret, expected.otp_secret);
            let hash = parsed.password_hash.expect("hash written");
            if i == 0 {
                assert!(password::verify(&hash, DRILL_PASSWORD));
            }
            let json: serde_json::Value = serde_json::from_str(line).expect("json");
            assert!(json["county"].is_string() && json["district"].is_string());
        }
    }

    #[test]
    fn populations_beyond_the_id_space_are_refused() {
        let spec = PopulationSpec {
            start: MAX_PEOPLE,
            ..PopulationSpec::new(1, DEMO_SEED)
        };
        let params = PasswordParams::default();
        let err = write_ndjson(&spec, params, &mut Vec::new()).expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

//! `Registrant`: one live registration joined with the person's registry entry, packed.

use time::{Date, OffsetDateTime};

use crate::domain::{Geography, IdNumber, parse_date};
use crate::identity::{BRANDS, InsuredPerson, Registration};

/// What settlement needs of one registrant. Packed: ten million registrants take
/// 400 MB and sort as plain integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registrant {
    pub person: IdNumber,
    /// The registration serial (登記序號): the last tie-breaker.
    pub serial: u64,
    /// Unix seconds of the registration (a modification keeps it).
    pub registered_at: i64,
    /// Julian day number of the birth date.
    pub birth: i32,
    /// Bit `c` set for priority category `c` (1..=31).
    pub categories: u32,
    /// The mobile number's eight digits after `09`.
    pub mobile: u32,
    /// Index of the registration's county in [`Geography::counties`].
    pub county: u8,
    /// Bit `i` set when the registrant ticked `BRANDS[i]`.
    pub vaccines: u8,
}

/// The Julian day number of a date: dates compare as integers.
pub fn julian_day(d: Date) -> i32 {
    d.to_julian_day()
}

impl Registrant {
    /// Joins a live registration with its registry entry; `None` for a cancelled
    /// registration or data that does not fit (a malformed birth date or mobile).
    pub fn new(person: &InsuredPerson, r: &Registration) -> Option<Self> {
        if !r.is_live() || person.id_number != r.person {
            return None;
        }
        let birth = julian_day(parse_date(&person.birth_date)?);
        let mobile = r.form.mobile.strip_prefix("09")?.parse::<u32>().ok()?;
        let county = u8::try_from(Geography::get().county_index(&r.form.county)?).ok()?;
        let categories = person
            .categories
            .iter()
            .filter(|&&c| (1..=31).contains(&c))
            .fold(0u32, |m, &c| m | 1 << c);
        let vaccines = BRANDS
            .iter()
            .enumerate()
            .filter(|(_, b)| r.chose(b))
            .fold(0u8, |m, (i, _)| m | 1 << i);
        Some(Self {
            person: r.person,
            serial: r.serial,
            registered_at: r.registered_at.unix_timestamp(),
            birth,
            categories,
            mobile,
            county,
            vaccines,
        })
    }

    /// The mobile number as dialled.
    pub fn mobile_number(&self) -> String {
        format!("09{:08}", self.mobile)
    }

    /// The most urgent priority category (the lowest number); `None` without one.
    pub fn first_category(&self) -> Option<u16> {
        (self.categories != 0).then(|| self.categories.trailing_zeros() as u16)
    }

    /// The registrant's age in whole years on `day`.
    pub fn age_on(&self, day: Date) -> i32 {
        let Ok(birth) = Date::from_julian_day(self.birth) else {
            return 0;
        };
        let mut age = day.year() - birth.year();
        if (day.month() as u8, day.day()) < (birth.month() as u8, birth.day()) {
            age -= 1;
        }
        age
    }

    /// When the registration was made.
    pub fn registered(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.registered_at)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::synthetic_id;
    use crate::identity::{NhiCard, RegistrationForm, RegistrationStatus};

    pub(crate) fn person(n: u64, birth: &str, categories: &[u16]) -> InsuredPerson {
        InsuredPerson {
            id_number: synthetic_id(n),
            nhi_card: NhiCard::parse(&format!("{:012}", 100_000_000_000 + n)).expect("card"),
            birth_date: birth.into(),
            categories: categories.to_vec(),
            password_hash: None,
            otp_secret: None,
        }
    }

    pub(crate) fn registration(
        n: u64,
        serial: u64,
        county: &str,
        vaccines: &[&str],
    ) -> Registration {
        let at = OffsetDateTime::from_unix_timestamp(1_625_000_000 + serial as i64).expect("time");
        Registration {
            serial,
            person: synthetic_id(n),
            form: RegistrationForm {
                name: "王小明".into(),
                mobile: format!("09{:08}", n),
                county: county.into(),
                district: crate::domain::Geography::get()
                    .districts_of(county)
                    .next()
                    .map(|d| d.name.to_string())
                    .unwrap_or_default(),
                vaccines: vaccines.iter().map(|v| v.to_string()).collect(),
            },
            status: RegistrationStatus::Registered,
            registered_at: at,
            modified_at: at,
        }
    }

    #[test]
    fn a_registrant_packs_what_settlement_needs() {
        let r = Registrant::new(
            &person(7, "1950-07-20", &[9, 3]),
            &registration(7, 42, "金門縣", &["AZ"]),
        )
        .expect("live");
        assert_eq!(r.first_category(), Some(3));
        assert_eq!(r.mobile_number(), "0900000007");
        assert_eq!(r.vaccines, 0b01);
        assert_eq!(r.serial, 42);
        let day = time::macros::date!(2021 - 07 - 13);
        assert_eq!(r.age_on(day), 70);
        assert_eq!(r.age_on(time::macros::date!(2021 - 07 - 20)), 71);
        assert_eq!(std::mem::size_of::<Registrant>(), 40);
    }

    #[test]
    fn cancelled_or_mismatched_registrations_are_not_registrants() {
        let mut reg = registration(7, 1, "臺北市", &["AZ"]);
        reg.status = RegistrationStatus::Cancelled;
        assert!(Registrant::new(&person(7, "1950-01-01", &[]), &reg).is_none());
        let reg = registration(7, 1, "臺北市", &["AZ"]);
        assert!(Registrant::new(&person(8, "1950-01-01", &[]), &reg).is_none());
    }
}

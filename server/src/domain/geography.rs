//! Taiwan's counties and districts, and county populations, embedded from `server/data`.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

const DISTRICTS_CSV: &str = include_str!("../../data/tw-districts.csv");
const POPULATION_CSV: &str = include_str!("../../data/tw-county-population.csv");

/// One township-level district (鄉鎮市區).
#[derive(Debug, Clone)]
pub struct District {
    pub zipcode: &'static str,
    pub county: &'static str,
    pub name: &'static str,
    pub county_en: &'static str,
    pub name_en: &'static str,
}

/// One county or city with its population in thousands.
#[derive(Debug, Clone)]
pub struct County {
    pub name: &'static str,
    pub name_en: &'static str,
    pub population_thousands: u32,
}

/// The reference geography; parsed once from the embedded CSV files.
#[derive(Debug)]
pub struct Geography {
    pub counties: Vec<County>,
    pub districts: Vec<District>,
    known: HashSet<(&'static str, &'static str)>,
    counties_by_name: HashMap<&'static str, usize>,
}

impl Geography {
    /// The embedded geography.
    pub fn get() -> &'static Geography {
        static GEO: OnceLock<Geography> = OnceLock::new();
        GEO.get_or_init(Self::parse)
    }

    fn parse() -> Geography {
        let districts: Vec<District> = DISTRICTS_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| {
                let mut f = l.split(',');
                Some(District {
                    zipcode: f.next()?,
                    county: f.next()?,
                    name: f.next()?,
                    county_en: f.next()?,
                    name_en: f.next()?.trim_end(),
                })
            })
            .collect();
        let counties: Vec<County> = POPULATION_CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| {
                let mut f = l.split(',');
                Some(County {
                    name: f.next()?,
                    name_en: f.next()?,
                    population_thousands: f.next()?.trim().parse().ok()?,
                })
            })
            .collect();
        let known = districts.iter().map(|d| (d.county, d.name)).collect();
        let counties_by_name = counties
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name, i))
            .collect();
        Geography {
            counties,
            districts,
            known,
            counties_by_name,
        }
    }

    /// Whether `district` is a district of `county`, by their Chinese names.
    pub fn is_known(&self, county: &str, district: &str) -> bool {
        self.known.contains(&(county, district))
    }

    /// A county's position in [`Geography::counties`].
    pub fn county_index(&self, name: &str) -> Option<usize> {
        self.counties_by_name.get(name).copied()
    }

    /// The county of that name.
    pub fn county(&self, name: &str) -> Option<&County> {
        self.counties_by_name.get(name).map(|&i| &self.counties[i])
    }

    /// Checks a county and a district (either may be absent), spelt as people type them
    /// ([`canonical`]). A refusal names the field and the valid choices: the counties, or
    /// the districts of the county given.
    pub fn check(&self, county: Option<&str>, district: Option<&str>) -> Result<(), Unknown> {
        if let Some(c) = county
            && self.county(c).is_none()
        {
            return Err(Unknown {
                field: "county",
                reason: format!("{c:?} is not a county of Taiwan"),
                choices: self.counties.iter().map(|c| c.name).collect(),
            });
        }
        match (county, district) {
            (Some(c), Some(d)) if !self.is_known(c, d) => Err(Unknown {
                field: "district",
                reason: format!("{d:?} is not a district of {c}"),
                choices: self.districts_of(c).map(|d| d.name).collect(),
            }),
            (None, Some(d)) if !self.districts.iter().any(|x| x.name == d) => Err(Unknown {
                field: "district",
                reason: format!("{d:?} is not a district of any county; choose a county first"),
                choices: self.counties.iter().map(|c| c.name).collect(),
            }),
            _ => Ok(()),
        }
    }

    /// The districts of one county.
    pub fn districts_of<'a>(&'a self, county: &'a str) -> impl Iterator<Item = &'a District> {
        self.districts.iter().filter(move |d| d.county == county)
    }
}

/// The canonical spelling of a county or district name: trimmed, with the everyday 台
/// written 臺 as the official names are (台北市 is 臺北市, 台西鄉 is 臺西鄉).
pub fn canonical(name: &str) -> String {
    name.trim().replace('台', "臺")
}

/// A county or district that is not one, with what would have been.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// `county` or `district`.
    pub field: &'static str,
    pub reason: String,
    /// The valid names in that place.
    pub choices: Vec<&'static str>,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}; one of: {}",
            self.field,
            self.reason,
            self.choices.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_is_complete() {
        let geo = Geography::get();
        assert_eq!(geo.districts.len(), 371);
        assert_eq!(geo.counties.len(), 22);
        assert!(geo.is_known("臺北市", "中正區"));
        assert!(!geo.is_known("臺北市", "板橋區"));
        let total: u32 = geo.counties.iter().map(|c| c.population_thousands).sum();
        assert!((23_000..24_000).contains(&total), "{total}");
        for c in &geo.counties {
            assert!(geo.districts_of(c.name).count() > 0, "{}", c.name);
        }
    }

    #[test]
    fn everyday_spellings_resolve_and_refusals_name_the_choices() {
        let geo = Geography::get();
        assert_eq!(canonical(" 台北市 "), "臺北市");
        assert_eq!(canonical("台西鄉"), "臺西鄉");
        assert!(
            geo.check(Some(&canonical("台北市")), Some("中正區"))
                .is_ok()
        );
        assert!(geo.check(None, None).is_ok());
        assert!(geo.check(None, Some("板橋區")).is_ok());

        let e = geo
            .check(Some("台北市"), None)
            .expect_err("台 is not read here");
        assert_eq!(e.field, "county");
        assert_eq!(e.choices.len(), 22);
        assert!(e.choices.contains(&"臺北市"));

        let e = geo
            .check(Some("臺北市"), Some("板橋區"))
            .expect_err("another county");
        assert_eq!(e.field, "district");
        assert_eq!(e.choices.len(), 12, "{:?}", e.choices);
        assert!(e.choices.contains(&"中正區") && !e.choices.contains(&"板橋區"));
        assert!(e.to_string().contains("中正區"), "{e}");

        let e = geo
            .check(None, Some("無此區"))
            .expect_err("no such district");
        assert_eq!((e.field, e.choices.len()), ("district", 22));
    }
}

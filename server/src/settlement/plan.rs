//! `plan`: the ordered choice of whom a settlement run invites.

use super::registrant::Registrant;
use super::rules::Rules;

/// Where a registrant stands with the phase being settled, apart from the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// May be invited.
    Open,
    /// Already invited to this phase (counts as eligible, never invited twice).
    Invited,
    /// Holds a booking in another phase, has attended, or is done with this phase.
    Excluded,
}

/// What one settlement run decides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Registrants the rules admit, not excluded, including those already invited.
    pub eligible: u64,
    /// Of those, already invited before this run.
    pub already_invited: u64,
    /// Indices into the registrants, in invitation order.
    pub invite: Vec<u32>,
}

/// The order of invitation: priority category (lowest number first, none last), then
/// birth date (oldest first), then serial. Serials are unique, so the order is total
/// and the same inputs always give the same set.
fn order_key(r: &Registrant) -> u128 {
    let category = r.first_category().map_or(u128::from(u16::MAX), u128::from);
    // Julian days of living people are positive; the offset keeps the order if not.
    let birth = (i64::from(r.birth) + (1 << 31)) as u128;
    category << 96 | birth << 64 | u128::from(r.serial)
}

/// Chooses whom to invite: of the registrants the rules admit and whose standing is
/// `Open`, the first `target − invited` in [`order_key`] order. `invited` is the size
/// of the phase's invited set before this run, so running twice invites nobody twice
/// and a larger target later tops up from where the last run stopped.
pub fn plan(
    registrants: &[Registrant],
    rules: &Rules,
    standing: impl Fn(&Registrant) -> Standing,
    invited: u64,
    target: u64,
) -> Plan {
    let mut p = Plan::default();
    let mut open: Vec<(u128, u32)> = Vec::new();
    for (i, r) in registrants.iter().enumerate() {
        if !rules.admits(r) {
            continue;
        }
        match standing(r) {
            Standing::Excluded => continue,
            Standing::Invited => p.already_invited += 1,
            Standing::Open => open.push((order_key(r), i as u32)),
        }
        p.eligible += 1;
    }
    let need = usize::try_from(target.saturating_sub(invited)).unwrap_or(usize::MAX);
    if need < open.len() {
        // Only the first `need` are ordered: a linear partition, then a sort of those.
        open.select_nth_unstable(need);
        open.truncate(need);
    }
    open.sort_unstable();
    p.invite = open.into_iter().map(|(_, i)| i).collect();
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Eligibility, Phase};
    use crate::settlement::registrant::tests::{person, registration};

    fn phase(e: Eligibility) -> Phase {
        serde_json::from_value(serde_json::json!({
            "id": "02", "name": "第02期", "vaccines": ["AZ"],
            "opens_at": "2021-07-13T10:00:00+08:00", "closes_at": "2021-07-15T17:00:00+08:00",
            "eligibility": e,
        }))
        .expect("phase")
    }

    fn reg(n: u64, serial: u64, birth: &str, cats: &[u16], county: &str, v: &[&str]) -> Registrant {
        Registrant::new(&person(n, birth, cats), &registration(n, serial, county, v)).expect("live")
    }

    fn people() -> Vec<Registrant> {
        vec![
            reg(1, 10, "1980-01-01", &[], "臺北市", &["AZ"]),
            reg(2, 11, "1940-01-01", &[], "臺北市", &["AZ", "Moderna"]),
            reg(3, 12, "1990-01-01", &[2], "臺北市", &["AZ"]),
            reg(4, 13, "1990-01-01", &[1], "臺北市", &["AZ"]),
            reg(5, 14, "1940-01-01", &[], "臺北市", &["AZ"]),
            reg(6, 15, "1950-01-01", &[], "臺北市", &["Moderna"]),
        ]
    }

    fn chosen(rs: &[Registrant], p: &Plan) -> Vec<u64> {
        p.invite.iter().map(|&i| rs[i as usize].serial).collect()
    }

    #[test]
    fn order_is_category_then_oldest_then_serial() {
        let rs = people();
        let rules = Rules::of(&phase(Eligibility::default()));
        let p = plan(&rs, &rules, |_| Standing::Open, 0, 100);
        // 6 ticked Moderna only and the phase offers AZ: not eligible.
        assert_eq!(p.eligible, 5);
        assert_eq!(chosen(&rs, &p), vec![13, 12, 11, 14, 10]);
        let top3 = plan(&rs, &rules, |_| Standing::Open, 0, 3);
        assert_eq!(chosen(&rs, &top3), vec![13, 12, 11]);
    }

    #[test]
    fn a_second_run_invites_nobody_and_a_larger_target_tops_up() {
        let rs = people();
        let rules = Rules::of(&phase(Eligibility::default()));
        let first = plan(&rs, &rules, |_| Standing::Open, 0, 3);
        let invited: Vec<u64> = chosen(&rs, &first);
        let standing = |r: &Registrant| {
            if invited.contains(&r.serial) {
                Standing::Invited
            } else {
                Standing::Open
            }
        };
        let again = plan(&rs, &rules, standing, 3, 3);
        assert!(again.invite.is_empty());
        assert_eq!((again.eligible, again.already_invited), (5, 3));
        let top_up = plan(&rs, &rules, standing, 3, 4);
        assert_eq!(chosen(&rs, &top_up), vec![14]);
    }

    #[test]
    fn excluded_people_are_neither_eligible_nor_invited() {
        let rs = people();
        let rules = Rules::of(&phase(Eligibility::default()));
        let p = plan(
            &rs,
            &rules,
            |r| {
                if r.serial == 13 {
                    Standing::Excluded
                } else {
                    Standing::Open
                }
            },
            0,
            1,
        );
        assert_eq!((p.eligible, chosen(&rs, &p)), (4, vec![12]));
    }

    #[test]
    fn the_cutoff_instant_itself_is_too_late() {
        let rs = people();
        // registration() registers serial s at 1_625_000_000 + s.
        let cutoff = time::OffsetDateTime::from_unix_timestamp(1_625_000_012).expect("t");
        let rules = Rules::of(&phase(Eligibility {
            registered_before: Some(cutoff),
            ..Eligibility::default()
        }));
        let p = plan(&rs, &rules, |_| Standing::Open, 0, 100);
        assert_eq!(chosen(&rs, &p), vec![11, 10]);
    }

    #[test]
    fn brand_county_category_and_age_rules_narrow_the_set() {
        let mut rs = people();
        rs.push(reg(7, 16, "1930-01-01", &[], "金門縣", &["AZ"]));
        let only = |e: Eligibility| {
            let rules = Rules::of(&phase(e));
            chosen(&rs, &plan(&rs, &rules, |_| Standing::Open, 0, 100))
        };
        assert_eq!(
            only(Eligibility {
                counties: vec!["金門縣".into(), "連江縣".into(), "澎湖縣".into()],
                ..Eligibility::default()
            }),
            vec![16]
        );
        assert_eq!(
            only(Eligibility {
                categories: vec![2],
                ..Eligibility::default()
            }),
            vec![12]
        );
        assert_eq!(
            only(Eligibility {
                born_on_or_before: Some("1945-12-31".into()),
                born_on_or_after: Some("1935-01-01".into()),
                ..Eligibility::default()
            }),
            vec![11, 14]
        );
        // A rule naming only counties this geography lacks admits nobody, not everyone.
        assert_eq!(
            only(Eligibility {
                counties: vec!["東京都".into()],
                ..Eligibility::default()
            }),
            Vec::<u64>::new()
        );
    }
}

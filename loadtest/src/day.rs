//! The vaccination day: staff at each booked site check people in (by booking code, or
//! some by ID number) with a staff token for their site, a seeded few stay away, and the
//! day is closed out: unattended live bookings become no-shows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

use crate::answer::CheckedIn;
use crate::provision::post;
use crate::state::{Drill, Route, Sample};

/// What the day gave.
#[derive(Debug, Clone, Serialize)]
pub struct Day {
    pub date: String,
    /// Live acknowledged bookings on the day, and those the model keeps away.
    pub live_bookings: usize,
    pub stayed_away: usize,
    /// Check-ins answered 200 `attended`, by code and by ID number.
    pub checked_in: usize,
    pub by_code: usize,
    pub by_id_number: usize,
    /// Check-ins answered otherwise, by status and code: must stay empty.
    pub refused: BTreeMap<String, usize>,
    pub check_in_seconds: f64,
    /// The close-out's answer.
    pub closed_attended: u64,
    pub closed_no_show: u64,
    /// Persons the drill checked in.
    #[serde(skip)]
    pub attended: HashSet<usize>,
    /// Persons the model kept away.
    #[serde(skip)]
    pub no_shows: HashSet<usize>,
}

impl Day {
    pub fn refused_total(&self) -> usize {
        self.refused.values().sum()
    }
}

/// One check-in to make: the person, their site, and what staff type (the JSON body).
struct Visit {
    person: usize,
    site: String,
    body: String,
    by_id: bool,
}

/// Checks in every live acknowledged booking but the model's no-shows, spread over the
/// targets, then closes out the day.
pub async fn run(
    client: &reqwest::Client,
    targets: &[String],
    admin: &str,
    d: &Arc<Drill>,
) -> anyhow::Result<Day> {
    let params = &d.scenario.params;
    let acked = d.acked.lock().map(|a| a.clone()).unwrap_or_default();
    let live: Vec<_> = acked.iter().filter(|a| a.live).collect();
    let mut visits = Vec::new();
    let mut no_shows = HashSet::new();
    for a in &live {
        if params.no_show(a.person) {
            no_shows.insert(a.person);
            continue;
        }
        let by_id = params.checks_in_by_id(a.person);
        let body = if by_id {
            json!({"id_number": d.scenario.people[a.person].id.to_string()})
        } else {
            json!({"code": a.code})
        }
        .to_string();
        visits.push(Visit {
            person: a.person,
            site: a.site.clone(),
            body,
            by_id,
        });
    }
    // One staff token per site, as each site's staff would hold.
    let mut tokens = HashMap::new();
    for site in visits
        .iter()
        .map(|v| v.site.clone())
        .collect::<HashSet<_>>()
    {
        let t = post(
            client,
            format!("{}/v1/admin/tokens", targets[0]),
            admin,
            Some(json!({"scope": "staff", "site": site})),
        )
        .await?;
        let token = t["token"]
            .as_str()
            .context("a staff token answer has a token")?
            .to_string();
        tokens.insert(site, token);
    }
    let tokens = Arc::new(tokens);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let chunk = visits.len().div_ceil(32).max(1);
    let mut visits = visits.into_iter();
    for n in 0.. {
        let mine: Vec<Visit> = visits.by_ref().take(chunk).collect();
        if mine.is_empty() {
            break;
        }
        let (client, d, tokens) = (client.clone(), d.clone(), tokens.clone());
        let base = targets[n % targets.len()].clone();
        tasks.spawn(async move {
            let mut done = Vec::new();
            for v in mine {
                let at = Instant::now();
                let r = client
                    .post(format!("{base}/v1/sites/{}/check-ins", v.site))
                    .header("authorization", format!("Bearer {}", tokens[&v.site]))
                    .header("content-type", "application/json")
                    .body(v.body)
                    .send()
                    .await;
                let (status, body) = match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        (status, r.bytes().await.map(Vec::from).unwrap_or_default())
                    }
                    Err(_) => (0, Vec::new()),
                };
                let answer = crate::answer::read::<CheckedIn<'_>>(&body);
                let code = answer
                    .as_ref()
                    .and_then(|a| a.code)
                    .unwrap_or("")
                    .to_string();
                d.record(Sample {
                    at,
                    route: Route::CheckIn,
                    status,
                    latency_us: at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
                    code: (status >= 400).then(|| code.clone()),
                });
                let attended = status == 200 && answer.and_then(|a| a.status) == Some("attended");
                done.push((v.person, v.by_id, attended, format!("{status} {code}")));
            }
            done
        });
    }
    let mut day = Day {
        date: d.scenario.day.to_string(),
        live_bookings: live.len(),
        stayed_away: no_shows.len(),
        checked_in: 0,
        by_code: 0,
        by_id_number: 0,
        refused: BTreeMap::new(),
        check_in_seconds: 0.0,
        closed_attended: 0,
        closed_no_show: 0,
        attended: HashSet::new(),
        no_shows,
    };
    while let Some(r) = tasks.join_next().await {
        for (person, by_id, attended, answer) in r.context("a check-in task failed")? {
            if attended {
                day.checked_in += 1;
                *if by_id {
                    &mut day.by_id_number
                } else {
                    &mut day.by_code
                } += 1;
                day.attended.insert(person);
            } else {
                *day.refused.entry(answer.trim().to_string()).or_default() += 1;
            }
        }
    }
    day.check_in_seconds = started.elapsed().as_secs_f64();
    let closed = post(
        client,
        format!(
            "{}/v1/admin/phases/{}/close-out",
            targets[0], d.scenario.phase
        ),
        admin,
        Some(json!({"date": day.date})),
    )
    .await?;
    day.closed_attended = closed["attended"].as_u64().unwrap_or(0);
    day.closed_no_show = closed["no_show"].as_u64().unwrap_or(0);
    Ok(day)
}

//! Provisioning: the drill's calendar, insured persons and kiosk partner, loaded through
//! the admin API. Nobody is invited here: settlement decides that, after the
//! registration wave (see `announce`).

use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::model::Scenario;

/// Registry lines per request.
const REGISTRY_CHUNK: usize = 200_000;
/// The drill's kiosk partner.
pub const PARTNER: &str = "drill-kiosk";
/// Every drill person's card password.
pub const PASSWORD: &str = slotd::identity::population::DRILL_PASSWORD;

/// How long provisioning took.
#[derive(Debug, Clone, Serialize)]
pub struct Provisioning {
    pub slots: usize,
    pub calendar_seconds: f64,
    pub persons: usize,
    pub registry_seconds: f64,
    /// The kiosk partner's key.
    #[serde(skip)]
    pub partner_key: String,
}

pub async fn put(
    client: &reqwest::Client,
    url: String,
    admin: &str,
    content_type: &str,
    body: Vec<u8>,
) -> anyhow::Result<serde_json::Value> {
    let r = client
        .put(&url)
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .with_context(|| format!("PUT {url}"))?;
    if !r.status().is_success() {
        let status = r.status();
        bail!("PUT {url}: {status} {}", r.text().await.unwrap_or_default());
    }
    Ok(r.json().await.unwrap_or_default())
}

/// An admin `POST` with a JSON body (or none); answers the JSON reply.
pub async fn post(
    client: &reqwest::Client,
    url: String,
    admin: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let mut rb = client
        .post(&url)
        .header("authorization", format!("Bearer {admin}"));
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.with_context(|| format!("POST {url}"))?;
    if !r.status().is_success() {
        let status = r.status();
        bail!(
            "POST {url}: {status} {}",
            r.text().await.unwrap_or_default()
        );
    }
    r.json()
        .await
        .with_context(|| format!("POST {url}: the answer"))
}

/// An admin `GET`; answers the JSON reply.
pub async fn get(
    client: &reqwest::Client,
    url: String,
    admin: &str,
) -> anyhow::Result<serde_json::Value> {
    let r = client
        .get(&url)
        .header("authorization", format!("Bearer {admin}"))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !r.status().is_success() {
        let status = r.status();
        bail!("GET {url}: {status} {}", r.text().await.unwrap_or_default());
    }
    r.json()
        .await
        .with_context(|| format!("GET {url}: the answer"))
}

/// Loads the calendar (the phase not yet announced), the registry and the kiosk
/// partner, on `target`.
pub async fn provision(
    client: &reqwest::Client,
    target: &str,
    admin: &str,
    s: &Scenario,
) -> anyhow::Result<Provisioning> {
    let started = Instant::now();
    let calendar = serde_json::to_vec(&s.calendar)?;
    put(
        client,
        format!("{target}/v1/admin/calendar"),
        admin,
        "application/json",
        calendar,
    )
    .await?;
    let calendar_seconds = started.elapsed().as_secs_f64();
    // The insured persons: everyone's card password hashed once, with the least argon2id
    // cost, so that the drill's logins load the booking path, not the hashing (logins at
    // production cost are measured by scripts/bench-identity).
    let started = Instant::now();
    let cheap = slotd::identity::password::PasswordParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let hash = slotd::identity::password::hash(PASSWORD, cheap)
        .map_err(|e| anyhow::anyhow!("drill password hash: {e}"))?;
    for (c, chunk) in s.people.chunks(REGISTRY_CHUNK).enumerate() {
        let mut body = String::with_capacity(chunk.len() * 180);
        for (i, p) in chunk.iter().enumerate() {
            let line = serde_json::json!({
                "id_number": p.id.to_string(),
                "nhi_card": crate::state::Drill::card(c * REGISTRY_CHUNK + i),
                "birth_date": "1970-01-01",
                "password_hash": hash,
            });
            body.push_str(&line.to_string());
            body.push('\n');
        }
        put(
            client,
            format!("{target}/v1/admin/registry"),
            admin,
            "application/x-ndjson",
            body.into_bytes(),
        )
        .await?;
    }
    let registry_seconds = started.elapsed().as_secs_f64();
    let partner = put(
        client,
        format!("{target}/v1/admin/partners/{PARTNER}"),
        admin,
        "application/json",
        br#"{"name": "drill kiosks", "kind": "convenience-store", "rate_per_second": 100000}"#
            .to_vec(),
    )
    .await?;
    let partner_key = partner["key"]
        .as_str()
        .context("the partner answer has a key")?
        .to_string();
    Ok(Provisioning {
        slots: s.calendar.phases[0].slots.len(),
        calendar_seconds,
        persons: s.people.len(),
        registry_seconds,
        partner_key,
    })
}

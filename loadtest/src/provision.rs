//! Provisioning: the drill's calendar and invitations, loaded through the admin API.

use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::model::Scenario;

/// Invitations per request: NDJSON of 250,000 ids is about 3.5 MB.
const INVITATION_CHUNK: usize = 250_000;

/// How long provisioning took.
#[derive(Debug, Clone, Serialize)]
pub struct Provisioning {
    pub slots: usize,
    pub calendar_seconds: f64,
    pub invitations: usize,
    pub invitation_seconds: f64,
}

async fn put(
    client: &reqwest::Client,
    url: String,
    admin: &str,
    content_type: &str,
    body: Vec<u8>,
) -> anyhow::Result<()> {
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
    Ok(())
}

/// Loads the calendar, then invites everyone, on `target`.
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
    let started = Instant::now();
    for chunk in s.people.chunks(INVITATION_CHUNK) {
        let mut body = String::with_capacity(chunk.len() * 13);
        for p in chunk {
            body.push('"');
            body.push_str(&p.id.to_string());
            body.push_str("\"\n");
        }
        put(
            client,
            format!("{target}/v1/admin/phases/{}/invitations", s.phase),
            admin,
            "application/x-ndjson",
            body.into_bytes(),
        )
        .await?;
    }
    Ok(Provisioning {
        slots: s.calendar.phases[0].slots.len(),
        calendar_seconds,
        invitations: s.people.len(),
        invitation_seconds: started.elapsed().as_secs_f64(),
    })
}

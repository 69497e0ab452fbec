//! The Grafana dashboard queries only metrics that slotd exports.

use std::collections::BTreeSet;

/// Metric names in `text` (`slotd_` then lowercase letters and underscores).
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("slotd_") {
        let start = i + at;
        let end = bytes[start..]
            .iter()
            .position(|c| !(c.is_ascii_lowercase() || *c == b'_'))
            .map_or(text.len(), |n| start + n);
        out.insert(text[start..end].to_string());
        i = end;
    }
    out
}

#[test]
fn every_dashboard_query_names_an_exported_metric() {
    let dashboard = include_str!("../../grafana/slotd-overview.json");
    let doc: serde_json::Value = serde_json::from_str(dashboard).expect("the dashboard is JSON");
    let exprs: Vec<&str> = doc["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() > 10);
    let exported = names(include_str!("../src/metrics.rs"));
    for expr in exprs {
        for name in names(expr) {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                exported.contains(base),
                "{name} in {expr:?} is not exported by slotd"
            );
        }
    }
}

/// Rates use Grafana's `$__rate_interval`, which follows the scrape interval and the
/// zoom, rather than a fixed window that is empty at short scrapes or hides spikes.
#[test]
fn rates_follow_the_rate_interval() {
    let dashboard = include_str!("../../grafana/slotd-overview.json");
    let doc: serde_json::Value = serde_json::from_str(dashboard).expect("the dashboard is JSON");
    for p in doc["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or("");
            if expr.contains("rate(") {
                assert!(
                    expr.contains("[$__rate_interval]"),
                    "panel {}: {expr}",
                    p["title"]
                );
            }
        }
    }
}

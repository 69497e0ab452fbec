//! What a frontend meets first: the geography to choose from, the spellings people type,
//! refusals that name the valid choices, and the reference pages served at `/`.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::helpers::{spawn_app, spawn_app_with};

/// `臺北市` / `台北市` / `大安區`, percent-encoded.
const TAIPEI: &str = "%E8%87%BA%E5%8C%97%E5%B8%82";
const TAIPEI_EVERYDAY: &str = "%E5%8F%B0%E5%8C%97%E5%B8%82";
const DAAN: &str = "%E5%A4%A7%E5%AE%89%E5%8D%80";
/// `板橋區`, a district of 新北市.
const BANQIAO: &str = "%E6%9D%BF%E6%A9%8B%E5%8D%80";

#[tokio::test]
async fn geography_lists_every_district_with_its_sites_per_phase() {
    let app = spawn_app().await;
    let g = app.get("/v1/geography", None).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.headers["cache-control"], "public, max-age=60");
    let counties = g.body["counties"].as_array().expect("counties");
    assert_eq!(counties.len(), 22);
    let districts: usize = counties
        .iter()
        .map(|c| c["districts"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(districts, 371, "the whole district table");
    let taipei = counties
        .iter()
        .find(|c| c["name"] == "臺北市")
        .expect("臺北市");
    assert_eq!(taipei["name_en"], "Taipei City");
    let daan = taipei["districts"]
        .as_array()
        .expect("districts")
        .iter()
        .find(|d| d["name"] == "大安區")
        .expect("大安區");
    // S2 is the one site there: it has slots in P1, P3 and P4.
    assert_eq!(daan["sites"]["P1"], 1, "{daan}");
    assert_eq!(daan["sites"]["P3"], 1);
    assert_eq!(daan["sites"]["P4"], 1);
    let empty = counties
        .iter()
        .find(|c| c["name"] == "連江縣")
        .expect("連江縣");
    assert_eq!(
        empty["districts"][0]["sites"],
        serde_json::json!({}),
        "no sites, no phases"
    );
    assert_eq!(g.body["phases"][0], "P1");

    let again = app
        .send(
            Method::GET,
            "/v1/geography",
            None,
            None,
            &[("if-none-match", g.headers["etag"].to_str().expect("tag"))],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn everyday_spellings_find_the_same_sites_and_wrong_places_name_the_choices() {
    let app = spawn_app().await;
    let official = app
        .get(
            &format!("/v1/phases/P1/availability?county={TAIPEI}&district={DAAN}"),
            None,
        )
        .await;
    let everyday = app
        .get(
            &format!("/v1/phases/P1/availability?county={TAIPEI_EVERYDAY}&district={DAAN}"),
            None,
        )
        .await;
    assert_eq!(everyday.status, StatusCode::OK);
    assert_eq!(official.body["sites"], everyday.body["sites"]);
    assert_eq!(everyday.body["sites"].as_array().map(Vec::len), Some(1));

    let outside = app
        .get(
            &format!("/v1/phases/P1/availability?county={TAIPEI_EVERYDAY}&district={BANQIAO}"),
            None,
        )
        .await;
    assert_eq!(
        (outside.status, outside.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid-request")
    );
    assert_eq!(outside.body["field"], "district");
    let choices: Vec<&str> = outside.body["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(choices.len(), 12, "臺北市's districts: {choices:?}");
    assert!(choices.contains(&"大安區") && !choices.contains(&"板橋區"));
    assert!(
        outside.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("大安區")),
        "{}",
        outside.body
    );

    let atlantis = app
        .get("/v1/phases/P1/availability?county=Atlantis", None)
        .await;
    assert_eq!(atlantis.body["field"], "county");
    assert_eq!(atlantis.body["choices"].as_array().map(Vec::len), Some(22));
}

async fn raw(
    app: &super::helpers::TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{}{}", app.addr, path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .client
        .request(req.body(Full::new(Bytes::new())).expect("request"))
        .await
        .expect("answer");
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, bytes)
}

#[tokio::test]
async fn the_frontend_is_served_at_the_root_with_its_policy_and_can_be_turned_off() {
    let app = spawn_app().await;
    let (status, headers, body) = raw(&app, Method::GET, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().expect("csp");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let page = String::from_utf8_lossy(&body);
    assert!(page.contains("<html"), "{page}");
    // Nothing from another origin: the booking day depends on no third party.
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );

    let (same, _, _) = raw(&app, Method::GET, "/index.html", &[]).await;
    assert_eq!(same, StatusCode::OK);
    let tag = headers["etag"].to_str().expect("tag");
    let (revalidated, _, empty) = raw(&app, Method::GET, "/", &[("if-none-match", tag)]).await;
    assert_eq!((revalidated, empty.len()), (StatusCode::NOT_MODIFIED, 0));
    let (head, head_headers, head_body) = raw(&app, Method::HEAD, "/", &[]).await;
    assert_eq!((head, head_body.len()), (StatusCode::OK, 0));
    assert_eq!(head_headers["etag"], headers["etag"]);
    let (zipped, zh, _) = raw(&app, Method::GET, "/", &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(zipped, StatusCode::OK);
    assert_eq!(zh["content-encoding"], "br");

    for missing in ["/nope.js", "/../Cargo.toml", "/web/index.html"] {
        let (s, _, _) = raw(&app, Method::GET, missing, &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{missing}");
    }

    let off = spawn_app_with(|c| c.limits.web = false).await;
    let answer = off.get("/", None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::NOT_FOUND, "not-found")
    );
    assert_eq!(off.get("/v1/geography", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_example_calendar_loads_and_its_sites_are_found_by_county() {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/calendar.json"
    ))
    .expect("examples/calendar.json");
    let calendar: Value = serde_json::from_str(&raw).expect("json");
    let app = spawn_app().await;
    let loaded = app
        .admin(Method::PUT, "/v1/admin/calendar", Some(calendar))
        .await;
    assert_eq!(loaded.status, StatusCode::OK, "{}", loaded.body);
    let phases = app.get("/v1/phases", None).await;
    let ids: Vec<&str> = phases.body["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert!(ids.contains(&"02") && ids.contains(&"03"), "{ids:?}");
    let g = app.get("/v1/geography", None).await;
    let banqiao = g.body["counties"]
        .as_array()
        .expect("counties")
        .iter()
        .find(|c| c["name"] == "新北市")
        .and_then(|c| {
            c["districts"]
                .as_array()?
                .iter()
                .find(|d| d["name"] == "板橋區")
                .cloned()
        })
        .expect("板橋區");
    assert_eq!(banqiao["sites"], serde_json::json!({"02": 1, "03": 1}));
    let page = app
        .get(
            &format!("/v1/phases/02/availability?county={TAIPEI_EVERYDAY}"),
            None,
        )
        .await;
    assert_eq!(page.body["sites"][0]["name"], "臺大醫院", "{}", page.body);
}

//! `openapi.json` held against the code: the route table, its statuses and the error codes.

use std::collections::BTreeSet;

use serde_json::Value;
use slotd::http::{Code, OPENAPI, ROUTES};

/// The HTTP methods an OpenAPI path item can hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::from_str(OPENAPI).expect("openapi.json is valid JSON")
}

/// Every operation of the document as `(METHOD, path template, operation)`.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    let mut ops = Vec::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (key, op) in item {
            if METHODS.contains(&key.as_str()) {
                ops.push((key.to_ascii_uppercase(), path.clone(), op));
            }
        }
    }
    ops
}

/// The documented response statuses of one operation.
fn statuses(op: &Value) -> BTreeSet<String> {
    op["responses"]
        .as_object()
        .expect("every operation has `responses`")
        .keys()
        .cloned()
        .collect()
}

/// Every `$ref` (and discriminator mapping target) anywhere under `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r),
                    ("mapping", Value::Object(m)) => {
                        out.extend(m.values().filter_map(Value::as_str));
                    }
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// The codes an error response narrows `code` to, from `allOf: [Problem, {code: {enum}}]`.
fn response_codes(response: &Value) -> Vec<&str> {
    let schema = &response["content"]["application/problem+json"]["schema"];
    schema["allOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|part| part["properties"]["code"]["enum"].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn code_named(name: &str) -> Option<Code> {
    Code::ALL.into_iter().find(|c| c.as_str() == name)
}

#[test]
fn document_is_json_declaring_openapi_3_1() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("`openapi` is a string");
    assert!(
        version.starts_with("3.1."),
        "openapi version {version} is not 3.1.x"
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
}

#[test]
fn documented_operations_are_exactly_the_routes() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.template.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes missing from openapi.json: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
}

#[test]
fn each_route_documents_exactly_the_statuses_it_answers() {
    let doc = document();
    let ops = operations(&doc);
    for route in ROUTES {
        let (_, _, op) = ops
            .iter()
            .find(|(m, p, _)| m == route.method && p == route.template)
            .unwrap_or_else(|| panic!("{} {} is not documented", route.method, route.template));
        let expected: BTreeSet<String> = route.statuses.iter().map(u16::to_string).collect();
        assert_eq!(
            statuses(op),
            expected,
            "responses of {} {}",
            route.method,
            route.template
        );
    }
}

#[test]
fn problem_code_enum_is_exactly_every_code() {
    let doc = document();
    let documented: BTreeSet<&str> = doc["components"]["schemas"]["Problem"]["properties"]["code"]
        ["enum"]
        .as_array()
        .expect("Problem.code has an enum")
        .iter()
        .map(|v| v.as_str().expect("codes are strings"))
        .collect();
    let coded: BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(documented, coded);
}

#[test]
fn every_ref_resolves_to_an_existing_component() {
    let doc = document();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty(), "the document uses components");
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .filter(|p| p.starts_with("/components/"))
            .unwrap_or_else(|| panic!("{r} is not a local component reference"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

#[test]
fn error_responses_are_problems_whose_codes_answer_with_that_status() {
    let doc = document();
    for (method, path, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().expect("responses") {
            let status: u16 = status.parse().expect("statuses are numeric");
            if status < 400 {
                continue;
            }
            let content = response["content"].as_object();
            let types: Vec<&String> = content.into_iter().flat_map(|c| c.keys()).collect();
            assert_eq!(
                types,
                ["application/problem+json"],
                "{method} {path} {status} is not only application/problem+json"
            );
            let codes = response_codes(response);
            assert!(!codes.is_empty(), "{method} {path} {status} names no code");
            for name in codes {
                let code = code_named(name)
                    .unwrap_or_else(|| panic!("{method} {path} {status}: unknown code {name}"));
                assert!(
                    code.status().as_u16() == status
                        || code.also_answers().map(|s| s.as_u16()) == Some(status),
                    "{method} {path}: code {name} is documented under the wrong status"
                );
            }
        }
    }
}

#[test]
fn retryable_answers_document_retry_after() {
    let doc = document();
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let codes = response_codes(response);
            let retryable = matches!(status.as_str(), "429" | "503")
                || codes.contains(&Code::WindowNotOpen.as_str());
            if retryable {
                assert!(
                    response["headers"].get("Retry-After").is_some(),
                    "{method} {path} {status} lacks Retry-After"
                );
            }
        }
    }
}

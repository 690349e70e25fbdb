use crate::support::App;
use axum::http::StatusCode;

/// Every route the router answers, as (method, OpenAPI path): the access
/// table the role matrix and docs/roles.md come from, so no route can be
/// missing from either.
fn routes() -> Vec<(String, &'static str)> {
    modelops_server::access::endpoints().into_iter().map(|e| (e.method.to_lowercase(), e.path)).collect()
}

#[tokio::test]
async fn the_document_lists_every_route_with_its_schemas() {
    let app = App::new().await;
    let answer = app.get("/api/v1/openapi.json").await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = &answer.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let routes = routes();
    let mut documented = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys().filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str())) {
            documented += 1;
            assert!(routes.iter().any(|(m, p)| m == method && p == path), "missing from the access table: {method} {path}");
        }
    }
    assert_eq!(documented, routes.len());
    for (method, path) in &routes {
        let (method, path) = (method.as_str(), path);
        let op = &paths[*path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let responses = op["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{method} {path} documents no response");
        if path.starts_with("/api/v1/") && *path != "/api/v1/openapi.json" {
            let error = responses.iter().find(|(code, _)| code.starts_with('4')).map(|(_, r)| r);
            let schema = &error.unwrap_or_else(|| panic!("{method} {path} documents no 4xx"))["content"]["application/json"]["schema"];
            assert_eq!(schema["$ref"], "#/components/schemas/ErrorBody", "{method} {path}");
        }
    }
    for schema in ["CreateModelRequest", "ModelResponse", "VersionResponse", "CreateVersionRequest", "ErrorBody", "VerifyResponse"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema} missing");
    }
    // Requests refuse unknown fields, and the document says so.
    assert_eq!(doc["components"]["schemas"]["CreateModelRequest"]["additionalProperties"], false);
}

/// Every `$ref` in `value`, found without recursion.
fn refs(value: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_string());
                }
                stack.extend(map.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

/// Found by schemathesis: `direction` and `order_by` referenced schemas the
/// document did not define, so clients and fuzzers could not resolve them.
#[tokio::test]
async fn every_schema_reference_resolves() {
    let app = App::new().await;
    let doc = app.get("/api/v1/openapi.json").await.body;
    let all = refs(&doc);
    assert!(all.iter().any(|r| r == "#/components/schemas/Direction"), "{all:?}");
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "{r} does not resolve");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = App::new().await;
    assert_eq!(app.get("/healthz").await.body["status"], "ok");
    assert_eq!(app.get("/readyz").await.body["status"], "ok");
}

/// Found by schemathesis (positive-data acceptance): the document said any
/// string or integer would do for `name`, `version`, `alias`, `key` and
/// `page_size`, so most "valid" requests it generated were refused. The
/// document now states the rules.
#[tokio::test]
async fn parameters_state_the_rules_the_server_applies() {
    let app = App::new().await;
    let doc = app.get("/api/v1/openapi.json").await.body;
    let params = doc["paths"]["/api/v1/models/{name}/versions/{version}/tags/{key}"]["put"]["parameters"].as_array().unwrap().clone();
    let schema = |name: &str| params.iter().find(|p| p["name"] == name).unwrap()["schema"].clone();
    assert_eq!(schema("version")["minimum"], 1);
    assert_eq!(schema("name")["maxLength"], 128);
    assert!(schema("name")["pattern"].as_str().unwrap().contains('/'));
    assert!(schema("key")["pattern"].as_str().unwrap().contains('='));
    let alias = &doc["paths"]["/api/v1/models/{name}/aliases/{alias}"]["get"]["parameters"][1];
    assert_eq!(alias["name"], "alias");
    assert!(alias["schema"]["pattern"].as_str().unwrap().starts_with("^(?!"));
    let list = doc["paths"]["/api/v1/models"]["get"]["parameters"].as_array().unwrap();
    let page_size = list.iter().find(|p| p["name"] == "page_size").unwrap();
    assert_eq!((page_size["schema"]["minimum"].clone(), page_size["schema"]["maximum"].clone()), (1.into(), 1000.into()));
    let name = &doc["components"]["schemas"]["CreateModelRequest"]["properties"]["name"];
    assert_eq!(name["minLength"], 1);
    assert!(name["description"].as_str().unwrap().starts_with("Unique"));
    for request in ["CreateModelRequest", "CreateVersionRequest"] {
        let keys = &doc["components"]["schemas"][request]["properties"]["tags"]["propertyNames"];
        assert_eq!(keys["maxLength"], 250, "{request}");
    }
}

//! The REST API over the file storage: every endpoint, its answers and its error codes.

use crate::{router, AppState, FileStorage, Storage, StorageFuture, CONTENT_TYPE};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use porch_schemas::{EmbeddedRegistry, RegistryRecord, RegistryState, SchemaRegistry};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;

const V1: &str =
    r#"{"type":"record","name":"Offer","namespace":"t","fields":[{"name":"sku","type":"string"}]}"#;
const V2: &str = r#"{"type":"record","name":"Offer","namespace":"t","fields":[{"name":"sku","type":"string"},{"name":"price","type":["null","long"],"default":null}]}"#;
/// Adds a field with no default: old data cannot be read with it.
const V2_BREAKING: &str = r#"{"type":"record","name":"Offer","namespace":"t","fields":[{"name":"sku","type":"string"},{"name":"price","type":"long"}]}"#;

fn app() -> Router {
    router(AppState::new(Arc::new(FileStorage::in_memory())))
}

struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// Asserts a Confluent error answer.
    fn error(&self, status: StatusCode, code: u32) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json()["error_code"], code, "{}", self.text);
        assert!(self.json()["message"].is_string());
        assert_eq!(self.content_type, CONTENT_TYPE);
    }
}

async fn call(app: &Router, method: Method, uri: &str, body: Option<Value>) -> Answer {
    call_as(app, method, uri, body, CONTENT_TYPE).await
}

async fn call_as(
    app: &Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
    content_type: &str,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", content_type);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        content_type,
        text: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn register(app: &Router, subject: &str, schema: &str) -> Answer {
    call(
        app,
        Method::POST,
        &format!("/subjects/{subject}/versions"),
        Some(json!({ "schema": schema })),
    )
    .await
}

fn ok(a: &Answer) -> Value {
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.content_type, CONTENT_TYPE);
    a.json()
}

#[tokio::test]
async fn registering_gives_one_global_id_per_schema() {
    let app = app();
    assert_eq!(
        ok(&register(&app, "offer.events-t.Offer", V1).await),
        json!({"id": 1})
    );
    assert_eq!(
        ok(&register(&app, "offer.events-t.Offer", V1).await),
        json!({"id": 1})
    );
    // What real clients send: plain JSON content type, schemaType and empty references.
    let again = call_as(
        &app,
        Method::POST,
        "/subjects/other-t.Offer/versions?normalize=false",
        Some(json!({"schema": V1, "schemaType": "AVRO", "references": []})),
        "application/json",
    )
    .await;
    assert_eq!(ok(&again), json!({"id": 1}), "ids are global");
    assert_eq!(
        ok(&register(&app, "offer.events-t.Offer", V2).await),
        json!({"id": 2})
    );
    assert_eq!(
        ok(&call(
            &app,
            Method::GET,
            "/subjects/offer.events-t.Offer/versions",
            None
        )
        .await),
        json!([1, 2])
    );
    // An older version is found, not registered again.
    assert_eq!(
        ok(&register(&app, "offer.events-t.Offer", V1).await),
        json!({"id": 1})
    );
    assert_eq!(
        ok(&call(
            &app,
            Method::GET,
            "/subjects/offer.events-t.Offer/versions",
            None
        )
        .await),
        json!([1, 2])
    );
}

#[tokio::test]
async fn schemas_by_id() {
    let app = app();
    register(&app, "a", V1).await;
    register(&app, "b", V1).await;
    assert_eq!(
        ok(&call(&app, Method::GET, "/schemas/ids/1", None).await),
        json!({ "schema": V1 })
    );
    assert_eq!(
        ok(&call(&app, Method::GET, "/schemas/ids/1?subject=a", None).await),
        json!({ "schema": V1 })
    );
    let raw = call(&app, Method::GET, "/schemas/ids/1/schema", None).await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.text, V1);
    assert_eq!(
        ok(&call(&app, Method::GET, "/schemas/ids/1/versions", None).await),
        json!([{"subject": "a", "version": 1}, {"subject": "b", "version": 1}])
    );
    assert_eq!(
        ok(&call(&app, Method::GET, "/schemas/ids/1/subjects", None).await),
        json!(["a", "b"])
    );
    for uri in [
        "/schemas/ids/2",
        "/schemas/ids/x",
        "/schemas/ids/2/versions",
        "/schemas/ids/2/subjects",
        "/schemas/ids/2/schema",
    ] {
        call(&app, Method::GET, uri, None)
            .await
            .error(StatusCode::NOT_FOUND, 40403);
    }
    assert_eq!(
        ok(&call(&app, Method::GET, "/schemas/types", None).await),
        json!(["AVRO"])
    );
}

#[tokio::test]
async fn subjects_and_versions() {
    let app = app();
    assert_eq!(
        ok(&call(&app, Method::GET, "/subjects", None).await),
        json!([])
    );
    register(&app, "offer.events-t.Offer", V1).await;
    register(&app, "offer.events-t.Offer", V2).await;
    register(&app, "product.events-t.Offer", V1).await;
    assert_eq!(
        ok(&call(&app, Method::GET, "/subjects", None).await),
        json!(["offer.events-t.Offer", "product.events-t.Offer"])
    );
    assert_eq!(
        ok(&call(&app, Method::GET, "/subjects?subjectPrefix=product.", None).await),
        json!(["product.events-t.Offer"])
    );
    let v1 = json!({"subject": "offer.events-t.Offer", "version": 1, "id": 1, "schema": V1});
    let v2 = json!({"subject": "offer.events-t.Offer", "version": 2, "id": 2, "schema": V2});
    let base = "/subjects/offer.events-t.Offer/versions";
    assert_eq!(
        ok(&call(&app, Method::GET, &format!("{base}/1"), None).await),
        v1
    );
    assert_eq!(
        ok(&call(&app, Method::GET, &format!("{base}/2"), None).await),
        v2
    );
    assert_eq!(
        ok(&call(&app, Method::GET, &format!("{base}/latest"), None).await),
        v2
    );
    assert_eq!(
        ok(&call(&app, Method::GET, &format!("{base}/-1"), None).await),
        v2
    );
    let raw = call(&app, Method::GET, &format!("{base}/1/schema"), None).await;
    assert_eq!((raw.status, raw.text.as_str()), (StatusCode::OK, V1));
    // A percent-encoded subject is the same subject.
    assert_eq!(
        ok(&call(
            &app,
            Method::GET,
            "/subjects/offer.events-t%2EOffer/versions/1",
            None
        )
        .await),
        v1
    );

    call(&app, Method::GET, &format!("{base}/3"), None)
        .await
        .error(StatusCode::NOT_FOUND, 40402);
    for bad in ["0", "x", "4294967296"] {
        call(&app, Method::GET, &format!("{base}/{bad}"), None)
            .await
            .error(StatusCode::UNPROCESSABLE_ENTITY, 42202);
    }
    for uri in [
        "/subjects/nope/versions",
        "/subjects/nope/versions/1",
        "/subjects/nope/versions/latest",
    ] {
        call(&app, Method::GET, uri, None)
            .await
            .error(StatusCode::NOT_FOUND, 40401);
    }
}

#[tokio::test]
async fn looking_a_schema_up() {
    let app = app();
    register(&app, "s", V1).await;
    register(&app, "s", V2).await;
    // Whitespace and key order do not matter; the stored text is answered.
    let reordered = r#"{ "namespace": "t", "name": "Offer", "type": "record",
        "fields": [ { "type": "string", "name": "sku" } ] }"#;
    let found = call(
        &app,
        Method::POST,
        "/subjects/s",
        Some(json!({ "schema": reordered })),
    )
    .await;
    assert_eq!(
        ok(&found),
        json!({"subject": "s", "version": 1, "id": 1, "schema": V1})
    );
    call(
        &app,
        Method::POST,
        "/subjects/s",
        Some(json!({ "schema": V2_BREAKING })),
    )
    .await
    .error(StatusCode::NOT_FOUND, 40403);
    call(
        &app,
        Method::POST,
        "/subjects/nope",
        Some(json!({ "schema": V1 })),
    )
    .await
    .error(StatusCode::NOT_FOUND, 40401);
    call(
        &app,
        Method::POST,
        "/subjects/s",
        Some(json!({ "schema": "{" })),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, 42201);
}

#[tokio::test]
async fn what_cannot_be_registered() {
    let app = app();
    register(&app, "s", V1).await;
    let refused = register(&app, "s", V2_BREAKING).await;
    refused.error(StatusCode::CONFLICT, 409);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("incompatible with an earlier schema for subject \"s\""),
        "{}",
        refused.text
    );
    let cases = [
        (
            json!({"schema": "{\"type\":\"record\"}"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            json!({"schema": "not json"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            json!({"schema": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY, 42201),
        (
            json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (
            json!({"schema": V2, "references": [{"name": "x", "subject": "y", "version": 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        ),
        (json!("just a string"), StatusCode::BAD_REQUEST, 400),
    ];
    for (body, status, code) in cases {
        call(
            &app,
            Method::POST,
            "/subjects/s/versions",
            Some(body.clone()),
        )
        .await
        .error(status, code);
    }
    assert_eq!(
        ok(&call(&app, Method::GET, "/subjects/s/versions", None).await),
        json!([1]),
        "nothing refused was registered"
    );
}

#[tokio::test]
async fn compatibility_checks() {
    let app = app();
    register(&app, "s", V1).await;
    let check = |uri: &'static str, schema: &'static str| {
        let app = app.clone();
        async move { call(&app, Method::POST, uri, Some(json!({ "schema": schema }))).await }
    };
    assert_eq!(
        ok(&check("/compatibility/subjects/s/versions/latest", V2).await),
        json!({"is_compatible": true, "messages": []})
    );
    let refused = ok(&check("/compatibility/subjects/s/versions/1", V2_BREAKING).await);
    assert_eq!(refused["is_compatible"], false);
    assert!(
        !refused["messages"].as_array().unwrap().is_empty(),
        "{refused}"
    );
    let refused = ok(&check("/compatibility/subjects/s/versions", V2_BREAKING).await);
    assert_eq!(refused["is_compatible"], false);
    // Nothing to be incompatible with.
    assert_eq!(
        ok(&check("/compatibility/subjects/new/versions/latest", V2_BREAKING).await)
            ["is_compatible"],
        true
    );
    assert_eq!(
        ok(&check("/compatibility/subjects/new/versions", V2_BREAKING).await)["is_compatible"],
        true
    );
    check("/compatibility/subjects/new/versions/1", V2)
        .await
        .error(StatusCode::NOT_FOUND, 40401);
    check("/compatibility/subjects/s/versions/9", V2)
        .await
        .error(StatusCode::NOT_FOUND, 40402);
    check("/compatibility/subjects/s/versions/x", V2)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, 42202);
    check("/compatibility/subjects/s/versions/latest", "{")
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, 42201);
}

#[tokio::test]
async fn compatibility_levels() {
    let app = app();
    assert_eq!(
        ok(&call(&app, Method::GET, "/config", None).await),
        json!({"compatibilityLevel": "BACKWARD_TRANSITIVE"})
    );
    assert_eq!(
        ok(&call(
            &app,
            Method::PUT,
            "/config",
            Some(json!({"compatibility": "full"}))
        )
        .await),
        json!({"compatibility": "FULL"})
    );
    assert_eq!(
        ok(&call(&app, Method::GET, "/config", None).await),
        json!({"compatibilityLevel": "FULL"})
    );
    call(
        &app,
        Method::PUT,
        "/config",
        Some(json!({"compatibility": "SIDEWAYS"})),
    )
    .await
    .error(StatusCode::UNPROCESSABLE_ENTITY, 42203);
    call(&app, Method::PUT, "/config", Some(json!({})))
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY, 42203);

    call(&app, Method::GET, "/config/s", None)
        .await
        .error(StatusCode::NOT_FOUND, 40408);
    assert_eq!(
        ok(&call(&app, Method::GET, "/config/s?defaultToGlobal=true", None).await),
        json!({"compatibilityLevel": "FULL"})
    );
    // A subject's level applies to it alone, and may be set before the subject exists.
    let none = json!({"compatibility": "NONE"});
    assert_eq!(
        ok(&call(&app, Method::PUT, "/config/s", Some(none.clone())).await),
        none
    );
    assert_eq!(
        ok(&call(&app, Method::GET, "/config/s", None).await),
        json!({"compatibilityLevel": "NONE"})
    );
    register(&app, "s", V1).await;
    assert_eq!(
        ok(&register(&app, "s", V2_BREAKING).await),
        json!({"id": 2})
    );
    register(&app, "t", V1).await;
    register(&app, "t", V2_BREAKING)
        .await
        .error(StatusCode::CONFLICT, 409);
    // Confluent's GET key is accepted on PUT too.
    assert_eq!(
        ok(&call(
            &app,
            Method::PUT,
            "/config/t",
            Some(json!({"compatibilityLevel": "BACKWARD"}))
        )
        .await),
        json!({"compatibility": "BACKWARD"})
    );
    assert_eq!(
        ok(&call(&app, Method::GET, "/mode", None).await),
        json!({"mode": "READWRITE"})
    );
}

#[tokio::test]
async fn operations_endpoints() {
    let app = app();
    register(&app, "s", V1).await;
    let health = call(&app, Method::GET, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = call(&app, Method::GET, "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    call(&app, Method::GET, "/nope", None)
        .await
        .error(StatusCode::NOT_FOUND, 404);
    call(&app, Method::DELETE, "/subjects", None)
        .await
        .error(StatusCode::METHOD_NOT_ALLOWED, 405);
    assert_eq!(ok(&call(&app, Method::GET, "/", None).await), json!({}));
    let metrics = call(&app, Method::GET, "/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.content_type.starts_with("text/plain"));
    for line in [
        "porch_registry_schemas 1",
        "porch_registry_subjects 1",
        "porch_registry_ready 1",
        r#"porch_registry_registrations_total{outcome="new"} 1"#,
        r#"porch_registry_http_requests_total{method="POST",route="/subjects/{subject}/versions",status="200"} 1"#,
        r#"porch_registry_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
    ] {
        assert!(
            metrics.text.lines().any(|l| l == line),
            "{line} in\n{}",
            metrics.text
        );
    }
}

/// A storage still reading its records.
struct CatchingUp;

impl Storage for CatchingUp {
    fn snapshot(&self) -> Arc<RegistryState> {
        Arc::default()
    }
    fn append(&self, _: RegistryRecord) -> StorageFuture<'_> {
        Box::pin(async { unreachable!("nothing is written before the storage is ready") })
    }
    fn is_ready(&self) -> bool {
        false
    }
    fn describe(&self) -> String {
        "a topic".into()
    }
}

#[tokio::test]
async fn nothing_is_answered_from_a_storage_not_read_to_its_end() {
    let app = router(AppState::new(Arc::new(CatchingUp)));
    assert_eq!(
        call(&app, Method::GET, "/healthz", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Method::GET, "/readyz", None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    call(&app, Method::GET, "/subjects", None)
        .await
        .error(StatusCode::SERVICE_UNAVAILABLE, 50003);
    register(&app, "s", V1)
        .await
        .error(StatusCode::SERVICE_UNAVAILABLE, 50003);
}

#[tokio::test]
async fn concurrent_registrations_never_share_an_id() {
    let app = app();
    let schemas: Vec<String> = (0..16)
        .map(|i| format!(r#"{{"type":"record","name":"R{i}","fields":[]}}"#))
        .collect();
    let mut tasks = Vec::new();
    for (i, schema) in schemas.iter().enumerate() {
        for copy in 0..2 {
            let (app, schema) = (app.clone(), schema.clone());
            tasks.push(tokio::spawn(async move {
                let a = register(&app, &format!("s{i}-{copy}"), &schema).await;
                (i, ok(&a)["id"].as_u64().unwrap())
            }));
        }
    }
    let mut ids = std::collections::BTreeMap::new();
    for t in tasks {
        let (i, id) = t.await.unwrap();
        assert_eq!(*ids.entry(i).or_insert(id), id, "one schema, one id");
    }
    let distinct: std::collections::BTreeSet<_> = ids.values().collect();
    assert_eq!(
        distinct.len(),
        schemas.len(),
        "distinct schemas, distinct ids"
    );
}

#[tokio::test]
async fn the_file_keeps_ids_and_versions_and_is_the_embedded_registry() {
    let dir = std::env::temp_dir().join(format!("porch-registry-api-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    {
        let app = router(AppState::new(Arc::new(FileStorage::open(&dir).unwrap())));
        register(&app, "s", V1).await;
        register(&app, "s", V2).await;
        call(
            &app,
            Method::PUT,
            "/config/t",
            Some(json!({"compatibility": "NONE"})),
        )
        .await;
    }
    let app = router(AppState::new(Arc::new(FileStorage::open(&dir).unwrap())));
    assert_eq!(
        ok(&call(&app, Method::GET, "/subjects/s/versions/latest", None).await),
        json!({"subject": "s", "version": 2, "id": 2, "schema": V2})
    );
    assert_eq!(
        ok(&call(&app, Method::GET, "/config/t", None).await),
        json!({"compatibilityLevel": "NONE"})
    );
    assert_eq!(
        ok(&register(&app, "u", V2_BREAKING).await),
        json!({"id": 3})
    );
    drop(app);
    // `porch up` opens the same file and sees the same ids.
    let embedded = EmbeddedRegistry::open(&dir).unwrap();
    assert_eq!(embedded.register("s", V2).unwrap(), 2);
    assert_eq!(
        embedded.schema_by_id(3).unwrap().as_deref(),
        Some(V2_BREAKING)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

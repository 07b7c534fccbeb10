//! The registry stored in a compacted topic of a real Kafka broker: `PORCH_KAFKA`, default
//! 127.0.0.1:9092 (`scripts/engines up kafka`). The tests wait a few minutes for the broker to
//! answer and fail, not skip, if it never does.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use porch_registry::{
    open_storage, router, AppState, KafkaStorage, RegistryServerConfig, Storage, StorageError,
};
use porch_topics::kafka_admin::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const V1: &str =
    r#"{"type":"record","name":"Offer","namespace":"t","fields":[{"name":"sku","type":"string"}]}"#;
const V2: &str = r#"{"type":"record","name":"Offer","namespace":"t","fields":[{"name":"sku","type":"string"},{"name":"price","type":["null","long"],"default":null}]}"#;
const OTHER: &str = r#"{"type":"record","name":"Other","namespace":"t","fields":[]}"#;

fn bootstrap() -> String {
    std::env::var("PORCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn cluster(bootstrap: String) -> KafkaConfig {
    KafkaConfig {
        bootstrap,
        ..KafkaConfig::default()
    }
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .expect("admin client")
}

/// Waits for the broker (`KafkaConfig::wait_for_broker`); panics if none answers.
async fn wait_for_kafka() {
    tokio::task::spawn_blocking(|| {
        KafkaConfig::from_env()
            .expect("Kafka client properties")
            .wait_for_broker()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"));
}

fn random_topic() -> String {
    format!("_porch_schemas_test_{}", uuid::Uuid::now_v7().simple())
}

async fn delete_topic(topic: &str) {
    let _ = admin().delete_topics(&[topic], &AdminOptions::new()).await;
}

async fn ready_storage(topic: &str) -> Arc<dyn Storage> {
    let storage = open_storage(&RegistryServerConfig {
        kafka: Some(cluster(bootstrap())),
        topic: topic.into(),
        ..Default::default()
    })
    .await
    .expect("the registry opens its topic");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !storage.is_ready() {
        assert!(
            Instant::now() < deadline,
            "the registry never caught up with {topic}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    storage
}

async fn call(app: &Router, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn register(app: &Router, subject: &str, schema: &str) -> Value {
    let (status, body) = call(
        app,
        Method::POST,
        &format!("/subjects/{subject}/versions"),
        Some(json!({ "schema": schema })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["id"].clone()
}

/// Everything the registry answers about its subjects, ids and levels.
async fn dump(app: &Router) -> Value {
    let (_, subjects) = call(app, Method::GET, "/subjects", None).await;
    let mut out = serde_json::Map::new();
    for subject in subjects.as_array().unwrap() {
        let subject = subject.as_str().unwrap();
        let (_, versions) = call(
            app,
            Method::GET,
            &format!("/subjects/{subject}/versions"),
            None,
        )
        .await;
        let mut described = Vec::new();
        for v in versions.as_array().unwrap() {
            let (_, d) = call(
                app,
                Method::GET,
                &format!("/subjects/{subject}/versions/{v}"),
                None,
            )
            .await;
            described.push(d);
        }
        let (_, config) = call(app, Method::GET, &format!("/config/{subject}"), None).await;
        out.insert(
            subject.into(),
            json!({"versions": described, "config": config}),
        );
    }
    let (_, global) = call(app, Method::GET, "/config", None).await;
    out.insert("(global config)".into(), global);
    Value::Object(out)
}

#[tokio::test]
async fn ids_and_versions_survive_a_restart() {
    wait_for_kafka().await;
    let topic = random_topic();

    let first = router(AppState::new(ready_storage(&topic).await));
    assert_eq!(register(&first, "a", V1).await, 1);
    assert_eq!(register(&first, "a", V2).await, 2);
    assert_eq!(register(&first, "b", V1).await, 1, "ids are global");
    assert_eq!(
        register(&first, "a", V1).await,
        1,
        "registering again changes nothing"
    );
    let (status, _) = call(
        &first,
        Method::PUT,
        "/config/b",
        Some(json!({"compatibility": "NONE"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &first,
        Method::PUT,
        "/config",
        Some(json!({"compatibility": "FULL_TRANSITIVE"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let before = dump(&first).await;
    assert_eq!(
        before["a"]["versions"].as_array().unwrap().len(),
        2,
        "{before}"
    );
    assert_eq!(before["b"]["config"], json!({"compatibilityLevel": "NONE"}));
    drop(first);

    let second = router(AppState::new(ready_storage(&topic).await));
    assert_eq!(
        dump(&second).await,
        before,
        "the topic gives back the same registry"
    );
    assert_eq!(register(&second, "a", V2).await, 2);
    assert_eq!(
        register(&second, "c", OTHER).await,
        3,
        "new ids continue after the old ones"
    );
    let (status, body) = call(&second, Method::GET, "/schemas/ids/3", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "schema": OTHER })));

    // The topic: one partition, compacted, records keyed as Confluent keys them.
    let configs = admin()
        .describe_configs([&ResourceSpecifier::Topic(&topic)], &AdminOptions::new())
        .await
        .unwrap();
    let config = configs.into_iter().next().unwrap().unwrap();
    assert_eq!(
        config.get("cleanup.policy").unwrap().value.as_deref(),
        Some("compact")
    );
    let first_record = {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", bootstrap())
                .set("group.id", "porch-registry-test")
                .set("enable.auto.commit", "false")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Beginning)
                .unwrap();
            consumer.assign(&tpl).unwrap();
            let md = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .unwrap();
            assert_eq!(md.topics()[0].partitions().len(), 1);
            let message = consumer
                .poll(Duration::from_secs(10))
                .expect("the topic has records")
                .unwrap();
            (
                String::from_utf8(message.key().unwrap().to_vec()).unwrap(),
                serde_json::from_slice::<Value>(message.payload().unwrap()).unwrap(),
            )
        })
        .await
        .unwrap()
    };
    assert_eq!(
        first_record.0,
        r#"{"keytype":"SCHEMA","subject":"a","version":1,"magic":1}"#
    );
    assert_eq!(
        first_record.1,
        json!({"subject": "a", "version": 1, "id": 1, "schema": V1, "deleted": false})
    );
    drop(second);
    delete_topic(&topic).await;
}

#[tokio::test]
async fn a_topic_that_cannot_hold_the_registry_is_refused() {
    wait_for_kafka().await;
    let partitioned = random_topic();
    let deleting = random_topic();
    let topics = [
        NewTopic::new(&partitioned, 3, TopicReplication::Fixed(1)).set("cleanup.policy", "compact"),
        NewTopic::new(&deleting, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "delete"),
    ];
    for created in admin()
        .create_topics(&topics, &AdminOptions::new())
        .await
        .unwrap()
    {
        created.unwrap();
    }
    for topic in [&partitioned, &deleting] {
        match KafkaStorage::open(&cluster(bootstrap()), topic).await {
            Err(StorageError::Topic { reason, .. }) => eprintln!("{topic}: {reason}"),
            Err(e) => panic!("{topic}: unexpected error {e}"),
            Ok(_) => panic!("{topic} was accepted"),
        }
        delete_topic(topic).await;
    }
}

#[tokio::test]
async fn an_unreachable_cluster_is_an_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opened = tokio::time::timeout(
        Duration::from_secs(60),
        KafkaStorage::open(&cluster(format!("127.0.0.1:{port}")), "_porch_schemas"),
    )
    .await
    .expect("opening gives up by itself");
    assert!(opened.is_err());
}

//! porch's own codec against the server, over HTTP: what every distributed role does at start.

use porch_registry::{serve_on, FileStorage};
use porch_schemas::{
    Codec, CommandId, CommandRejected, Event, EventEnvelope, EventRecord, ProductId,
    RegistryClient, SchemaRegistry, TenantId,
};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codecs_share_ids_through_the_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(
        listener,
        Arc::new(FileStorage::in_memory()),
        async move {
            let _ = stopped.await;
        },
    ));

    let record = EventRecord {
        envelope: EventEnvelope {
            event_id: "e-1".into(),
            tenant: TenantId::parse("acme").unwrap(),
            aggregate_id: "p-1".into(),
            aggregate_version: 1,
            occurred_at: 1_700_000_000_000_000,
            causation_id: "c".into(),
            correlation_id: "corr".into(),
        },
        event: Event::from(CommandRejected {
            command_id: CommandId::generate(),
            command_type: "CreateOffer".into(),
            product_id: ProductId::generate(),
            reasons: vec![],
        }),
    };
    // The codec and its client block: run them where blocking is allowed, as roles do.
    let url2 = url.clone();
    let (bytes, decoded, schema) = tokio::task::spawn_blocking(move || {
        let writer = Codec::with_registry(Arc::new(RegistryClient::new(&url2).unwrap()));
        writer
            .register_topic("offer.events", Event::FULL_NAMES)
            .unwrap();
        let bytes = writer.encode_event("offer.events", &record).unwrap();
        // A reader that has never seen the schema fetches it by id.
        let reader = Codec::with_registry(Arc::new(RegistryClient::new(&url2).unwrap()));
        let decoded = reader.decode_event(&bytes).unwrap();
        assert_eq!(decoded, record);
        let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
        let schema = RegistryClient::new(&url2)
            .unwrap()
            .schema_by_id(id)
            .unwrap();
        (bytes, decoded, schema)
    })
    .await
    .unwrap();
    assert_eq!(bytes[0], 0);
    assert_eq!(decoded.event.full_name(), "porch.outcome.CommandRejected");
    let schema = schema.expect("the id is the server's");
    assert!(
        schema.contains("timestamp-micros"),
        "logical types reach Confluent consumers: {schema}"
    );

    // Calling the blocking client from a runtime thread must not panic (it only blocks).
    let client = RegistryClient::new(&url).unwrap();
    assert!(client.schema_by_id(1).unwrap().is_some());
    assert_eq!(client.schema_by_id(9999).unwrap(), None);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

//! Confluent's Python client (`confluent-kafka`) against the server: registers, looks up,
//! checks compatibility, serialises and deserialises, and reads a record porch wrote.
//!
//! It needs a Python with `confluent-kafka[avro]`, so it runs on request:
//!
//! ```sh
//! python3 -m venv /tmp/ck && /tmp/ck/bin/pip install 'confluent-kafka[avro]'
//! PORCH_PYTHON=/tmp/ck/bin/python cargo test -p porch-registry --test confluent_python_client -- --ignored
//! ```

use porch_registry::{serve_on, FileStorage};
use porch_schemas::{
    Codec, CommandId, CommandRejected, Event, EventEnvelope, EventRecord, ProductId,
    RegistryClient, TenantId,
};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PORCH_PYTHON with confluent-kafka[avro]"]
async fn confluent_python_client() {
    let python = std::env::var("PORCH_PYTHON").unwrap_or_else(|_| "python3".into());
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
            aggregate_version: 7,
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/confluent_client.py");
    let output = tokio::task::spawn_blocking(move || {
        let codec = Codec::with_registry(Arc::new(RegistryClient::new(&url).unwrap()));
        let bytes = codec.encode_event("offer.events", &record).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        std::process::Command::new(&python)
            .args([script, &url, &hex, "offer.events"])
            .output()
            .unwrap_or_else(|e| panic!("running {python}: {e}"))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let decoded: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(decoded["envelope"]["tenant"], "acme", "{decoded}");
    assert_eq!(decoded["envelope"]["aggregate_version"], 7, "{decoded}");
    assert_eq!(decoded["command_type"], "CreateOffer", "{decoded}");
    eprintln!("confluent-kafka read porch's record: {decoded}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

//! The distributed roles, each its own process: `porch ingest-api`, `porch processor <name>`,
//! `porch connector search`, `porch registry`, and the tools `porch topics apply`,
//! `porch schema migrate` and `porch tap`. Each role is configured by file and environment and
//! serves /healthz, /readyz and /metrics.

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use porch_connectors::search::sink::{self as search_sink, SearchSink};
use porch_connectors::search::SearchIndex;
use porch_connectors::sink::kafka::{KafkaPort, StoreRows};
use porch_connectors::sink::{ConnectorStatus, RowStore, CHANNEL_EVENTS};
use porch_connectors::{mercadolibre, meta};
use porch_cql::{CqlConfig, CqlStore};
use porch_ingest_api::{config::Config, hot::HotSkus, AppState, Media, MediaSettings, Metrics};
use porch_processors::distributed::{self, DistributedRuntime, Health};
use porch_processors::distributed_api::{DistributedSink, KafkaTopics};
use porch_processors::modules::{self, ChannelConfig, ComplianceConfig};
use porch_processors::store::{ProjectionStore, StoreError};
use porch_processors::RuntimeConfig;
use porch_schemas::{Codec, Module, RegistryClient};
use porch_topics::kafka_admin::KafkaConfig;
use porch_topics::Catalogue;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// Where the Kafka cluster is and how to talk to it: settings of every role, the registry's
/// included.
#[derive(clap::Args, Clone, Debug)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(
        long = "kafka",
        value_name = "HOST:PORT,...",
        env = "PORCH_KAFKA",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
    /// librdkafka properties for every Kafka client (`key=value` lines: security.protocol,
    /// sasl.*, ssl.*); PORCH_KAFKA_CONFIG_<NAME> variables add to them and win.
    #[arg(long, env = "PORCH_KAFKA_CONFIG_FILE")]
    pub kafka_config: Option<PathBuf>,
}

impl KafkaArgs {
    /// The cluster with the client properties of the file and of the `PORCH_KAFKA_CONFIG_*`
    /// variables, its topics named under `topic_prefix`.
    pub fn config(&self, topic_prefix: &str) -> anyhow::Result<KafkaConfig> {
        Ok(KafkaConfig {
            bootstrap: self.bootstrap.clone(),
            topic_prefix: topic_prefix.into(),
            properties: porch_topics::ClientProperties::load(
                self.kafka_config.as_deref(),
                porch_topics::client_properties::env_vars(),
            )?,
        })
    }
}

/// Settings every distributed role shares: where Kafka, the store and the registry are.
#[derive(clap::Args, Clone, Debug)]
pub struct Cluster {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Prefix of every topic name on the cluster (and of consumer groups).
    #[arg(long, env = "PORCH_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// ScyllaDB / Cassandra contact points, comma-separated.
    #[arg(long, env = "PORCH_CQL", default_value = "127.0.0.1:9042")]
    pub cql: String,
    /// Keyspace of porch's tables.
    #[arg(long, env = "PORCH_CQL_KEYSPACE", default_value = "porch")]
    pub keyspace: String,
    /// URL of a Confluent-compatible schema registry (`porch registry` or any other).
    #[arg(
        long,
        env = "PORCH_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub registry_url: String,
}

impl Cluster {
    pub fn kafka(&self) -> anyhow::Result<KafkaConfig> {
        self.kafka.config(&self.topic_prefix)
    }

    pub fn cql(&self) -> anyhow::Result<CqlConfig> {
        Ok(CqlConfig {
            nodes: self.cql.split(',').map(|s| s.trim().to_string()).collect(),
            keyspace: self.keyspace.clone(),
            ..CqlConfig::from_env()?
        })
    }

    /// A codec whose schema ids come from the registry; registers every schema porch writes.
    fn codec(&self) -> anyhow::Result<Arc<Codec>> {
        let registry = Arc::new(RegistryClient::new(&self.registry_url)?);
        let codec = Arc::new(Codec::with_registry(registry).with_topic_prefix(&self.topic_prefix));
        let mut wait = Duration::from_millis(200);
        for attempt in 0.. {
            let result: anyhow::Result<()> = modules::topic_record_types()
                .into_iter()
                .try_for_each(|(topic, types)| Ok(codec.register_topic(&topic, &types)?));
            match result {
                Ok(()) => break,
                Err(e) if attempt < 60 => {
                    if attempt >= 10 {
                        tracing::warn!(error = %e, "registering schemas; retrying");
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.context("registering schemas")),
            }
        }
        Ok(codec)
    }

    /// What a role that reads and writes both the log and the store starts with: its runtime,
    /// Kafka's settings, the store and the codec. Settings first, so a wrong one is refused
    /// before any waiting; then the store, so a refused login is told at once; then the
    /// registry, which may take a while to come up.
    fn connect(&self) -> anyhow::Result<(Runtime, KafkaConfig, Arc<CqlStore>, Arc<Codec>)> {
        let (kafka, cql) = (self.kafka()?, self.cql()?);
        let rt = runtime()?;
        let store = rt.block_on(connect_store(&cql))?;
        let codec = self.codec()?;
        Ok((rt, kafka, store, codec))
    }
}

fn load_config(path: &Path) -> anyhow::Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Config::from_toml(&text).with_context(|| format!("in {}", path.display()))
}

fn runtime() -> anyhow::Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// How long a store's refusals of the login are taken for passing before a role stops: a node
/// answers a login it cannot check yet (its auth tables still loading, their replicas away) with
/// the same error as a wrong password, and with several nodes only the last one tried is heard.
const REFUSED_FOR: Duration = Duration::from_secs(10);

/// Connects to the store, waiting for it while it is away; stops when the login has been
/// refused three times over at least [`REFUSED_FOR`].
async fn connect_store(cfg: &CqlConfig) -> anyhow::Result<Arc<CqlStore>> {
    let mut wait = Duration::from_millis(200);
    let mut refused: Option<(std::time::Instant, u32)> = None;
    loop {
        match CqlStore::connect(cfg).await {
            Ok(s) => return Ok(Arc::new(s)),
            Err(e) => {
                if let StoreError::Refused(_) = e {
                    let (since, times) = refused.get_or_insert((std::time::Instant::now(), 0));
                    *times += 1;
                    if *times >= 3 && since.elapsed() >= REFUSED_FOR {
                        return Err(e.into());
                    }
                }
                tracing::warn!(error = %e, "connecting to the store; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The health endpoints of a role without an API of its own.
#[derive(Clone)]
struct Probe {
    role: &'static str,
    health: Arc<Health>,
    store: Option<Arc<CqlStore>>,
    /// Metrics of the role's parts: the store's requests.
    registry: prometheus::Registry,
}

impl Probe {
    fn new(
        role: &'static str,
        health: Arc<Health>,
        store: Option<Arc<CqlStore>>,
    ) -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        if let Some(store) = &store {
            for c in store.collectors() {
                registry.register(c)?;
            }
        }
        Ok(Probe {
            role,
            health,
            store,
            registry,
        })
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(p): State<Probe>) -> impl IntoResponse {
    let store_ok = match &p.store {
        Some(s) => s.ready().await,
        None => true,
    };
    if p.health.ready.load(Ordering::Relaxed) && store_ok {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics(State(p): State<Probe>) -> String {
    let h = &p.health;
    let role = p.role;
    let mut out = String::new();
    for (name, help, v) in [
        (
            "porch_batches_total",
            "Batches committed.",
            h.batches.load(Ordering::Relaxed),
        ),
        (
            "porch_records_total",
            "Input records handled.",
            h.records.load(Ordering::Relaxed),
        ),
        (
            "porch_failures_total",
            "Turns that failed and were retried.",
            h.failures.load(Ordering::Relaxed),
        ),
        (
            "porch_recoveries_total",
            "Checkpoints finished after a failure or a move.",
            h.recoveries.load(Ordering::Relaxed),
        ),
        (
            "porch_tasks",
            "Tasks (partition numbers) owned.",
            h.tasks.load(Ordering::Relaxed),
        ),
        (
            "porch_producer_fenced_total",
            "Times another producer took this member's transactional id.",
            h.fenced.load(Ordering::Relaxed),
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {}\n{name}{{role=\"{role}\"}} {v}\n",
            if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            }
        ));
    }
    out.push_str(&format!(
        "# HELP porch_ready Whether the role is ready.\n# TYPE porch_ready gauge\nporch_ready{{role=\"{role}\"}} {}\n",
        u8::from(h.ready.load(Ordering::Relaxed))
    ));
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&p.registry.gather(), &mut out) {
        tracing::warn!(error = %e, "rendering the role's metrics");
    }
    out
}

async fn serve_probe(listen: SocketAddr, probe: Probe) -> anyhow::Result<()> {
    let probe_role = probe.role;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probe);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    println!(
        "porch {} health at http://{}",
        probe_role,
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::up::shutdown_signal())
        .await?;
    Ok(())
}

/// `porch processor <name>`: one processor as a member of its consumer group.
pub fn processor(
    name: &str,
    instance: Option<String>,
    config: Option<PathBuf>,
    listen: SocketAddr,
    cluster: Cluster,
) -> anyhow::Result<()> {
    let config = match config {
        Some(p) => load_config(&p)?,
        None => Config::development().0,
    };
    let compliance = ComplianceConfig {
        tenant_regions: config.tenant_regions(),
        rules: config.compliance.clone(),
    };
    let channels = ChannelConfig {
        media_base: if name == Module::Channel.as_str() {
            media_base(&config)?
        } else {
            String::new()
        },
    };
    let processor = modules::all(compliance, channels)
        .into_iter()
        .find(|p| p.name() == name)
        .with_context(|| {
            format!(
                "no processor named {name}; one of: {}",
                modules::all(ComplianceConfig::default(), ChannelConfig::default())
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    // The instance id first: a copy that may not run stops before it connects to anything.
    let group = distributed::group_of(&cluster.kafka()?, name);
    let claims = crate::instance::Claims::new(
        &cluster.kafka.bootstrap,
        &std::env::var("PORCH_INSTANCE_SCOPE").unwrap_or_default(),
    );
    let instance = claims.claim(
        &group,
        instance.as_deref(),
        &crate::instance::machine_name(),
        crate::instance::WAIT_FOR,
    )?;
    tracing::info!(
        "processor {name} runs as instance {} of group {group} (transactional id {group}-{})",
        instance.id,
        instance.id
    );
    let (rt, kafka, store, codec) = cluster.connect()?;
    // The lateness bound follows the group's settings, read in the background on one admin
    // client; the first turn waits for the first read (see `LateBound::wait_first_read`).
    let late_after = Arc::new(distributed::LateBound::new(distributed::LATE_AFTER));
    let first_read = late_after.clone();
    let reader = Arc::new(porch_topics::kafka_admin::LivenessReader::new(&kafka)?);
    rt.spawn(distributed::watch_late_bound(
        group.clone(),
        late_after.clone(),
        distributed::LATE_BOUND_REFRESH,
        {
            let group = group.clone();
            move || {
                let (reader, group) = (reader.clone(), group.clone());
                async move { reader.read(&group).await }
            }
        },
    ));
    let health = Arc::new(Health::default());
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = DistributedRuntime {
        kafka,
        store: store.clone() as Arc<dyn ProjectionStore>,
        codec,
        handle: rt.handle().clone(),
        config: RuntimeConfig::default(),
        partitions: Catalogue::builtin().partitions,
        stop: stop.clone(),
        health: health.clone(),
        instance: instance.id.clone(),
        late_after,
    };
    let worker = std::thread::Builder::new()
        .name(format!("porch-{name}"))
        .spawn(move || {
            if !first_read.wait_first_read(distributed::LATE_BOUND_FIRST_WAIT) {
                tracing::warn!(
                    "the group's session settings did not come in {} s; turns start under the \
                     longest lateness bound",
                    distributed::LATE_BOUND_FIRST_WAIT.as_secs()
                );
            }
            runtime.run(processor)
        })?;
    let probe = Probe::new("processor", health, Some(store))?;
    let info = prometheus::IntGaugeVec::new(
        prometheus::Opts::new(
            "porch_instance_info",
            "This member's instance id in its group (1).",
        ),
        &["instance"],
    )?;
    info.with_label_values(&[instance.id.as_str()]).set(1);
    probe.registry.register(Box::new(info))?;
    let served = rt.block_on(serve_probe(listen, probe));
    stop.store(true, Ordering::Relaxed);
    let ran = worker
        .join()
        .map_err(|_| anyhow::anyhow!("processor thread panicked"))?;
    // A read of the group's settings under way is not waited for: the instance id, let go
    // below, is what a successor waits for.
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(instance);
    served.and(ran)
}

/// `porch ingest-api`: the HTTP API over Kafka and the store. Images go to the S3 bucket the
/// media settings name, or else to `images_dir`.
pub fn ingest_api(
    config: PathBuf,
    listen: SocketAddr,
    search_dir: PathBuf,
    images_dir: PathBuf,
    cluster: Cluster,
) -> anyhow::Result<()> {
    let config = Arc::new(load_config(&config)?);
    // Refused before anything connects: bad media settings name themselves.
    let media_settings = MediaSettings::from_env(&config.media)?;
    let (rt, kafka, store, codec) = cluster.connect()?;
    let catalogue = Catalogue::builtin();
    let topics = Arc::new(KafkaTopics::new(&kafka, codec.clone())?);
    let sink = Arc::new(DistributedSink::new(
        store.clone(),
        codec,
        kafka,
        catalogue.partitions,
    )?);
    std::fs::create_dir_all(&search_dir)?;
    let search = Arc::new(SearchIndex::open_read_only(&search_dir)?);
    let ready = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(Metrics::new());
    for c in store.collectors() {
        metrics.registry().register(c)?;
    }
    rt.block_on(async move {
        // Ready while the store answers.
        let probe_store = store.clone();
        let probe_ready = ready.clone();
        tokio::spawn(async move {
            loop {
                probe_ready.store(probe_store.ready().await, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        // The default public base URL is this API's own /media, at the address it got.
        let media = Media::open(&media_settings, &images_dir, addr)?;
        println!("porch ingest-api at http://{addr}");
        println!("images: {}", media.describe());
        let state = AppState {
            store: sink.clone(),
            sink,
            topics,
            search,
            hot: Arc::new(HotSkus::new(&config.reservations)),
            config,
            media: Arc::new(media),
            metrics,
            ready: ready.clone(),
        };
        // Every replica does this at start; the second finds nothing changed.
        porch_ingest_api::apply_configured_connections(&state)
            .await
            .map_err(anyhow::Error::msg)?;
        axum::serve(listener, porch_ingest_api::app(state))
            .with_graceful_shutdown(crate::up::shutdown_signal())
            .await?;
        anyhow::Ok(())
    })
}

/// `porch connector search`: feeds search.events into the full-text index that the ingest API
/// reads. The index's commit payload is its position, as in the embedded mode.
pub fn connector_search(
    search_dir: PathBuf,
    listen: SocketAddr,
    cluster: Cluster,
) -> anyhow::Result<()> {
    let (rt, kafka, store, codec) = cluster.connect()?;
    std::fs::create_dir_all(&search_dir)?;
    let index = Arc::new(SearchIndex::open(&search_dir)?);
    let status = Arc::new(ConnectorStatus::new(search_sink::NAME));
    let sink = SearchSink {
        index,
        codec,
        partitions: Catalogue::builtin().partitions,
        instance: connector_instance(),
        rows: Arc::new(StoreRows(store.clone() as Arc<dyn ProjectionStore>)),
        status: status.clone(),
    };
    let reader = Box::new(search_sink::KafkaReader::new(&kafka));
    serve_connector(&rt, "connector-search", listen, store, |stop| {
        sink.run(reader, stop)
    })
}

/// Runs a connector's loop on the role's runtime and serves its probe and metrics until the
/// process is told to stop; then stops the loop.
fn serve_connector<F>(
    rt: &Runtime,
    role: &'static str,
    listen: SocketAddr,
    store: Arc<CqlStore>,
    run: impl FnOnce(Arc<AtomicBool>) -> F,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let health = Arc::new(Health::default());
    health.ready.store(true, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let running = rt.spawn(run(stop.clone()));
    let probe = Probe::new(role, health, Some(store))?;
    for c in porch_connectors::sink::status::collectors() {
        probe.registry.register(c)?;
    }
    let served = rt.block_on(serve_probe(listen, probe));
    stop.store(true, Ordering::Relaxed);
    let _ = rt.block_on(running);
    served
}

/// `porch connector meta`: a member of the Meta connector's group on channel.events; start more
/// to share its partitions.
pub fn connector_meta(
    config: Option<PathBuf>,
    listen: SocketAddr,
    cluster: Cluster,
) -> anyhow::Result<()> {
    let mut config = load_or_default(config)?;
    meta_from_env(&mut config.connectors.meta)?;
    connector_channel(
        meta::NAME,
        "connector-meta",
        listen,
        cluster,
        |codec, rows, status| {
            meta::sink(
                &config.connectors.meta,
                &connector_instance(),
                codec,
                rows,
                status,
            )
        },
    )
}

/// `porch connector mercadolibre`: a member of the Mercado Libre connector's group on
/// channel.events; start more to share its partitions (sellers' token refreshes stay one at a
/// time across them).
pub fn connector_mercadolibre(
    config: Option<PathBuf>,
    listen: SocketAddr,
    cluster: Cluster,
) -> anyhow::Result<()> {
    let mut config = load_or_default(config)?;
    mercadolibre_from_env(&mut config.connectors.mercadolibre)?;
    let role = "connector-mercadolibre";
    connector_channel(
        mercadolibre::NAME,
        role,
        listen,
        cluster,
        |codec, rows, status| {
            mercadolibre::sink(
                &config.connectors.mercadolibre,
                &connector_instance(),
                codec,
                rows,
                status,
            )
        },
    )
}

fn load_or_default(config: Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(match config {
        Some(p) => load_config(&p)?,
        None => Config::default(),
    })
}

/// A channel connector's process: its sink on Kafka and the store, its probe on `listen`.
fn connector_channel(
    name: &str,
    role: &'static str,
    listen: SocketAddr,
    cluster: Cluster,
    sink: impl FnOnce(
        Arc<porch_schemas::Codec>,
        Arc<dyn RowStore>,
        Arc<ConnectorStatus>,
    ) -> Result<porch_connectors::sink::Sink, String>,
) -> anyhow::Result<()> {
    let (rt, kafka, store, codec) = cluster.connect()?;
    let status = Arc::new(ConnectorStatus::new(name));
    let rows: Arc<dyn RowStore> = Arc::new(StoreRows(store.clone() as Arc<dyn ProjectionStore>));
    let sink = sink(codec, rows.clone(), status.clone()).map_err(anyhow::Error::msg)?;
    // The consumer is a stream: it is made inside the runtime that polls it.
    let _inside = rt.enter();
    let port = KafkaPort::new(
        &kafka,
        name,
        CHANNEL_EVENTS,
        Catalogue::builtin().partitions,
        rows,
    )?;
    serve_connector(&rt, role, listen, store, |stop| {
        sink.run(Box::new(port), stop)
    })
}

/// A connector instance's name in its status rows: the host and the process.
fn connector_instance() -> String {
    format!("{}-{}", crate::instance::machine_name(), std::process::id())
}

/// The Meta connector's settings with `PORCH_META_GRAPH_URL` over the file's, checked.
pub fn meta_from_env(meta: &mut porch_connectors::meta::MetaConfig) -> anyhow::Result<()> {
    if let Ok(url) = std::env::var("PORCH_META_GRAPH_URL") {
        if !url.trim().is_empty() {
            meta.graph_url = url.trim().to_string();
        }
    }
    meta.validate().map_err(anyhow::Error::msg)
}

/// The Mercado Libre connector's settings with `PORCH_MERCADOLIBRE_API_URL` and
/// `PORCH_MERCADOLIBRE_TOKEN_URL` over the file's, checked.
pub fn mercadolibre_from_env(
    ml: &mut porch_connectors::mercadolibre::MercadoLibreConfig,
) -> anyhow::Result<()> {
    for (var, field) in [
        ("PORCH_MERCADOLIBRE_API_URL", &mut ml.api_url),
        ("PORCH_MERCADOLIBRE_TOKEN_URL", &mut ml.token_url),
    ] {
        if let Ok(url) = std::env::var(var) {
            if !url.trim().is_empty() {
                *field = url.trim().to_string();
            }
        }
    }
    ml.validate().map_err(anyhow::Error::msg)
}

/// The public base URL of images for the channel processor: `PORCH_MEDIA_PUBLIC_URL` or the
/// config's `[media] public_base_url`, else the ingest API's own default address.
fn media_base(config: &Config) -> anyhow::Result<String> {
    let settings = MediaSettings::from_env(&config.media)?;
    Ok(settings.public_base_url.unwrap_or_else(|| {
        let fallback = "http://127.0.0.1:8080/media".to_string();
        tracing::warn!(
            "no public base URL of images (PORCH_MEDIA_PUBLIC_URL or [media] public_base_url): channel payloads link under {fallback}"
        );
        fallback
    }))
}

/// `porch topics apply`.
pub fn topics_apply(cluster: Cluster, replication_factor: i32) -> anyhow::Result<()> {
    let rt = runtime()?;
    let report = rt.block_on(porch_topics::kafka_admin::apply_topics(
        &cluster.kafka()?,
        &Catalogue::builtin(),
        replication_factor,
    ))?;
    println!("{report}");
    Ok(())
}

/// `porch schema migrate`.
pub fn schema_migrate(cluster: Cluster) -> anyhow::Result<()> {
    let rt = runtime()?;
    let applied = rt.block_on(porch_cql::migrate(&cluster.cql()?))?;
    if applied.is_empty() {
        println!("schema up to date");
    }
    for m in applied {
        println!("applied {m}");
    }
    Ok(())
}

/// `porch tap <topic>`: a topic's records as JSON lines.
pub fn tap(
    topic: String,
    from: &str,
    partition: Option<u32>,
    follow: bool,
    max: Option<usize>,
    cluster: Cluster,
) -> anyhow::Result<()> {
    let from: crate::tap::TapFrom = from.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let registry = Arc::new(RegistryClient::new(&cluster.registry_url)?);
    let codec = Codec::with_registry(registry);
    let decode = |bytes: &[u8]| codec.decode_json(bytes).map_err(|e| e.to_string());
    let args = crate::tap::TapArgs {
        topic,
        from,
        partition,
        follow,
        max,
    };
    crate::tap::run(args, &cluster.kafka()?, &decode)
}

/// `porch registry`: the Confluent-compatible registry, stored in a compacted Kafka topic.
pub fn registry(listen: SocketAddr, kafka: KafkaConfig, topic: String) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(porch_registry::serve(
        porch_registry::RegistryServerConfig {
            listen,
            kafka: Some(kafka),
            topic,
            data_dir: None,
        },
        crate::up::shutdown_signal(),
    ))?;
    Ok(())
}

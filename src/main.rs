//! The one `porch` binary: parse, build, run.

mod connector_ops;
mod instance;
mod roles;
mod tap;
mod up;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "porch",
    version,
    about = "Product orchestrator for multi-merchant commerce"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run every role in one process on the embedded log, store and search index.
    Up {
        /// Tenants, keys, regions and compliance rules (see porch.example.toml). Without it a
        /// development tenant is created and its key printed.
        #[arg(long, env = "PORCH_CONFIG")]
        config: Option<PathBuf>,
        /// Where the log, store, search index, schemas and images live.
        #[arg(long, env = "PORCH_DATA_DIR", default_value = "porch-data")]
        data_dir: PathBuf,
        /// Address of the HTTP API.
        #[arg(long, env = "PORCH_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// How long commands are kept (records, outcomes, idempotency keys): 7d, 12h, 30m,
        /// 45s. Events are kept for ever.
        #[arg(long, env = "PORCH_COMMAND_RETENTION", default_value = "7d", value_parser = up::parse_duration)]
        command_retention: std::time::Duration,
    },
    /// What an embedded data directory holds, per topic and per store table (run it with
    /// `porch up` stopped).
    Usage {
        #[arg(long, env = "PORCH_DATA_DIR", default_value = "porch-data")]
        data_dir: PathBuf,
    },
    /// The HTTP API of the distributed mode: commands to Kafka, reads from the store.
    IngestApi {
        /// Tenants, keys, regions and compliance rules.
        #[arg(long, env = "PORCH_CONFIG")]
        config: PathBuf,
        #[arg(long, env = "PORCH_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The search index that `porch connector search` writes (read here).
        #[arg(long, env = "PORCH_SEARCH_DIR", default_value = "porch-search")]
        search_dir: PathBuf,
        /// Where uploaded images are kept when no S3 bucket is set (PORCH_S3_BUCKET,
        /// PORCH_S3_ENDPOINT, PORCH_S3_REGION or the config's [media.s3]); images are linked
        /// under PORCH_MEDIA_PUBLIC_URL (default http://<listen>/media).
        #[arg(long, env = "PORCH_IMAGES_DIR", default_value = "porch-images")]
        images_dir: PathBuf,
        #[command(flatten)]
        cluster: roles::Cluster,
    },
    /// One processor (product, variant, offer, inventory, compliance, activation, search) as a
    /// member of its consumer group; start more to share its partitions.
    Processor {
        name: String,
        /// This member's name in its group, the end of its transactional id: one per running
        /// copy, kept by a restarted one. Unset (or blank), a copy takes
        /// `<host>-<machine id>-<n>` for the least `n` no other copy on this machine holds; a
        /// name another process on this machine holds is refused.
        #[arg(long, env = "PORCH_INSTANCE")]
        instance: Option<String>,
        /// Tenants, regions and compliance rules (the compliance processor needs them).
        #[arg(long, env = "PORCH_CONFIG")]
        config: Option<PathBuf>,
        /// Address of /healthz, /readyz and /metrics.
        #[arg(long, env = "PORCH_LISTEN", default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[command(flatten)]
        cluster: roles::Cluster,
    },
    /// Sink connectors.
    Connector {
        #[command(subcommand)]
        which: ConnectorCmd,
    },
    /// The Confluent-compatible schema registry, stored in a compacted Kafka topic.
    Registry {
        #[arg(long, env = "PORCH_LISTEN", default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        #[command(flatten)]
        kafka: roles::KafkaArgs,
        /// The compacted topic that holds the schemas.
        #[arg(long, env = "PORCH_REGISTRY_TOPIC", default_value = "_porch_schemas")]
        topic: String,
    },
    /// Topics on the Kafka cluster.
    Topics {
        #[command(subcommand)]
        which: TopicsCmd,
    },
    /// The CQL schema of the store.
    Schema {
        #[command(subcommand)]
        which: SchemaCmd,
    },
    /// Print a topic's records as JSON lines, decoded through the registry.
    Tap {
        /// Catalogue name of the topic (e.g. offer.events).
        topic: String,
        /// Where to start: beginning, end, an offset, or a time (RFC 3339 or micros).
        #[arg(long, default_value = "beginning")]
        from: String,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u32>,
        /// Keep reading new records until interrupted.
        #[arg(long, short)]
        follow: bool,
        /// Stop after this many records.
        #[arg(long)]
        max: Option<usize>,
        #[command(flatten)]
        cluster: roles::Cluster,
    },
}

#[derive(Subcommand)]
enum ConnectorCmd {
    /// Feeds visible listings into the full-text index the ingest API searches.
    Search {
        #[arg(long, env = "PORCH_SEARCH_DIR", default_value = "porch-search")]
        search_dir: PathBuf,
        #[arg(long, env = "PORCH_LISTEN", default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[command(flatten)]
        cluster: roles::Cluster,
    },
    /// Publishes listings to Meta catalogs (Facebook and Instagram shops); start more to share
    /// the partitions of channel.events.
    Meta {
        /// The `[connectors.meta]` settings (Graph API URL, batching); PORCH_META_GRAPH_URL wins.
        #[arg(long, env = "PORCH_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, env = "PORCH_LISTEN", default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[command(flatten)]
        cluster: roles::Cluster,
    },
    /// Publishes listings to Mercado Libre (one site per region: MLB, MLA, MLM…) with each
    /// seller's OAuth tokens; start more to share the partitions of channel.events.
    Mercadolibre {
        /// The `[connectors.mercadolibre]` settings (API and token URLs, batching, listing type);
        /// PORCH_MERCADOLIBRE_API_URL and PORCH_MERCADOLIBRE_TOKEN_URL win.
        #[arg(long, env = "PORCH_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, env = "PORCH_LISTEN", default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[command(flatten)]
        cluster: roles::Cluster,
    },
    /// A connector's state, lag, last error and counts (all connectors without a name).
    Status {
        name: Option<String>,
        #[command(flatten)]
        api: connector_ops::ApiArgs,
    },
    /// Stops every call of a connector until it is resumed.
    Pause {
        name: String,
        #[command(flatten)]
        api: connector_ops::ApiArgs,
    },
    Resume {
        name: String,
        #[command(flatten)]
        api: connector_ops::ApiArgs,
    },
    /// Drops a connector's work under way and reads again from its committed positions (and
    /// runs a FAILED connector again).
    Restart {
        name: String,
        #[command(flatten)]
        api: connector_ops::ApiArgs,
    },
    /// Feeds a connector's dead-letter topic back to it, up to its end now.
    Redrive {
        name: String,
        #[command(flatten)]
        api: connector_ops::ApiArgs,
    },
}

#[derive(Subcommand)]
enum TopicsCmd {
    /// Create or reconcile every topic of the catalogue; report drift it will not fix.
    Apply {
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        #[command(flatten)]
        cluster: roles::Cluster,
    },
}

#[derive(Subcommand)]
enum SchemaCmd {
    /// Apply the versioned CQL migrations.
    Migrate {
        #[command(flatten)]
        cluster: roles::Cluster,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PORCH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Up {
            config,
            data_dir,
            listen,
            command_retention,
        } => up::run(up::UpArgs {
            config,
            data_dir,
            listen,
            command_retention,
        }),
        Cmd::Usage { data_dir } => up::usage(&data_dir),
        Cmd::IngestApi {
            config,
            listen,
            search_dir,
            images_dir,
            cluster,
        } => roles::ingest_api(config, listen, search_dir, images_dir, cluster),
        Cmd::Processor {
            name,
            instance,
            config,
            listen,
            cluster,
        } => roles::processor(&name, instance, config, listen, cluster),
        Cmd::Connector { which } => match which {
            ConnectorCmd::Search {
                search_dir,
                listen,
                cluster,
            } => roles::connector_search(search_dir, listen, cluster),
            ConnectorCmd::Meta {
                config,
                listen,
                cluster,
            } => roles::connector_meta(config, listen, cluster),
            ConnectorCmd::Mercadolibre {
                config,
                listen,
                cluster,
            } => roles::connector_mercadolibre(config, listen, cluster),
            ConnectorCmd::Status { name, api } => connector_ops::status(&api, name.as_deref()),
            ConnectorCmd::Pause { name, api } => connector_ops::act(&api, &name, "pause"),
            ConnectorCmd::Resume { name, api } => connector_ops::act(&api, &name, "resume"),
            ConnectorCmd::Restart { name, api } => connector_ops::act(&api, &name, "restart"),
            ConnectorCmd::Redrive { name, api } => connector_ops::act(&api, &name, "redrive"),
        },
        Cmd::Registry {
            listen,
            kafka,
            topic,
        } => roles::registry(listen, kafka.config("")?, topic),
        Cmd::Topics {
            which:
                TopicsCmd::Apply {
                    replication_factor,
                    cluster,
                },
        } => roles::topics_apply(cluster, replication_factor),
        Cmd::Schema {
            which: SchemaCmd::Migrate { cluster },
        } => roles::schema_migrate(cluster),
        Cmd::Tap {
            topic,
            from,
            partition,
            follow,
            max,
            cluster,
        } => roles::tap(topic, &from, partition, follow, max, cluster),
    }
}

//! `porch up`: every role in one process, on the embedded defaults.

use anyhow::Context;
use porch_connectors::search::sink::{self as search_sink, SearchSink};
use porch_connectors::search::SearchIndex;
use porch_connectors::sink::embedded::{EmbeddedPort, EmbeddedRows};
use porch_connectors::sink::{ConnectorStatus, RowStore, CHANNEL_EVENTS};
use porch_connectors::{mercadolibre, meta};
use porch_ingest_api::{config::Config, hot::HotSkus, AppState, Media, MediaSettings, Metrics};
use porch_processors::modules::{self, ChannelConfig, ComplianceConfig};
use porch_processors::{EmbeddedBackend, Retention, RuntimeConfig, Stages};
use porch_schemas::{Codec, EmbeddedRegistry};
use porch_topics::{Catalogue, EmbeddedLog};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct UpArgs {
    pub config: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub command_retention: std::time::Duration,
}

/// A duration as a number and a unit: `7d`, `12h`, `30m`, `45s`, `500ms`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (d, h, m, s or ms)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let secs = |k: u64| std::time::Duration::from_secs(n.saturating_mul(k));
    Ok(match unit {
        "d" => secs(86_400),
        "h" => secs(3_600),
        "m" => secs(60),
        "s" => secs(1),
        "ms" => std::time::Duration::from_millis(n),
        _ => return Err(format!("{text:?}: the unit is d, h, m, s or ms")),
    })
}

/// Loads the config file, or the development config kept in the data directory (created with a
/// fresh key on first start, so the key stays the same across restarts).
fn load_config(args: &UpArgs) -> anyhow::Result<(Config, Option<String>)> {
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config = Config::from_toml(&text).with_context(|| format!("in {}", path.display()))?;
        return Ok((config, None));
    }
    let dev_path = args.data_dir.join("development.toml");
    if dev_path.exists() {
        let text = std::fs::read_to_string(&dev_path)?;
        let config =
            Config::from_toml(&text).with_context(|| format!("in {}", dev_path.display()))?;
        let key = config.development_admin_key();
        return Ok((config, key));
    }
    let (config, key) = Config::development();
    std::fs::write(&dev_path, config.to_toml()?)
        .with_context(|| format!("writing {}", dev_path.display()))?;
    Ok((config, Some(key)))
}

pub fn run(args: UpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let (mut config, dev_key) = load_config(&args)?;
    // Refused before anything starts: bad media or connector settings name themselves.
    let media_settings = MediaSettings::from_env(&config.media)?;
    crate::roles::meta_from_env(&mut config.connectors.meta)?;
    crate::roles::mercadolibre_from_env(&mut config.connectors.mercadolibre)?;
    let config = Arc::new(config);

    // The address first: images are linked under it unless a public base URL is set, and the
    // channel processor puts those links into channel payloads.
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let media = Media::open(&media_settings, &args.data_dir.join("images"), addr)?;

    let catalogue = Catalogue::builtin();
    let registry = Arc::new(EmbeddedRegistry::open(&args.data_dir)?);
    let codec = Arc::new(Codec::new(registry));
    for (topic, types) in modules::topic_record_types() {
        codec.register_topic(&topic, &types)?;
    }
    let log = Arc::new(EmbeddedLog::open(
        &args.data_dir.join("porch.redb"),
        catalogue.partitions,
        catalogue.all_names(),
        64 << 20,
    )?);
    let search = Arc::new(SearchIndex::open(&args.data_dir.join("search"))?);

    let compliance = ComplianceConfig {
        tenant_regions: config.tenant_regions(),
        rules: config.compliance.clone(),
    };
    let channels = ChannelConfig {
        media_base: media.public_base().to_string(),
    };
    let stages = Stages::new(
        modules::all(compliance, channels),
        codec.clone(),
        RuntimeConfig::default(),
    )
    .with_retention(Retention::new(&catalogue, args.command_retention));
    let stop = Arc::new(AtomicBool::new(false));
    let (backend, pipeline) =
        EmbeddedBackend::start(log.clone(), codec.clone(), stages, stop.clone());

    let ready = Arc::new(AtomicBool::new(true));
    let serving = ready.clone();
    let metrics = Arc::new(Metrics::new());
    let rows: Arc<dyn RowStore> = Arc::new(EmbeddedRows(log.clone()));
    let meta_status = Arc::new(ConnectorStatus::new(meta::NAME));
    let mercadolibre_status = Arc::new(ConnectorStatus::new(mercadolibre::NAME));
    let search_status = Arc::new(ConnectorStatus::new(search_sink::NAME));
    for c in porch_connectors::sink::status::collectors() {
        metrics.registry().register(c)?;
    }
    let meta = meta::sink(
        &config.connectors.meta,
        "embedded",
        codec.clone(),
        rows.clone(),
        meta_status,
    )
    .map_err(anyhow::Error::msg)?;
    let mercadolibre = mercadolibre::sink(
        &config.connectors.mercadolibre,
        "embedded",
        codec.clone(),
        rows.clone(),
        mercadolibre_status,
    )
    .map_err(anyhow::Error::msg)?;
    let indexer = SearchSink {
        index: search.clone(),
        codec: codec.clone(),
        partitions: catalogue.partitions,
        instance: "embedded".into(),
        rows,
        status: search_status,
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let connectors = vec![
        rt.spawn(indexer.run(
            Box::new(search_sink::EmbeddedReader::new(log.clone())),
            stop.clone(),
        )),
        rt.spawn(meta.run(
            Box::new(EmbeddedPort::new(log.clone(), meta::NAME, CHANNEL_EVENTS)),
            stop.clone(),
        )),
        rt.spawn(mercadolibre.run(
            Box::new(EmbeddedPort::new(
                log.clone(),
                mercadolibre::NAME,
                CHANNEL_EVENTS,
            )),
            stop.clone(),
        )),
    ];
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        println!("porch is up at http://{addr}");
        println!("data directory: {}", args.data_dir.display());
        println!("images: {}", media.describe());
        let state = AppState {
            store: backend.clone(),
            sink: backend.clone(),
            topics: backend.clone(),
            search,
            config: config.clone(),
            media: Arc::new(media),
            metrics,
            ready: serving,
            hot: Arc::new(HotSkus::new(&config.reservations)),
        };
        let connected = porch_ingest_api::apply_configured_connections(&state)
            .await
            .map_err(anyhow::Error::msg)?;
        if connected > 0 {
            println!("channel connections from the config: {connected} applied");
        }
        if let Some(key) = &dev_key {
            println!("development tenant: dev");
            println!("admin API key: {key}");
            println!("try: curl -H 'Authorization: Bearer {key}' http://{addr}/v1/products");
        }
        axum::serve(listener, porch_ingest_api::app(state))
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        anyhow::Ok(())
    })?;
    ready.store(false, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for c in connectors {
            let _ = c.await;
        }
    });
    let _ = pipeline.join();
    Ok(())
}

/// `porch usage`: what the embedded database holds, and the files of the data directory.
pub fn usage(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let path = data_dir.join("porch.redb");
    anyhow::ensure!(path.exists(), "no embedded database at {}", path.display());
    let catalogue = Catalogue::builtin();
    let log = EmbeddedLog::inspect(&path, catalogue.partitions, catalogue.all_names())?;
    let file = std::fs::metadata(&path)?.len();
    println!(
        "{:<7} {:<40} {:>12} {:>14}",
        "kind", "name", "entries", "bytes"
    );
    let mut total = 0;
    for u in log.usage()? {
        total += u.bytes;
        println!(
            "{:<7} {:<40} {:>12} {:>14}",
            u.kind, u.name, u.entries, u.bytes
        );
    }
    println!("{total} bytes of keys and values in a {file}-byte database file");
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_with_their_unit_and_refuse_without() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("7w").is_err());
    }
}

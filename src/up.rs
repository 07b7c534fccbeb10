//! `porch up`: every role in one process, on the embedded defaults.

use anyhow::Context;
use porch_connectors::search::{IndexChange, SearchIndex};
use porch_ingest_api::{config::Config, AppState, Metrics};
use porch_processors::modules::{self, ComplianceConfig};
use porch_processors::{EmbeddedBackend, EmbeddedRuntime, RuntimeConfig};
use porch_schemas::{Codec, EmbeddedRegistry, Event};
use porch_topics::{events_topic, Catalogue, EmbeddedLog};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct UpArgs {
    pub config: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
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
    let (config, dev_key) = load_config(&args)?;
    let config = Arc::new(config);

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
    let backend = EmbeddedBackend::new(log.clone(), codec.clone());
    let search = Arc::new(SearchIndex::open(&args.data_dir.join("search"))?);

    let runtime = EmbeddedRuntime::new(log.clone(), codec.clone(), RuntimeConfig::default());
    let compliance = ComplianceConfig {
        tenant_regions: config.tenant_regions(),
        rules: config.compliance.clone(),
    };
    let mut threads: Vec<_> = modules::all(compliance)
        .into_iter()
        .map(|p| runtime.spawn(p))
        .collect();
    let stop = runtime.stop_flag();
    threads.push(spawn_indexer(
        log.clone(),
        codec.clone(),
        search.clone(),
        stop.clone(),
    ));

    let images_dir = args.data_dir.join("images");
    std::fs::create_dir_all(&images_dir)?;
    let ready = Arc::new(AtomicBool::new(true));
    let state = AppState {
        store: backend.clone(),
        sink: backend.clone(),
        topics: backend.clone(),
        search,
        config: config.clone(),
        images_dir,
        metrics: Arc::new(Metrics::new()),
        ready: ready.clone(),
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("porch is up at http://{addr}");
        println!("data directory: {}", args.data_dir.display());
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
    for t in threads {
        let _ = t.join();
    }
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

/// Feeds search.events into the full-text index. Its position is the index's own commit
/// payload, so the index and its checkpoint can never disagree after a crash.
fn spawn_indexer(
    log: Arc<EmbeddedLog>,
    codec: Arc<Codec>,
    index: Arc<SearchIndex>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("porch-search-index".into())
        .spawn(move || {
            let topic = events_topic("search");
            let partitions = log.partitions() as usize;
            while !stop.load(Ordering::Relaxed) {
                let seen = log.commit_seq();
                let mut offsets: Vec<u64> = index
                    .checkpoint()
                    .and_then(|c| serde_json::from_str(&c).ok())
                    .filter(|o: &Vec<u64>| o.len() == partitions)
                    .unwrap_or_else(|| vec![0; partitions]);
                let mut changes = Vec::new();
                for (p, offset) in offsets.iter_mut().enumerate() {
                    let records = match log.read(&topic, p as u32, *offset, 512) {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::error!(error = %e, "reading search.events");
                            break;
                        }
                    };
                    for r in records {
                        *offset = r.offset + 1;
                        match codec.decode_event(&r.value) {
                            Ok(rec) => match rec.event {
                                Event::ListingVisible(v) => changes.push(IndexChange::Upsert { tenant: rec.envelope.tenant, listing: v.listing }),
                                Event::ListingHidden(h) => changes.push(IndexChange::Remove { tenant: rec.envelope.tenant, offer_id: h.offer_id }),
                                _ => {}
                            },
                            Err(e) => tracing::warn!(partition = p, offset = r.offset, error = %e, "skipping undecodable search event"),
                        }
                    }
                }
                let checkpoint = serde_json::to_string(&offsets).unwrap_or_default();
                if Some(&checkpoint) == index.checkpoint().as_ref() {
                    log.wait_for_commit(seen, Duration::from_millis(500));
                    continue;
                }
                if let Err(e) = index.apply(&changes, &checkpoint) {
                    tracing::error!(error = %e, "search index commit failed; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        })
        .expect("spawn search indexer")
}

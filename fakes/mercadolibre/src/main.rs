//! `fake-mercadolibre`: the fake Mercado Libre API as its own process, for the benchmark and a
//! local demo. It serves until Ctrl-C or SIGTERM; `/_fake/…` steers it while it runs.

use anyhow::Context;
use clap::Parser;
use porch_fake_mercadolibre::{FakeConfig, FakeMercadoLibre};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A fake Mercado Libre API (items, seller search, OAuth token rotation) with faults, delays and
/// rate limits.
#[derive(Debug, Parser)]
#[command(name = "fake-mercadolibre", version)]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:9310")]
    listen: SocketAddr,
    /// A JSON FakeConfig; fields left out take their defaults.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => read_config(path)?,
        None => FakeConfig::default(),
    };
    let fake = FakeMercadoLibre::start(args.listen, config)
        .await
        .with_context(|| format!("starting the fake on {}", args.listen))?;
    println!("fake mercado libre api at http://{}", fake.addr());
    shutdown_signal().await;
    drop(fake);
    Ok(())
}

fn read_config(path: &PathBuf) -> anyhow::Result<FakeConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config {}", path.display()))?;
    let config: FakeConfig = serde_json::from_str(&text)
        .with_context(|| format!("parsing the config {}", path.display()))?;
    config
        .check()
        .with_context(|| format!("checking the config {}", path.display()))?;
    Ok(config)
}

/// Ctrl-C, or SIGTERM where there is one (docker stop, kill).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

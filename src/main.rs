//! The one `porch` binary: parse, build, run.

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
        } => up::run(up::UpArgs {
            config,
            data_dir,
            listen,
        }),
    }
}

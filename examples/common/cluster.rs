//! porch as separate processes on the shared Kafka and Cassandra (`scripts/engines up`), for the
//! benchmarks that measure the distributed backend: each run gets a fresh topic prefix and
//! keyspace, its own `porch registry`, then `topics apply` and `schema migrate`, then the eight
//! `porch processor`s, `porch connector search` and `porch ingest-api` (the release binary).
//! Dropping the cluster kills the roles, deletes the run's topics and drops its keyspace.

#[path = "../../tests/common/ports.rs"]
mod ports;

use super::Client;
use porch_schemas::Module;
use porch_topics::{Catalogue, KafkaConfig};
pub use ports::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The processors, one per module, named after it.
pub const PROCESSORS: [Module; 8] = Module::ALL;

/// One running porch on the shared engines: its settings and role processes.
pub struct Cluster {
    porch: PathBuf,
    pub dir: PathBuf,
    /// The run's porch.toml.
    config: PathBuf,
    pub kafka: KafkaConfig,
    pub keyspace: String,
    pub registry_port: u16,
    pub api_port: u16,
    /// Each role's name, process and (for all but the API) the port of its /metrics.
    pub roles: Vec<(String, Child, Option<u16>)>,
    /// A client of the API.
    pub client: Arc<Client>,
}

impl Cluster {
    /// Starts every role with `config` as porch.toml, in `<temp dir>/<name>-<run id>`, and waits
    /// until the API and the search connector answer and every processor owns all its tasks.
    pub async fn start(name: &str, config: &str) -> anyhow::Result<Cluster> {
        let exe = std::env::current_exe()?;
        let porch = exe
            .parent()
            .and_then(|d| d.parent())
            .map(|d| d.join("porch"))
            .unwrap();
        anyhow::ensure!(
            porch.exists(),
            "build the binary first: cargo build --release ({} missing)",
            porch.display()
        );
        let id = uuid::Uuid::now_v7().simple().to_string();
        let short = &id[id.len() - 10..];
        let dir = std::env::temp_dir().join(format!("{name}-{short}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("porch.toml"), config)?;
        // The operator's client properties too, as the roles it starts get them.
        let kafka = KafkaConfig {
            topic_prefix: format!("bench{short}."),
            ..KafkaConfig::from_env()?
        };
        let api_port = free_port();
        let mut cluster = Cluster {
            porch,
            config: dir.join("porch.toml"),
            dir,
            kafka,
            keyspace: format!("porch_bench{short}"),
            registry_port: free_port(),
            api_port,
            roles: Vec::new(),
            client: Arc::new(Client::new(format!("http://127.0.0.1:{api_port}"))),
        };

        let registry_listen = format!("127.0.0.1:{}", cluster.registry_port);
        let registry_port = cluster.registry_port;
        cluster.start_role(
            "registry",
            &["registry", "--listen", &registry_listen],
            Some(registry_port),
        );
        cluster.tool(&["topics", "apply"]);
        cluster.tool(&["schema", "migrate"]);
        for p in PROCESSORS {
            cluster.start_processor(p.as_str(), free_port());
        }
        let search = cluster.dir.join("search");
        let search = search.to_str().unwrap().to_string();
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        cluster.start_role(
            "connector-search",
            &[
                "connector",
                "search",
                "--search-dir",
                &search,
                "--listen",
                &listen,
            ],
            Some(port),
        );
        let images = cluster.dir.join("images");
        let (config, images) = (
            cluster.config.to_str().unwrap().to_string(),
            images.to_str().unwrap().to_string(),
        );
        let listen = format!("127.0.0.1:{}", cluster.api_port);
        cluster.start_role(
            "ingest-api",
            &[
                "ingest-api",
                "--config",
                &config,
                "--listen",
                &listen,
                "--search-dir",
                &search,
                "--images-dir",
                &images,
            ],
            None,
        );
        cluster.ready(Duration::from_secs(180)).await?;
        Ok(cluster)
    }

    /// Waits until the API answers, the connector answers and every processor owns all its
    /// tasks.
    async fn ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let partitions = Catalogue::builtin().partitions;
        let deadline = Instant::now() + within;
        loop {
            self.check_alive();
            let client = &self.client;
            let mut ready = client.ok(&format!("{}/readyz", client.base)).await;
            for (name, _, port) in &self.roles {
                let Some(port) = *port else { continue };
                ready &= match name.as_str() {
                    "registry" => true,
                    "connector-search" => {
                        client.ok(&format!("http://127.0.0.1:{port}/readyz")).await
                    }
                    _ => client.metric(port, "porch_tasks").await == Some(partitions as f64),
                };
            }
            if ready {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the roles did not become ready in {} s",
                within.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn registry_topic(&self) -> String {
        format!("{}_porch_schemas", self.kafka.topic_prefix)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.porch);
        c.env("PORCH_KAFKA", &self.kafka.bootstrap)
            .env("PORCH_TOPIC_PREFIX", &self.kafka.topic_prefix)
            .env("PORCH_CQL_KEYSPACE", &self.keyspace)
            .env(
                "PORCH_REGISTRY_URL",
                format!("http://127.0.0.1:{}", self.registry_port),
            )
            .env("PORCH_REGISTRY_TOPIC", self.registry_topic())
            .env(
                "PORCH_LOG",
                std::env::var("PORCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        c
    }

    /// Runs a porch tool to completion, failing the benchmark when it fails.
    pub fn tool(&self, args: &[&str]) {
        let out = self
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .output()
            .expect("run porch");
        assert!(
            out.status.success(),
            "porch {args:?} failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    pub fn start_role(&mut self, name: &str, args: &[&str], port: Option<u16>) {
        let child = self
            .command()
            .args(args)
            .spawn()
            .unwrap_or_else(|e| panic!("start porch {name}: {e}"));
        self.roles.push((name.to_string(), child, port));
    }

    /// Starts `porch processor <p>` (instance `p`) with the run's configuration, its /metrics on
    /// `port`.
    pub fn start_processor(&mut self, p: &str, port: u16) {
        let listen = format!("127.0.0.1:{port}");
        let config = self.config.to_str().unwrap().to_string();
        self.start_role(
            p,
            &[
                "processor",
                p,
                "--instance",
                p,
                "--config",
                &config,
                "--listen",
                &listen,
            ],
            Some(port),
        );
    }

    /// Stops a role with SIGTERM (it leaves its consumer group) and waits for it to exit;
    /// returns its port.
    pub fn stop_role(&mut self, name: &str) -> Option<u16> {
        let i = self.roles.iter().position(|(n, _, _)| n == name)?;
        let (_, mut child, port) = self.roles.remove(i);
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
        port
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        self.roles
            .iter()
            .map(|(n, c, _)| (n.clone(), c.id()))
            .collect()
    }

    /// A role's process id.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.pids()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|p| p.1)
    }

    /// Fails the benchmark if a role has exited.
    pub fn check_alive(&mut self) {
        for (name, child, _) in &mut self.roles {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("porch {name} exited: {status}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.roles {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Every topic of the run carries its prefix: the catalogue's, the registry's and the
        // baseline's scratch topics.
        let deleted = self.kafka.delete_prefixed_topics();
        let dropped = match porch_cql::CqlConfig::from_env() {
            Ok(mut cql) => {
                cql.keyspace = self.keyspace.clone();
                // The driver's future needs an executor; this may run inside the benchmark's
                // runtime.
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(porch_cql::drop_keyspace(&cql)).ok()
                })
                .join()
                .ok()
                .flatten()
                .is_some()
            }
            Err(e) => {
                eprintln!("{e}");
                false
            }
        };
        match deleted {
            Ok(n) => println!(
                "cleaned up: roles killed, {n} topics of prefix {} deleted, keyspace {} {}",
                self.kafka.topic_prefix,
                self.keyspace,
                if dropped { "dropped" } else { "not dropped" }
            ),
            Err(e) => eprintln!(
                "cleanup: could not delete the topics of prefix {}: {e}",
                self.kafka.topic_prefix
            ),
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Client {
    /// Whether GET `url` answers 2xx within a second.
    pub async fn ok(&self, url: &str) -> bool {
        self.http
            .get(url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Every series a role's /metrics gives (name with labels, value); none if it does not answer.
    pub async fn metrics(&self, port: u16) -> Vec<(String, f64)> {
        let text = async {
            self.http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()
        };
        let Some(text) = text.await else {
            return Vec::new();
        };
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, v) = l.rsplit_once(' ')?;
                Some((series.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    /// A gauge or counter of a role's /metrics (its first series).
    pub async fn metric(&self, port: u16, metric: &str) -> Option<f64> {
        value(&self.metrics(port).await, metric)
    }
}

/// The first series of `metric` among a role's series.
pub fn value(series: &[(String, f64)], metric: &str) -> Option<f64> {
    series
        .iter()
        .find(|(s, _)| s == metric || s.starts_with(&format!("{metric}{{")))
        .map(|(_, v)| *v)
}

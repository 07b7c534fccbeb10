//! Drives the built `porch` binary over HTTP: starts `porch up` on a free port with a fresh data
//! directory and a config of its own, and offers small helpers to talk to it.
//!
//! With `PORCH_TEST_BACKEND=distributed` the same tests run on Apache Kafka and Cassandra (from
//! `scripts/engines up`, at PORCH_KAFKA and PORCH_CQL): each test gets its own topic prefix,
//! keyspace and registry, and porch runs as separate processes — `porch registry`,
//! `porch ingest-api`, one `porch processor` per processor and `porch connector search`, `meta`
//! and `mercadolibre`.
#![allow(dead_code)]

pub mod checker;
pub mod load;
pub mod ports;
pub mod python;

pub use porch_schemas::Module;
pub use ports::free_port;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const OPERATOR_KEY: &str = "operator-test-key";

/// Keys of the test tenants: `acme` (regions GB, IN, DE, BR) and `beta`, plus `t00`…`t19` for
/// load tests.
pub fn admin_key(tenant: &str) -> String {
    format!("{tenant}-admin-key")
}

pub fn reader_key(tenant: &str) -> String {
    format!("{tenant}-reader-key")
}

/// The key of `beta`'s external channel adapter (it sells on Mercado Libre too).
pub fn adapter_key(tenant: &str) -> String {
    format!("{tenant}-adapter-key")
}

fn config_toml() -> String {
    let mut s = format!("[operator]\napi_key = \"{OPERATOR_KEY}\"\n\n");
    let mut tenants = vec!["acme".to_string(), "beta".to_string()];
    tenants.extend((0..20).map(|i| format!("t{i:02}")));
    for t in tenants {
        let channels = if t == "beta" {
            "\"storefront\", \"meta\", \"mercadolibre\""
        } else {
            "\"storefront\", \"meta\""
        };
        s.push_str(&format!(
            "[[tenant]]\nid = \"{t}\"\nmode = \"single_brand\"\nregions = [\"GB\", \"IN\", \"DE\", \"BR\"]\nchannels = [{channels}]\n\n\
             [[tenant.key]]\nkey = \"{}\"\nrole = \"admin\"\n\n[[tenant.key]]\nkey = \"{}\"\nrole = \"reader\"\n\n\
             [[tenant.key]]\nkey = \"{}\"\nrole = \"adapter\"\n\n",
            admin_key(&t),
            reader_key(&t),
            adapter_key(&t)
        ));
    }
    s.push_str(
        "[compliance.IN]\nrequired_attributes = [\"tax_code\"]\nbanned_categories = [\"weapons\"]\nreview_categories = [\"supplements\"]\n\n\
         [compliance.BR]\nrequired_attributes = [\"tax_code\"]\n\n\
         [compliance.GB]\nbanned_categories = [\"weapons\"]\n",
    );
    s
}

/// porch's CQL security settings: a test that sets its own drops the caller's.
const CQL_SECURITY_VARS: [&str; 4] = [
    "PORCH_CQL_USER",
    "PORCH_CQL_PASSWORD",
    "PORCH_CQL_TLS",
    "PORCH_CQL_TLS_CA",
];

/// The built `porch`, logging warnings, with nothing of the caller's Kafka client properties
/// (`PORCH_KAFKA_CONFIG_*`) or CQL security settings: for a test that gives its own.
pub fn porch_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_porch"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PORCH_KAFKA_CONFIG_") {
            c.env_remove(k);
        }
    }
    for k in CQL_SECURITY_VARS {
        c.env_remove(k);
    }
    c.env("PORCH_LOG", "warn");
    c
}

/// Runs `command` until it ends, or for `limit` at most and then kills it; returns its status
/// and what it wrote where the caller piped its stdout or stderr (read while it runs, so a
/// process that writes much never blocks), and whether it had to be killed.
pub fn output_within(command: &mut Command, limit: Duration) -> (std::process::Output, bool) {
    fn drain<R: std::io::Read + Send + 'static>(
        pipe: Option<R>,
    ) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let mut child = command.spawn().expect("start the process");
    let (stdout, stderr) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = Instant::now() + limit;
    let (status, killed) = loop {
        if let Some(status) = child.try_wait().expect("wait for the process") {
            break (status, false);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break (child.wait().expect("wait for the killed process"), true);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    (output, killed)
}

/// The line of a failed `porch` that gives its error (after whatever it logged before).
pub fn error_line(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"))
        .to_string()
}

/// The processors, each its own process in the distributed mode: one per module, named after it.
pub const PROCESSORS: [Module; 8] = Module::ALL;

/// Whether the tests run on Kafka and Cassandra rather than `porch up`.
pub fn distributed() -> bool {
    std::env::var("PORCH_TEST_BACKEND").as_deref() == Ok("distributed")
}

/// A running porch: `porch up`, or the distributed roles.
pub struct Porch {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    /// Distributed mode: the cluster settings and the role processes, by name.
    cluster: Option<Cluster>,
    roles: Vec<(String, Child)>,
    /// Health port of each role that has no API of its own (processors, connectors).
    pub role_ports: std::collections::HashMap<String, u16>,
    pub http: reqwest::Client,
}

/// Where one test's distributed porch lives on the shared engines.
#[derive(Clone)]
pub struct Cluster {
    pub prefix: String,
    pub keyspace: String,
    pub registry_port: u16,
    /// How the roles reach the engines instead of the tests' own way (another Kafka listener,
    /// PORCH_KAFKA_CONFIG_* properties, PORCH_CQL_TLS_CA); the tests' own clients stay on
    /// PORCH_KAFKA and PORCH_CQL.
    pub role_env: Vec<(String, String)>,
}

impl Cluster {
    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PORCH_TOPIC_PREFIX".into(), self.prefix.clone()),
            ("PORCH_CQL_KEYSPACE".into(), self.keyspace.clone()),
            (
                "PORCH_REGISTRY_URL".into(),
                format!("http://127.0.0.1:{}", self.registry_port),
            ),
            (
                "PORCH_REGISTRY_TOPIC".into(),
                format!("{}_porch_schemas", self.prefix),
            ),
            (
                "PORCH_LOG".into(),
                std::env::var("PORCH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ];
        env.extend(self.role_env.iter().cloned());
        env
    }
}

impl Porch {
    /// Starts porch on a fresh data directory: `porch up`, or the distributed roles when
    /// PORCH_TEST_BACKEND=distributed.
    pub async fn start() -> Porch {
        Self::start_with(distributed(), Vec::new()).await
    }

    /// Starts the distributed roles on Kafka and Cassandra, whatever PORCH_TEST_BACKEND says.
    pub async fn start_distributed() -> Porch {
        Self::start_with(true, Vec::new()).await
    }

    /// Starts the distributed roles with `role_env` added to their environment (another
    /// listener, client properties, TLS to the store).
    pub async fn start_distributed_with(role_env: Vec<(String, String)>) -> Porch {
        Self::start_with(true, role_env).await
    }

    /// Starts porch (on the backend PORCH_TEST_BACKEND names) with `extra` appended to its
    /// config file (connector settings, tenants' connections).
    pub async fn start_with_config(extra: &str) -> Porch {
        Self::start_configured(distributed(), Vec::new(), extra).await
    }

    async fn start_with(distributed: bool, role_env: Vec<(String, String)>) -> Porch {
        Self::start_configured(distributed, role_env, "").await
    }

    async fn start_configured(
        distributed: bool,
        role_env: Vec<(String, String)>,
        extra: &str,
    ) -> Porch {
        let dir = std::env::temp_dir().join(format!("porch-e2e-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("porch.toml"),
            format!("{}\n{extra}", config_toml()),
        )
        .unwrap();
        let mut cluster = distributed.then(|| {
            let id = uuid::Uuid::now_v7().simple().to_string();
            let short = &id[id.len() - 10..];
            Cluster {
                prefix: format!("t{short}."),
                keyspace: format!("porch_t{short}"),
                registry_port: free_port(),
                role_env,
            }
        });
        let port = free_port();
        if let Some(c) = cluster.as_mut().filter(|c| {
            !c.role_env
                .iter()
                .any(|(k, _)| k == "PORCH_MEDIA_PUBLIC_URL")
        }) {
            // Every role links images under the API's own /media, as `porch up` does.
            c.role_env.push((
                "PORCH_MEDIA_PUBLIC_URL".into(),
                format!("http://127.0.0.1:{port}/media"),
            ));
        }
        let mut p = Porch {
            dir,
            port,
            child: None,
            cluster,
            roles: Vec::new(),
            role_ports: Default::default(),
            http: reqwest::Client::new(),
        };
        if p.cluster.is_some() {
            p.prepare_cluster();
        }
        p.spawn().await;
        p
    }

    /// The distributed settings of this porch (None on `porch up`).
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    fn porch(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_porch"));
        if let Some(cluster) = &self.cluster {
            c.envs(cluster.env());
        }
        c.stdout(Stdio::null()).stderr(Stdio::inherit());
        c
    }

    /// Runs a porch tool to completion (topics apply, schema migrate), asserting success.
    pub fn tool(&self, args: &[&str]) -> String {
        let out = self
            .porch()
            .args(args)
            .stdout(Stdio::piped())
            .output()
            .expect("run porch");
        assert!(out.status.success(), "porch {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Topics, keyspace and registry of a fresh distributed porch.
    fn prepare_cluster(&mut self) {
        self.tool(&["topics", "apply"]);
        self.tool(&["schema", "migrate"]);
        let port = self.cluster.as_ref().unwrap().registry_port;
        self.start_role(
            "registry",
            &["registry", "--listen", &format!("127.0.0.1:{port}")],
        );
    }

    /// Starts one role process (replacing a dead one of the same name).
    pub fn start_role(&mut self, name: &str, args: &[&str]) {
        let mut command = self.porch();
        command.args(args);
        self.start_command(name, command);
    }

    fn start_command(&mut self, name: &str, mut command: Command) {
        let child = command.spawn().expect("start a porch role");
        self.roles.retain(|(n, _)| n != name);
        self.roles.push((name.to_string(), child));
    }

    /// Starts a processor process under `name` (e.g. "offer", or "offer-2" for a second member)
    /// without an instance id: it takes the first free `<host>-<machine>-<n>` of its group.
    pub fn start_processor(&mut self, name: &str, processor: &str) {
        let command = self.processor_command(name, processor, &[]);
        self.start_command(name, command);
    }

    /// Starts a processor process under `name` with the instance id `instance` (the end of its
    /// transactional id), as if on another machine: in an instance scope of its own
    /// (`PORCH_INSTANCE_SCOPE`), it does not see the ids this machine's processes hold.
    pub fn start_processor_elsewhere_as(&mut self, name: &str, processor: &str, instance: &str) {
        let mut command = self.processor_command(name, processor, &["--instance", instance]);
        command.env("PORCH_INSTANCE_SCOPE", format!("elsewhere {name}"));
        self.start_command(name, command);
    }

    /// Runs a processor with the instance id `instance` on this machine, expecting it to refuse
    /// to start: its exit status and standard error, or a panic if it still runs after 60 s.
    /// Its store is an address nothing answers, where a processor waits for the store for
    /// ever: it must refuse before it connects.
    pub fn processor_refused(&mut self, processor: &str, instance: &str) -> (ExitStatus, String) {
        let mut command = self.processor_command("refused", processor, &["--instance", instance]);
        command
            .env("PORCH_CQL", "127.0.0.1:1")
            .stderr(Stdio::piped());
        let (out, killed) = output_within(&mut command, Duration::from_secs(60));
        assert!(
            !killed,
            "porch processor {processor} --instance {instance} still runs after 60 s"
        );
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `porch connector <connector>` under `name` (replacing a dead one), with the test's
    /// config and a health port of its own.
    pub fn start_connector(&mut self, name: &str, connector: &str) {
        let config = self.dir.join("porch.toml");
        let port = *self
            .role_ports
            .entry(name.to_string())
            .or_insert_with(free_port);
        let mut command = self.porch();
        command.args([
            "connector",
            connector,
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        self.start_command(name, command);
    }

    /// The command of a processor role under `name`, on its own port.
    fn processor_command(&mut self, name: &str, processor: &str, extra: &[&str]) -> Command {
        let config = self.dir.join("porch.toml");
        let port = *self
            .role_ports
            .entry(name.to_string())
            .or_insert_with(free_port);
        let mut command = self.porch();
        command
            .args([
                "processor",
                processor,
                "--config",
                config.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(extra);
        command
    }

    /// A role's instance id, from its `porch_instance_info` on /metrics.
    pub async fn role_instance(&self, name: &str) -> Option<String> {
        let text = self.role_metrics(name).await?;
        let line = text
            .lines()
            .find(|l| l.starts_with("porch_instance_info{"))?;
        let (_, rest) = line.split_once("instance=\"")?;
        Some(rest.split_once('"')?.0.to_string())
    }

    /// The text of a role's /metrics, or None while it does not answer.
    pub async fn role_metrics(&self, name: &str) -> Option<String> {
        let port = self.role_ports.get(name)?;
        let r = self
            .http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .ok()?;
        r.text().await.ok()
    }

    /// Whether a role's /readyz answers 200 (None while it does not answer at all).
    pub async fn role_ready(&self, name: &str) -> Option<bool> {
        let port = self.role_ports.get(name)?;
        let r = self
            .http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        Some(r.status().is_success())
    }

    /// A gauge or counter of a role's /metrics (the first sample of that name).
    pub async fn role_metric(&self, name: &str, metric: &str) -> Option<f64> {
        let text = self.role_metrics(name).await?;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// SIGKILL of one role process.
    pub fn kill_role(&mut self, name: &str) {
        if let Some(i) = self.roles.iter().position(|(n, _)| n == name) {
            let (_, mut c) = self.roles.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn spawn(&mut self) {
        if self.cluster.is_some() {
            return self.spawn_distributed().await;
        }
        let child = Command::new(env!("CARGO_BIN_EXE_porch"))
            .args(["up", "--config"])
            .arg(self.dir.join("porch.toml"))
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .env(
                "PORCH_LOG",
                std::env::var("PORCH_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start porch up");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "porch did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn spawn_distributed(&mut self) {
        for p in PROCESSORS {
            self.start_processor(p.as_str(), p.as_str());
        }
        let search = self.dir.join("search");
        self.start_role(
            "connector-search",
            &[
                "connector",
                "search",
                "--search-dir",
                search.to_str().unwrap(),
            ],
        );
        self.start_connector("connector-meta", "meta");
        self.start_connector("connector-mercadolibre", "mercadolibre");
        self.start_ingest_api().await;
    }

    /// Starts `porch ingest-api` (again, after `kill_role("ingest-api")`) and waits until it
    /// answers ready.
    pub async fn start_ingest_api(&mut self) {
        let search = self.dir.join("search");
        let images = self.dir.join("images");
        let config = self.dir.join("porch.toml");
        let listen = format!("127.0.0.1:{}", self.port);
        self.start_role(
            "ingest-api",
            &[
                "ingest-api",
                "--config",
                config.to_str().unwrap(),
                "--listen",
                &listen,
                "--search-dir",
                search.to_str().unwrap(),
                "--images-dir",
                images.to_str().unwrap(),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            // A role that exits while the others start (bad settings, a port taken) fails the
            // start at once, with its name, rather than as an API that never gets ready.
            for (name, child) in &mut self.roles {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("porch role {name} exited while starting: {status}");
                }
            }
            assert!(
                Instant::now() < deadline,
                "porch ingest-api did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no shutdown code runs. In the distributed mode every role but the registry.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        let names: Vec<String> = self
            .roles
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n != "registry")
            .collect();
        for n in names {
            self.kill_role(&n);
        }
    }

    /// Starts porch again on the same data directory and port.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub async fn req(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        self.req(reqwest::Method::GET, key, path, None).await
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.req(reqwest::Method::POST, key, path, Some(body)).await
    }

    /// Sends a command, expects 202, waits for its outcome and returns the command status.
    pub async fn command(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Value,
    ) -> Value {
        let (status, accepted) = self.req(method, key, path, Some(body)).await;
        assert_eq!(status, 202, "{path}: {accepted}");
        let id = accepted["command_id"]
            .as_str()
            .expect("command id")
            .to_string();
        // An outcome normally comes within the first wait; on a loaded machine the distributed
        // roles (still joining their groups right after start) may take longer.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (s, outcome) = self
                .get(key, &format!("/v1/commands/{id}?wait=10000"))
                .await;
            assert_eq!(s, 200, "{outcome}");
            if outcome["status"] != "ACCEPTED" || Instant::now() >= deadline {
                return outcome;
            }
        }
    }

    /// Like `command`, and asserts it was APPLIED.
    pub async fn applied(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Value,
    ) -> Value {
        let outcome = self.command(method, key, path, body).await;
        assert_eq!(outcome["status"], "APPLIED", "{path}: {outcome}");
        outcome
    }

    /// Polls `f` until it returns Some, or fails after `secs`.
    pub async fn eventually<T, F, Fut>(&self, what: &str, secs: u64, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(t) = f().await {
                return t;
            }
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every record of a topic (all partitions), read through the operator's topic API.
    pub async fn topic(&self, topic: &str) -> Vec<Value> {
        let (s, info) = self.get(OPERATOR_KEY, &format!("/v1/topics/{topic}")).await;
        assert_eq!(s, 200, "{info}");
        let partitions = info["partitions"].as_array().expect("partitions").len();
        let mut out = Vec::new();
        for p in 0..partitions {
            let mut from = 0u64;
            loop {
                let (s, page) = self
                    .get(
                        OPERATOR_KEY,
                        &format!(
                            "/v1/topics/{topic}/partitions/{p}/records?from={from}&limit=1000"
                        ),
                    )
                    .await;
                assert_eq!(s, 200, "{page}");
                let recs = page["records"].as_array().cloned().unwrap_or_default();
                if recs.is_empty() {
                    break;
                }
                from = recs.last().unwrap()["offset"].as_u64().unwrap() + 1;
                out.extend(recs);
            }
        }
        out
    }

    /// Total records on a topic (sum of end offsets).
    pub async fn topic_len(&self, topic: &str) -> u64 {
        let (s, info) = self.get(OPERATOR_KEY, &format!("/v1/topics/{topic}")).await;
        assert_eq!(s, 200, "{info}");
        info["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["end_offset"].as_u64().unwrap())
            .sum()
    }

    pub async fn search(&self, key: &str, query: &str) -> Vec<Value> {
        let (s, page) = self.get(key, &format!("/v1/search?{query}")).await;
        assert_eq!(s, 200, "{page}");
        page["hits"].as_array().cloned().unwrap_or_default()
    }
}

/// Removes what a test's cluster left on the shared engines: its topics (so that the shared
/// broker does not carry every test's partitions; a restart reloads them all), and its
/// keyspace (every keyspace's tables hold Cassandra heap while they exist).
fn clean_up(cluster: &Cluster) {
    let kafka = porch_topics::KafkaConfig {
        bootstrap: std::env::var("PORCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        topic_prefix: cluster.prefix.clone(),
        ..Default::default()
    };
    let _ = kafka.delete_prefixed_topics();
    // Drop may run while the test is panicking already: a second panic would abort.
    let mut cql = match porch_cql::CqlConfig::from_env() {
        Ok(cql) => cql,
        Err(e) => {
            eprintln!("keyspace {} not dropped: {e}", cluster.keyspace);
            return;
        }
    };
    cql.keyspace = cluster.keyspace.clone();
    let work = move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        if let Err(e) = rt.block_on(porch_cql::drop_keyspace(&cql)) {
            eprintln!("keyspace {} not dropped: {e}", cql.keyspace);
        }
    };
    // On a thread of its own: Drop may run inside the test's runtime.
    let _ = std::thread::spawn(work).join();
}

impl Drop for Porch {
    fn drop(&mut self) {
        // PORCH_TEST_KEEP=1 keeps a failed test's roles running, and its topics and keyspace,
        // for a look afterwards.
        let keep =
            std::thread::panicking() && std::env::var("PORCH_TEST_KEEP").as_deref() == Ok("1");
        if keep {
            for (name, child) in &self.roles {
                eprintln!("kept role {name}: pid {}", child.id());
            }
            if let Some(c) = &self.cluster {
                eprintln!("kept topics {}* and keyspace {}", c.prefix, c.keyspace);
            }
            return;
        }
        self.kill9();
        self.kill_role("registry");
        if let Some(c) = &self.cluster {
            clean_up(c);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A product with one variant, a GB offer and stock in London, until the offer is ACTIVE:
/// events on product.events, offer.events and activation.events. Returns the offer id.
pub async fn list_one_offer(p: &Porch, key: &str, id: &str) -> String {
    p.applied(
        reqwest::Method::POST,
        key,
        "/v1/products",
        product_body(id, "Linen shirt", "apparel", true),
    )
    .await;
    let sku = format!("{id}-M");
    p.applied(
        reqwest::Method::POST,
        key,
        &format!("/v1/products/{id}/variants"),
        json!({ "variants": [{ "sku": sku, "options": { "size": "M" }, "weight_grams": 210 }] }),
    )
    .await;
    let (s, body) = p
        .post(
            key,
            "/v1/locations",
            json!({ "location_id": "lon-1", "region": "GB" }),
        )
        .await;
    assert!(s == 200 || s == 201, "{body}");
    let offer = p
        .applied(
            reqwest::Method::POST,
            key,
            "/v1/offers",
            json!({ "sku": sku, "region": "GB", "price": { "amount_minor": 2500, "currency": "GBP" }, "channels": ["storefront"] }),
        )
        .await["aggregate_id"]
        .as_str()
        .unwrap()
        .to_string();
    p.applied(
        reqwest::Method::PUT,
        key,
        &format!("/v1/inventory/{sku}/lon-1"),
        json!({ "on_hand": 10 }),
    )
    .await;
    p.eventually(&format!("offer {offer} ACTIVE"), 60, || async {
        let (s, view) = p.get(key, &format!("/v1/products/{id}")).await;
        (s == 200
            && view["offers"]
                .as_array()?
                .iter()
                .any(|o| o["offer_id"] == offer.as_str() && o["status"] == "ACTIVE"))
        .then_some(())
    })
    .await;
    offer
}

/// A product body with the IN tax code unless told otherwise.
pub fn product_body(id: &str, title: &str, category: &str, tax_code: bool) -> Value {
    let mut attrs = json!({ "material": "linen" });
    if tax_code {
        attrs["tax_code"] = json!("6205");
    }
    json!({
        "id": id,
        "title": title,
        "description": format!("{title}, made to last"),
        "brand": "Acme",
        "category": category,
        "attributes": attrs,
        "images": ["front.jpg"]
    })
}

/// A listing on a sales channel as merchants see it in the product view.
#[derive(Debug, Clone)]
pub struct ChannelListing {
    pub status: String,
    pub issues: Value,
    pub channel_item_id: Value,
}

/// Every sales-channel listing of a product: (offer id, channel) → what the product view shows.
pub async fn channel_listings(
    p: &Porch,
    key: &str,
    product: &str,
) -> std::collections::BTreeMap<(String, String), ChannelListing> {
    let (s, view) = p.get(key, &format!("/v1/products/{product}")).await;
    assert_eq!(s, 200, "{view}");
    let mut out = std::collections::BTreeMap::new();
    for l in view["listings"].as_array().into_iter().flatten() {
        for c in l["channels"].as_array().into_iter().flatten() {
            let (Some(offer), Some(channel), Some(status)) = (
                l["offer_id"].as_str(),
                c["channel"].as_str(),
                c["status"].as_str(),
            ) else {
                continue;
            };
            out.insert(
                (offer.to_string(), channel.to_string()),
                ChannelListing {
                    status: status.to_string(),
                    issues: c["issues"].clone(),
                    channel_item_id: c["channel_item_id"].clone(),
                },
            );
        }
    }
    out
}

/// Waits until the products have `per_product` listings each on `channels`, every one LIVE or
/// REJECTED: their states by (product, offer, channel).
pub async fn all_settled(
    p: &Porch,
    key: &str,
    products: &[String],
    channels: &[&str],
    per_product: usize,
    secs: u64,
) -> std::collections::BTreeMap<(String, String, String), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let mut states = std::collections::BTreeMap::new();
        for chunk in products.chunks(20) {
            let views = futures::future::join_all(
                chunk
                    .iter()
                    .map(|id| async move { (id, channel_listings(p, key, id).await) }),
            )
            .await;
            for (id, listings) in views {
                for ((offer, channel), l) in listings {
                    if channels.contains(&channel.as_str()) {
                        states.insert((id.clone(), offer, channel), l.status);
                    }
                }
            }
        }
        if states.len() == products.len() * per_product
            && states.values().all(|s| s == "LIVE" || s == "REJECTED")
        {
            return states;
        }
        let mut counts = std::collections::BTreeMap::<&String, usize>::new();
        for s in states.values() {
            *counts.entry(s).or_default() += 1;
        }
        assert!(
            Instant::now() < deadline,
            "not every listing settled: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

//! porch on a CQL cluster that asks every client for a login, as a secured ScyllaDB does: the
//! `cassandra-login` node of `scripts/engines` (PasswordAuthenticator, permissions checked by
//! CassandraAuthorizer). The test starts it, and stops it afterwards unless it was already
//! running. porch logs in as a role of its own that may only create keyspaces (Cassandra grants
//! a keyspace's creator every permission on it), and as one granted only a keyspace an operator
//! made beforehand, as operators set them up.

mod common;

use common::{error_line, output_within, porch_command};
use porch_cql::{CqlConfig, CqlStore, Credentials};
use porch_processors::store::{tables, ProjectionStore, StoreError};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ENGINES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/engines");

/// The login node, up for as long as this lives.
struct LoginNode {
    /// `host:port` of its CQL port.
    node: String,
    superuser: String,
    password: String,
    started_here: bool,
}

impl LoginNode {
    fn up() -> Self {
        // Running, answering or not yet: another run's node still starting is not ours to stop.
        let status = Command::new(ENGINES)
            .args(["status", "cassandra-login"])
            .output()
            .expect("run scripts/engines status");
        let was_up =
            String::from_utf8_lossy(&status.stdout).starts_with("cassandra-login: running");
        let out = Command::new(ENGINES)
            .args(["up", "cassandra-login"])
            .output()
            .expect("run scripts/engines up cassandra-login");
        assert!(
            out.status.success(),
            "scripts/engines up cassandra-login failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let settings: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let setting = |name: &str| {
            settings
                .get(name)
                .unwrap_or_else(|| panic!("scripts/engines up cassandra-login printed no {name}"))
                .clone()
        };
        LoginNode {
            node: setting("PORCH_CQL_LOGIN"),
            superuser: setting("PORCH_CQL_LOGIN_USER"),
            password: setting("PORCH_CQL_LOGIN_PASSWORD"),
            started_here: !was_up,
        }
    }

    async fn superuser_session(&self) -> Session {
        SessionBuilder::new()
            .known_node(&self.node)
            .user(&self.superuser, &self.password)
            .build()
            .await
            .expect("the superuser's session")
    }

    fn config(&self, keyspace: &str, login: Option<(&str, &str)>) -> CqlConfig {
        CqlConfig {
            nodes: vec![self.node.clone()],
            keyspace: keyspace.to_string(),
            replication_factor: 1,
            request_timeout: Duration::from_secs(10),
            credentials: login.map(|(user, password)| Credentials {
                user: user.to_string(),
                password: password.to_string(),
            }),
            tls: None,
        }
    }

    /// `porch <args>` against this node, logged in as `login` if given; a run that has not
    /// ended within a minute is killed, and its output ends with a line that says so.
    fn porch(&self, args: &[&str], keyspace: &str, login: Option<(&str, &str)>) -> Output {
        let mut c = porch_command();
        if let Some((user, password)) = login {
            c.env("PORCH_CQL_USER", user)
                .env("PORCH_CQL_PASSWORD", password);
        }
        c.args(args)
            .env("PORCH_CQL", &self.node)
            .env("PORCH_CQL_KEYSPACE", keyspace)
            // Nothing listens here: a role that went past its store would wait, not fail.
            .env("PORCH_REGISTRY_URL", "http://127.0.0.1:9")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (mut out, killed) = output_within(&mut c, Duration::from_secs(60));
        if killed {
            out.stderr
                .extend_from_slice(b"\n(still running after a minute: killed)\n");
        }
        out
    }
}

impl Drop for LoginNode {
    fn drop(&mut self) {
        if self.started_here {
            let _ = Command::new(ENGINES)
                .args(["down", "cassandra-login"])
                .output();
        }
    }
}

/// Runs each statement as the superuser.
async fn as_superuser(admin: &Session, statements: &[String]) {
    for cql in statements {
        admin
            .query_unpaged(cql.as_str(), ())
            .await
            .unwrap_or_else(|e| panic!("{cql}: {e}"));
    }
}

/// Asserts that porch's tables are in `keyspace`.
async fn assert_migrated(admin: &Session, keyspace: &str) {
    let tables: Vec<String> = admin
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
            (keyspace,),
        )
        .await
        .expect("system_schema.tables")
        .into_rows_result()
        .expect("rows")
        .rows::<(String,)>()
        .expect("table_name")
        .map(|row| row.expect("a name").0)
        .collect();
    assert!(
        tables.iter().any(|t| t == "rows_by_key") && tables.iter().any(|t| t == "checkpoint"),
        "the migration made {tables:?} in {keyspace}"
    );
}

/// The users the node's client connections logged in as, each with its count.
async fn logged_in(admin: &Session) -> HashMap<String, usize> {
    let rows = admin
        .query_unpaged("SELECT username FROM system_views.clients", ())
        .await
        .expect("system_views.clients")
        .into_rows_result()
        .expect("rows");
    let mut users = HashMap::new();
    for row in rows.rows::<(Option<String>,)>().expect("username") {
        if let Ok((Some(user),)) = row {
            *users.entry(user).or_default() += 1;
        }
    }
    users
}

#[tokio::test(flavor = "multi_thread")]
async fn porch_logs_in_to_a_cluster_that_asks_for_one_and_stops_at_a_refused_login() {
    let login = LoginNode::up();
    let admin = login.superuser_session().await;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let id = &id[id.len() - 10..];
    let (user, password) = (format!("porch_{id}"), format!("secret-{id}"));
    let keyspace = format!("porch_login_{id}");
    as_superuser(
        &admin,
        &[
            format!("CREATE ROLE {user} WITH PASSWORD = '{password}' AND LOGIN = true"),
            format!("GRANT CREATE ON ALL KEYSPACES TO {user}"),
        ],
    )
    .await;
    let good = Some((user.as_str(), password.as_str()));

    // The schema, migrated by porch logged in as its own user: the keyspace is porch's.
    let out = login.porch(&["schema", "migrate"], &keyspace, good);
    assert!(
        out.status.success(),
        "porch schema migrate as {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_migrated(&admin, &keyspace).await;

    // A keyspace an operator made beforehand, and a login granted that keyspace alone: the
    // migration fills it without the permission to create keyspaces.
    let (narrow, narrow_keyspace) = (format!("narrow_{id}"), format!("porch_narrow_{id}"));
    as_superuser(
        &admin,
        &[
            format!(
                "CREATE KEYSPACE {narrow_keyspace} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
            ),
            format!("CREATE ROLE {narrow} WITH PASSWORD = '{password}' AND LOGIN = true"),
            format!("GRANT ALL PERMISSIONS ON KEYSPACE {narrow_keyspace} TO {narrow}"),
        ],
    )
    .await;
    let out = login.porch(
        &["schema", "migrate"],
        &narrow_keyspace,
        Some((narrow.as_str(), password.as_str())),
    );
    assert!(
        out.status.success(),
        "porch schema migrate as {narrow}, granted only {narrow_keyspace}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_migrated(&admin, &narrow_keyspace).await;

    // The store the roles use, logged in: a claim (a lightweight transaction), a write and the
    // reads of both.
    let store = CqlStore::connect(&login.config(&keyspace, good))
        .await
        .expect("the store, logged in");
    assert_eq!(
        store
            .claim(tables::IDEMPOTENCY, "login/first", b"one".to_vec())
            .await
            .expect("a claim"),
        None
    );
    assert_eq!(
        store
            .claim(tables::IDEMPOTENCY, "login/first", b"two".to_vec())
            .await
            .expect("a second claim"),
        Some(b"one".to_vec()),
        "the key was claimed once"
    );
    store
        .save_checkpoint("login-group", 0, b"checkpoint".to_vec(), 1)
        .await
        .expect("a write");
    assert_eq!(
        store
            .load_checkpoint("login-group", 0)
            .await
            .expect("a read"),
        Some(b"checkpoint".to_vec())
    );
    let users = logged_in(&admin).await;
    assert!(
        users.get(&user).is_some_and(|n| *n >= 1),
        "no connection of the node is logged in as {user}: {users:?}"
    );
    drop(store);

    // A wrong password, or none, is refused naming the settings: the migration stops at once,
    // a role once the refusal has lasted (it waits out a cluster still loading its logins, never
    // for good); the password is never printed.
    let wrong = format!("not-{password}");
    for (login_given, told) in [
        (Some((user.as_str(), wrong.as_str())), "refused the login"),
        (None, "asks for a login"),
    ] {
        let Err(e) = CqlStore::connect(&login.config(&keyspace, login_given)).await else {
            panic!("a session without a good login");
        };
        assert!(
            matches!(&e, StoreError::Refused(m) if m.contains(told)),
            "{e:?}"
        );
        let scratch = std::env::temp_dir().join(format!("porch-{keyspace}-api"));
        let scratch = scratch.to_str().expect("a UTF-8 path");
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/porch.example.toml");
        for args in [
            &["schema", "migrate"][..],
            &["processor", "product", "--listen", "127.0.0.1:0"][..],
            &[
                "ingest-api",
                "--config",
                config,
                "--listen",
                "127.0.0.1:0",
                "--search-dir",
                scratch,
                "--images-dir",
                scratch,
            ][..],
        ] {
            let started = Instant::now();
            let out = login.porch(args, &keyspace, login_given);
            let took = started.elapsed();
            assert!(!out.status.success(), "porch {args:?} ran without a login");
            let line = error_line(&out);
            assert!(
                line.contains(told)
                    && line.contains("PORCH_CQL_USER")
                    && line.contains("PORCH_CQL_PASSWORD"),
                "porch {args:?}: {line}"
            );
            // The good password is part of the wrong one: neither is printed.
            assert!(
                !String::from_utf8_lossy(&out.stderr).contains(&password),
                "porch {args:?} printed the password"
            );
            assert!(
                took < Duration::from_secs(30),
                "porch {args:?} took {took:?} to stop"
            );
        }
    }
    as_superuser(
        &admin,
        &[
            format!("DROP KEYSPACE {keyspace}"),
            format!("DROP KEYSPACE {narrow_keyspace}"),
            format!("DROP ROLE {user}"),
            format!("DROP ROLE {narrow}"),
        ],
    )
    .await;
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("porch-{keyspace}-api")));
}

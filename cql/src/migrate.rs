//! Versioned schema migrations: `migrations/NNNN_name.cql`, embedded, applied in order once
//! each and recorded in `<keyspace>.schema_migrations` with a checksum of their statements.

use crate::config::CqlConfig;
use crate::store::rows_of;
use porch_processors::store::StoreError;
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::serialize::row::SerializeRow;
use std::collections::BTreeMap;

/// Every migration, in order. A new one is appended here with the next number; an applied one
/// is never edited (migrate refuses to run when its statements changed).
const MIGRATIONS: &[(&str, &str)] = &[("0001_store", include_str!("../migrations/0001_store.cql"))];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Migration {
    pub version: i32,
    /// The file stem, `0001_store`.
    pub file: &'static str,
    /// The part after the number, `store`.
    pub name: &'static str,
    pub statements: Vec<String>,
    pub checksum: String,
}

pub(crate) fn migrations() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|(file, text)| {
            let (number, name) = file.split_once('_').unwrap_or((file, ""));
            let statements = statements(text);
            Migration {
                version: number.parse().unwrap_or(0),
                file,
                name,
                checksum: checksum(&statements),
                statements,
            }
        })
        .collect()
}

/// The statements of a migration file: split at `;`, `--` comments dropped, whitespace
/// collapsed; quoted strings and identifiers are kept as written.
pub(crate) fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    let push_space = |current: &mut String| {
        if !current.is_empty() && !current.ends_with(' ') {
            current.push(' ');
        }
    };
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            current.push(c);
            if c == q {
                // A doubled quote is an escaped one and stays inside the string.
                if chars.peek() == Some(&q) {
                    current.push(q);
                    chars.next();
                } else {
                    quote = None;
                }
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                current.push(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                push_space(&mut current);
            }
            ';' => {
                let statement = current.trim();
                if !statement.is_empty() {
                    out.push(statement.to_string());
                }
                current.clear();
            }
            c if c.is_whitespace() => push_space(&mut current),
            c => current.push(c),
        }
    }
    let statement = current.trim();
    if !statement.is_empty() {
        out.push(statement.to_string());
    }
    out
}

/// FNV-1a (64 bits) of the statements: a changed statement changes it; comments and layout
/// do not. It detects edits, it does not defend against forgery.
pub(crate) fn checksum(statements: &[String]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for s in statements {
        for b in s.bytes().chain(std::iter::once(b';')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn failed(what: impl std::fmt::Display, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{what}: {e}"))
}

async fn run(session: &Session, statement: &str) -> Result<(), StoreError> {
    session
        .query_unpaged(statement, ())
        .await
        .map_err(|e| failed(format!("running {statement:?}"), e))?;
    Ok(())
}

/// Runs a query that is not prepared (migrate reads the schema once) and returns its rows.
async fn select<R>(
    session: &Session,
    what: &str,
    statement: &str,
    values: impl SerializeRow,
) -> Result<Vec<R>, StoreError>
where
    R: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    let answer = session
        .query_unpaged(statement, values)
        .await
        .map_err(|e| failed(what, e))?;
    rows_of(answer, what)
}

async fn agree(session: &Session) -> Result<(), StoreError> {
    session
        .await_schema_agreement()
        .await
        .map_err(|e| failed("waiting for schema agreement", e))?;
    Ok(())
}

/// Drops the configured keyspace and everything in it (test and benchmark runs clean up with
/// it; each keyspace's tables hold memory in every node for as long as they exist).
pub async fn drop_keyspace(config: &CqlConfig) -> Result<(), StoreError> {
    let ks = config.keyspace()?;
    let session = config.open().await?;
    run(&session, &format!("DROP KEYSPACE IF EXISTS {ks}")).await?;
    agree(&session).await
}

/// Creates the keyspace if absent (SimpleStrategy with the configured replication factor; an
/// operator may create it beforehand with NetworkTopologyStrategy, and then grant porch's login
/// only that keyspace's permissions) and applies the migrations not yet applied, in order.
/// Returns the files applied now, `["0001_store", …]`.
///
/// Fails without applying anything when an applied migration's statements have changed since.
/// Run it from one process at a time (a deploy step or `porch` start-up), not from every
/// replica at once: concurrent schema changes on one table can disagree.
pub async fn migrate(config: &CqlConfig) -> Result<Vec<String>, StoreError> {
    let ks = config.keyspace()?;
    let session = config.open().await?;
    // Not even IF NOT EXISTS for a keyspace that is there: the cluster checks the permission to
    // create keyspaces before it looks, and a login granted only this keyspace has none.
    let present: Vec<(String,)> = select(
        &session,
        "reading system_schema.keyspaces",
        "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
        // The name unquoted in CQL, as the cluster keeps it.
        (ks.to_ascii_lowercase(),),
    )
    .await?;
    if present.is_empty() {
        run(
            &session,
            &format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = \
                 {{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                config.replication_factor.max(1)
            ),
        )
        .await?;
    }
    run(
        &session,
        &format!(
            "CREATE TABLE IF NOT EXISTS {ks}.schema_migrations \
             (version int PRIMARY KEY, name text, checksum text, applied_at timestamp)"
        ),
    )
    .await?;
    agree(&session).await?;
    session
        .use_keyspace(ks, false)
        .await
        .map_err(|e| failed(format!("using keyspace {ks}"), e))?;

    let applied: BTreeMap<i32, String> = select::<(i32, Option<String>)>(
        &session,
        "reading schema_migrations",
        "SELECT version, checksum FROM schema_migrations",
        (),
    )
    .await?
    .into_iter()
    .map(|(v, sum)| (v, sum.unwrap_or_default()))
    .collect();

    let all = migrations();
    for m in &all {
        if let Some(recorded) = applied.get(&m.version) {
            if *recorded != m.checksum {
                return Err(StoreError::Backend(format!(
                    "migration {} was changed after it was applied to keyspace {ks} \
                     (checksum {recorded} recorded, {} now): add a new migration instead",
                    m.file, m.checksum
                )));
            }
        }
    }
    if let Some(newest) = applied.keys().next_back() {
        if all.iter().all(|m| m.version < *newest) {
            tracing::warn!(
                keyspace = ks,
                version = newest,
                "the keyspace has migrations this build does not know"
            );
        }
    }

    let mut done = Vec::new();
    for m in all.iter().filter(|m| !applied.contains_key(&m.version)) {
        for statement in &m.statements {
            run(&session, statement).await?;
        }
        agree(&session).await?;
        // With no bound values, not a prepared statement: Cassandra warns about every
        // statement prepared on a session that has a keyspace in use (as this one does, for the
        // migrations' unqualified names). The values are ours: a number and two plain names.
        let literal = |text: &str| format!("'{}'", text.replace('\'', "''"));
        session
            .query_unpaged(
                format!(
                    "INSERT INTO schema_migrations (version, name, checksum, applied_at) \
                     VALUES ({}, {}, {}, toTimestamp(now()))",
                    m.version,
                    literal(m.name),
                    literal(&m.checksum)
                ),
                (),
            )
            .await
            .map_err(|e| failed(format!("recording migration {}", m.file), e))?;
        tracing::info!(keyspace = ks, migration = m.file, "applied CQL migration");
        done.push(m.file.to_string());
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_semicolons_outside_strings_and_comments() {
        let text = "-- a comment; not a statement\n\
                    CREATE TABLE t (a int PRIMARY KEY)  -- trailing; comment\n\
                    WITH comment = 'it''s -- not; a comment';\n\
                    \n  ;\n\
                    INSERT INTO \"Q;t\" (a) VALUES (1)";
        assert_eq!(
            statements(text),
            vec![
                "CREATE TABLE t (a int PRIMARY KEY) WITH comment = 'it''s -- not; a comment'",
                "INSERT INTO \"Q;t\" (a) VALUES (1)",
            ]
        );
    }

    #[test]
    fn checksum_follows_statements_not_layout() {
        let a = statements("CREATE TABLE t (a int PRIMARY KEY);\n-- note\n");
        let b = statements("-- other note\nCREATE   TABLE t\n(a int PRIMARY KEY)");
        let c = statements("CREATE TABLE t (a bigint PRIMARY KEY);");
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&a), checksum(&c));
        assert_eq!(checksum(&a).len(), 16);
        // Pinned: recorded checksums must stay valid across builds.
        assert_eq!(checksum(&[]), "cbf29ce484222325");
    }

    #[test]
    fn migrations_are_numbered_in_order_and_parse() {
        let all = migrations();
        assert!(!all.is_empty());
        for (i, m) in all.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "{}", m.file);
            assert_eq!(m.file, format!("{:04}_{}", m.version, m.name));
            assert!(!m.name.is_empty());
            assert!(!m.statements.is_empty(), "{} has no statements", m.file);
            for s in &m.statements {
                // The keyspace comes from the session, so one file serves every keyspace.
                assert!(!s.contains('.'), "{}: name no keyspace: {s}", m.file);
            }
        }
        assert_eq!(all[0].statements.len(), 6);
    }
}

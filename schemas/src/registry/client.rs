//! A client of any Confluent-compatible schema registry, by URL.
//!
//! The codec calls the registry synchronously, from plain threads and from `spawn_blocking`,
//! so this client blocks on a `std::net::TcpStream` and never needs (or disturbs) an async
//! runtime. It speaks just the HTTP/1.1 a registry needs: one request per connection, bodies
//! with Content-Length or chunked. Only `http://` URLs: put a TLS-terminating proxy in front of
//! a registry that requires TLS.

use super::{RegistryError, SchemaRegistry};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::RwLock;
use std::time::Duration;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// A registry answer larger than this is not one.
const MAX_RESPONSE: u64 = 64 << 20;

/// The registry client: caches the ids it was given and the schemas it fetched, which never
/// change under an id.
pub struct RegistryClient {
    url: String,
    host: String,
    port: u16,
    /// Path the registry is mounted under, without a trailing slash (usually empty).
    prefix: String,
    timeout: Duration,
    ids: RwLock<HashMap<(String, String), u32>>,
    schemas: RwLock<HashMap<u32, String>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct IdReply {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaReply {
    schema: String,
}

#[derive(Deserialize)]
struct ErrorReply {
    error_code: i64,
    #[serde(default)]
    message: String,
}

impl RegistryClient {
    /// A client of the registry at `url` (`http://host:port`, optionally with a path).
    pub fn new(url: &str) -> Result<Self, RegistryError> {
        let bad = |reason: &str| RegistryError::Unavailable {
            url: url.into(),
            reason: reason.into(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are supported"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))?,
            ),
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let path = path.trim_end_matches('/');
        Ok(Self {
            url: url.trim_end_matches('/').into(),
            host: host.into(),
            port,
            prefix: if path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            },
            timeout: Duration::from_secs(10),
            ids: RwLock::default(),
            schemas: RwLock::default(),
        })
    }

    /// How long connecting, and each read or write, may take (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The registry's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn unavailable(&self, reason: impl ToString) -> RegistryError {
        RegistryError::Unavailable {
            url: self.url.clone(),
            reason: reason.to_string(),
        }
    }

    /// Sends one request and returns the status and body.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>), RegistryError> {
        let stream = self.connect()?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|_| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| self.unavailable(e))?;
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let body = body.unwrap_or("");
        let request = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {host}\r\nAccept: {CONTENT_TYPE}, application/json\r\n\
             Content-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\
             User-Agent: porch\r\n\r\n{body}",
            self.prefix,
            body.len()
        );
        let mut stream = stream;
        stream
            .write_all(request.as_bytes())
            .map_err(|e| self.unavailable(e))?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .map_err(|e| self.unavailable(e))?;
        parse_response(&raw).map_err(|e| self.unavailable(e))
    }

    fn connect(&self) -> Result<TcpStream, RegistryError> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| self.unavailable(e))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(self
            .unavailable(last.map_or_else(|| "the host has no address".into(), |e| e.to_string())))
    }

    /// The registry's error as ours.
    fn error(&self, subject: Option<&str>, status: u16, body: &[u8]) -> RegistryError {
        let (code, message) = match serde_json::from_slice::<ErrorReply>(body) {
            Ok(e) => (e.error_code, e.message),
            Err(_) => (
                i64::from(status),
                String::from_utf8_lossy(body).into_owned(),
            ),
        };
        let subject = subject.unwrap_or_default().to_string();
        match code {
            409 => RegistryError::Incompatible {
                subject,
                messages: vec![message],
            },
            42201 => RegistryError::InvalidSchema {
                subject,
                reason: message,
            },
            40401 => RegistryError::SubjectNotFound(subject),
            _ => RegistryError::Remote {
                status,
                code,
                message,
            },
        }
    }
}

impl SchemaRegistry for RegistryClient {
    fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self.ids.read().expect("client lock").get(&key) {
            return Ok(*id);
        }
        let body = serde_json::json!({ "schema": schema }).to_string();
        let path = format!("/subjects/{}/versions", encode_segment(subject));
        let (status, reply) = self.call("POST", &path, Some(&body))?;
        if !(200..300).contains(&status) {
            return Err(self.error(Some(subject), status, &reply));
        }
        let id = serde_json::from_slice::<IdReply>(&reply)
            .map_err(|e| self.unavailable(format!("unexpected answer to a registration: {e}")))?
            .id;
        self.ids.write().expect("client lock").insert(key, id);
        self.schemas
            .write()
            .expect("client lock")
            .entry(id)
            .or_insert_with(|| schema.to_string());
        Ok(id)
    }

    fn schema_by_id(&self, id: u32) -> Result<Option<String>, RegistryError> {
        if let Some(s) = self.schemas.read().expect("client lock").get(&id) {
            return Ok(Some(s.clone()));
        }
        let (status, reply) = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
        if status == 404 {
            return match serde_json::from_slice::<ErrorReply>(&reply) {
                Ok(e) if e.error_code == 40403 => Ok(None),
                _ => Err(self.error(None, status, &reply)),
            };
        }
        if !(200..300).contains(&status) {
            return Err(self.error(None, status, &reply));
        }
        let schema = serde_json::from_slice::<SchemaReply>(&reply)
            .map_err(|e| self.unavailable(format!("unexpected answer to a schema fetch: {e}")))?
            .schema;
        self.schemas
            .write()
            .expect("client lock")
            .insert(id, schema.clone());
        Ok(Some(schema))
    }
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved characters).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Status and body of a complete HTTP/1.1 response.
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no complete header")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "the header is not text")?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the answer has no status line")?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n).ok_or("the answer ended early")?.to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk has no size line")?;
        let size_line = std::str::from_utf8(&rest[..eol]).map_err(|_| "bad chunk size")?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| "bad chunk size")?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or("the answer ended early")?);
        rest = rest.get(size + 2..).ok_or("the answer ended early")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers each connection with the next canned response and records the
    /// requests it got.
    fn canned(responses: Vec<String>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for response in responses {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 8192];
                let mut req = Vec::new();
                // Read the header, then as much body as Content-Length says.
                loop {
                    let n = s.read(&mut buf).unwrap();
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).to_string();
                    if let Some(at) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if req.len() >= at + 4 + len {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                seen.push(String::from_utf8(req).unwrap());
                s.write_all(response.as_bytes()).unwrap();
            }
            seen
        });
        (url, handle)
    }

    fn reply(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn registers_fetches_and_caches() {
        let (url, server) = canned(vec![
            reply("200 OK", r#"{"id":7}"#),
            // chunked, as some registries answer
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"sch\r\n10\r\nema\":\"\\\"long\\\"\"}\r\n0\r\n\r\n"
                .into(),
            reply("404 Not Found", r#"{"error_code":40403,"message":"Schema not found"}"#),
        ]);
        let c = RegistryClient::new(&format!("{url}/")).unwrap();
        assert_eq!(c.register("a topic-x.Y", r#""string""#).unwrap(), 7);
        assert_eq!(
            c.register("a topic-x.Y", r#""string""#).unwrap(),
            7,
            "cached"
        );
        assert_eq!(c.schema_by_id(7).unwrap().as_deref(), Some(r#""string""#));
        assert_eq!(c.schema_by_id(8).unwrap().as_deref(), Some(r#""long""#));
        assert_eq!(c.schema_by_id(9).unwrap(), None);
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(
            seen[0].starts_with("POST /subjects/a%20topic-x.Y/versions HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(
            seen[0].ends_with(r#"{"schema":"\"string\""}"#),
            "{}",
            seen[0]
        );
        assert!(seen[1].starts_with("GET /schemas/ids/8 HTTP/1.1\r\n"));
    }

    #[test]
    fn registry_errors_keep_their_meaning() {
        let (url, server) = canned(vec![
            reply(
                "409 Conflict",
                r#"{"error_code":409,"message":"Schema being registered is incompatible"}"#,
            ),
            reply(
                "422 Unprocessable Entity",
                r#"{"error_code":42201,"message":"bad"}"#,
            ),
            reply("500 Internal Server Error", "oops"),
        ]);
        let c = RegistryClient::new(&format!("{url}/registry")).unwrap();
        let err = c.register("s", "1").unwrap_err();
        assert!(matches!(err, RegistryError::Incompatible { .. }), "{err}");
        assert!(!err.is_retryable(), "a refusal stays a refusal");
        assert!(matches!(
            c.register("s", "2").unwrap_err(),
            RegistryError::InvalidSchema { .. }
        ));
        let err = c.schema_by_id(1).unwrap_err();
        assert!(
            matches!(err, RegistryError::Remote { status: 500, .. }),
            "{err}"
        );
        assert!(err.is_retryable());
        let seen = server.join().unwrap();
        assert!(seen[0].starts_with("POST /registry/subjects/s/versions "));
    }

    #[test]
    fn an_unreachable_registry_is_an_error_not_a_panic() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = RegistryClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = c.schema_by_id(1).unwrap_err();
        assert!(matches!(err, RegistryError::Unavailable { .. }), "{err}");
        assert!(err.is_retryable());
        for bad in [
            "https://x",
            "x:1",
            "http://:1",
            "http://u:p@h:1",
            "http://h:x",
        ] {
            assert!(RegistryClient::new(bad).is_err(), "{bad}");
        }
    }
}

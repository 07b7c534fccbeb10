//! Product images in object storage (DESIGN §8): a local directory when embedded, an
//! S3-compatible bucket when distributed, both through `object_store`. The catalogue keeps object
//! keys (`<tenant>/<product>/<name>`, `porch_schemas::media::image_key`); views and channel
//! payloads carry absolute URLs under the public base URL.

use crate::config::MediaConfig;
use axum::body::Bytes;
use hmac::Mac;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    CryptoProvider, DigestAlgorithm, DigestContext, HmacContext, SigningAlgorithm,
};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload, RetryConfig,
};
use porch_schemas::{ProductId, TenantId};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The public base URL, over the config file's `media.public_base_url`.
pub const ENV_PUBLIC_URL: &str = "PORCH_MEDIA_PUBLIC_URL";
/// The bucket, over `media.s3.bucket`; set, images go to S3.
pub const ENV_S3_BUCKET: &str = "PORCH_S3_BUCKET";
/// The S3 endpoint (an S3-compatible server), over `media.s3.endpoint`.
pub const ENV_S3_ENDPOINT: &str = "PORCH_S3_ENDPOINT";
/// The S3 region, over `media.s3.region`.
pub const ENV_S3_REGION: &str = "PORCH_S3_REGION";

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A setting that cannot work, named as the operator wrote it.
    #[error("{setting}: {problem}")]
    Setting { setting: String, problem: String },
    #[error("'{0}' is not an object key")]
    Key(String),
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
}

fn bad(setting: &str, problem: impl Into<String>) -> MediaError {
    MediaError::Setting {
        setting: setting.to_string(),
        problem: problem.into(),
    }
}

/// Where the images of an S3-compatible bucket are. Credentials come from the environment as
/// `object_store` reads it (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
/// web identity or instance credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// An S3-compatible server (`http://127.0.0.1:9000`); None for AWS itself.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Plain HTTP to the endpoint.
    pub allow_http: bool,
}

/// The media settings in force: the config file's `[media]` with the environment over it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaSettings {
    /// None: `http://<listen address>/media`, the API's own public route.
    pub public_base_url: Option<String>,
    /// None: a local directory.
    pub s3: Option<S3Settings>,
}

impl MediaSettings {
    /// The file's settings with this process's environment over them.
    pub fn from_env(file: &MediaConfig) -> Result<Self, MediaError> {
        Self::resolve(file, |name| std::env::var(name).ok())
    }

    /// The file's settings with `env` over them (a blank variable counts as unset), each checked
    /// and refused naming the setting it came from.
    pub fn resolve(
        file: &MediaConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, MediaError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let public_base_url = match env(ENV_PUBLIC_URL) {
            Some(url) => Some(check_base_url(ENV_PUBLIC_URL, &url)?),
            None => file
                .public_base_url
                .as_deref()
                .map(|url| check_base_url("media.public_base_url", url))
                .transpose()?,
        };
        let file_s3 = file.s3.as_ref();
        let bucket = match env(ENV_S3_BUCKET) {
            Some(b) => Some((ENV_S3_BUCKET, b)),
            None => file_s3.map(|s| ("media.s3.bucket", s.bucket.clone())),
        };
        let Some((bucket_setting, bucket)) = bucket else {
            for name in [ENV_S3_ENDPOINT, ENV_S3_REGION] {
                if env(name).is_some() {
                    return Err(bad(
                        name,
                        format!("is set but no bucket is: set {ENV_S3_BUCKET} or [media.s3]"),
                    ));
                }
            }
            return Ok(Self {
                public_base_url,
                s3: None,
            });
        };
        check_bucket(bucket_setting, &bucket)?;
        let endpoint = match env(ENV_S3_ENDPOINT) {
            Some(e) => Some((ENV_S3_ENDPOINT, e)),
            None => file_s3
                .and_then(|s| s.endpoint.clone())
                .map(|e| ("media.s3.endpoint", e)),
        };
        let endpoint = endpoint
            .map(|(setting, e)| check_base_url(setting, &e))
            .transpose()?;
        let region = match env(ENV_S3_REGION) {
            Some(r) => Some((ENV_S3_REGION, r)),
            None => file_s3
                .and_then(|s| s.region.clone())
                .map(|r| ("media.s3.region", r)),
        };
        let region = region
            .map(|(setting, r)| check_region(setting, &r))
            .transpose()?;
        let plain_http = endpoint.as_deref().is_some_and(|e| {
            e.get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        });
        let allow_http = match file_s3.and_then(|s| s.allow_http) {
            Some(false) if plain_http => {
                return Err(bad(
                    "media.s3.allow_http",
                    "is false but the endpoint is http://",
                ))
            }
            Some(allow) => allow,
            None => plain_http,
        };
        Ok(Self {
            public_base_url,
            s3: Some(S3Settings {
                bucket,
                endpoint,
                region,
                allow_http,
            }),
        })
    }
}

/// An absolute http(s) URL with a host and no query or fragment, without its trailing `/`.
fn check_base_url(setting: &str, url: &str) -> Result<String, MediaError> {
    let url = url.trim();
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            url.get(..scheme.len())
                .filter(|head| head.eq_ignore_ascii_case(scheme))
                .map(|_| &url[scheme.len()..])
        })
        .ok_or_else(|| {
            bad(
                setting,
                format!("'{url}' is not an absolute http:// or https:// URL"),
            )
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(bad(setting, format!("'{url}' names no host")));
    }
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            setting,
            format!("'{url}' must have no query, fragment or spaces"),
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// S3's bucket naming rules: 3 to 63 of `a-z 0-9 . -`, starting and ending with a letter or digit.
fn check_bucket(setting: &str, bucket: &str) -> Result<(), MediaError> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge_ok(bucket.chars().next())
        && edge_ok(bucket.chars().last())
    {
        Ok(())
    } else {
        Err(bad(
            setting,
            format!("'{bucket}' is not a bucket name (3 to 63 of a-z 0-9 . -)"),
        ))
    }
}

fn check_region(setting: &str, region: &str) -> Result<String, MediaError> {
    let region = region.trim();
    if !region.is_empty()
        && region.len() <= 64
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Ok(region.to_string())
    } else {
        Err(bad(
            setting,
            format!("'{region}' is not a region (such as eu-west-1)"),
        ))
    }
}

/// The content type an image is served with, from its name's extension.
pub fn content_type_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        _ => "application/octet-stream",
    }
}

/// The image store and the public base URL its images are linked under.
pub struct Media {
    store: Arc<dyn ObjectStore>,
    public_base: String,
    /// Whether the store keeps a content type per object (S3 does, a directory does not), so
    /// that an image fetched straight from the bucket comes with its type.
    typed: bool,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("store", &self.store.to_string())
            .field("public_base", &self.public_base)
            .finish()
    }
}

impl Media {
    /// The store the settings name (S3, or the local directory `local_dir`), with its public
    /// base URL or else `http://<listen>/media` (an unspecified listen address as loopback).
    pub fn open(
        settings: &MediaSettings,
        local_dir: &Path,
        listen: SocketAddr,
    ) -> Result<Self, MediaError> {
        let public_base = settings
            .public_base_url
            .clone()
            .unwrap_or_else(|| default_public_base(listen));
        match &settings.s3 {
            Some(s3) => Self::s3(s3, public_base),
            None => Self::local(local_dir, public_base),
        }
    }

    /// Images as files under `dir` (created if missing), each written to a temporary file,
    /// synced and renamed into place.
    pub fn local(dir: &Path, public_base: impl Into<String>) -> Result<Self, MediaError> {
        let public_base = check_base_url("public base URL", &public_base.into())?;
        std::fs::create_dir_all(dir)
            .map_err(|e| bad("images directory", format!("{}: {e}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true);
        Ok(Self {
            store: Arc::new(store),
            public_base,
            typed: false,
        })
    }

    /// Images in an S3 bucket, with path-style requests (what S3-compatible servers expect).
    pub fn s3(settings: &S3Settings, public_base: impl Into<String>) -> Result<Self, MediaError> {
        let public_base = check_base_url("public base URL", &public_base.into())?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(settings.allow_http)
            .with_crypto_provider(Arc::new(Sha2Crypto))
            // An upload answers its client within the API's request timeout.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        Ok(Self {
            store: Arc::new(builder.build()?),
            public_base,
            typed: true,
        })
    }

    /// What the images are kept in, for the start-up line.
    pub fn describe(&self) -> String {
        format!("{} (public at {})", self.store, self.public_base)
    }

    pub fn public_base(&self) -> &str {
        &self.public_base
    }

    /// Writes an object in one piece: readers see the old object or the new, never a part.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), MediaError> {
        let path = object_path(key)?;
        let mut attributes = Attributes::new();
        if self.typed {
            attributes.insert(Attribute::ContentType, content_type_for(key).into());
        }
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.store
            .put_opts(&path, PutPayload::from(bytes), options)
            .await?;
        Ok(())
    }

    /// An object's bytes, or None if there is no such object.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, MediaError> {
        let path = object_path(key)?;
        match self.store.get(&path).await {
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The absolute URL of a product's image (an uploaded name or an http(s) URL).
    pub fn public_url(&self, tenant: &TenantId, product: &ProductId, image: &str) -> String {
        porch_schemas::media::public_image_url(&self.public_base, tenant, product, image)
    }
}

fn default_public_base(listen: SocketAddr) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}/media")
}

fn object_path(key: &str) -> Result<ObjectPath, MediaError> {
    ObjectPath::parse(key).map_err(|_| MediaError::Key(key.to_string()))
}

/// SigV4 signing on the RustCrypto SHA-256 and HMAC the API already builds, so S3 support adds
/// no second crypto library (object_store's own providers are aws-lc-rs and ring). RSA signing is
/// only for Google service accounts, which porch does not use.
#[derive(Debug)]
struct Sha2Crypto;

struct Sha256Digest {
    hasher: Option<sha2::Sha256>,
    out: [u8; 32],
}

impl DigestContext for Sha256Digest {
    fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.hasher {
            sha2::Digest::update(h, data);
        }
    }

    fn finish(&mut self) -> object_store::Result<&[u8]> {
        if let Some(h) = self.hasher.take() {
            self.out = sha2::Digest::finalize(h).into();
        }
        Ok(&self.out)
    }
}

struct HmacSha256 {
    mac: Option<hmac::Hmac<sha2::Sha256>>,
    out: [u8; 32],
}

impl HmacContext for HmacSha256 {
    fn update(&mut self, data: &[u8]) {
        if let Some(m) = &mut self.mac {
            m.update(data);
        }
    }

    fn finish(&mut self) -> object_store::Result<&[u8]> {
        if let Some(m) = self.mac.take() {
            self.out = m.finalize().into_bytes().into();
        }
        Ok(&self.out)
    }
}

impl CryptoProvider for Sha2Crypto {
    fn digest(&self, algorithm: DigestAlgorithm) -> object_store::Result<Box<dyn DigestContext>> {
        match algorithm {
            DigestAlgorithm::Sha256 => Ok(Box::new(Sha256Digest {
                hasher: Some(<sha2::Sha256 as sha2::Digest>::new()),
                out: [0; 32],
            })),
            other => Err(unsupported(format!("digest {other:?}"))),
        }
    }

    fn hmac(
        &self,
        algorithm: DigestAlgorithm,
        secret: &[u8],
    ) -> object_store::Result<Box<dyn HmacContext>> {
        match algorithm {
            DigestAlgorithm::Sha256 => {
                let mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
                    .map_err(|e| unsupported(format!("HMAC key: {e}")))?;
                Ok(Box::new(HmacSha256 {
                    mac: Some(mac),
                    out: [0; 32],
                }))
            }
            other => Err(unsupported(format!("HMAC {other:?}"))),
        }
    }

    fn sign(
        &self,
        algorithm: SigningAlgorithm,
        _pem: &[u8],
    ) -> object_store::Result<Box<dyn object_store::client::Signer>> {
        Err(unsupported(format!("signing with {algorithm:?}")))
    }
}

fn unsupported(what: String) -> object_store::Error {
    object_store::Error::NotSupported {
        source: what.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn signing_primitives_match_the_published_vectors() {
        let mut d = Sha2Crypto.digest(DigestAlgorithm::Sha256).unwrap();
        d.update(b"a");
        d.update(b"bc");
        assert_eq!(
            hex(d.finish().unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231, test case 2.
        let mut m = Sha2Crypto.hmac(DigestAlgorithm::Sha256, b"Jefe").unwrap();
        m.update(b"what do ya want ");
        m.update(b"for nothing?");
        assert_eq!(
            hex(m.finish().unwrap()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn file(toml: &str) -> MediaConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn media_settings_default_to_a_local_directory_and_the_api_route() {
        let s = MediaSettings::resolve(&MediaConfig::default(), env_of(&[])).unwrap();
        assert_eq!(s, MediaSettings::default());
        assert_eq!(
            default_public_base("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080/media"
        );
        assert_eq!(
            default_public_base("127.0.0.1:9".parse().unwrap()),
            "http://127.0.0.1:9/media"
        );
    }

    #[test]
    fn media_environment_wins_over_the_file() {
        let f = file(
            "public_base_url = 'https://img.example.com/'\n[s3]\nbucket = 'file-bucket'\nregion = 'eu-west-1'",
        );
        let s = MediaSettings::resolve(&f, env_of(&[])).unwrap();
        assert_eq!(
            s.public_base_url.as_deref(),
            Some("https://img.example.com")
        );
        let s3 = s.s3.unwrap();
        assert_eq!(
            (
                s3.bucket.as_str(),
                s3.region.as_deref(),
                s3.endpoint,
                s3.allow_http
            ),
            ("file-bucket", Some("eu-west-1"), None, false)
        );
        let s = MediaSettings::resolve(
            &f,
            env_of(&[
                (ENV_PUBLIC_URL, "http://127.0.0.1:5000/env-bucket"),
                (ENV_S3_BUCKET, "env-bucket"),
                (ENV_S3_ENDPOINT, "http://127.0.0.1:5000"),
                (ENV_S3_REGION, " "),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.public_base_url.as_deref(),
            Some("http://127.0.0.1:5000/env-bucket")
        );
        let s3 = s.s3.unwrap();
        assert_eq!(s3.bucket, "env-bucket");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            s3.region.as_deref(),
            Some("eu-west-1"),
            "a blank variable is unset"
        );
        assert!(s3.allow_http, "an http endpoint allows http");
    }

    #[test]
    fn bad_media_settings_are_refused_naming_the_setting() {
        let refused = |f: &str, vars: &[(&str, &str)]| {
            MediaSettings::resolve(&file(f), env_of(vars))
                .unwrap_err()
                .to_string()
        };
        let e = refused("", &[(ENV_PUBLIC_URL, "cdn.example.com/img")]);
        assert!(e.starts_with("PORCH_MEDIA_PUBLIC_URL: "), "{e}");
        let e = refused("public_base_url = 'ftp://x/y'", &[]);
        assert!(e.starts_with("media.public_base_url: "), "{e}");
        let e = refused("public_base_url = 'https:///y'", &[]);
        assert!(e.contains("no host"), "{e}");
        let e = refused("", &[(ENV_S3_BUCKET, "Bad_Bucket")]);
        assert!(e.starts_with("PORCH_S3_BUCKET: "), "{e}");
        let e = refused(
            "[s3]\nbucket = 'ok-bucket'\nendpoint = 'localhost:9000'",
            &[],
        );
        assert!(e.starts_with("media.s3.endpoint: "), "{e}");
        let e = refused("", &[(ENV_S3_ENDPOINT, "http://127.0.0.1:9000")]);
        assert!(
            e.starts_with("PORCH_S3_ENDPOINT: ") && e.contains("no bucket"),
            "{e}"
        );
        let e = refused(
            "[s3]\nbucket = 'ok-bucket'\nendpoint = 'http://s3.local'\nallow_http = false",
            &[],
        );
        assert!(e.starts_with("media.s3.allow_http: "), "{e}");
        let e = refused(
            "",
            &[(ENV_S3_BUCKET, "ok-bucket"), (ENV_S3_REGION, "EU West")],
        );
        assert!(e.starts_with("PORCH_S3_REGION: "), "{e}");
    }

    #[tokio::test]
    async fn media_in_a_directory_reads_back_what_was_put() {
        let dir = std::env::temp_dir().join(format!(
            "porch-media-test-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let media = Media::local(&dir, "http://api.test/media/").unwrap();
        assert_eq!(media.public_base(), "http://api.test/media");
        media
            .put("acme/p1/front.png", Bytes::from_static(b"png"))
            .await
            .unwrap();
        assert!(dir.join("acme/p1/front.png").exists());
        assert_eq!(
            media.get("acme/p1/front.png").await.unwrap().as_deref(),
            Some(&b"png"[..])
        );
        assert_eq!(media.get("acme/p1/back.png").await.unwrap(), None);
        assert!(matches!(
            media.get("acme/../x").await,
            Err(MediaError::Key(_))
        ));
        let t = TenantId::parse_tenant("acme").unwrap();
        let p = ProductId::parse("p1").unwrap();
        assert_eq!(
            media.public_url(&t, &p, "front.png"),
            "http://api.test/media/acme/p1/front.png"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Tenants, their API keys and the compliance rules per region, read from TOML.

use porch_processors::domain::compliance::RegionRules;
use porch_schemas::{Channel, RegionCode, SellerId, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The tenant of `Config::development`.
const DEV_TENANT: &str = "dev";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config is not valid TOML for porch: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("config is invalid: {0}")]
    Invalid(String),
}

/// The whole configuration of the ingest API.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The platform operator, who may read topics but no tenant's API.
    #[serde(default)]
    pub operator: Option<OperatorConfig>,
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// Compliance rules per region.
    #[serde(default)]
    pub compliance: BTreeMap<RegionCode, RegionRules>,
    #[serde(default)]
    pub http: HttpLimits,
    /// Where product images are kept and the public URL they are linked under.
    #[serde(default)]
    pub media: MediaConfig,
    /// How porch's own connectors reach their channels.
    #[serde(default, skip_serializing_if = "ConnectorsConfig::is_default")]
    pub connectors: ConnectorsConfig,
    /// When a SKU's reservations take the hot lane.
    #[serde(default)]
    pub reservations: ReservationSettings,
}

/// `[reservations]`: a SKU whose reservation requests arrive faster than
/// `hot_requests_per_sec` at one API instance (or that its merchant flagged) is served on the
/// hot lane, and stays there `hot_for_secs` after its rate falls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReservationSettings {
    pub hot_requests_per_sec: u32,
    pub hot_for_secs: u64,
}

impl Default for ReservationSettings {
    fn default() -> Self {
        Self {
            hot_requests_per_sec: 50,
            hot_for_secs: 300,
        }
    }
}

/// `[connectors.meta]`, `[connectors.mercadolibre]`: how porch's channel connectors reach their
/// channels, and how they batch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorsConfig {
    #[serde(default)]
    pub meta: porch_connectors::meta::MetaConfig,
    #[serde(default)]
    pub mercadolibre: porch_connectors::mercadolibre::MercadoLibreConfig,
}

impl ConnectorsConfig {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// `[media]`: product images. `PORCH_MEDIA_PUBLIC_URL`, `PORCH_S3_BUCKET`, `PORCH_S3_ENDPOINT`
/// and `PORCH_S3_REGION` win over these (`media::MediaSettings`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// The absolute http(s) URL images are linked under as `<base>/<tenant>/<product>/<name>`
    /// (a CDN or the bucket's own URL); unset, the API's public `/media` route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_base_url: Option<String>,
    /// `[media.s3]`: keep images in an S3-compatible bucket rather than a local directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// An S3-compatible server's URL; unset, AWS S3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Plain HTTP to the endpoint; unset, allowed when the endpoint is http://.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    pub api_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantMode {
    /// One brand selling its own products: the tenant is its only seller.
    SingleBrand,
    /// A marketplace: many sellers offer the tenant's products.
    Mall,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: TenantId,
    pub mode: TenantMode,
    pub regions: Vec<RegionCode>,
    #[serde(default = "all_channels")]
    pub channels: Vec<Channel>,
    #[serde(default, rename = "key")]
    pub keys: Vec<ApiKeyConfig>,
    /// `[[tenant.connection]]`: the tenant's accounts on its sales channels, per region (also
    /// set through `PUT /v1/channels/{channel}/regions/{region}`).
    #[serde(default, rename = "connection", skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<ConnectionConfig>,
}

/// A tenant's account on one channel in one region.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    pub channel: Channel,
    pub region: RegionCode,
    /// Meta: the catalog id.
    pub account: String,
    /// The credential itself; prefer `access_token_env`, so the file holds no secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The environment variable that holds the credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_env: Option<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_template: Option<String>,
}

fn enabled() -> bool {
    true
}

// Never printed with its token.
impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("channel", &self.channel)
            .field("region", &self.region)
            .field("account", &self.account)
            .field("access_token", &self.access_token.as_ref().map(|_| "***"))
            .field("access_token_env", &self.access_token_env)
            .field("enabled", &self.enabled)
            .field("link_template", &self.link_template)
            .finish()
    }
}

impl ConnectionConfig {
    /// The connection with its credential, read from the environment where the file names a
    /// variable.
    pub fn account(&self) -> Result<porch_connectors::accounts::ChannelAccount, ConfigError> {
        let token = match (&self.access_token, &self.access_token_env) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(var)) => Some(std::env::var(var).map_err(|_| {
                ConfigError::Invalid(format!(
                    "the {} connection in {} names access_token_env = \"{var}\", which is not set",
                    self.channel, self.region
                ))
            })?),
            (None, None) => None,
        };
        Ok(porch_connectors::accounts::ChannelAccount {
            connection: porch_schemas::ChannelConnection {
                channel: self.channel,
                region: self.region.clone(),
                account: self.account.clone(),
                enabled: self.enabled,
                link_template: self.link_template.clone(),
            },
            access_token: token.map(porch_connectors::accounts::Secret::new),
            mercadolibre: None,
        })
    }
}

fn all_channels() -> Vec<Channel> {
    Channel::ALL.to_vec()
}

impl TenantConfig {
    /// The tenant's own seller, in single-brand mode.
    pub fn own_seller(&self) -> Option<SellerId> {
        match self.mode {
            TenantMode::SingleBrand => SellerId::parse(self.id.as_str()).ok(),
            TenantMode::Mall => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything within the tenant, including compliance decisions.
    Admin,
    /// Writes for one seller.
    Seller,
    /// Reads only.
    Reader,
    /// An external channel adapter: reports outcomes for its channel, nothing else.
    Adapter,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub key: String,
    pub role: Role,
    /// Binds the key to one seller.
    #[serde(default)]
    pub seller: Option<SellerId>,
}

/// Back-pressure in front of the command writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Requests served at once; more are shed with 503.
    pub max_in_flight: usize,
    /// A request still running after this long answers 504. Above the longest `?wait=`.
    pub request_timeout_ms: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 512,
            request_timeout_ms: 35_000,
        }
    }
}

/// Who a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyOwner<'a> {
    Operator,
    Tenant {
        tenant: &'a TenantConfig,
        key: &'a ApiKeyConfig,
    },
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// A development setup: tenant `dev` (single brand) in GB, IN, US, DE and BR on every
    /// channel, with a fresh admin key, which is returned too.
    pub fn development() -> (Config, String) {
        let admin_key = format!("dev-admin-{}", uuid::Uuid::now_v7().simple());
        let regions = ["GB", "IN", "US", "DE", "BR"]
            .iter()
            .filter_map(|r| RegionCode::parse(*r).ok())
            .collect();
        let tax_code = RegionRules {
            required_attributes: vec!["tax_code".into()],
            banned_categories: vec!["weapons".into()],
            review_categories: vec!["supplements".into()],
        };
        let compliance = ["IN", "BR"]
            .iter()
            .filter_map(|r| RegionCode::parse(*r).ok())
            .map(|r| (r, tax_code.clone()))
            .collect();
        let tenants = TenantId::parse_tenant(DEV_TENANT)
            .map(|id| TenantConfig {
                id,
                mode: TenantMode::SingleBrand,
                regions,
                channels: all_channels(),
                keys: vec![ApiKeyConfig {
                    key: admin_key.clone(),
                    role: Role::Admin,
                    seller: None,
                }],
                connections: vec![],
            })
            .into_iter()
            .collect();
        let config = Config {
            operator: None,
            tenants,
            compliance,
            http: HttpLimits::default(),
            media: MediaConfig::default(),
            connectors: ConnectorsConfig::default(),
            reservations: ReservationSettings::default(),
        };
        (config, admin_key)
    }

    /// The config as TOML, as `from_toml` reads it (to keep a generated development config).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// The admin key of the development tenant, when this is a development config.
    pub fn development_admin_key(&self) -> Option<String> {
        self.tenants
            .iter()
            .find(|t| t.id.as_str() == DEV_TENANT)?
            .keys
            .iter()
            .find(|k| k.role == Role::Admin)
            .map(|k| k.key.clone())
    }

    /// The regions of every tenant (compliance evaluates a product in each of its tenant's).
    pub fn tenant_regions(&self) -> HashMap<TenantId, Vec<RegionCode>> {
        self.tenants
            .iter()
            .map(|t| (t.id.clone(), t.regions.clone()))
            .collect()
    }

    /// The owner of an API key, if the key is known.
    pub fn authenticate(&self, presented: &str) -> Option<KeyOwner<'_>> {
        // Every key is compared in full, so the time taken does not tell how much of a key matched.
        let mut found = None;
        if let Some(op) = &self.operator {
            if constant_time_eq(op.api_key.as_bytes(), presented.as_bytes()) {
                found = Some(KeyOwner::Operator);
            }
        }
        for tenant in &self.tenants {
            for key in &tenant.keys {
                if constant_time_eq(key.key.as_bytes(), presented.as_bytes()) {
                    found = Some(KeyOwner::Tenant { tenant, key });
                }
            }
        }
        found
    }

    pub fn tenant(&self, id: &TenantId) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| &t.id == id)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut keys = HashSet::new();
        let mut tenant_ids = HashSet::new();
        if let Some(op) = &self.operator {
            check_key(&op.api_key, "operator.api_key", &mut keys, &mut problems);
        }
        for tenant in &self.tenants {
            let id = tenant.id.as_str();
            if let Err(e) = TenantId::parse_tenant(id) {
                problems.push(format!("tenant '{id}': {e}"));
            }
            if !tenant_ids.insert(id) {
                problems.push(format!("tenant '{id}' is configured twice"));
            }
            if tenant.regions.is_empty() {
                problems.push(format!("tenant '{id}' has no regions"));
            }
            if tenant.regions.iter().collect::<HashSet<_>>().len() != tenant.regions.len() {
                problems.push(format!("tenant '{id}' lists a region twice"));
            }
            for c in &tenant.connections {
                if c.channel == Channel::Storefront {
                    problems.push(format!(
                        "tenant '{id}': the storefront is not a channel to connect"
                    ));
                }
                if !tenant.regions.contains(&c.region) || !tenant.channels.contains(&c.channel) {
                    problems.push(format!(
                        "tenant '{id}': a connection to {} in {} is outside its channels or regions",
                        c.channel, c.region
                    ));
                }
            }
            for key in &tenant.keys {
                check_key(
                    &key.key,
                    &format!("a key of tenant '{id}'"),
                    &mut keys,
                    &mut problems,
                );
                if key.role == Role::Seller
                    && key.seller.is_none()
                    && tenant.mode == TenantMode::Mall
                {
                    problems.push(format!(
                        "a seller key of mall tenant '{id}' must name its seller"
                    ));
                }
                if let (TenantMode::SingleBrand, Some(seller)) = (tenant.mode, &key.seller) {
                    if seller.as_str() != id {
                        problems.push(format!(
                            "a key of single-brand tenant '{id}' can only be bound to seller '{id}', not '{seller}'"
                        ));
                    }
                }
            }
        }
        if let Err(e) = self.connectors.meta.validate() {
            problems.push(e);
        }
        if let Err(e) = self.connectors.mercadolibre.validate() {
            problems.push(e);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("; ")))
        }
    }
}

fn check_key<'a>(
    key: &'a str,
    what: &str,
    seen: &mut HashSet<&'a str>,
    problems: &mut Vec<String>,
) {
    if key.trim().is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        problems.push(format!("{what} must be non-empty without spaces"));
    } else if !seen.insert(key) {
        // The key itself stays out of the message: config errors end up in logs.
        problems.push(format!("{what} is used more than once"));
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[operator]
api_key = "op-key"

[[tenant]]
id = "acme"
mode = "single_brand"
regions = ["GB", "IN"]
channels = ["storefront", "meta", "mercadolibre"]

[[tenant.key]]
key = "acme-admin"
role = "admin"
seller = "acme"

[[tenant]]
id = "mall"
mode = "mall"
regions = ["BR"]

[[tenant.key]]
key = "mall-seller"
role = "seller"
seller = "shop-1"

[compliance.IN]
required_attributes = ["tax_code"]
banned_categories = ["weapons"]
review_categories = ["supplements"]
"#;

    #[test]
    fn the_documented_example_loads() {
        let config = Config::from_toml(EXAMPLE).unwrap();
        assert_eq!(config.tenants.len(), 2);
        assert_eq!(config.tenants[1].channels, Channel::ALL.to_vec());
        let rules = &config.compliance[&RegionCode::parse("IN").unwrap()];
        assert_eq!(rules.required_attributes, vec!["tax_code".to_string()]);
        assert!(matches!(
            config.authenticate("op-key"),
            Some(KeyOwner::Operator)
        ));
        match config.authenticate("mall-seller") {
            Some(KeyOwner::Tenant { tenant, key }) => {
                assert_eq!(tenant.id.as_str(), "mall");
                assert_eq!(key.role, Role::Seller);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(config.authenticate("mall-selle").is_none());
    }

    #[test]
    fn the_repository_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../porch.example.toml");
        if path.exists() {
            let config = Config::load(&path).unwrap();
            assert!(!config.tenants.is_empty());
        }
    }

    #[test]
    fn unknown_fields_bad_regions_and_shared_keys_are_refused() {
        assert!(
            Config::from_toml("[[tenant]]\nid='a'\nmode='mall'\nregions=['GB']\ncolour='red'")
                .is_err()
        );
        assert!(Config::from_toml("[[tenant]]\nid='a'\nmode='mall'\nregions=['gb']").is_err());
        assert!(Config::from_toml("[[tenant]]\nid='Acme'\nmode='mall'\nregions=['GB']").is_err());
        let twice = "[operator]\napi_key='k'\n[[tenant]]\nid='a'\nmode='mall'\nregions=['GB']\n[[tenant.key]]\nkey='k'\nrole='admin'";
        let err = Config::from_toml(twice).unwrap_err().to_string();
        assert!(err.contains("more than once"), "{err}");
        assert!(!err.contains("'k'"), "the key must not be echoed: {err}");
    }

    #[test]
    fn development_config_is_valid_and_knows_its_key() {
        let (config, key) = Config::development();
        config.validate().unwrap();
        assert!(
            matches!(config.authenticate(&key), Some(KeyOwner::Tenant { key: k, .. }) if k.role == Role::Admin)
        );
        assert_eq!(config.tenants[0].regions.len(), 5);
        assert!(config
            .compliance
            .contains_key(&RegionCode::parse("BR").unwrap()));
    }
}

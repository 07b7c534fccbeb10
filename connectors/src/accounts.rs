//! Tenants' accounts on their sales channels, with the secrets that open them (DESIGN §8). The
//! API writes a tenant's [`ChannelAccounts`] row when an operator or the tenant's admin connects
//! a channel; connectors read it for the credentials of each call. Only the non-secret part of a
//! connection ever travels on a topic; a [`Secret`] never prints.

use porch_schemas::{Channel, ChannelConnection, RegionCode, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sink::{PortError, RowStore};

/// `<tenant>` → [`ChannelAccounts`].
pub const ACCOUNTS_TABLE: &str = "channel_accounts";

/// A credential: compared and stored, never shown. Its `Debug` and `Display` print a mask.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One connection with its credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelAccount {
    #[serde(flatten)]
    pub connection: ChannelConnection,
    /// Meta: the system user's access token for the catalog.
    pub access_token: Option<Secret>,
    /// Mercado Libre: the app the seller authorised and the grant it gave. Absent (and not
    /// written) for every other channel, so their rows read and write as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mercadolibre: Option<MercadoLibreCredentials>,
}

/// A Mercado Libre seller's authorisation of porch's app (OAuth 2 authorization code), as the
/// connect flow stores it. The refresh token here is the one of the grant: the connector keeps
/// the tokens it rotates from it in its own row (`mercadolibre::tokens`), and a different one
/// here means the seller connected again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MercadoLibreCredentials {
    /// The app's id (`client_id`).
    pub client_id: String,
    pub client_secret: Secret,
    /// The seller's Mercado Libre user id: whose items the tokens act on.
    pub user_id: String,
    pub refresh_token: Secret,
    /// The grant's first access token, used until it expires.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// When `access_token` expires, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub access_expires_at_ms: Option<i64>,
}

/// Every connection of a tenant, as of `version` (increasing with each change).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelAccounts {
    pub version: i64,
    pub accounts: Vec<ChannelAccount>,
}

impl ChannelAccounts {
    pub fn get(&self, channel: Channel, region: &RegionCode) -> Option<&ChannelAccount> {
        self.accounts
            .iter()
            .find(|a| a.connection.channel == channel && &a.connection.region == region)
    }

    /// The connections without their secrets: what goes on `channel.settings`.
    pub fn connections(&self) -> Vec<ChannelConnection> {
        self.accounts.iter().map(|a| a.connection.clone()).collect()
    }
}

/// How long a tenant's accounts are used before they are read again: a token an operator
/// changes is used within this long.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// A connector's reader of tenants' accounts, with a short cache.
pub struct Accounts {
    rows: std::sync::Arc<dyn RowStore>,
    cache: Mutex<HashMap<TenantId, (Instant, ChannelAccounts)>>,
}

impl Accounts {
    pub fn new(rows: std::sync::Arc<dyn RowStore>) -> Self {
        Accounts {
            rows,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn of(&self, tenant: &TenantId) -> Result<ChannelAccounts, PortError> {
        if let Some((at, accounts)) = self.cached(tenant) {
            if at.elapsed() < FRESH_FOR {
                return Ok(accounts);
            }
        }
        let accounts: ChannelAccounts = match self.rows.get(ACCOUNTS_TABLE, tenant.as_str()).await?
        {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                PortError(format!(
                    "the channel accounts of tenant {tenant} do not decode: {e}"
                ))
            })?,
            None => ChannelAccounts::default(),
        };
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant.clone(), (Instant::now(), accounts.clone()));
        Ok(accounts)
    }

    /// Forgets a tenant's accounts, so the next call reads them again (after the channel refused
    /// a credential).
    pub fn forget(&self, tenant: &TenantId) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(tenant);
    }

    fn cached(&self, tenant: &TenantId) -> Option<(Instant, ChannelAccounts)> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let account = ChannelAccount {
            connection: ChannelConnection {
                channel: Channel::Meta,
                region: RegionCode::parse("GB").unwrap(),
                account: "123".into(),
                enabled: true,
                link_template: None,
            },
            access_token: Some(Secret::new("EAAB-very-secret")),
            mercadolibre: None,
        };
        let shown = format!("{account:?} {}", account.access_token.as_ref().unwrap());
        assert!(!shown.contains("very-secret"), "{shown}");
        let json = serde_json::to_string(&account).unwrap();
        assert!(json.contains("EAAB-very-secret"), "the store keeps it");
        assert!(
            !json.contains("mercadolibre"),
            "a Meta account's JSON is as before: {json}"
        );
        let read: ChannelAccount = serde_json::from_str(
            r#"{"channel":"meta","region":"GB","account":"123","enabled":true,"link_template":null,"access_token":"t"}"#,
        )
        .unwrap();
        assert_eq!(read.mercadolibre, None);
    }

    #[test]
    fn mercado_libre_credentials_never_print() {
        let account = ChannelAccount {
            connection: ChannelConnection {
                channel: Channel::MercadoLibre,
                region: RegionCode::parse("BR").unwrap(),
                account: "7".into(),
                enabled: true,
                link_template: None,
            },
            access_token: None,
            mercadolibre: Some(MercadoLibreCredentials {
                client_id: "123".into(),
                client_secret: Secret::new("app-secret-value"),
                user_id: "7".into(),
                refresh_token: Secret::new("TG-refresh-value"),
                access_token: Some(Secret::new("APP_USR-access-value")),
                access_expires_at_ms: Some(1),
            }),
        };
        let shown = format!("{account:?}");
        for secret in [
            "app-secret-value",
            "TG-refresh-value",
            "APP_USR-access-value",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let json = serde_json::to_string(&account).unwrap();
        let back: ChannelAccount = serde_json::from_str(&json).unwrap();
        assert_eq!(back, account, "the store keeps them");
    }
}

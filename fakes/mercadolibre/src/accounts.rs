//! Seller accounts and their OAuth grants, Mercado Libre's way. An authorization code is single
//! use and lives ten minutes; exchanging it gives the first token pair. Each refresh gives a new
//! access token AND a new refresh token, and only the latest refresh token works: the one just
//! used is spent, and a second use of it is `invalid_grant` — so a connector that refreshes twice
//! in parallel, or loses the answer, locks itself out. Access tokens live `expires_in` seconds
//! (six hours by default) and stay valid until then even after a refresh.

use crate::api_error::ApiError;
use crate::dates::token_stamp;
use crate::rng::Rng;
use crate::site::Site;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// How long an authorization code can be exchanged.
pub const CODE_TTL_MS: u64 = 10 * 60 * 1000;

/// The scopes every token carries.
pub const SCOPE: &str = "offline_access read write";

/// `POST /_fake/accounts`: a seller who authorized the app `client_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSeed {
    pub user_id: u64,
    pub client_id: String,
    pub client_secret: String,
    /// The seller's site; it decides which categories and currency its items may use.
    #[serde(default)]
    pub site: Site,
    /// Also issue a token pair at once, for a test that skips the connect flow.
    #[serde(default)]
    pub tokens: bool,
}

/// What seeding an account gives: a fresh authorization code, and a token pair if asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededAccount {
    pub user_id: u64,
    pub site: Site,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenPair>,
}

/// The token endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub scope: String,
    pub user_id: u64,
    pub refresh_token: String,
}

/// What `GET /_fake/accounts` shows of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub user_id: u64,
    pub site: Site,
    pub client_id: String,
    /// Successful `grant_type=refresh_token` calls.
    pub refreshes: u64,
    /// Refreshes refused with `invalid_grant` for a token of this account (spent or revoked).
    pub refused_refreshes: u64,
    /// Successful `grant_type=authorization_code` calls.
    pub codes_exchanged: u64,
    /// Whether the refresh token was revoked (and no code exchanged since).
    pub revoked: bool,
}

/// A seeding the fake refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error("user_id must be above 0")]
    NoUser,
    #[error("client_id and client_secret must not be empty")]
    NoClient,
    #[error("client_id {0} is already registered with another client_secret")]
    OtherSecret(String),
}

#[derive(Debug, Clone)]
struct Account {
    user_id: u64,
    site: Site,
    client_id: String,
    client_secret: String,
    /// The one refresh token that works now.
    refresh_token: Option<String>,
    /// Codes not exchanged yet, with when they were issued.
    codes: Vec<(String, u64)>,
    refreshes: u64,
    refused_refreshes: u64,
    codes_exchanged: u64,
    revoked: bool,
}

#[derive(Debug, Clone, Copy)]
struct AccessGrant {
    user_id: u64,
    expires_at_ms: u64,
}

/// What a new token is made with.
pub(crate) struct Minting<'a> {
    pub(crate) rng: &'a mut Rng,
    pub(crate) now_ms: u64,
    pub(crate) ttl_secs: u64,
}

/// A request to the token endpoint, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant<'a> {
    AuthorizationCode(&'a str),
    RefreshToken(&'a str),
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Accounts {
    accounts: BTreeMap<u64, Account>,
    access_tokens: HashMap<String, AccessGrant>,
    /// Codes and refresh tokens used, replaced or revoked, and whose they were: presenting one
    /// again is `invalid_grant`, counted against its account.
    spent: HashMap<String, u64>,
}

impl Accounts {
    /// Adds a seller (or re-authorizes one: a new code, the counters kept).
    pub(crate) fn seed(
        &mut self,
        seed: &AccountSeed,
        minting: Minting<'_>,
    ) -> Result<SeededAccount, SeedError> {
        if seed.user_id == 0 {
            return Err(SeedError::NoUser);
        }
        if seed.client_id.is_empty() || seed.client_secret.is_empty() {
            return Err(SeedError::NoClient);
        }
        // One app has one secret: every other seller of the app must already know this one.
        let other_secret = self.accounts.values().any(|account| {
            account.user_id != seed.user_id
                && account.client_id == seed.client_id
                && account.client_secret != seed.client_secret
        });
        if other_secret {
            return Err(SeedError::OtherSecret(seed.client_id.clone()));
        }
        let account = self
            .accounts
            .entry(seed.user_id)
            .or_insert_with(|| Account {
                user_id: seed.user_id,
                site: seed.site,
                client_id: seed.client_id.clone(),
                client_secret: seed.client_secret.clone(),
                refresh_token: None,
                codes: Vec::new(),
                refreshes: 0,
                refused_refreshes: 0,
                codes_exchanged: 0,
                revoked: false,
            });
        account.site = seed.site;
        account.client_id = seed.client_id.clone();
        account.client_secret = seed.client_secret.clone();
        let code = format!("TG-{}-{}", minting.rng.hex(24), seed.user_id);
        account.codes.push((code.clone(), minting.now_ms));
        let tokens = seed
            .tokens
            .then(|| issue(account, &mut self.access_tokens, &mut self.spent, minting));
        Ok(SeededAccount {
            user_id: seed.user_id,
            site: seed.site,
            code,
            tokens,
        })
    }

    /// The token endpoint: the seller the grant names (when it names one), and the answer.
    pub(crate) fn grant(
        &mut self,
        client_id: &str,
        client_secret: &str,
        grant: Grant<'_>,
        minting: Minting<'_>,
    ) -> (Option<u64>, Result<TokenPair, ApiError>) {
        let client_known = self.accounts.values().any(|account| {
            account.client_id == client_id && account.client_secret == client_secret
        });
        let presented = match grant {
            Grant::AuthorizationCode(code) => code,
            Grant::RefreshToken(token) => token,
        };
        if !client_known {
            let user = self.owner(presented);
            return (
                user,
                Err(ApiError::oauth(
                    "invalid_client",
                    "invalid client_id or client_secret",
                )),
            );
        }
        let now_ms = minting.now_ms;
        let holder = self.accounts.values_mut().find(|account| match grant {
            Grant::AuthorizationCode(code) => account.codes.iter().any(|(known, _)| known == code),
            Grant::RefreshToken(token) => account.refresh_token.as_deref() == Some(token),
        });
        let Some(account) = holder else {
            let user = self.spent.get(presented).copied();
            if let (Some(user), Grant::RefreshToken(_)) = (user, grant) {
                if let Some(account) = self.accounts.get_mut(&user) {
                    account.refused_refreshes += 1;
                }
            }
            return (user, Err(ApiError::invalid_grant()));
        };
        let user_id = account.user_id;
        if account.client_id != client_id {
            if matches!(grant, Grant::RefreshToken(_)) {
                account.refused_refreshes += 1;
            }
            return (Some(user_id), Err(ApiError::invalid_grant()));
        }
        match grant {
            Grant::AuthorizationCode(code) => {
                let issued_ms = account
                    .codes
                    .iter()
                    .find(|(known, _)| known == code)
                    .map_or(0, |(_, at)| *at);
                account.codes.retain(|(known, _)| known != code);
                self.spent.insert(code.to_owned(), user_id);
                if now_ms.saturating_sub(issued_ms) > CODE_TTL_MS {
                    return (Some(user_id), Err(ApiError::invalid_grant()));
                }
                account.codes_exchanged += 1;
                account.revoked = false;
            }
            Grant::RefreshToken(_) => account.refreshes += 1,
        }
        let pair = issue(account, &mut self.access_tokens, &mut self.spent, minting);
        (Some(user_id), Ok(pair))
    }

    /// Whose code or refresh token this is (current or spent), if the fake knows.
    fn owner(&self, presented: &str) -> Option<u64> {
        self.accounts
            .values()
            .find(|account| {
                account.refresh_token.as_deref() == Some(presented)
                    || account.codes.iter().any(|(code, _)| code == presented)
            })
            .map(|account| account.user_id)
            .or_else(|| self.spent.get(presented).copied())
    }

    /// The seller an access token acts for, or the 401 Mercado Libre answers.
    pub(crate) fn authenticate(&self, token: Option<&str>, now_ms: u64) -> Result<u64, ApiError> {
        let token = token
            .filter(|token| !token.is_empty())
            .ok_or_else(ApiError::no_authorization)?;
        let grant = self
            .access_tokens
            .get(token)
            .ok_or_else(ApiError::invalid_token)?;
        if now_ms >= grant.expires_at_ms {
            return Err(ApiError::expired_token());
        }
        Ok(grant.user_id)
    }

    /// Expires every access token of `user_id` at once; false for an unknown seller.
    pub(crate) fn expire(&mut self, user_id: u64) -> bool {
        if !self.accounts.contains_key(&user_id) {
            return false;
        }
        for grant in self.access_tokens.values_mut() {
            if grant.user_id == user_id {
                grant.expires_at_ms = 0;
            }
        }
        true
    }

    /// Revokes the refresh token and pending codes of `user_id`: the next refresh is
    /// `invalid_grant`. Access tokens are left to [`Accounts::expire`]. False for an unknown
    /// seller.
    pub(crate) fn revoke(&mut self, user_id: u64) -> bool {
        let Some(account) = self.accounts.get_mut(&user_id) else {
            return false;
        };
        let codes = account.codes.drain(..).map(|(code, _)| code);
        let spent: Vec<String> = account
            .refresh_token
            .take()
            .into_iter()
            .chain(codes)
            .collect();
        account.revoked = true;
        for token in spent {
            self.spent.insert(token, user_id);
        }
        true
    }

    pub(crate) fn site(&self, user_id: u64) -> Option<Site> {
        self.accounts.get(&user_id).map(|account| account.site)
    }

    pub(crate) fn summaries(&self) -> Vec<AccountSummary> {
        self.accounts
            .values()
            .map(|account| AccountSummary {
                user_id: account.user_id,
                site: account.site,
                client_id: account.client_id.clone(),
                refreshes: account.refreshes,
                refused_refreshes: account.refused_refreshes,
                codes_exchanged: account.codes_exchanged,
                revoked: account.revoked,
            })
            .collect()
    }
}

/// A new pair for `account`; its previous refresh token is spent.
fn issue(
    account: &mut Account,
    access_tokens: &mut HashMap<String, AccessGrant>,
    spent: &mut HashMap<String, u64>,
    minting: Minting<'_>,
) -> TokenPair {
    let Minting {
        rng,
        now_ms,
        ttl_secs,
    } = minting;
    let user_id = account.user_id;
    let access_token = format!(
        "APP_USR-{}-{}-{}-{user_id}",
        account.client_id,
        token_stamp(now_ms),
        rng.hex(32)
    );
    let refresh_token = format!("TG-{}-{user_id}", rng.hex(24));
    if let Some(old) = account.refresh_token.replace(refresh_token.clone()) {
        spent.insert(old, user_id);
    }
    access_tokens.insert(
        access_token.clone(),
        AccessGrant {
            user_id,
            expires_at_ms: now_ms.saturating_add(ttl_secs.saturating_mul(1000)),
        },
    );
    TokenPair {
        access_token,
        token_type: "bearer".to_owned(),
        expires_in: ttl_secs,
        scope: SCOPE.to_owned(),
        user_id,
        refresh_token,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: u64 = 21_600;

    fn minting(rng: &mut Rng, now_ms: u64) -> Minting<'_> {
        Minting {
            rng,
            now_ms,
            ttl_secs: TTL,
        }
    }

    fn seller(user_id: u64) -> AccountSeed {
        AccountSeed {
            user_id,
            client_id: "123".into(),
            client_secret: "secret".into(),
            site: Site::Mlb,
            tokens: false,
        }
    }

    fn error_of(result: &Result<TokenPair, ApiError>) -> Option<String> {
        result.as_ref().err().map(|e| e.code.clone())
    }

    #[test]
    fn a_code_gives_the_first_pair_once() {
        let mut rng = Rng::new(1);
        let mut accounts = Accounts::default();
        let seeded = accounts
            .seed(&seller(7), minting(&mut rng, 0))
            .expect("seeded");
        assert!(seeded.code.starts_with("TG-") && seeded.code.ends_with("-7"));
        let grant = Grant::AuthorizationCode(&seeded.code);
        let (user, pair) = accounts.grant("123", "secret", grant, minting(&mut rng, 1));
        assert_eq!(user, Some(7));
        let pair = pair.expect("a pair");
        assert_eq!(pair.token_type, "bearer");
        assert_eq!(pair.expires_in, TTL);
        assert_eq!(pair.scope, SCOPE);
        assert!(pair.access_token.starts_with("APP_USR-123-010100-"));
        assert!(pair.access_token.ends_with("-7"));
        assert_eq!(accounts.authenticate(Some(&pair.access_token), 2), Ok(7));
        let (_, again) = accounts.grant("123", "secret", grant, minting(&mut rng, 2));
        assert_eq!(error_of(&again).as_deref(), Some("invalid_grant"));
    }

    #[test]
    fn a_refresh_rotates_and_the_spent_token_is_refused() {
        let mut rng = Rng::new(2);
        let mut accounts = Accounts::default();
        let first = accounts
            .seed(
                &AccountSeed {
                    tokens: true,
                    ..seller(7)
                },
                minting(&mut rng, 0),
            )
            .expect("seeded")
            .tokens
            .expect("a pair");
        let old = Grant::RefreshToken(&first.refresh_token);
        let (_, second) = accounts.grant("123", "secret", old, minting(&mut rng, 1));
        let second = second.expect("rotated");
        assert_ne!(second.refresh_token, first.refresh_token);
        assert_ne!(second.access_token, first.access_token);
        let (user, reused) = accounts.grant("123", "secret", old, minting(&mut rng, 2));
        assert_eq!(user, Some(7));
        assert_eq!(error_of(&reused).as_deref(), Some("invalid_grant"));
        let new = Grant::RefreshToken(&second.refresh_token);
        let (_, third) = accounts.grant("123", "secret", new, minting(&mut rng, 3));
        assert!(third.is_ok());
        let summary = &accounts.summaries()[0];
        assert_eq!((summary.refreshes, summary.refused_refreshes), (2, 1));
        assert_eq!(
            accounts.authenticate(Some(&first.access_token), 4),
            Ok(7),
            "an older access token lives until it expires"
        );
    }

    #[test]
    fn a_wrong_secret_is_invalid_client_and_another_app_is_invalid_grant() {
        let mut rng = Rng::new(3);
        let mut accounts = Accounts::default();
        let pair = accounts
            .seed(
                &AccountSeed {
                    tokens: true,
                    ..seller(7)
                },
                minting(&mut rng, 0),
            )
            .expect("seeded")
            .tokens
            .expect("a pair");
        accounts
            .seed(
                &AccountSeed {
                    client_id: "456".into(),
                    client_secret: "other".into(),
                    ..seller(8)
                },
                minting(&mut rng, 0),
            )
            .expect("another app");
        let grant = Grant::RefreshToken(&pair.refresh_token);
        let (_, wrong) = accounts.grant("123", "nope", grant, minting(&mut rng, 1));
        assert_eq!(error_of(&wrong).as_deref(), Some("invalid_client"));
        let (_, other_app) = accounts.grant("456", "other", grant, minting(&mut rng, 1));
        assert_eq!(error_of(&other_app).as_deref(), Some("invalid_grant"));
        let (_, right) = accounts.grant("123", "secret", grant, minting(&mut rng, 1));
        assert!(right.is_ok(), "refusals spend nothing");
        assert_eq!(
            accounts.seed(
                &AccountSeed {
                    client_secret: "changed".into(),
                    ..seller(9)
                },
                minting(&mut rng, 2)
            ),
            Err(SeedError::OtherSecret("123".into()))
        );
        let alone = AccountSeed {
            client_id: "456".into(),
            client_secret: "rotated".into(),
            ..seller(8)
        };
        assert!(
            accounts.seed(&alone, minting(&mut rng, 2)).is_ok(),
            "a seller alone on its app may change the app's secret"
        );
    }

    #[test]
    fn a_code_expires_after_ten_minutes() {
        let mut rng = Rng::new(4);
        let mut accounts = Accounts::default();
        let code = accounts
            .seed(&seller(7), minting(&mut rng, 0))
            .expect("seeded")
            .code;
        let late = CODE_TTL_MS + 1;
        let grant = Grant::AuthorizationCode(&code);
        let (_, refused) = accounts.grant("123", "secret", grant, minting(&mut rng, late));
        assert_eq!(error_of(&refused).as_deref(), Some("invalid_grant"));
    }

    #[test]
    fn tokens_expire_by_age_or_on_demand_and_revoking_stops_refreshes() {
        let mut rng = Rng::new(5);
        let mut accounts = Accounts::default();
        let pair = accounts
            .seed(
                &AccountSeed {
                    tokens: true,
                    ..seller(7)
                },
                minting(&mut rng, 0),
            )
            .expect("seeded")
            .tokens
            .expect("a pair");
        let token = Some(pair.access_token.as_str());
        assert_eq!(
            accounts
                .authenticate(token, TTL * 1000)
                .map_err(|e| e.body["message"].clone()),
            Err("expired_token".into())
        );
        assert_eq!(accounts.authenticate(token, 10), Ok(7));
        assert!(accounts.expire(7));
        assert!(accounts.authenticate(token, 10).is_err());
        assert_eq!(
            accounts
                .authenticate(Some("APP_USR-x"), 10)
                .map_err(|e| e.body["message"].clone()),
            Err("invalid access token".into())
        );
        assert_eq!(
            accounts
                .authenticate(None, 10)
                .map_err(|e| e.body["message"].clone()),
            Err("authorization value not present".into())
        );
        assert!(accounts.revoke(7));
        let grant = Grant::RefreshToken(&pair.refresh_token);
        let (user, refused) = accounts.grant("123", "secret", grant, minting(&mut rng, 11));
        assert_eq!(user, Some(7));
        assert_eq!(error_of(&refused).as_deref(), Some("invalid_grant"));
        assert!(accounts.summaries()[0].revoked);
        assert!(!accounts.expire(99) && !accounts.revoke(99));
    }
}

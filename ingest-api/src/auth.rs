//! Who is calling: `Authorization: Bearer <key>` names a tenant (and maybe one seller) and a
//! role. The tenant comes from the key alone; nothing in a request can name another tenant.

use crate::config::{KeyOwner, Role, TenantConfig, TenantMode};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use porch_schemas::{Channel, InvalidValue, RegionCode, SellerId, TenantId};

/// A tenant's key, of any role.
#[derive(Debug, Clone)]
pub struct Caller {
    tenant: TenantConfig,
    role: Role,
    /// The seller the key acts for, if it acts for one only.
    bound_seller: Option<SellerId>,
}

impl Caller {
    fn new(tenant: &TenantConfig, role: Role, seller: Option<&SellerId>) -> Self {
        // A seller key of a single-brand tenant acts for the tenant's own seller.
        let bound_seller = seller.cloned().or_else(|| match role {
            Role::Seller => tenant.own_seller(),
            Role::Admin | Role::Reader | Role::Adapter => None,
        });
        Self {
            tenant: tenant.clone(),
            role,
            bound_seller,
        }
    }

    /// The tenant's admin, as the operator acts for it.
    pub fn admin_of(tenant: &TenantConfig) -> Self {
        Self::new(tenant, Role::Admin, None)
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant.id
    }

    pub fn bound_seller(&self) -> Option<&SellerId> {
        self.bound_seller.as_ref()
    }

    /// A region of this tenant: a region code it does not sell in is as wrong as a malformed one.
    pub fn parse_region(&self, region: impl Into<String>) -> Result<RegionCode, InvalidValue> {
        let region = RegionCode::parse(region)?;
        if self.tenant.regions.contains(&region) {
            Ok(region)
        } else {
            Err(InvalidValue(format!(
                "region '{region}' is not one of this tenant's regions"
            )))
        }
    }

    /// A channel this tenant sells on.
    pub fn parse_channel(&self, channel: &str) -> Result<Channel, InvalidValue> {
        let channel = Channel::parse(channel)?;
        if self.tenant.channels.contains(&channel) {
            Ok(channel)
        } else {
            Err(InvalidValue(format!(
                "channel '{channel}' is not one of this tenant's channels"
            )))
        }
    }

    pub fn regions(&self) -> &[RegionCode] {
        &self.tenant.regions
    }

    pub fn channels(&self) -> &[Channel] {
        &self.tenant.channels
    }
}

/// A key that may report channel outcomes: an adapter's or an admin's.
#[derive(Debug, Clone)]
pub struct Adapter(Caller);

impl Adapter {
    pub fn caller(&self) -> &Caller {
        &self.0
    }
}

impl FromRequestParts<AppState> for Adapter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state)? {
            Credential::Tenant(caller) if matches!(caller.role, Role::Adapter | Role::Admin) => {
                Ok(Adapter(caller))
            }
            Credential::Tenant(_) => Err(ApiError::forbidden(
                "only an adapter or admin key may report outcomes",
            )),
            Credential::Operator => Err(ApiError::forbidden(
                "the operator key does not act for a tenant",
            )),
        }
    }
}

/// A key that may write: an admin or seller key.
#[derive(Debug, Clone)]
pub struct Writer(pub Caller);

impl Writer {
    pub fn caller(&self) -> &Caller {
        &self.0
    }

    /// 403 unless the key is an admin's.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.0.role {
            Role::Admin => Ok(()),
            Role::Seller | Role::Reader | Role::Adapter => {
                Err(ApiError::forbidden("only an admin key may do this"))
            }
        }
    }

    /// The seller a command acts for: the key's own seller, else the one the request names, else
    /// (single brand) the tenant's own seller. A key bound to a seller acts for no other.
    pub fn acting_seller(
        &self,
        field: &str,
        requested: Option<SellerId>,
    ) -> Result<SellerId, ApiError> {
        let tenant = &self.0.tenant;
        match (&self.0.bound_seller, requested) {
            (Some(bound), Some(requested)) if *bound != requested => Err(ApiError::forbidden(
                format!("this key acts only for seller '{bound}'"),
            )),
            (Some(bound), _) => Ok(bound.clone()),
            (None, Some(requested)) => match tenant.own_seller() {
                Some(own) if own != requested => Err(ApiError::invalid(
                    field,
                    format!(
                        "tenant '{}' is a single brand: its only seller is '{own}'",
                        tenant.id
                    ),
                )),
                _ => Ok(requested),
            },
            (None, None) => match tenant.mode {
                TenantMode::SingleBrand => tenant
                    .own_seller()
                    .ok_or_else(|| ApiError::internal(&"tenant id is not a valid seller id")),
                TenantMode::Mall => Err(ApiError::invalid(
                    field,
                    "a mall tenant needs the seller named",
                )),
            },
        }
    }

    /// 403 unless the key may act for `seller` (an existing offer's, stock line's…).
    pub fn may_act_for(&self, seller: &SellerId) -> Result<(), ApiError> {
        match &self.0.bound_seller {
            Some(bound) if bound != seller => Err(ApiError::forbidden(format!(
                "this key acts only for seller '{bound}'"
            ))),
            _ => Ok(()),
        }
    }
}

/// The platform operator's key.
#[derive(Debug, Clone, Copy)]
pub struct Operator;

enum Credential {
    Operator,
    Tenant(Caller),
}

fn authenticate(parts: &Parts, state: &AppState) -> Result<Credential, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <api key>`"))?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let key = match text.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        _ => {
            return Err(ApiError::unauthorized(
                "the Authorization header must use the Bearer scheme",
            ))
        }
    };
    match state.config.authenticate(key) {
        Some(KeyOwner::Operator) => Ok(Credential::Operator),
        Some(KeyOwner::Tenant { tenant, key }) => Ok(Credential::Tenant(Caller::new(
            tenant,
            key.role,
            key.seller.as_ref(),
        ))),
        None => Err(ApiError::unauthorized("the API key is not known")),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state)? {
            Credential::Tenant(caller) if caller.role == Role::Adapter => Err(ApiError::forbidden(
                "an adapter key may only report outcomes",
            )),
            Credential::Tenant(caller) => Ok(caller),
            Credential::Operator => Err(ApiError::forbidden(
                "the operator key does not act for a tenant",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Reader => Err(ApiError::forbidden("a reader key may only read")),
            Role::Adapter => Err(ApiError::forbidden(
                "an adapter key may only report outcomes",
            )),
            Role::Admin | Role::Seller => Ok(Writer(caller)),
        }
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match authenticate(parts, state)? {
            Credential::Operator => Ok(Operator),
            Credential::Tenant(_) => Err(ApiError::forbidden(
                "only the platform operator may read topics",
            )),
        }
    }
}

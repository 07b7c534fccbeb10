//! Typed ids and validated values. Each newtype has a private field and is built only through
//! `parse` (or serde, which calls `parse`), so a value that exists is a value that is valid.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused, naming the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn check_token(kind: &str, s: &str, max: usize, extra: &[char]) -> Result<(), InvalidValue> {
    if s.is_empty() || s.len() > max {
        return Err(InvalidValue(format!(
            "{kind} must be 1 to {max} characters"
        )));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    {
        let allowed: String = extra.iter().collect();
        return Err(InvalidValue(format!(
            "{kind} may contain only letters, digits and '{allowed}'"
        )));
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
                let s = s.into();
                check_token($kind, &s, $max, $extra)?;
                Ok(Self(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, InvalidValue> {
                Self::parse(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

token_id!(
    /// A merchant of the platform. Lowercase, so that keys and paths never differ by case.
    TenantId, "tenant id", 64, &['-', '_']
);
token_id!(
    /// A seller within a tenant (in single-brand mode, the tenant's own seller).
    SellerId, "seller id", 64, &['-', '_', '.']
);
token_id!(
    /// A product of a tenant: the merchant's own id or a UUIDv7 porch assigned.
    ProductId, "product id", 100, &['-', '_', '.']
);
token_id!(
    /// A stock keeping unit, unique within its tenant and belonging to one product.
    Sku, "sku", 64, &['-', '_', '.']
);
token_id!(
    /// A stock location (warehouse, store); it belongs to exactly one region.
    LocationId, "location id", 64, &['-', '_', '.']
);
token_id!(
    /// An offer, assigned by porch (UUIDv7).
    OfferId, "offer id", 64, &['-']
);
token_id!(
    /// A command, assigned by porch (UUIDv7) or given by the client.
    CommandId, "command id", 64, &['-', '_']
);
token_id!(
    /// A stock reservation, assigned by porch (UUIDv7).
    ReservationId, "reservation id", 64, &['-']
);

impl TenantId {
    /// Tenants are lowercase so `Acme` and `acme` can never be two tenants.
    pub fn parse_tenant(s: &str) -> Result<Self, InvalidValue> {
        if s.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(InvalidValue("tenant id must be lowercase".into()));
        }
        Self::parse(s)
    }
}

/// Ids porch assigns are UUIDv7: time-ordered, so lists and logs sort by creation.
pub fn new_uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl OfferId {
    pub fn generate() -> Self {
        Self(new_uuid_v7())
    }
}
impl CommandId {
    pub fn generate() -> Self {
        Self(new_uuid_v7())
    }
}
impl ReservationId {
    pub fn generate() -> Self {
        Self(new_uuid_v7())
    }
}
impl ProductId {
    pub fn generate() -> Self {
        Self(new_uuid_v7())
    }
}

/// An ISO 3166-1 alpha-2 region code, upper case (GB, IN, BR, DE…).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode(String);

impl RegionCode {
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(s))
        } else {
            Err(InvalidValue(
                "region must be an ISO 3166-1 alpha-2 code in upper case, such as GB".into(),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for RegionCode {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(s)
    }
}
impl From<RegionCode> for String {
    fn from(v: RegionCode) -> String {
        v.0
    }
}
impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ISO 4217 codes porch accepts, with their minor-unit exponent.
const CURRENCIES: &[(&str, u8)] = &[
    ("ARS", 2),
    ("AUD", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("IDR", 2),
    ("INR", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PEN", 2),
    ("PLN", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("USD", 2),
    ("UYU", 2),
    ("ZAR", 2),
];

/// An ISO 4217 currency code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: impl Into<String>) -> Result<Self, InvalidValue> {
        let s = s.into();
        if CURRENCIES.iter().any(|(c, _)| *c == s) {
            Ok(Self(s))
        } else {
            Err(InvalidValue(format!(
                "currency '{s}' is not an ISO 4217 code porch accepts"
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Digits after the decimal point (2 for GBP, 0 for JPY).
    pub fn exponent(&self) -> u8 {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == self.0)
            .map(|(_, e)| *e)
            .unwrap_or(2)
    }
}
impl TryFrom<String> for Currency {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(s)
    }
}
impl From<Currency> for String {
    fn from(v: Currency) -> String {
        v.0
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount in minor units (pence, paise, centavos) with its currency. Never a float.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawMoney", into = "RawMoney")]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

/// Money as it is written: the name is the Avro record's, which schema-aware readers check.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Money")]
struct RawMoney {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    /// Money may be zero (a compare-at of nothing) but never negative.
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, InvalidValue> {
        if amount_minor < 0 {
            return Err(InvalidValue("amount must not be negative".into()));
        }
        Ok(Self {
            amount_minor,
            currency,
        })
    }
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }
    pub fn currency(&self) -> &Currency {
        &self.currency
    }
    pub fn is_positive(&self) -> bool {
        self.amount_minor > 0
    }
}
impl TryFrom<RawMoney> for Money {
    type Error = InvalidValue;
    fn try_from(r: RawMoney) -> Result<Self, InvalidValue> {
        Money::new(r.amount_minor, r.currency)
    }
}
impl From<Money> for RawMoney {
    fn from(m: Money) -> RawMoney {
        RawMoney {
            amount_minor: m.amount_minor,
            currency: m.currency,
        }
    }
}

/// A sales channel a listing can be published on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Channel {
    Storefront,
    Meta,
    MercadoLibre,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Storefront, Channel::Meta, Channel::MercadoLibre];
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "storefront" => Ok(Channel::Storefront),
            "meta" => Ok(Channel::Meta),
            "mercadolibre" => Ok(Channel::MercadoLibre),
            _ => Err(InvalidValue(format!(
                "channel '{s}' is not one of storefront, meta, mercadolibre"
            ))),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Storefront => "storefront",
            Channel::Meta => "meta",
            Channel::MercadoLibre => "mercadolibre",
        }
    }
}
impl TryFrom<String> for Channel {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}
impl From<Channel> for String {
    fn from(c: Channel) -> String {
        c.as_str().to_string()
    }
}
impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Microseconds since the Unix epoch, UTC (Avro timestamp-micros).
pub type Micros = i64;

/// The wall clock in microseconds. Only edges (ingest, runtime) read it; domain cores get time
/// in their inputs.
pub fn now_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_what_they_cannot_hold() {
        assert!(Sku::parse("TSHIRT-RED-M").is_ok());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("has space").is_err());
        assert!(Sku::parse("x".repeat(65)).is_err());
        assert!(TenantId::parse_tenant("Acme").is_err());
        assert!(TenantId::parse_tenant("acme-1").is_ok());
    }

    #[test]
    fn regions_are_upper_case_alpha_2() {
        assert!(RegionCode::parse("GB").is_ok());
        assert!(RegionCode::parse("gb").is_err());
        assert!(RegionCode::parse("GBR").is_err());
    }

    #[test]
    fn money_is_never_negative_and_knows_its_currency() {
        let inr = Currency::parse("INR").unwrap();
        assert!(Money::new(-1, inr.clone()).is_err());
        assert!(Money::new(0, inr.clone()).unwrap().amount_minor() == 0);
        assert!(Currency::parse("XXX").is_err());
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        let json: Result<Money, _> =
            serde_json::from_str(r#"{"amount_minor":-5,"currency":"GBP"}"#);
        assert!(json.is_err());
    }

    #[test]
    fn channels_parse_by_their_wire_names() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()).unwrap(), c);
        }
        assert!(Channel::parse("myspace").is_err());
    }
}

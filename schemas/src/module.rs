//! The modules of the pipeline: each owns a family of topics (`<module>.commands`,
//! `<module>.events`), the Avro namespace `porch.<module>` of its records, and the processor of
//! the same name (which is also its consumer group).

use std::fmt;
use std::str::FromStr;

/// A module of the pipeline, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Module {
    /// Step 1, the product: DRAFT → READY → ACTIVE → INACTIVE. Takes commands.
    Product,
    /// Step 2, a product's variants (its SKUs): created, updated, discontinued. Takes commands.
    Variant,
    /// Step 3, a seller's offer of a SKU in a region: price and validity window. Takes commands.
    Offer,
    /// Step 4, stock per seller, SKU and region, and its reservations. Takes commands.
    Inventory,
    /// Step 5, compliance per product and region, by the region's rules or a person's decision.
    /// Takes commands, and reacts to product events.
    Compliance,
    /// Step 6, activation (the buy box): whether each offer is ACTIVE, SUSPENDED or ENDED, from
    /// the events of steps 1 to 5 and the clock. Events only.
    Activation,
    /// Step 7, the search listing: whether each offer is VISIBLE or HIDDEN, from activation's
    /// events. Events only.
    Search,
    /// The sales channels (DESIGN §8): what each channel should show of an offer, and the
    /// listing's state as the channel confirms it. No commands: it reacts to events, to the
    /// tenants' channel settings and to the channels' outcomes.
    Channel,
}

impl Module {
    /// Every module, in pipeline order.
    pub const ALL: [Module; 8] = [
        Module::Product,
        Module::Variant,
        Module::Offer,
        Module::Inventory,
        Module::Compliance,
        Module::Activation,
        Module::Search,
        Module::Channel,
    ];

    /// The modules that take commands (those with a `<module>.commands` topic), in pipeline
    /// order; the others only react to events.
    pub const COMMANDED: [Module; 5] = [
        Module::Product,
        Module::Variant,
        Module::Offer,
        Module::Inventory,
        Module::Compliance,
    ];

    /// The module's name: its topics' prefix, its Avro namespace's last part and its
    /// processor's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Module::Product => "product",
            Module::Variant => "variant",
            Module::Offer => "offer",
            Module::Inventory => "inventory",
            Module::Compliance => "compliance",
            Module::Activation => "activation",
            Module::Search => "search",
            Module::Channel => "channel",
        }
    }

    /// The module named `name`, if any. A `const fn`, so a name known at compile time is checked
    /// at compile time.
    pub const fn named(name: &str) -> Option<Module> {
        let mut i = 0;
        while i < Module::ALL.len() {
            if same(Module::ALL[i].as_str(), name) {
                return Some(Module::ALL[i]);
            }
            i += 1;
        }
        None
    }
}

/// `a == b`, in a `const fn`.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a module's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a module: one of {names}", names = Module::ALL.map(Module::as_str).join(", "))]
pub struct UnknownModule(pub String);

impl FromStr for Module {
    type Err = UnknownModule;
    fn from_str(s: &str) -> Result<Self, UnknownModule> {
        Module::named(s).ok_or_else(|| UnknownModule(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_bad_one_is_named_in_the_error() {
        for m in Module::ALL {
            assert_eq!(m.as_str().parse::<Module>(), Ok(m));
            assert_eq!(m.to_string(), m.as_str());
        }
        let names: Vec<&str> = Module::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            names,
            [
                "product",
                "variant",
                "offer",
                "inventory",
                "compliance",
                "activation",
                "search",
                "channel"
            ]
        );
        let err = "Offer".parse::<Module>().unwrap_err();
        assert_eq!(err, UnknownModule("Offer".into()));
        assert_eq!(
            err.to_string(),
            "'Offer' is not a module: one of product, variant, offer, inventory, compliance, \
             activation, search, channel"
        );
        assert!("outcome".parse::<Module>().is_err());
    }

    #[test]
    fn the_commanded_modules_come_first_in_pipeline_order() {
        assert_eq!(
            Module::COMMANDED[..],
            Module::ALL[..Module::COMMANDED.len()]
        );
    }
}

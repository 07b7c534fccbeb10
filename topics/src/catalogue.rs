//! The topic catalogue (`topics/catalogue.toml`): names, partitions, retention, cleanup, keys.

use porch_schemas::Module;
use serde::Deserialize;

const CATALOGUE: &str = include_str!("../catalogue.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    pub retention_ms: i64,
    pub cleanup_policy: String,
    #[serde(default)]
    pub dlq: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub partitions: u32,
    pub key: String,
    #[serde(rename = "topic")]
    pub topics: Vec<TopicSpec>,
}

impl Catalogue {
    /// The catalogue compiled into the binary.
    pub fn builtin() -> Self {
        toml::from_str(CATALOGUE).expect("topics/catalogue.toml is valid")
    }

    /// Every topic name including dead-letter topics.
    pub fn all_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for t in &self.topics {
            names.push(t.name.clone());
            if t.dlq {
                names.push(dlq_of(&t.name));
            }
        }
        names
    }
}

/// The dead-letter topic of a topic.
pub fn dlq_of(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// The commands topic of a module (`offer` → `offer.commands`); only the modules of
/// [`Module::COMMANDED`] have one.
pub fn commands_topic(module: Module) -> String {
    format!("{module}.commands")
}

/// The lane name, in a command's envelope, of the hot lane.
pub const HOT_LANE: &str = "hot";
/// The hot lane's topic: reservation requests for SKUs under a flash sale, so that other SKUs'
/// requests never queue behind them (co-partitioned like every domain topic, read by the
/// inventory processor beside its commands).
pub const HOT_LANE_TOPIC: &str = "inventory.hot.requests";

/// The topic a command travels on: its module's commands topic, or its lane's.
pub fn command_topic(record: &porch_schemas::CommandRecord) -> String {
    match record.envelope.lane.as_deref() {
        Some(HOT_LANE) => HOT_LANE_TOPIC.to_string(),
        _ => commands_topic(record.command.module()),
    }
}

/// Whether a topic carries commands (`<module>.commands`, and the order systems'
/// `inventory.reservation.requests`), not events.
pub fn carries_commands(topic: &str) -> bool {
    topic.ends_with(".commands") || topic.ends_with(".requests")
}

/// The events topic of a module (`offer` → `offer.events`).
pub fn events_topic(module: Module) -> String {
    format!("{module}.events")
}

/// The record key of every domain topic: tenant and product.
pub fn product_key(tenant: &str, product: &str) -> String {
    format!("{tenant}/{product}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_has_every_module_and_dead_letters() {
        let c = Catalogue::builtin();
        assert!(c.partitions > 0);
        let names = c.all_names();
        for m in Module::ALL {
            let commanded = Module::COMMANDED.contains(&m);
            assert_eq!(names.contains(&commands_topic(m)), commanded, "{m}");
            assert!(names.contains(&events_topic(m)), "{m}");
        }
        assert_eq!(commands_topic(Module::Offer), "offer.commands");
        assert_eq!(events_topic(Module::Activation), "activation.events");
        assert!(names.contains(&"activation.events".to_string()));
        assert!(names.contains(&"offer.commands.dlq".to_string()));
    }
}

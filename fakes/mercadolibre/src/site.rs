//! Mercado Libre runs one site per country, each with its own currency, categories and item ids:
//! an item's id and its category's id start with the site id (`MLB1234567890`, `MLB1055`). The
//! fake knows the sites porch sells on.

use serde::{Deserialize, Serialize};

/// A Mercado Libre site.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum Site {
    /// Brazil, the site a seeded account is on unless told otherwise.
    #[default]
    #[serde(rename = "MLB")]
    Mlb,
    /// Argentina.
    #[serde(rename = "MLA")]
    Mla,
    /// Mexico.
    #[serde(rename = "MLM")]
    Mlm,
    /// Chile.
    #[serde(rename = "MLC")]
    Mlc,
    /// Colombia.
    #[serde(rename = "MCO")]
    Mco,
    /// Uruguay.
    #[serde(rename = "MLU")]
    Mlu,
    /// Peru.
    #[serde(rename = "MPE")]
    Mpe,
}

impl Site {
    pub const ALL: [Site; 7] = [
        Site::Mlb,
        Site::Mla,
        Site::Mlm,
        Site::Mlc,
        Site::Mco,
        Site::Mlu,
        Site::Mpe,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Site::Mlb => "MLB",
            Site::Mla => "MLA",
            Site::Mlm => "MLM",
            Site::Mlc => "MLC",
            Site::Mco => "MCO",
            Site::Mlu => "MLU",
            Site::Mpe => "MPE",
        }
    }

    /// The one currency an item on this site is priced in.
    pub fn currency(self) -> &'static str {
        match self {
            Site::Mlb => "BRL",
            Site::Mla => "ARS",
            Site::Mlm => "MXN",
            Site::Mlc => "CLP",
            Site::Mco => "COP",
            Site::Mlu => "UYU",
            Site::Mpe => "PEN",
        }
    }

    pub fn parse(id: &str) -> Option<Site> {
        Site::ALL.into_iter().find(|site| site.id() == id)
    }

    /// The site of a category (or item) id: its three-letter prefix, followed by digits only.
    pub fn of_id(id: &str) -> Option<Site> {
        let (prefix, number) = id.split_at_checked(3)?;
        let site = Site::parse(prefix)?;
        (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then_some(site)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_id_names_its_site() {
        assert_eq!(Site::of_id("MLB1055"), Some(Site::Mlb));
        assert_eq!(Site::of_id("MCO417044"), Some(Site::Mco));
        for bad in ["MLB", "MLBx1", "XYZ123", "mlb123", "ML", ""] {
            assert_eq!(Site::of_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_site_has_its_currency() {
        let pairs: Vec<(&str, &str)> = Site::ALL
            .into_iter()
            .map(|site| (site.id(), site.currency()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("MLB", "BRL"),
                ("MLA", "ARS"),
                ("MLM", "MXN"),
                ("MLC", "CLP"),
                ("MCO", "COP"),
                ("MLU", "UYU"),
                ("MPE", "PEN"),
            ]
        );
    }
}

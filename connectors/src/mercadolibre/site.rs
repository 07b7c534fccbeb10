//! Mercado Libre runs one site per country, each with one currency; an offer's region picks the
//! site, and an item's id and category id start with the site's id (`MLB1234567890`, `MLB1055`).

use porch_schemas::RegionCode;

/// A Mercado Libre site porch lists on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// `MLB`, `MLA`…
    pub id: &'static str,
    /// The one currency its items are priced in.
    pub currency: &'static str,
}

/// Region → site and currency.
const SITES: [(&str, Site); 7] = [
    (
        "BR",
        Site {
            id: "MLB",
            currency: "BRL",
        },
    ),
    (
        "AR",
        Site {
            id: "MLA",
            currency: "ARS",
        },
    ),
    (
        "MX",
        Site {
            id: "MLM",
            currency: "MXN",
        },
    ),
    (
        "CL",
        Site {
            id: "MLC",
            currency: "CLP",
        },
    ),
    (
        "CO",
        Site {
            id: "MCO",
            currency: "COP",
        },
    ),
    (
        "UY",
        Site {
            id: "MLU",
            currency: "UYU",
        },
    ),
    (
        "PE",
        Site {
            id: "MPE",
            currency: "PEN",
        },
    ),
];

impl Site {
    /// The site of a region, if Mercado Libre has one there.
    pub fn of_region(region: &RegionCode) -> Option<Site> {
        SITES
            .iter()
            .find(|(r, _)| *r == region.as_str())
            .map(|(_, s)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_region_has_its_site_and_currency() {
        let site = |r: &str| Site::of_region(&RegionCode::parse(r).unwrap());
        let pairs: Vec<(&str, &str)> = ["BR", "AR", "MX", "CL", "CO", "UY", "PE"]
            .iter()
            .map(|r| site(r).map(|s| (s.id, s.currency)).unwrap())
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
        assert_eq!(site("GB"), None);
    }
}

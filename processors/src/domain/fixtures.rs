//! Test fixtures shared by the domain tests: valid ids and records with short names, so that a
//! test reads as its given/when/then.

use porch_schemas::*;
use std::collections::BTreeMap;

pub fn pid() -> ProductId {
    ProductId::parse("p-1").expect("valid product id")
}

pub fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("valid sku")
}

pub fn seller(s: &str) -> SellerId {
    SellerId::parse(s).expect("valid seller")
}

pub fn region(s: &str) -> RegionCode {
    RegionCode::parse(s).expect("valid region")
}

pub fn location(s: &str) -> LocationId {
    LocationId::parse(s).expect("valid location")
}

pub fn offer_id(s: &str) -> OfferId {
    OfferId::parse(s).expect("valid offer id")
}

pub fn reservation(s: &str) -> ReservationId {
    ReservationId::parse(s).expect("valid reservation id")
}

pub fn money(amount_minor: i64, currency: &str) -> Money {
    Money::new(
        amount_minor,
        Currency::parse(currency).expect("valid currency"),
    )
    .expect("money")
}

pub fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A complete product: title, description and category.
pub fn product() -> ProductData {
    ProductData {
        product_id: pid(),
        title: "Linen shirt".into(),
        description: Some("Soft linen".into()),
        brand: Some("Acme".into()),
        category: Some("apparel".into()),
        attributes: attrs(&[("tax_code", "6109")]),
        images: vec!["front.jpg".into()],
        channel_overrides: BTreeMap::new(),
    }
}

/// A product without description and category.
pub fn draft_product() -> ProductData {
    ProductData {
        description: None,
        category: None,
        ..product()
    }
}

pub fn variant(s: &str) -> VariantData {
    VariantData {
        sku: sku(s),
        options: attrs(&[("size", "M")]),
        weight_grams: Some(200),
        dimensions: None,
        gtin: None,
    }
}

/// An offer by seller `s1` with no validity window, on the storefront.
pub fn offer(id: &str, sku_: &str, region_: &str, price: i64, currency: &str) -> OfferData {
    OfferData {
        offer_id: offer_id(id),
        product_id: pid(),
        seller: seller("s1"),
        sku: sku(sku_),
        region: region(region_),
        price: money(price, currency),
        compare_at: None,
        valid_from: None,
        valid_until: None,
        channels: vec![Channel::Storefront],
    }
}

/// Seller `s1`'s stock of `sku_` at `location_`, in `region_`.
pub fn line(sku_: &str, location_: &str, region_: &str) -> StockLine {
    StockLine {
        product_id: pid(),
        seller: seller("s1"),
        sku: sku(sku_),
        location: location(location_),
        region: region(region_),
    }
}

/// The listing activation would publish for `offer` on the complete product and `variant(sku)`.
pub fn listing(offer: &OfferData, available: i64) -> Listing {
    let p = product();
    Listing {
        offer_id: offer.offer_id.clone(),
        product_id: offer.product_id.clone(),
        sku: offer.sku.clone(),
        seller: offer.seller.clone(),
        region: offer.region.clone(),
        title: p.title,
        description: p.description,
        brand: p.brand,
        category: p.category,
        image: p.images.first().cloned(),
        options: variant(offer.sku.as_str()).options,
        price: offer.price.clone(),
        compare_at: offer.compare_at.clone(),
        available,
        channels: offer.channels.clone(),
    }
}

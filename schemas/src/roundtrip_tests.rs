//! Every command and event round-trips through its .avsc schema and the Confluent framing.

use crate::*;
use std::collections::BTreeMap;
use std::sync::Arc;

fn money(n: i64) -> Money {
    Money::new(n, Currency::parse("GBP").unwrap()).unwrap()
}

fn product() -> ProductData {
    ProductData {
        product_id: ProductId::parse("p-1").unwrap(),
        title: "Linen shirt".into(),
        description: Some("Soft".into()),
        brand: None,
        category: Some("apparel".into()),
        attributes: BTreeMap::from([("tax_code".into(), "6109".into())]),
        images: vec!["front.jpg".into()],
        channel_overrides: BTreeMap::from([(
            "meta".into(),
            BTreeMap::from([("title".into(), "Shirt".into())]),
        )]),
    }
}

fn line() -> StockLine {
    StockLine {
        product_id: ProductId::parse("p-1").unwrap(),
        seller: SellerId::parse("s1").unwrap(),
        sku: Sku::parse("SKU-1").unwrap(),
        location: LocationId::parse("lon-1").unwrap(),
        region: RegionCode::parse("GB").unwrap(),
    }
}

fn offer() -> OfferData {
    OfferData {
        offer_id: OfferId::generate(),
        product_id: ProductId::parse("p-1").unwrap(),
        seller: SellerId::parse("s1").unwrap(),
        sku: Sku::parse("SKU-1").unwrap(),
        region: RegionCode::parse("GB").unwrap(),
        price: money(1999),
        compare_at: Some(money(2499)),
        valid_from: Some(1_700_000_000_000_000),
        valid_until: None,
        channels: vec![Channel::Storefront, Channel::Meta],
    }
}

fn listing() -> Listing {
    Listing {
        offer_id: OfferId::generate(),
        product_id: ProductId::parse("p-1").unwrap(),
        sku: Sku::parse("SKU-1").unwrap(),
        seller: SellerId::parse("s1").unwrap(),
        region: RegionCode::parse("GB").unwrap(),
        title: "Linen shirt".into(),
        description: None,
        brand: Some("Acme".into()),
        category: None,
        image: Some("front.jpg".into()),
        options: BTreeMap::from([("size".into(), "M".into())]),
        price: money(1999),
        compare_at: None,
        available: 3,
        channels: vec![Channel::Storefront],
    }
}

fn variant() -> VariantData {
    VariantData {
        sku: Sku::parse("SKU-1").unwrap(),
        options: BTreeMap::from([("size".into(), "M".into())]),
        weight_grams: Some(200),
        dimensions: Some(Dimensions {
            length_mm: 1,
            width_mm: 2,
            height_mm: 3,
        }),
        gtin: None,
    }
}

fn reasons() -> Vec<Reason> {
    vec![Reason::on_field(
        "MISSING_ATTRIBUTE",
        "attributes.tax_code",
        "IN needs a tax code",
    )]
}

fn all_commands() -> Vec<Command> {
    let pid = ProductId::parse("p-1").unwrap();
    vec![
        CreateProduct { product: product() }.into(),
        UpdateProduct {
            product_id: pid.clone(),
            title: Some("New".into()),
            description: None,
            brand: None,
            category: None,
            attributes_set: BTreeMap::new(),
            attributes_removed: vec!["x".into()],
            images: Some(vec![]),
            channel_overrides: None,
        }
        .into(),
        DeactivateProduct {
            product_id: pid.clone(),
        }
        .into(),
        ReactivateProduct {
            product_id: pid.clone(),
        }
        .into(),
        AddProductImage {
            product_id: pid.clone(),
            name: "a.png".into(),
        }
        .into(),
        CreateVariants {
            product_id: pid.clone(),
            variants: vec![variant()],
        }
        .into(),
        UpdateVariant {
            product_id: pid.clone(),
            sku: Sku::parse("SKU-1").unwrap(),
            options: None,
            weight_grams: Some(1),
            dimensions: None,
            gtin: Some("123".into()),
        }
        .into(),
        DiscontinueVariant {
            product_id: pid.clone(),
            sku: Sku::parse("SKU-1").unwrap(),
        }
        .into(),
        CreateOffer { offer: offer() }.into(),
        UpdateOffer {
            offer_id: OfferId::generate(),
            product_id: pid.clone(),
            price: Some(money(5)),
            compare_at: None,
            valid_from: None,
            valid_until: Some(5),
            channels: None,
        }
        .into(),
        WithdrawOffer {
            offer_id: OfferId::generate(),
            product_id: pid.clone(),
        }
        .into(),
        SetStock {
            line: line(),
            on_hand: 5,
        }
        .into(),
        ReserveStock {
            reservation_id: ReservationId::generate(),
            line: line(),
            quantity: 2,
            expires_at: Some(1_700_000_000_000_000),
            region_wide: true,
        }
        .into(),
        CommitReservation {
            reservation_id: ReservationId::generate(),
            line: line(),
        }
        .into(),
        ReleaseReservation {
            reservation_id: ReservationId::generate(),
            line: line(),
        }
        .into(),
        DecideCompliance {
            product_id: pid,
            region: RegionCode::parse("IN").unwrap(),
            approve: true,
            note: None,
        }
        .into(),
    ]
}

fn all_events() -> Vec<Event> {
    let pid = ProductId::parse("p-1").unwrap();
    let gb = RegionCode::parse("GB").unwrap();
    let o = offer();
    vec![
        ProductCreated {
            product: product(),
            status: "READY".into(),
            missing: vec![],
        }
        .into(),
        ProductUpdated {
            product: product(),
            status: "DRAFT".into(),
            missing: vec!["title".into()],
        }
        .into(),
        ProductReady {
            product_id: pid.clone(),
        }
        .into(),
        ProductDeactivated {
            product_id: pid.clone(),
        }
        .into(),
        ProductReactivated {
            product_id: pid.clone(),
            status: "READY".into(),
        }
        .into(),
        ProductPublished {
            product_id: pid.clone(),
            channel: Channel::Storefront,
        }
        .into(),
        VariantsCreated {
            product_id: pid.clone(),
            variants: vec![variant(), variant()],
        }
        .into(),
        VariantUpdated {
            product_id: pid.clone(),
            variant: variant(),
        }
        .into(),
        VariantDiscontinued {
            product_id: pid.clone(),
            sku: Sku::parse("SKU-1").unwrap(),
        }
        .into(),
        OfferCreated { offer: o.clone() }.into(),
        OfferUpdated { offer: o.clone() }.into(),
        OfferWithdrawn { offer: o.clone() }.into(),
        StockAdjusted {
            line: line(),
            on_hand: 5,
            reserved: 1,
            region_available: 4,
        }
        .into(),
        StockReserved {
            reservation_id: ReservationId::generate(),
            line: line(),
            quantity: 1,
            region_available: 3,
            expires_at: Some(1_700_000_000_000_000),
        }
        .into(),
        ReservationFailed {
            reservation_id: ReservationId::generate(),
            line: line(),
            requested: 3,
            available: 1,
            region_wide: false,
        }
        .into(),
        ReservationCommitted {
            reservation_id: ReservationId::generate(),
            line: line(),
            quantity: 1,
            on_hand: 4,
            region_available: 3,
        }
        .into(),
        ReservationExpired {
            reservation_id: ReservationId::generate(),
            line: line(),
            quantity: 1,
            region_available: 4,
        }
        .into(),
        ReservationOutcome {
            reservation_id: ReservationId::generate(),
            request_id: Some("c-1".into()),
            product_id: pid.clone(),
            seller: o.seller.clone(),
            sku: o.sku.clone(),
            region: gb.clone(),
            result: "FAILED".into(),
            quantity: 0,
            requested: Some(3),
            available: Some(1),
            expires_at: None,
            reasons: vec![],
        }
        .into(),
        ReservationReleased {
            reservation_id: ReservationId::generate(),
            line: line(),
            quantity: 1,
            region_available: 4,
        }
        .into(),
        InventoryAvailable {
            product_id: pid.clone(),
            seller: o.seller.clone(),
            sku: o.sku.clone(),
            region: gb.clone(),
            available: 4,
        }
        .into(),
        InventoryDepleted {
            product_id: pid.clone(),
            seller: o.seller.clone(),
            sku: o.sku.clone(),
            region: gb.clone(),
        }
        .into(),
        ComplianceApproved {
            product_id: pid.clone(),
            region: gb.clone(),
            manual: false,
            reasons: vec![],
        }
        .into(),
        ComplianceRejected {
            product_id: pid.clone(),
            region: gb.clone(),
            manual: true,
            reasons: reasons(),
        }
        .into(),
        ComplianceReviewRequested {
            product_id: pid.clone(),
            region: gb.clone(),
            reasons: reasons(),
        }
        .into(),
        OfferActivated {
            listing: listing(),
            decided_at: Some(1_700_000_000_000_000),
        }
        .into(),
        OfferSuspended {
            offer_id: o.offer_id.clone(),
            product_id: pid.clone(),
            seller: o.seller.clone(),
            sku: o.sku.clone(),
            region: gb.clone(),
            reasons: reasons(),
        }
        .into(),
        OfferEnded {
            offer_id: o.offer_id.clone(),
            product_id: pid.clone(),
            seller: o.seller.clone(),
            sku: o.sku.clone(),
            region: gb.clone(),
            reasons: reasons(),
        }
        .into(),
        ListingVisible { listing: listing() }.into(),
        ListingHidden {
            offer_id: o.offer_id.clone(),
            product_id: pid.clone(),
            region: gb,
            reasons: reasons(),
        }
        .into(),
        ChannelSettingsChanged {
            version: 7,
            connections: vec![ChannelConnection {
                channel: Channel::Meta,
                region: RegionCode::parse("IN").unwrap(),
                account: "catalog-1".into(),
                enabled: true,
                link_template: Some("https://shop.example/{product}".into()),
            }],
        }
        .into(),
        ChannelResyncRequested {
            partition: 3,
            after_product: Some(pid.clone()),
        }
        .into(),
        ListingRequested {
            channel: Channel::Meta,
            account: "catalog-1".into(),
            offer_id: o.offer_id.clone(),
            product_id: pid.clone(),
            sku: o.sku.clone(),
            seller: o.seller.clone(),
            region: RegionCode::parse("IN").unwrap(),
            retailer_id: o.offer_id.to_string(),
            version: 2,
            action: "UPSERT".into(),
            item: Some(Box::new(ChannelItem {
                title: "Linen shirt".into(),
                description: "Soft".into(),
                brand: Some("Acme".into()),
                gtin: None,
                mpn: Some("LS-1".into()),
                category: Some("apparel".into()),
                condition: "new".into(),
                availability: "in stock".into(),
                quantity: 4,
                price: money(2500),
                compare_at: Some(money(3000)),
                link: "https://shop.example/p-1".into(),
                image_link: "https://media.example/acme/p-1/front.jpg".into(),
                additional_image_links: vec!["https://cdn.example/back.jpg".into()],
                item_group_id: "p-1".into(),
                options: [("size".to_string(), "M".to_string())]
                    .into_iter()
                    .collect(),
                extra: [("color".to_string(), "sand".to_string())]
                    .into_iter()
                    .collect(),
            })),
        }
        .into(),
        ListingRequested {
            channel: Channel::MercadoLibre,
            account: "MLB-1".into(),
            offer_id: o.offer_id.clone(),
            product_id: pid.clone(),
            sku: o.sku.clone(),
            seller: o.seller.clone(),
            region: RegionCode::parse("BR").unwrap(),
            retailer_id: o.offer_id.to_string(),
            version: 3,
            action: "DELETE".into(),
            item: None,
        }
        .into(),
        ListingStateChanged {
            channel: Channel::Meta,
            offer_id: o.offer_id.clone(),
            product_id: pid.clone(),
            region: RegionCode::parse("IN").unwrap(),
            retailer_id: o.offer_id.to_string(),
            from: "SUBMITTED".into(),
            to: "REJECTED".into(),
            version: 2,
            issues: reasons(),
            channel_item_id: Some("1000000000000001".into()),
        }
        .into(),
        ListingOutcome {
            channel: Channel::Meta,
            offer_id: o.offer_id.clone(),
            product_id: pid.clone(),
            retailer_id: o.offer_id.to_string(),
            version: 2,
            result: "REJECTED".into(),
            issues: reasons(),
            channel_item_id: None,
            reporter: "meta".into(),
        }
        .into(),
        CommandRejected {
            command_id: CommandId::generate(),
            command_type: "CreateOffer".into(),
            product_id: pid,
            reasons: reasons(),
        }
        .into(),
    ]
}

fn codec() -> Codec {
    Codec::new(Arc::new(EmbeddedRegistry::in_memory()))
}

/// A command of tenant acme with a fresh command id.
fn command_record(command: Command, seller: Option<SellerId>) -> CommandRecord {
    CommandRecord {
        envelope: CommandEnvelope {
            command_id: CommandId::generate(),
            tenant: TenantId::parse("acme").unwrap(),
            seller,
            aggregate_id: "p-1".into(),
            issued_at: 1_700_000_000_000_000,
            correlation_id: "corr".into(),
            lane: None,
            expected_version: Some(3),
        },
        command,
    }
}

/// An event of tenant acme at version 3.
fn event_record(event: Event) -> EventRecord {
    EventRecord {
        envelope: EventEnvelope {
            event_id: "e-1".into(),
            tenant: TenantId::parse("acme").unwrap(),
            aggregate_id: "p-1".into(),
            aggregate_version: 3,
            occurred_at: 1_700_000_000_000_000,
            causation_id: "c".into(),
            correlation_id: "corr".into(),
        },
        event,
    }
}

#[test]
fn every_message_has_a_schema_file() {
    let names = avsc::message_names();
    for n in Command::FULL_NAMES.iter().chain(Event::FULL_NAMES) {
        assert!(names.iter().any(|x| x == n), "no .avsc for {n}");
    }
    assert_eq!(
        names.len(),
        Command::FULL_NAMES.len() + Event::FULL_NAMES.len()
    );
}

#[test]
fn every_message_belongs_to_the_module_its_namespace_names() {
    let commands = all_commands();
    let names: std::collections::BTreeSet<_> = commands.iter().map(|c| c.full_name()).collect();
    assert_eq!(
        names.len(),
        Command::FULL_NAMES.len(),
        "a sample of every command"
    );
    for c in &commands {
        let m = c.module();
        assert!(
            Module::COMMANDED.contains(&m),
            "{} is owned by {m}",
            c.full_name()
        );
        assert_eq!(c.full_name(), format!("porch.{m}.{}", c.type_name()));
    }
    let events = all_events();
    let names: std::collections::BTreeSet<_> = events.iter().map(|e| e.full_name()).collect();
    assert_eq!(
        names.len(),
        Event::FULL_NAMES.len(),
        "a sample of every event"
    );
    for e in &events {
        match e.module() {
            Some(m) => assert_eq!(e.full_name(), format!("porch.{m}.{}", e.type_name())),
            None => assert_eq!(e.full_name(), "porch.outcome.CommandRejected"),
        }
    }
}

#[test]
fn commands_round_trip_with_confluent_framing() {
    let c = codec();
    for command in all_commands() {
        let rec = command_record(command, Some(SellerId::parse("s1").unwrap()));
        let bytes = c.encode_command("product.commands", &rec).unwrap();
        assert_eq!(bytes[0], 0, "magic byte");
        let id = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
        assert!(c.registry().schema_by_id(id).unwrap().is_some());
        assert_eq!(
            c.decode_command(&bytes).unwrap(),
            rec,
            "{}",
            rec.command.full_name()
        );
    }
}

#[test]
fn events_round_trip_and_decode_to_json() {
    let c = codec();
    for event in all_events() {
        let rec = event_record(event);
        let bytes = c.encode_event("x.events", &rec).unwrap();
        assert_eq!(
            c.decode_event(&bytes).unwrap(),
            rec,
            "{}",
            rec.event.full_name()
        );
        let (name, json) = c.decode_json(&bytes).unwrap();
        assert_eq!(name, rec.event.full_name());
        assert_eq!(json["envelope"]["aggregate_version"], 3);
    }
}

/// Records are written straight from their structs and read straight into them; the bytes are
/// those an Avro `Value` checked against the schema gives, and read back through a `Value` they
/// are the same record, for every command and event, with and without a seller.
#[test]
fn records_written_and_read_straight_agree_with_checked_values() {
    let c = codec();
    for seller in [Some(SellerId::parse("s1").unwrap()), None] {
        for command in all_commands() {
            let rec = command_record(command, seller.clone());
            let name = rec.command.full_name();
            let direct = c
                .write_direct("product.commands", name, &rec.envelope, |s, n, out| {
                    rec.command.write_body(s, n, out)
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let checked = c.encode_command_as_value("product.commands", &rec).unwrap();
            assert_eq!(direct, checked, "{name}");
            assert!(
                c.read_direct::<CommandEnvelope, Command>(&direct, Command::read_body)
                    .is_some_and(|(e, b)| e == rec.envelope && b == rec.command),
                "{name} reads straight back"
            );
            assert_eq!(c.decode_command_as_value(&direct).unwrap(), rec, "{name}");
        }
    }
    for event in all_events() {
        let rec = event_record(event);
        let name = rec.event.full_name();
        let direct = c
            .write_direct("x.events", name, &rec.envelope, |s, n, out| {
                rec.event.write_body(s, n, out)
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let checked = c.encode_event_as_value("x.events", &rec).unwrap();
        assert_eq!(direct, checked, "{name}");
        assert!(
            c.read_direct::<EventEnvelope, Event>(&direct, Event::read_body)
                .is_some_and(|(e, b)| e == rec.envelope && b == rec.event),
            "{name} reads straight back"
        );
        assert_eq!(c.decode_event_as_value(&direct).unwrap(), rec, "{name}");
    }
}

#[test]
fn garbage_is_refused_not_panicked_on() {
    let c = codec();
    assert!(matches!(
        c.decode_event(b"hello"),
        Err(CodecError::NotFramed)
    ));
    assert!(matches!(
        c.decode_event(&[0, 0, 0, 0, 99, 1, 2]),
        Err(CodecError::UnknownSchemaId(99))
    ));
    let rec = all_events().remove(0);
    let good = c
        .encode_event(
            "t",
            &EventRecord {
                envelope: EventEnvelope {
                    event_id: "e".into(),
                    tenant: TenantId::parse("a").unwrap(),
                    aggregate_id: "p".into(),
                    aggregate_version: 1,
                    occurred_at: 0,
                    causation_id: "c".into(),
                    correlation_id: "c".into(),
                },
                event: rec,
            },
        )
        .unwrap();
    assert!(c.decode_event(&good[..good.len() - 3]).is_err());
}

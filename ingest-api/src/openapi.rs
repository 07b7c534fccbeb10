//! The OpenAPI document, generated from the handlers and their request and response types.

use crate::{
    commands, compliance, hot, images, inventory, offers, ops, product_view, products, search,
    topics, variants,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "porch ingest API", description = "Products, variants, offers, stock and compliance in; one aggregated view and search out. Errors are application/problem+json."),
    paths(
        products::create_product,
        products::list_products,
        product_view::get_product,
        products::patch_product,
        products::deactivate_product,
        products::reactivate_product,
        products::product_history,
        images::upload_image,
        images::get_image,
        images::public_image,
        variants::create_variants,
        variants::patch_variant,
        variants::discontinue_variant,
        offers::create_offer,
        offers::patch_offer,
        offers::withdraw_offer,
        inventory::register_location,
        inventory::set_stock,
        inventory::reserve_stock,
        inventory::release_reservation,
        inventory::commit_reservation,
        inventory::get_reservation,
        hot::flag,
        hot::shown,
        inventory::check_availability,
        compliance::decide,
        search::search,
        commands::get_command,
        topics::list_topics,
        topics::describe_topic,
        topics::read_records,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "products"), (name = "variants"), (name = "offers"), (name = "inventory"),
        (name = "compliance"), (name = "search"), (name = "commands"), (name = "media"),
        (name = "operations"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("API key")
                    .build(),
            ),
        );
    }
}

//! Product images: uploaded as raw bodies, kept in object storage (`media`) as
//! `<tenant>/<product>/<name>`, and named in the product by an AddProductImage command. Served
//! back to the tenant's keys, and publicly under `/media/…`, the URL channels fetch.

use crate::auth::{Caller, Writer};
use crate::commands::{submit, CommandAccepted, CommandMeta, NewCommand};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiPath, RawBody, IMAGE_BODY_LIMIT};
use crate::media::{content_type_for, MediaError};
use crate::products::{checked_product, path_product};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use porch_schemas::media::image_key;
use porch_schemas::{AddProductImage, ProductId, TenantId};

const MAX_NAME: usize = 100;
const MAX_URL: usize = 2_048;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/products/{id}/images/{name}",
            put(upload_image)
                .layer(DefaultBodyLimit::max(IMAGE_BODY_LIMIT))
                .get(get_image),
        )
        .route("/media/{tenant}/{product}/{name}", get(public_image))
}

/// An image name: 1 to 100 of `[A-Za-z0-9._-]`, not starting with a dot (no hidden files, no
/// `..`), so a name can never leave its product's folder.
pub fn is_image_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// What a product may list as an image: an uploaded name or an http(s) URL.
pub fn is_image_ref(image: &str) -> bool {
    if image.contains("://") {
        (image.starts_with("https://") || image.starts_with("http://"))
            && image.len() <= MAX_URL
            && !image.chars().any(|c| c.is_whitespace() || c.is_control())
    } else {
        is_image_name(image)
    }
}

fn is_image_upload(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("image/") || essence == "application/octet-stream"
}

/// Uploads an image (at most 5 MiB) and adds it to the product.
#[utoipa::path(
    put,
    path = "/v1/products/{id}/images/{name}",
    tag = "products",
    params(("id" = String, Path, description = "product id"), ("name" = String, Path, description = "image name, [A-Za-z0-9._-]{1,100}")),
    request_body(content = Vec<u8>, content_type = "image/*"),
    responses(
        (status = 202, body = CommandAccepted),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn upload_image(
    State(state): State<AppState>,
    writer: Writer,
    meta: CommandMeta,
    headers: HeaderMap,
    ApiPath((id, name)): ApiPath<(String, String)>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    if !is_image_name(&name) {
        return Err(ApiError::invalid(
            "name",
            "an image name is 1 to 100 of A-Z a-z 0-9 . _ - and does not start with '.'",
        ));
    }
    if !is_image_upload(&headers) {
        return Err(ApiError::unsupported_media_type(
            "image/* or application/octet-stream",
        ));
    }
    if body.is_empty() {
        return Err(ApiError::invalid("body", "the image is empty"));
    }
    let product_id = checked_product(&state, &writer, id).await?;
    // The object is whole in the store before the product names it.
    let key = image_key(writer.caller().tenant(), &product_id, &name);
    state
        .media
        .put(&key, body.clone())
        .await
        .map_err(|e| media_error(&key, e))?;
    let command = NewCommand::new(
        AddProductImage {
            product_id: product_id.clone(),
            name,
        },
        product_id.as_str(),
    );
    submit(&state, &writer, &meta, &body, command).await
}

/// An uploaded image.
#[utoipa::path(
    get,
    path = "/v1/products/{id}/images/{name}",
    tag = "products",
    params(("id" = String, Path, description = "product id"), ("name" = String, Path, description = "image name")),
    responses(
        (status = 200, body = Vec<u8>, content_type = "image/*"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_image(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, name)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let product_id = path_product(id)?;
    serve_image(
        &state,
        caller.tenant(),
        &product_id,
        &name,
        "private, max-age=300",
    )
    .await
}

/// An uploaded image, without a key: the absolute URL that product views and channel payloads
/// carry when the public base URL is the API's own. Behind the same back-pressure as the rest
/// of the API, as it reads the object store for every request.
#[utoipa::path(
    get,
    path = "/media/{tenant}/{product}/{name}",
    tag = "media",
    params(
        ("tenant" = String, Path, description = "tenant id"),
        ("product" = String, Path, description = "product id"),
        ("name" = String, Path, description = "image name"),
    ),
    responses(
        (status = 200, body = Vec<u8>, content_type = "image/*"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn public_image(
    State(state): State<AppState>,
    ApiPath((tenant, product, name)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let tenant = TenantId::parse_tenant(&tenant).map_err(|_| ApiError::not_found("image"))?;
    let product_id = path_product(product).map_err(|_| ApiError::not_found("image"))?;
    serve_image(&state, &tenant, &product_id, &name, "public, max-age=300").await
}

/// The image's bytes with its content type, or a 404 for a name that cannot be or is not there.
async fn serve_image(
    state: &AppState,
    tenant: &TenantId,
    product_id: &ProductId,
    name: &str,
    cache_control: &'static str,
) -> Result<Response, ApiError> {
    if !is_image_name(name) {
        return Err(ApiError::not_found("image"));
    }
    let key = image_key(tenant, product_id, name);
    let bytes = match state.media.get(&key).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(ApiError::not_found(format!("image '{name}'"))),
        Err(e) => return Err(media_error(&key, e)),
    };
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type_for(name)),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ),
    ];
    Ok((StatusCode::OK, headers, bytes).into_response())
}

/// A key that cannot name an object names none; the store not answering is worth a retry.
fn media_error(key: &str, e: MediaError) -> ApiError {
    match e {
        MediaError::Key(_) => ApiError::not_found("image"),
        e => ApiError::unavailable(&format!("object storage, {key}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_stay_in_their_folder() {
        assert!(is_image_name("front.jpg"));
        assert!(is_image_name("a-b_c.1.png"));
        assert!(!is_image_name(".."));
        assert!(!is_image_name(".hidden"));
        assert!(!is_image_name("a/b.png"));
        assert!(!is_image_name(""));
        assert!(!is_image_name(&"a".repeat(101)));
        assert!(is_image_ref("https://cdn.example.com/x.png"));
        assert!(!is_image_ref("ftp://cdn.example.com/x.png"));
        assert!(!is_image_ref("javascript://x"));
    }
}

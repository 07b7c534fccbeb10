//! Product images: uploaded as raw bodies, kept as local files under
//! `images_dir/<tenant>/<product>/<name>`, and named in the product by an AddProductImage command.

use crate::auth::{Caller, Writer};
use crate::commands::{submit, CommandAccepted, CommandMeta, NewCommand};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiPath, RawBody, IMAGE_BODY_LIMIT};
use crate::products::{checked_product, path_product};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use porch_schemas::{AddProductImage, ProductId, TenantId};
use std::path::{Path, PathBuf};

const MAX_NAME: usize = 100;
const MAX_URL: usize = 2_048;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/products/{id}/images/{name}",
        put(upload_image)
            .layer(DefaultBodyLimit::max(IMAGE_BODY_LIMIT))
            .get(get_image),
    )
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

/// The URL a client fetches an image at: uploaded names are served by the API, URLs are as given.
pub fn image_url(product: &ProductId, image: &str) -> String {
    if image.contains("://") {
        image.to_string()
    } else {
        format!("/v1/products/{product}/images/{image}")
    }
}

fn image_path(images_dir: &Path, tenant: &TenantId, product: &ProductId, name: &str) -> PathBuf {
    images_dir
        .join(tenant.as_str())
        .join(product.as_str())
        .join(name)
}

fn content_type_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        _ => "application/octet-stream",
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
    let path = image_path(
        &state.images_dir,
        writer.caller().tenant(),
        &product_id,
        &name,
    );
    write_atomically(&path, &body)
        .await
        .map_err(|e| ApiError::internal(&format!("writing {}: {e}", path.display())))?;
    let command = NewCommand::new(
        AddProductImage {
            product_id: product_id.clone(),
            name,
        },
        product_id.as_str(),
    );
    submit(&state, &writer, &meta, &body, command).await
}

/// Writes beside the target and renames, so a reader never sees half an image.
async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("image path has no folder"))?;
    tokio::fs::create_dir_all(dir).await?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("image");
    let temp = dir.join(format!(
        ".{file_name}.{}.tmp",
        uuid::Uuid::now_v7().simple()
    ));
    tokio::fs::write(&temp, bytes).await?;
    if let Err(e) = tokio::fs::rename(&temp, path).await {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(e);
    }
    Ok(())
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
    if !is_image_name(&name) {
        return Err(ApiError::not_found("image"));
    }
    let path = image_path(&state.images_dir, caller.tenant(), &product_id, &name);
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!("image '{name}'")))
        }
        Err(e) => {
            return Err(ApiError::internal(&format!(
                "reading {}: {e}",
                path.display()
            )))
        }
    };
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type_for(&name)),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=300"),
        ),
    ];
    Ok((StatusCode::OK, headers, bytes).into_response())
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

    #[test]
    fn urls_resolve() {
        let p = ProductId::parse("p1").unwrap();
        assert_eq!(image_url(&p, "a.png"), "/v1/products/p1/images/a.png");
        assert_eq!(image_url(&p, "https://x/y.png"), "https://x/y.png");
    }
}

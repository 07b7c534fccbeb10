//! Where a product image lives (DESIGN §8): the object key the catalogue keeps for an uploaded
//! image, and the absolute URL that views and channel payloads carry. Pure naming, no I/O, so the
//! API that stores images and the channel processor that links them always agree.

use crate::{ProductId, TenantId};

/// The object key of an uploaded image: `<tenant>/<product>/<name>`.
///
/// Tenant ids, product ids and image names are made of URL-safe characters only, so the key is
/// also the end of the image's URL, with no escaping.
pub fn image_key(tenant: &TenantId, product: &ProductId, name: &str) -> String {
    format!("{tenant}/{product}/{name}")
}

/// The absolute URL of a product image: an uploaded name becomes `<base>/<image_key>` (any
/// trailing `/` of the base dropped), and an image given as an http(s) URL stays as it is.
pub fn public_image_url(base: &str, tenant: &TenantId, product: &ProductId, image: &str) -> String {
    if is_http_url(image) {
        image.to_string()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            image_key(tenant, product, image)
        )
    }
}

/// Whether `s` starts with `http://` or `https://` (the scheme in any case).
pub fn is_http_url(s: &str) -> bool {
    let starts = |prefix: &str| {
        s.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    starts("http://") || starts("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TenantId, ProductId) {
        (
            TenantId::parse_tenant("acme").unwrap(),
            ProductId::parse("linen-shirt").unwrap(),
        )
    }

    #[test]
    fn media_keys_are_tenant_product_name() {
        let (t, p) = ids();
        assert_eq!(image_key(&t, &p, "front.jpg"), "acme/linen-shirt/front.jpg");
    }

    #[test]
    fn media_urls_of_uploaded_names_hang_under_the_base() {
        let (t, p) = ids();
        let want = "https://cdn.example.com/img/acme/linen-shirt/front.jpg";
        assert_eq!(
            public_image_url("https://cdn.example.com/img", &t, &p, "front.jpg"),
            want
        );
        assert_eq!(
            public_image_url("https://cdn.example.com/img/", &t, &p, "front.jpg"),
            want
        );
        assert_eq!(
            public_image_url("http://127.0.0.1:8080/media", &t, &p, "a.png"),
            "http://127.0.0.1:8080/media/acme/linen-shirt/a.png"
        );
    }

    #[test]
    fn media_urls_given_as_urls_stay_as_they_are() {
        let (t, p) = ids();
        for url in [
            "https://elsewhere.example.com/x/back.jpg",
            "http://elsewhere.example.com/back.jpg",
            "HTTPS://elsewhere.example.com/back.jpg",
        ] {
            assert_eq!(
                public_image_url("https://cdn.example.com", &t, &p, url),
                url
            );
        }
        assert!(!is_http_url("ftp://x/y.png"));
        assert!(!is_http_url("http:/x"));
        assert!(!is_http_url("front.jpg"));
    }
}

//! Product images end to end: an uploaded image, the absolute URL its product view gives, and
//! the bytes fetched from that URL without a key are one and the same, on `porch up` (a local
//! directory, served by the API's public `/media` route) and on the distributed roles with an
//! S3-compatible server (moto's `moto_server`, from PyPI, in the venv of tests/common/python.rs),
//! where the URL is the bucket's own.
//!
//! The S3 test runs on the distributed backend (Kafka and Cassandra from `scripts/engines up`)
//! whatever PORCH_TEST_BACKEND says, and starts and stops its own moto on a free port. The
//! embedded test follows PORCH_TEST_BACKEND like the other suites (distributed, the API keeps
//! images in its local directory).

mod common;

use common::python::{python_venv, venv_program};
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "porch-images";
/// Not a real JPEG: porch stores bytes as they come and serves them with the type of the name.
const IMAGE: &[u8] = b"\xff\xd8\xff\xe0 porch test image \x00\x01\x02";

/// moto's S3-compatible server on a port of its own, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Moto {
    async fn start(python: &Path) -> Moto {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("porch-moto-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("moto.log")).unwrap();
        let child = Command::new(venv_program(python, "moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto { child, port, dir };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(moto.url("/")).send().await {
                if r.status().is_success() {
                    return moto;
                }
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited ({status}):\n{}", moto.log());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within 60 s:\n{}",
                moto.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("moto.log")).unwrap_or_default()
    }

    /// A bucket anyone may read objects from, as a bucket whose URL is the public base is set up:
    /// plain S3 calls (moto takes them unsigned).
    async fn public_bucket(&self, bucket: &str) {
        let http = reqwest::Client::new();
        let r = http
            .put(self.url(&format!("/{bucket}")))
            .send()
            .await
            .expect("create the bucket");
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}/*")],
            }],
        });
        let r = http
            .put(self.url(&format!("/{bucket}?policy")))
            .header("content-type", "application/json")
            .body(policy.to_string())
            .send()
            .await
            .expect("set the bucket policy");
        assert!(r.status().is_success(), "bucket policy: {}", r.status());
    }

    /// An IAM user allowed every S3 action, and its access key id and secret.
    async fn s3_user(&self) -> (String, String) {
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Action": "s3:*", "Resource": "*" }],
        })
        .to_string();
        self.iam(&[("Action", "CreateUser"), ("UserName", "porch")])
            .await;
        let key = self
            .iam(&[("Action", "CreateAccessKey"), ("UserName", "porch")])
            .await;
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", "porch"),
            ("PolicyName", "images"),
            ("PolicyDocument", &policy),
        ])
        .await;
        let between = |open: &str, close: &str| {
            let start = key.find(open).map(|i| i + open.len());
            let end = key.find(close);
            match (start, end) {
                (Some(s), Some(e)) if s < e => key[s..e].to_string(),
                _ => panic!("no {open} in {key}"),
            }
        };
        (
            between("<AccessKeyId>", "</AccessKeyId>"),
            between("<SecretAccessKey>", "</SecretAccessKey>"),
        )
    }

    /// An IAM query call, made while moto checks no signatures (the scope names the service).
    async fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2010-05-08");
        for (k, v) in params {
            body.push_str(&format!("&{k}={}", form_encode(v)));
        }
        let r = reqwest::Client::new()
            .post(self.url("/"))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=setup/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=setup",
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("IAM call");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "IAM {params:?}: {status} {text}");
        text
    }

    /// From now on every S3 call must carry a valid SigV4 signature of a known key, or not
    /// (moto's `reset-auth`).
    async fn check_signatures(&self, on: bool) {
        let r = reqwest::Client::new()
            .post(self.url("/moto-api/reset-auth"))
            .header("content-type", "text/plain")
            .body(if on { "0" } else { "inf" })
            .send()
            .await
            .expect("moto reset-auth");
        assert!(r.status().is_success(), "reset-auth: {}", r.status());
    }
}

fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Creates product `id` (with one image given as a URL), uploads `front.jpg` to it and waits
/// until the upload is applied; returns the product view's images.
async fn product_with_an_uploaded_image(p: &Porch, key: &str, id: &str) -> Vec<Value> {
    let mut body = product_body(id, "Linen shirt", "apparel", true);
    body["images"] = json!(["https://cdn.example.com/back.jpg"]);
    p.applied(reqwest::Method::POST, key, "/v1/products", body)
        .await;
    let r = p
        .http
        .put(p.url(&format!("/v1/products/{id}/images/front.jpg")))
        .bearer_auth(key)
        .header("content-type", "image/jpeg")
        .body(IMAGE.to_vec())
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    let accepted: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 202, "upload: {accepted}");
    let command = accepted["command_id"].as_str().expect("command id");
    let outcome = p
        .eventually("the upload's outcome", 60, || async {
            let (s, v) = p
                .get(key, &format!("/v1/commands/{command}?wait=10000"))
                .await;
            (s == 200 && v["status"] != "ACCEPTED").then_some(v)
        })
        .await;
    assert_eq!(outcome["status"], "APPLIED", "{outcome}");
    p.eventually("the uploaded image in the view", 30, || async {
        let (s, view) = p.get(key, &format!("/v1/products/{id}")).await;
        let images = view["images"].as_array()?.clone();
        (s == 200 && images.len() == 2).then_some(images)
    })
    .await
}

/// The URL the view gives the uploaded image, checked against `want`, and the one given as a
/// URL left as it was.
fn uploaded_url(images: &[Value], want: &str) -> String {
    assert_eq!(images[0]["name"], "https://cdn.example.com/back.jpg");
    assert_eq!(images[0]["url"], "https://cdn.example.com/back.jpg");
    assert_eq!(images[1]["name"], "front.jpg");
    assert_eq!(images[1]["url"], want, "{images:?}");
    want.to_string()
}

/// GET without a key: status, content type and bytes.
async fn fetch(url: &str) -> (u16, String, Vec<u8>) {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, r.bytes().await.unwrap().to_vec())
}

/// The API's public route answers the uploaded bytes, and 404 problems for anything else.
async fn media_route_serves_the_image(p: &Porch, tenant: &str, id: &str) {
    let (status, content_type, bytes) =
        fetch(&p.url(&format!("/media/{tenant}/{id}/front.jpg"))).await;
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(bytes, IMAGE);
    for missing in [
        format!("/media/{tenant}/{id}/back.jpg"),
        format!("/media/beta/{id}/front.jpg"),
        format!("/media/{tenant}/{id}/.."),
        format!("/media/{tenant}/../front.jpg"),
        format!("/media/{tenant}/{id}/%2E%2E%2Ffront.jpg"),
    ] {
        let (status, content_type, _) = fetch(&p.url(&missing)).await;
        assert_eq!(
            (status, content_type.as_str()),
            (404, "application/problem+json"),
            "{missing}"
        );
    }
}

/// The product listed on Meta (a GB offer with stock, the tenant connected to the fake's catalog):
/// the absolute image links of the request the channel processor sends, from `channel.events`.
async fn channel_payload_image_links(p: &Porch, key: &str, id: &str) -> Vec<String> {
    let (s, body) = p
        .req(
            reqwest::Method::PUT,
            key,
            "/v1/channels/meta/regions/GB",
            Some(json!({ "account": "catalog-gb", "access_token": "any",
                         "link_template": "https://shop.example/{product}" })),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let sku = format!("{id}-1");
    p.applied(
        reqwest::Method::POST,
        key,
        &format!("/v1/products/{id}/variants"),
        json!({ "variants": [{ "sku": sku, "options": {} }] }),
    )
    .await;
    let (s, b) = p
        .post(
            key,
            "/v1/locations",
            json!({ "location_id": "lon-1", "region": "GB" }),
        )
        .await;
    assert!(s == 200 || s == 201, "{b}");
    p.applied(
        reqwest::Method::POST,
        key,
        "/v1/offers",
        json!({ "sku": sku, "region": "GB", "price": { "amount_minor": 1500, "currency": "GBP" }, "channels": ["meta"] }),
    )
    .await;
    p.applied(
        reqwest::Method::PUT,
        key,
        &format!("/v1/inventory/{sku}/lon-1"),
        json!({ "on_hand": 2 }),
    )
    .await;
    p.eventually("the Meta request with its image links", 60, || async {
        p.topic("channel.events").await.into_iter().find_map(|r| {
            let v = &r["value"];
            let item = &v["item"];
            (r["record_type"] == "porch.channel.ListingRequested" && v["product_id"] == id).then(
                || {
                    std::iter::once(&item["image_link"])
                        .chain(
                            item["additional_image_links"]
                                .as_array()
                                .into_iter()
                                .flatten(),
                        )
                        .filter_map(|l| l.as_str().map(String::from))
                        .collect()
                },
            )
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_image_is_the_same_bytes_at_its_view_url_in_an_s3_bucket() {
    // Before porch starts: a venv that cannot be built fails the test here, quickly.
    let python = tokio::task::spawn_blocking(python_venv)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let moto = Moto::start(&python).await;
    moto.public_bucket(BUCKET).await;
    let (key_id, secret) = moto.s3_user().await;
    // porch's calls are signed (SigV4, by object_store with porch's crypto provider): moto
    // checks each signature against the user's key while porch writes and reads.
    moto.check_signatures(true).await;
    let forged = reqwest::Client::new()
        .put(moto.url(&format!("/{BUCKET}/forged.jpg")))
        .header("x-amz-date", "20260101T000000Z")
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={key_id}/20260101/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}",
                "0".repeat(64)
            ),
        )
        .body("x")
        .send()
        .await
        .unwrap();
    let status = forged.status().as_u16();
    let text = forged.text().await.unwrap_or_default();
    assert!(
        status == 403 && text.contains("SignatureDoesNotMatch"),
        "moto must check signatures: {status} {text}"
    );
    let public = moto.url(&format!("/{BUCKET}"));
    let fake = porch_fake_meta::FakeMeta::start("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .expect("start the fake Meta");
    let role_env = [
        ("PORCH_S3_BUCKET", BUCKET.to_string()),
        ("PORCH_S3_ENDPOINT", moto.url("")),
        ("PORCH_S3_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
        ("PORCH_MEDIA_PUBLIC_URL", public.clone()),
        ("PORCH_META_GRAPH_URL", fake.graph_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let p = Porch::start_distributed_with(role_env).await;
    let key = admin_key("acme");
    let id = format!("img-{}", uuid::Uuid::now_v7().simple());

    let images = product_with_an_uploaded_image(&p, &key, &id).await;
    let url = uploaded_url(&images, &format!("{public}/acme/{id}/front.jpg"));
    // The API reads the object back from the bucket, publicly and with a key.
    media_route_serves_the_image(&p, "acme", &id).await;
    let r = p
        .http
        .get(p.url(&format!("/v1/products/{id}/images/front.jpg")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), IMAGE);
    // Nothing went to the local images directory.
    assert!(!p.dir.join("images").join("acme").exists());

    // Straight from the bucket, without a key (moto checks no signatures again, and lets anyone
    // read by the bucket's policy): the object porch wrote, with its type.
    moto.check_signatures(false).await;
    let (status, content_type, bytes) = fetch(&url).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "image/jpeg"),
        "{url}"
    );
    assert_eq!(bytes, IMAGE);
    // The channel payload links the same object.
    let links = channel_payload_image_links(&p, &key, &id).await;
    assert!(links.contains(&url), "{links:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_image_is_the_same_bytes_at_its_view_url_from_the_api() {
    let fake = porch_fake_meta::FakeMeta::start("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .expect("start the fake Meta");
    let p = Porch::start_with_config(&format!(
        "[connectors.meta]\ngraph_url = \"{}\"\n",
        fake.graph_url()
    ))
    .await;
    let key = admin_key("acme");
    let id = format!("img-{}", uuid::Uuid::now_v7().simple());

    let images = product_with_an_uploaded_image(&p, &key, &id).await;
    // No public base URL configured: the API's own /media route, at the address it listens on.
    let url = uploaded_url(&images, &p.url(&format!("/media/acme/{id}/front.jpg")));
    let (status, content_type, bytes) = fetch(&url).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "image/jpeg"),
        "{url}"
    );
    assert_eq!(bytes, IMAGE);
    media_route_serves_the_image(&p, "acme", &id).await;
    // The channel payload links the same bytes.
    let links = channel_payload_image_links(&p, &key, &id).await;
    assert!(links.contains(&url), "{links:?}");
    assert_eq!(fetch(&url).await.2, IMAGE);
}

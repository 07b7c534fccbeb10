//! `porch connector status|pause|resume|restart|redrive`: operating connectors through the
//! ingest API's operator routes, the same whether they run inside `porch up` or on their own.

use anyhow::Context;

#[derive(clap::Args, Clone, Debug)]
pub struct ApiArgs {
    /// The ingest API.
    #[arg(
        long = "api",
        env = "PORCH_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// The operator's key.
    #[arg(long = "key", env = "PORCH_OPERATOR_KEY")]
    pub key: String,
}

fn call(api: &ApiArgs, method: reqwest::Method, path: &str) -> anyhow::Result<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let url = format!("{}{path}", api.url.trim_end_matches('/'));
        let resp = reqwest::Client::new()
            .request(method, &url)
            .bearer_auth(&api.key)
            .send()
            .await
            .with_context(|| format!("calling {url}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!(
                "{url} answered {status}: {}",
                body["detail"].as_str().unwrap_or_default()
            );
        }
        Ok(body)
    })
}

pub fn status(api: &ApiArgs, name: Option<&str>) -> anyhow::Result<()> {
    let body = match name {
        Some(n) => call(api, reqwest::Method::GET, &format!("/v1/connectors/{n}"))?,
        None => call(api, reqwest::Method::GET, "/v1/connectors")?,
    };
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

pub fn act(api: &ApiArgs, name: &str, action: &str) -> anyhow::Result<()> {
    let body = call(
        api,
        reqwest::Method::POST,
        &format!("/v1/connectors/{name}/{action}"),
    )?;
    println!(
        "{name}: {action} asked; now {}",
        body["state"].as_str().unwrap_or("?")
    );
    Ok(())
}

//! OAuth as Mercado Libre does it: a code for the first pair, a new refresh token on every
//! refresh, a spent one refused with `invalid_grant`, and 401 for a missing, unknown or expired
//! access token.

use crate::{
    client, create_ok, get, refresh, seed, seller, send, shirt, start, token, url, CLIENT_ID,
    CLIENT_SECRET, SELLER,
};
use porch_fake_mercadolibre::{CallKind, FakeConfig, Site};
use serde_json::{json, Value};
use std::time::Duration;

fn invalid_grant() -> Value {
    json!({
        "error_description": "Error validating grant. Your authorization code or refresh token \
                              may be expired or it was already used",
        "error": "invalid_grant",
        "status": 400,
        "cause": [],
    })
}

#[tokio::test]
async fn the_connect_flow_exchanges_a_code_once_for_the_first_pair() {
    let fake = start(FakeConfig::default()).await;
    let code = fake
        .add_account(seed(SELLER, Site::Mlb, false))
        .expect("seeded")
        .code;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("code", code.as_str()),
        ("redirect_uri", "https%3A%2F%2Fporch.example%2Fcallback"),
    ];
    let (status, pair) = token(&fake, &exchange).await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(pair["token_type"], "bearer");
    assert_eq!(pair["expires_in"], 21_600);
    assert_eq!(pair["scope"], "offline_access read write");
    assert_eq!(pair["user_id"], SELLER);
    let access = pair["access_token"].as_str().expect("an access token");
    assert!(
        access.starts_with(&format!("APP_USR-{CLIENT_ID}-")),
        "{access}"
    );
    assert!(pair["refresh_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("TG-")));
    let (status, _) = get(&fake, access, &format!("/users/{SELLER}/items/search")).await;
    assert_eq!(status, 200);

    let (status, again) = token(&fake, &exchange).await;
    assert_eq!(status, 400);
    assert_eq!(again, invalid_grant());
    assert_eq!(fake.accounts()[0].codes_exchanged, 1);
}

#[tokio::test]
async fn a_refresh_rotates_the_pair_and_the_spent_refresh_token_is_refused() {
    let fake = start(FakeConfig::default()).await;
    let first = seller(&fake, SELLER, Site::Mlb);

    let (status, second) = refresh(&fake, &first.refresh_token).await;
    assert_eq!(status, 200, "{second}");
    let second_refresh = second["refresh_token"].as_str().expect("a refresh token");
    let second_access = second["access_token"].as_str().expect("an access token");
    assert_ne!(second_refresh, first.refresh_token, "refresh tokens rotate");
    assert_ne!(second_access, first.access_token);

    let (status, refused) = refresh(&fake, &first.refresh_token).await;
    assert_eq!(status, 400, "a refresh token is single use");
    assert_eq!(refused, invalid_grant());

    let (status, third) = refresh(&fake, second_refresh).await;
    assert_eq!(status, 200, "the new one works: {third}");
    let (status, _) = get(
        &fake,
        second_access,
        &format!("/users/{SELLER}/items/search"),
    )
    .await;
    assert_eq!(status, 200);

    let account = &fake.accounts()[0];
    assert_eq!((account.refreshes, account.refused_refreshes), (2, 1));
    let refreshes: Vec<(Option<u64>, Option<u16>)> = fake
        .calls()
        .iter()
        .filter(|call| {
            call.kind == CallKind::Token && call.grant_type.as_deref() == Some("refresh_token")
        })
        .map(|call| (call.user_id, call.status))
        .collect();
    assert_eq!(
        refreshes,
        vec![
            (Some(SELLER), Some(200)),
            (Some(SELLER), Some(400)),
            (Some(SELLER), Some(200)),
        ]
    );
}

#[tokio::test]
async fn a_missing_unknown_or_expired_access_token_is_401() {
    let fake = start(FakeConfig::default()).await;
    let pair = seller(&fake, SELLER, Site::Mlb);
    let id = create_ok(&fake, &pair.access_token, &shirt("SKU-1")).await;
    let path = format!("/items/{id}");

    let (status, missing) = send(client().get(url(&fake, &path))).await;
    assert_eq!(status, 401);
    assert_eq!(
        missing,
        json!({
            "message": "authorization value not present",
            "error": "unauthorized",
            "status": 401,
            "cause": [],
        })
    );
    let (status, unknown) = get(&fake, "APP_USR-0-000000-nope-1", &path).await;
    assert_eq!(status, 401);
    assert_eq!(
        unknown,
        json!({"message": "invalid access token", "error": "not_found", "status": 401, "cause": []})
    );

    let expire = client().post(url(&fake, &format!("/_fake/accounts/{SELLER}/expire")));
    let (status, _) = send(expire).await;
    assert_eq!(status, 204);
    let (status, expired) = get(&fake, &pair.access_token, &path).await;
    assert_eq!(status, 401);
    assert_eq!(expired["message"], "expired_token");
    assert_eq!(expired["error"], "not_found");

    let (status, renewed) = refresh(&fake, &pair.refresh_token).await;
    assert_eq!(status, 200, "an expired access token is refreshed as usual");
    let fresh = renewed["access_token"].as_str().expect("an access token");
    let (status, _) = get(&fake, fresh, &path).await;
    assert_eq!(status, 200);
    let refused: Vec<Option<u16>> = fake
        .calls()
        .iter()
        .filter(|call| call.kind == CallKind::GetItem)
        .map(|call| call.status)
        .collect();
    assert_eq!(refused, vec![Some(401), Some(401), Some(401), Some(200)]);
}

#[tokio::test]
async fn an_access_token_expires_after_its_lifetime() {
    let fake = start(FakeConfig {
        access_token_ttl_secs: 1,
        ..FakeConfig::default()
    })
    .await;
    let pair = seller(&fake, SELLER, Site::Mlb);
    assert_eq!(pair.expires_in, 1);
    let path = format!("/users/{SELLER}/items/search");
    let (status, _) = get(&fake, &pair.access_token, &path).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, expired) = get(&fake, &pair.access_token, &path).await;
    assert_eq!(status, 401);
    assert_eq!(expired["message"], "expired_token");
}

#[tokio::test]
async fn a_revoked_grant_refuses_the_next_refresh() {
    let fake = start(FakeConfig::default()).await;
    let pair = seller(&fake, SELLER, Site::Mlb);
    let revoke = client().post(url(&fake, &format!("/_fake/accounts/{SELLER}/revoke")));
    let (status, _) = send(revoke).await;
    assert_eq!(status, 204);
    let (status, refused) = refresh(&fake, &pair.refresh_token).await;
    assert_eq!(status, 400);
    assert_eq!(refused, invalid_grant());
    assert!(fake.accounts()[0].revoked);

    let code = fake
        .add_account(seed(SELLER, Site::Mlb, false))
        .expect("re-authorized")
        .code;
    let (status, pair) = token(
        &fake,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 200, "connecting again works: {pair}");
    assert!(!fake.accounts()[0].revoked);
}

#[tokio::test]
async fn the_token_endpoint_refuses_bad_clients_and_requests() {
    let fake = start(FakeConfig::default()).await;
    let pair = seller(&fake, SELLER, Site::Mlb);
    let cases: [(Vec<(&str, &str)>, &str); 4] = [
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", "wrong"),
                ("refresh_token", &pair.refresh_token),
            ],
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("refresh_token", "TG-unknown-1"),
            ],
            "invalid_grant",
        ),
    ];
    for (form, error) in cases {
        let (status, refused) = token(&fake, &form).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(refused["error"], error);
        assert_eq!(refused["status"], 400);
        assert!(refused["error_description"].is_string());
    }
    let (status, _) = refresh(&fake, &pair.refresh_token).await;
    assert_eq!(status, 200, "refusals spent nothing");
}

//! The Mercado Libre token refresh across processes on the distributed store: two services (two
//! processes) sharing one ScyllaDB/Cassandra keyspace at `PORCH_CQL` refresh a seller once,
//! through the store's lightweight transactions. No engine is a failure, not a skip. Each run
//! works in a fresh keyspace and drops it at the end.

use futures::FutureExt;
use porch_connectors::accounts::{
    Accounts, ChannelAccount, ChannelAccounts, MercadoLibreCredentials, Secret, ACCOUNTS_TABLE,
};
use porch_connectors::mercadolibre::{auth_state, MercadoLibreConfig, MercadoLibreService};
use porch_connectors::sink::kafka::StoreRows;
use porch_connectors::sink::{
    ChannelService, ConnectorStatus, Gate, ItemResult, OnChannel, Retrier, RetryPolicy, RowStore,
    SinkRequest,
};
use porch_cql::{drop_keyspace, migrate, CqlConfig, CqlStore};
use porch_fake_mercadolibre::{AccountSeed, FakeConfig, FakeMercadoLibre, Site};
use porch_processors::domain::channel::Action;
use porch_processors::store::{ProjectionStore, RowWrite};
use porch_schemas::{
    Channel, ChannelConnection, ChannelItem, Currency, ListingRequested, Money, OfferId, ProductId,
    RegionCode, SellerId, Sku, TenantId,
};
use porch_topics::LogRecord;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

const USER: u64 = 8001;

fn request(n: usize) -> SinkRequest {
    let offer = format!("offer-{n}");
    let item = ChannelItem {
        title: "Camisa de linho azul".into(),
        description: String::new(),
        brand: None,
        gtin: None,
        mpn: None,
        category: None,
        condition: "new".into(),
        availability: "in stock".into(),
        quantity: 1,
        price: Money::new(12_990, Currency::parse("BRL").unwrap()).unwrap(),
        compare_at: None,
        link: String::new(),
        image_link: "https://media.example/linen.jpg".into(),
        additional_image_links: vec![],
        item_group_id: "p1".into(),
        options: Default::default(),
        extra: [("category_id".to_string(), "MLB31447".to_string())]
            .into_iter()
            .collect(),
    };
    SinkRequest {
        tenant: TenantId::parse("acme").unwrap(),
        event_id: format!("e-{n}"),
        correlation_id: "c".into(),
        request: ListingRequested {
            channel: Channel::MercadoLibre,
            account: USER.to_string(),
            offer_id: OfferId::parse(offer.clone()).unwrap(),
            product_id: ProductId::parse("p1").unwrap(),
            sku: Sku::parse(format!("SKU-{n}")).unwrap(),
            seller: SellerId::parse("s1").unwrap(),
            region: RegionCode::parse("BR").unwrap(),
            retailer_id: offer,
            version: 1,
            action: Action::Upsert.as_str().into(),
            item: Some(Box::new(item)),
        },
        action: Action::Upsert,
        on_channel: OnChannel::Absent,
        raw: LogRecord {
            topic: "channel.events".into(),
            partition: 0,
            offset: n as u64,
            timestamp: 0,
            key: vec![],
            value: vec![],
            headers: vec![],
        },
    }
}

async fn two_processes_refresh_once(rows: Arc<dyn RowStore>) {
    let fake = FakeMercadoLibre::start(
        "127.0.0.1:0".parse().unwrap(),
        FakeConfig {
            latency_ms: 30,
            ..FakeConfig::default()
        },
    )
    .await
    .unwrap();
    let pair = fake
        .add_account(AccountSeed {
            user_id: USER,
            client_id: "porch-app".into(),
            client_secret: "app-secret-value".into(),
            site: Site::Mlb,
            tokens: true,
        })
        .unwrap()
        .tokens
        .unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    // The grant's access token is about to expire: every process wants a refresh.
    let accounts = ChannelAccounts {
        version: 1,
        accounts: vec![ChannelAccount {
            connection: ChannelConnection {
                channel: Channel::MercadoLibre,
                region: RegionCode::parse("BR").unwrap(),
                account: USER.to_string(),
                enabled: true,
                link_template: None,
            },
            access_token: None,
            mercadolibre: Some(MercadoLibreCredentials {
                client_id: "porch-app".into(),
                client_secret: Secret::new("app-secret-value"),
                user_id: USER.to_string(),
                refresh_token: Secret::new(&pair.refresh_token),
                access_token: Some(Secret::new(&pair.access_token)),
                access_expires_at_ms: Some(porch_schemas::now_micros() / 1_000 + 1_000),
            }),
        }],
    };
    rows.put(vec![RowWrite {
        table: ACCOUNTS_TABLE.into(),
        key: tenant.to_string(),
        value: Some(serde_json::to_vec(&accounts).unwrap()),
    }])
    .await
    .unwrap();
    let api = fake.api_url();
    let config = MercadoLibreConfig {
        token_url: format!("{api}/oauth/token"),
        api_url: api,
        timeout_ms: 3_000,
        token_lease_ms: 10_000,
        ..MercadoLibreConfig::default()
    };
    let service = || {
        Arc::new(
            MercadoLibreService::new(
                config.clone(),
                Arc::new(Accounts::new(rows.clone())),
                rows.clone(),
            )
            .unwrap(),
        )
    };
    let processes = [service(), service()];
    let retrier = Arc::new(Retrier::new(
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        },
        Gate::default(),
        Arc::new(ConnectorStatus::new("mercadolibre")),
    ));
    let tasks: Vec<_> = (0..6)
        .map(|n| {
            let (service, retrier) = (processes[n % 2].clone(), retrier.clone());
            tokio::spawn(async move {
                let r = request(n);
                service.submit(std::slice::from_ref(&r), &retrier).await
            })
        })
        .collect();
    for t in tasks {
        let results = t.await.unwrap();
        assert!(
            matches!(
                results.as_slice(),
                [ItemResult::Live {
                    channel_item_id: Some(_)
                }]
            ),
            "{results:?}"
        );
    }
    let seller = fake
        .accounts()
        .into_iter()
        .find(|a| a.user_id == USER)
        .unwrap();
    assert_eq!(
        (seller.refreshes, seller.refused_refreshes),
        (1, 0),
        "one refresh over both processes, no spent token used again"
    );
    let state = auth_state(rows.as_ref(), &tenant, &USER.to_string())
        .await
        .unwrap()
        .expect("the seller's tokens");
    assert_eq!((state.refreshes, state.refreshing), (1, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_cassandra_refresh_a_seller_once() {
    let nanos = porch_schemas::now_micros() as u64;
    let config = CqlConfig {
        keyspace: format!(
            "porch_test_{:016x}",
            nanos ^ (u64::from(std::process::id()) << 40)
        ),
        ..CqlConfig::from_env().expect("CQL settings")
    };
    migrate(&config).await.expect("migrating the test keyspace");
    let outcome = AssertUnwindSafe(async {
        let store = CqlStore::connect(&config).await.expect("connect");
        let rows: Arc<dyn RowStore> =
            Arc::new(StoreRows(Arc::new(store) as Arc<dyn ProjectionStore>));
        two_processes_refresh_once(rows).await;
    })
    .catch_unwind()
    .await;
    let dropped = drop_keyspace(&config).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    dropped.expect("dropping the test keyspace");
}

//! Encryption with KMS keys, against a real KMS-compatible server (moto, see `shoal_tests::moto`):
//! the KMS key provider (node key and table keys wrapped by KMS), per-table KMS keys chosen by
//! `SSESpecification` (CreateTable, UpdateTable), `SSEDescription` in table descriptions, and what
//! happens when the KMS key is disabled.

use std::path::Path;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    BillingMode, KeyType, ScalarAttributeType, SseSpecification, SseType, TableDescription,
};
use shoal_crypto::{
    CryptoError, DataKey, KeyProvider, KmsKeyProvider, WrapAlgorithm, table_context,
};
use shoal_node::{KeyProviderKind, NodeConfig, RunningNode};
use shoal_tests::moto::MotoServer;
use shoal_tests::*;

/// A test node's configuration with key provider `kind` and KMS settings `kms`.
fn config(dir: &Path, kind: KeyProviderKind, kms: Option<shoal_crypto::KmsConfig>) -> NodeConfig {
    NodeConfig {
        key_provider: kind,
        kms,
        ..node_config(dir)
    }
}

async fn start(config: NodeConfig) -> (RunningNode, Client) {
    let node = shoal_node::Node::start(config)
        .await
        .unwrap_or_else(|e| panic!("node start: {e}"));
    let client = client_for(
        &format!("http://{}", node.local_addr()),
        ADMIN_KEY_ID,
        ADMIN_SECRET,
    );
    (node, client)
}

fn sse(key: Option<&str>) -> SseSpecification {
    let mut b = SseSpecification::builder()
        .enabled(true)
        .sse_type(SseType::Kms);
    if let Some(k) = key {
        b = b.kms_master_key_id(k);
    }
    b.build()
}

/// Creates `name` with `spec`, then checks that DescribeTable names `want` as its KMS key ARN
/// (`None`: no SSEDescription).
async fn must_create_with_key(
    client: &Client,
    name: &str,
    spec: SseSpecification,
    want: Option<&str>,
) {
    if let Err(e) = create_with_sse(client, name, spec).await {
        panic!("CreateTable {name}: {}", describe_error(&e));
    }
    assert_eq!(sse_arn(client, name).await.as_deref(), want, "{name}");
}

async fn create_with_sse(
    client: &Client,
    name: &str,
    spec: SseSpecification,
) -> Result<
    TableDescription,
    aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::create_table::CreateTableError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
> {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(attr_def("pk", ScalarAttributeType::S))
        .key_schema(key_elem("pk", KeyType::Hash))
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(spec)
        .send()
        .await
        .map(|out| out.table_description.expect("TableDescription"))
}

async fn sse_arn(client: &Client, table: &str) -> Option<String> {
    let table = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    table.sse_description.map(|d| {
        assert_eq!(d.status.as_ref().map(|s| s.as_str()), Some("ENABLED"));
        assert_eq!(d.sse_type.as_ref().map(|s| s.as_str()), Some("KMS"));
        d.kms_master_key_arn.expect("KMSMasterKeyArn")
    })
}

async fn put_and_check(client: &Client, table: &str, value: &str) {
    must_put(client, table, item([("pk", s("k")), ("v", s(value))])).await;
    check(client, table, value).await;
}

async fn check(client: &Client, table: &str, value: &str) {
    let got = must_get(client, table, item([("pk", s("k"))])).await;
    assert_item_eq(got.as_ref(), &item([("pk", s("k")), ("v", s(value))]));
}

/// The wrapped data key in the table's catalog record (read with the node's own key ring).
fn stored_data_key(dir: &Path, kms: Option<&MotoServer>, table: &str) -> shoal_crypto::WrappedKey {
    let provider: std::sync::Arc<dyn KeyProvider> =
        std::sync::Arc::new(shoal_crypto::FileKeyProvider::open(dir.join("keys")).unwrap());
    let kms = kms.map(|m| std::sync::Arc::new(m.client()));
    let ring = shoal_crypto::KeyRing::open_in_with_kms(provider, kms, &dir.join("data")).unwrap();
    let catalog = shoal_node::catalog::Catalog::open(
        &dir.join("data").join("catalog.db"),
        ring.node_key().as_bytes(),
    )
    .unwrap();
    let record = catalog
        .load()
        .unwrap()
        .into_iter()
        .find(|r| r.meta.name == table)
        .expect("catalog record");
    record.keys.data_key
}

#[test]
fn kms_provider_wraps_and_unwraps_through_kms() {
    let moto = MotoServer::start();
    let (key_id, arn) = moto.create_key();
    let alias = moto.create_alias("shoal-provider", &key_id);
    let client = std::sync::Arc::new(moto.client());

    // Any way of naming the key resolves to its ARN.
    for name in [key_id.as_str(), arn.as_str(), alias.as_str()] {
        let provider = KmsKeyProvider::new(client.clone(), name).unwrap();
        assert_eq!(provider.current_key_id().as_str(), arn, "named {name}");
    }
    let provider = KmsKeyProvider::new(client.clone(), &alias).unwrap();
    let key = DataKey::generate().unwrap();
    let ctx = table_context("table-a");
    let wrapped = provider.wrap(&key, &ctx).unwrap();
    assert_eq!(wrapped.algorithm, WrapAlgorithm::KmsEncrypt);
    assert_eq!(wrapped.key_id_of_wrapping_key.as_str(), arn);
    assert!(
        !wrapped
            .ciphertext
            .windows(key.as_bytes().len())
            .any(|w| w == key.as_bytes()),
        "the KMS ciphertext contains the plaintext key"
    );
    assert_eq!(provider.unwrap(&wrapped, &ctx).unwrap(), key);
    // The JSON form round-trips and names the algorithm.
    let json = wrapped.to_json().unwrap();
    assert!(json.contains(r#""algorithm":"KMS""#), "{json}");
    assert_eq!(
        provider
            .unwrap(&shoal_crypto::WrappedKey::from_json(&json).unwrap(), &ctx)
            .unwrap(),
        key
    );

    // Another context (another table) does not decrypt.
    let err = provider
        .unwrap(&wrapped, &table_context("table-b"))
        .unwrap_err();
    assert_eq!(
        err.kms_error_type(),
        Some("InvalidCiphertextException"),
        "{err}"
    );
    // Neither does a tampered ciphertext.
    let mut tampered = wrapped.clone();
    let last = tampered.ciphertext.len() - 1;
    tampered.ciphertext[last] ^= 1;
    assert!(provider.unwrap(&tampered, &ctx).is_err());

    // GenerateDataKey gives a key that Decrypt gives back.
    let (generated, gw) = client.generate_data_key(&arn, &ctx).unwrap();
    assert_eq!(client.decrypt_key(&gw, &ctx).unwrap(), generated);

    // Rotation keeps the KMS key (KMS rotates its material); retiring it is refused.
    assert_eq!(provider.rotate().unwrap().as_str(), arn);
    assert!(matches!(
        provider.retire(&provider.current_key_id()),
        Err(CryptoError::RetireCurrent { .. })
    ));

    // Unknown keys: KMS's error type and message, naming the key and the endpoint.
    let err = KmsKeyProvider::new(client.clone(), "alias/does-not-exist").unwrap_err();
    assert_eq!(err.kms_error_type(), Some("NotFoundException"), "{err}");
    let text = err.to_string();
    assert!(text.contains("alias/does-not-exist"), "{text}");
    assert!(text.contains(&moto.endpoint()), "{text}");

    // A disabled key cannot become a master key.
    moto.disable_key(&key_id);
    let err = KmsKeyProvider::new(client, &arn).unwrap_err().to_string();
    assert!(err.contains(&arn) && err.contains("Disabled"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_kms_key_provider_restarts_and_reads_back() {
    let moto = MotoServer::start();
    let (_, arn) = moto.create_key();
    let alias = moto.create_alias("shoal-node", &arn);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        KeyProviderKind::Kms,
        Some(moto.kms_config(Some(&alias))),
    );

    let (node, client) = start(cfg.clone()).await;
    must_create_hash_table(&client, "kms_node").await;
    put_and_check(&client, "kms_node", "wrapped by KMS").await;
    // Default tables have no SSEDescription even when the node's master key is in KMS.
    assert_eq!(sse_arn(&client, "kms_node").await, None);
    node.shutdown().await;

    // The node key is wrapped by the KMS key; no key directory was made.
    let node_key =
        std::fs::read_to_string(dir.path().join("data").join(shoal_crypto::NODE_KEY_FILE)).unwrap();
    let node_key = shoal_crypto::WrappedKey::from_json(&node_key).unwrap();
    assert_eq!(node_key.algorithm, WrapAlgorithm::KmsEncrypt);
    assert_eq!(node_key.key_id_of_wrapping_key.as_str(), arn);
    assert!(
        !dir.path().join("keys").exists(),
        "a key directory was created"
    );

    let (node, client) = start(cfg.clone()).await;
    check(&client, "kms_node", "wrapped by KMS").await;
    node.shutdown().await;

    // Without the KMS the data directory cannot be opened.
    let mut no_kms = cfg.clone();
    no_kms.kms = None;
    let err = match shoal_node::Node::start(no_kms).await {
        Ok(_) => panic!("started without its KMS"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("KMS endpoint"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_with_their_own_kms_key_describe_it_and_need_it_at_start() {
    let moto = MotoServer::start();
    let (key_id, arn) = moto.create_key();
    let alias = moto.create_alias("orders", &key_id);
    let (_other_id, other_arn) = moto.create_key();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        KeyProviderKind::File,
        Some(moto.kms_config(None)),
    );
    let (node, client) = start(cfg.clone()).await;

    // By alias, by ARN, by key id: the description names the key ARN.
    let created = create_with_sse(&client, "by_alias", sse(Some(&alias)))
        .await
        .unwrap();
    let desc = created
        .sse_description
        .expect("SSEDescription in CreateTable");
    assert_eq!(desc.kms_master_key_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(
        sse_arn(&client, "by_alias").await.as_deref(),
        Some(arn.as_str())
    );
    must_create_with_key(&client, "by_arn", sse(Some(&other_arn)), Some(&other_arn)).await;
    must_create_with_key(&client, "by_id", sse(Some(&key_id)), Some(&arn)).await;
    // Enabled without a key: DynamoDB's AWS managed key, alias/aws/dynamodb.
    let managed = moto
        .client()
        .describe_key("alias/aws/dynamodb")
        .unwrap()
        .arn;
    must_create_with_key(&client, "managed", sse(None), Some(&managed)).await;
    // Enabled false is the default encryption: no SSEDescription.
    let owned = SseSpecification::builder().enabled(false).build();
    must_create_with_key(&client, "owned", owned, None).await;
    must_create_hash_table(&client, "plain").await;
    assert_eq!(sse_arn(&client, "plain").await, None);

    for table in ["by_alias", "by_arn", "plain"] {
        put_and_check(&client, table, table).await;
    }
    node.shutdown().await;

    // The catalog holds KMS ciphertexts for KMS tables, AES-GCM for the default ones.
    let wrapped = stored_data_key(dir.path(), Some(&moto), "by_alias");
    assert_eq!(wrapped.algorithm, WrapAlgorithm::KmsEncrypt);
    assert_eq!(wrapped.key_id_of_wrapping_key.as_str(), arn);
    let plain = stored_data_key(dir.path(), Some(&moto), "plain");
    assert_eq!(plain.algorithm, WrapAlgorithm::Aes256Gcm);

    let (node, client) = start(cfg.clone()).await;
    for table in ["by_alias", "by_arn", "plain"] {
        check(&client, table, table).await;
    }
    node.shutdown().await;

    // With a table's key disabled in KMS the node refuses to start, naming the key and table.
    moto.disable_key(&key_id);
    let err = match shoal_node::Node::start(cfg.clone()).await {
        Ok(_) => panic!("started with a disabled table key"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&arn), "message does not name the key: {err}");
    assert!(err.contains("not enabled"), "{err}");
    assert!(err.contains("by_alias") || err.contains("by_id"), "{err}");

    // Enabled again: everything is back.
    moto.enable_key(&key_id);
    let (node, client) = start(cfg.clone()).await;
    check(&client, "by_alias", "by_alias").await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_table_switches_the_kms_key_without_rewriting_data() {
    let moto = MotoServer::start();
    let (a_id, a_arn) = moto.create_key();
    let (b_id, b_arn) = moto.create_key();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        KeyProviderKind::File,
        Some(moto.kms_config(None)),
    );
    let (node, client) = start(cfg.clone()).await;
    must_create_hash_table(&client, "switch").await;
    put_and_check(&client, "switch", "v1").await;

    let update = |spec: SseSpecification| {
        let client = client.clone();
        async move {
            client
                .update_table()
                .table_name("switch")
                .sse_specification(spec)
                .send()
                .await
        }
    };
    let out = update(sse(Some(&a_id))).await.unwrap();
    let desc = out.table_description.unwrap().sse_description.unwrap();
    assert_eq!(desc.kms_master_key_arn.as_deref(), Some(a_arn.as_str()));
    assert_eq!(
        sse_arn(&client, "switch").await.as_deref(),
        Some(a_arn.as_str())
    );
    check(&client, "switch", "v1").await;
    node.shutdown().await;
    assert_eq!(
        stored_data_key(dir.path(), Some(&moto), "switch")
            .key_id_of_wrapping_key
            .as_str(),
        a_arn
    );

    let (node, client) = start(cfg.clone()).await;
    check(&client, "switch", "v1").await;
    // To key B; afterwards key A is not needed any more.
    client
        .update_table()
        .table_name("switch")
        .sse_specification(sse(Some(&b_arn)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sse_arn(&client, "switch").await.as_deref(),
        Some(b_arn.as_str())
    );
    node.shutdown().await;
    moto.disable_key(&a_id);
    let (node, client) = start(cfg.clone()).await;
    check(&client, "switch", "v1").await;

    // Back to the default encryption: no SSEDescription, key B not needed either.
    client
        .update_table()
        .table_name("switch")
        .sse_specification(SseSpecification::builder().enabled(false).build())
        .send()
        .await
        .unwrap();
    assert_eq!(sse_arn(&client, "switch").await, None);
    node.shutdown().await;
    moto.disable_key(&b_id);
    let (node, client) = start(cfg.clone()).await;
    check(&client, "switch", "v1").await;
    assert_eq!(
        stored_data_key(dir.path(), Some(&moto), "switch").algorithm,
        WrapAlgorithm::Aes256Gcm
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_sse_specifications_are_validation_errors() {
    let moto = MotoServer::start();
    let (key_id, _arn) = moto.create_key();
    let (disabled_id, disabled_arn) = moto.create_key();
    moto.disable_key(&disabled_id);
    let dir = tempfile::tempdir().unwrap();
    let (node, client) = start(config(
        dir.path(),
        KeyProviderKind::File,
        Some(moto.kms_config(None)),
    ))
    .await;

    let check_invalid = |name: &'static str, spec: SseSpecification, needle: String| {
        let client = client.clone();
        async move {
            let err = assert_code(
                create_with_sse(&client, name, spec).await,
                "ValidationException",
            );
            assert!(
                err.message.contains(&needle),
                "{name}: message {:?} lacks {needle:?}",
                err.message
            );
            // Nothing was created.
            assert_code(
                client.describe_table().table_name(name).send().await,
                "ResourceNotFoundException",
            );
        }
    };
    check_invalid(
        "aes",
        SseSpecification::builder()
            .enabled(true)
            .sse_type(SseType::Aes256)
            .build(),
        "AES256".into(),
    )
    .await;
    check_invalid(
        "bad_type",
        SseSpecification::builder()
            .enabled(true)
            .sse_type(SseType::from("XYZ"))
            .build(),
        "Value 'XYZ' at 'sSESpecification.sSEType' failed to satisfy constraint: Member must satisfy enum value set: [AES256, KMS]".into(),
    )
    .await;
    check_invalid(
        "disabled_with_key",
        SseSpecification::builder()
            .enabled(false)
            .kms_master_key_id(key_id.clone())
            .build(),
        "KMSMasterKeyId".into(),
    )
    .await;
    check_invalid(
        "no_such_key",
        sse(Some("alias/no-such-key")),
        "alias/no-such-key".into(),
    )
    .await;
    check_invalid(
        "disabled_key",
        sse(Some(&disabled_arn)),
        disabled_arn.clone(),
    )
    .await;

    // UpdateTable validates the same way and leaves the table as it was.
    must_create_hash_table(&client, "upd").await;
    let err = assert_code(
        client
            .update_table()
            .table_name("upd")
            .sse_specification(sse(Some("alias/nope")))
            .send()
            .await,
        "ValidationException",
    );
    assert!(err.message.contains("alias/nope"), "{}", err.message);
    assert_eq!(sse_arn(&client, "upd").await, None);
    node.shutdown().await;

    // A node without a KMS endpoint cannot use KMS keys.
    let dir = tempfile::tempdir().unwrap();
    let (node, client) = start(config(dir.path(), KeyProviderKind::File, None)).await;
    let err = assert_code(
        create_with_sse(&client, "no_kms", sse(Some(&key_id))).await,
        "ValidationException",
    );
    assert!(err.message.contains("no KMS endpoint"), "{}", err.message);
    // Enabled false is fine without KMS.
    let owned = SseSpecification::builder().enabled(false).build();
    must_create_with_key(&client, "owned", owned, None).await;
    // Enabled true without a key (what CloudFormation, CDK and Terraform templates send) is
    // DynamoDB's AWS managed key: without a KMS, Shoal's own keys stand in, described as KMS.
    let managed = "arn:aws:kms:us-east-1:000000000000:key/shoal-managed";
    let account = sse_arn_prefix(&client, "owned").await;
    let managed = managed.replace("000000000000", &account);
    must_create_with_key(&client, "managed", sse(None), Some(&managed)).await;
    let enabled_only = SseSpecification::builder().enabled(true).build();
    must_create_with_key(&client, "managed2", enabled_only, Some(&managed)).await;
    put_and_check(&client, "managed", "v1").await;
    // UpdateTable can turn it on and off too.
    client
        .update_table()
        .table_name("owned")
        .sse_specification(sse(None))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sse_arn(&client, "owned").await.as_deref(),
        Some(managed.as_str())
    );
    node.shutdown().await;

    // The data survives a restart (the data key is wrapped by the master key, not a KMS).
    let (node, client) = start(config(dir.path(), KeyProviderKind::File, None)).await;
    check(&client, "managed", "v1").await;
    assert_eq!(
        sse_arn(&client, "managed").await.as_deref(),
        Some(managed.as_str())
    );
    node.shutdown().await;
}

/// The account id in `table`'s ARN.
async fn sse_arn_prefix(client: &Client, table: &str) -> String {
    let arn = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .table_arn
        .unwrap();
    arn.split(':').nth(4).unwrap().to_string()
}

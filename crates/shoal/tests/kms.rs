//! `shoal --key-provider kms`: the real binary with its master key in KMS (moto in server mode,
//! see `shoal_tests::moto`), configured through flags and environment variables as an operator
//! would.

use shoal_tests::moto::{KMS_ACCESS_KEY_ID, KMS_SECRET, MotoServer};
use shoal_tests::*;

const BIN: &str = env!("CARGO_BIN_EXE_shoal");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_provider_kms_from_flags_and_environment() {
    let moto = MotoServer::start();
    let (key_id, arn) = moto.create_key();
    let alias = moto.create_alias("shoal-cli", &key_id);
    let (_, table_arn) = moto.create_key();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = ProcessNode::builder(BIN)
        .data_dir(&data)
        .arg("--key-provider")
        .arg("kms")
        .arg("--kms-key-id")
        .arg(&alias)
        .env("SHOAL_KMS_ENDPOINT", moto.endpoint())
        .env("SHOAL_KMS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", KMS_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", KMS_SECRET)
        .admin_key(ADMIN_KEY_ID, ADMIN_SECRET)
        .start()
        .await;
    let client = node.client();
    must_create_hash_table(&client, "cli_kms").await;
    must_put(&client, "cli_kms", item([("pk", s("a")), ("v", s("one"))])).await;
    // A table with its own KMS key, through the same endpoint.
    let created = client
        .create_table()
        .table_name("own_key")
        .attribute_definitions(attr_def(
            "pk",
            aws_sdk_dynamodb::types::ScalarAttributeType::S,
        ))
        .key_schema(key_elem("pk", aws_sdk_dynamodb::types::KeyType::Hash))
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .sse_specification(
            aws_sdk_dynamodb::types::SseSpecification::builder()
                .enabled(true)
                .kms_master_key_id(&table_arn)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        created
            .table_description
            .and_then(|t| t.sse_description)
            .and_then(|d| d.kms_master_key_arn),
        Some(table_arn.clone())
    );
    must_put(&client, "own_key", item([("pk", s("b")), ("v", s("two"))])).await;

    node.restart().await;
    let client = node.client();
    let got = must_get(&client, "cli_kms", item([("pk", s("a"))])).await;
    assert_item_eq(got.as_ref(), &item([("pk", s("a")), ("v", s("one"))]));
    let got = must_get(&client, "own_key", item([("pk", s("b"))])).await;
    assert_item_eq(got.as_ref(), &item([("pk", s("b")), ("v", s("two"))]));

    // The node key is wrapped by the node's KMS key.
    let node_key = std::fs::read_to_string(data.join("node-key.json")).unwrap();
    assert!(node_key.contains(r#""algorithm":"KMS""#), "{node_key}");
    assert!(node_key.contains(&arn), "{node_key}");
    node.terminate().await;

    // --key-provider kms without a key id is refused with a message saying what is missing.
    let (status, _, stderr) = run_command(
        std::path::Path::new(BIN),
        &[
            "--data-dir",
            &dir.path().join("other").display().to_string(),
            "--key-provider",
            "kms",
        ],
    );
    assert!(!status.success());
    assert!(stderr.contains("--kms-key-id"), "{stderr}");
}

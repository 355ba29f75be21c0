//! No secret reaches a node's log, at any level: the admin secret (printed once on stdout at
//! first start), join tokens (the first one on stdout, later ones from `shoal cluster
//! join-token`), an access key created while the node runs, and the private keys a joining
//! node receives. Both nodes run with `SHOAL_LOG=trace`, so every event of every crate (and
//! the `log` records of rustls and others) is written.

use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use shoal_cluster::find_token;

use crate::support::Spawn;

fn printed(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .map(|v| v.trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_at_any_level() {
    let _serial = crate::SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut spawn = Spawn::new(dir.path(), "secrets").env("SHOAL_LOG", "trace");
    spawn.no_admin_key = true;
    let mut node = spawn.start();
    node.wait_healthy().await;

    let stdout = node.stdout_text();
    let id = printed(&stdout, "AWS_ACCESS_KEY_ID=").expect("the admin key id is printed");
    let secret = printed(&stdout, "AWS_SECRET_ACCESS_KEY=").expect("the admin secret is printed");
    let first_token = find_token(&stdout).expect("the first join token is printed");
    assert_eq!(
        stdout.matches(secret.as_str()).count(),
        1,
        "the admin secret is printed exactly once:\n{stdout}"
    );

    // A second node joins with the first token (the secret, the CA key and its own key cross
    // the network during the join).
    let mut joiner = Spawn::new(dir.path(), "joiner")
        .env("SHOAL_LOG", "trace")
        .env("SHOAL_JOIN_TOKEN", first_token.as_str())
        .arg("--join")
        .arg(node.cluster.to_string());
    joiner.no_admin_key = true;
    let mut joiner = joiner.start();
    joiner.wait_healthy().await;

    // Signed requests with the admin key, logged at trace.
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(node.url(""))
            .region(Region::new(shoal_cluster::REGION))
            .credentials_provider(Credentials::new(&id, &secret, None, None, "test"))
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build(),
    );
    client
        .list_tables()
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListTables with the admin key: {}", DisplayErrorContext(&e)));

    // An access key and a join token created while the node runs (through its control socket).
    let (ok, out, err) = node.admin(&["keys", "create"]);
    assert!(ok, "shoal keys create: {out}{err}");
    let created = printed(&out, "AWS_SECRET_ACCESS_KEY=").expect("the new secret is printed");
    let (ok, out, err) = node.admin(&["cluster", "join-token", "--ttl", "1h"]);
    assert!(ok, "shoal cluster join-token: {out}{err}");
    let new_token = find_token(&out).expect("a new join token is printed");
    assert_ne!(new_token, first_token);

    let exit = joiner.terminate().await;
    assert_eq!(exit.and_then(|s| s.code()), Some(0));
    let exit = node.terminate().await;
    assert_eq!(exit.and_then(|s| s.code()), Some(0));

    let mut secrets = vec![
        ("the admin secret", secret.clone()),
        ("a created access key's secret", created),
        ("a private key", "PRIVATE KEY".to_string()),
    ];
    for token in [first_token, new_token] {
        // The token, the part encoding its secret (the first 32 bytes: 43 base64 characters)
        // and the secret in hex (as the join request carries it).
        let parsed: shoal_rpc::JoinToken = token.parse().unwrap();
        let hex: String = parsed.secret.iter().map(|b| format!("{b:02x}")).collect();
        secrets.push(("a join token's secret, in hex", hex));
        secrets.push((
            "a join token's secret",
            token["SHOAL2-".len().."SHOAL2-".len() + 43].to_string(),
        ));
        secrets.push(("a join token", token));
    }
    for proc in [&node, &joiner] {
        let log = proc.stderr_text();
        assert!(
            log.contains(" DEBUG ") || log.contains(" TRACE "),
            "{} logged at debug/trace level\n{log}",
            proc.name
        );
        for (what, value) in &secrets {
            if let Some(line) = log.lines().find(|l| l.contains(value.as_str())) {
                panic!("{what} is in the log of {}: {line}", proc.name);
            }
        }
        println!(
            "{}: {} log lines at trace level; no secret among them",
            proc.name,
            log.lines().count()
        );
    }
}

//! Cluster membership as clients and operators see it: a node with a wrong join token is
//! refused and never becomes a member; DescribeEndpoints through any node lists every node's
//! API address; `shoal status --endpoint` prints every node.
// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use shoal_cluster::{Cluster, free_addr};
use shoal_rpc::JoinToken;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `shoal start --join <node 1> --join-token <token>` on a fresh data directory and
/// returns (exit success, combined output, the API address it tried to use). Fails the test if
/// the process is still running after 60 s.
async fn try_join(c: &Cluster, token: &str, name: &str) -> (bool, String, String) {
    let dir = c.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let api = free_addr().to_string();
    let mut cmd = c.command();
    cmd.arg("start")
        .arg("--listen")
        .arg(&api)
        .arg("--cluster-listen")
        .arg(free_addr().to_string())
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--keys-dir")
        .arg(dir.join("keys"))
        .arg("--join")
        .arg(c.cluster_addr(1).to_string())
        .arg("--join-token")
        .arg(token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn shoal");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            c.fail(&format!(
                "a node joining with a wrong token ({name}) still runs after 60 s; output:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_is_authenticated_and_visible_through_every_node() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start(3).await;
    let apis: BTreeSet<String> = (1..=3).map(|i| c.api_addr(i).to_string()).collect();

    // A wrong secret with the right CA fingerprint: the TLS handshake succeeds and the members
    // refuse the token itself.
    let real: JoinToken = c.join_token(1).await.parse().expect("a valid join token");
    let mut forged = JoinToken {
        cluster_id: real.cluster_id.clone(),
        ..real.clone()
    };
    forged.secret[0] ^= 0xff;
    let (ok, out, bad_api_1) = try_join(&c, &forged.to_string(), "wrong-secret").await;
    println!("join with a wrong secret: success={ok}; output:\n{out}");
    assert!(!ok, "a node with a wrong join token must exit non-zero");
    assert!(
        out.to_lowercase().contains("token"),
        "the refusal must name the join token; output:\n{out}"
    );
    assert!(
        !out.contains(&real.to_string()) && !out.contains(&forged.to_string()),
        "the output must not echo a token"
    );

    // A token of another cluster (another CA): refused before anything is sent.
    let mut other_ca = forged;
    other_ca.ca_fingerprint[0] ^= 0xff;
    let (ok, out, bad_api_2) = try_join(&c, &other_ca.to_string(), "wrong-ca").await;
    println!("join with another cluster's CA fingerprint: success={ok}; output:\n{out}");
    assert!(
        !ok,
        "a node with another cluster's token must exit non-zero"
    );

    // Neither appears anywhere, and the members still are exactly the three.
    for i in 1..=3 {
        let s = c.status(i).await;
        let nodes = s["nodes"].as_array().cloned().unwrap_or_default();
        let listed: BTreeSet<String> = nodes
            .iter()
            .filter_map(|n| n["api_addr"].as_str().map(str::to_string))
            .collect();
        assert_eq!(
            listed, apis,
            "node {i}: /status must list exactly the three members; status: {s}"
        );
        assert!(
            !listed.contains(&bad_api_1) && !listed.contains(&bad_api_2),
            "a refused node is listed"
        );
        for g in s["groups"].as_array().cloned().unwrap_or_default() {
            let members: Vec<u64> = g["voters"]
                .as_array()
                .into_iter()
                .chain(g["learners"].as_array())
                .flatten()
                .filter_map(|v| v.as_u64())
                .collect();
            assert!(
                members.iter().all(|&m| (1..=3).contains(&m)),
                "node {i}: group {} has a replica on an unknown node: {g}",
                g["group"]
            );
        }
    }

    // DescribeEndpoints through any node lists every API address.
    for i in 1..=3 {
        let out = match c.client(i).describe_endpoints().send().await {
            Ok(o) => o,
            Err(e) => c.fail(&format!(
                "DescribeEndpoints through node {i}: {}",
                DisplayErrorContext(&e)
            )),
        };
        let listed: BTreeSet<String> = out
            .endpoints
            .iter()
            .map(|e| e.address.trim_start_matches("http://").to_string())
            .collect();
        assert_eq!(listed, apis, "DescribeEndpoints through node {i}");
        assert!(out.endpoints.iter().all(|e| e.cache_period_in_minutes > 0));
    }

    // `shoal status --endpoint` prints every node, each up.
    for i in [1, 3] {
        let out = c
            .command()
            .arg("status")
            .arg("--endpoint")
            .arg(c.api_url(i))
            .output()
            .expect("run shoal status");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("shoal status --endpoint {}:\n{text}", c.api_url(i));
        assert!(
            out.status.success(),
            "shoal status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for api in &apis {
            let line = text.lines().find(|l| l.contains(api.as_str()));
            match line {
                Some(l) => assert!(l.contains("up"), "node {api} not shown up: {l}"),
                None => panic!("shoal status through node {i} does not show {api}:\n{text}"),
            }
        }
    }

    // Leaders are balanced by leadership transfer, not left where elections put them: with six
    // partition groups on three voters, each node ends up leading two.
    for t in 0..6 {
        c.create_hash_table(1, &format!("lead_{t}")).await;
    }
    let balanced = |s: &serde_json::Value| {
        let mut led = std::collections::BTreeMap::<u64, usize>::new();
        for g in s["groups"].as_array().into_iter().flatten() {
            if g["kind"] == "partition"
                && let Some(l) = g["leader"].as_u64()
            {
                *led.entry(l).or_default() += 1;
            }
        }
        led.len() == 3 && led.values().all(|n| *n == 2)
    };
    c.wait_status(
        1,
        Duration::from_secs(60),
        "each node leads two partitions",
        balanced,
    )
    .await;
    c.create_hash_table(1, "status_t").await;
    // `shoal status --json`, signed with the AWS credential variables: the JSON of GET /status,
    // with each partition group's table, hash range, epoch, replicas, leader, items and bytes.
    let status_json = |secret: &str| {
        c.command()
            .args(["status", "--json", "--endpoint", &c.api_url(2)])
            .env("AWS_ACCESS_KEY_ID", shoal_cluster::ADMIN_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", shoal_cluster::REGION)
            .output()
            .expect("run shoal status --json")
    };
    let out = status_json(shoal_cluster::ADMIN_SECRET);
    assert!(
        out.status.success(),
        "shoal status --json failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let partition = v["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["kind"] == "partition"))
        .unwrap_or_else(|| panic!("no partition group in {v}"));
    for field in [
        "table",
        "hash_range",
        "epoch",
        "replicas",
        "voters",
        "learners",
        "leader",
        "items",
        "bytes",
    ] {
        assert!(
            !partition[field].is_null(),
            "status --json: partition without {field}: {partition}"
        );
    }
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(apis.len()));
    // A wrong secret is refused by the node, not ignored.
    let out = status_json("not-the-secret");
    assert!(
        !out.status.success(),
        "a wrongly signed status request was answered"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signature"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Join tokens in a real cluster: created through any member and valid through every member;
//! a new token revokes the previous one; a revoked or expired token is refused with a message
//! saying so to the joining node and a warning in the member's log; a token given by file or
//! by environment admits a node.

use std::time::Duration;

use shoal_cluster::{Cluster, find_token};
use shoal_rpc::JoinToken;

use crate::support::{Proc, Spawn};

/// `shoal cluster join-token --ttl TTL` through node `i`; returns the new token.
fn create_token(c: &Cluster, i: usize, ttl: &str) -> String {
    let out = c
        .command()
        .args(["cluster", "join-token", "--ttl", ttl, "--data-dir"])
        .arg(c.data_dir(i))
        .output()
        .expect("run shoal cluster join-token");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "join-token through node {i}: {stdout}{stderr}"
    );
    assert!(
        stderr.contains("valid until"),
        "the expiry is shown: {stderr}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout holds the token alone: {stdout}"
    );
    find_token(&stdout).unwrap_or_else(|| panic!("no token in: {stdout}"))
}

/// A node joining through node `via` with `how` (extra flags/env); for refusals: waits for its
/// exit and returns the exit success and its combined output.
async fn refused_join(
    c: &Cluster,
    via: usize,
    name: &str,
    how: impl FnOnce(Spawn) -> Spawn,
) -> String {
    let dir = c.dir().to_path_buf();
    let mut node = how(Spawn::new(&dir, name)
        .arg("--join")
        .arg(c.cluster_addr(via).to_string()))
    .start();
    let exit = node.wait_exit(Duration::from_secs(60)).await;
    let out = format!("{}{}", node.stdout_text(), node.stderr_text());
    assert!(
        exit.is_some_and(|s| !s.success()),
        "{name}: a refused node must exit non-zero (exit: {exit:?})\n{out}"
    );
    out
}

fn member_log(c: &Cluster, i: usize) -> String {
    std::fs::read_to_string(c.dir().join(format!("node{i}/log"))).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tokens_expire_are_revoked_by_newer_ones_and_work_through_any_member() {
    let _serial = crate::SERIAL.lock().await;
    // Node 2 joins through a token file (the harness passes it so).
    let mut c = Cluster::start(2).await;

    // A token created through node 2, then a newer one through node 1: the first is revoked.
    let a = create_token(&c, 2, "1h");
    let b = create_token(&c, 1, "24h");
    assert_ne!(a, b);
    let out = refused_join(&c, 2, "with-revoked", |s| {
        s.arg("--join-token").arg(a.as_str())
    })
    .await;
    println!("joining with a revoked token:\n{out}");
    assert!(
        out.contains("revoked") && out.contains("shoal cluster join-token"),
        "the joiner is told its token was revoked and what to do\n{out}"
    );
    assert!(
        out.contains("command line"),
        "a token on the command line draws a warning\n{out}"
    );
    assert!(!out.contains(&a), "the output does not echo the token");
    let log = member_log(&c, 2);
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("join refused") && l.contains("revoked")),
        "the member warns about the refused join"
    );

    // A short-lived token expires. The joining node refuses it itself...
    let short = create_token(&c, 1, "2s");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = refused_join(&c, 1, "expired-local", |s| {
        s.env("SHOAL_JOIN_TOKEN", short.as_str())
    })
    .await;
    assert!(out.contains("expired"), "{out}");
    // ...and a member refuses it whatever expiry the token text claims: the cluster's record
    // decides.
    let mut forged: JoinToken = short.parse().unwrap();
    forged.expires_at += 3600;
    let out = refused_join(&c, 1, "expired-member", |s| {
        s.env("SHOAL_JOIN_TOKEN", forged.to_string())
    })
    .await;
    println!("joining with an expired token (forged expiry):\n{out}");
    assert!(
        out.contains("expired at") && out.contains("shoal cluster join-token"),
        "the member says the token expired\n{out}"
    );
    assert!(
        member_log(&c, 1)
            .lines()
            .any(|l| l.contains("WARN") && l.contains("join refused") && l.contains("expired")),
        "the member warns about the expired token"
    );
    // The token created before the short one is revoked by it.
    let out = refused_join(&c, 1, "with-b", |s| s.env("SHOAL_JOIN_TOKEN", b.as_str())).await;
    assert!(out.contains("revoked"), "{out}");

    // A fresh token created through node 2, given in a file, admits a node through node 1.
    let d = create_token(&c, 2, "1h");
    let file = c.dir().join("third-token");
    std::fs::write(&file, format!("{d}\n")).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let dir = c.dir().to_path_buf();
    let mut third: Proc = Spawn::new(&dir, "third")
        .arg("--join")
        .arg(c.cluster_addr(1).to_string())
        .arg("--join-token-file")
        .arg(file.display().to_string())
        .start();
    third.wait_healthy().await;
    let status = c
        .wait_status(1, Duration::from_secs(60), "three members", |s| {
            s["nodes"].as_array().is_some_and(|n| n.len() == 3)
        })
        .await;
    assert!(
        status["join_token_expires_at"].as_str().is_some(),
        "/status shows when the join token expires: {status}"
    );
    let out = third.stderr_text();
    assert!(
        !out.contains("command line") && !out.contains("other users may read"),
        "no warning for a private token file\n{out}"
    );
}

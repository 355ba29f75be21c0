//! `shoal cluster remove NODE_ID --endpoint URL`: decommissions a node. The request
//! (`POST /cluster/remove?node=ID`) is signed with the AWS credential environment variables,
//! which must be those of an admin key. The node's replicas then move to the other nodes and it
//! leaves the cluster; unless `--no-wait`, this waits for that and prints progress.

use std::time::{Duration, Instant};

use crate::status::{Endpoint, fetch, signature};

/// How long `shoal cluster remove` waits for the node to be gone.
const WAIT: Duration = Duration::from_secs(30 * 60);

pub(crate) fn run(endpoint: &Endpoint, node: u64, wait: bool) -> anyhow::Result<()> {
    let url = format!("{}/cluster/remove?node={node}", endpoint.url);
    let headers = signature("POST", &url)?;
    if headers.is_empty() {
        anyhow::bail!(
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to an admin key: removing a node is signed"
        );
    }
    let mut request = endpoint.agent.post(&url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let mut response = request
        .send_empty()
        .map_err(|e| anyhow::anyhow!("POST {url}: {e}"))?;
    let code = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| anyhow::anyhow!("POST {url}: {e}"))?;
    if !code.is_success() {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        anyhow::bail!(
            "node {node} was not removed: {}",
            v["message"].as_str().unwrap_or(&body)
        );
    }
    println!("node {node}: decommissioning (its replicas move to the other nodes)");
    if !wait {
        return Ok(());
    }
    let started = Instant::now();
    let mut last = None;
    // A bar of the replicas moved so far on a terminal (indicatif hides it otherwise); the
    // lines below are printed either way, for scripts and logs.
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} replicas moved",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut total = 0;
    loop {
        let status = fetch(endpoint)?;
        let removed = status["removed_nodes"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|v| v.as_u64() == Some(node)));
        if removed {
            bar.finish_and_clear();
            println!(
                "node {node}: removed from the cluster after {}s",
                started.elapsed().as_secs()
            );
            return Ok(());
        }
        let left = status["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["id"].as_u64() == Some(node)))
            .map(|n| n["replicas"].as_u64().unwrap_or(0));
        if left != last {
            if let Some(n) = left {
                total = total.max(n);
                bar.set_length(total);
                bar.set_position(total - n);
            }
            bar.suspend(|| match left {
                Some(n) => println!("node {node}: {n} replicas left to move"),
                None => println!("node {node}: no longer a member"),
            });
            last = left;
        }
        if started.elapsed() > WAIT {
            anyhow::bail!(
                "node {node} is still being removed after {}s",
                WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

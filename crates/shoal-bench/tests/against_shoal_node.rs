//! The bench drives an in-process Shoal node: put, get and YCSB-A run without errors.

use std::time::Duration;

use shoal_bench::{BenchArgs, Distribution, Workload};

fn args(endpoint: &str, workload: Workload, preload: bool) -> BenchArgs {
    BenchArgs {
        endpoint: endpoint.to_string(),
        region: "us-east-1".into(),
        access_key_id: "AKIDBENCH".into(),
        secret_access_key: "secret".into(),
        workload,
        consistent: false,
        distribution: Distribution::Zipfian,
        item_size: 512,
        items: 500,
        items_per_partition: 100,
        preload,
        table: "bench-test".into(),
        keep_table: true,
        concurrency: 4,
        duration: Duration::from_secs(2),
        rate: None,
        query_limit: 10,
        batch_size: 25,
        server_pid: Some(std::process::id()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_and_ycsb_a_run_against_a_shoal_node_without_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let node = shoal_node::Node::start(shoal_node::NodeConfig {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().join("data"),
        keys_dir: dir.path().join("keys"),
        region: "us-east-1".into(),
        admin_key: Some(shoal_node::AccessKey {
            id: "AKIDBENCH".into(),
            secret: "secret".into(),
        }),
        ..Default::default()
    })
    .await?;
    let endpoint = format!("http://{}", node.local_addr());

    for (workload, preload) in [
        (Workload::Put, false),
        (Workload::Get, true),
        (Workload::YcsbA, false),
    ] {
        let report = shoal_bench::run(args(&endpoint, workload, preload)).await?;
        assert_eq!(report.errors, 0, "{workload:?}: {:?}", report.error_types);
        assert!(report.ops > 0, "{workload:?}: no operations");
        assert!(report.latency_us.p50 > 0.0 && report.latency_us.p50 <= report.latency_us.p99);
        assert!(report.server_cpu_us_per_op.is_some());
    }
    node.shutdown().await;
    Ok(())
}

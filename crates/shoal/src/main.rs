//! `shoal`: the command line. Thin by design: it parses flags, environment and the config file
//! into a [`shoal_node::NodeConfig`] and runs the node, or manages access keys.

mod config;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use config::{KeysArgs, StartArgs};

/// jemalloc with background threads gives freed memory back to the OS within seconds, even
/// memory freed by threads that then go idle. With glibc's malloc (and with mimalloc) the request
/// bodies of a flood stayed resident after it ended; see docs/SECURITY.md, "Limits and timeouts".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Shoal: a DynamoDB-compatible, distributed, self-managing key-value and document database.
///
/// With no command, `shoal` runs `shoal start`: a single node on 127.0.0.1:8000 with its data in
/// ./shoal-data.
#[derive(Parser, Debug)]
#[command(name = "shoal", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node (the default).
    Start(Box<StartArgs>),
    /// Load-test a DynamoDB-compatible endpoint (Shoal or any other) and report latency and
    /// throughput; one JSON line on stdout, a summary on stderr.
    Bench(Box<shoal_bench::BenchArgs>),
    /// Manage access keys and rotate encryption keys (through the running node's control
    /// socket, or directly on the data directory when no node runs).
    /// Cluster administration
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Show the cluster's nodes, partitions, leaders and replication lag (`GET /status` of a node)
    Status {
        /// API endpoint of any node
        #[arg(long, env = "SHOAL_ENDPOINT", default_value = "http://127.0.0.1:8000")]
        endpoint: String,
    },
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Print the join token of the cluster the data directory belongs to
    JoinToken(KeysArgs),
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create an access key and print it (the secret is shown only this once).
    Create(KeysArgs),
    /// List access key ids.
    List(KeysArgs),
    /// Delete an access key.
    Delete {
        /// The access key id to delete.
        id: String,
        #[command(flatten)]
        args: KeysArgs,
    },
    /// Rotate the master key: re-wrap every data key with a new master key, then destroy the
    /// old one. No data file is rewritten; the node keeps serving.
    RotateMaster(KeysArgs),
    /// Rotate data keys now: re-encrypt the files of one table (or every table) under a new data
    /// key while the node keeps serving.
    RotateData {
        /// Only this table [default: every table]
        #[arg(long)]
        table: Option<String>,
        #[command(flatten)]
        args: KeysArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => start(cli.start),
        Some(Command::Start(args)) => start(*args),
        Some(Command::Keys { command }) => keys(command),
        Some(Command::Cluster {
            command: ClusterCommand::JoinToken(args),
        }) => join_token(&args),
        Some(Command::Status { endpoint }) => status(&endpoint),
        Some(Command::Bench(args)) => bench(*args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SHOAL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal, so log files and CI output stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Json => builder.json().init(),
        config::LogFormat::Text => builder.init(),
    }
}

fn start(args: StartArgs) -> anyhow::Result<()> {
    let settings = config::resolve(&args)?;
    init_logging(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let data_dir = settings.node.data_dir.clone();
        let node = shoal_node::Node::start(settings.node).await?;
        if let Some(key) = node.created_admin_key() {
            println!(
                "Shoal created an admin access key. It is shown only this once; it is stored in {} (mode 0600).",
                data_dir.join(shoal_node::keys::KEY_FILE).display()
            );
            println!("  AWS_ACCESS_KEY_ID={}", key.id);
            println!("  AWS_SECRET_ACCESS_KEY={}", key.secret);
        }
        println!("Shoal is serving the DynamoDB API on http://{}", node.local_addr());
        println!("Cluster address (mutual TLS): {}", node.cluster_addr());
        shutdown_signal().await;
        tracing::info!("shutting down");
        node.shutdown().await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the node");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn join_token(args: &KeysArgs) -> anyhow::Result<()> {
    let config = config::keys_node_config(args)?;
    println!("{}", shoal_node::cluster_join_token(&config)?);
    Ok(())
}

fn status(endpoint: &str) -> anyhow::Result<()> {
    let url = format!("{}/status", endpoint.trim_end_matches('/'));
    let body = ureq::get(&url)
        .call()
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?
        .into_body()
        .read_to_string()
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    print!("{}", render_status(&v));
    Ok(())
}

/// The status JSON as a table for people.
fn render_status(v: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let empty = Vec::new();
    let _ = writeln!(
        out,
        "cluster {} (seen from node {})",
        v["cluster_id"].as_str().unwrap_or("?"),
        v["node_id"]
    );
    let _ = writeln!(
        out,
        "\nNODE  STATE  API ADDRESS            CLUSTER ADDRESS        UPTIME"
    );
    for n in v["nodes"].as_array().unwrap_or(&empty) {
        let uptime = n["uptime_secs"]
            .as_u64()
            .map(|s| format!("{s}s"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<5} {:<6} {:<22} {:<22} {uptime}",
            n["id"],
            n["state"].as_str().unwrap_or("?"),
            n["api_addr"].as_str().unwrap_or("?"),
            n["cluster_addr"].as_str().unwrap_or("?")
        );
    }
    let _ = writeln!(
        out,
        "\nGROUP  TABLE                LEADER  VOTERS     LEARNERS   COMMIT  LAG"
    );
    for g in v["groups"].as_array().unwrap_or(&empty) {
        let table = g["table"]
            .as_str()
            .unwrap_or(if g["group"] == 0 { "(metadata)" } else { "?" });
        let list = |k: &str| {
            g[k].as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default()
        };
        let lag = g["lag"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|l| format!("{}:{}", l["node"], l["behind"]))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let leader = g["leader"]
            .as_u64()
            .map(|l| l.to_string())
            .unwrap_or_else(|| "none".into());
        let _ = writeln!(
            out,
            "{:<6} {:<20} {:<7} {:<10} {:<10} {:<7} {lag}",
            g["group"],
            table,
            leader,
            list("voters"),
            list("learners"),
            g["commit"]
        );
    }
    out
}

fn bench(args: shoal_bench::BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(shoal_bench::run(args))?;
    Ok(())
}

fn keys(command: KeysCommand) -> anyhow::Result<()> {
    use shoal_node::control::{Request, Response};
    let (args, request) = match command {
        KeysCommand::Create(args) => (args, Request::CreateKey),
        KeysCommand::List(args) => (args, Request::ListKeys),
        KeysCommand::Delete { id, args } => (args, Request::DeleteKey { id }),
        KeysCommand::RotateMaster(args) => (args, Request::RotateMaster),
        KeysCommand::RotateData { table, args } => (args, Request::RotateData { table }),
    };
    let config = config::keys_node_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let deleted = match &request {
        Request::DeleteKey { id } => Some(id.clone()),
        _ => None,
    };
    let response = runtime.block_on(shoal_node::admin_request(&config, request))?;
    match &response {
        Response::KeyCreated { id, secret } => {
            println!("AWS_ACCESS_KEY_ID={id}");
            println!("AWS_SECRET_ACCESS_KEY={secret}");
        }
        Response::Keys { keys } => {
            for key in keys {
                let created = i64::try_from(key.created)
                    .ok()
                    .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default();
                println!(
                    "{}\t{created}{}",
                    key.id,
                    if key.admin { "\tadmin" } else { "" }
                );
            }
        }
        Response::KeyDeleted { existed } => {
            let id = deleted.unwrap_or_default();
            if !existed {
                anyhow::bail!("no access key {id}");
            }
            println!("deleted {id}");
        }
        Response::MasterRotated(r) => {
            println!("old master key: {}", r.old_key_id);
            println!("new master key: {}", r.new_key_id);
            println!(
                "re-wrapped the node key and the data keys of {} table(s); retired: {}",
                r.tables,
                if r.retired.is_empty() {
                    "none".to_string()
                } else {
                    r.retired.join(", ")
                }
            );
        }
        Response::DataRotated { tables } => {
            if tables.is_empty() {
                println!("no table to rotate");
            }
            for t in tables {
                println!(
                    "rotated the data key of {} ({} partition file(s) re-encrypted in {} ms)",
                    t.table, t.partitions, t.millis
                );
            }
        }
        Response::Error { message } => anyhow::bail!("{message}"),
    }
    Ok(())
}

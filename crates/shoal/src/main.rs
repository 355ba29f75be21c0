//! `shoal`: the command line. Thin by design: it parses flags, environment and the config file
//! into a [`shoal_node::NodeConfig`] and runs the node, or manages access keys.

mod config;
mod limits;
mod remove;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    /// Cluster administration: join tokens, removing a node
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Show the cluster's nodes, partitions, leaders and replication lag (`GET /status` of a node)
    ///
    /// Signed with the AWS credential environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`) when they are set.
    Status {
        /// API endpoint of any node
        #[arg(long, env = "SHOAL_ENDPOINT", default_value = "http://127.0.0.1:8000")]
        endpoint: String,
        /// Print the JSON of `GET /status` instead of tables
        #[arg(long)]
        json: bool,
        /// PEM certificates to trust for an https:// endpoint (e.g. a node's --tls self-signed
        /// certificate)
        #[arg(long, env = "AWS_CA_BUNDLE")]
        ca_bundle: Option<PathBuf>,
    },
    /// Manage access keys and rotate encryption keys (through the running node's control
    /// socket, or directly on the data directory when no node runs).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Create a new join token, valid cluster-wide, and print it on stdout (through the running
    /// node of the data directory). The previous token is revoked: nodes can join only with the
    /// newest token, until it expires
    JoinToken {
        /// How long the token admits nodes: 90s, 30m, 24h, 7d (at most 365d)
        #[arg(long, default_value = "24h", value_parser = config::parse_ttl)]
        ttl: Duration,
        #[command(flatten)]
        args: KeysArgs,
    },
    /// Decommission a node: its replicas and leaderships move to the other nodes, then it
    /// leaves every group and the membership, and stops. Signed with the AWS credential
    /// environment variables, which must be those of an admin key. Waits until the node is gone,
    /// printing progress, unless --no-wait
    Remove {
        /// The id of the node to remove (`shoal status` lists them)
        node: u64,
        /// API endpoint of any node
        #[arg(long, env = "SHOAL_ENDPOINT", default_value = "http://127.0.0.1:8000")]
        endpoint: String,
        /// Return once the removal has started
        #[arg(long)]
        no_wait: bool,
        /// PEM certificates to trust for an https:// endpoint
        #[arg(long, env = "AWS_CA_BUNDLE")]
        ca_bundle: Option<PathBuf>,
    },
}

/// Exit code of a node that stopped because an essential part of it failed (EX_SOFTWARE): a
/// supervisor restarts it (systemd `Restart=on-failure`, Kubernetes).
const EXIT_FAILED: u8 = 70;
/// How long a failed node keeps answering (health 503, requests with a retryable error) before
/// it exits, so that load balancers and health checks see the failure.
const FAIL_STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create an access key and print it (the secret is shown only this once).
    Create {
        /// An IAM policy document (JSON) that limits what the key may do [default: none, the key
        /// may do everything]. See docs/SECURITY.md, "Policies".
        #[arg(long, value_name = "FILE")]
        policy: Option<std::path::PathBuf>,
        #[command(flatten)]
        args: KeysArgs,
    },
    /// Set the IAM policy of an access key from FILE, or remove it with --remove (the key may
    /// then do everything). Applies to the key's next request, on every node.
    SetPolicy {
        /// The access key id.
        id: String,
        /// The IAM policy document (JSON).
        #[arg(required_unless_present = "remove", conflicts_with = "remove")]
        file: Option<std::path::PathBuf>,
        /// Remove the key's policy instead.
        #[arg(long)]
        remove: bool,
        #[command(flatten)]
        args: KeysArgs,
    },
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
    // Every command may hold secrets (keys, tokens): none leaves a core dump.
    let mut limits = limits::Applied::default();
    limits::disable_core_dumps(&mut limits);
    let success = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        None => start(cli.start, limits),
        Some(Command::Start(args)) => start(*args, limits),
        Some(Command::Keys { command }) => success(keys(command)),
        Some(Command::Cluster {
            command: ClusterCommand::JoinToken { ttl, args },
        }) => success(join_token(&args, ttl)),
        Some(Command::Cluster {
            command:
                ClusterCommand::Remove {
                    node,
                    endpoint,
                    no_wait,
                    ca_bundle,
                },
        }) => success(
            status::Endpoint::new(&endpoint, ca_bundle.as_deref())
                .and_then(|e| remove::run(&e, node, !no_wait)),
        ),
        Some(Command::Status {
            endpoint,
            json,
            ca_bundle,
        }) => success(
            status::Endpoint::new(&endpoint, ca_bundle.as_deref())
                .and_then(|e| status::run(&e, json)),
        ),
        Some(Command::Bench(args)) => {
            limits::raise_nofile(&mut limits);
            success(bench(*args))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shoal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs panics through `tracing` (with the thread, location and, with RUST_BACKTRACE set, a
/// backtrace), so they land in the node's log in its format.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            %location,
            backtrace = %backtrace,
            "panic: {message}"
        );
    }));
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

fn start(args: StartArgs, mut limits: limits::Applied) -> anyhow::Result<ExitCode> {
    limits::raise_nofile(&mut limits);
    let settings = config::resolve(&args)?;
    init_logging(settings.log_format);
    log_panics();
    // Crash points for tests (docs/OPERATIONS.md, "Crash points"): inert unless FAILPOINTS
    // names one.
    let _failpoints = fail::FailScenario::setup();
    if std::env::var_os("FAILPOINTS").is_some() {
        tracing::warn!("FAILPOINTS is set: this node will crash where it names (a test setting)");
    }
    limits.log();
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(async move {
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
        if let Some(tls) = node.tls() {
            println!("Shoal is serving the DynamoDB API on https://{}", tls.addr);
            println!("  TLS certificate SHA-256 fingerprint: {}", tls.fingerprint);
            println!(
                "  TLS certificate (PEM; clients may use it as their CA bundle): {}",
                tls.cert_path.display()
            );
        }
        println!("Cluster address (mutual TLS): {}", node.cluster_addr());
        let failure = tokio::select! {
            () = shutdown_signal() => None,
            failure = node.failed() => Some(failure),
        };
        let Some(failure) = failure else {
            tracing::info!("shutting down");
            node.shutdown().await;
            return Ok::<_, anyhow::Error>(ExitCode::SUCCESS);
        };
        tracing::error!(
            %failure,
            grace_secs = FAIL_STOP_GRACE.as_secs(),
            exit_code = EXIT_FAILED,
            "this node cannot serve any more: it reports itself unhealthy, then exits so that its supervisor restarts it"
        );
        tokio::select! {
            () = tokio::time::sleep(FAIL_STOP_GRACE) => {}
            () = shutdown_signal() => {}
        }
        if tokio::time::timeout(Duration::from_secs(10), node.shutdown()).await.is_err() {
            tracing::warn!("the failed node did not shut down within 10 s; exiting anyway");
        }
        Ok(ExitCode::from(EXIT_FAILED))
    })?;
    // Work a failed node left behind (a blocked storage call) does not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(code)
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

/// `shoal cluster join-token`: the token alone on stdout (so `> FILE` stores just it), its
/// expiry on stderr.
fn join_token(args: &KeysArgs, ttl: Duration) -> anyhow::Result<()> {
    use shoal_node::control::{Request, Response};
    shoal_node::cluster::join_token::validate_ttl(ttl)?;
    let config = config::keys_node_config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let request = Request::CreateJoinToken {
        ttl_secs: Some(ttl.as_secs()),
    };
    let response = runtime.block_on(shoal_node::admin_request(&config, request))?;
    match &response {
        Response::JoinTokenCreated { token, expires_at } => {
            println!("{token}");
            eprintln!(
                "valid until {} (seconds since the epoch: {expires_at}); every earlier join token is revoked",
                shoal_node::cluster::join_token::rfc3339(*expires_at)
            );
            Ok(())
        }
        Response::Error { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("unexpected answer from the node: {other:?}"),
    }
}

fn bench(args: shoal_bench::BenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(shoal_bench::run(args))?;
    Ok(())
}

/// Reads a policy file and validates it here, so a refused policy is reported before the node
/// is contacted (the node validates it again).
fn read_policy(path: &std::path::Path) -> anyhow::Result<String> {
    /// Larger than any valid policy (6,144 characters without whitespace) with room for layout.
    const MAX_FILE: u64 = 32 * 1024;
    let len = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
        .len();
    if len > MAX_FILE {
        anyhow::bail!(
            "{} is {len} bytes: a policy file is at most {MAX_FILE} bytes (IAM's limit is {} characters without whitespace)",
            path.display(),
            shoal_policy::IDENTITY_POLICY_MAX_CHARS
        );
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    shoal_node::keys::parse_policy(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(text)
}

fn keys(command: KeysCommand) -> anyhow::Result<()> {
    use shoal_node::control::{Request, Response};
    let (args, request) = match command {
        KeysCommand::Create { policy, args } => (
            args,
            Request::CreateKey {
                policy: policy.as_deref().map(read_policy).transpose()?,
            },
        ),
        KeysCommand::SetPolicy { id, file, args, .. } => (
            args,
            Request::SetKeyPolicy {
                id,
                policy: file.as_deref().map(read_policy).transpose()?,
            },
        ),
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
        Request::DeleteKey { id } | Request::SetKeyPolicy { id, .. } => Some(id.clone()),
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
                    "{}\t{created}{}{}",
                    key.id,
                    if key.admin { "\tadmin" } else { "" },
                    if key.policy.is_some() { "\tpolicy" } else { "" }
                );
            }
        }
        Response::PolicySet { existed } => {
            let id = deleted.unwrap_or_default();
            if !existed {
                anyhow::bail!("no access key {id}");
            }
            println!("policy of {id} set");
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
        Response::JoinTokenCreated { .. } => anyhow::bail!("unexpected answer from the node"),
        Response::Error { message } => anyhow::bail!("{message}"),
    }
    Ok(())
}

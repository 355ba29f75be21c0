//! Settings: flags, then environment variables, then the TOML config file, then defaults.

mod api;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Deserialize;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Flags of `shoal start` (each also an environment variable and a config-file key).
#[derive(Args, Debug, Default, Clone)]
pub struct StartArgs {
    /// Address for the DynamoDB API [default: 127.0.0.1:8000; config: listen]
    #[arg(long, env = "SHOAL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Node-to-node address (mutual TLS), announced to the other nodes, so give a reachable IP
    /// [default: the API host with the API port + 1000 (port 0 when the API port is 0);
    /// config: cluster_listen]
    #[arg(long, env = "SHOAL_CLUSTER_LISTEN")]
    pub cluster_listen: Option<SocketAddr>,
    /// Join the cluster of the node at this cluster address (first start of a new node only;
    /// needs --join-token) [config: join]
    #[arg(long, env = "SHOAL_JOIN")]
    pub join: Option<String>,
    /// The cluster's join token (`shoal cluster join-token` on a member creates one). On the
    /// command line it is visible to every user in `ps`: prefer --join-token-file or the
    /// environment variable
    #[arg(long, env = "SHOAL_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// A file holding the cluster's join token (keep it mode 0600) [config: join_token_file]
    #[arg(long, env = "SHOAL_JOIN_TOKEN_FILE")]
    pub join_token_file: Option<PathBuf>,
    /// Seconds a member may be unreachable before the cluster declares it dead and replaces its
    /// replicas on live nodes (only while at least three other nodes are live)
    /// [default: 300; config: dead_node_timeout_secs]
    #[arg(long, env = "SHOAL_DEAD_NODE_TIMEOUT", value_name = "SECS")]
    pub dead_node_timeout: Option<u64>,
    /// A partition whose items take more than this many bytes is split in two (online; the
    /// halves then spread over the nodes) [default: 268435456 (256 MiB); config: split_size_bytes]
    #[arg(long, env = "SHOAL_SPLIT_SIZE_BYTES", value_name = "BYTES")]
    pub split_size_bytes: Option<u64>,
    /// Seconds between two sweeps of expired items (Time to Live): an expired item is deleted
    /// within about this long [default: 20; config: ttl_sweep_seconds]
    #[arg(long, env = "SHOAL_TTL_SWEEP_SECONDS", value_name = "SECS")]
    pub ttl_sweep_seconds: Option<u64>,
    /// Data directory [default: ./shoal-data; config: data_dir]
    #[arg(long, env = "SHOAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Master-key directory, kept apart from the data directory [default: ./shoal-keys; config: keys_dir]
    #[arg(long, env = "SHOAL_KEYS_DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Region served (ARNs, SigV4 scope) [default: us-east-1; config: region]
    #[arg(long, env = "SHOAL_REGION")]
    pub region: Option<String>,
    /// TOML config file with keys listen, cluster_listen, join,
    /// join_token_file, dead_node_timeout_secs, split_size_bytes, ttl_sweep_seconds, data_dir, keys_dir, region, log_format,
    /// data_key_rotation_days, key_provider, kms_key_id, kms_endpoint, kms_region, and the API
    /// limits max_connections, header_timeout_ms, idle_timeout_ms, body_timeout_ms,
    /// max_header_bytes, max_body_bytes_in_flight, max_concurrent_requests, max_queued_requests,
    /// queue_timeout_ms, metrics_token, and HTTPS tls_cert, tls_key, tls, tls_listen
    #[arg(long, env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: text; config: log_format]; the level comes from SHOAL_LOG or RUST_LOG
    #[arg(long, env = "SHOAL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Rotate each table's data key (re-encrypting its files while serving) after this many days
    /// [default: 30; config: data_key_rotation_days]
    #[arg(long, env = "SHOAL_DATA_KEY_ROTATION_DAYS")]
    pub data_key_rotation_days: Option<u32>,
    /// Data-key rotation period in seconds, for tests; overrides the days setting and checks
    /// for due keys every period/2 (at most every minute)
    #[arg(long, env = "SHOAL_DATA_KEY_ROTATION_SECS", hide = true)]
    pub data_key_rotation_secs: Option<u64>,
    /// Where the node's master key lives: file (the key directory) or kms [default: file;
    /// config: key_provider]. KMS credentials come from AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
    #[arg(long, env = "SHOAL_KEY_PROVIDER", value_enum)]
    pub key_provider: Option<KeyProviderArg>,
    /// KMS key (key id, ARN, alias name or alias ARN) of the node's master key with
    /// --key-provider kms [config: kms_key_id]
    #[arg(long, env = "SHOAL_KMS_KEY_ID")]
    pub kms_key_id: Option<String>,
    /// KMS endpoint URL, for --key-provider kms and for tables whose SSESpecification names a
    /// KMS key [default with --key-provider kms: https://kms.<kms region>.amazonaws.com;
    /// config: kms_endpoint]
    #[arg(long, env = "SHOAL_KMS_ENDPOINT")]
    pub kms_endpoint: Option<String>,
    /// KMS region (SigV4 scope) [default: the served region; config: kms_region]
    #[arg(long, env = "SHOAL_KMS_REGION")]
    pub kms_region: Option<String>,
    #[command(flatten)]
    pub api: api::ApiArgs,
}

/// `--key-provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyProviderArg {
    /// Master keys in the key directory.
    File,
    /// The master key is a KMS key.
    Kms,
}

/// Flags of `shoal keys ...`. With a node running on the data directory the command goes
/// through its control socket; otherwise it opens the directory (and its key directory) itself.
#[derive(Args, Debug, Default, Clone)]
pub struct KeysArgs {
    /// Data directory of the node [default: ./shoal-data]
    #[arg(long, env = "SHOAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Master-key directory, used when no node runs on the data directory [default: ./shoal-keys]
    #[arg(long, env = "SHOAL_KEYS_DIR")]
    pub keys_dir: Option<PathBuf>,
    /// TOML config file (its data_dir is used)
    #[arg(long, env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The config file. Unknown keys are errors, so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub cluster_listen: Option<SocketAddr>,
    pub join: Option<String>,
    pub join_token_file: Option<PathBuf>,
    pub dead_node_timeout_secs: Option<u64>,
    pub split_size_bytes: Option<u64>,
    pub ttl_sweep_seconds: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub keys_dir: Option<PathBuf>,
    pub region: Option<String>,
    pub log_format: Option<LogFormat>,
    pub data_key_rotation_days: Option<u32>,
    pub key_provider: Option<KeyProviderArg>,
    pub kms_key_id: Option<String>,
    pub kms_endpoint: Option<String>,
    pub kms_region: Option<String>,
    pub max_connections: Option<usize>,
    pub header_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    pub max_header_bytes: Option<usize>,
    pub max_body_bytes_in_flight: Option<usize>,
    pub max_concurrent_requests: Option<usize>,
    pub max_queued_requests: Option<usize>,
    pub queue_timeout_ms: Option<u64>,
    pub metrics_token: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls: Option<api::TlsMode>,
    pub tls_listen: Option<SocketAddr>,
}

impl FileConfig {
    fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// Everything `shoal start` needs.
pub struct Settings {
    pub node: shoal_node::NodeConfig,
    pub log_format: LogFormat,
    /// Warnings about the settings, logged once logging is set up.
    pub warnings: Vec<String>,
}

/// Composes flags/env (already merged by clap), the config file and defaults, and validates.
pub fn resolve(args: &StartArgs) -> anyhow::Result<Settings> {
    let file = FileConfig::load(args.config.as_deref())?;
    let (data_key_rotation, data_key_rotation_check) = rotation_period(args, &file)?;
    let (key_provider, kms) = kms_settings(args, &file)?;
    let api = api::resolve(&args.api, &file)?;
    let defaults = shoal_node::NodeConfig::default();
    let tls = api::resolve_tls(
        &args.api,
        &file,
        args.listen.or(file.listen).unwrap_or(defaults.listen),
    )?;
    let region = args
        .region
        .clone()
        .or(file.region)
        .unwrap_or(defaults.region);
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        anyhow::bail!("invalid region '{region}': expected something like us-east-1");
    }
    let admin_key = admin_key_from_env()?;
    let defaults_rest = shoal_node::NodeConfig {
        key_provider,
        kms,
        ..shoal_node::NodeConfig::default()
    };
    let listen = args.listen.or(file.listen).unwrap_or(defaults.listen);
    let mut warnings = Vec::new();
    let join_token = join_token(
        args,
        args.join_token_file.clone().or(file.join_token_file),
        &mut warnings,
    )?;
    let cluster = shoal_node::ClusterConfig {
        listen: args
            .cluster_listen
            .or(file.cluster_listen)
            .unwrap_or_else(|| default_cluster_listen(listen)),
        join: args.join.clone().or(file.join),
        join_token,
        dead_node_timeout: dead_node_timeout(
            args.dead_node_timeout.or(file.dead_node_timeout_secs),
        )?,
        split_size_bytes: split_size_bytes(args.split_size_bytes.or(file.split_size_bytes))?,
        ttl_sweep_interval: ttl_sweep(args.ttl_sweep_seconds.or(file.ttl_sweep_seconds))?,
    };
    if cluster.join.is_some() && cluster.join_token.is_none() {
        anyhow::bail!(
            "--join needs the cluster's join token (--join-token-file FILE, or SHOAL_JOIN_TOKEN); `shoal cluster join-token --data-dir DIR` on a member creates one"
        );
    }
    Ok(Settings {
        node: shoal_node::NodeConfig {
            listen,
            cluster,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or(defaults.data_dir),
            keys_dir: args
                .keys_dir
                .clone()
                .or(file.keys_dir)
                .unwrap_or(defaults.keys_dir),
            region,
            admin_key,
            data_key_rotation,
            data_key_rotation_check,
            api,
            tls,
            ..defaults_rest
        },
        log_format: args.log_format.or(file.log_format).unwrap_or_default(),
        warnings,
    })
}

/// The join token: from `--join-token-file` (or `SHOAL_JOIN_TOKEN_FILE`, or the config file's
/// `join_token_file`), else from `SHOAL_JOIN_TOKEN` or `--join-token`. A token given on the
/// command line, or a file others may read, adds a warning.
fn join_token(
    args: &StartArgs,
    file: Option<PathBuf>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Option<String>> {
    match (&args.join_token, file) {
        (Some(_), Some(path)) => anyhow::bail!(
            "the join token is given twice: by --join-token-file {} and by SHOAL_JOIN_TOKEN or --join-token; give one",
            path.display()
        ),
        (Some(token), None) => {
            let from_env = std::env::var("SHOAL_JOIN_TOKEN").is_ok_and(|v| v == *token);
            if !from_env {
                warnings.push(
                    "the join token was given on the command line, where every user of this machine sees it (ps, /proc/<pid>/cmdline); use --join-token-file FILE or SHOAL_JOIN_TOKEN".to_string(),
                );
            }
            Ok(Some(token.clone()))
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the join token file {}", path.display()))?;
            let token = text.trim();
            if token.is_empty() {
                anyhow::bail!("the join token file {} is empty", path.display());
            }
            if let Ok(meta) = std::fs::metadata(&path) {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    warnings.push(format!(
                        "the join token file {} has mode {mode:o}: other users may read it; chmod 600 it",
                        path.display()
                    ));
                }
            }
            Ok(Some(token.to_string()))
        }
        (None, None) => Ok(None),
    }
}

/// The dead-node timeout: at least 1 second, at most 30 days.
fn ttl_sweep(secs: Option<u64>) -> anyhow::Result<std::time::Duration> {
    match secs {
        None => Ok(shoal_node::DEFAULT_TTL_SWEEP),
        Some(s) if (1..=3600).contains(&s) => Ok(std::time::Duration::from_secs(s)),
        Some(s) => anyhow::bail!("--ttl-sweep-seconds must be between 1 and 3600, not {s}"),
    }
}

fn split_size_bytes(bytes: Option<u64>) -> anyhow::Result<u64> {
    match bytes {
        None => Ok(shoal_node::DEFAULT_SPLIT_SIZE_BYTES),
        Some(b) if b < shoal_node::MIN_SPLIT_SIZE_BYTES => anyhow::bail!(
            "--split-size-bytes {b} is too small: at least {} bytes",
            shoal_node::MIN_SPLIT_SIZE_BYTES
        ),
        Some(b) => Ok(b),
    }
}

fn dead_node_timeout(secs: Option<u64>) -> anyhow::Result<Duration> {
    match secs {
        None => Ok(shoal_node::DEFAULT_DEAD_NODE_TIMEOUT),
        Some(s) if (1..=30 * 86_400).contains(&s) => Ok(Duration::from_secs(s)),
        Some(s) => {
            anyhow::bail!("invalid dead-node timeout {s}: give seconds from 1 to 2592000 (30 days)")
        }
    }
}

/// Parses a duration like `90s`, `30m`, `24h`, `7d` (a bare number is seconds).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 90s, 30m, 24h or 7d"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}': the unit is s, m, h or d")),
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// The cluster address when none is given: the API host, port + 1000 (0 stays 0).
fn default_cluster_listen(api: SocketAddr) -> SocketAddr {
    let port = match api.port() {
        0 => 0,
        p => p.checked_add(1000).unwrap_or(0),
    };
    SocketAddr::new(api.ip(), port)
}

/// The data-key rotation period and how often to check for due keys.
fn rotation_period(args: &StartArgs, file: &FileConfig) -> anyhow::Result<(Duration, Duration)> {
    const MINUTE: Duration = Duration::from_secs(60);
    if let Some(secs) = args.data_key_rotation_secs {
        if secs == 0 {
            anyhow::bail!("--data-key-rotation-secs must be at least 1");
        }
        let period = Duration::from_secs(secs);
        return Ok((
            period,
            (period / 2).clamp(Duration::from_millis(500), MINUTE),
        ));
    }
    let days = args
        .data_key_rotation_days
        .or(file.data_key_rotation_days)
        .unwrap_or(30);
    if days == 0 {
        anyhow::bail!("data_key_rotation_days must be at least 1");
    }
    Ok((Duration::from_secs(u64::from(days) * 24 * 3600), MINUTE))
}

/// The key provider and the KMS settings: KMS is configured when the provider is `kms` or a KMS
/// endpoint is given; its credentials come from the standard AWS_* environment variables.
fn kms_settings(
    args: &StartArgs,
    file: &FileConfig,
) -> anyhow::Result<(shoal_node::KeyProviderKind, Option<shoal_node::KmsConfig>)> {
    let provider = args
        .key_provider
        .or(file.key_provider)
        .unwrap_or(KeyProviderArg::File);
    let key_id = args.kms_key_id.clone().or(file.kms_key_id.clone());
    let endpoint = args.kms_endpoint.clone().or(file.kms_endpoint.clone());
    let kms_region = args
        .kms_region
        .clone()
        .or(file.kms_region.clone())
        .or(args.region.clone())
        .or(file.region.clone())
        .unwrap_or_else(|| shoal_node::NodeConfig::default().region);
    let kind = match provider {
        KeyProviderArg::File => shoal_node::KeyProviderKind::File,
        KeyProviderArg::Kms => {
            if key_id.is_none() {
                anyhow::bail!("--key-provider kms needs --kms-key-id (or SHOAL_KMS_KEY_ID)");
            }
            shoal_node::KeyProviderKind::Kms
        }
    };
    let endpoint = match (endpoint, kind) {
        (Some(e), _) => e,
        (None, shoal_node::KeyProviderKind::Kms) => {
            format!("https://kms.{kms_region}.amazonaws.com")
        }
        (None, _) => return Ok((kind, None)),
    };
    let credentials = shoal_node::KmsCredentials::from_env()?;
    Ok((
        kind,
        Some(shoal_node::KmsConfig {
            endpoint,
            region: kms_region,
            key_id,
            credentials,
        }),
    ))
}

/// `SHOAL_ADMIN_ACCESS_KEY_ID` and `SHOAL_ADMIN_SECRET_ACCESS_KEY`, both or neither.
fn admin_key_from_env() -> anyhow::Result<Option<shoal_node::AccessKey>> {
    let id = std::env::var("SHOAL_ADMIN_ACCESS_KEY_ID")
        .ok()
        .filter(|s| !s.is_empty());
    let secret = std::env::var("SHOAL_ADMIN_SECRET_ACCESS_KEY")
        .ok()
        .filter(|s| !s.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some(shoal_node::AccessKey { id, secret })),
        (None, None) => Ok(None),
        _ => anyhow::bail!(
            "set both SHOAL_ADMIN_ACCESS_KEY_ID and SHOAL_ADMIN_SECRET_ACCESS_KEY, or neither"
        ),
    }
}

/// The node configuration `shoal keys` works with: the data directory and, for when no node
/// runs, the key directory (flags, then environment, then the config file, then defaults).
pub fn keys_node_config(args: &KeysArgs) -> anyhow::Result<shoal_node::NodeConfig> {
    let file = FileConfig::load(args.config.as_deref())?;
    let defaults = shoal_node::NodeConfig::default();
    Ok(shoal_node::NodeConfig {
        data_dir: args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or(defaults.data_dir.clone()),
        keys_dir: args
            .keys_dir
            .clone()
            .or(file.keys_dir)
            .unwrap_or(defaults.keys_dir.clone()),
        region: file.region.unwrap_or(defaults.region.clone()),
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in ["", "h", "1w", "1.5h", "-1s", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn dead_node_timeout_comes_from_the_flag_or_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("shoal.toml");
        std::fs::write(&config, "dead_node_timeout_secs = 45\n").unwrap();
        let mut args = StartArgs {
            config: Some(config),
            ..StartArgs::default()
        };
        let timeout = |args: &StartArgs| resolve(args).unwrap().node.cluster.dead_node_timeout;
        assert_eq!(timeout(&args), Duration::from_secs(45));
        args.dead_node_timeout = Some(7);
        assert_eq!(timeout(&args), Duration::from_secs(7), "the flag wins");
        args.config = None;
        args.dead_node_timeout = None;
        assert_eq!(timeout(&args), shoal_node::DEFAULT_DEAD_NODE_TIMEOUT);
        args.dead_node_timeout = Some(0);
        let err = resolve(&args).err().unwrap().to_string();
        assert!(err.contains("invalid dead-node timeout 0"), "{err}");
    }
}

//! Settings: flags, then environment variables, then the TOML config file, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// Data directory [default: ./shoal-data; config: data_dir]
    #[arg(long, env = "SHOAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Master-key directory, kept apart from the data directory [default: ./shoal-keys; config: keys_dir]
    #[arg(long, env = "SHOAL_KEYS_DIR")]
    pub keys_dir: Option<PathBuf>,
    /// Region served (ARNs, SigV4 scope) [default: us-east-1; config: region]
    #[arg(long, env = "SHOAL_REGION")]
    pub region: Option<String>,
    /// TOML config file with keys listen, data_dir, keys_dir, region, log_format
    #[arg(long, env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: text; config: log_format]; the level comes from SHOAL_LOG or RUST_LOG
    #[arg(long, env = "SHOAL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// Flags of `shoal keys ...`.
#[derive(Args, Debug, Default, Clone)]
pub struct KeysArgs {
    /// Data directory of the node [default: ./shoal-data]
    #[arg(long, env = "SHOAL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file (its data_dir is used)
    #[arg(long, env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The config file. Unknown keys are errors, so typos do not pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub keys_dir: Option<PathBuf>,
    pub region: Option<String>,
    pub log_format: Option<LogFormat>,
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
}

/// Composes flags/env (already merged by clap), the config file and defaults, and validates.
pub fn resolve(args: &StartArgs) -> anyhow::Result<Settings> {
    let file = FileConfig::load(args.config.as_deref())?;
    let defaults = shoal_node::NodeConfig::default();
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
    Ok(Settings {
        node: shoal_node::NodeConfig {
            listen: args.listen.or(file.listen).unwrap_or(defaults.listen),
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
        },
        log_format: args.log_format.or(file.log_format).unwrap_or_default(),
    })
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

/// The data directory `shoal keys` works on.
pub fn keys_data_dir(args: &KeysArgs) -> anyhow::Result<PathBuf> {
    let file = FileConfig::load(args.config.as_deref())?;
    Ok(args
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| shoal_node::NodeConfig::default().data_dir))
}

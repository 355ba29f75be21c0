//! `shoal status`: `GET /status` of a node, as tables for people or as the JSON itself
//! (`--json`). Signed with SigV4 (service `dynamodb`) from the AWS credential environment
//! variables when `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are set; the node answers an
//! unsigned request only from a loopback address. An `https://` endpoint is verified against the
//! certificates of `--ca-bundle` (or `AWS_CA_BUNDLE`), e.g. a node's `--tls self-signed`
//! certificate, else the usual public roots.

use std::path::Path;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// A node's API endpoint and the HTTP agent that reaches it.
pub(crate) struct Endpoint {
    /// The base URL, without a trailing `/`.
    pub(crate) url: String,
    pub(crate) agent: ureq::Agent,
}

impl Endpoint {
    /// `url`, trusting the PEM certificates in `ca_bundle` for HTTPS when given.
    pub(crate) fn new(url: &str, ca_bundle: Option<&Path>) -> anyhow::Result<Endpoint> {
        let mut config = ureq::Agent::config_builder().http_status_as_error(false);
        if let Some(path) = ca_bundle {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--ca-bundle {}: {e}", path.display()))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("--ca-bundle {}: {e}", path.display()))?;
            if certs.is_empty() {
                anyhow::bail!("--ca-bundle {}: no PEM certificate in it", path.display());
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(Endpoint {
            url: url.trim_end_matches('/').to_string(),
            agent: config.build().new_agent(),
        })
    }
}

/// Prints the status of the cluster seen through `endpoint`.
pub(crate) fn run(endpoint: &Endpoint, json: bool) -> anyhow::Result<()> {
    let v = fetch(endpoint)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v));
    }
    Ok(())
}

/// `GET /status` of `endpoint` (signed when credentials are in the environment).
pub(crate) fn fetch(endpoint: &Endpoint) -> anyhow::Result<serde_json::Value> {
    let url = format!("{}/status", endpoint.url);
    let mut request = endpoint.agent.get(&url);
    for (name, value) in signature("GET", &url)? {
        request = request.header(name, value);
    }
    let mut response = request
        .call()
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    let code = response.status();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    if !code.is_success() {
        anyhow::bail!("GET {url}: {code}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The SigV4 headers for a `method` request of `url` with an empty body, when credentials are
/// in the environment.
pub(crate) fn signature(method: &str, url: &str) -> anyhow::Result<Vec<(String, String)>> {
    let (Some(key_id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
    else {
        return Ok(Vec::new());
    };
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_string());
    let token = env("AWS_SESSION_TOKEN");
    let identity: Identity = Credentials::new(key_id, secret, token, None, "environment").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("dynamodb")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| anyhow::anyhow!("signing the request: {e}"))?
        .into();
    let uri: ureq::http::Uri = url.parse()?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| anyhow::anyhow!("{url}: no host"))?;
    let headers = [("host", host.as_str())];
    let signable = SignableRequest::new(method, url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| anyhow::anyhow!("signing the request: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| anyhow::anyhow!("signing the request: {e}"))?
        .into_parts();
    let (added, _) = instructions.into_parts();
    Ok(added
        .iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect())
}

fn or_dash(v: &serde_json::Value) -> String {
    if v.is_null() {
        "-".to_string()
    } else {
        v.to_string()
    }
}

/// The status JSON as a table for people.
pub(crate) fn render(v: &serde_json::Value) -> String {
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
        "\nNODE  STATE     API ADDRESS            CLUSTER ADDRESS        UPTIME  REPLICAS"
    );
    for n in v["nodes"].as_array().unwrap_or(&empty) {
        let uptime = n["uptime_secs"]
            .as_u64()
            .map(|s| format!("{s}s"))
            .unwrap_or_else(|| "-".into());
        let replicas = n["replicas"]
            .as_u64()
            .map_or_else(|| "-".to_string(), |r| r.to_string());
        let dead_in = n["dead_in_secs"]
            .as_u64()
            .map(|s| format!("  (declared dead in {s}s)"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<5} {:<9} {:<22} {:<22} {uptime:<7} {replicas}{dead_in}",
            n["id"],
            n["state"].as_str().unwrap_or("?"),
            n["api_addr"].as_str().unwrap_or("-"),
            n["cluster_addr"].as_str().unwrap_or("-")
        );
    }
    let count = |k: &str| v[k].as_array().map_or(0, Vec::len);
    let _ = writeln!(
        out,
        "\nmoves in progress: {}; under-replicated partitions: {}; dead-node timeout: {}s",
        count("moves"),
        count("under_replicated"),
        v["dead_node_timeout_secs"]
    );
    let _ = writeln!(
        out,
        "\nGROUP  TABLE                EPOCH  LEADER  VOTERS     LEARNERS   ITEMS      BYTES        COMMIT  LAG"
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
            "{:<6} {:<20} {:<6} {:<7} {:<10} {:<10} {:<10} {:<12} {:<7} {lag}",
            g["group"],
            table,
            or_dash(&g["epoch"]),
            leader,
            list("voters"),
            list("learners"),
            or_dash(&g["items"]),
            or_dash(&g["bytes"]),
            g["commit"]
        );
    }
    out
}

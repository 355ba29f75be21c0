//! [`MotoServer`]: a real KMS-compatible server for tests — moto in server mode (PyPI `moto[server]`).
//!
//! `cargo test` must work on a fresh machine, so the harness installs moto itself: into a virtual
//! environment under `~/.cache/shoal-test-venv` (or `$SHOAL_TEST_VENV`), created with `python3 -m venv`
//! and `pip install moto[server]==`[`MOTO_VERSION`], once. Concurrent tests (and concurrent test
//! binaries) serialise the installation on a file lock next to the venv; a marker file records a
//! finished installation. `.ci/run` pre-installs the same venv so tests do not pay for it.
//!
//! Each [`MotoServer`] is its own `moto_server` process on a free loopback port (so tests do not share
//! KMS state), killed when dropped.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_crypto::{KmsClient, KmsConfig, KmsCredentials};

use crate::process::free_addr;

/// The moto version the harness installs.
pub const MOTO_VERSION: &str = "5.2.5";
/// The version of Prometheus' Python client installed beside it: its OpenMetrics parser checks
/// what `GET /metrics` serves.
pub const PROMETHEUS_CLIENT_VERSION: &str = "0.26.0";
/// The region KMS keys are created in.
pub const KMS_REGION: &str = "us-east-1";
/// Access key id used to sign KMS requests to moto (moto accepts any).
pub const KMS_ACCESS_KEY_ID: &str = "AKIDSHOALKMSTEST0001";
/// Secret used to sign KMS requests to moto.
pub const KMS_SECRET: &str = "shoal-kms-test-secret";

const STARTUP: Duration = Duration::from_secs(60);

/// The virtual environment moto is installed in.
pub fn moto_venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("SHOAL_TEST_VENV") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache").join("shoal-test-venv")
}

fn marker(venv: &Path) -> PathBuf {
    venv.join(format!(
        ".shoal-moto-{MOTO_VERSION}-prometheus-client-{PROMETHEUS_CLIENT_VERSION}"
    ))
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes sure `moto_server` is installed in [`moto_venv`] and returns its path. Installs it (once,
/// under a file lock) if needed.
///
/// # Panics
/// If Python or pip fail.
pub fn ensure_moto() -> PathBuf {
    let venv = moto_venv();
    let bin = venv.join("bin").join("moto_server");
    if marker(&venv).exists() && bin.exists() {
        return bin;
    }
    let parent = venv.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).expect("create the venv's parent directory");
    let lock_path = parent.join(format!(
        "{}.lock",
        venv.file_name()
            .map_or("shoal-test-venv".into(), |n| n.to_string_lossy())
    ));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .expect("open the venv lock file");
    lock.lock().expect("lock the venv lock file");
    if !(marker(&venv).exists() && bin.exists()) {
        if venv.exists() {
            // A half-made venv from an interrupted install.
            fs::remove_dir_all(&venv).expect("remove an incomplete venv");
        }
        eprintln!(
            "installing moto[server]=={MOTO_VERSION} and prometheus-client=={PROMETHEUS_CLIENT_VERSION} into {} (once)",
            venv.display()
        );
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        );
        run(
            Command::new(venv.join("bin").join("pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &format!("moto[server]=={MOTO_VERSION}"),
                &format!("prometheus-client=={PROMETHEUS_CLIENT_VERSION}"),
            ]),
            "pip install moto[server] prometheus-client",
        );
        fs::write(marker(&venv), MOTO_VERSION).expect("write the venv marker");
    }
    let _ = lock.unlock();
    bin
}

/// A `moto_server` process on a free loopback port, killed on drop.
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl MotoServer {
    /// Installs moto if needed ([`ensure_moto`]), starts it, and waits until it accepts connections.
    ///
    /// # Panics
    /// If moto cannot be installed or does not start within 60 s.
    pub fn start() -> MotoServer {
        let bin = ensure_moto();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("moto.log");
        let addr = free_addr();
        let out = fs::File::create(&log).expect("create the moto log");
        let err = out.try_clone().expect("clone the moto log handle");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut server = MotoServer {
            child,
            addr,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "moto_server exited with {status}:\n{}",
                    fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {addr} within {STARTUP:?}:\n{}",
                fs::read_to_string(&server.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A KMS configuration for this server (test credentials, [`KMS_REGION`]), with `key_id` as the
    /// node's master key if given.
    pub fn kms_config(&self, key_id: Option<&str>) -> KmsConfig {
        KmsConfig {
            endpoint: self.endpoint(),
            region: KMS_REGION.into(),
            key_id: key_id.map(str::to_string),
            credentials: KmsCredentials::new(KMS_ACCESS_KEY_ID, KMS_SECRET, None),
        }
    }

    /// A KMS client for this server.
    pub fn client(&self) -> KmsClient {
        KmsClient::new(&self.kms_config(None)).expect("KMS client for moto")
    }

    fn call(&self, operation: &'static str, body: Value) -> Value {
        self.client()
            .call(operation, "", &body)
            .unwrap_or_else(|e| panic!("KMS {operation}: {e}"))
    }

    /// Creates a symmetric encryption key; returns `(key id, key ARN)`.
    pub fn create_key(&self) -> (String, String) {
        let answer = self.call(
            "CreateKey",
            json!({"KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT"}),
        );
        let meta = &answer["KeyMetadata"];
        (
            meta["KeyId"].as_str().expect("KeyId").to_string(),
            meta["Arn"].as_str().expect("Arn").to_string(),
        )
    }

    /// Creates `alias/<name>` for the key `key_id`; returns the alias name.
    pub fn create_alias(&self, name: &str, key_id: &str) -> String {
        let alias = format!("alias/{name}");
        self.call(
            "CreateAlias",
            json!({"AliasName": alias, "TargetKeyId": key_id}),
        );
        alias
    }

    /// Disables the key (its key id, not ARN).
    pub fn disable_key(&self, key_id: &str) {
        self.call("DisableKey", json!({ "KeyId": key_id }));
    }

    /// Enables the key (its key id, not ARN).
    pub fn enable_key(&self, key_id: &str) {
        self.call("EnableKey", json!({ "KeyId": key_id }));
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! [`ProcessNode`]: the real `shoal` binary run as a child process.
//!
//! The binary's stdout and stderr are captured (per run) so tests can check what it printed;
//! readiness is a `GET /` answering 200 with a body starting `healthy:`.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use tempfile::TempDir;

use crate::node::client_for;
use crate::raw::{RawConnection, RawRequest};

/// How long a started process may take to answer its health check.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Picks a free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
///
/// # Panics
/// If no port can be bound.
pub fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr")
}

/// Builder for a [`ProcessNode`].
#[derive(Debug, Clone)]
pub struct ProcessNodeBuilder {
    bin: PathBuf,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    pass_listen: bool,
    pass_data_dir: bool,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    admin_key: Option<(String, String)>,
}

impl ProcessNodeBuilder {
    /// Listen on this address (default: a free port on 127.0.0.1), passed as `--listen`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Use this data directory (default: a fresh temp dir owned by the `ProcessNode`), passed as
    /// `--data-dir`.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Do not pass `--listen` (the test sets the address another way, e.g. a config file or env),
    /// but still wait for health on the address given to [`ProcessNodeBuilder::listen`].
    pub fn no_listen_flag(mut self) -> Self {
        self.pass_listen = false;
        self
    }

    /// Do not pass `--data-dir` (the test sets it another way).
    pub fn no_data_dir_flag(mut self) -> Self {
        self.pass_data_dir = false;
        self
    }

    /// Adds a command-line argument (after the generated flags).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Sets `SHOAL_ADMIN_ACCESS_KEY_ID` / `SHOAL_ADMIN_SECRET_ACCESS_KEY` and remembers the key
    /// for [`ProcessNode::client`].
    pub fn admin_key(mut self, id: &str, secret: &str) -> Self {
        self.admin_key = Some((id.to_string(), secret.to_string()));
        self
    }

    /// Spawns the process and waits until it answers its health check.
    ///
    /// # Panics
    /// If the process cannot be spawned, exits early, or is not healthy within
    /// [`STARTUP_TIMEOUT`] (the panic message includes its stderr).
    pub async fn start(self) -> ProcessNode {
        // A node whose address and data directory the builder chose starts again on fresh ones
        // when a port it needs is taken: the cluster port (API port + 1000) is not reserved by
        // `free_addr`, so another process's ephemeral port can hold it.
        let may_move = self.listen.is_none() && self.data_dir.is_none() && self.pass_listen;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (owned_dir, data_dir) = match &self.data_dir {
                Some(d) => (None, d.clone()),
                None => {
                    let t = tempfile::tempdir().expect("temp dir");
                    let p = t.path().join("data");
                    (Some(t), p)
                }
            };
            let addr = self.listen.unwrap_or_else(free_addr);
            let mut node = ProcessNode {
                builder: self.clone(),
                addr,
                data_dir,
                _owned_dir: owned_dir,
                child: None,
                stdout: Arc::new(Mutex::new(String::new())),
                stderr: Arc::new(Mutex::new(String::new())),
            };
            match node.try_spawn().await {
                Ok(()) => return node,
                Err(e) if may_move && attempt < 5 && e.contains("Address already in use") => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

/// A running (or stopped) `shoal` child process.
///
/// Dropping it kills the process (SIGKILL).
pub struct ProcessNode {
    builder: ProcessNodeBuilder,
    addr: SocketAddr,
    data_dir: PathBuf,
    _owned_dir: Option<TempDir>,
    child: Option<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl ProcessNode {
    /// A builder for the binary at `bin` (in tests: `env!("CARGO_BIN_EXE_shoal")`).
    pub fn builder(bin: impl Into<PathBuf>) -> ProcessNodeBuilder {
        ProcessNodeBuilder {
            bin: bin.into(),
            listen: None,
            data_dir: None,
            pass_listen: true,
            pass_data_dir: true,
            args: Vec::new(),
            envs: Vec::new(),
            admin_key: None,
        }
    }

    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// An SDK client with the admin key given to [`ProcessNodeBuilder::admin_key`].
    ///
    /// # Panics
    /// If no admin key was given.
    pub fn client(&self) -> Client {
        let (id, secret) = self
            .builder
            .admin_key
            .as_ref()
            .expect("ProcessNode::client needs ProcessNodeBuilder::admin_key");
        client_for(&self.endpoint(), id, secret)
    }

    /// An SDK client with the given credentials.
    pub fn client_with_key(&self, id: &str, secret: &str) -> Client {
        client_for(&self.endpoint(), id, secret)
    }

    /// Everything the current run printed to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Everything the current run printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (up to 30 s) for the process to exit; returns its exit status.
    ///
    /// # Panics
    /// If the process is not running or does not exit in time (it is then killed).
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal_and_wait("TERM").await
    }

    /// Sends SIGINT and waits (up to 30 s) for the process to exit; returns its exit status.
    ///
    /// # Panics
    /// If the process is not running or does not exit in time (it is then killed).
    pub async fn interrupt(&mut self) -> ExitStatus {
        self.signal_and_wait("INT").await
    }

    async fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().expect("process is not running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "shoal did not exit within 30 s of SIG{signal}; stderr:\n{}",
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the process (SIGTERM, or nothing if already stopped) and starts it again with the
    /// same arguments, environment, address and data directory; waits for health.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            let st = self.terminate().await;
            assert!(st.success(), "shoal exited with {st} on SIGTERM");
        }
        self.spawn().await;
    }

    /// Starts the process again after [`ProcessNode::kill`] or [`ProcessNode::terminate`].
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "process is still running");
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        if let Err(e) = self.try_spawn().await {
            panic!("{e}");
        }
    }

    /// Spawns the process and waits for health; the error says why it did not become healthy.
    async fn try_spawn(&mut self) -> Result<(), String> {
        let b = &self.builder;
        let mut cmd = Command::new(&b.bin);
        if b.pass_listen {
            cmd.arg("--listen").arg(self.addr.to_string());
        }
        if b.pass_data_dir {
            cmd.arg("--data-dir").arg(&self.data_dir);
        }
        cmd.args(&b.args);
        // Master keys beside the data directory, inside the test's own temporary space (never
        // the default ./shoal-keys of the working directory); a test may override it.
        let keys_dir = {
            let mut name = self.data_dir.file_name().unwrap_or_default().to_os_string();
            name.push("-keys");
            self.data_dir.with_file_name(name)
        };
        for var in [
            "SHOAL_LISTEN",
            "SHOAL_CLUSTER_LISTEN",
            "SHOAL_DATA_DIR",
            "SHOAL_REGION",
            "SHOAL_CONFIG",
            "SHOAL_ADMIN_ACCESS_KEY_ID",
            "SHOAL_ADMIN_SECRET_ACCESS_KEY",
            "SHOAL_KEYS_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("SHOAL_KEYS_DIR", &keys_dir);
        if let Some((id, secret)) = &b.admin_key {
            cmd.env("SHOAL_ADMIN_ACCESS_KEY_ID", id);
            cmd.env("SHOAL_ADMIN_SECRET_ACCESS_KEY", secret);
        }
        for (k, v) in &b.envs {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", b.bin.display()));
        self.stdout = Arc::new(Mutex::new(String::new()));
        self.stderr = Arc::new(Mutex::new(String::new()));
        if let Some(out) = child.stdout.take() {
            capture_lines(out, Arc::clone(&self.stdout));
        }
        if let Some(err) = child.stderr.take() {
            capture_lines(err, Arc::clone(&self.stderr));
        }
        self.child = Some(child);
        self.wait_healthy().await
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(st)) = child.try_wait()
            {
                self.child = None;
                // Let the reader threads drain the pipes.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Err(format!(
                    "shoal exited during startup with {st}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                ));
            }
            if health_ok(self.addr).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "shoal not healthy on {} within {STARTUP_TIMEOUT:?}\nstderr:\n{}",
                    self.addr,
                    self.stderr()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True when `GET /` on `addr` answers 200 with a body starting `healthy:`.
pub async fn health_ok(addr: SocketAddr) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    drop(stream);
    let mut conn = RawConnection::connect(addr).await;
    if conn
        .try_write(&RawRequest::get(addr, "/").to_bytes())
        .await
        .is_err()
    {
        return false;
    }
    match conn.read_response_within(Duration::from_secs(5)).await {
        Ok(r) => r.status == 200 && r.text() == "healthy",
        Err(_) => false,
    }
}

fn capture_lines(stream: impl Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let reader = BufReader::new(stream);
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if let Ok(mut s) = sink.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
}

/// Runs the binary to completion with `args` (e.g. `["keys", "list", "--data-dir", dir]`) and
/// returns (exit status, stdout, stderr). Admin-key env vars of the test process are not passed.
///
/// # Panics
/// If the binary cannot be run.
pub fn run_command(bin: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env_remove("SHOAL_ADMIN_ACCESS_KEY_ID")
        .env_remove("SHOAL_ADMIN_SECRET_ACCESS_KEY")
        .env_remove("SHOAL_CONFIG")
        .env_remove("SHOAL_LISTEN")
        .env_remove("SHOAL_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parses `AWS_ACCESS_KEY_ID=...` and `AWS_SECRET_ACCESS_KEY=...` lines (leading spaces allowed)
/// out of command output; returns `(id, secret)` if both are present.
pub fn parse_printed_key(output: &str) -> Option<(String, String)> {
    let mut id = None;
    let mut secret = None;
    for line in output.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("AWS_ACCESS_KEY_ID=") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("AWS_SECRET_ACCESS_KEY=") {
            secret = Some(v.trim().to_string());
        }
    }
    Some((id?, secret?))
}

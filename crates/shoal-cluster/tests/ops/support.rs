//! One `shoal start` process with its own directories and log files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use shoal_cluster::{command_for, free_addr, http_get, shoal_bin};

/// A `shoal start` child process; killed when dropped.
pub struct Proc {
    pub name: String,
    pub api: SocketAddr,
    pub cluster: SocketAddr,
    pub data: PathBuf,
    pub keys: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    child: Option<Child>,
    exit: Option<ExitStatus>,
}

/// How to start a [`Proc`].
pub struct Spawn<'a> {
    /// Its directories and logs go to `<dir>/<name>-*`.
    pub dir: &'a Path,
    pub name: &'a str,
    /// Extra arguments after `start --listen ... --keys-dir ...`.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Do not give the node the harness's admin key (it then creates and prints one).
    pub no_admin_key: bool,
    /// Run the binary through `sh -c '<wrapper>; exec "$0" "$@"'` (to set limits first).
    pub wrapper: Option<&'a str>,
    /// Reuse these addresses (a restart).
    pub addrs: Option<(SocketAddr, SocketAddr)>,
}

impl<'a> Spawn<'a> {
    pub fn new(dir: &'a Path, name: &'a str) -> Spawn<'a> {
        Spawn {
            dir,
            name,
            args: Vec::new(),
            env: Vec::new(),
            no_admin_key: false,
            wrapper: None,
            addrs: None,
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.to_string(), v.into()));
        self
    }

    /// Starts the process (does not wait for it to be healthy).
    pub fn start(self) -> Proc {
        let bin = shoal_bin();
        let (api, cluster) = self.addrs.unwrap_or_else(|| (free_addr(), free_addr()));
        let data = self.dir.join(format!("{}-data", self.name));
        let keys = self.dir.join(format!("{}-keys", self.name));
        let stdout = self.dir.join(format!("{}-stdout.log", self.name));
        let stderr = self.dir.join(format!("{}-stderr.log", self.name));
        let mut cmd = match self.wrapper {
            Some(w) => {
                let mut c = command_for(Path::new("sh"));
                c.arg("-c")
                    .arg(format!("{w}; exec \"$0\" \"$@\""))
                    .arg(&bin);
                c
            }
            None => command_for(&bin),
        };
        cmd.arg("start")
            .arg("--listen")
            .arg(api.to_string())
            .arg("--cluster-listen")
            .arg(cluster.to_string())
            .arg("--data-dir")
            .arg(&data)
            .arg("--keys-dir")
            .arg(&keys)
            .args(&self.args);
        if self.no_admin_key {
            cmd.env_remove("SHOAL_ADMIN_ACCESS_KEY_ID")
                .env_remove("SHOAL_ADMIN_SECRET_ACCESS_KEY");
        }
        if std::env::var_os("SHOAL_LOG").is_none() {
            cmd.env("SHOAL_LOG", "info");
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = std::fs::File::create(&stdout).unwrap();
        let err = std::fs::File::create(&stderr).unwrap();
        cmd.stdout(Stdio::from(out)).stderr(Stdio::from(err));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        Proc {
            name: self.name.to_string(),
            api,
            cluster,
            data,
            keys,
            stdout,
            stderr,
            child: Some(child),
            exit: None,
        }
    }
}

impl Proc {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the process runs").id()
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Both logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- {} stdout ---\n{}\n--- {} stderr (last 60 lines) ---\n{}",
            self.name,
            self.stdout_text(),
            self.name,
            tail(&self.stderr_text(), 60)
        )
    }

    /// The exit status, once the process ended (reaps it).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none()
            && let Some(child) = self.child.as_mut()
            && let Ok(Some(st)) = child.try_wait()
        {
            self.exit = Some(st);
            self.child = None;
        }
        self.exit
    }

    /// Waits up to `timeout` for the process to end.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.try_exit() {
                return Some(st);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.try_exit()
    }

    /// Waits until `GET /health` answers 200.
    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(st) = self.try_exit() {
                panic!(
                    "{} exited ({st}) while starting\n{}",
                    self.name,
                    self.logs()
                );
            }
            if let Ok((200, _)) = http_get(&self.url("/health")).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not healthy within 90 s\n{}",
                self.name,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn terminate(&mut self) -> Option<ExitStatus> {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        self.wait_exit(Duration::from_secs(30)).await
    }

    /// Runs `shoal <args> --data-dir <this node's>` (e.g. `cluster join-token`): (success,
    /// stdout, stderr).
    pub fn admin(&self, args: &[&str]) -> (bool, String, String) {
        let out = command_for(&shoal_bin())
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .env("SHOAL_KEYS_DIR", &self.keys)
            .output()
            .expect("run shoal");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

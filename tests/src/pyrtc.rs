//! The reference ssp server, PyPI `pyrtc` 2.0.2 (`python -m pyrtc.test`), started by a test in
//! its own loopback-only namespace. `make test` installs it into `.venv/pyrtc`.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::browser::repo_root;

/// pyrtc's test server always listens on this port.
pub const PORT: u16 = 7001;

pub struct Pyrtc {
    child: Child,
}

impl Pyrtc {
    /// Starts pyrtc and waits until its port accepts connections.
    pub async fn start() -> anyhow::Result<Pyrtc> {
        let python = repo_root().join(".venv/pyrtc/bin/python");
        if !python.exists() {
            bail!(
                "{} is missing: run `make pyrtc` (part of `make test`)",
                python.display()
            );
        }
        let child = Command::new(&python)
            .args(["-m", "pyrtc.test"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} -m pyrtc.test", python.display()))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", PORT))
                .await
                .is_ok()
            {
                return Ok(Pyrtc { child });
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("pyrtc did not listen on 127.0.0.1:{PORT} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{PORT}")
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

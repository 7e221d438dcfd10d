//! The `janus` process: started with a generated configuration, ready once its HTTP API
//! answers `info`, killed when dropped.
//!
//! Janus 1.1.2 leaves interfaces flagged loopback out of ICE gathering, so in our loopback-only
//! namespace it would have no candidate. It runs with a small preloaded wrapper of
//! `getifaddrs` (`loopback_shim.c`, compiled here with `cc`) that clears that flag: it then
//! gathers on 127.0.0.1 and nothing else about it changes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::config::JanusConfig;

/// A running Janus.
pub struct JanusServer {
    child: Child,
    /// Its process id, to read its CPU time.
    pub pid: u32,
    /// `http://127.0.0.1:PORT/janus`.
    pub api: String,
}

impl JanusServer {
    /// Writes `config` into `dir` and starts `janus` on it (its log: `dir/janus.log`); returns
    /// once the API answers, within `limit`.
    pub async fn start(
        config: &JanusConfig,
        dir: &Path,
        limit: Duration,
    ) -> anyhow::Result<JanusServer> {
        let core = config.write(dir)?;
        let shim = build_shim(dir)?;
        let log = std::fs::File::create(dir.join("janus.log"))?;
        let mut child = Command::new("janus")
            .arg("--config")
            .arg(&core)
            .arg("--disable-colors")
            .arg("--configs-folder")
            .arg(dir)
            .env("LD_PRELOAD", &shim)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting janus (Debian package `janus`)")?;
        let pid = child.id().context("janus exited at once")?;
        let api = format!("http://127.0.0.1:{}/janus", config.http_port);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "janus exited with {status}; see {}/janus.log",
                    dir.display()
                );
            }
            let info = client.get(format!("{api}/info")).send().await;
            if matches!(&info, Ok(r) if r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                bail!("janus did not answer on {api} within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(JanusServer { child, pid, api })
    }

    /// Kills it and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Compiles the `getifaddrs` wrapper into `dir`; returns the library's path.
fn build_shim(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let source = dir.join("loopback_shim.c");
    let library = dir.join("loopback_shim.so");
    std::fs::write(&source, include_str!("loopback_shim.c"))?;
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .context("running cc (Debian package gcc) for the loopback shim")?;
    if !status.success() {
        bail!("cc failed on {}: {status}", source.display());
    }
    Ok(library)
}

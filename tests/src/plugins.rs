//! Plugin folders for tests, made of the workspace's real plugin libraries as cargo built them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use poolgate::bridge::BridgeStatus;
use poolgate::{Config, Gateway};

use crate::browser::{harness_web_root, repo_root};

/// The built library `lib<name>.so` of a workspace plugin crate (`cargo build --release`
/// builds them; `make build` does). Fails loudly when it is missing.
pub fn built_plugin(lib_name: &str) -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("release").join(format!("lib{lib_name}.so"));
    if !path.is_file() {
        bail!(
            "{} is missing: build the plugins with `cargo build --release --workspace` \
             (`make build` does)",
            path.display()
        );
    }
    Ok(path)
}

/// A fresh, empty folder for one test's plugins, removed on drop.
pub struct PluginDir {
    path: PathBuf,
}

impl PluginDir {
    pub fn new(test: &str) -> anyhow::Result<PluginDir> {
        let path =
            std::env::temp_dir().join(format!("poolgate-plugins-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(PluginDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies a workspace plugin's built library in, under its own file name.
    pub fn add_built(&self, lib_name: &str) -> anyhow::Result<PathBuf> {
        self.add_file(&built_plugin(lib_name)?, &format!("lib{lib_name}.so"))
    }

    /// Copies any file in as `name`.
    pub fn add_file(&self, from: &Path, name: &str) -> anyhow::Result<PathBuf> {
        let to = self.path.join(name);
        std::fs::copy(from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        Ok(to)
    }
}

impl Drop for PluginDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The config of a gateway that serves the browser-test page on `listen`, loads the plugins in
/// `dir` and declares `bridges` (TOML `[[bridge]]` entries). `top` holds top-level keys, which
/// TOML wants before the first table.
pub fn gateway_config(
    dir: &Path,
    top: &str,
    listen: &str,
    bridges: &str,
) -> anyhow::Result<String> {
    Ok(format!(
        "{top}[server]\nlisten = {listen:?}\nweb_root = {:?}\n[plugins]\ndir = {:?}\n{bridges}",
        harness_web_root()?.display().to_string(),
        dir.display().to_string(),
    ))
}

/// Starts, in this process, a gateway of [`gateway_config`] on an ephemeral loopback port.
pub async fn start_gateway(dir: &PluginDir, top: &str, bridges: &str) -> anyhow::Result<Gateway> {
    let config = Config::parse(&gateway_config(dir.path(), top, "127.0.0.1:0", bridges)?)
        .map_err(anyhow::Error::msg)?;
    Gateway::start(&config).await
}

/// Waits until bridge `name`'s status satisfies `done`; the error shows the last status.
pub async fn wait_bridge(
    gateway: &Gateway,
    name: &str,
    limit: Duration,
    done: impl Fn(&BridgeStatus) -> bool,
) -> anyhow::Result<BridgeStatus> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let status = gateway.bridges().get(name)?;
        if done(&status) {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("bridge {name} still {status:#?} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

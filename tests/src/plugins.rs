//! Plugin folders for tests, made of the workspace's real plugin libraries as cargo built them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::browser::repo_root;

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

//! [`Plugins`]: the plugin folder, every library in it loaded or refused with its reason.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use thiserror::Error;

use super::check::LoadError;
use super::LoadedPlugin;

/// One library of the plugin folder, as operators see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PluginInfo {
    /// The library file.
    pub file: PathBuf,
    /// The plugin's name, version and summary, when it loaded.
    pub name: Option<String>,
    pub version: Option<String>,
    pub summary: Option<String>,
    /// Why it was refused, when it was.
    pub error: Option<String>,
}

/// Why a bridge's `plugin` could not be found.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum FindError {
    #[error("no plugin named {name:?}{}", describe_dir(dir, loaded))]
    Unknown {
        name: String,
        dir: Option<PathBuf>,
        loaded: Vec<String>,
    },
    #[error("plugin {name:?} was refused: {error}")]
    Refused { name: String, error: LoadError },
}

fn describe_dir(dir: &Option<PathBuf>, loaded: &[String]) -> String {
    match dir {
        None => " (no [plugins] dir is configured)".to_string(),
        Some(dir) if loaded.is_empty() => {
            format!(" in {} (it holds no loaded plugin)", dir.display())
        }
        Some(dir) => format!(" in {} (loaded: {})", dir.display(), loaded.join(", ")),
    }
}

struct Entry {
    file: PathBuf,
    result: Result<Arc<LoadedPlugin>, LoadError>,
}

/// The plugin folder's libraries. Cheap to clone.
#[derive(Clone, Default)]
pub struct Plugins {
    dir: Option<PathBuf>,
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Plugins {
    /// Loads every `*.so` in `dir` (none when `dir` is `None`). A library that is refused is
    /// kept with its reason; a folder that cannot be read is an error.
    pub fn load_dir(dir: Option<&Path>) -> std::io::Result<Plugins> {
        let plugins = Plugins {
            dir: dir.map(Path::to_path_buf),
            entries: Arc::default(),
        };
        let Some(dir) = dir else {
            return Ok(plugins);
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "so"))
            .collect();
        files.sort();
        for file in files {
            // A refused library is logged and kept in the list with its reason.
            let _ = plugins.load_file(&file);
        }
        Ok(plugins)
    }

    /// The plugin folder.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn load_file(&self, file: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        let result = LoadedPlugin::open(file).map(Arc::new);
        match &result {
            Ok(p) => tracing::info!(
                plugin = %p.name,
                version = %p.version,
                "loaded plugin {} from {}",
                p.name,
                file.display()
            ),
            Err(e) => tracing::error!("plugin refused: {e}"),
        }
        if matches!(result, Err(LoadError::NotFound { .. })) {
            // The folder's listing shows what it holds; a missing file is only the caller's error.
            return result;
        }
        let mut entries = self.entries.lock().unwrap();
        entries.retain(|e| e.file != file);
        entries.push(Entry {
            file: file.to_path_buf(),
            result: result.clone(),
        });
        result
    }

    /// Every library tried, loaded or refused, in file order.
    pub fn list(&self) -> Vec<PluginInfo> {
        let entries = self.entries.lock().unwrap();
        entries
            .iter()
            .map(|e| match &e.result {
                Ok(p) => PluginInfo {
                    file: e.file.clone(),
                    name: Some(p.name.clone()),
                    version: Some(p.version.clone()),
                    summary: Some(p.summary.clone()),
                    error: None,
                },
                Err(err) => PluginInfo {
                    file: e.file.clone(),
                    name: None,
                    version: None,
                    summary: None,
                    error: Some(err.to_string()),
                },
            })
            .collect()
    }

    /// The plugin a bridge's `plugin` key names: a loaded plugin's name, or a library file
    /// (a name ending in `.so`, relative to the plugin folder), loaded now if it was not yet.
    pub fn find(&self, name: &str) -> Result<Arc<LoadedPlugin>, FindError> {
        if name.ends_with(".so") {
            let path = match &self.dir {
                Some(dir) => dir.join(name),
                None => PathBuf::from(name),
            };
            let known = self
                .entries
                .lock()
                .unwrap()
                .iter()
                .find(|e| e.file == path)
                .map(|e| e.result.clone());
            let result = match known {
                Some(r) => r,
                None => self.load_file(&path),
            };
            return result.map_err(|error| FindError::Refused {
                name: name.to_string(),
                error,
            });
        }
        let entries = self.entries.lock().unwrap();
        if let Some(p) = entries
            .iter()
            .filter_map(|e| e.result.as_ref().ok())
            .find(|p| p.name == name)
        {
            return Ok(p.clone());
        }
        Err(FindError::Unknown {
            name: name.to_string(),
            dir: self.dir.clone(),
            loaded: entries
                .iter()
                .filter_map(|e| e.result.as_ref().ok())
                .map(|p| p.name.clone())
                .collect(),
        })
    }
}

//! Opening one plugin library: tag first, then the entry point.

use std::path::{Path, PathBuf};

use poolgate_plugin_api::contract::{
    EntryFn, PluginApi, PluginTag, ABI_VERSION, ENTRY_SYMBOL, TAG_SYMBOL,
};

use super::check::{check_tag, LoadError};

/// A plugin library that passed every check. Its library stays loaded for the process's life.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub summary: String,
    pub(crate) api: &'static PluginApi,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

/// The GStreamer this process runs, major and minor.
fn running_gstreamer() -> (u32, u32) {
    let (major, minor, _, _) = gstreamer::version();
    (major, minor)
}

impl LoadedPlugin {
    /// Opens `path`, checks its tag, and only then calls its entry point.
    pub fn open(path: &Path) -> Result<LoadedPlugin, LoadError> {
        if !path.is_file() {
            return Err(LoadError::NotFound { path: path.into() });
        }
        // RTLD_NOW: an unresolved symbol fails here, not as a crash in the middle of a bridge.
        let library = unsafe {
            libloading::os::unix::Library::open(
                Some(path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
            )
        }
        .map_err(|e| LoadError::Open {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let not_a_plugin = |reason: String| LoadError::NotAPlugin {
            path: path.into(),
            reason,
        };
        // Reading the tag runs no plugin code.
        let tag: PluginTag = unsafe {
            let symbol = library
                .get::<*const PluginTag>(TAG_SYMBOL.as_bytes())
                .map_err(|_| not_a_plugin(format!("it exports no {TAG_SYMBOL} symbol")))?;
            let ptr: *const PluginTag = *symbol;
            if ptr.is_null() {
                return Err(not_a_plugin(format!("its {TAG_SYMBOL} is null")));
            }
            std::ptr::read_unaligned(ptr)
        };
        check_tag(path, &tag, running_gstreamer())?;
        let api: &'static PluginApi = unsafe {
            let entry = library
                .get::<EntryFn>(ENTRY_SYMBOL.as_bytes())
                .map_err(|_| not_a_plugin(format!("it exports no {ENTRY_SYMBOL} function")))?;
            let table = entry();
            table.as_ref().ok_or_else(|| LoadError::BadTable {
                path: path.into(),
                reason: "the entry point returned null".into(),
            })?
        };
        if api.abi_version != ABI_VERSION || api.size != std::mem::size_of::<PluginApi>() {
            return Err(LoadError::BadTable {
                path: path.into(),
                reason: format!(
                    "the table says ABI version {} and {} bytes, expected {ABI_VERSION} and {}",
                    api.abi_version,
                    api.size,
                    std::mem::size_of::<PluginApi>()
                ),
            });
        }
        let (name, version, summary) = unsafe {
            (
                api.name.text().into_owned(),
                api.version.text().into_owned(),
                api.summary.text().into_owned(),
            )
        };
        if name.is_empty() {
            return Err(LoadError::BadTable {
                path: path.into(),
                reason: "the plugin has no name".into(),
            });
        }
        // Never unloaded: a Rust cdylib may have registered thread-local destructors, and the
        // table and its strings point into the library.
        std::mem::forget(library);
        Ok(LoadedPlugin {
            path: path.into(),
            name,
            version,
            summary,
            api,
        })
    }

    /// Asks the plugin whether `config` (JSON) is a valid bridge config. The error names the
    /// field.
    pub fn validate_config(&self, config: &serde_json::Value) -> Result<(), super::PluginError> {
        let json = config.to_string();
        super::instance::call(|error| (self.api.validate_config)(json.as_str().into(), error))
    }
}

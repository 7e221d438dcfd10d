//! The check a plugin's tag must pass before any of its code runs. Pure, so every refusal is a
//! unit test.

use std::path::PathBuf;

use poolgate_plugin_api::contract::{PluginTag, ABI_VERSION, MAGIC};
use thiserror::Error;

/// Why a library was not loaded as a plugin.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum LoadError {
    #[error("plugin file {} does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot open {} as a shared library: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("{} is not a poolgate plugin: {reason}", path.display())]
    NotAPlugin { path: PathBuf, reason: String },
    #[error(
        "{} was built for plugin ABI version {plugin}, but this poolgate speaks plugin ABI \
         version {host}: rebuild the plugin against poolgate-plugin-api with ABI version {host}",
        path.display()
    )]
    AbiMismatch {
        path: PathBuf,
        plugin: u32,
        host: u32,
    },
    #[error(
        "{} needs GStreamer {}.{} or newer, but this process runs GStreamer {}.{}",
        path.display(), needs.0, needs.1, runs.0, runs.1
    )]
    GstTooOld {
        path: PathBuf,
        needs: (u32, u32),
        runs: (u32, u32),
    },
    #[error("{} is a poolgate plugin with a broken function table: {reason}", path.display())]
    BadTable { path: PathBuf, reason: String },
}

/// Checks a tag read from `path` against this host's ABI and the running GStreamer.
pub fn check_tag(
    path: &std::path::Path,
    tag: &PluginTag,
    gst: (u32, u32),
) -> Result<(), LoadError> {
    if tag.magic != MAGIC {
        return Err(LoadError::NotAPlugin {
            path: path.into(),
            reason: "its POOLGATE_PLUGIN_TAG does not start with the poolgate magic".into(),
        });
    }
    if tag.abi_version != ABI_VERSION {
        return Err(LoadError::AbiMismatch {
            path: path.into(),
            plugin: tag.abi_version,
            host: ABI_VERSION,
        });
    }
    if tag.tag_size as usize != std::mem::size_of::<PluginTag>() {
        return Err(LoadError::NotAPlugin {
            path: path.into(),
            reason: format!(
                "its tag is {} bytes, ABI version {ABI_VERSION} has {}",
                tag.tag_size,
                std::mem::size_of::<PluginTag>()
            ),
        });
    }
    let needs = (tag.gst_major, tag.gst_minor);
    if needs.0 != gst.0 || needs.1 > gst.1 {
        return Err(LoadError::GstTooOld {
            path: path.into(),
            needs,
            runs: gst,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const GST: (u32, u32) = (1, 22);

    #[test]
    fn the_current_tag_passes() {
        check_tag(Path::new("p.so"), &PluginTag::CURRENT, GST).unwrap();
        check_tag(Path::new("p.so"), &PluginTag::CURRENT, (1, 24)).unwrap();
    }

    #[test]
    fn another_abi_version_is_refused_naming_both() {
        for other in [0, ABI_VERSION + 1, u32::MAX] {
            let tag = PluginTag {
                abi_version: other,
                ..PluginTag::CURRENT
            };
            let err = check_tag(Path::new("old.so"), &tag, GST).unwrap_err();
            assert_eq!(
                err,
                LoadError::AbiMismatch {
                    path: "old.so".into(),
                    plugin: other,
                    host: ABI_VERSION
                }
            );
            let text = err.to_string();
            assert!(
                text.contains(&format!("ABI version {other}"))
                    && text.contains(&format!("ABI version {ABI_VERSION}")),
                "{text}"
            );
        }
    }

    #[test]
    fn a_wrong_magic_is_not_a_plugin() {
        let tag = PluginTag {
            magic: *b"NOTAPLUG",
            ..PluginTag::CURRENT
        };
        let err = check_tag(Path::new("x.so"), &tag, GST).unwrap_err();
        assert!(matches!(err, LoadError::NotAPlugin { .. }), "{err}");
    }

    #[test]
    fn a_wrong_tag_size_is_refused() {
        let tag = PluginTag {
            tag_size: 8,
            ..PluginTag::CURRENT
        };
        let err = check_tag(Path::new("x.so"), &tag, GST).unwrap_err();
        assert!(err.to_string().contains("its tag is 8 bytes"), "{err}");
    }

    #[test]
    fn a_newer_gstreamer_than_ours_is_refused() {
        let tag = PluginTag {
            gst_minor: 24,
            ..PluginTag::CURRENT
        };
        let err = check_tag(Path::new("x.so"), &tag, GST).unwrap_err();
        assert!(
            err.to_string().contains("needs GStreamer 1.24")
                && err.to_string().contains("runs GStreamer 1.22"),
            "{err}"
        );
        let tag = PluginTag {
            gst_major: 2,
            gst_minor: 0,
            ..PluginTag::CURRENT
        };
        assert!(check_tag(Path::new("x.so"), &tag, GST).is_err());
    }
}

//! Where recordings are: the `directory` and `path_template` of every recorder bridge the
//! gateway has run since it started. A stopped recorder's sessions stay listed: its place is
//! remembered after the bridge is gone.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::bridge::{BridgeStatus, Bridges};

/// The recorder plugin's name (its `NAME`).
pub const RECORDER: &str = "recorder";

/// The recorder's default `path_template` (its README).
pub const DEFAULT_TEMPLATE: &str = "{pool}/{session}/{peer}";

/// A folder recordings go under, and how sessions are laid out in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub directory: PathBuf,
    pub path_template: String,
}

impl Place {
    /// The place of a recorder bridge's config, or `None` when it names no directory.
    pub fn of_config(config: &Value) -> Option<Place> {
        let directory = config.get("directory")?.as_str()?;
        if directory.trim().is_empty() {
            return None;
        }
        let path_template = config
            .get("path_template")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_TEMPLATE)
            .to_string();
        Some(Place {
            directory: PathBuf::from(directory),
            path_template,
        })
    }

    /// How many folders down from `directory` a session folder is: the template's components
    /// but the last (the peer's). `None` for a template with no session folder.
    pub fn session_depth(&self) -> Option<usize> {
        let parts = self.path_template.split('/').count();
        (parts >= 2).then(|| parts - 1)
    }
}

/// Whether a bridge runs the recorder plugin: its `plugin` key names it, or names a library
/// the gateway loaded as it.
pub fn is_recorder(bridges: &Bridges, status: &BridgeStatus) -> bool {
    status.plugin == RECORDER
        || bridges
            .plugins()
            .find(&status.plugin)
            .is_ok_and(|p| p.name == RECORDER)
}

/// Every place seen so far, oldest first. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Places(Arc<Mutex<Vec<Place>>>);

impl Places {
    /// Adds a place unless it is known already.
    pub fn remember(&self, place: Place) {
        let mut places = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !places.contains(&place) {
            tracing::debug!(directory = %place.directory.display(), "recordings: a new place");
            places.push(place);
        }
    }

    /// Remembers the places of the recorder bridges running now.
    pub fn remember_bridges(&self, bridges: &Bridges) {
        for status in bridges.list() {
            if is_recorder(bridges, &status) {
                if let Some(place) = Place::of_config(&status.config) {
                    self.remember(place);
                }
            }
        }
    }

    /// Every place, oldest first.
    pub fn all(&self) -> Vec<Place> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_place_from_a_config() {
        let p = Place::of_config(&json!({"directory": "/rec"})).unwrap();
        assert_eq!(p.directory, PathBuf::from("/rec"));
        assert_eq!(p.path_template, DEFAULT_TEMPLATE);
        assert_eq!(p.session_depth(), Some(2));
        let p = Place::of_config(&json!({"directory": "r", "path_template": "s-{session}/{peer}"}))
            .unwrap();
        assert_eq!(p.session_depth(), Some(1));
        assert_eq!(Place::of_config(&json!({"directory": " "})), None);
        assert_eq!(Place::of_config(&json!({})), None);
    }

    #[test]
    fn places_are_remembered_once() {
        let places = Places::default();
        let p = Place::of_config(&json!({"directory": "/rec"})).unwrap();
        places.remember(p.clone());
        places.remember(p.clone());
        assert_eq!(places.all(), vec![p]);
    }
}

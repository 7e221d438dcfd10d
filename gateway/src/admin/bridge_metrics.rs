//! The bridges' and plugins' part of `/metrics`: each bridge's state, restarts and the metrics
//! its plugin reports (`Host::set_metric`), and the plugin folder's libraries.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::bridge::Bridges;

/// The states every scrape shows in `poolgate_bridges`, at 0 when no bridge is in them, so a
/// dashboard's series exist from the start.
const KNOWN_STATES: [&str; 6] = [
    "starting",
    "connecting",
    "live",
    "retrying",
    "failed",
    "stopped",
];

/// The state label of a status: its first word, before any `:` (`failed: camera unreachable`
/// is `failed`, `restarting in 2s` is `restarting`). A status that does not start with a plain
/// word (plugins report free text) is `other`, so labels stay few and clean.
pub fn state_label(status: &str) -> String {
    let word = status
        .split([':', ' '])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let plain = !word.is_empty()
        && word.len() <= 32
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-');
    if plain {
        word
    } else {
        "other".into()
    }
}

/// Registers and fills the bridge and plugin metrics.
pub fn register(registry: &Registry, bridges: &Bridges) -> prometheus::Result<()> {
    let count = IntGaugeVec::new(
        Opts::new("poolgate_bridges", "Bridges now, by state."),
        &["state"],
    )?;
    registry.register(Box::new(count.clone()))?;
    let state = IntGaugeVec::new(
        Opts::new(
            "poolgate_bridge_state",
            "1 for each bridge, labelled with its plugin and its state (the first word of its \
             status).",
        ),
        &["bridge", "plugin", "state"],
    )?;
    registry.register(Box::new(state.clone()))?;
    let restarts = IntCounterVec::new(
        Opts::new(
            "poolgate_bridge_restarts_total",
            "Restarts of each bridge, after failures or through the admin API.",
        ),
        &["bridge", "plugin"],
    )?;
    registry.register(Box::new(restarts.clone()))?;
    let reported = GaugeVec::new(
        Opts::new(
            "poolgate_bridge_metric",
            "The metrics each bridge's plugin reports, by key.",
        ),
        &["bridge", "plugin", "key"],
    )?;
    registry.register(Box::new(reported.clone()))?;

    for s in KNOWN_STATES {
        count.with_label_values(&[s]).set(0);
    }
    for bridge in bridges.list() {
        let label = state_label(&bridge.status);
        count.with_label_values(&[&label]).inc();
        state
            .with_label_values(&[&bridge.name, &bridge.plugin, &label])
            .set(1);
        restarts
            .with_label_values(&[&bridge.name, &bridge.plugin])
            .inc_by(u64::from(bridge.restarts));
        for (key, value) in &bridge.metrics {
            reported
                .with_label_values(&[&bridge.name, &bridge.plugin, key])
                .set(*value);
        }
    }

    let plugins = IntGaugeVec::new(
        Opts::new(
            "poolgate_plugins",
            "Libraries of the plugin folder, loaded or refused.",
        ),
        &["result"],
    )?;
    registry.register(Box::new(plugins.clone()))?;
    plugins.with_label_values(&["loaded"]).set(0);
    plugins.with_label_values(&["refused"]).set(0);
    for p in bridges.plugins().list() {
        let result = if p.error.is_none() {
            "loaded"
        } else {
            "refused"
        };
        plugins.with_label_values(&[result]).inc();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_the_first_plain_word() {
        for (status, label) in [
            ("live", "live"),
            ("starting", "starting"),
            ("failed: no plugin named \"x\"", "failed"),
            ("retrying: camera unreachable", "retrying"),
            ("restarting in 2s", "restarting"),
            ("Connecting", "connecting"),
            ("", "other"),
            ("42 frames", "other"),
            ("état: ok", "other"),
        ] {
            assert_eq!(state_label(status), label, "{status:?}");
        }
    }
}

//! [`Host`]: the [`BridgeHost`] one bridge instance calls. Status, metrics and logs are recorded
//! at once; channel, send and publish requests go to the runner's task, which owns the endpoint.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use poolgate_plugin_api::ChannelSpec;
use tokio::sync::mpsc;

use super::status::Live;
use crate::endpoint::Payload;
use crate::plugin::BridgeHost;
use crate::signalling::EndpointId;

/// A request from the plugin that needs the endpoint.
#[derive(Debug)]
pub enum Request {
    CreateChannel {
        peer: Option<EndpointId>,
        spec: ChannelSpec,
    },
    Send {
        peer: EndpointId,
        label: String,
        payload: Payload,
    },
}

/// The host side of one bridge instance.
pub struct Host {
    pub bridge: String,
    pub plugin: String,
    pub live: Arc<Mutex<Live>>,
    pub requests: mpsc::UnboundedSender<Request>,
    pub pipeline: gst::Pipeline,
}

fn peer_id(peer: &str) -> Result<EndpointId, String> {
    peer.parse::<uuid::Uuid>()
        .map(EndpointId)
        .map_err(|_| format!("{peer:?} is not an endpoint id"))
}

/// A metric key Prometheus can carry.
fn valid_metric_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
}

impl BridgeHost for Host {
    fn log(&self, level: tracing::Level, message: &str) {
        let (bridge, plugin) = (&self.bridge, &self.plugin);
        match level {
            tracing::Level::ERROR => tracing::error!(bridge, plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(bridge, plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(bridge, plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(bridge, plugin, "{message}"),
            _ => tracing::trace!(bridge, plugin, "{message}"),
        }
    }

    fn set_status(&self, status: &str) {
        let mut live = self.live.lock().unwrap();
        if live.status != status {
            tracing::info!(bridge = %self.bridge, "bridge status: {status}");
            live.status = status.to_string();
        }
    }

    fn set_metric(&self, key: &str, value: f64) {
        if !valid_metric_key(key) {
            tracing::warn!(bridge = %self.bridge, "metric {key:?} ignored: use letters, digits and _");
            return;
        }
        self.live
            .lock()
            .unwrap()
            .metrics
            .insert(key.to_string(), value);
    }

    fn create_channel(&self, peer: Option<&str>, spec: ChannelSpec) -> Result<(), String> {
        let peer = peer.map(peer_id).transpose()?;
        self.requests
            .send(Request::CreateChannel { peer, spec })
            .map_err(|_| "the bridge is stopping".to_string())
    }

    fn send(&self, peer: &str, label: &str, payload: Payload) -> Result<(), String> {
        let peer = peer_id(peer)?;
        self.requests
            .send(Request::Send {
                peer,
                label: label.to_string(),
                payload,
            })
            .map_err(|_| "the bridge is stopping".to_string())
    }

    fn publish(&self, _element: gst::Element) -> Result<u64, String> {
        Err("publishing at run time is not available in this poolgate yet".into())
    }

    fn unpublish(&self, id: u64) -> Result<(), String> {
        Err(format!("no publication {id}"))
    }

    fn pipeline(&self) -> gst::Pipeline {
        self.pipeline.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_keys_are_prometheus_safe() {
        for ok in ["messages", "frames_out", "a1"] {
            assert!(valid_metric_key(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "é"] {
            assert!(!valid_metric_key(bad), "{bad}");
        }
    }
}

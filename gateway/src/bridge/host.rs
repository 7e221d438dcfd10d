//! [`Host`]: the [`BridgeHost`] one bridge instance calls. Status, metrics and logs are recorded
//! at once; channel, send and publish requests go to the runner's task, which owns the endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use poolgate_plugin_api::ChannelSpec;
use tokio::sync::mpsc;

use super::status::Live;
use crate::endpoint::{EndpointHandle, MediaSource, Payload, PublicationId};
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
    pub endpoint: EndpointHandle,
    /// The runtime the bridge runs on, for the calls that must wait on the endpoint.
    pub runtime: tokio::runtime::Handle,
}

/// How long `publish` and `unpublish` wait for the endpoint (which answers at once unless it is
/// between two signalling sessions).
const ENDPOINT_ANSWER_LIMIT: Duration = Duration::from_secs(5);

impl Host {
    /// Runs `work` on the bridge's runtime and waits for its result. The contract's publish is
    /// synchronous, and it is called from plugin code on the bridge's own task (or any thread),
    /// so the wait must not hold up a runtime worker: inside the runtime it is a
    /// `block_in_place`.
    fn wait_for<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(tokio::time::timeout(ENDPOINT_ANSWER_LIMIT, work).await);
        });
        let wait = || rx.recv_timeout(ENDPOINT_ANSWER_LIMIT + Duration::from_secs(1));
        let result = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => {
                return Err("cannot wait for the endpoint on a current-thread runtime".into())
            }
            Ok(_) => tokio::task::block_in_place(wait),
            Err(_) => wait(),
        };
        match result {
            Ok(Ok(value)) => Ok(value),
            _ => Err(format!(
                "the endpoint did not answer within {ENDPOINT_ANSWER_LIMIT:?} (reconnecting?)"
            )),
        }
    }

    /// Publishes `source` on the bridge's endpoint and waits for its id.
    fn publish_media(&self, source: MediaSource) -> Result<PublicationId, String> {
        let endpoint = self.endpoint.clone();
        self.wait_for(async move { endpoint.publish(source).await })?
            .map_err(|e| format!("{e:#}"))
    }
}

/// What the contract asks of an element a plugin publishes: no parent yet, a `src` pad.
fn publishable(element: &gst::Element) -> Result<(), String> {
    use gstreamer::prelude::*;
    if element.parent().is_some() {
        return Err(format!("{} is already in a bin", element.name()));
    }
    if element.static_pad("src").is_none() {
        return Err(format!("{} has no `src` pad", element.name()));
    }
    Ok(())
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
            tracing::Level::ERROR => tracing::error!(%bridge, %plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(%bridge, %plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(%bridge, %plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(%bridge, %plugin, "{message}"),
            _ => tracing::trace!(%bridge, %plugin, "{message}"),
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

    fn publish(&self, element: gst::Element) -> Result<u64, String> {
        publishable(&element)?;
        let id = self.publish_media(MediaSource::Element(element))?;
        tracing::info!(bridge = %self.bridge, publication = %id, "the bridge publishes a source");
        // Contract ids start at 1 (0 means failure).
        Ok(id.0 + 1)
    }

    fn publish_alternatives(&self, elements: Vec<gst::Element>) -> Result<u64, String> {
        for element in &elements {
            publishable(element)?;
        }
        let count = elements.len();
        let id = self.publish_media(MediaSource::Alternatives(elements))?;
        tracing::info!(bridge = %self.bridge, publication = %id, count,
            "the bridge publishes a source in alternative formats");
        Ok(id.0 + 1)
    }

    fn unpublish(&self, id: u64) -> Result<(), String> {
        let Some(inner) = id.checked_sub(1) else {
            return Err("no publication 0".into());
        };
        let endpoint = self.endpoint.clone();
        let found = self.wait_for(async move { endpoint.unpublish(PublicationId(inner)).await })?;
        if found {
            Ok(())
        } else {
            Err(format!("no publication {id}"))
        }
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

//! The camera plugin: a bridge that publishes an RTSP camera (or a test pattern with a clock
//! and a tone) to every peer of its pool. H.264 and VP8 video and PCMU, PCMA and Opus audio go
//! through as the camera sends them (H.264 in any profile but constrained baseline also as a
//! constrained-baseline fallback, encoded once for the peers that refuse the camera's profile,
//! while some do); anything else is transcoded once for every peer (video to VP8 or H.264, audio
//! to Opus). The camera reconnects with capped exponential backoff while the
//! published streams stay, so peers get video back without renegotiating.
//!
//! See the README's "Camera bridge" section for the config and the statuses.

use std::collections::HashSet;

use poolgate_plugin_api::{export_plugin, Event, Host, Plugin};

pub mod config;
pub mod pipeline;
pub mod publish;
pub mod source;
pub mod supervise;

use config::Config;
use supervise::supervisor::Supervisor;

/// One running camera bridge.
pub struct Camera {
    host: Host,
    supervisor: Supervisor,
    /// Peers whose connection is up.
    viewers: HashSet<String>,
}

impl Plugin for Camera {
    const NAME: &'static str = "camera";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "publishes an RTSP camera (or a test pattern) to a pool";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), String> {
        config.validate()
    }

    fn start(host: Host, config: Config) -> Result<Self, String> {
        let source = config.source()?;
        let supervisor = Supervisor::start(host.clone(), config, source);
        host.set_metric("viewers", 0.0);
        Ok(Camera {
            host,
            supervisor,
            viewers: HashSet::new(),
        })
    }

    fn on_event(&mut self, event: Event) {
        let before = self.viewers.len();
        match event {
            Event::Joined { .. } => self.viewers.clear(),
            Event::PeerState { id, state } if state == "connected" => {
                // The endpoint asks for a keyframe when it links the peer's branch, before
                // the connection is up: that keyframe is lost to this peer, and a camera that
                // made it on request starts its keyframe interval again. Ask once more now
                // that media reaches the peer.
                let newly_connected = self.viewers.insert(id);
                if newly_connected {
                    self.supervisor.request_keyframe();
                }
            }
            Event::PeerState { id, .. } | Event::PeerLeft { id } => {
                self.viewers.remove(&id);
            }
            _ => {}
        }
        if self.viewers.len() != before {
            self.host.set_metric("viewers", self.viewers.len() as f64);
        }
    }

    fn stop(&mut self) {
        self.supervisor.stop();
    }
}

export_plugin!(Camera);

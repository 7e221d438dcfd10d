//! A test plugin: panics inside `on_message` when a text contains `panic`, echoes anything else. The
//! tests use it to show a panic fails only its own bridge, which then restarts.

use poolgate_plugin_api::{export_plugin, ChannelSpec, Event, Host, Payload, Plugin};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

pub struct Panicky {
    host: Host,
}

impl Plugin for Panicky {
    const NAME: &'static str = "test-panic";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "test plugin: panics on a message containing `panic`";
    type Config = Config;

    fn start(host: Host, _config: Config) -> Result<Self, String> {
        host.set_status("connecting");
        host.create_channel(None, &ChannelSpec::reliable("echo"));
        Ok(Panicky { host })
    }

    fn on_event(&mut self, event: Event) {
        if let Event::Joined { .. } = event {
            self.host.set_status("live");
        }
    }

    fn on_message(&mut self, peer: &str, label: &str, payload: Payload<'_>) {
        if matches!(payload, Payload::Text(t) if t.contains("panic")) {
            panic!("asked to panic by peer {peer}");
        }
        self.host.send(peer, label, payload);
    }
}

export_plugin!(Panicky);

//! The example plugin: a bridge that echoes every data-channel message back to its sender, on
//! the channel it came on (the peer's channels, and the `echo` channel it opens to every peer).

use poolgate_plugin_api::{export_plugin, ChannelSpec, Event, Host, Payload, Plugin};
use serde::Deserialize;

/// The bridge's `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Text put before every echoed text message (default: none).
    #[serde(default)]
    pub prefix: String,
}

/// One running echo bridge.
pub struct Echo {
    host: Host,
    prefix: String,
    echoed: u64,
}

impl Plugin for Echo {
    const NAME: &'static str = "example-echo";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "echoes data-channel messages back to their sender";
    type Config = Config;

    fn start(host: Host, config: Config) -> Result<Self, String> {
        host.set_status("connecting");
        // Our own channel to every peer, so peers that open none can still be echoed.
        host.create_channel(None, &ChannelSpec::reliable("echo"));
        Ok(Echo {
            host,
            prefix: config.prefix,
            echoed: 0,
        })
    }

    fn on_event(&mut self, event: Event) {
        if let Event::Joined { id, pool, .. } = event {
            self.host.info(&format!("joined pool {pool} as {id}"));
            self.host.set_status("live");
        }
    }

    fn on_message(&mut self, peer: &str, label: &str, payload: Payload<'_>) {
        let sent = match payload {
            Payload::Text(text) => {
                let text = format!("{}{text}", self.prefix);
                self.host.send(peer, label, Payload::Text(&text))
            }
            Payload::Binary(bytes) => self.host.send(peer, label, Payload::Binary(bytes)),
        };
        if sent {
            self.echoed += 1;
            self.host.set_metric("messages_echoed", self.echoed as f64);
        }
    }
}

export_plugin!(Echo);

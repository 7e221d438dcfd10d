//! The example plugin: a bridge that echoes every data-channel message back to its sender, on
//! the channel it came on (the peer's channels, and the `echo` channel it opens to every peer),
//! and publishes every peer's video back into the pool, so a page sees itself.

use std::collections::HashMap;

use poolgate_plugin_api::gst::{self, prelude::*};
use poolgate_plugin_api::{export_plugin, ChannelSpec, Event, Host, Payload, Plugin, TrackInfo};
use serde::Deserialize;

/// The bridge's `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Text put before every echoed text message (default: none).
    #[serde(default)]
    pub prefix: String,
    /// Publish each peer's video back into the pool (default: true).
    #[serde(default = "yes")]
    pub loop_video: bool,
}

fn yes() -> bool {
    true
}

/// One running echo bridge.
pub struct Echo {
    host: Host,
    config: Config,
    echoed: u64,
    /// Looped-back tracks: track id -> (our publication, the tee pad feeding it).
    loops: HashMap<String, (u64, gst::Pad)>,
}

impl Plugin for Echo {
    const NAME: &'static str = "example-echo";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str = "echoes data-channel messages and loops back each peer's video";
    type Config = Config;

    fn start(host: Host, config: Config) -> Result<Self, String> {
        host.set_status("connecting");
        // Our own channel to every peer, so peers that open none can still be echoed. It is also
        // needed today: an endpoint that publishes nothing and opens no channel renegotiates
        // without end with a page that sends a camera and opens a channel (an endpoint issue).
        host.create_channel(None, &ChannelSpec::reliable("echo"));
        Ok(Echo {
            host,
            config,
            echoed: 0,
            loops: HashMap::new(),
        })
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Joined { id, pool, .. } => {
                self.host.info(&format!("joined pool {pool} as {id}"));
                self.host.set_status("live");
            }
            Event::TrackRemoved { id, .. } => {
                // The host already released the tee pad; our publication has nothing to send.
                if let Some((publication, _pad)) = self.loops.remove(&id) {
                    self.host.unpublish(publication);
                    self.host
                        .set_metric("videos_looped", self.loops.len() as f64);
                }
            }
            _ => {}
        }
    }

    fn on_message(&mut self, peer: &str, label: &str, payload: Payload<'_>) {
        let sent = match payload {
            Payload::Text(text) => {
                let text = format!("{}{text}", self.config.prefix);
                self.host.send(peer, label, Payload::Text(&text))
            }
            Payload::Binary(bytes) => self.host.send(peer, label, Payload::Binary(bytes)),
        };
        if sent {
            self.echoed += 1;
            self.host.set_metric("messages_echoed", self.echoed as f64);
        }
    }

    fn on_track(&mut self, track: TrackInfo, source: gst::Element) {
        if !self.config.loop_video || track.kind != "video" {
            return;
        }
        match self.loop_back(&track, &source) {
            Ok(()) => self
                .host
                .set_metric("videos_looped", self.loops.len() as f64),
            Err(e) => self.host.warn(&format!(
                "cannot loop back {} ({}): {e}",
                track.id, track.codec
            )),
        }
    }
}

impl Echo {
    /// Re-payloads the track (still encoded: nothing is decoded) and publishes it.
    fn loop_back(&mut self, track: &TrackInfo, source: &gst::Element) -> Result<(), String> {
        let payloader = match track.codec.as_str() {
            "VP8" => "rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit",
            "H264" => "rtph264pay pt=102 mtu=1200 config-interval=-1 aggregate-mode=zero-latency",
            other => return Err(format!("no payloader for {other} in this example")),
        };
        let caps = format!(
            "application/x-rtp,media=video,encoding-name={},payload={},clock-rate=90000",
            track.codec,
            if track.codec == "VP8" { 96 } else { 102 }
        );
        let description =
            format!("queue leaky=downstream max-size-buffers=100 ! {payloader} ! capsfilter caps=\"{caps}\"");
        let bin =
            gst::parse::bin_from_description(&description, true).map_err(|e| e.to_string())?;
        let publication = self.host.publish(bin.upcast_ref())?;
        // Published: the bin is in the endpoint's pipeline now, beside the track's tee.
        let pad = source
            .request_pad_simple("src_%u")
            .ok_or("the track's tee gave no pad")?;
        let sink = bin
            .static_pad("sink")
            .ok_or("the loop bin has no sink pad")?;
        if let Err(e) = pad.link(&sink) {
            source.release_request_pad(&pad);
            self.host.unpublish(publication);
            return Err(format!("linking the track to the loop: {e}"));
        }
        self.host
            .info(&format!("looping back {} of peer {}", track.id, track.peer));
        self.loops.insert(track.id.clone(), (publication, pad));
        Ok(())
    }
}

export_plugin!(Echo);

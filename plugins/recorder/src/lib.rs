//! The recorder plugin: a bridge that records every peer of its pool to segmented files that
//! play on their own (WebM, Matroska or MP4), without transcoding, with a JSON index per
//! session. See the README's "Recorder bridge" section.

pub mod clock;
pub mod composite;
pub mod config;
pub mod index;
pub mod layout;
mod probe;
mod recbin;
mod recording;
pub mod schedule;
mod session;

use poolgate_plugin_api::gst;
use poolgate_plugin_api::{export_plugin, ChannelSpec, Event, Host, Plugin, TrackInfo};

use composite::CompositeSession;
pub use config::Config;
use session::Session;

/// One running recorder bridge: per peer, or one composite for the pool.
pub struct Recorder {
    session: Mode,
}

enum Mode {
    PerPeer(Session),
    Composite(CompositeSession),
}

/// Both modes take the same calls.
macro_rules! each_mode {
    ($mode:expr, $s:ident => $call:expr) => {
        match $mode {
            Mode::PerPeer($s) => $call,
            Mode::Composite($s) => $call,
        }
    };
}

impl Plugin for Recorder {
    const NAME: &'static str = "recorder";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const SUMMARY: &'static str =
        "records every peer of a pool to segmented, playable files, without transcoding";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), String> {
        config.check()
    }

    fn start(host: Host, config: Config) -> Result<Self, String> {
        host.set_status("connecting");
        // An endpoint that publishes nothing and opens no channel renegotiates without end
        // with a page that sends a camera and opens a channel (see the example plugin).
        host.create_channel(None, &ChannelSpec::reliable("recorder"));
        let session = if config.composite {
            Mode::Composite(CompositeSession::start(host, config)?)
        } else {
            Mode::PerPeer(Session::start(host, config)?)
        };
        Ok(Recorder { session })
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Joined { pool, .. } => each_mode!(&self.session, s => s.joined(&pool)),
            Event::PeerJoined { id, description }
            | Event::DescriptionChanged { id, description } => {
                each_mode!(&self.session, s => s.peer_described(&id, description))
            }
            Event::PeerLeft { id } => each_mode!(&self.session, s => s.peer_left(&id)),
            Event::TrackRemoved { peer, id } => {
                each_mode!(&self.session, s => s.track_removed(&peer, &id))
            }
            _ => {}
        }
    }

    fn on_track(&mut self, track: TrackInfo, source: gst::Element) {
        each_mode!(&self.session, s => s.track(track, source));
    }

    fn stop(&mut self) {
        each_mode!(&mut self.session, s => s.stop());
    }
}

export_plugin!(Recorder);

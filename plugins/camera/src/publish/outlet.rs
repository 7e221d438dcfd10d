//! An outlet: one published stream in the endpoint's pipeline, `appsrc ! payloader ! caps`. The
//! camera's pipeline is a separate one that comes and goes with the camera; the outlet stays, so
//! peers keep their transceivers (and RTP sequence numbers go on) across camera reconnects.

use poolgate_plugin_api::gst::{self, prelude::*};
use poolgate_plugin_api::Host;

use super::codec::RtpCodec;

/// Called (on a GStreamer thread) when a peer asks this stream for a keyframe.
pub type KeyframeRequest = Box<dyn Fn() + Send + Sync + 'static>;

/// One published stream.
pub struct Outlet {
    pub codec: RtpCodec,
    appsrc: gstreamer_app::AppSrc,
    publication: u64,
}

impl Outlet {
    /// Builds and publishes an outlet for encoded media with `caps`.
    pub fn open(
        host: &Host,
        codec: RtpCodec,
        caps: &gst::Caps,
        on_keyframe_request: KeyframeRequest,
    ) -> Result<Outlet, String> {
        let description = format!(
            "appsrc name=src ! {} ! capsfilter caps=\"{}\"",
            codec.payloader_description(),
            codec.rtp_caps()
        );
        let bin = gst::parse::bin_from_description(&description, true)
            .map_err(|e| format!("building the {} outlet: {e}", codec.name))?;
        let appsrc = bin
            .by_name("src")
            .and_then(|e| e.downcast::<gstreamer_app::AppSrc>().ok())
            .ok_or("the outlet has no appsrc")?;
        appsrc.set_caps(Some(caps));
        appsrc.set_is_live(true);
        appsrc.set_format(gst::Format::Time);
        // Timestamps are the endpoint's running time when a frame arrives: the camera's own
        // clock and its restarts do not matter to the peers.
        appsrc.set_do_timestamp(true);
        appsrc.set_max_buffers(30);
        appsrc.set_leaky_type(gstreamer_app::AppLeakyType::Downstream);
        appsrc.set_block(false);
        // Peers ask for keyframes with an upstream force-key-unit event (a peer joined, or lost
        // packets); it ends here, so hand it to the camera's pipeline.
        if let Some(pad) = appsrc.static_pad("src") {
            pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                if let Some(gst::PadProbeData::Event(ref e)) = info.data {
                    if e.structure().is_some_and(|s| s.name() == "GstForceKeyUnit") {
                        on_keyframe_request();
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        let publication = host.publish(bin.upcast_ref())?;
        Ok(Outlet {
            codec,
            appsrc,
            publication,
        })
    }

    /// Sends one encoded frame (its timestamps are replaced, see [`Outlet::open`]).
    pub fn push(&self, sample: &gst::Sample) {
        let Some(buffer) = sample.buffer_owned() else {
            return;
        };
        if let Some(caps) = sample.caps_owned() {
            if self.appsrc.caps().as_ref() != Some(&caps) {
                self.appsrc.set_caps(Some(&caps));
            }
        }
        let mut buffer = buffer;
        {
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::NONE);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(gst::ClockTime::NONE);
        }
        let _ = self.appsrc.push_buffer(buffer);
    }

    /// The caps of the frames sent last.
    pub fn caps(&self) -> Option<gst::Caps> {
        self.appsrc.caps()
    }

    /// Stops publishing.
    pub fn close(self, host: &Host) {
        let _ = self.appsrc.end_of_stream();
        host.unpublish(self.publication);
    }
}

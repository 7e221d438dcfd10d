//! An outlet: one published stream in the endpoint's pipeline, `appsrc ! payloader ! caps`. The
//! camera's pipeline is a separate one that comes and goes with the camera; the outlet stays, so
//! peers keep their transceivers (and RTP sequence numbers go on) across camera reconnects.
//!
//! An H.264 stream that not every browser decodes (any profile but constrained baseline) is
//! published in two alternative formats: the camera's bitstream as it is, with its true
//! `profile-level-id`, and a constrained-baseline encode of it (`appsrc ! decode ! openh264enc
//! ! payloader`), made once for every peer that does not accept the camera's profile. The host
//! feeds each peer the one its answer took (see the plugin contract's `publish_alternatives`)
//! and tells the fallback how many peers take it: it is decoded and encoded only while some do.

use poolgate_plugin_api::contract::DEMAND_EVENT;
use poolgate_plugin_api::gst::{self, prelude::*};
use poolgate_plugin_api::Host;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::codec::RtpCodec;

/// Called (on a GStreamer thread) when a peer asks this stream for a keyframe.
pub type KeyframeRequest = Box<dyn Fn() + Send + Sync + 'static>;

/// The second format of an H.264 stream (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// `gst-launch` text from the camera's encoded frames to the fallback's (decode, encode).
    pub transcode: String,
    /// Its `profile-level-id`.
    pub profile_level_id: String,
}

/// The payload type of the constrained-baseline fallback (the camera's H.264 has 102).
const FALLBACK_PAYLOAD: u32 = 103;

/// Extra RTP caps fields of H.264 with `profile_level_id`: they go into the SDP's `a=fmtp`.
pub fn h264_format(profile_level_id: &str) -> String {
    format!(
        ",packetization-mode=(string)1,profile-level-id=(string){profile_level_id},level-asymmetry-allowed=(string)1"
    )
}

/// One published stream.
pub struct Outlet {
    pub codec: RtpCodec,
    /// The camera's frames go into each: the stream as it is, then the fallback's input.
    appsrcs: Vec<gstreamer_app::AppSrc>,
    publication: u64,
    /// Whether a fallback is published (one encoder, whatever the number of peers).
    pub fallback: bool,
    /// Some peer takes the fallback: only then are frames decoded and encoded for it. Shared
    /// with the supervisor, which reports it.
    fallback_wanted: Arc<AtomicBool>,
    /// The fallback's decoder must start at a keyframe: set while it is not fed.
    fallback_needs_keyframe: AtomicBool,
}

/// `appsrc name=src ! <middle> ! capsfilter caps=<rtp caps>` as an unparented bin.
fn outlet_bin(
    codec: &RtpCodec,
    caps: &gst::Caps,
    middle: &str,
    rtp_caps: &str,
) -> Result<(gst::Bin, gstreamer_app::AppSrc), String> {
    let description = format!("appsrc name=src ! {middle} ! capsfilter caps=\"{rtp_caps}\"");
    let bin = gst::parse::bin_from_description(&description, true)
        .map_err(|e| format!("building the {} outlet: {e}", codec.name))?;
    let appsrc = bin
        .by_name("src")
        .and_then(|e| e.downcast::<gstreamer_app::AppSrc>().ok())
        .ok_or("the outlet has no appsrc")?;
    configure(&appsrc, caps);
    Ok((bin, appsrc))
}

impl Outlet {
    /// Builds and publishes an outlet for encoded media with `caps`. `format`: extra RTP caps
    /// fields for the SDP (see [`h264_format`]); `fallback`: a second format for peers that do
    /// not take this one (published as alternatives when the host can, else left out).
    pub fn open(
        host: &Host,
        codec: RtpCodec,
        caps: &gst::Caps,
        on_keyframe_request: KeyframeRequest,
        format: &str,
        fallback: Option<&Fallback>,
        fallback_wanted: Arc<AtomicBool>,
    ) -> Result<Outlet, String> {
        let on_keyframe_request: Arc<dyn Fn() + Send + Sync> = Arc::from(on_keyframe_request);
        fallback_wanted.store(false, Ordering::Relaxed);
        let (bin, appsrc) = outlet_bin(
            &codec,
            caps,
            &codec.payloader_description(),
            &format!("{}{format}", codec.rtp_caps()),
        )?;
        // Peers ask for keyframes with an upstream force-key-unit event (a peer joined, or lost
        // packets); it ends here, so hand it to the camera's pipeline.
        let request = on_keyframe_request.clone();
        if let Some(pad) = appsrc.static_pad("src") {
            pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                if let Some(gst::PadProbeData::Event(ref e)) = info.data {
                    if e.structure().is_some_and(|s| s.name() == "GstForceKeyUnit") {
                        request();
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        let mut appsrcs = vec![appsrc];
        let publication = match fallback.filter(|_| host.has_alternatives()) {
            Some(f) => {
                let fallback_caps = codec.rtp_caps().replace(
                    &format!("payload={}", codec.payload),
                    &format!("payload={FALLBACK_PAYLOAD}"),
                );
                let (fallback_bin, fallback_src) = outlet_bin(
                    &codec,
                    caps,
                    &format!(
                        "{} ! {} pt={FALLBACK_PAYLOAD}",
                        f.transcode, codec.payloader
                    ),
                    &format!("{fallback_caps}{}", h264_format(&f.profile_level_id)),
                )?;
                appsrcs.push(fallback_src);
                // The host says how many peers take the fallback: feed its decoder only while
                // some do, from a keyframe the camera is asked for at once.
                let (wanted, request) = (fallback_wanted.clone(), on_keyframe_request.clone());
                if let Some(pad) = fallback_bin.static_pad("src") {
                    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                        if let Some(gst::PadProbeData::Event(ref e)) = info.data {
                            if let Some(s) = e.structure().filter(|s| s.name() == DEMAND_EVENT) {
                                let now = s.get::<u32>("peers").unwrap_or(0) > 0;
                                if now && !wanted.swap(now, Ordering::AcqRel) {
                                    request();
                                }
                                wanted.store(now, Ordering::Release);
                            }
                        }
                        gst::PadProbeReturn::Ok
                    });
                }
                host.publish_alternatives(&[bin.upcast(), fallback_bin.upcast()])?
            }
            None => host.publish(bin.upcast_ref())?,
        };
        Ok(Outlet {
            codec,
            fallback: appsrcs.len() > 1,
            appsrcs,
            publication,
            fallback_wanted,
            fallback_needs_keyframe: AtomicBool::new(true),
        })
    }

    /// Sends one encoded frame (its timestamps are replaced, see [`Outlet::open`]).
    pub fn push(&self, sample: &gst::Sample) {
        let Some(buffer) = sample.buffer_owned() else {
            return;
        };
        let mut buffer = buffer;
        {
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::NONE);
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(gst::ClockTime::NONE);
        }
        let caps = sample.caps_owned();
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        for (n, appsrc) in self.appsrcs.iter().enumerate() {
            if n > 0 {
                if !self.fallback_wanted.load(Ordering::Acquire) {
                    self.fallback_needs_keyframe.store(true, Ordering::Relaxed);
                    continue;
                }
                if !keyframe && self.fallback_needs_keyframe.load(Ordering::Relaxed) {
                    continue;
                }
                self.fallback_needs_keyframe.store(false, Ordering::Relaxed);
            }
            if let Some(caps) = &caps {
                if appsrc.caps().as_ref() != Some(caps) {
                    appsrc.set_caps(Some(caps));
                }
            }
            // A reference each, not a copy.
            let _ = appsrc.push_buffer(buffer.clone());
        }
    }

    /// The caps of the frames sent last.
    pub fn caps(&self) -> Option<gst::Caps> {
        self.appsrcs[0].caps()
    }

    /// Stops publishing.
    pub fn close(self, host: &Host) {
        for appsrc in &self.appsrcs {
            let _ = appsrc.end_of_stream();
        }
        host.unpublish(self.publication);
    }
}

/// A live appsrc for the camera's frames.
fn configure(appsrc: &gstreamer_app::AppSrc, caps: &gst::Caps) {
    appsrc.set_caps(Some(caps));
    appsrc.set_is_live(true);
    appsrc.set_format(gst::Format::Time);
    // Timestamps are the endpoint's running time when a frame arrives: the camera's own
    // clock and its restarts do not matter to the peers.
    appsrc.set_do_timestamp(true);
    appsrc.set_max_buffers(30);
    appsrc.set_leaky_type(gstreamer_app::AppLeakyType::Downstream);
    appsrc.set_block(false);
}

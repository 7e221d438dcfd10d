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
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::codec::RtpCodec;
use super::relay::{sprop_parameter_sets, FrameBatch, Relay};

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
    /// The camera's frames go into each: the stream as it is (unless it is relayed), then the
    /// fallback's input.
    appsrcs: Vec<gstreamer_app::AppSrc>,
    /// Set when the stream as it is goes out as the camera's own RTP packets.
    relay: Option<Mutex<Relaying>>,
    /// The caps of the frames sent last.
    frame_caps: Mutex<Option<gst::Caps>>,
    publication: u64,
    /// Whether a fallback is published (one encoder, whatever the number of peers).
    pub fallback: bool,
    /// Some peer takes the fallback: only then are frames decoded and encoded for it. Shared
    /// with the supervisor, which reports it.
    fallback_wanted: Arc<AtomicBool>,
    /// The fallback's decoder must start at a keyframe: set while it is not fed.
    fallback_needs_keyframe: AtomicBool,
}

/// A relaying outlet's state. The packets are pushed from a pad of our own, on the thread they
/// arrived on: an `appsrc` would hand each one to its own thread, one more wake-up per packet
/// on its way out.
struct Relaying {
    relay: Relay,
    /// Linked to the outlet bin's sink pad.
    pad: gst::Pad,
    /// The packets of the frame coming in.
    batch: FrameBatch,
    /// The outlet bin's element, for the running time packets are stamped with.
    element: gst::Element,
    /// The outlet bin's sink pad, which `pad` feeds once the bin is in the endpoint's pipeline
    /// (adding a bin to a pipeline unlinks its pads from pads outside it).
    sink: gst::Pad,
    /// The camera session's caps were read for parameter sets.
    caps_read: bool,
    /// Where the relay's clock starts.
    origin: Instant,
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
    /// not take this one (published as alternatives when the host can, else left out);
    /// `relay`: the stream as it is comes as the camera's RTP packets ([`Outlet::relay`]), not
    /// as frames.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        host: &Host,
        codec: RtpCodec,
        caps: &gst::Caps,
        on_keyframe_request: KeyframeRequest,
        format: &str,
        fallback: Option<&Fallback>,
        fallback_wanted: Arc<AtomicBool>,
        relay: bool,
    ) -> Result<Outlet, String> {
        let on_keyframe_request: Arc<dyn Fn() + Send + Sync> = Arc::from(on_keyframe_request);
        fallback_wanted.store(false, Ordering::Relaxed);
        let rtp_caps = format!("{}{format}", codec.rtp_caps());
        let mut appsrcs = Vec::new();
        let (bin, relay) = if relay {
            let (bin, relaying) = relay_input(&codec, &rtp_caps, on_keyframe_request.clone())?;
            (bin, Some(Mutex::new(relaying)))
        } else {
            let (bin, appsrc) =
                outlet_bin(&codec, caps, &codec.payloader_description(), &rtp_caps)?;
            // Peers ask for keyframes with an upstream force-key-unit event (a peer joined, or
            // lost packets); it ends here, so hand it to the camera's pipeline.
            let request = on_keyframe_request.clone();
            if let Some(pad) = appsrc.static_pad("src") {
                pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                    if let Some(gst::PadProbeData::Event(ref e)) = info.data {
                        if is_keyframe_request(e) {
                            request();
                        }
                    }
                    gst::PadProbeReturn::Ok
                });
            }
            appsrcs.push(appsrc);
            (bin, None)
        };
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
            fallback: fallback.is_some() && host.has_alternatives(),
            appsrcs,
            relay,
            frame_caps: Mutex::new(Some(caps.clone())),
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
        if let Some(c) = &caps {
            let mut last = self.frame_caps.lock().unwrap();
            if last.as_ref() != Some(c) {
                *last = Some(c.clone());
            }
        }
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        // The fallback's is the last one, when there is a fallback.
        let fallback_at = self.appsrcs.len() - usize::from(self.fallback);
        for (n, appsrc) in self.appsrcs.iter().enumerate() {
            if n >= fallback_at {
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
        self.frame_caps.lock().unwrap().clone()
    }

    /// Whether the stream as it is goes out as the camera's RTP packets.
    pub fn relays(&self) -> bool {
        self.relay.is_some()
    }

    /// Sends one of the camera's RTP packets on (a relaying outlet; see [`super::relay`]).
    /// `caps`: the stream's caps, read when they may carry parameter sets not seen yet.
    pub fn relay(&self, buffer: &gst::BufferRef, caps: impl FnOnce() -> Option<gst::Caps>) {
        let Some(relaying) = &self.relay else {
            return;
        };
        let Ok(map) = buffer.map_readable() else {
            return;
        };
        let mut r = relaying.lock().unwrap();
        if !r.caps_read {
            r.caps_read = true;
            let sprop = caps().and_then(|c| {
                c.structure(0)
                    .and_then(|s| s.get::<String>("sprop-parameter-sets").ok())
            });
            if let Some((sps, pps)) = sprop.and_then(|v| {
                sprop_parameter_sets(&v, |part| {
                    Some(gst::glib::base64_decode(part)).filter(|b| !b.is_empty())
                })
            }) {
                r.relay.set_parameter_sets(sps, pps);
            }
        }
        let now = r.origin.elapsed().as_nanos() as u64;
        let packets = r.relay.relay(map.as_slice(), now);
        drop(map);
        if !r.pad.is_linked() && !r.link() {
            return;
        }
        for packet in packets {
            for frame in r.batch.add(packet) {
                r.push(frame);
            }
        }
    }

    /// A new camera session starts: its packets go on right after the last ones relayed.
    pub fn restart_relay(&self) {
        if let Some(relaying) = &self.relay {
            let mut r = relaying.lock().unwrap();
            // The last session's unfinished frame goes as it is.
            if let Some(frame) = r.batch.take() {
                r.push(frame);
            }
            r.relay.restart();
            r.caps_read = false;
        }
    }

    /// The picture size of a relayed stream, from the last SPS the relay saw.
    pub fn relay_dimensions(&self) -> Option<(u32, u32)> {
        let relaying = self.relay.as_ref()?.lock().unwrap();
        super::sps::dimensions(relaying.relay.sps()?)
    }

    /// Packets the relay put parameter sets in, and camera packets it dropped as not RTP.
    pub fn relay_counts(&self) -> Option<(u64, u64)> {
        let relaying = self.relay.as_ref()?.lock().unwrap();
        Some((relaying.relay.injected, relaying.relay.malformed))
    }

    /// Stops publishing.
    pub fn close(self, host: &Host) {
        for appsrc in &self.appsrcs {
            let _ = appsrc.end_of_stream();
        }
        if let Some(relaying) = &self.relay {
            let r = relaying.lock().unwrap();
            let _ = r.pad.push_event(gst::event::Eos::new());
            let _ = r.pad.set_active(false);
        }
        host.unpublish(self.publication);
    }
}

impl Relaying {
    /// Sends one frame's packets on, as one list. Pushed under the outlet's lock: one stream,
    /// in order, whichever thread a reconnect brings.
    fn push(&self, frame: Vec<Vec<u8>>) {
        let pts = self.element.current_running_time();
        let mut list = gst::BufferList::new_sized(frame.len());
        let list_mut = list.get_mut().expect("a new list");
        for packet in frame {
            let mut buffer = gst::Buffer::from_mut_slice(packet);
            buffer.get_mut().expect("a new buffer").set_pts(pts);
            list_mut.add(buffer);
        }
        // Not linked or flushing: the outlet is not in a playing pipeline (yet, or any more).
        let _ = self.pad.push_list(list);
    }

    /// Links the pad to the outlet bin once the bin is in a pipeline; false before.
    fn link(&self) -> bool {
        let in_pipeline = self.sink.parent().and_then(|bin| bin.parent()).is_some();
        in_pipeline && self.pad.link(&self.sink).is_ok()
    }
}

/// Whether an upstream event is a peer's keyframe request.
fn is_keyframe_request(event: &gst::Event) -> bool {
    event
        .structure()
        .is_some_and(|s| s.name() == "GstForceKeyUnit")
}

/// A relaying outlet's bin (a `funnel` with ghost pads) and the pad of ours that feeds it.
///
/// A frame's packets go on as one buffer list, and every element up to the peers' webrtcbins
/// (funnel, tee, queue, fuse) passes a list on whole, so each peer's send thread wakes once a
/// frame. A `capsfilter` here (a base transform) split each list into single buffers, which
/// woke every peer's thread once a packet; the caps it set are set on our pad instead.
fn relay_input(
    codec: &RtpCodec,
    rtp_caps: &str,
    on_keyframe_request: Arc<dyn Fn() + Send + Sync>,
) -> Result<(gst::Bin, Relaying), String> {
    let ssrc = random_ssrc();
    let rtp_caps = format!("{rtp_caps},ssrc=(uint){ssrc}");
    let caps = rtp_caps
        .parse::<gst::Caps>()
        .map_err(|e| format!("the {} relay caps: {e}", codec.name))?;
    let bin = gst::Bin::new();
    let element = gst::ElementFactory::make("funnel")
        .name("relayed")
        .build()
        .map_err(|e| format!("building the {} outlet: {e}", codec.name))?;
    bin.add(&element)
        .map_err(|e| format!("building the {} outlet: {e}", codec.name))?;
    let ghost = |target: Option<gst::Pad>, name: &str| -> Result<gst::GhostPad, String> {
        let target =
            target.ok_or_else(|| format!("the {} outlet has no {name} pad", codec.name))?;
        let pad = gst::GhostPad::builder_with_target(&target)
            .map_err(|e| format!("the {} outlet's {name} pad: {e}", codec.name))?
            .name(name)
            .build();
        bin.add_pad(&pad)
            .map_err(|e| format!("the {} outlet's {name} pad: {e}", codec.name))?;
        Ok(pad)
    };
    ghost(element.request_pad_simple("sink_%u"), "sink")?;
    ghost(element.static_pad("src"), "src")?;
    let query_caps = caps.clone();
    let pad = gst::Pad::builder(gst::PadDirection::Src)
        .name("relay")
        .event_function(move |_, _, event| {
            if is_keyframe_request(&event) {
                on_keyframe_request();
            }
            true
        })
        .query_function(move |_, _, query| match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                q.set_result(&query_caps);
                true
            }
            // A live source that holds nothing back.
            gst::QueryViewMut::Latency(q) => {
                q.set(true, gst::ClockTime::ZERO, gst::ClockTime::ZERO);
                true
            }
            _ => false,
        })
        .build();
    pad.set_active(true)
        .map_err(|e| format!("the {} relay pad: {e}", codec.name))?;
    let sink = bin.static_pad("sink").ok_or("the outlet has no sink pad")?;
    // Sticky: they are kept on the pad and go downstream before the first packet that can.
    let _ = pad.push_event(gst::event::StreamStart::new(&format!(
        "camera-relay-{ssrc}"
    )));
    let _ = pad.push_event(gst::event::Caps::new(&caps));
    let _ = pad.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
        gst::ClockTime,
    >::new()));
    let relaying = Relaying {
        relay: Relay::new(ssrc, codec.payload as u8, codec.clock_rate),
        pad,
        element,
        sink,
        batch: FrameBatch::default(),
        caps_read: false,
        origin: Instant::now(),
    };
    Ok((bin, relaying))
}

/// An SSRC of our own for a relayed stream (the camera's may change across reconnects).
fn random_ssrc() -> u32 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(Instant::now()) as u32
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The lists that leave a relaying outlet's bin when one frame of `packets` is pushed (a
    /// single buffer counts as a list of 1).
    fn lists_out(packets: usize) -> Vec<usize> {
        gst::init().unwrap();
        let codec = RtpCodec::for_caps("video/x-h264").unwrap();
        let (bin, relaying) = relay_input(&codec, &codec.rtp_caps(), Arc::new(|| {})).unwrap();
        let pipeline = gst::Pipeline::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        // An appsink that takes lists hands each one over whole, as one sample.
        let sink = gstreamer_app::AppSink::builder()
            .sync(false)
            .callbacks(
                gstreamer_app::AppSinkCallbacks::builder()
                    .new_sample(move |appsink| {
                        let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let n = sample.buffer_list().map_or(1, |l| l.len());
                        s.lock().unwrap().push(n);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            )
            .build();
        sink.set_property("buffer-list", true);
        pipeline
            .add_many([bin.upcast_ref::<gst::Element>(), sink.upcast_ref()])
            .unwrap();
        bin.link(&sink).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        assert!(relaying.link(), "the relay pad did not link");
        let frame = (0..packets as u8)
            .map(|seq| {
                let mut packet = vec![0x80, 102, 0, seq, 0, 0, 0, 1, 0, 0, 0, 7];
                packet.extend_from_slice(&[0x41; 100]);
                packet
            })
            .collect();
        relaying.push(frame);
        pipeline.set_state(gst::State::Null).unwrap();
        let out = seen.lock().unwrap().clone();
        out
    }

    #[test]
    fn a_relayed_frame_leaves_the_outlet_as_one_list() {
        assert_eq!(lists_out(5), vec![5]);
    }
}

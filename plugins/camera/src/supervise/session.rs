//! One camera session: the camera's own pipeline, from the source to an `appsink` per kind of
//! media, built from the plan. It lives until the camera fails; the supervisor then builds a
//! new one. Frames go from the appsinks to [`Shared::deliver`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use poolgate_plugin_api::gst::glib::translate::ToGlibPtr;
use poolgate_plugin_api::gst::{self, prelude::*};

use super::failure::Failure;
use super::shared::Shared;
use crate::config::{Config, Source};
use crate::pipeline::plan::{self, Kind};
use crate::source::feedback;

/// A running camera pipeline.
pub struct Session {
    pipeline: gst::Pipeline,
    /// Whether any branch decodes and encodes.
    pub transcoding: Arc<AtomicBool>,
    /// Set once rtspsrc announced all its streams and none could be published.
    pub no_media: Arc<AtomicBool>,
}

impl Session {
    /// Builds the session's pipeline and sets it playing.
    pub fn start(
        config: &Config,
        source: &Source,
        shared: &Arc<Shared>,
    ) -> Result<Session, Failure> {
        let transcoding = Arc::new(AtomicBool::new(false));
        let no_media = Arc::new(AtomicBool::new(false));
        shared.set_relaying(None);
        let url = match source {
            Source::Rtsp(u) => Some(u),
            Source::Test => None,
        };
        let pipeline = match (&config.pipeline, source) {
            (Some(template), _) => {
                let text = plan::custom_pipeline(template, config, url)
                    .map_err(|e| Failure::Other(format!("`pipeline`: {e}")))?;
                // The text may hold the password: errors are scrubbed, never quoted whole.
                let scrub = |m: String| url.map(|u| u.scrub(&m)).unwrap_or(m);
                let p = launch(&text).map_err(|e| Failure::Other(scrub(e)))?;
                transcoding.store(text.contains("enc "), Ordering::Relaxed);
                p
            }
            (None, Source::Test) => {
                let text = plan::test_pipeline(config)
                    .map_err(|e| Failure::Other(format!("test pipeline: {e}")))?;
                transcoding.store(true, Ordering::Relaxed);
                launch(&text).map_err(Failure::Other)?
            }
            (None, Source::Rtsp(u)) => rtsp_pipeline(config, u, shared, &transcoding, &no_media)?,
        };
        for kind in [Kind::Video, Kind::Audio] {
            if let Some(sink) = pipeline.by_name(kind.sink_name()) {
                wire_sink(&sink, kind, shared)?;
            }
        }
        if pipeline.set_state(gst::State::Playing).is_err() {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(Failure::Other("the camera pipeline did not start".into()));
        }
        Ok(Session {
            pipeline,
            transcoding,
            no_media,
        })
    }

    /// The pipeline's bus.
    pub fn bus(&self) -> gst::Bus {
        self.pipeline.bus().expect("a pipeline has a bus")
    }

    /// Stops and drops the pipeline (rtspsrc says TEARDOWN to the camera).
    pub fn stop(self, shared: &Shared) {
        shared.set_sink(Kind::Video, None);
        shared.set_sink(Kind::Audio, None);
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn launch(text: &str) -> Result<gst::Pipeline, String> {
    let element = gst::parse::launch(text).map_err(|e| format!("camera pipeline: {e}"))?;
    element
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the camera pipeline is a single element, not a pipeline".to_string())
}

/// Makes `sink` an appsink delivering `kind` to the outlets.
fn wire_sink(sink: &gst::Element, kind: Kind, shared: &Arc<Shared>) -> Result<(), Failure> {
    let appsink = sink
        .clone()
        .downcast::<gstreamer_app::AppSink>()
        .map_err(|_| Failure::Other(format!("`{}` is not an appsink", kind.sink_name())))?;
    appsink.set_property("sync", false);
    appsink.set_property("enable-last-sample", false);
    appsink.set_max_buffers(8);
    appsink.set_drop(true);
    let to = shared.clone();
    appsink.set_callbacks(
        gstreamer_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                if let Ok(sample) = s.pull_sample() {
                    to.deliver(kind, sample);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    shared.set_sink(kind, Some(sink.clone()));
    Ok(())
}

/// `rtspsrc`, then per announced stream the planned branch into an appsink (or a fakesink).
fn rtsp_pipeline(
    config: &Config,
    url: &crate::source::url::CameraUrl,
    shared: &Arc<Shared>,
    transcoding: &Arc<AtomicBool>,
    no_media: &Arc<AtomicBool>,
) -> Result<gst::Pipeline, Failure> {
    let pipeline = gst::Pipeline::new();
    let mut src = gst::ElementFactory::make("rtspsrc")
        .property("location", url.location())
        .property("latency", config.latency_ms)
        .property_from_str("protocols", config.transport.protocols());
    if let Some(user) = &url.user {
        src = src.property("user-id", user);
    }
    if let Some(password) = &url.password {
        src = src.property("user-pw", password);
    }
    let src = src
        .build()
        .map_err(|e| Failure::Other(format!("rtspsrc: {e}")))?;
    if config.request_keyframes {
        src.connect("on-sdp", false, |args| {
            if let Some(value) = args.get(1) {
                ask_for_pli(value);
            }
            None
        });
    }
    tap_packets(&src, shared, config.request_keyframes);
    pipeline
        .add(&src)
        .map_err(|e| Failure::Other(e.to_string()))?;
    let config = config.clone();
    let shared = shared.clone();
    let transcoding = transcoding.clone();
    let published = Arc::new(std::sync::Mutex::new(Vec::<Kind>::new()));
    let weak = pipeline.downgrade();
    let seen = published.clone();
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let Some(s) = caps
            .as_ref()
            .and_then(|c| c.structure(0).map(|s| s.to_owned()))
        else {
            return;
        };
        let media = s.get::<&str>("media").unwrap_or("");
        let encoding = s.get::<&str>("encoding-name").unwrap_or("");
        let branch = match plan::rtsp_branch(&config, media, encoding) {
            Ok(b) => b,
            Err(e) => {
                shared.note_error(format!("the {media} branch: {e}"));
                None
            }
        };
        // One stream per kind: a second video or audio stream is not published.
        let branch = branch.filter(|b| !seen.lock().unwrap().contains(&b.kind));
        let result = match branch {
            Some(b) => link_branch(&pipeline, pad, &b, &shared).map(|()| {
                if b.transcoding {
                    transcoding.store(true, Ordering::Relaxed);
                }
                seen.lock().unwrap().push(b.kind);
            }),
            None => link_fakesink(&pipeline, pad),
        };
        if let Err(e) = result {
            shared.note_error(format!("the {media} {encoding} stream: {e}"));
        }
    });
    let nothing = no_media.clone();
    src.connect_no_more_pads(move |_| {
        if published.lock().unwrap().is_empty() {
            nothing.store(true, Ordering::Relaxed);
        }
    });
    Ok(pipeline)
}

/// Hands the camera's RTP packets to the relay as rtspsrc receives them: on the receiving
/// thread, ahead of the jitter buffer (which is one more thread to wait for even at 0 ms).
/// Each stream's jitter buffer is made when its first packet comes; the session it belongs to
/// says which stream it is (see [`Shared::deliver_rtp`]). With `feedback` (keyframe requests
/// on), each RTP session to the camera is also switched to the feedback profile (see
/// [`feedback_profile`]).
fn tap_packets(src: &gst::Element, shared: &Arc<Shared>, feedback: bool) {
    let shared = shared.clone();
    src.connect("new-manager", false, move |args| {
        let manager = args.get(1)?.get::<gst::Element>().ok()?;
        let shared = shared.clone();
        manager.connect("new-jitterbuffer", false, move |args| {
            let jitterbuffer = args.get(1)?.get::<gst::Element>().ok()?;
            let session = args.get(2)?.get::<u32>().ok()?;
            if feedback {
                if let Some(manager) = jitterbuffer.parent() {
                    feedback_profile(&manager, session);
                }
            }
            let pad = jitterbuffer.static_pad("sink")?;
            let shared = shared.clone();
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |pad, info| {
                    match &info.data {
                        Some(gst::PadProbeData::Buffer(buffer)) => {
                            shared.deliver_rtp(session, buffer, pad)
                        }
                        Some(gst::PadProbeData::BufferList(list)) => {
                            for buffer in list.iter() {
                                shared.deliver_rtp(session, buffer, pad);
                            }
                        }
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
            None
        });
        None
    });
}

/// Puts RTP session `session` of rtspsrc's rtpbin (`manager`) in the feedback profile (AVPF)
/// from its first packet. rtpsession 1.22 switches a session to AVPF only at its first
/// keyframe request, and until its next regular RTCP report (about 5 s: the AVP interval) it
/// lets no second early one out: measured, a PLI 0.46 s after the first waited 3.8 s (every
/// request meanwhile with it), so a viewer joining soon after another one waited for the
/// camera's own keyframe. In AVPF from the start, the interval that paces early feedback is
/// the bandwidth's (milliseconds on a point-to-point session) and each PLI goes at once.
fn feedback_profile(manager: &gst::Object, session: u32) {
    let Some(session) = manager.emit_by_name::<Option<gst::Element>>("get-session", &[&session])
    else {
        return;
    };
    if session.find_property("rtp-profile").is_some() {
        session.set_property_from_str("rtp-profile", "avpf");
    }
}

/// Adds `a=rtcp-fb:<pt> nack pli` to the camera's video sections (see
/// [`crate::source::feedback`]); `value` is the SDP message of rtspsrc's `on-sdp` signal.
fn ask_for_pli(value: &gst::glib::Value) {
    if !value.type_().is_a(gstreamer_sdp::SDPMessage::static_type()) {
        return;
    }
    // SAFETY: rtspsrc emits `on-sdp` with its own message (a boxed GstSDPMessage, checked
    // above) so that handlers may change it before it configures the streams; nothing else
    // reads or writes it during the emission, and `SDPMessageRef` is its transparent wrapper.
    let sdp = unsafe {
        let ptr = gst::glib::gobject_ffi::g_value_get_boxed(value.to_glib_none().0)
            as *mut gstreamer_sdp::SDPMessageRef;
        match ptr.as_mut() {
            Some(sdp) => sdp,
            None => return,
        }
    };
    for media in sdp.medias_mut() {
        let formats: Vec<String> = media.formats().map(str::to_string).collect();
        let formats: Vec<&str> = formats.iter().map(String::as_str).collect();
        let rtcp_fb: Vec<String> = media
            .attributes()
            .filter(|a| a.key() == "rtcp-fb")
            .filter_map(|a| a.value().map(str::to_string))
            .collect();
        let rtcp_fb: Vec<&str> = rtcp_fb.iter().map(String::as_str).collect();
        let kind = media.media().unwrap_or("").to_string();
        for value in feedback::missing_pli(&kind, &formats, &rtcp_fb) {
            media.add_attribute("rtcp-fb", Some(&value));
        }
    }
}

fn link_branch(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    branch: &plan::Branch,
    shared: &Arc<Shared>,
) -> Result<(), String> {
    // Ghost pads by hand: with a `decodebin` first, the parser's own choice of the unlinked
    // sink pad may be the element after it (whose link waits for decodebin's pads).
    let bin = gst::parse::bin_from_description(
        &format!("identity name=branch-in ! {}", branch.description),
        false,
    )
    .map_err(|e| e.to_string())?;
    let input = bin
        .by_name("branch-in")
        .and_then(|e| e.static_pad("sink"))
        .ok_or("the branch has no input")?;
    let output = bin
        .find_unlinked_pad(gst::PadDirection::Src)
        .ok_or("the branch has no output")?;
    for (name, target) in [("sink", &input), ("src", &output)] {
        let ghost = gst::GhostPad::builder_with_target(target)
            .map_err(|e| e.to_string())?
            .name(name)
            .build();
        bin.add_pad(&ghost).map_err(|e| e.to_string())?;
    }
    let sink = gstreamer_app::AppSink::builder()
        .name(branch.kind.sink_name())
        .build();
    pipeline
        .add_many([bin.upcast_ref::<gst::Element>(), sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    bin.link(&sink).map_err(|e| e.to_string())?;
    wire_sink(sink.upcast_ref(), branch.kind, shared).map_err(|e| e.reason())?;
    sink.sync_state_with_parent().map_err(|e| e.to_string())?;
    bin.sync_state_with_parent().map_err(|e| e.to_string())?;
    pad.link(&bin.static_pad("sink").ok_or("the branch has no sink pad")?)
        .map_err(|e| format!("{e:?}"))?;
    if branch.relay {
        // The relay needs no frames: while no peer takes the fallback, the depayloader and
        // parser would work for nothing. Dropped behind the jitter buffer, not ahead of it:
        // dropped ahead, keyframe requests (RTCP PLI) to the camera were often not answered
        // (measured: a joining viewer's first keyframe p50 454 ms after its connection was up,
        // instead of 54 ms). `Handled`, not `Drop`: the bindings own the packet here and free
        // it themselves (with `Drop` GStreamer 1.22 frees it again, as NULL, and logs a
        // critical each time).
        let (frames, kind) = (shared.clone(), branch.kind);
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                if frames.frames_needed(kind) {
                    gst::PadProbeReturn::Ok
                } else {
                    info.data = None;
                    gst::PadProbeReturn::Handled
                }
            },
        );
        // rtspsrc names its pads recv_rtp_src_<session>_<ssrc>_<payload type>.
        let session = pad
            .name()
            .strip_prefix("recv_rtp_src_")
            .and_then(|rest| rest.split('_').next()?.parse::<u32>().ok());
        match session {
            Some(session) => shared.set_relaying(Some((branch.kind, session))),
            None => return Err(format!("cannot relay from rtspsrc pad {}", pad.name())),
        }
    }
    Ok(())
}

fn link_fakesink(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), String> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .map_err(|e| e.to_string())?;
    pipeline.add(&sink).map_err(|e| e.to_string())?;
    sink.sync_state_with_parent().map_err(|e| e.to_string())?;
    pad.link(&sink.static_pad("sink").unwrap())
        .map_err(|e| format!("{e:?}"))?;
    Ok(())
}

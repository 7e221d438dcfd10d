//! `bench-camera-keyframe`: how long a passthrough camera takes to send a keyframe after the
//! camera bridge asks for one (what a viewer joining mid-stream waits for). One H.264 camera
//! with a long keyframe interval (gst-rtsp-server in this process on 127.0.0.1) feeds the
//! camera plugin's own passthrough chain (`rtspsrc latency=0 ! rtph264depay ! h264parse !
//! appsink`); at times unrelated to the camera's keyframes, the same upstream `GstForceKeyUnit`
//! event the bridge sends for a joining peer goes up from the appsink, and the time to the next
//! keyframe at the appsink is measured, three ways: no request (the wait for the camera's own
//! next keyframe), the request with the camera's SDP as it is (no `a=rtcp-fb`: rtpbin sends
//! nothing), and the request with `a=rtcp-fb:<pt> nack pli` added in rtspsrc's `on-sdp`, as the
//! bridge does (rtpbin sends an RTCP PLI; gst-rtsp-server's encoder answers it). Figures are
//! printed, never asserted.
//!
//! ```text
//! target/release/bench-camera-keyframe --samples 5 --gop-secs 10
//! ```
//!
//! The program first re-executes itself in a network namespace that has only `lo`.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use gstreamer as gst;
use gstreamer::prelude::*;
use poolgate_tests::namespace;
use poolgate_tests::rtsp_server::RtspServer;

/// Time to a keyframe after a request, passthrough camera.
#[derive(Parser, Debug)]
#[command(name = "bench-camera-keyframe")]
struct Cli {
    /// Requests (and baseline waits) per transport.
    #[arg(long, default_value_t = 5)]
    samples: usize,
    /// The camera's keyframe interval.
    #[arg(long, default_value_t = 10)]
    gop_secs: u32,
    /// RTSP lower transports to measure (`udp`, `tcp`).
    #[arg(long, value_delimiter = ',', default_value = "udp,tcp")]
    transports: Vec<String>,
}

fn camera(gop_secs: u32) -> String {
    format!(
        "( videotestsrc is-live=true pattern=ball \
         ! video/x-raw,width=640,height=480,framerate=30/1 \
         ! openh264enc complexity=low rate-control=bitrate bitrate=1000000 gop-size={} \
         ! video/x-h264,profile=constrained-baseline ! h264parse \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        gop_secs * 30
    )
}

fn main() -> ExitCode {
    namespace::enter_loopback_only();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-camera-keyframe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    gst::init()?;
    let server = RtspServer::start(0, &[("/cam", &camera(cli.gop_secs))], None)?;
    println!(
        "camera: H.264 640x480@30, a keyframe every {} s; {} samples per row",
        cli.gop_secs, cli.samples
    );
    println!("transport  mode                 p50 ms   max ms   (each)");
    for transport in &cli.transports {
        for mode in [Mode::None, Mode::Request, Mode::RequestPli] {
            let waits = measure(&server.url(None, "/cam"), transport, mode, cli)?;
            let mut sorted = waits.clone();
            sorted.sort();
            let p50 = sorted[sorted.len() / 2];
            let max = sorted[sorted.len() - 1];
            println!(
                "{transport:<10} {:<20} {p50:>6}   {max:>6}   {waits:?}",
                mode.label()
            );
        }
    }
    server.stop();
    Ok(())
}

/// What happens at each measured moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Nothing: the wait for the camera's own next keyframe.
    None,
    /// The force-key-unit event, the camera's SDP as it is (no `a=rtcp-fb`): what the bridge
    /// did before it added `nack pli`.
    Request,
    /// The event, with `a=rtcp-fb:<pt> nack pli` added to the SDP, as the bridge does now:
    /// rtpbin turns the event into an RTCP PLI to the camera.
    RequestPli,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::None => "no request",
            Mode::Request => "request, camera SDP",
            Mode::RequestPli => "request + nack pli",
        }
    }
}

/// Milliseconds from each moment (a request, or none) to the next keyframe at the appsink.
fn measure(url: &str, transport: &str, mode: Mode, cli: &Cli) -> anyhow::Result<Vec<u64>> {
    let text = format!(
        "rtspsrc name=src location={url} latency=0 protocols={transport} ! rtph264depay \
         ! h264parse config-interval=-1 \
         ! capsfilter caps=\"video/x-h264,stream-format=byte-stream,alignment=au\" \
         ! appsink name=video sync=false max-buffers=8 drop=true emit-signals=false"
    );
    let pipeline = gst::parse::launch(&text)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let sink = pipeline.by_name("video").context("no appsink")?;
    if mode == Mode::RequestPli {
        let src = pipeline.by_name("src").context("no rtspsrc")?;
        src.connect("on-sdp", false, |args| {
            // rtspsrc lets "on-sdp" handlers change the SDP before it configures the streams;
            // the boxed value is that very message.
            let sdp = unsafe {
                let ptr = gst::glib::gobject_ffi::g_value_get_boxed(
                    gst::glib::translate::ToGlibPtr::to_glib_none(&args[1]).0,
                ) as *mut gstreamer_sdp::SDPMessageRef;
                &mut *ptr
            };
            for m in sdp.medias_mut() {
                if m.media() == Some("video") {
                    let pts: Vec<String> = m.formats().map(str::to_string).collect();
                    for pt in pts {
                        m.add_attribute("rtcp-fb", Some(&format!("{pt} nack pli")));
                    }
                }
            }
            None
        });
    }
    let (keyframes, arrivals) = mpsc::channel::<Instant>();
    sink.static_pad("sink").context("no sink pad")?.add_probe(
        gst::PadProbeType::BUFFER,
        move |_, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                if !b.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                    let _ = keyframes.send(Instant::now());
                }
            }
            gst::PadProbeReturn::Ok
        },
    );
    pipeline.set_state(gst::State::Playing)?;
    let limit = Duration::from_secs(u64::from(cli.gop_secs) * 2 + 10);
    arrivals
        .recv_timeout(limit)
        .context("no first keyframe from the camera")?;
    let mut waits = Vec::new();
    for i in 0..cli.samples {
        // Moments spread over the keyframe interval, never right after a keyframe.
        std::thread::sleep(Duration::from_millis(700 + 1300 * i as u64 % 2000));
        while arrivals.try_recv().is_ok() {}
        let asked = Instant::now();
        if mode != Mode::None {
            let event = gst::event::CustomUpstream::builder(
                gst::Structure::builder("GstForceKeyUnit")
                    .field("all-headers", true)
                    .build(),
            )
            .build();
            sink.send_event(event);
        }
        let at = arrivals
            .recv_timeout(limit)
            .context("no keyframe from the camera")?;
        waits.push(at.saturating_duration_since(asked).as_millis() as u64);
    }
    pipeline.set_state(gst::State::Null)?;
    if waits.is_empty() {
        bail!("no samples");
    }
    Ok(waits)
}

//! A real RTSP server (gst-rtsp-server, in this process) on 127.0.0.1, standing in for IP
//! cameras: mount points with `gst-launch` media descriptions, optional basic auth, and a stop
//! that drops every client at once, like a camera losing power.

use std::sync::mpsc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer_rtsp_server::gst_rtsp::RTSPLowerTrans;
use gstreamer_rtsp_server::prelude::*;
use gstreamer_rtsp_server::{
    RTSPAuth, RTSPFilterResult, RTSPMediaFactory, RTSPServer, RTSPToken,
    RTSP_PERM_MEDIA_FACTORY_ACCESS, RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
    RTSP_TOKEN_MEDIA_FACTORY_ROLE,
};

/// An H.264 (constrained baseline, a keyframe every second) camera with G.711 mu-law audio.
pub const H264_PCMU: &str = "( videotestsrc is-live=true pattern=ball \
    ! video/x-raw,width=640,height=480,framerate=30/1 \
    ! openh264enc complexity=low rate-control=bitrate bitrate=1000000 gop-size=30 \
    ! video/x-h264,profile=constrained-baseline ! h264parse \
    ! rtph264pay name=pay0 pt=96 config-interval=-1 \
    audiotestsrc is-live=true wave=sine freq=330 volume=0.2 ! audioconvert ! audioresample \
    ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0 )";

/// [`H264_PCMU`] in the (constrained) High profile, as many IP cameras send it.
pub const H264_HIGH_PCMU: &str = "( videotestsrc is-live=true pattern=ball \
    ! video/x-raw,width=640,height=480,framerate=30/1 \
    ! openh264enc complexity=low rate-control=bitrate bitrate=1000000 gop-size=30 \
    ! video/x-h264,profile=high ! h264parse \
    ! rtph264pay name=pay0 pt=96 config-interval=-1 \
    audiotestsrc is-live=true wave=sine freq=330 volume=0.2 ! audioconvert ! audioresample \
    ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0 )";

/// An MJPEG camera with AAC audio: both need transcoding for browsers.
pub const MJPEG_AAC: &str = "( videotestsrc is-live=true pattern=smpte \
    ! video/x-raw,format=I420,width=320,height=240,framerate=15/1 ! jpegenc quality=60 \
    ! rtpjpegpay name=pay0 pt=26 \
    audiotestsrc is-live=true wave=sine freq=550 volume=0.2 ! audioconvert ! audioresample \
    ! avenc_aac ! aacparse ! rtpmp4gpay name=pay1 pt=97 )";

/// [`H264_PCMU`]'s video (no audio) with a keyframe only every 20 minutes: a viewer that joins
/// after the first one decodes only if the camera answers a keyframe request (RTCP PLI), which
/// gst-rtsp-server does by asking its encoder.
pub const H264_RARE_KEYFRAMES: &str = "( videotestsrc is-live=true pattern=ball \
    ! video/x-raw,width=640,height=480,framerate=30/1 \
    ! openh264enc complexity=low rate-control=bitrate bitrate=1000000 gop-size=36000 \
    ! video/x-h264,profile=constrained-baseline ! h264parse \
    ! rtph264pay name=pay0 pt=96 config-interval=-1 )";

/// An H.265 camera (a keyframe every second, no audio): browsers cannot take it, so the
/// bridge transcodes. Small, so x265 keeps up on a loaded machine.
pub const H265: &str = "( videotestsrc is-live=true pattern=ball \
    ! video/x-raw,width=320,height=240,framerate=15/1 \
    ! x265enc speed-preset=ultrafast tune=zerolatency key-int-max=15 bitrate=300 \
    ! h265parse ! rtph265pay name=pay0 pt=96 config-interval=-1 )";

/// Which RTSP lower transports a mount point accepts (SETUP with another one gets 461).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lower {
    /// UDP (unicast and multicast) and TCP (interleaved): the server's default.
    Any,
    TcpOnly,
    UdpOnly,
}

impl Lower {
    fn protocols(self) -> RTSPLowerTrans {
        match self {
            Lower::Any => RTSPLowerTrans::UDP | RTSPLowerTrans::UDP_MCAST | RTSPLowerTrans::TCP,
            Lower::TcpOnly => RTSPLowerTrans::TCP,
            Lower::UdpOnly => RTSPLowerTrans::UDP,
        }
    }
}

/// A running server.
pub struct RtspServer {
    port: u16,
    main_loop: glib::MainLoop,
    thread: Option<JoinHandle<()>>,
}

impl RtspServer {
    /// Serves `mounts` (path, launch description) on 127.0.0.1:`port` (0: any free port), with
    /// `auth` (user, password) required when given.
    pub fn start(
        port: u16,
        mounts: &[(&str, &str)],
        auth: Option<(&str, &str)>,
    ) -> anyhow::Result<RtspServer> {
        let mounts: Vec<(&str, &str, Lower)> =
            mounts.iter().map(|(p, l)| (*p, *l, Lower::Any)).collect();
        RtspServer::start_with_lower(port, &mounts, auth)
    }

    /// [`RtspServer::start`] with each mount's accepted lower transports.
    pub fn start_with_lower(
        port: u16,
        mounts: &[(&str, &str, Lower)],
        auth: Option<(&str, &str)>,
    ) -> anyhow::Result<RtspServer> {
        gst::init()?;
        let mounts: Vec<Mount> = mounts
            .iter()
            .map(|(p, l, lower)| (p.to_string(), l.to_string(), *lower))
            .collect();
        let auth = auth.map(|(u, p)| (u.to_string(), p.to_string()));
        let (ready_tx, ready) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("rtsp-server-{port}"))
            .spawn(move || {
                let context = glib::MainContext::new();
                let result = context.with_thread_default(|| {
                    serve(&context, port, &mounts, auth.as_ref(), &ready_tx)
                });
                if let Err(e) = result {
                    let _ = ready_tx.send(Err(anyhow!("{e}")));
                }
            })?;
        let (port, main_loop) = ready
            .recv_timeout(std::time::Duration::from_secs(10))
            .context("the RTSP server did not start")??;
        Ok(RtspServer {
            port,
            main_loop,
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtsp://[user:pass@]127.0.0.1:port/path`.
    pub fn url(&self, credentials: Option<(&str, &str)>, path: &str) -> String {
        let who = credentials
            .map(|(u, p)| format!("{u}:{p}@"))
            .unwrap_or_default();
        format!("rtsp://{who}127.0.0.1:{}{path}", self.port)
    }

    /// Drops every client and closes the port.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

type Ready = mpsc::Sender<anyhow::Result<(u16, glib::MainLoop)>>;
/// Path, launch description, accepted lower transports.
type Mount = (String, String, Lower);

fn serve(
    context: &glib::MainContext,
    port: u16,
    mounts: &[Mount],
    auth: Option<&(String, String)>,
    ready: &Ready,
) -> anyhow::Result<()> {
    let server = RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let points = server.mount_points().context("no mount points")?;
    for (path, launch, lower) in mounts {
        let factory = RTSPMediaFactory::new();
        factory.set_launch(launch);
        factory.set_shared(true);
        factory.set_protocols(lower.protocols());
        if auth.is_some() {
            factory.add_role_from_structure(
                &gst::Structure::builder("camera-user")
                    .field(RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                    .build(),
            );
        }
        points.add_factory(path, factory);
    }
    if let Some((user, password)) = auth {
        let a = RTSPAuth::new();
        let token = RTSPToken::builder()
            .field(RTSP_TOKEN_MEDIA_FACTORY_ROLE, "camera-user")
            .build();
        a.add_basic(&RTSPAuth::make_basic(user, password), &token);
        server.set_auth(Some(&a));
    }
    let source = server.attach(Some(context))?;
    let main_loop = glib::MainLoop::new(Some(context), false);
    let bound = u16::try_from(server.bound_port()).context("no bound port")?;
    let _ = ready.send(Ok((bound, main_loop.clone())));
    main_loop.run();
    // Stop: drop the listener and every client (their media stops with them).
    // The source lives on our own context, not the default one `SourceId::remove` looks in.
    if let Some(s) = context.find_source_by_id(&source) {
        s.destroy();
    }
    server.client_filter(Some(&mut |_, _| RTSPFilterResult::Remove));
    while context.iteration(false) {}
    Ok(())
}

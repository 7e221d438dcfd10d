//! A peer's gate: whether its connection is up, for the branches that feed its webrtcbin
//! straight from the source's thread (see [`super::fuse::peer_branch`]).
//!
//! A queue in every peer's branch costs each peer a thread that wakes once a frame: measured
//! with the camera relay, one peer's send thread was about 1 % of a core, and sending from the
//! source's own thread instead cut the cost per viewer by a fifth to a third (and the added
//! latency's p99 by half). But webrtcbin 1.22 blocks a push until it can send: on its sink pad
//! until the transceiver is negotiated, and inside (ahead of the SRTP encoder) until the DTLS
//! keys are set. A queue's thread can wait there; the source's thread must not, or one peer
//! that never connects would stall the source for everyone. So a direct branch passes buffers
//! only while its gate is open, i.e. while the peer connection is `connected` (ICE and DTLS up,
//! keys set), and never into a sink pad that is still blocked; it drops them otherwise, as a
//! peer that is not connected could not use them anyway. The first buffer a direct branch
//! passes after dropping some makes it ask its source for a keyframe, so the peer's picture
//! starts at once (see [`super::fuse`]).

use std::sync::atomic::{AtomicBool, Ordering};

/// One peer connection's gate (see the module doc).
#[derive(Default)]
pub struct Gate {
    open: AtomicBool,
}

impl Gate {
    /// Whether buffers may go to the peer now.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Opens or closes the gate (from webrtcbin's connection state).
    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use gstreamer_app as gst_app;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// `appsrc ! <direct branch> ! appsink`, with a probe counting keyframe requests reaching
    /// the appsrc. Returns the pipeline's ends and the request counter.
    fn direct_branch(
        gate: &Arc<Gate>,
    ) -> (
        gst::Pipeline,
        gst_app::AppSrc,
        gst_app::AppSink,
        Arc<AtomicU64>,
    ) {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let src = gst_app::AppSrc::builder()
            .caps(&gst::Caps::new_empty_simple("application/x-test"))
            .format(gst::Format::Time)
            .build();
        let branch = super::super::fuse::peer_branch("peer", Some(gate)).unwrap();
        let sink = gst_app::AppSink::builder().sync(false).build();
        let elements: [&gst::Element; 3] =
            [src.upcast_ref(), branch.upcast_ref(), sink.upcast_ref()];
        pipeline.add_many(elements).unwrap();
        gst::Element::link_many(elements).unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let r = requests.clone();
        src.static_pad("src").unwrap().add_probe(
            gst::PadProbeType::EVENT_UPSTREAM,
            move |_, info| {
                if let Some(gst::PadProbeData::Event(e)) = &info.data {
                    if e.structure().is_some_and(|s| s.name() == "GstForceKeyUnit") {
                        r.fetch_add(1, Ordering::Relaxed);
                    }
                }
                gst::PadProbeReturn::Ok
            },
        );
        pipeline.set_state(gst::State::Playing).unwrap();
        (pipeline, src, sink, requests)
    }

    /// Pushes `n` buffers and waits until appsrc's thread has taken them all on.
    fn push(src: &gst_app::AppSrc, n: u64) {
        for i in 0..n {
            let mut b = gst::Buffer::with_size(4).unwrap();
            b.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(i));
            src.push_buffer(b).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while src.current_level_buffers() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The last one may still be on its way through the branch.
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Samples the sink has now (waits a little for the streaming thread).
    fn pulled(sink: &gst_app::AppSink, expected: u64) -> u64 {
        let mut n = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while n < expected && Instant::now() < deadline {
            if sink
                .try_pull_sample(gst::ClockTime::from_mseconds(100))
                .is_some()
            {
                n += 1;
            }
        }
        // Nothing more than expected may come either.
        while sink
            .try_pull_sample(gst::ClockTime::from_mseconds(200))
            .is_some()
        {
            n += 1;
        }
        n
    }

    /// Keyframe requests seen so far (they come from a thread of their own: waits a little).
    fn requests_after(requests: &AtomicU64, expected: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        while requests.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(100));
        requests.load(Ordering::Relaxed)
    }

    #[test]
    fn a_closed_gate_drops_and_an_open_one_passes_after_a_keyframe_request() {
        let gate = Arc::new(Gate::default());
        let (pipeline, src, sink, requests) = direct_branch(&gate);
        push(&src, 5);
        assert_eq!(pulled(&sink, 0), 0, "nothing passes a closed gate");
        assert_eq!(requests_after(&requests, 0), 0);
        gate.set_open(true);
        push(&src, 5);
        assert_eq!(pulled(&sink, 5), 5, "an open gate passes everything");
        assert_eq!(
            requests_after(&requests, 1),
            1,
            "the first one passed asked once"
        );
        push(&src, 5);
        assert_eq!(pulled(&sink, 5), 5);
        assert_eq!(
            requests_after(&requests, 1),
            1,
            "nothing was dropped in between"
        );
        gate.set_open(false);
        push(&src, 5);
        assert_eq!(pulled(&sink, 0), 0, "closed again");
        gate.set_open(true);
        push(&src, 1);
        assert_eq!(pulled(&sink, 1), 1);
        assert_eq!(requests_after(&requests, 2), 2, "reopened: asked again");
        pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn an_open_gate_never_pushes_into_a_blocked_pad() {
        let gate = Arc::new(Gate::default());
        gate.set_open(true);
        let (pipeline, src, sink, requests) = direct_branch(&gate);
        // As webrtcbin blocks a sink pad whose transceiver is not negotiated yet.
        let sink_pad = sink.static_pad("sink").unwrap();
        let block = sink_pad
            .add_probe(
                gst::PadProbeType::BLOCK
                    | gst::PadProbeType::BUFFER
                    | gst::PadProbeType::BUFFER_LIST,
                |_, _| gst::PadProbeReturn::Ok,
            )
            .unwrap();
        // A push into the block would hold appsrc's thread there, and the buffer would come
        // out once the block is gone.
        push(&src, 5);
        sink_pad.remove_probe(block);
        assert_eq!(pulled(&sink, 0), 0, "the buffers were dropped, not held");
        push(&src, 3);
        assert_eq!(pulled(&sink, 3), 3);
        assert_eq!(
            requests_after(&requests, 1),
            1,
            "unblocked: asked for a keyframe"
        );
        pipeline.set_state(gst::State::Null).unwrap();
    }
}

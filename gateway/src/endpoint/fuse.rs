//! The fuse between a published source and one peer: whatever that peer's webrtcbin answers a
//! push with, the source and the other peers never see it.
//!
//! A `tee` stops at the first fatal flow return of any branch and hands it back to the source,
//! whose streaming thread then stops: one peer's webrtcbin failing a push (an error inside its
//! RTP bin, a flushing sink pad) would silence that source for every peer. Seen once under load:
//! an Opus source stopped with "streaming stopped, reason error (-5)" coming back through one
//! peer's queue. A `queue` alone does not shield the tee either: once its thread gets an error
//! its sink pad returns that error to every later push. So each peer's branch is
//! `queue ! fuse`, and the fuse turns every non-OK return from webrtcbin into OK (the buffer is
//! dropped for that peer only) and logs the first one.
//!
//! Caps are shielded the same way. A source is encoded once for every peer, so no peer may
//! narrow its caps: a `tee` answers a caps query with what all its branches accept, and one
//! webrtcbin that accepted nothing of the source's caps made that empty, the source failed to
//! negotiate ("streaming stopped, reason not-negotiated") and every peer lost it. Seen in the
//! churn trial, on a reconfigure during a glare between two endpoints. So the fuse answers caps
//! and accept-caps queries itself (anything), and reports a caps event webrtcbin refused as
//! taken (the buffers that follow are then refused, and dropped, for that peer only). Other
//! events and queries pass both ways untouched, keyframe requests from webrtcbin included.
//!
//! The first few peers of a source have no queue: their fuse sends from the source's thread,
//! behind the peer's gate (see [`super::gate`]).

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::ObjectSubclassIsExt;

use super::gate::Gate;

glib::wrapper! {
    /// One peer's fuse (see the module doc). Create with [`Fuse::new`].
    pub struct Fuse(ObjectSubclass<imp::Fuse>) @extends gst::Element, gst::Object;
}

impl Fuse {
    /// A fuse named `name`, for the peer branch it sits in.
    pub fn new(name: &str) -> Fuse {
        glib::Object::builder().property("name", name).build()
    }

    /// How many pushes webrtcbin refused so far (dropped for this peer).
    pub fn refused(&self) -> u64 {
        self.imp()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Asks the source upstream for a keyframe (with its parameter sets).
    pub fn request_keyframe(&self) {
        self.imp().sink.push_event(super::media::keyframe_request());
    }

    /// Passes buffers only while `gate` is open (a direct branch; see [`super::gate`]).
    fn set_gate(&self, gate: &Arc<Gate>) {
        let _ = self.imp().gate.set(gate.clone());
    }
}

/// A peer's sending branch, in a bin with ghost `sink` and `src` pads: `queue ! fuse`, the
/// queue leaky, so a slow peer drops its own oldest buffers rather than stall the tee; or,
/// with a `gate`, the fuse alone, sending from the source's thread while the gate is open
/// (see [`super::gate`]).
pub fn peer_branch(name: &str, gate: Option<&Arc<Gate>>) -> anyhow::Result<gst::Bin> {
    let bin = gst::Bin::builder().name(name).build();
    let fuse = Fuse::new(&format!("{name}-fuse"));
    bin.add(&fuse)?;
    let head = match gate {
        Some(gate) => {
            fuse.set_gate(gate);
            fuse.clone().upcast::<gst::Element>()
        }
        None => {
            let queue = gst::ElementFactory::make("queue")
                .property_from_str("leaky", "downstream")
                .property("max-size-buffers", 200u32)
                .property("max-size-time", 0u64)
                .property("max-size-bytes", 0u32)
                .build()?;
            bin.add(&queue)?;
            queue.link(&fuse)?;
            queue
        }
    };
    let sink = gst::GhostPad::builder_with_target(&head.static_pad("sink").expect("head sink"))?
        .name("sink")
        .build();
    let src = gst::GhostPad::builder_with_target(&fuse.static_pad("src").expect("fuse src"))?
        .name("src")
        .build();
    bin.add_pad(&sink)?;
    bin.add_pad(&src)?;
    Ok(bin)
}

mod imp {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, LazyLock, OnceLock};

    use super::Gate;

    use gstreamer as gst;
    use gstreamer::glib;
    use gstreamer::prelude::*;
    use gstreamer::subclass::prelude::*;

    static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
        gst::DebugCategory::new(
            "poolgatefuse",
            gst::DebugColorFlags::empty(),
            Some("poolgate per-peer fuse"),
        )
    });

    pub struct Fuse {
        pub(super) sink: gst::Pad,
        src: gst::Pad,
        pub(super) refused: AtomicU64,
        /// Set for a direct branch: buffers pass only while it is open.
        pub(super) gate: OnceLock<Arc<Gate>>,
        /// A direct branch dropped buffers since it last passed one.
        held_back: AtomicBool,
    }

    impl Fuse {
        /// Whether a buffer may go on now: always in a queued branch; in a direct one, while
        /// the gate is open and webrtcbin's sink pad does not block (its transceiver is
        /// negotiated), since a push into a block would hold the source's thread.
        fn may_pass(&self) -> bool {
            match self.gate.get() {
                None => true,
                Some(gate) => {
                    let open = gate.is_open() && !self.downstream_blocked();
                    if !open {
                        self.held_back.store(true, Ordering::Relaxed);
                    } else if self.held_back.swap(false, Ordering::Relaxed) {
                        self.ask_for_keyframe();
                    }
                    open
                }
            }
        }

        /// Asks the source for a keyframe: the peer's picture starts now, after frames it did
        /// not get. From a thread of its own, not the source's thread we are on: the request
        /// goes up through the source's elements, which may hold locks while they push to us.
        fn ask_for_keyframe(&self) {
            let fuse = self.obj().clone();
            let spawned = std::thread::Builder::new()
                .name("keyframe-ask".into())
                .spawn(move || fuse.request_keyframe());
            if let Err(e) = spawned {
                tracing::warn!("could not ask for a keyframe for a peer: {e}");
            }
        }

        /// Whether the next pad downstream blocks: our src pad's peer, through the ghost pad
        /// of the bin we are in (its inner side is a proxy pad), i.e. webrtcbin's sink pad.
        fn downstream_blocked(&self) -> bool {
            let mut next = self.src.peer();
            while let Some(pad) = next.take() {
                if pad.is_blocked() {
                    return true;
                }
                let ghost = pad
                    .parent()
                    .and_then(|p| p.downcast::<gst::GhostPad>().ok())
                    .filter(|ghost| ghost.direction() == gst::PadDirection::Src);
                if let Some(ghost) = ghost {
                    if ghost.is_blocked() {
                        return true;
                    }
                    next = ghost.peer();
                }
            }
            false
        }

        fn pushed(&self, result: Result<gst::FlowSuccess, gst::FlowError>) -> gst::FlowSuccess {
            match result {
                Ok(success) => success,
                Err(error) => {
                    if self.refused.fetch_add(1, Ordering::Relaxed) == 0 {
                        // Once per branch: a torn-down peer refuses every push after this.
                        tracing::warn!(
                            branch = %self.obj().name(),
                            "a peer refused media ({error:?}); it is dropped for that peer only"
                        );
                    }
                    gst::debug!(CAT, imp = self, "push refused: {error:?}");
                    gst::FlowSuccess::Ok
                }
            }
        }
    }

    impl Fuse {
        /// Caps and accept-caps are answered here, never by the peer; the rest is forwarded.
        fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
            match query.view_mut() {
                gst::QueryViewMut::Caps(q) => {
                    let caps = q.filter_owned().unwrap_or_else(gst::Caps::new_any);
                    q.set_result(&caps);
                    true
                }
                gst::QueryViewMut::AcceptCaps(q) => {
                    q.set_result(true);
                    true
                }
                _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
            }
        }

        /// A caps event the peer refused is reported as taken: refusing it here would make the
        /// queue before us fail, and the tee hand that failure to the source.
        fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
            if event.type_() != gst::EventType::Caps {
                return gst::Pad::event_default(pad, Some(&*self.obj()), event);
            }
            // Pushed by hand: the default handler drops caps on a pad that does not proxy them.
            if !self.src.push_event(event) {
                tracing::warn!(
                    branch = %self.obj().name(),
                    "a peer refused the source's caps; its media is dropped for that peer only"
                );
            }
            true
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Fuse {
        const NAME: &'static str = "PoolgateFuse";
        type Type = super::Fuse;
        type ParentType = gst::Element;

        fn with_class(klass: &Self::Class) -> Self {
            // The sink pad is not PROXY_CAPS: the peer has no say in the source's caps (see the
            // module doc).
            let proxy = gst::PadFlags::PROXY_ALLOCATION | gst::PadFlags::PROXY_SCHEDULING;
            let sink = gst::Pad::builder_from_template(&klass.pad_template("sink").expect("sink"))
                .chain_function(|_, parent, buffer| {
                    Fuse::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |fuse| match fuse.may_pass() {
                            true => Ok(fuse.pushed(fuse.src.push(buffer))),
                            false => Ok(gst::FlowSuccess::Ok),
                        },
                    )
                })
                .chain_list_function(|_, parent, list| {
                    Fuse::catch_panic_pad_function(
                        parent,
                        || Err(gst::FlowError::Error),
                        |fuse| match fuse.may_pass() {
                            true => Ok(fuse.pushed(fuse.src.push_list(list))),
                            false => Ok(gst::FlowSuccess::Ok),
                        },
                    )
                })
                .query_function(|pad, parent, query| {
                    Fuse::catch_panic_pad_function(
                        parent,
                        || false,
                        |fuse| fuse.sink_query(pad, query),
                    )
                })
                .event_function(|pad, parent, event| {
                    Fuse::catch_panic_pad_function(
                        parent,
                        || false,
                        |fuse| fuse.sink_event(pad, event),
                    )
                })
                .flags(proxy)
                .build();
            // Upstream, webrtcbin's caps queries still reach the source: it builds m-lines
            // from the answer.
            let src = gst::Pad::builder_from_template(&klass.pad_template("src").expect("src"))
                .flags(proxy | gst::PadFlags::PROXY_CAPS)
                .build();
            Fuse {
                sink,
                src,
                refused: AtomicU64::new(0),
                gate: OnceLock::new(),
                held_back: AtomicBool::new(false),
            }
        }
    }

    impl ObjectImpl for Fuse {
        fn constructed(&self) {
            self.parent_constructed();
            let obj = self.obj();
            obj.add_pad(&self.sink).expect("adding the sink pad");
            obj.add_pad(&self.src).expect("adding the src pad");
        }
    }

    impl GstObjectImpl for Fuse {}

    impl ElementImpl for Fuse {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "poolgate fuse",
                    "Generic",
                    "Passes data on and never returns a flow error upstream",
                    "poolgate",
                )
            });
            Some(&META)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let any = gst::Caps::new_any();
                vec![
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &any,
                    )
                    .expect("sink template"),
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &any,
                    )
                    .expect("src template"),
                ]
            });
            TEMPLATES.as_ref()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gstreamer_app as gst_app;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    /// How the first branch's sink fails.
    #[derive(Clone, Copy)]
    enum Failure {
        /// It fails every buffer.
        Flow,
        /// It takes no caps the source can produce (video, from an audio source).
        Caps,
    }

    /// A tee with two branches; the first ends in a sink that fails as `failure` says. Returns
    /// how many buffers the second branch got with caps and whether it saw the end of the
    /// stream, once it has, or after an error on the bus, or after 20 s.
    fn run(first_branch_fused: bool, failure: Failure) -> (u64, bool) {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let src = gst::ElementFactory::make("audiotestsrc")
            .property("num-buffers", 100i32)
            .build()
            .unwrap();
        let tee = gst::ElementFactory::make("tee")
            .property("allow-not-linked", true)
            .build()
            .unwrap();
        let video = gst::Caps::new_empty_simple("video/x-raw");
        let failing = match failure {
            Failure::Flow => gst_app::AppSink::builder().callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(|_| Err(gst::FlowError::Error))
                    .build(),
            ),
            Failure::Caps => gst_app::AppSink::builder().caps(&video),
        }
        .sync(false)
        .build();
        let counted = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicBool::new(false));
        let (seen, end) = (counted.clone(), ended.clone());
        let healthy = gst_app::AppSink::builder()
            .sync(false)
            .callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        // Counted only with caps: the fuse must pass them on.
                        if s.pull_sample().is_ok_and(|s| s.caps().is_some()) {
                            seen.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .eos(move |_| end.store(true, Ordering::Relaxed))
                    .build(),
            )
            .build();
        let first: gst::Element = if first_branch_fused {
            peer_branch("first", None).unwrap().upcast()
        } else {
            gst::ElementFactory::make("queue").build().unwrap()
        };
        let second = peer_branch("second", None).unwrap();
        pipeline
            .add_many([
                &src,
                &tee,
                &first,
                failing.upcast_ref(),
                second.upcast_ref(),
                healthy.upcast_ref(),
            ])
            .unwrap();
        src.link(&tee).unwrap();
        tee.link(&first).unwrap();
        // Linked without a caps check: the sink's caps are the failure under test.
        first
            .static_pad("src")
            .unwrap()
            .link_full(
                &failing.static_pad("sink").unwrap(),
                gst::PadLinkCheck::empty(),
            )
            .unwrap();
        tee.link(&second).unwrap();
        second.link(&healthy).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !ended.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            let error = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(50),
                &[gst::MessageType::Error],
            );
            if error.is_some() {
                break;
            }
        }
        pipeline.set_state(gst::State::Null).unwrap();
        (
            counted.load(Ordering::Relaxed),
            ended.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn a_failing_peer_does_not_stop_the_source_for_the_others() {
        let (got, eos) = run(true, Failure::Flow);
        assert_eq!(got, 100, "the healthy peer got every buffer");
        assert!(eos, "the source ran to its end");
    }

    #[test]
    fn without_the_fuse_a_failing_branch_stops_the_source() {
        // What the fuse is for: a plain queue hands the error back through the tee.
        // (The source then ends its stream early: the healthy branch sees EOS all the same.)
        let (got, _) = run(false, Failure::Flow);
        assert!(got < 100, "got {got}");
    }

    #[test]
    fn a_peer_that_takes_none_of_the_caps_does_not_stop_the_source() {
        let (got, eos) = run(true, Failure::Caps);
        assert_eq!(got, 100, "the healthy peer got every buffer");
        assert!(eos, "the source ran to its end");
    }

    #[test]
    fn without_the_fuse_a_peer_that_takes_none_of_the_caps_stops_the_source() {
        // The tee's caps query intersects every branch's answer: empty, so the source cannot
        // negotiate and stops before the healthy branch gets anything.
        let (got, _) = run(false, Failure::Caps);
        assert_eq!(got, 0);
    }
}

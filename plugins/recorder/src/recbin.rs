//! The bin a recording lives in. It catches what its splitmuxsink posts before it reaches the
//! endpoint's pipeline bus (which belongs to the host, and which nobody here may watch):
//! segment boundaries, the end of the last segment, and errors. An error stays in the bin, so a
//! full disk stops this recording and nothing else.

use poolgate_plugin_api::gst;
use poolgate_plugin_api::gst::glib;
use poolgate_plugin_api::gst::subclass::prelude::*;

/// What a recording reports, from a streaming thread.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A segment file was opened; `running_time` in nanoseconds.
    SegmentOpened { location: String, running_time: u64 },
    /// A segment file was finished: it plays on its own.
    SegmentClosed { location: String, running_time: u64 },
    /// The last segment is finished: the recording can be removed.
    Finished,
    /// The recording cannot go on.
    Failed(Failure),
}

/// Why a recording stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// A file could not be opened or written (no space, no permission, ...).
    pub write: bool,
    pub text: String,
    /// The failing element's path (`/pipeline0/composite/in-3/vp8dec0`), to tell a composite's
    /// failed input from the composite itself.
    pub source: String,
}

/// Called with each [`Notice`] from GStreamer's streaming threads: must not block.
pub type Notify = Box<dyn Fn(Notice) + Send + Sync>;

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct RecordingBin {
        pub(super) notify: std::sync::OnceLock<Notify>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for RecordingBin {
        const NAME: &'static str = "PoolgateRecordingBin";
        type Type = super::RecordingBin;
        type ParentType = gst::Bin;
    }

    impl ObjectImpl for RecordingBin {}
    impl GstObjectImpl for RecordingBin {}
    impl ElementImpl for RecordingBin {}

    impl BinImpl for RecordingBin {
        fn handle_message(&self, message: gst::Message) {
            match notice(&message) {
                Some(n) => {
                    if let Some(notify) = self.notify.get() {
                        notify(n);
                    }
                }
                None => self.parent_handle_message(message),
            }
        }
    }

    fn notice(message: &gst::Message) -> Option<Notice> {
        use gst::MessageView;
        match message.view() {
            MessageView::Element(e) => {
                let s = e.structure()?;
                let location = s.get::<String>("location").unwrap_or_default();
                let running_time = s.get::<u64>("running-time").unwrap_or(0);
                match s.name().as_str() {
                    "splitmuxsink-fragment-opened" => Some(Notice::SegmentOpened {
                        location,
                        running_time,
                    }),
                    "splitmuxsink-fragment-closed" => Some(Notice::SegmentClosed {
                        location,
                        running_time,
                    }),
                    _ => None,
                }
            }
            MessageView::Eos(_) => Some(Notice::Finished),
            MessageView::Error(e) => {
                let mut reason = e.error().to_string();
                // filesink puts the system's words ("No space left on device") in the debug text.
                if let Some(system) = e
                    .debug()
                    .and_then(|d| d.split("system error: ").nth(1).map(str::to_string))
                {
                    reason = format!("{reason} ({system})");
                }
                let error = e.error();
                let write = matches!(
                    error.kind::<gst::ResourceError>(),
                    Some(
                        gst::ResourceError::OpenWrite
                            | gst::ResourceError::OpenReadWrite
                            | gst::ResourceError::Write
                            | gst::ResourceError::NoSpaceLeft
                            | gst::ResourceError::Close
                            | gst::ResourceError::Sync
                    )
                );
                Some(Notice::Failed(Failure {
                    write,
                    text: reason,
                    source: e
                        .src()
                        .map(|s| gst::prelude::GstObjectExt::path_string(s).to_string())
                        .unwrap_or_default(),
                }))
            }
            _ => None,
        }
    }
}

glib::wrapper! {
    /// A `GstBin` that hands its recording's messages to a [`Notify`] instead of the bus.
    pub struct RecordingBin(ObjectSubclass<imp::RecordingBin>)
        @extends gst::Bin, gst::Element, gst::Object;
}

impl RecordingBin {
    pub fn new(name: &str, notify: Notify) -> RecordingBin {
        // async-handling: the sinks' preroll stays inside this bin, so adding a recording to
        // the running pipeline never sends that pipeline back to PAUSED.
        let bin: RecordingBin = glib::Object::builder()
            .property("name", name)
            .property("async-handling", true)
            .build();
        let _ = bin.imp().notify.set(notify);
        bin
    }
}

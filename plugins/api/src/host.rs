//! [`Host`]: what a bridge asks of poolgate, as safe Rust over [`crate::contract::HostApi`].

use std::ffi::c_void;

use gstreamer as gst;
use gstreamer::glib::translate::{FromGlibPtrNone, ToGlibPtr};
use gstreamer::prelude::*;

use crate::contract::{self, ErrorOut, HostApi, Str};
use crate::event::ChannelSpec;
use crate::Payload;

/// Log levels, as `tracing` has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// The host, for one bridge. Cheap to clone; usable from any thread until the bridge's
/// [`crate::Plugin::stop`] returns.
#[derive(Clone)]
pub struct Host {
    api: *const HostApi,
}

// The contract allows host calls from any thread while the instance lives.
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

impl Host {
    /// # Safety
    /// `api` must be the table the host passed to `create`, valid until `destroy` returns.
    #[doc(hidden)]
    pub unsafe fn from_raw(api: *const HostApi) -> Host {
        Host { api }
    }

    fn api(&self) -> &HostApi {
        // Valid for the instance's life: a contract rule (see `from_raw`).
        unsafe { &*self.api }
    }

    fn ctx(&self) -> *const c_void {
        self.api().ctx
    }

    /// Logs through the host's `tracing`, tagged with the bridge's name.
    pub fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Error => contract::LOG_ERROR,
            Level::Warn => contract::LOG_WARN,
            Level::Info => contract::LOG_INFO,
            Level::Debug => contract::LOG_DEBUG,
            Level::Trace => contract::LOG_TRACE,
        };
        (self.api().log)(self.ctx(), level, message.into());
    }

    /// Logs at `info`.
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message)
    }

    /// Logs at `warn`.
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message)
    }

    /// The status operators see: `connecting`, `live`, `retrying: camera unreachable`, ...
    pub fn set_status(&self, status: &str) {
        (self.api().set_status)(self.ctx(), status.into());
    }

    /// Sets the metric `key` (letters, digits and `_`) to `value`.
    pub fn set_metric(&self, key: &str, value: f64) {
        (self.api().set_metric)(self.ctx(), key.into(), value);
    }

    /// Opens a data channel to `peer`, or to every current and later peer with `None`.
    pub fn create_channel(&self, peer: Option<&str>, spec: &ChannelSpec) -> bool {
        let spec = serde_json::to_string(spec).expect("a channel spec serializes");
        (self.api().create_channel)(self.ctx(), peer.unwrap_or("").into(), spec.as_str().into())
            == 0
    }

    /// Queues a message on the open channel `label` to `peer`. False when the host refused it at
    /// once (unknown peer); a channel that is not open drops it later.
    pub fn send(&self, peer: &str, label: &str, payload: Payload<'_>) -> bool {
        let (kind, data) = match payload {
            Payload::Text(t) => (contract::PAYLOAD_TEXT, t.as_bytes()),
            Payload::Binary(b) => (contract::PAYLOAD_BINARY, b),
        };
        (self.api().send)(self.ctx(), peer.into(), label.into(), kind, Str::new(data)) == 0
    }

    /// Publishes `element` (no parent; its `src` pad outputs RTP caps with `media`,
    /// `encoding-name`, `payload` and `clock-rate`) to every peer of the pool.
    pub fn publish(&self, element: &gst::Element) -> Result<u64, String> {
        let mut message = String::new();
        let error = ErrorOut {
            ctx: &mut message as *mut String as *mut c_void,
            write: write_string,
        };
        let ptr: *mut gst::ffi::GstElement = element.to_glib_none().0;
        let id = (self.api().publish)(self.ctx(), ptr as *mut c_void, &error);
        if id == 0 {
            Err(message)
        } else {
            Ok(id)
        }
    }

    /// Publishes one track in alternative formats (see
    /// [`crate::contract::HostApi::publish_alternatives`]): each peer gets the one it accepts,
    /// the first preferred. Fails with a message naming the reason when the host is older than
    /// this call (a plugin may then fall back to [`Host::publish`]).
    pub fn publish_alternatives(&self, elements: &[gst::Element]) -> Result<u64, String> {
        if !self.has_alternatives() {
            return Err("this poolgate host cannot publish alternatives".into());
        }
        if elements.is_empty() {
            return Err("no alternative to publish".into());
        }
        let mut message = String::new();
        let error = ErrorOut {
            ctx: &mut message as *mut String as *mut c_void,
            write: write_string,
        };
        let ptrs: Vec<*mut c_void> = elements
            .iter()
            .map(|e| {
                let ptr: *mut gst::ffi::GstElement = e.to_glib_none().0;
                ptr as *mut c_void
            })
            .collect();
        let id = (self.api().publish_alternatives)(self.ctx(), ptrs.as_ptr(), ptrs.len(), &error);
        if id == 0 {
            Err(message)
        } else {
            Ok(id)
        }
    }

    /// Whether the host has [`Host::publish_alternatives`] (its table reaches that far).
    pub fn has_alternatives(&self) -> bool {
        self.api().size
            >= std::mem::offset_of!(HostApi, publish_alternatives) + std::mem::size_of::<usize>()
    }

    /// Stops a publication.
    pub fn unpublish(&self, id: u64) -> bool {
        (self.api().unpublish)(self.ctx(), id) == 0
    }

    /// The endpoint's pipeline, where elements consuming incoming tracks go.
    pub fn pipeline(&self) -> gst::Pipeline {
        let ptr = (self.api().pipeline)(self.ctx());
        // The host hands out its own pipeline (transfer none): take our own reference.
        let element: gst::Element =
            unsafe { gst::Element::from_glib_none(ptr as *mut gst::ffi::GstElement) };
        element
            .downcast()
            .expect("the host's pipeline is a GstPipeline")
    }
}

/// An [`ErrorOut`] writer into a `String`.
pub(crate) extern "C" fn write_string(ctx: *mut c_void, message: Str<'_>) {
    let out = unsafe { &mut *(ctx as *mut String) };
    out.push_str(&unsafe { message.text() });
}

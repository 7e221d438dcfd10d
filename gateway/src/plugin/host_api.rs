//! The functions a plugin calls back ([`HostApi`]), each forwarded to the [`BridgeHost`] of the
//! bridge it belongs to. None may unwind into plugin code: each catches its own panics.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use gstreamer as gst;
use gstreamer::glib::translate::{FromGlibPtrNone, ToGlibPtr};
use poolgate_plugin_api::contract::{self, ErrorOut, GstElementPtr, HostApi, Str};
use poolgate_plugin_api::ChannelSpec;

use crate::endpoint::Payload;

/// What a running bridge instance can ask of its host; the bridge runner implements it. Called
/// from any thread, so everything is `&self` and quick.
pub trait BridgeHost: Send + Sync {
    fn log(&self, level: tracing::Level, message: &str);
    fn set_status(&self, status: &str);
    fn set_metric(&self, key: &str, value: f64);
    /// `peer`: `None` for every current and later peer.
    fn create_channel(&self, peer: Option<&str>, spec: ChannelSpec) -> Result<(), String>;
    fn send(&self, peer: &str, label: &str, payload: Payload) -> Result<(), String>;
    fn publish(&self, element: gst::Element) -> Result<u64, String>;
    /// One track in alternative formats, the first preferred (see
    /// [`HostApi::publish_alternatives`]).
    fn publish_alternatives(&self, elements: Vec<gst::Element>) -> Result<u64, String>;
    fn unpublish(&self, id: u64) -> Result<(), String>;
    fn pipeline(&self) -> gst::Pipeline;
}

/// The context behind a [`HostApi`]: kept alive by the [`super::Instance`] that owns it.
pub(crate) type Context = Arc<dyn BridgeHost>;

/// Builds the table for `ctx` (a `Box<Context>` the caller keeps alive as long as the table).
pub(crate) fn table(ctx: *const Context) -> HostApi {
    HostApi {
        size: std::mem::size_of::<HostApi>(),
        ctx: ctx as *const c_void,
        log,
        set_status,
        set_metric,
        create_channel,
        send,
        publish,
        unpublish,
        pipeline,
        publish_alternatives,
    }
}

fn host<'a>(ctx: *const c_void) -> &'a dyn BridgeHost {
    // `ctx` is the `*const Context` of `table`, alive until the instance is destroyed.
    unsafe { &**(ctx as *const Context) }
}

/// Runs a callback body; a panic in host code becomes `fallback` and an error log.
fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("a plugin callback panicked inside poolgate; the call was refused");
        fallback
    })
}

fn failed(result: Result<(), String>, what: &str, ctx: *const c_void) -> u32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            host(ctx).log(tracing::Level::WARN, &format!("{what} refused: {e}"));
            1
        }
    }
}

extern "C" fn log(ctx: *const c_void, level: u32, message: Str<'_>) {
    guarded((), || {
        let level = match level {
            contract::LOG_ERROR => tracing::Level::ERROR,
            contract::LOG_WARN => tracing::Level::WARN,
            contract::LOG_DEBUG => tracing::Level::DEBUG,
            contract::LOG_TRACE => tracing::Level::TRACE,
            _ => tracing::Level::INFO,
        };
        host(ctx).log(level, &unsafe { message.text() });
    })
}

extern "C" fn set_status(ctx: *const c_void, status: Str<'_>) {
    guarded((), || host(ctx).set_status(&unsafe { status.text() }))
}

extern "C" fn set_metric(ctx: *const c_void, key: Str<'_>, value: f64) {
    guarded((), || host(ctx).set_metric(&unsafe { key.text() }, value))
}

extern "C" fn create_channel(ctx: *const c_void, peer: Str<'_>, spec: Str<'_>) -> u32 {
    guarded(1, || {
        let result = serde_json::from_str::<ChannelSpec>(&unsafe { spec.text() })
            .map_err(|e| format!("bad channel spec: {e}"))
            .and_then(|spec| {
                let peer = unsafe { peer.text() };
                let peer = (!peer.is_empty()).then_some(&*peer);
                host(ctx).create_channel(peer, spec)
            });
        failed(result, "opening a data channel", ctx)
    })
}

extern "C" fn send(
    ctx: *const c_void,
    peer: Str<'_>,
    label: Str<'_>,
    kind: u32,
    data: Str<'_>,
) -> u32 {
    guarded(1, || {
        let bytes = unsafe { data.bytes() };
        let payload = if kind == contract::PAYLOAD_BINARY {
            Payload::Binary(bytes.to_vec())
        } else {
            Payload::Text(String::from_utf8_lossy(bytes).into_owned())
        };
        let (peer, label) = unsafe { (peer.text(), label.text()) };
        failed(
            host(ctx).send(&peer, &label, payload),
            "sending a message",
            ctx,
        )
    })
}

extern "C" fn publish(ctx: *const c_void, element: GstElementPtr, error: *const ErrorOut) -> u64 {
    guarded(0, || {
        let result = if element.is_null() {
            Err("publish was given a null element".to_string())
        } else {
            // Borrowed from the plugin (transfer none): take our own reference.
            let element =
                unsafe { gst::Element::from_glib_none(element as *mut gst::ffi::GstElement) };
            host(ctx).publish(element)
        };
        publication(result, error)
    })
}

extern "C" fn publish_alternatives(
    ctx: *const c_void,
    elements: *const GstElementPtr,
    count: usize,
    error: *const ErrorOut,
) -> u64 {
    guarded(0, || {
        let pointers = if elements.is_null() || count == 0 {
            &[][..]
        } else {
            // The plugin passes `count` element pointers, borrowed for the call.
            unsafe { std::slice::from_raw_parts(elements, count) }
        };
        let result = if pointers.is_empty() || pointers.iter().any(|p| p.is_null()) {
            Err("publish_alternatives was given no element or a null one".to_string())
        } else {
            // Borrowed from the plugin (transfer none): take our own references.
            let elements = pointers
                .iter()
                .map(|p| unsafe { gst::Element::from_glib_none(*p as *mut gst::ffi::GstElement) })
                .collect();
            host(ctx).publish_alternatives(elements)
        };
        publication(result, error)
    })
}

/// A publication's id for the plugin, or 0 with the reason written to `error`.
fn publication(result: Result<u64, String>, error: *const ErrorOut) -> u64 {
    result.unwrap_or_else(|message| {
        if let Some(error) = unsafe { error.as_ref() } {
            (error.write)(error.ctx, message.as_str().into());
        }
        0
    })
}

extern "C" fn unpublish(ctx: *const c_void, id: u64) -> u32 {
    guarded(1, || failed(host(ctx).unpublish(id), "unpublishing", ctx))
}

extern "C" fn pipeline(ctx: *const c_void) -> GstElementPtr {
    guarded(std::ptr::null_mut(), || {
        let pipeline = host(ctx).pipeline();
        let ptr: *mut gst::ffi::GstPipeline = pipeline.to_glib_none().0;
        // Transfer none: the endpoint keeps its pipeline alive for the instance's life.
        ptr as GstElementPtr
    })
}

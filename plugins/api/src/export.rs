//! The `extern "C"` shims [`crate::export_plugin!`] installs: they turn contract calls into
//! [`Plugin`] calls and catch every panic, so none unwinds into the host.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use gstreamer as gst;
use gstreamer::glib::translate::FromGlibPtrNone;

use crate::contract::{
    ErrorOut, GstElementPtr, HostApi, PluginApi, Status, Str, ABI_VERSION, PAYLOAD_BINARY,
    STATUS_ERROR, STATUS_OK, STATUS_PANIC,
};
use crate::event::{parse_config, Event, TrackInfo};
use crate::{Host, Payload, Plugin};

/// The function table for `P`.
pub fn table<P: Plugin>() -> PluginApi {
    PluginApi {
        size: std::mem::size_of::<PluginApi>(),
        abi_version: ABI_VERSION,
        name: P::NAME.into(),
        version: P::VERSION.into(),
        summary: P::SUMMARY.into(),
        validate_config: validate_config::<P>,
        create: create::<P>,
        on_event: on_event::<P>,
        on_message: on_message::<P>,
        on_track: on_track::<P>,
        destroy: destroy::<P>,
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

fn report(error: *const ErrorOut, message: &str) {
    if let Some(error) = unsafe { error.as_ref() } {
        (error.write)(error.ctx, message.into());
    }
}

/// Runs `f`, turning an `Err` into [`STATUS_ERROR`] and a panic into [`STATUS_PANIC`].
fn guard(error: *const ErrorOut, f: impl FnOnce() -> Result<(), String>) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => STATUS_OK,
        Ok(Err(message)) => {
            report(error, &message);
            STATUS_ERROR
        }
        Err(payload) => {
            report(error, &panic_message(payload.as_ref()));
            STATUS_PANIC
        }
    }
}

fn config<P: Plugin>(json: &str) -> Result<P::Config, String> {
    let config: P::Config = parse_config(json)?;
    P::validate(&config)?;
    Ok(config)
}

extern "C" fn validate_config<P: Plugin>(json: Str<'_>, error: *const ErrorOut) -> Status {
    guard(error, || config::<P>(&unsafe { json.text() }).map(|_| ()))
}

struct Instance<P> {
    plugin: P,
}

extern "C" fn create<P: Plugin>(
    host: *const HostApi,
    json: Str<'_>,
    instance: *mut *mut c_void,
    error: *const ErrorOut,
) -> Status {
    guard(error, || {
        // This library has its own copy of the gstreamer crate, which checks its own
        // "initialised" flag; the C library itself is already initialised by the host.
        gst::init().map_err(|e| format!("GStreamer: {e}"))?;
        let config = config::<P>(&unsafe { json.text() })?;
        let host = unsafe { Host::from_raw(host) };
        let plugin = P::start(host, config)?;
        let boxed = Box::new(Instance { plugin });
        unsafe { *instance = Box::into_raw(boxed) as *mut c_void };
        Ok(())
    })
}

fn with<P: Plugin>(instance: *mut c_void) -> &'static mut P {
    // The host passes back the pointer `create` gave it, one call at a time.
    unsafe { &mut (*(instance as *mut Instance<P>)).plugin }
}

extern "C" fn on_event<P: Plugin>(
    instance: *mut c_void,
    json: Str<'_>,
    error: *const ErrorOut,
) -> Status {
    guard(error, || {
        let event: Event = serde_json::from_str(&unsafe { json.text() })
            .map_err(|e| format!("the host sent an event this plugin cannot read: {e}"))?;
        if event != Event::Other {
            with::<P>(instance).on_event(event);
        }
        Ok(())
    })
}

extern "C" fn on_message<P: Plugin>(
    instance: *mut c_void,
    peer: Str<'_>,
    label: Str<'_>,
    kind: u32,
    data: Str<'_>,
    error: *const ErrorOut,
) -> Status {
    guard(error, || {
        let (peer, label) = unsafe { (peer.text(), label.text()) };
        let bytes = unsafe { data.bytes() };
        let text;
        let payload = if kind == PAYLOAD_BINARY {
            Payload::Binary(bytes)
        } else {
            text = String::from_utf8_lossy(bytes);
            Payload::Text(&text)
        };
        with::<P>(instance).on_message(&peer, &label, payload);
        Ok(())
    })
}

extern "C" fn on_track<P: Plugin>(
    instance: *mut c_void,
    json: Str<'_>,
    source: GstElementPtr,
    error: *const ErrorOut,
) -> Status {
    guard(error, || {
        let track: TrackInfo = serde_json::from_str(&unsafe { json.text() })
            .map_err(|e| format!("the host sent a track this plugin cannot read: {e}"))?;
        if source.is_null() {
            return Err("the host sent a track without a source".into());
        }
        // Borrowed from the host (transfer none): take our own reference.
        let source = unsafe { gst::Element::from_glib_none(source as *mut gst::ffi::GstElement) };
        with::<P>(instance).on_track(track, source);
        Ok(())
    })
}

extern "C" fn destroy<P: Plugin>(instance: *mut c_void, error: *const ErrorOut) -> Status {
    if instance.is_null() {
        return STATUS_OK;
    }
    // Take ownership first, so the box is freed even if stop or a destructor panics.
    let boxed = unsafe { Box::from_raw(instance as *mut Instance<P>) };
    guard(error, move || {
        let mut boxed = boxed;
        boxed.plugin.stop();
        drop(boxed);
        Ok(())
    })
}

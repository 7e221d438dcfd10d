//! [`Instance`]: one bridge instance of a plugin, called through the contract. Every call's
//! result comes back as `Ok`, a plugin error, or a caught panic with its message.

use std::ffi::c_void;
use std::sync::Arc;

use gstreamer as gst;
use gstreamer::glib::translate::ToGlibPtr;
use poolgate_plugin_api::contract::{
    self, ErrorOut, HostApi, Status, Str, STATUS_OK, STATUS_PANIC,
};
use poolgate_plugin_api::{Event, TrackInfo};
use thiserror::Error;

use super::host_api::{self, BridgeHost, Context};
use super::LoadedPlugin;
use crate::endpoint::Payload;

/// A plugin call that did not succeed.
#[derive(Clone, Debug, Error, PartialEq)]
pub enum PluginError {
    /// The plugin returned an error (an invalid config, a refused start).
    #[error("{0}")]
    Failed(String),
    /// Plugin code panicked; the panic was caught at the boundary.
    #[error("{0}")]
    Panicked(String),
}

extern "C" fn write_error(ctx: *mut c_void, message: Str<'_>) {
    let out = unsafe { &mut *(ctx as *mut String) };
    out.push_str(&unsafe { message.text() });
}

/// Calls a plugin function with an error sink and turns its status into a `Result`.
pub(crate) fn call(f: impl FnOnce(*const ErrorOut) -> Status) -> Result<(), PluginError> {
    let mut message = String::new();
    let error = ErrorOut {
        ctx: &mut message as *mut String as *mut c_void,
        write: write_error,
    };
    match f(&error) {
        STATUS_OK => Ok(()),
        STATUS_PANIC => Err(PluginError::Panicked(message)),
        _ if message.is_empty() => Err(PluginError::Failed(
            "the plugin reported an error without a message".into(),
        )),
        _ => Err(PluginError::Failed(message)),
    }
}

/// A running bridge instance. Dropping it destroys it.
pub struct Instance {
    plugin: Arc<LoadedPlugin>,
    raw: *mut c_void,
    // Both must outlive `raw`: the plugin holds pointers to them until `destroy` returns.
    _host: Box<HostApi>,
    _ctx: Box<Context>,
}

// The contract lets an instance move between threads (plugin types are `Send`); the host calls
// it from one task at a time.
unsafe impl Send for Instance {}

impl Instance {
    /// Starts a bridge instance of `plugin` with `config` (JSON).
    pub fn create(
        plugin: Arc<LoadedPlugin>,
        bridge: Arc<dyn BridgeHost>,
        config: &serde_json::Value,
    ) -> Result<Instance, PluginError> {
        let ctx: Box<Context> = Box::new(bridge);
        let host = Box::new(host_api::table(&*ctx as *const Context));
        let json = config.to_string();
        let mut raw: *mut c_void = std::ptr::null_mut();
        call(|error| (plugin.api.create)(&*host, json.as_str().into(), &mut raw, error))?;
        Ok(Instance {
            plugin,
            raw,
            _host: host,
            _ctx: ctx,
        })
    }

    /// The plugin this is an instance of.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// Delivers an endpoint event.
    pub fn event(&mut self, event: &Event) -> Result<(), PluginError> {
        let json = serde_json::to_string(event).expect("events serialize");
        call(|error| (self.plugin.api.on_event)(self.raw, json.as_str().into(), error))
    }

    /// Delivers a data-channel message.
    pub fn message(
        &mut self,
        peer: &str,
        label: &str,
        payload: &Payload,
    ) -> Result<(), PluginError> {
        let (kind, data) = match payload {
            Payload::Text(t) => (contract::PAYLOAD_TEXT, t.as_bytes()),
            Payload::Binary(b) => (contract::PAYLOAD_BINARY, b.as_slice()),
        };
        call(|error| {
            (self.plugin.api.on_message)(
                self.raw,
                peer.into(),
                label.into(),
                kind,
                Str::new(data),
                error,
            )
        })
    }

    /// Delivers a peer's track and its source `tee`.
    pub fn track(&mut self, track: &TrackInfo, source: &gst::Element) -> Result<(), PluginError> {
        let json = serde_json::to_string(track).expect("tracks serialize");
        let ptr: *mut gst::ffi::GstElement = source.to_glib_none().0;
        call(|error| {
            (self.plugin.api.on_track)(self.raw, json.as_str().into(), ptr as *mut c_void, error)
        })
    }

    /// Stops the instance (its `stop`, then its destructor).
    pub fn destroy(mut self) -> Result<(), PluginError> {
        self.destroy_now()
    }

    fn destroy_now(&mut self) -> Result<(), PluginError> {
        let raw = std::mem::replace(&mut self.raw, std::ptr::null_mut());
        if raw.is_null() {
            return Ok(());
        }
        call(|error| (self.plugin.api.destroy)(raw, error))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(e) = self.destroy_now() {
            tracing::warn!(plugin = %self.plugin.name, "stopping a bridge instance failed: {e}");
        }
    }
}

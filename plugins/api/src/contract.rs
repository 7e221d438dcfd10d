//! # The poolgate plugin contract (ABI version 1)
//!
//! This file is the whole boundary between poolgate (the *host*) and a plugin (a `cdylib`). Only
//! the `#[repr(C)]` types and `extern "C"` functions below cross it, so a plugin built with
//! another rustc, another `serde` or another `gstreamer` crate still works, as long as it was
//! built against the same [`ABI_VERSION`]. Plugin authors do not use this file directly: they
//! implement [`crate::Plugin`] and call [`crate::export_plugin!`], which writes the shims.
//!
//! ## Loading, in order
//! 1. The host opens the library (`dlopen` with `RTLD_NOW`, so missing symbols fail here).
//! 2. It reads the data symbol [`TAG_SYMBOL`], a [`PluginTag`], **without calling any plugin
//!    code**. The tag's first two fields are frozen for all versions: [`MAGIC`], then the ABI
//!    version. A library without the symbol is not a plugin; a wrong magic is not a plugin; another
//!    ABI version is refused with both versions named. The tag also names the GStreamer API
//!    (major.minor) the plugin was built for; the host refuses it when its own GStreamer is older.
//! 3. Only then does the host call [`ENTRY_SYMBOL`] (an [`EntryFn`]), which returns a
//!    [`PluginApi`] whose `abi_version` and `size` it checks again.
//!
//! A loaded library is never unloaded: Rust cdylibs may leave thread-local destructors behind.
//!
//! ## Data across the boundary
//! - Strings are [`Str`]: UTF-8, pointer and length, borrowed for the duration of the call only.
//! - Config, events and track descriptions are JSON text in a [`Str`] (types in [`crate::event`]).
//! - GStreamer objects cross as their C pointers (`*mut GstElement`). Host and plugin link the
//!   same shared `libgstreamer-1.0`, so these are the same objects on both sides. A pointer passed
//!   into a call is borrowed (transfer none): take a reference to keep it.
//! - Errors go into an [`ErrorOut`] the caller provides, so no memory allocated on one side is
//!   freed on the other.
//!
//! ## Calls, threads and panics
//! - The host calls a bridge instance's functions from one task at a time, never concurrently; an
//!   instance may move between threads (the plugin type must be `Send`). Calls must not block:
//!   long work belongs on the plugin's own threads or GStreamer's.
//! - [`HostApi`] functions may be called from any thread, during or between the host's calls,
//!   from `create` until `destroy` returns; never after.
//! - No panic may unwind across the boundary (that aborts the process). The generated shims catch
//!   every panic and return [`STATUS_PANIC`] with the panic message in the [`ErrorOut`]; the host
//!   then marks the bridge `failed: <message>`, destroys the instance and restarts it if its
//!   restart policy says so.
//!
//! ## Changing this file
//! Any change to a type or function below that is not appending a field at the end of
//! [`HostApi`] or [`PluginApi`] (whose `size` fields tell the other side what is there) must bump
//! [`ABI_VERSION`].

use std::ffi::c_void;
use std::marker::PhantomData;

/// The version of this contract. A plugin is loaded only by a host with the same version.
pub const ABI_VERSION: u32 = 1;

/// The first bytes of every [`PluginTag`]: tells a plugin apart from any other library.
pub const MAGIC: [u8; 8] = *b"POOLGATE";

/// The data symbol every plugin exports: a [`PluginTag`]. Its name never changes.
pub const TAG_SYMBOL: &str = "POOLGATE_PLUGIN_TAG";

/// The function symbol every plugin exports: an [`EntryFn`]. Called only after the tag matched.
pub const ENTRY_SYMBOL: &str = "poolgate_plugin_entry";

/// The GStreamer API a plugin built with this crate expects at least (the `gstreamer` crate is
/// built with its `v1_22` feature).
pub const GST_API: (u32, u32) = (1, 22);

/// Read by the host before any plugin code runs. The first two fields are frozen forever.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginTag {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// The [`ABI_VERSION`] the plugin was built against.
    pub abi_version: u32,
    /// `size_of::<PluginTag>()` as the plugin saw it.
    pub tag_size: u32,
    /// The GStreamer API the plugin was built for, major and minor.
    pub gst_major: u32,
    pub gst_minor: u32,
}

impl PluginTag {
    /// The tag of a plugin built with this crate.
    pub const CURRENT: PluginTag = PluginTag {
        magic: MAGIC,
        abi_version: ABI_VERSION,
        tag_size: std::mem::size_of::<PluginTag>() as u32,
        gst_major: GST_API.0,
        gst_minor: GST_API.1,
    };
}

/// `poolgate_plugin_entry`: returns the plugin's function table, valid for the process's life.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginApi;

/// A borrowed UTF-8 string (or byte string, for binary messages): valid during the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Str<'a> {
    pub ptr: *const u8,
    pub len: usize,
    pub _borrow: PhantomData<&'a [u8]>,
}

impl<'a> Str<'a> {
    /// Borrows `bytes` for a call.
    pub fn new(bytes: &'a [u8]) -> Str<'a> {
        Str {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            _borrow: PhantomData,
        }
    }

    /// The bytes.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes for `'a` (or `len` must be 0).
    pub unsafe fn bytes(&self) -> &'a [u8] {
        if self.len == 0 || self.ptr.is_null() {
            return &[];
        }
        std::slice::from_raw_parts(self.ptr, self.len)
    }

    /// The text, with invalid UTF-8 replaced.
    ///
    /// # Safety
    /// As [`Str::bytes`].
    pub unsafe fn text(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.bytes())
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Str<'a> {
        Str::new(s.as_bytes())
    }
}

/// Where the callee writes an error message; owned by the caller.
#[repr(C)]
pub struct ErrorOut {
    pub ctx: *mut c_void,
    pub write: extern "C" fn(ctx: *mut c_void, message: Str<'_>),
}

/// Result of a plugin function.
pub type Status = u32;
/// The call succeeded.
pub const STATUS_OK: Status = 0;
/// The call failed; the message is in the [`ErrorOut`].
pub const STATUS_ERROR: Status = 1;
/// Plugin code panicked; the panic message is in the [`ErrorOut`].
pub const STATUS_PANIC: Status = 2;

/// A data-channel message is text (UTF-8).
pub const PAYLOAD_TEXT: u32 = 0;
/// A data-channel message is binary.
pub const PAYLOAD_BINARY: u32 = 1;

/// Log levels for [`HostApi::log`], as `tracing` has them.
pub const LOG_ERROR: u32 = 1;
pub const LOG_WARN: u32 = 2;
pub const LOG_INFO: u32 = 3;
pub const LOG_DEBUG: u32 = 4;
pub const LOG_TRACE: u32 = 5;

/// The name of the custom upstream event (a `GstStructure` with a `peers` `u32` field) by which
/// the host tells each alternative of [`HostApi::publish_alternatives`] how many peers it feeds.
pub const DEMAND_EVENT: &str = "poolgate-demand";

/// The opaque `GstElement` of the shared libgstreamer.
pub type GstElementPtr = *mut c_void;

/// What a bridge can ask of the host. Every function takes `ctx` first. Integer results: 0 is
/// success, anything else failure (the host logs why).
#[repr(C)]
pub struct HostApi {
    /// `size_of::<HostApi>()` as the host built it.
    pub size: usize,
    /// The host's context for this bridge instance.
    pub ctx: *const c_void,
    /// Logs through the host's `tracing`, tagged with the bridge's name.
    pub log: extern "C" fn(ctx: *const c_void, level: u32, message: Str<'_>),
    /// Sets the bridge status shown to operators (`connecting`, `live`, `retrying: …`).
    pub set_status: extern "C" fn(ctx: *const c_void, status: Str<'_>),
    /// Sets a metric (a gauge or a running count: the plugin decides) by key.
    pub set_metric: extern "C" fn(ctx: *const c_void, key: Str<'_>, value: f64),
    /// Opens a data channel, described by JSON [`crate::event::ChannelSpec`], to one peer (its
    /// id) or, with an empty peer, to every current and later peer.
    pub create_channel: extern "C" fn(ctx: *const c_void, peer: Str<'_>, spec: Str<'_>) -> u32,
    /// Queues a message on the open channel `label` to `peer`; `kind` is [`PAYLOAD_TEXT`] or
    /// [`PAYLOAD_BINARY`]. Delivery is not confirmed (a closed channel drops it, and the host
    /// logs it).
    pub send: extern "C" fn(
        ctx: *const c_void,
        peer: Str<'_>,
        label: Str<'_>,
        kind: u32,
        data: Str<'_>,
    ) -> u32,
    /// Publishes an element (or bin) whose `src` pad outputs RTP with `media`, `encoding-name`,
    /// `payload` and `clock-rate` caps to every peer of the pool. The element must not have a
    /// parent; the host adds it to the endpoint's pipeline. Returns a publication id (> 0), or 0
    /// with the reason in `error`.
    pub publish:
        extern "C" fn(ctx: *const c_void, element: GstElementPtr, error: *const ErrorOut) -> u64,
    /// Stops a publication.
    pub unpublish: extern "C" fn(ctx: *const c_void, id: u64) -> u32,
    /// The endpoint's pipeline (a `GstPipeline`, transfer none), where consumers of incoming
    /// tracks add their elements.
    pub pipeline: extern "C" fn(ctx: *const c_void) -> GstElementPtr,
    /// Appended after ABI version 1 shipped (check `size` before calling it): publishes one
    /// track in `count` alternative formats. Each of the `elements` is as for `publish` (RTP
    /// caps with `media`, `encoding-name`, `clock-rate` and a `payload` of its own; more format
    /// parameters such as `profile-level-id` and `packetization-mode` go into the SDP as they
    /// are). Every peer is offered one media section listing all of them, the first preferred;
    /// each peer is then fed the one it accepted (the first of the remote's answer that is one
    /// of ours; the last alternative when the answer names none). So each alternative is
    /// produced once, however many peers take it. Whenever the number of peers an alternative
    /// feeds changes, the host sends a custom upstream event named [`DEMAND_EVENT`] with a
    /// `peers` (`u32`) field into that element's src pad: a plugin may produce an alternative
    /// only while some peer takes it (it starts at 0: nothing is sent before the first peer).
    /// Returns a publication id (> 0) that `unpublish` stops as a whole, or 0 with the reason
    /// in `error`.
    pub publish_alternatives: extern "C" fn(
        ctx: *const c_void,
        elements: *const GstElementPtr,
        count: usize,
        error: *const ErrorOut,
    ) -> u64,
}

/// A plugin's function table. `instance` is what `create` returned.
#[repr(C)]
pub struct PluginApi {
    /// `size_of::<PluginApi>()` as the plugin built it.
    pub size: usize,
    /// [`ABI_VERSION`], again.
    pub abi_version: u32,
    /// The plugin's name (bridges refer to it), its version, and one line about it.
    pub name: Str<'static>,
    pub version: Str<'static>,
    pub summary: Str<'static>,
    /// Checks a bridge config (JSON) without starting anything; the error names the field.
    pub validate_config: extern "C" fn(config: Str<'_>, error: *const ErrorOut) -> Status,
    /// Starts a bridge instance with its config (JSON). `host` stays valid until `destroy`.
    pub create: extern "C" fn(
        host: *const HostApi,
        config: Str<'_>,
        instance: *mut *mut c_void,
        error: *const ErrorOut,
    ) -> Status,
    /// An endpoint event, JSON [`crate::event::Event`].
    pub on_event:
        extern "C" fn(instance: *mut c_void, event: Str<'_>, error: *const ErrorOut) -> Status,
    /// A data-channel message from `peer` on `label`.
    pub on_message: extern "C" fn(
        instance: *mut c_void,
        peer: Str<'_>,
        label: Str<'_>,
        kind: u32,
        data: Str<'_>,
        error: *const ErrorOut,
    ) -> Status,
    /// A peer's new track: JSON [`crate::event::TrackInfo`] and its source, a `tee` in the
    /// endpoint's pipeline carrying the depayloaded stream (transfer none).
    pub on_track: extern "C" fn(
        instance: *mut c_void,
        track: Str<'_>,
        source: GstElementPtr,
        error: *const ErrorOut,
    ) -> Status,
    /// Stops and frees the instance. The plugin must not call the host after this returns.
    pub destroy: extern "C" fn(instance: *mut c_void, error: *const ErrorOut) -> Status,
}

// Both sides share the tables across threads; they hold only code pointers and static strings.
unsafe impl Sync for PluginApi {}
unsafe impl Send for PluginApi {}

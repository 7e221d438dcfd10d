//! Write a poolgate plugin in safe Rust: implement [`Plugin`], then `export_plugin!(MyPlugin);`
//! in a crate built as a `cdylib`. The README's plugin authoring guide has a complete example;
//! [`contract`] is the C ABI this crate hides (read it to write a plugin in another language).
//!
//! Each running instance of a plugin is a *bridge*: one endpoint in one pool. The host calls the
//! instance with the endpoint's events, data-channel messages and incoming tracks; the instance
//! acts through its [`Host`]: publish media, open channels and send on them, report status and
//! metrics, log.

pub mod contract;
pub mod event;
#[doc(hidden)]
pub mod export;
mod host;

pub use event::{parse_config, ChannelSpec, Event, TrackInfo};
pub use gstreamer as gst;
pub use host::{Host, Level};

/// A data-channel message as a plugin receives or sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// A plugin: a type whose values are running bridges.
///
/// Every method runs on the host's bridge task, one call at a time; none may block (spawn a
/// thread or use GStreamer for long work). A panic in any of them is caught: the bridge is
/// reported `failed` with the panic message and restarted if its policy says so.
pub trait Plugin: Send + Sized + 'static {
    /// The name bridges use in their `plugin` key.
    const NAME: &'static str;
    /// The plugin's own version, shown by `poolgate plugins` and the admin API.
    const VERSION: &'static str;
    /// One line about what it does.
    const SUMMARY: &'static str = "";
    /// The bridge's `config` table. Use `#[serde(deny_unknown_fields)]` so typos are errors.
    type Config: serde::de::DeserializeOwned;

    /// Rules serde cannot express (ranges, combinations). The error should name the field.
    fn validate(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Starts a bridge. The endpoint is being started; events follow.
    fn start(host: Host, config: Self::Config) -> Result<Self, String>;

    /// An endpoint event: joined, peers, descriptions, connection states, channels.
    fn on_event(&mut self, event: Event) {
        let _ = event;
    }

    /// A data-channel message from `peer` on the channel `label`.
    fn on_message(&mut self, peer: &str, label: &str, payload: Payload<'_>) {
        let _ = (peer, label, payload);
    }

    /// A peer's new track. `source` is a `tee` in [`Host::pipeline`] carrying the depayloaded
    /// stream: request a `src_%u` pad and link your elements (added to that pipeline). When
    /// [`Event::TrackRemoved`] names it, the host releases the pad; remove your elements.
    fn on_track(&mut self, track: TrackInfo, source: gst::Element) {
        let _ = (track, source);
    }

    /// The bridge is stopping: finish files, say goodbye. Dropped right after.
    fn stop(&mut self) {}
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as this library's plugin: the tag the host
/// checks before loading, and the entry point. Use it once, in a `cdylib` crate.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// Read by poolgate before it runs any code of this library.
        #[no_mangle]
        #[used]
        pub static POOLGATE_PLUGIN_TAG: $crate::contract::PluginTag =
            $crate::contract::PluginTag::CURRENT;

        /// The plugin's function table.
        #[no_mangle]
        pub extern "C" fn poolgate_plugin_entry() -> *const $crate::contract::PluginApi {
            static API: ::std::sync::OnceLock<$crate::contract::PluginApi> =
                ::std::sync::OnceLock::new();
            API.get_or_init($crate::export::table::<$plugin>)
        }
    };
}

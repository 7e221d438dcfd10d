//! Pad probes' one shared step: dropping the buffer they see.

use poolgate_plugin_api::gst;

/// Drops the probed buffer. Not with `PadProbeReturn::Drop`: through the Rust bindings that
/// logged "gst_mini_object_unref: assertion 'mini_object != NULL' failed" for every buffer
/// dropped (seen in the composite recording trials); the buffer is released here and the probe
/// reports it handled.
pub(crate) fn drop_buffer(info: &mut gst::PadProbeInfo) -> gst::PadProbeReturn {
    info.data = None;
    gst::PadProbeReturn::Handled
}

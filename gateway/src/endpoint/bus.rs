//! The endpoint pipeline's bus. Nothing pops it otherwise, and every message queued there keeps
//! a reference to the element that posted it: a departed peer's webrtcbin (with its sockets
//! and threads) would stay alive behind its own state-change messages. So messages are handled
//! as they are posted and never queued: errors and warnings logged with the element's path,
//! everything else dropped.

use gstreamer as gst;
use gstreamer::prelude::*;

/// Handles every message of `pipeline`'s bus as it is posted, for the pipeline's lifetime.
pub fn drain(pipeline: &gst::Pipeline, pool: &str) {
    let Some(bus) = pipeline.bus() else {
        return;
    };
    let pool = pool.to_owned();
    bus.set_sync_handler(move |_, message| {
        log(&pool, message);
        gst::BusSyncReply::Drop
    });
}

fn log(pool: &str, message: &gst::Message) {
    let element = || {
        message
            .src()
            .map(|s| s.path_string().to_string())
            .unwrap_or_else(|| "?".into())
    };
    match message.view() {
        gst::MessageView::Error(e) => tracing::error!(
            pool,
            element = %element(),
            debug = ?e.debug(),
            "media error: {}",
            e.error()
        ),
        gst::MessageView::Warning(w) => tracing::warn!(
            pool,
            element = %element(),
            debug = ?w.debug(),
            "media warning: {}",
            w.error()
        ),
        _ => {}
    }
}

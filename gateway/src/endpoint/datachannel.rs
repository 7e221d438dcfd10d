//! Data channels on a webrtcbin: the ones the endpoint opens (recreated whenever the peer's
//! webrtcbin is rebuilt) and the ones the remote opens, with their messages as events.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;

/// A data channel the endpoint opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    /// The label both ends see.
    pub label: String,
    /// In-order delivery (the WebRTC default).
    pub ordered: bool,
    /// Retransmissions before a message is given up (`None`: reliable).
    pub max_retransmits: Option<u32>,
}

impl ChannelSpec {
    /// A reliable, ordered channel.
    pub fn reliable(label: &str) -> Self {
        ChannelSpec {
            label: label.to_string(),
            ordered: true,
            max_retransmits: None,
        }
    }
}

/// One message on a data channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// What a channel reports.
#[derive(Debug)]
pub enum ChannelSignal {
    /// The channel labelled `label` opened.
    Open {
        /// The channel's label.
        label: String,
    },
    /// The channel labelled `label` closed.
    Closed {
        /// The channel's label.
        label: String,
    },
    /// A message arrived on the channel labelled `label`.
    Message {
        /// The channel's label.
        label: String,
        /// What arrived.
        payload: Payload,
    },
}

/// Opens `spec` on `webrtcbin` (which then needs negotiation, if it is the first channel).
pub fn create(
    webrtcbin: &gst::Element,
    spec: &ChannelSpec,
) -> Option<gst_webrtc::WebRTCDataChannel> {
    let mut options = gst::Structure::builder("config").field("ordered", spec.ordered);
    if let Some(n) = spec.max_retransmits {
        options = options.field("max-retransmits", n as i32);
    }
    webrtcbin.emit_by_name::<Option<gst_webrtc::WebRTCDataChannel>>(
        "create-data-channel",
        &[&spec.label, &options.build()],
    )
}

/// Reports the channel's open, close and messages through `report`.
pub fn watch(
    channel: &gst_webrtc::WebRTCDataChannel,
    report: impl Fn(ChannelSignal) + Clone + Send + Sync + 'static,
) {
    let label = channel.label().map(|l| l.to_string()).unwrap_or_default();
    let (r, l) = (report.clone(), label.clone());
    channel.connect_on_open(move |_| r(ChannelSignal::Open { label: l.clone() }));
    let (r, l) = (report.clone(), label.clone());
    channel.connect_on_close(move |_| r(ChannelSignal::Closed { label: l.clone() }));
    let (r, l) = (report.clone(), label.clone());
    channel.connect_on_message_string(move |_, text| {
        r(ChannelSignal::Message {
            label: l.clone(),
            payload: Payload::Text(text.unwrap_or_default().to_string()),
        })
    });
    let (r, l) = (report, label);
    channel.connect_on_message_data(move |_, data| {
        r(ChannelSignal::Message {
            label: l.clone(),
            payload: Payload::Binary(data.map(|d| d.to_vec()).unwrap_or_default()),
        })
    });
}

/// The label and options of a channel (one the remote opened), to open it again.
pub fn spec_of(channel: &gst_webrtc::WebRTCDataChannel) -> ChannelSpec {
    let max_retransmits = channel.property::<i32>("max-retransmits");
    ChannelSpec {
        label: channel.label().map(|l| l.to_string()).unwrap_or_default(),
        ordered: channel.property::<bool>("ordered"),
        max_retransmits: u32::try_from(max_retransmits).ok(),
    }
}

/// Sends on an open channel. webrtcbin 1.22 leaks buffers sent on a channel that is not open,
/// so a closed or connecting channel is refused here.
pub fn send(channel: &gst_webrtc::WebRTCDataChannel, payload: &Payload) -> bool {
    if channel.ready_state() != gst_webrtc::WebRTCDataChannelState::Open {
        return false;
    }
    let result = match payload {
        Payload::Text(t) => channel.send_string_full(Some(t)),
        Payload::Binary(b) => channel.send_data_full(Some(&gst::glib::Bytes::from(b.as_slice()))),
    };
    if let Err(e) = &result {
        tracing::warn!(label = ?channel.label(), "sending on a data channel failed: {e}");
    }
    result.is_ok()
}

/// Whether the channel is open (sending on any other is refused, see [`send`]).
pub fn is_open(channel: &gst_webrtc::WebRTCDataChannel) -> bool {
    channel.ready_state() == gst_webrtc::WebRTCDataChannelState::Open
}

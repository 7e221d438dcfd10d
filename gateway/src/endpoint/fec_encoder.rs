//! The FEC encoder webrtcbin puts on every stream it sends, emptied.
//!
//! webrtcbin 1.22 puts a bin with `rtpulpfecenc` and `rtpredenc` on the path of every stream it
//! sends, whatever was negotiated; the pair only passes packets on unless the transceiver's
//! `fec-type` asks for ULPFEC and RED, which poolgate never sets. Neither element takes a buffer
//! list whole: each splits a list into single buffers, so everything after them (the RTP
//! session, the retransmission store, SRTP, the ICE sink) ran once a packet instead of once a
//! frame, for every peer. So when webrtcbin adds such a bin, before it links it, the bin's pads
//! are moved onto a pass-through that keeps lists. The encoders stay in the bin, unlinked:
//! webrtcbin still holds and configures them, and they are freed with the bin.

use gstreamer as gst;
use gstreamer::prelude::*;

/// The encoders webrtcbin's FEC bin holds.
const ENCODERS: [&str; 2] = ["rtpulpfecenc", "rtpredenc"];

/// Empties every FEC encoder bin `webrtcbin` adds from now on (see the module doc). Call before
/// its first sink pad is requested.
pub fn keep_out(webrtcbin: &gst::Element) {
    let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
        return;
    };
    bin.connect_element_added(|_, element| {
        let Some(fec) = element.downcast_ref::<gst::Bin>() else {
            return;
        };
        if !is_fec_encoder(fec) {
            return;
        }
        if let Err(e) = bypass(fec) {
            // The stream is sent as before, a packet at a time.
            tracing::warn!("webrtcbin's FEC encoder stays on a sent stream: {e}");
        }
    });
}

/// Whether `bin` is webrtcbin's FEC encoder bin: the encoders and nothing else.
fn is_fec_encoder(bin: &gst::Bin) -> bool {
    let children = bin.children();
    !children.is_empty()
        && children.iter().all(|e| {
            e.factory()
                .is_some_and(|f| ENCODERS.contains(&f.name().as_str()))
        })
}

/// Moves the ghost pads of `fec` onto a pass-through; an error leaves `fec` as it was.
fn bypass(fec: &gst::Bin) -> Result<(), String> {
    let ghost = |name: &str| {
        fec.static_pad(name)
            .and_then(|p| p.downcast::<gst::GhostPad>().ok())
            .ok_or_else(|| format!("its bin has no ghost pad `{name}`"))
    };
    let (sink, src) = (ghost("sink")?, ghost("src")?);
    if sink.peer().is_some() || src.peer().is_some() {
        return Err("its bin was linked before poolgate saw it".into());
    }
    // clocksync without sync passes buffers and lists on, untouched.
    let pass = gst::ElementFactory::make("clocksync")
        .property("sync", false)
        .build()
        .map_err(|e| format!("no clocksync element: {e}"))?;
    fec.add(&pass).map_err(|e| e.to_string())?;
    let old_sink = sink.target();
    let moved = sink
        .set_target(pass.static_pad("sink").as_ref())
        .and_then(|_| src.set_target(pass.static_pad("src").as_ref()));
    if let Err(e) = moved {
        let _ = sink.set_target(old_sink.as_ref());
        let _ = fec.remove(&pass);
        return Err(format!("its pads could not be moved: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A bin like webrtcbin's FEC encoder: `rtpulpfecenc ! rtpredenc` between ghost pads.
    fn fec_bin() -> gst::Bin {
        gst::init().unwrap();
        let bin = gst::Bin::new();
        let fec = gst::ElementFactory::make("rtpulpfecenc").build().unwrap();
        let red = gst::ElementFactory::make("rtpredenc").build().unwrap();
        bin.add_many([&fec, &red]).unwrap();
        fec.link(&red).unwrap();
        for (element, name) in [(&fec, "sink"), (&red, "src")] {
            let pad = gst::GhostPad::with_target(&element.static_pad(name).unwrap()).unwrap();
            bin.add_pad(&pad).unwrap();
        }
        bin
    }

    /// Pushes one list of `packets` RTP packets through `middle` (added to a parent bin, which
    /// `keep_out` watches if `watched`) and returns the sizes of the lists that came out (a
    /// single buffer counts as a list of 1).
    fn lists_out(middle: gst::Element, watched: bool, packets: usize) -> Vec<usize> {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        if watched {
            keep_out(pipeline.upcast_ref());
        }
        let caps = "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96";
        let src = gstreamer_app::AppSrc::builder()
            .caps(&caps.parse::<gst::Caps>().unwrap())
            .format(gst::Format::Time)
            .build();
        let sink = gst::ElementFactory::make("fakesink").build().unwrap();
        pipeline
            .add_many([src.upcast_ref(), &middle, &sink])
            .unwrap();
        gst::Element::link_many([src.upcast_ref(), &middle, &sink]).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        sink.static_pad("sink").unwrap().add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                let n = match &info.data {
                    Some(gst::PadProbeData::BufferList(l)) => l.len(),
                    _ => 1,
                };
                s.lock().unwrap().push(n);
                gst::PadProbeReturn::Ok
            },
        );
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut list = gst::BufferList::new_sized(packets);
        for seq in 0..packets as u8 {
            let mut packet = vec![0x80, 96, 0, seq, 0, 0, 0, 1, 0, 0, 0, 7];
            packet.extend_from_slice(&[0x41; 100]);
            let mut buffer = gst::Buffer::from_mut_slice(packet);
            buffer.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
            list.get_mut().unwrap().add(buffer);
        }
        src.push_buffer_list(list).unwrap();
        src.end_of_stream().unwrap();
        let bus = pipeline.bus().unwrap();
        let ended = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(10),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(
            ended.is_some_and(|m| m.type_() == gst::MessageType::Eos),
            "the stream did not end"
        );
        let out = seen.lock().unwrap().clone();
        out
    }

    #[test]
    fn a_list_goes_through_the_fec_encoder_bin_whole() {
        assert_eq!(lists_out(fec_bin().upcast(), true, 4), vec![4]);
    }

    #[test]
    fn without_it_the_encoders_split_a_list() {
        assert_eq!(lists_out(fec_bin().upcast(), false, 4), vec![1, 1, 1, 1]);
    }

    #[test]
    fn other_bins_are_left_as_they_are() {
        gst::init().unwrap();
        let bin = gst::Bin::new();
        let identity = gst::ElementFactory::make("identity").build().unwrap();
        bin.add(&identity).unwrap();
        for name in ["sink", "src"] {
            let pad = gst::GhostPad::with_target(&identity.static_pad(name).unwrap()).unwrap();
            bin.add_pad(&pad).unwrap();
        }
        // identity (a base transform) splits lists: the bin kept it.
        assert_eq!(lists_out(bin.clone().upcast(), true, 3), vec![1, 1, 1]);
        assert_eq!(bin.children().len(), 1);
    }
}

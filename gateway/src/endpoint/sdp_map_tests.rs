use super::*;

/// Our side of a session a browser opened (its microphone and camera, its data channel) and
/// we added our video to, as it went on the wire.
const LOCAL: &str = "v=0\r\n\
    o=- 1 2 IN IP4 0.0.0.0\r\n\
    s=-\r\n\
    t=0 0\r\n\
    a=group:BUNDLE 0 1 2 3\r\n\
    m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
    a=mid:0\r\n\
    a=recvonly\r\n\
    a=rtpmap:111 OPUS/48000/2\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
    a=mid:1\r\n\
    a=recvonly\r\n\
    a=rtpmap:96 VP8/90000\r\n\
    m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
    a=mid:2\r\n\
    a=sctp-port:5000\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
    a=mid:3\r\n\
    a=sendrecv\r\n\
    a=rtpmap:96 VP8/90000\r\n";

/// The browser's side of the same session.
const REMOTE: &str = "v=0\r\n\
    a=group:BUNDLE 0 1 2 3\r\n\
    m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n\
    a=mid:0\r\n\
    a=sendrecv\r\n\
    a=rtpmap:111 opus/48000/2\r\n\
    a=rtpmap:63 red/48000/2\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
    a=mid:1\r\n\
    a=sendrecv\r\n\
    a=rtpmap:96 VP8/90000\r\n\
    a=rtpmap:97 rtx/90000\r\n\
    m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
    a=mid:2\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
    a=mid:3\r\n\
    a=recvonly\r\n\
    a=rtpmap:96 VP8/90000\r\n";

/// A fresh webrtcbin's first offer for that session: its sending transceiver first, then the
/// receive-only ones the adapter added, the data section last, all with its own mids.
const FRESH_OFFER: &str = "v=0\r\n\
    o=- 7 0 IN IP4 0.0.0.0\r\n\
    s=-\r\n\
    t=0 0\r\n\
    a=ice-options:trickle\r\n\
    a=group:BUNDLE video0 audio1 video2 application3\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
    a=mid:video0\r\n\
    a=sendrecv\r\n\
    a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
    a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
    a=rtpmap:96 VP8/90000\r\n\
    m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
    a=mid:audio1\r\n\
    a=recvonly\r\n\
    a=rtpmap:111 OPUS/48000/2\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
    a=mid:video2\r\n\
    a=recvonly\r\n\
    a=rtpmap:96 VP8/90000\r\n\
    m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
    a=mid:application3\r\n\
    a=sctp-port:5000\r\n";

fn section_lines(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter(|l| l.starts_with("m=") || l.starts_with("a=mid:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_layout_names_each_section_its_kind_whether_ours_and_the_remote_codec() {
    let layout = layout(LOCAL, REMOTE);
    let summary: Vec<_> = layout
        .iter()
        .map(|s| (s.kind.as_str(), s.mid.as_str(), s.ours))
        .collect();
    assert_eq!(
        summary,
        [
            ("audio", "0", false),
            ("video", "1", false),
            ("application", "2", false),
            ("video", "3", true)
        ]
    );
    assert_eq!(
        layout[0].codec,
        Some(Codec {
            payload: 111,
            name: "opus".into(),
            clock_rate: 48000,
            channels: Some(2)
        })
    );
    assert_eq!(layout[1].codec.as_ref().map(|c| c.payload), Some(96));
    assert_eq!(layout[2].codec, None);
}

#[test]
fn a_fresh_offer_goes_out_in_the_session_order_with_the_session_mids() {
    let (map, missing) = SectionMap::matching(FRESH_OFFER, &layout(LOCAL, REMOTE));
    assert!(missing.is_empty(), "{missing:?}");
    assert!(!map.is_identity());
    let wire = map.to_wire(FRESH_OFFER);
    assert_eq!(
        section_lines(&wire),
        [
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=mid:0",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=mid:1",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "a=mid:2",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=mid:3",
        ]
    );
    assert!(wire.contains("\r\na=group:BUNDLE 0 1 2 3\r\n"), "{wire}");
    // Our sending section kept its attributes, except the mid header extension.
    assert!(
        wire.contains("a=mid:3\r\na=sendrecv\r\na=extmap:2 http"),
        "{wire}"
    );
    assert!(!wire.contains("sdes:mid"), "{wire}");
    // Session-level lines kept in place, endings kept.
    assert!(wire
        .starts_with("v=0\r\no=- 7 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-options:trickle\r\n"));
    assert!(wire.ends_with("\r\n"));
    assert_eq!(
        wire.matches('\n').count(),
        FRESH_OFFER.matches('\n').count() - 1
    );
}

#[test]
fn translating_there_and_back_is_lossless_apart_from_the_mid_extension() {
    let (map, _) = SectionMap::matching(FRESH_OFFER, &layout(LOCAL, REMOTE));
    let without_mid_extension =
        FRESH_OFFER.replace("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n", "");
    assert_eq!(map.to_bin(&map.to_wire(FRESH_OFFER)), without_mid_extension);
}

#[test]
fn the_remote_answer_reaches_webrtcbin_in_its_own_order_and_mids() {
    let (map, _) = SectionMap::matching(FRESH_OFFER, &layout(LOCAL, REMOTE));
    let answer = REMOTE.replace(
        "a=group:BUNDLE 0 1 2 3\r\n",
        "a=group:BUNDLE 0 1 2 3\r\na=extmap-allow-mixed\r\n",
    );
    let bin = map.to_bin(&answer);
    assert_eq!(
        section_lines(&bin),
        [
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=mid:video0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 63",
            "a=mid:audio1",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
            "a=mid:video2",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "a=mid:application3",
        ]
    );
    assert!(bin.contains("a=group:BUNDLE video0 audio1 video2 application3\r\n"));
    assert!(bin.contains("a=extmap-allow-mixed\r\n"));
}

#[test]
fn candidates_go_to_each_side_s_bundle_transport() {
    let (map, _) = SectionMap::matching(FRESH_OFFER, &layout(LOCAL, REMOTE));
    // webrtcbin gathers on its bundle transport (its first section): the wire's first section.
    let local = map.candidate_to_wire(0, "candidate:1 1 UDP 1 127.0.0.1 5000 typ host".into());
    assert_eq!(local.sdp_mline_index, Some(0));
    assert_eq!(local.sdp_mid.as_deref(), Some("0"));
    assert_eq!(
        local.candidate,
        "candidate:1 1 UDP 1 127.0.0.1 5000 typ host"
    );
    // A browser's candidate, whatever section it names, goes to webrtcbin's first.
    let mut remote = IceCandidate {
        candidate: "candidate:2 1 udp 1 127.0.0.1 6000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    };
    assert_eq!(map.candidate_to_bin(&remote), 0);
    remote.sdp_mid = None;
    remote.sdp_mline_index = Some(2);
    assert_eq!(map.candidate_to_bin(&remote), 0);
    // Without a map, the index is kept.
    assert_eq!(SectionMap::default().candidate_to_bin(&remote), 2);
}

#[test]
fn sections_added_later_come_after_the_mapped_ones_on_both_sides() {
    let (map, _) = SectionMap::matching(FRESH_OFFER, &layout(LOCAL, REMOTE));
    // webrtcbin adds a fifth section (a source published later).
    let reoffer =
        format!("{FRESH_OFFER}m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:audio4\r\na=sendrecv\r\n")
            .replace(
                "BUNDLE video0 audio1 video2 application3",
                "BUNDLE video0 audio1 video2 application3 audio4",
            );
    let wire = map.to_wire(&reoffer);
    assert!(wire.ends_with("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:audio4\r\na=sendrecv\r\n"));
    assert!(wire.contains("a=group:BUNDLE 0 1 2 3 audio4\r\n"), "{wire}");
    assert_eq!(map.wire_index(4), 4);
    assert_eq!(map.bin_index(4), 4);
    // The remote's answer comes back the same way.
    assert_eq!(
        map.to_bin(&wire),
        reoffer.replace("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n", "")
    );
}

#[test]
fn an_offer_without_a_session_section_reports_it_missing() {
    // Our video's caps had not reached the fresh webrtcbin yet: no sending section.
    let start = FRESH_OFFER.find("m=video").unwrap();
    let end = FRESH_OFFER.find("m=audio").unwrap();
    let partial = format!("{}{}", &FRESH_OFFER[..start], &FRESH_OFFER[end..]);
    let (map, missing) = SectionMap::matching(&partial, &layout(LOCAL, REMOTE));
    assert_eq!(missing, ["3"]);
    // What could be matched (the leading sections) is.
    assert_eq!(map.bin_index(0), 0);
    assert_eq!(map.bin_index(2), 2);
    // A missing section in the middle leaves everything after it unmapped.
    let no_audio = FRESH_OFFER.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:audio1\r\na=recvonly\r\na=rtpmap:111 OPUS/48000/2\r\n", "");
    let (map, missing) = SectionMap::matching(&no_audio, &layout(LOCAL, REMOTE));
    assert_eq!(missing, ["0", "1", "2", "3"]);
    assert!(map.is_identity());
}

#[test]
fn the_empty_and_the_identity_map_change_nothing() {
    let empty = SectionMap::default();
    assert!(empty.is_identity());
    assert_eq!(empty.to_wire(FRESH_OFFER), FRESH_OFFER);
    assert_eq!(empty.to_bin(REMOTE), REMOTE);
    // webrtcbin already has the session's mids in the session's order (it offered first).
    let (same, missing) = SectionMap::matching(LOCAL, &layout(LOCAL, REMOTE));
    assert!(missing.is_empty());
    assert!(same.is_identity());
    assert_eq!(same.to_wire(LOCAL), LOCAL);
    let c = same.candidate_to_wire(2, "c".into());
    assert_eq!((c.sdp_mline_index, c.sdp_mid), (Some(2), None));
}

#[test]
fn a_description_that_does_not_fit_the_map_is_left_alone() {
    let (map, _) = SectionMap::matching(FRESH_OFFER, &layout(LOCAL, REMOTE));
    let short = "v=0\r\nm=audio 9 X 0\r\na=mid:0\r\n";
    assert_eq!(map.to_bin(short), short);
}

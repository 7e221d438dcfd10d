//! Keyframe requests to a passthrough camera. rtpbin turns the endpoint's upstream
//! force-key-unit event into an RTCP PLI only for a payload type whose caps carry
//! `rtcp-fb-nack-pli`, which rtspsrc takes from the camera's SDP (`a=rtcp-fb:<pt> nack pli`).
//! Cameras rarely announce it, so the bridge adds it to the SDP before rtspsrc configures the
//! streams. A camera that ignores PLI just sends its next keyframe on its own schedule.

/// The `a=rtcp-fb` values to add to one SDP media section: `<pt> nack pli` for each payload
/// type of a video section (`formats`) that does not have it yet (`rtcp_fb`: the section's
/// `a=rtcp-fb` values; `*` stands for every payload type).
pub fn missing_pli(media: &str, formats: &[&str], rtcp_fb: &[&str]) -> Vec<String> {
    if media != "video" {
        return Vec::new();
    }
    let has_pli = |pt: &str| {
        rtcp_fb.iter().any(|fb| {
            let mut words = fb.split_whitespace();
            let target = words.next();
            let rest: Vec<&str> = words.collect();
            (target == Some(pt) || target == Some("*")) && rest == ["nack", "pli"]
        })
    };
    formats
        .iter()
        .filter(|pt| !pt.is_empty() && !has_pli(pt))
        .map(|pt| format!("{pt} nack pli"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_payload_types_get_pli() {
        assert_eq!(missing_pli("video", &["96"], &[]), ["96 nack pli"]);
        assert_eq!(
            missing_pli("video", &["96", "97"], &["96 nack pli", "97 nack"]),
            ["97 nack pli"]
        );
        assert_eq!(
            missing_pli("video", &["96"], &["96 ccm fir", "96 goog-remb"]),
            ["96 nack pli"]
        );
    }

    #[test]
    fn nothing_twice_and_nothing_for_audio() {
        assert!(missing_pli("video", &["96"], &["* nack pli"]).is_empty());
        assert!(missing_pli("video", &["96"], &["96  nack   pli"]).is_empty());
        assert!(missing_pli("audio", &["0"], &[]).is_empty());
        assert!(missing_pli("application", &["107"], &[]).is_empty());
    }
}

//! Which alternative format of a published track (see
//! [`MediaSource::Alternatives`](super::media::MediaSource::Alternatives)) a peer takes, read
//! from the answer of an exchange: the first format of its media section that is one of ours.
//! Answers list formats in the answerer's order of preference, and a browser leaves out those
//! it cannot decode (Chromium 156 drops an H.264 High `profile-level-id`), so the peer gets the
//! best format it accepted.

/// The index (into `payloads`, ours in order of preference) of the format the answer's media
/// section number `mline` (0-based) takes first. `None` when the answer has no such section, or
/// the section is rejected (port 0) or names none of ours.
pub fn choose(answer: &str, mline: usize, payloads: &[Option<u8>]) -> Option<usize> {
    let section = answer.lines().filter(|l| l.starts_with("m=")).nth(mline)?;
    // m=<media> <port> <proto> <fmt> ...
    let mut fields = section.trim_end().split(' ').skip(1);
    if fields.next()? == "0" {
        return None;
    }
    fields.skip(1).find_map(|format| {
        let pt = format.parse::<u8>().ok()?;
        payloads.iter().position(|p| *p == Some(pt))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: [Option<u8>; 2] = [Some(102), Some(103)];

    fn answer(video: &str) -> String {
        format!(
            "v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:audio0\r\n\
             {video}\r\na=mid:video1\r\n\
             m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
        )
    }

    #[test]
    fn a_browser_without_the_camera_profile_gets_the_fallback() {
        // Chromium answers only what it decodes: constrained baseline, plus its RTX.
        let a = answer("m=video 9 UDP/TLS/RTP/SAVPF 103 104");
        assert_eq!(choose(&a, 1, &OURS), Some(1));
    }

    #[test]
    fn a_peer_that_accepts_both_gets_its_first_choice() {
        let a = answer("m=video 9 UDP/TLS/RTP/SAVPF 102 103");
        assert_eq!(choose(&a, 1, &OURS), Some(0));
        let a = answer("m=video 9 UDP/TLS/RTP/SAVPF 103 102");
        assert_eq!(choose(&a, 1, &OURS), Some(1));
    }

    #[test]
    fn no_choice_from_a_rejected_missing_or_foreign_section() {
        assert_eq!(
            choose(&answer("m=video 0 UDP/TLS/RTP/SAVPF 102"), 1, &OURS),
            None
        );
        assert_eq!(
            choose(&answer("m=video 9 UDP/TLS/RTP/SAVPF 96 97"), 1, &OURS),
            None
        );
        assert_eq!(
            choose(&answer("m=video 9 UDP/TLS/RTP/SAVPF 102"), 5, &OURS),
            None
        );
        // Audio's PCMU is payload 0: not one of ours, and another section anyway.
        assert_eq!(
            choose(&answer("m=video 9 UDP/TLS/RTP/SAVPF 102"), 0, &OURS),
            None
        );
        assert_eq!(choose("", 0, &OURS), None);
    }
}

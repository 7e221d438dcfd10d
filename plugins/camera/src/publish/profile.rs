//! H.264 `profile-level-id` (RFC 6184): the three bytes after the SPS NAL header
//! (`profile_idc`, the constraint flags, `level_idc`) in hex, as the SDP carries them. Read from
//! the stream's SPS when a frame carries one, else from the parser's `profile` and `level` caps.
//! Browsers match H.264 formats on the profile, so a camera's true profile is what decides which
//! peers can take its bitstream as it is.

/// The `profile-level-id` of the first SPS in `stream` (Annex B byte-stream).
pub fn from_sps(stream: &[u8]) -> Option<String> {
    let mut i = 0;
    while i + 3 < stream.len() {
        let start = match stream[i..i + 3] {
            [0, 0, 1] => i + 3,
            _ => {
                i += 1;
                continue;
            }
        };
        // NAL header: forbidden bit, nal_ref_idc, nal_unit_type 7 (SPS).
        if stream.get(start).is_some_and(|h| h & 0x1f == 7) {
            let b = stream.get(start + 1..start + 4)?;
            return Some(format!("{:02x}{:02x}{:02x}", b[0], b[1], b[2]));
        }
        i = start;
    }
    None
}

/// The `profile-level-id` of h264parse's caps fields `profile` and `level`.
pub fn from_caps(profile: &str, level: &str) -> Option<String> {
    let (profile_idc, constraints): (u8, u8) = match profile {
        "constrained-baseline" => (0x42, 0xe0),
        "baseline" => (0x42, 0x00),
        "main" => (0x4d, 0x00),
        "extended" => (0x58, 0x00),
        "high" => (0x64, 0x00),
        "constrained-high" => (0x64, 0x0c),
        "progressive-high" => (0x64, 0x08),
        "high-10" => (0x6e, 0x00),
        "high-4:2:2" => (0x7a, 0x00),
        "high-4:4:4" => (0xf4, 0x00),
        _ => return None,
    };
    let level_idc: u8 = match level {
        // Level 1b: constraint_set3 with level 11 below High, level 9 from High on.
        "1b" if profile_idc < 0x64 => {
            return Some(format!("{profile_idc:02x}{:02x}0b", constraints | 0x10))
        }
        "1b" => 9,
        _ => {
            let (major, minor) = level.split_once('.').unwrap_or((level, "0"));
            let (major, minor): (u8, u8) = (major.parse().ok()?, minor.parse().ok()?);
            major.checked_mul(10)?.checked_add(minor)?
        }
    };
    Some(format!("{profile_idc:02x}{constraints:02x}{level_idc:02x}"))
}

/// Whether every browser decodes this profile: constrained baseline (`profile_idc` 66 with
/// constraint_set1), which WebRTC requires of every H.264 implementation.
pub fn is_constrained_baseline(profile_level_id: &str) -> bool {
    let byte = |at: usize| u8::from_str_radix(profile_level_id.get(at..at + 2)?, 16).ok();
    matches!((byte(0), byte(2)), (Some(0x42), Some(c)) if c & 0x40 != 0)
}

/// The `profile-level-id` of the constrained-baseline fallback for a camera whose own is
/// `camera`: the same picture, so its level is enough (at least 3.1, what browsers list).
pub fn fallback_for(camera: &str) -> String {
    let level = camera
        .get(4..6)
        .and_then(|l| u8::from_str_radix(l, 16).ok())
        .unwrap_or(0x1f);
    format!("42e0{:02x}", level.max(0x1f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sps_gives_the_true_profile() {
        // AUD, then an SPS of High 4.0 (x264-like), then a PPS.
        let stream = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0, 0, 1, 0x68,
            0xeb,
        ];
        assert_eq!(from_sps(&stream).as_deref(), Some("640028"));
        // Three-byte start code, constrained High 3.0 (openh264's "high").
        assert_eq!(
            from_sps(&[0, 0, 1, 0x27, 0x64, 0x0c, 0x1e, 0x01]).as_deref(),
            Some("640c1e")
        );
        // A slice only, and a truncated SPS: nothing.
        assert_eq!(from_sps(&[0, 0, 0, 1, 0x41, 0x9a, 0x00]), None);
        assert_eq!(from_sps(&[0, 0, 1, 0x67, 0x64]), None);
        assert_eq!(from_sps(&[]), None);
    }

    #[test]
    fn caps_give_the_profile_when_no_sps_came() {
        assert_eq!(from_caps("high", "4").as_deref(), Some("640028"));
        assert_eq!(from_caps("high", "3.1").as_deref(), Some("64001f"));
        assert_eq!(
            from_caps("constrained-baseline", "3.1").as_deref(),
            Some("42e01f")
        );
        assert_eq!(from_caps("main", "1b").as_deref(), Some("4d100b"));
        assert_eq!(from_caps("high", "1b").as_deref(), Some("640009"));
        assert_eq!(
            from_caps("constrained-high", "5.1").as_deref(),
            Some("640c33")
        );
        assert_eq!(from_caps("high", "x"), None);
        assert_eq!(from_caps("scalable-high", "3"), None);
    }

    #[test]
    fn only_constrained_baseline_goes_to_everyone() {
        for every in ["42e01f", "42c01e", "42401f"] {
            assert!(is_constrained_baseline(every), "{every}");
        }
        for not in ["42001f", "4d001f", "640c1e", "640028", "f4001f", "", "4"] {
            assert!(!is_constrained_baseline(not), "{not}");
        }
    }

    #[test]
    fn the_fallback_keeps_the_camera_level() {
        assert_eq!(fallback_for("640c1e"), "42e01f");
        assert_eq!(fallback_for("640028"), "42e028");
        assert_eq!(fallback_for("??"), "42e01f");
    }
}

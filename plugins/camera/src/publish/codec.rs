//! Encoded media caps -> how it is payloaded for the browsers: the payloader and the RTP caps
//! the endpoint publishes (`media`, `encoding-name`, `payload`, `clock-rate`).

/// One codec browsers take, as poolgate sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpCodec {
    /// The RTP encoding name: `VP8`, `H264`, `OPUS`, `PCMU`, `PCMA`.
    pub name: &'static str,
    pub media: &'static str,
    pub payload: u32,
    pub clock_rate: u32,
    /// The payloader, as `gst-launch` text.
    pub payloader: &'static str,
    /// The encoded caps it payloads (`video/x-h264`, ...).
    pub encoded: &'static str,
}

impl RtpCodec {
    /// The codec of encoded caps named `caps_name` (`video/x-h264`, `audio/x-opus`, ...).
    pub fn for_caps(caps_name: &str) -> Option<RtpCodec> {
        let (name, media, payload, clock_rate, payloader, encoded) = match caps_name {
            "video/x-vp8" => (
                "VP8",
                "video",
                96,
                90000,
                "rtpvp8pay mtu=1200 picture-id-mode=15-bit",
                "video/x-vp8",
            ),
            // Parameter sets before every keyframe: a peer that joins decodes from the next one.
            "video/x-h264" => (
                "H264",
                "video",
                102,
                90000,
                "rtph264pay mtu=1200 config-interval=-1 aggregate-mode=zero-latency",
                "video/x-h264",
            ),
            "audio/x-opus" => ("OPUS", "audio", 111, 48000, "rtpopuspay", "audio/x-opus"),
            "audio/x-mulaw" => ("PCMU", "audio", 0, 8000, "rtppcmupay", "audio/x-mulaw"),
            "audio/x-alaw" => ("PCMA", "audio", 8, 8000, "rtppcmapay", "audio/x-alaw"),
            _ => return None,
        };
        Some(RtpCodec {
            name,
            media,
            payload,
            clock_rate,
            payloader,
            encoded,
        })
    }

    /// The RTP caps the endpoint is given.
    pub fn rtp_caps(&self) -> String {
        format!(
            "application/x-rtp,media={},encoding-name={},payload={},clock-rate={}",
            self.media, self.name, self.payload, self.clock_rate
        )
    }

    /// The payloader with its payload type.
    pub fn payloader_description(&self) -> String {
        format!("{} pt={}", self.payloader, self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_codecs_have_payloaders() {
        let h264 = RtpCodec::for_caps("video/x-h264").unwrap();
        assert_eq!(
            h264.rtp_caps(),
            "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000"
        );
        assert!(h264.payloader_description().contains("config-interval=-1"));
        assert_eq!(RtpCodec::for_caps("audio/x-mulaw").unwrap().payload, 0);
        assert_eq!(
            RtpCodec::for_caps("audio/x-opus").unwrap().clock_rate,
            48000
        );
        assert_eq!(RtpCodec::for_caps("video/x-h265"), None);
        assert_eq!(RtpCodec::for_caps("audio/mpeg"), None);
    }
}

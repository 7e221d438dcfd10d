//! What to build, decided without GStreamer: the test camera's pipeline, the branch behind each
//! stream an RTSP camera announces (passthrough when the browsers take its codec, else a
//! transcode), and an operator's own pipeline with its placeholders filled.

use super::template::{builtin, fill, TemplateError};
use crate::config::{Config, VideoCodec};
use crate::source::url::CameraUrl;

/// Audio or video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Video,
    Audio,
}

impl Kind {
    /// The name of the `appsink` a camera pipeline ends this kind of media in.
    pub fn sink_name(self) -> &'static str {
        match self {
            Kind::Video => "video",
            Kind::Audio => "audio",
        }
    }

    /// From an RTP `media` caps field.
    pub fn from_media(media: &str) -> Option<Kind> {
        match media {
            "video" => Some(Kind::Video),
            "audio" => Some(Kind::Audio),
            _ => None,
        }
    }
}

/// The elements between one RTSP stream (RTP caps) and its `appsink`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch {
    pub kind: Kind,
    /// `gst-launch` text for a bin with one sink and one src pad.
    pub description: String,
    /// Decodes and encodes (false: the camera's own bitstream goes to the browsers).
    pub transcoding: bool,
    /// The camera's RTP packets go to the browsers as they are (see
    /// [`crate::publish::relay`]); the branch still makes frames, for the metrics and for a
    /// fallback format.
    pub relay: bool,
}

/// A bitrate for an encoder, bits/s, from the picture size and rate: about 0.1 bit per pixel.
pub fn bitrate(width: u32, height: u32, framerate: u32) -> u32 {
    let bits = width as u64 * height as u64 * framerate as u64 / 10;
    bits.clamp(300_000, 4_000_000) as u32
}

fn encoder(codec: VideoCodec, bitrate: u32) -> Result<String, TemplateError> {
    let template = match codec {
        VideoCodec::H264 => builtin::ENCODE_H264,
        VideoCodec::Auto | VideoCodec::Vp8 => builtin::ENCODE_VP8,
    };
    fill(template, &[("bitrate", &bitrate.to_string())])
}

/// The test camera: pattern, clock and (with `audio`) a tone, encoded once.
pub fn test_pipeline(config: &Config) -> Result<String, TemplateError> {
    let rate = bitrate(config.width, config.height, config.framerate);
    let audio = if config.audio {
        fill(builtin::TEST_AUDIO, &[])?
    } else {
        String::new()
    };
    fill(
        builtin::TEST,
        &[
            ("width", &config.width.to_string()),
            ("height", &config.height.to_string()),
            ("framerate", &config.framerate.to_string()),
            ("video_encoder", &encoder(config.video_codec, rate)?),
            ("audio_chain", &audio),
        ],
    )
}

/// The branch for an RTSP stream of `media` (`video`, `audio`) in `encoding_name` (the RTP
/// name: `H264`, `H265`, `JPEG`, `MPEG4-GENERIC`, ...). `None`: not published (audio is off,
/// or the media is neither audio nor video).
pub fn rtsp_branch(
    config: &Config,
    media: &str,
    encoding_name: &str,
) -> Result<Option<Branch>, TemplateError> {
    let Some(kind) = Kind::from_media(media) else {
        return Ok(None);
    };
    let name = encoding_name.to_ascii_uppercase();
    let (template, transcoding) = match kind {
        Kind::Audio if !config.audio => return Ok(None),
        Kind::Audio => match name.as_str() {
            "PCMU" => (builtin::RTSP_PCMU, false),
            "PCMA" => (builtin::RTSP_PCMA, false),
            "OPUS" => (builtin::RTSP_OPUS, false),
            _ => (builtin::TRANSCODE_OPUS, true),
        },
        Kind::Video => match (name.as_str(), config.video_codec) {
            ("H264", VideoCodec::Auto | VideoCodec::H264) => (builtin::RTSP_H264, false),
            ("VP8", VideoCodec::Auto | VideoCodec::Vp8) => (builtin::RTSP_VP8, false),
            _ => (builtin::TRANSCODE_VIDEO, true),
        },
    };
    // A camera's size is not known before its stream decodes: a fixed rate for 720p30.
    let video_encoder = encoder(config.video_codec, bitrate(1280, 720, 30))?;
    let description = fill(template, &[("video_encoder", &video_encoder)])?;
    // H.264 packets need no change but their numbering; re-packetized only when asked to.
    let relay = kind == Kind::Video && name == "H264" && !transcoding && !config.repacketize;
    Ok(Some(Branch {
        kind,
        description,
        transcoding,
        relay,
    }))
}

/// The constrained-baseline fallback of an H.264 stream some browsers cannot decode (see
/// [`crate::publish::outlet`]): decoded and encoded once, at the rate for its size.
pub fn h264_fallback(width: u32, height: u32, framerate: u32) -> Result<String, TemplateError> {
    let video_encoder = encoder(VideoCodec::H264, bitrate(width, height, framerate))?;
    fill(builtin::FALLBACK_H264, &[("video_encoder", &video_encoder)])
}

/// An operator's `pipeline`, filled. Placeholders: `{location}` (the URL without credentials),
/// `{user}`, `{password}`, `{protocols}`, `{latency_ms}`, `{width}`, `{height}`, `{framerate}`,
/// `{video_encoder}`. The result holds the password: never log it.
pub fn custom_pipeline(
    template: &str,
    config: &Config,
    url: Option<&CameraUrl>,
) -> Result<String, TemplateError> {
    let rate = bitrate(config.width, config.height, config.framerate);
    let location = url.map(|u| u.location()).unwrap_or_default();
    let user = url.and_then(|u| u.user.clone()).unwrap_or_default();
    let password = url.and_then(|u| u.password.clone()).unwrap_or_default();
    fill(
        template,
        &[
            ("location", &location),
            ("user", &user),
            ("password", &password),
            ("protocols", config.transport.protocols()),
            ("latency_ms", &config.latency_ms.to_string()),
            ("width", &config.width.to_string()),
            ("height", &config.height.to_string()),
            ("framerate", &config.framerate.to_string()),
            ("video_encoder", &encoder(config.video_codec, rate)?),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use poolgate_plugin_api::parse_config;

    fn config(json: &str) -> Config {
        parse_config(json).unwrap()
    }

    #[test]
    fn test_camera_encodes_once_with_the_chosen_codec() {
        let p = test_pipeline(&config(r#"{"url": "test", "width": 320, "height": 240}"#)).unwrap();
        assert!(p.contains("width=320,height=240,framerate=30/1"), "{p}");
        assert!(p.contains("clockoverlay") && p.contains("vp8enc"), "{p}");
        assert!(
            p.contains("appsink name=video") && p.contains("appsink name=audio"),
            "{p}"
        );
        let p = test_pipeline(&config(
            r#"{"url": "test", "video_codec": "h264", "audio": false}"#,
        ))
        .unwrap();
        assert!(p.contains("openh264enc") && !p.contains("vp8enc"), "{p}");
        assert!(!p.contains("audiotestsrc"), "{p}");
    }

    #[test]
    fn passthrough_when_browsers_take_the_codec() {
        let auto = config(r#"{"url": "rtsp://h/"}"#);
        let b = rtsp_branch(&auto, "video", "H264").unwrap().unwrap();
        assert!(
            !b.transcoding && b.description.starts_with("rtph264depay"),
            "{b:?}"
        );
        assert!(!b.description.contains("enc"), "{b:?}");
        let b = rtsp_branch(&auto, "video", "VP8").unwrap().unwrap();
        assert!(!b.transcoding, "{b:?}");
        for audio in ["PCMU", "PCMA", "OPUS"] {
            let b = rtsp_branch(&auto, "audio", audio).unwrap().unwrap();
            assert!(!b.transcoding && b.kind == Kind::Audio, "{b:?}");
        }
    }

    #[test]
    fn only_passthrough_h264_is_relayed_unless_repacketized() {
        let auto = config(r#"{"url": "rtsp://h/"}"#);
        assert!(rtsp_branch(&auto, "video", "H264").unwrap().unwrap().relay);
        for (media, name) in [("video", "VP8"), ("video", "H265"), ("audio", "PCMU")] {
            let b = rtsp_branch(&auto, media, name).unwrap().unwrap();
            assert!(!b.relay, "{b:?}");
        }
        let vp8 = config(r#"{"url": "rtsp://h/", "video_codec": "vp8"}"#);
        assert!(!rtsp_branch(&vp8, "video", "H264").unwrap().unwrap().relay);
        let cut = config(r#"{"url": "rtsp://h/", "repacketize": true}"#);
        let b = rtsp_branch(&cut, "video", "H264").unwrap().unwrap();
        assert!(!b.relay && !b.transcoding, "{b:?}");
    }

    #[test]
    fn transcode_only_when_needed() {
        let auto = config(r#"{"url": "rtsp://h/"}"#);
        for video in ["H265", "JPEG"] {
            let b = rtsp_branch(&auto, "video", video).unwrap().unwrap();
            assert!(b.transcoding && b.description.contains("vp8enc"), "{b:?}");
        }
        let b = rtsp_branch(&auto, "audio", "MPEG4-GENERIC")
            .unwrap()
            .unwrap();
        assert!(b.transcoding && b.description.contains("opusenc"), "{b:?}");
        // Asked for VP8: an H.264 camera is transcoded; asked for H.264: a VP8 one is.
        let vp8 = config(r#"{"url": "rtsp://h/", "video_codec": "vp8"}"#);
        assert!(
            rtsp_branch(&vp8, "video", "H264")
                .unwrap()
                .unwrap()
                .transcoding
        );
        let h264 = config(r#"{"url": "rtsp://h/", "video_codec": "h264"}"#);
        let b = rtsp_branch(&h264, "video", "VP8").unwrap().unwrap();
        assert!(
            b.transcoding && b.description.contains("openh264enc"),
            "{b:?}"
        );
    }

    #[test]
    fn audio_off_and_other_media_are_not_published() {
        let no_audio = config(r#"{"url": "rtsp://h/", "audio": false}"#);
        assert_eq!(rtsp_branch(&no_audio, "audio", "PCMU").unwrap(), None);
        assert_eq!(rtsp_branch(&no_audio, "application", "X").unwrap(), None);
    }

    #[test]
    fn custom_pipelines_get_the_credentials_apart() {
        let c = config(r#"{"url": "rtsp://u:pw@h:554/s", "transport": "tcp"}"#);
        let url = CameraUrl::parse(&c.url).unwrap();
        let p = custom_pipeline(
            "rtspsrc location={location} user-id={user} user-pw={password} protocols={protocols} latency={latency_ms} ! fakesink",
            &c,
            Some(&url),
        )
        .unwrap();
        assert_eq!(
            p,
            "rtspsrc location=rtsp://h:554/s user-id=u user-pw=pw protocols=tcp latency=0 ! fakesink"
        );
    }

    #[test]
    fn the_h264_fallback_is_constrained_baseline() {
        let f = h264_fallback(640, 480, 30).unwrap();
        assert!(f.starts_with("h264parse ! avdec_h264"), "{f}");
        assert!(
            f.contains("openh264enc") && f.contains("profile=constrained-baseline"),
            "{f}"
        );
        assert!(f.contains("bitrate=921600"), "{f}");
    }

    #[test]
    fn bitrate_is_bounded() {
        assert_eq!(bitrate(16, 16, 1), 300_000);
        assert_eq!(bitrate(1280, 720, 30), 2_764_800);
        assert_eq!(bitrate(3840, 2160, 60), 4_000_000);
    }
}

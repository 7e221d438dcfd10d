//! The bridge's `config` table (README, "Camera bridge") and the checks serde cannot express.

use serde::Deserialize;

use crate::source::url::CameraUrl;

/// A camera bridge's config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `rtsp://user:pass@host:port/path`, `rtsps://…`, or `test` (a test pattern and a tone).
    pub url: String,
    /// How RTSP carries the media.
    #[serde(default)]
    pub transport: Transport,
    /// What the browsers get.
    #[serde(default)]
    pub video_codec: VideoCodec,
    /// Publish the camera's audio too.
    #[serde(default = "yes")]
    pub audio: bool,
    /// Ask a passthrough camera for a keyframe (RTCP PLI) when a peer needs one.
    #[serde(default = "yes")]
    pub request_keyframes: bool,
    /// Cut a passthrough H.264 camera's stream into packets of at most 1,200 bytes, instead of
    /// relaying the camera's own RTP packets as they are.
    #[serde(default)]
    pub repacketize: bool,
    /// `rtspsrc`'s jitter buffer, in ms (0: packets go on as they come).
    #[serde(default)]
    pub latency_ms: u32,
    /// The cap of the reconnect backoff, in seconds.
    #[serde(default = "thirty")]
    pub reconnect_max_seconds: u32,
    /// A whole camera pipeline replacing the built-in ones (see the README for placeholders).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Test source picture size and rate.
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    #[serde(default = "default_framerate")]
    pub framerate: u32,
}

fn yes() -> bool {
    true
}
fn thirty() -> u32 {
    30
}
fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_framerate() -> u32 {
    30
}

/// `transport`: which lower transports `rtspsrc` may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP first, then TCP (rtspsrc's own fallback).
    #[default]
    Auto,
    Tcp,
    Udp,
}

impl Transport {
    /// The value of `rtspsrc`'s `protocols` property.
    pub fn protocols(self) -> &'static str {
        match self {
            Transport::Auto => "udp+udp-mcast+tcp",
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// `video_codec`: what the browsers get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    /// The camera's own codec when browsers take it (H.264, VP8), else VP8.
    #[default]
    Auto,
    Vp8,
    H264,
}

/// Where the media comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Test,
    Rtsp(CameraUrl),
}

impl Config {
    /// The parsed source (valid once [`Config::validate`] passed).
    pub fn source(&self) -> Result<Source, String> {
        if self.url == "test" {
            return Ok(Source::Test);
        }
        CameraUrl::parse(&self.url)
            .map(Source::Rtsp)
            // Never quote the URL: it may hold a password.
            .map_err(|e| format!("`url`: {e}"))
    }

    /// The rules serde cannot express; each error names its field.
    pub fn validate(&self) -> Result<(), String> {
        self.source()?;
        if !(16..=3840).contains(&self.width) {
            return Err(format!("`width`: {} is not from 16 to 3840", self.width));
        }
        if !(16..=2160).contains(&self.height) {
            return Err(format!("`height`: {} is not from 16 to 2160", self.height));
        }
        if !(1..=60).contains(&self.framerate) {
            return Err(format!(
                "`framerate`: {} is not from 1 to 60",
                self.framerate
            ));
        }
        if !(1..=3600).contains(&self.reconnect_max_seconds) {
            return Err(format!(
                "`reconnect_max_seconds`: {} is not from 1 to 3600",
                self.reconnect_max_seconds
            ));
        }
        if self.latency_ms > 10_000 {
            return Err(format!(
                "`latency_ms`: {} is more than 10000",
                self.latency_ms
            ));
        }
        if let Some(p) = &self.pipeline {
            if !p.contains("name=video") && !p.contains("name=audio") {
                return Err(
                    "`pipeline`: it must end in `appsink name=video` and/or `appsink name=audio`"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poolgate_plugin_api::parse_config;

    fn parse(json: &str) -> Result<Config, String> {
        let c: Config = parse_config(json)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults() {
        let c = parse(r#"{"url": "test"}"#).unwrap();
        assert_eq!(c.source().unwrap(), Source::Test);
        assert_eq!(
            (c.transport, c.video_codec, c.audio, c.request_keyframes),
            (Transport::Auto, VideoCodec::Auto, true, true)
        );
        assert_eq!((c.latency_ms, c.reconnect_max_seconds), (0, 30));
        assert_eq!((c.width, c.height, c.framerate), (640, 480, 30));
    }

    #[test]
    fn errors_name_the_field_and_never_the_password() {
        let cases = [
            (r#"{"url": "http://a:hunter2@x/"}"#, "`url`: must be"),
            (r#"{"url": "rtsp://a:hunter2@/x"}"#, "`url`: has no host"),
            (
                r#"{"url": "test", "transport": "quic"}"#,
                "`transport`: unknown variant",
            ),
            (
                r#"{"url": "test", "video_codec": "av1"}"#,
                "`video_codec`: unknown variant",
            ),
            (r#"{"url": "test", "framerate": 0}"#, "`framerate`: 0"),
            (r#"{"url": "test", "width": 9}"#, "`width`"),
            (
                r#"{"url": "test", "reconnect_max_seconds": 0}"#,
                "`reconnect_max_seconds`",
            ),
            (
                r#"{"url": "test", "pipeline": "fakesrc ! fakesink"}"#,
                "`pipeline`",
            ),
            (
                r#"{"url": "test", "latency": 3}"#,
                "unknown field `latency`",
            ),
            (r#"{"transport": "tcp"}"#, "missing field `url`"),
        ];
        for (json, want) in cases {
            let err = parse(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn rtsp_with_options() {
        let c = parse(
            r#"{"url": "rtsp://u:p@127.0.0.1:8554/cam", "transport": "tcp", "video_codec": "vp8",
                "audio": false, "latency_ms": 50, "reconnect_max_seconds": 5,
                "request_keyframes": false}"#,
        )
        .unwrap();
        assert_eq!(c.transport.protocols(), "tcp");
        assert!(!c.request_keyframes);
        match c.source().unwrap() {
            Source::Rtsp(u) => assert_eq!(u.location(), "rtsp://127.0.0.1:8554/cam"),
            other => panic!("{other:?}"),
        }
    }
}

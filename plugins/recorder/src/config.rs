//! The bridge's `config` table and the rules serde cannot express.

use serde::Deserialize;

use crate::layout::PathTemplate;

/// A container format for recorded files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    Webm,
    Mkv,
    Mp4,
}

impl Container {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Container::Webm => "webm",
            Container::Mkv => "mkv",
            Container::Mp4 => "mp4",
        }
    }

    /// The muxer element factory.
    pub fn muxer(self) -> &'static str {
        match self {
            Container::Webm => "webmmux",
            Container::Mkv => "matroskamux",
            Container::Mp4 => "mp4mux",
        }
    }

    /// Whether this container holds `codec` (an RTP encoding name) without transcoding.
    pub fn holds(self, codec: &str) -> bool {
        match self {
            Container::Webm => matches!(codec, "VP8" | "VP9" | "OPUS"),
            Container::Mkv => matches!(codec, "VP8" | "VP9" | "H264" | "OPUS" | "PCMU" | "PCMA"),
            Container::Mp4 => matches!(codec, "VP9" | "H264" | "OPUS"),
        }
    }

    /// The container for a peer's codecs: the configured one when it holds them all, else
    /// Matroska (which holds every codec poolgate receives). Unset means WebM where possible.
    pub fn for_codecs<'a>(
        configured: Option<Container>,
        codecs: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Container {
        let wanted = configured.unwrap_or(Container::Webm);
        if codecs.into_iter().all(|c| wanted.holds(c)) {
            wanted
        } else {
            Container::Mkv
        }
    }
}

fn default_template() -> String {
    "{pool}/{session}/{peer}".to_string()
}

fn default_segment_seconds() -> u64 {
    10
}

/// The codec a composite recording's video is encoded with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    #[default]
    Vp8,
    H264,
}

impl VideoCodec {
    /// Its RTP encoding name, as [`Container::holds`] takes it.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::H264 => "H264",
        }
    }
}

/// The recorder bridge's `config` table (README, "Recorder bridge").
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The folder recordings go under.
    pub directory: String,
    /// Where a peer's files go, under `directory`.
    #[serde(default = "default_template")]
    pub path_template: String,
    /// The container; unset: WebM for VP8/VP9/Opus, Matroska for anything else.
    #[serde(default)]
    pub container: Option<Container>,
    /// A new segment starts every this many seconds (at the next keyframe).
    #[serde(default = "default_segment_seconds")]
    pub segment_seconds: u64,
    /// A new segment also starts when one reaches this size.
    #[serde(default)]
    pub segment_bytes: Option<u64>,
    /// One composite file set for the whole pool (a grid of every video, a mix of every
    /// audio) instead of one per peer.
    #[serde(default)]
    pub composite: bool,
    /// Composite video width (composite mode only; default 1280).
    #[serde(default)]
    pub width: Option<u32>,
    /// Composite video height (composite mode only; default 720).
    #[serde(default)]
    pub height: Option<u32>,
    /// Composite frames per second (composite mode only; default 30).
    #[serde(default)]
    pub framerate: Option<u32>,
    /// Composite video codec (composite mode only; default VP8).
    #[serde(default)]
    pub video_codec: Option<VideoCodec>,
    /// Overrides `pipelines/recorder/composite-video-input.txt` (composite mode only).
    #[serde(default)]
    pub composite_video_input: Option<String>,
    /// Overrides `pipelines/recorder/composite-audio-input.txt` (composite mode only).
    #[serde(default)]
    pub composite_audio_input: Option<String>,
    /// Overrides `pipelines/recorder/composite-encode-vp8.txt` or `-h264.txt` (composite mode
    /// only).
    #[serde(default)]
    pub composite_video_encoder: Option<String>,
    /// Overrides `pipelines/recorder/composite-encode-audio.txt` (composite mode only).
    #[serde(default)]
    pub composite_audio_encoder: Option<String>,
    /// Overrides `pipelines/recorder/input.txt`: the elements between a track and the muxer.
    #[serde(default)]
    pub input_pipeline: Option<String>,
}

impl Config {
    /// Rules serde cannot express; each error names its field.
    pub fn check(&self) -> Result<(), String> {
        if self.directory.trim().is_empty() {
            return Err("`directory`: must not be empty".into());
        }
        PathTemplate::parse(&self.path_template).map_err(|e| format!("`path_template`: {e}"))?;
        if !(1..=3600).contains(&self.segment_seconds) {
            return Err(format!(
                "`segment_seconds`: {} is out of range 1..=3600",
                self.segment_seconds
            ));
        }
        if let Some(bytes) = self.segment_bytes {
            if bytes < 64 * 1024 {
                return Err(format!(
                    "`segment_bytes`: {bytes} is below the minimum 65536"
                ));
            }
        }
        if self.composite {
            self.check_composite()?;
        } else {
            let composite_only = [
                ("width", self.width.is_some()),
                ("height", self.height.is_some()),
                ("framerate", self.framerate.is_some()),
                ("video_codec", self.video_codec.is_some()),
                (
                    "composite_video_input",
                    self.composite_video_input.is_some(),
                ),
                (
                    "composite_audio_input",
                    self.composite_audio_input.is_some(),
                ),
                (
                    "composite_video_encoder",
                    self.composite_video_encoder.is_some(),
                ),
                (
                    "composite_audio_encoder",
                    self.composite_audio_encoder.is_some(),
                ),
            ];
            if let Some((key, _)) = composite_only.iter().find(|(_, set)| *set) {
                return Err(format!("`{key}`: only used with `composite = true`"));
            }
        }
        if let Some(p) = &self.input_pipeline {
            if !p.contains("queue") {
                return Err("`input_pipeline`: must contain a queue (it decouples the recording from the track)".into());
            }
        }
        Ok(())
    }

    fn check_composite(&self) -> Result<(), String> {
        for (key, value, max) in [("width", self.width, 7680), ("height", self.height, 4320)] {
            if let Some(v) = value {
                if !(16..=max).contains(&v) || v % 2 != 0 {
                    return Err(format!("`{key}`: {v} must be even and in range 16..={max}"));
                }
            }
        }
        if let Some(f) = self.framerate {
            if !(1..=60).contains(&f) {
                return Err(format!("`framerate`: {f} is out of range 1..=60"));
            }
        }
        if self.input_pipeline.is_some() {
            return Err("`input_pipeline`: per-peer mode only; composite mode uses `composite_video_input` and `composite_audio_input`".into());
        }
        for (key, value) in [
            ("composite_video_input", &self.composite_video_input),
            ("composite_audio_input", &self.composite_audio_input),
        ] {
            if let Some(p) = value {
                if !p.contains("queue") || !p.contains("{decode}") {
                    return Err(format!(
                        "`{key}`: must contain a queue and `{{decode}}` (the codec's decoder)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The composite picture's size, frame rate and codec, defaults filled in.
    pub fn composite_format(&self) -> (u32, u32, u32, VideoCodec) {
        (
            self.width.unwrap_or(1280),
            self.height.unwrap_or(720),
            self.framerate.unwrap_or(30),
            self.video_codec.unwrap_or_default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poolgate_plugin_api::parse_config;

    fn parse(json: &str) -> Result<Config, String> {
        let c: Config = parse_config(json)?;
        c.check()?;
        Ok(c)
    }

    #[test]
    fn defaults() {
        let c = parse(r#"{"directory": "/rec"}"#).unwrap();
        assert_eq!(c.path_template, "{pool}/{session}/{peer}");
        assert_eq!(c.segment_seconds, 10);
        assert_eq!(c.container, None);
        assert!(!c.composite);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{}"#, "missing field `directory`"),
            (r#"{"directory": ""}"#, "`directory`"),
            (
                r#"{"directory": "/r", "container": "avi"}"#,
                "`container`: unknown variant",
            ),
            (
                r#"{"directory": "/r", "segment_seconds": 0}"#,
                "`segment_seconds`",
            ),
            (
                r#"{"directory": "/r", "segment_bytes": 10}"#,
                "`segment_bytes`",
            ),
            (
                r#"{"directory": "/r", "path_template": "{pool}/x"}"#,
                "`path_template`",
            ),
            (r#"{"directory": "/r", "width": 640}"#, "`width`"),
            (
                r#"{"directory": "/r", "video_codec": "vp8"}"#,
                "`video_codec`",
            ),
            (
                r#"{"directory": "/r", "composite": true, "width": 641}"#,
                "`width`",
            ),
            (
                r#"{"directory": "/r", "composite": true, "framerate": 0}"#,
                "`framerate`",
            ),
            (
                r#"{"directory": "/r", "composite": true, "video_codec": "av1"}"#,
                "unknown variant `av1`",
            ),
            (
                r#"{"directory": "/r", "composite": true, "composite_video_input": "vp8dec"}"#,
                "`composite_video_input`",
            ),
            (
                r#"{"directory": "/r", "segmentseconds": 3}"#,
                "unknown field `segmentseconds`",
            ),
        ];
        for (json, want) in cases {
            let e = parse(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }

    #[test]
    fn composite_defaults() {
        let c = parse(r#"{"directory": "/rec", "composite": true}"#).unwrap();
        assert_eq!(c.composite_format(), (1280, 720, 30, VideoCodec::Vp8));
        let c = parse(
            r#"{"directory": "/rec", "composite": true, "width": 640, "height": 360,
                "framerate": 15, "video_codec": "h264"}"#,
        )
        .unwrap();
        assert_eq!(c.composite_format(), (640, 360, 15, VideoCodec::H264));
    }

    #[test]
    fn container_choice() {
        let pick = |c, codecs: &[&str]| Container::for_codecs(c, codecs.iter().copied());
        assert_eq!(pick(None, &["VP8", "OPUS"]), Container::Webm);
        assert_eq!(pick(None, &["H264", "OPUS"]), Container::Mkv);
        assert_eq!(
            pick(Some(Container::Mp4), &["H264", "OPUS"]),
            Container::Mp4
        );
        assert_eq!(pick(Some(Container::Mp4), &["VP8", "OPUS"]), Container::Mkv);
        assert_eq!(pick(Some(Container::Webm), &["PCMU"]), Container::Mkv);
        assert_eq!(pick(Some(Container::Mkv), &["VP8"]), Container::Mkv);
    }
}

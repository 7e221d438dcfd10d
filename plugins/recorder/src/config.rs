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
    /// One composite file for the whole pool instead of one per peer (not implemented yet).
    #[serde(default)]
    pub composite: bool,
    /// Composite video width (composite mode only).
    #[serde(default)]
    pub width: Option<u32>,
    /// Composite video height (composite mode only).
    #[serde(default)]
    pub height: Option<u32>,
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
            return Err(
                "`composite`: composite recording is not implemented yet; record per peer".into(),
            );
        }
        if self.width.is_some() || self.height.is_some() {
            return Err("`width`/`height`: only used with `composite = true`".into());
        }
        if let Some(p) = &self.input_pipeline {
            if !p.contains("queue") {
                return Err("`input_pipeline`: must contain a queue (it decouples the recording from the track)".into());
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
            (r#"{"directory": "/r", "composite": true}"#, "`composite`"),
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

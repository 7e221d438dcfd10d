//! Pipeline templates: `gst-launch` text with `{name}` placeholders and `#` comment lines. The
//! built-in ones are the files of the repository's `pipelines/` folder, compiled in.

use thiserror::Error;

/// The built-in templates, by file name.
pub mod builtin {
    pub const TEST: &str = include_str!("../../../../pipelines/camera-test.txt");
    pub const TEST_AUDIO: &str = include_str!("../../../../pipelines/camera-test-audio.txt");
    pub const ENCODE_VP8: &str = include_str!("../../../../pipelines/camera-encode-vp8.txt");
    pub const ENCODE_H264: &str = include_str!("../../../../pipelines/camera-encode-h264.txt");
    pub const RTSP_H264: &str = include_str!("../../../../pipelines/camera-rtsp-h264.txt");
    pub const RTSP_VP8: &str = include_str!("../../../../pipelines/camera-rtsp-vp8.txt");
    pub const RTSP_PCMU: &str = include_str!("../../../../pipelines/camera-rtsp-pcmu.txt");
    pub const RTSP_PCMA: &str = include_str!("../../../../pipelines/camera-rtsp-pcma.txt");
    pub const RTSP_OPUS: &str = include_str!("../../../../pipelines/camera-rtsp-opus.txt");
    pub const TRANSCODE_VIDEO: &str =
        include_str!("../../../../pipelines/camera-transcode-video.txt");
    pub const FALLBACK_H264: &str = include_str!("../../../../pipelines/camera-fallback-h264.txt");
    pub const TRANSCODE_OPUS: &str =
        include_str!("../../../../pipelines/camera-transcode-opus.txt");
}

/// A template that cannot be filled.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown placeholder {{{0}}}")]
    Unknown(String),
    #[error("a `{{` without its `}}`")]
    Unclosed,
}

/// `template` without comment lines, its placeholders replaced by `values` (name, text), and
/// its lines joined with spaces (gst-launch syntax does not care about line breaks).
pub fn fill(template: &str, values: &[(&str, &str)]) -> Result<String, TemplateError> {
    let text: Vec<&str> = template
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let text = text.join(" ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(TemplateError::Unclosed)?;
        let name = &after[..close];
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_comments_and_lines() {
        let t = "# a comment {ignored}\nvideotestsrc\n  ! video/x-raw,width={w}\n\n  ! fakesink\n";
        assert_eq!(
            fill(t, &[("w", "320")]).unwrap(),
            "videotestsrc ! video/x-raw,width=320 ! fakesink"
        );
        assert_eq!(
            fill("a {x} b", &[]).unwrap_err(),
            TemplateError::Unknown("x".into())
        );
        assert_eq!(fill("a {x", &[]).unwrap_err(), TemplateError::Unclosed);
    }

    #[test]
    fn every_builtin_template_fills() {
        let values = [
            ("width", "640"),
            ("height", "480"),
            ("framerate", "30"),
            ("bitrate", "1000000"),
            ("video_encoder", "vp8enc"),
            ("audio_chain", ""),
        ];
        for t in [
            builtin::TEST,
            builtin::TEST_AUDIO,
            builtin::ENCODE_VP8,
            builtin::ENCODE_H264,
            builtin::RTSP_H264,
            builtin::RTSP_VP8,
            builtin::RTSP_PCMU,
            builtin::RTSP_PCMA,
            builtin::RTSP_OPUS,
            builtin::TRANSCODE_VIDEO,
            builtin::TRANSCODE_OPUS,
        ] {
            let filled = fill(t, &values).unwrap();
            assert!(!filled.contains('{') && !filled.contains('#'), "{filled}");
        }
    }
}

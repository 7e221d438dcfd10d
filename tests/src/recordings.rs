//! Reading what the recorder bridge wrote: its session index, and each segment file as
//! `gst-discoverer-1.0` sees it (duration and codecs: does it play on its own).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use serde_json::Value;

/// What `gst-discoverer-1.0` found in a file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Discovered {
    pub duration_s: f64,
    /// The streams' codecs as the tool names them: `VP8`, `Opus`, `H.264 (High Profile)`, ...
    pub video: Vec<String>,
    pub audio: Vec<String>,
    /// The first video stream's picture size (0 x 0 without video).
    pub width: u32,
    pub height: u32,
}

impl Discovered {
    /// Whether a stream is in `codec`, an RTP encoding name (`VP8`, `OPUS`, `H264`).
    pub fn has(&self, codec: &str) -> bool {
        self.video
            .iter()
            .chain(&self.audio)
            .any(|d| d.replace('.', "").to_uppercase().starts_with(codec))
    }
}

/// Runs `gst-discoverer-1.0` on `file` (fails loudly when the tool is missing: it is in
/// gstreamer1.0-plugins-base-apps) and reads its report.
pub fn discover(file: &Path) -> anyhow::Result<Discovered> {
    let out = Command::new("gst-discoverer-1.0")
        .arg("-t")
        .arg("20")
        .arg(file)
        .output()
        .context("running gst-discoverer-1.0 (install gstreamer1.0-plugins-base-apps)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("Done discovering") {
        bail!("gst-discoverer-1.0 cannot read {}:\n{text}", file.display());
    }
    let mut found = Discovered::default();
    for line in text.lines().map(str::trim) {
        if let Some(d) = line.strip_prefix("Duration: ") {
            found.duration_s =
                parse_duration(d).with_context(|| format!("{}: duration {d:?}", file.display()))?;
        } else if let Some(w) = line.strip_prefix("Width: ") {
            if found.width == 0 {
                found.width = w.parse().unwrap_or(0);
            }
        } else if let Some(h) = line.strip_prefix("Height: ") {
            if found.height == 0 {
                found.height = h.parse().unwrap_or(0);
            }
        } else if let Some((kind, codec)) = stream_line(line) {
            if kind == "video" {
                found.video.push(codec.to_string());
            } else {
                found.audio.push(codec.to_string());
            }
        }
    }
    Ok(found)
}

/// `video #1: VP8` -> ("video", "VP8").
fn stream_line(line: &str) -> Option<(&str, &str)> {
    let (head, caps) = line.split_once(": ")?;
    let (kind, number) = head.split_once(" #")?;
    if !matches!(kind, "video" | "audio") || number.parse::<u32>().is_err() {
        return None;
    }
    Some((kind, caps))
}

/// `0:00:02.013500000` -> 2.0135.
fn parse_duration(text: &str) -> Option<f64> {
    let mut parts = text.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The one session folder under `root/<pool>/` (the default path template), with its index.
pub fn session(root: &Path, pool: &str) -> anyhow::Result<(PathBuf, Value)> {
    let pool_dir = root.join(pool);
    let mut sessions: Vec<PathBuf> = std::fs::read_dir(&pool_dir)
        .with_context(|| format!("reading {}", pool_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    if sessions.len() != 1 {
        bail!(
            "{} holds {} sessions: {sessions:?}",
            pool_dir.display(),
            sessions.len()
        );
    }
    let dir = sessions.pop().unwrap();
    let index = dir.join("index.json");
    let text = std::fs::read(&index).with_context(|| format!("reading {}", index.display()))?;
    let value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not JSON", index.display()))?;
    Ok((dir, value))
}

/// The recordings of `peer` in an index.
pub fn recordings<'a>(index: &'a Value, peer: &str) -> &'a [Value] {
    index["peers"][peer]["recordings"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// How many finished segments an index lists, over all peers.
pub fn segment_count(index: &Value) -> usize {
    index["peers"]
        .as_object()
        .map(|peers| {
            peers
                .values()
                .flat_map(|p| p["recordings"].as_array().cloned().unwrap_or_default())
                .map(|r| r["segments"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_discoverer_lines() {
        assert_eq!(parse_duration("0:00:02.013500000"), Some(2.0135));
        assert_eq!(parse_duration("1:01:00.5"), Some(3660.5));
        assert_eq!(stream_line("video #1: VP8"), Some(("video", "VP8")));
        let d = Discovered {
            duration_s: 1.0,
            video: vec!["H.264 (High Profile)".into()],
            audio: vec!["Opus".into()],
            ..Default::default()
        };
        assert!(d.has("H264") && d.has("OPUS") && !d.has("VP8"));
        assert_eq!(stream_line("container #0: video/webm"), None);
        assert_eq!(stream_line("video codec: VP8 video"), None);
    }
}

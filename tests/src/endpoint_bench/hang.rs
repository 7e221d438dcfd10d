//! Evidence of a hang: every thread's backtrace of a stuck process, taken with gdb, kept in a
//! file, and the frames that point at the culprit picked out for the report.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Frames worth quoting: GStreamer's WebRTC stack, state changes and our own code.
const RELEVANT: &[&str] = &[
    "webrtc",
    "sctp",
    "dtls",
    "nice",
    "srtp",
    "gst_element_set_state",
    "gst_element_change_state",
    "gst_pad_",
    "poolgate",
    "pthread_join",
    "g_cond_wait",
    "g_mutex_lock",
];

/// What gdb showed.
pub struct Backtrace {
    pub file: PathBuf,
    /// The relevant frames, with the thread headers they belong to.
    pub excerpt: String,
}

/// Runs `gdb -p PID -batch -ex 'thread apply all bt'` (bounded by `timeout`) with its output
/// going straight to `dir/hang-PID-N.txt`. `None` when gdb could not be run.
///
/// The output must go to a file, not a pipe: when PID is this very process, gdb stops every
/// thread in it, including one that would drain the pipe, and both would wait forever.
pub fn capture(pid: u32, dir: &Path, what: &str) -> Option<Backtrace> {
    let mut n = 0;
    let file = loop {
        let f = dir.join(format!("hang-{pid}-{n}.txt"));
        if !f.exists() {
            break f;
        }
        n += 1;
    };
    std::fs::write(&file, format!("{what}\n\n")).ok()?;
    let out = std::fs::OpenOptions::new().append(true).open(&file).ok()?;
    let err = out.try_clone().ok()?;
    let status = Command::new("timeout")
        .args(["-k", "10", "120", "gdb", "-p", &pid.to_string(), "-batch"])
        .args(["-ex", "set pagination off", "-ex", "thread apply all bt"])
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .status();
    if let Err(e) = status {
        eprintln!("bench-endpoint: cannot run gdb to capture the hang of {pid} ({what}): {e}");
        return None;
    }
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    Some(Backtrace {
        excerpt: excerpt(&text),
        file,
    })
}

/// Thread headers followed by their relevant frames; threads with none are left out.
fn excerpt(text: &str) -> String {
    let mut out = String::new();
    let mut header = String::new();
    let mut frames = Vec::new();
    let flush = |header: &str, frames: &mut Vec<String>, out: &mut String| {
        if !frames.is_empty() {
            out.push_str(header);
            out.push('\n');
            for f in frames.drain(..) {
                out.push_str("  ");
                out.push_str(&f);
                out.push('\n');
            }
        }
    };
    for line in text.lines() {
        if line.starts_with("Thread ") {
            flush(&header, &mut frames, &mut out);
            header = line.to_string();
        } else if line.starts_with('#') && RELEVANT.iter().any(|r| line.contains(r)) {
            let short: String = line.chars().take(160).collect();
            frames.push(short);
        }
    }
    flush(&header, &mut frames, &mut out);
    out
}

//! Where files go: the `path_template` (`{pool}/{session}/{peer}`) rendered per peer. The
//! session folder (the template without its last, `{peer}` component) holds the session index.

use std::path::{Path, PathBuf};

/// A checked `path_template`: relative, `/`-separated, `{peer}` in its last component only,
/// `{session}` in an earlier one (so each session has a folder for its index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    session_parts: Vec<String>,
    peer_part: String,
}

const PLACEHOLDERS: [&str; 3] = ["{pool}", "{session}", "{peer}"];

impl PathTemplate {
    /// Checks a template; the error says what is wrong (the caller names the field).
    pub fn parse(template: &str) -> Result<PathTemplate, String> {
        if template.starts_with('/') {
            return Err("must be relative to `directory`".into());
        }
        let parts: Vec<&str> = template.split('/').collect();
        for part in &parts {
            if part.is_empty() || *part == "." || *part == ".." {
                return Err(format!("{template:?} has an empty, `.` or `..` component"));
            }
            let mut rest = part.to_string();
            for p in PLACEHOLDERS {
                rest = rest.replace(p, "");
            }
            if rest.contains('{') || rest.contains('}') {
                return Err(format!(
                    "{template:?}: only {{pool}}, {{session}} and {{peer}} can be filled in"
                ));
            }
        }
        let (last, first) = parts.split_last().expect("split gives one part at least");
        if !last.contains("{peer}") || first.iter().any(|p| p.contains("{peer}")) {
            return Err(format!(
                "{template:?}: {{peer}} must be in the last component (each peer has its folder)"
            ));
        }
        if !first.iter().any(|p| p.contains("{session}")) {
            return Err(format!(
                "{template:?}: {{session}} must be in a folder above the peer's (it holds the session index)"
            ));
        }
        Ok(PathTemplate {
            session_parts: first.iter().map(|s| s.to_string()).collect(),
            peer_part: last.to_string(),
        })
    }

    /// The session's folder under `root`.
    pub fn session_dir(&self, root: &Path, pool: &str, session: &str) -> PathBuf {
        let mut dir = root.to_path_buf();
        for part in &self.session_parts {
            dir.push(fill(part, pool, session, ""));
        }
        dir
    }

    /// A peer's folder under `root`.
    pub fn peer_dir(&self, root: &Path, pool: &str, session: &str, peer: &str) -> PathBuf {
        self.session_dir(root, pool, session)
            .join(fill(&self.peer_part, pool, session, peer))
    }
}

fn fill(part: &str, pool: &str, session: &str, peer: &str) -> String {
    part.replace("{pool}", &safe(pool))
        .replace("{session}", &safe(session))
        .replace("{peer}", &safe(peer))
}

/// A value made safe as one path component: no separators, no leading dot.
pub fn safe(value: &str) -> String {
    let s: String = value
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None if s.is_empty() => "_".into(),
        None => s,
    }
}

/// The splitmuxsink location pattern of a peer's recording number `n`: `01-00000.webm`, ...
pub fn segment_pattern(n: u32, extension: &str) -> String {
    format!("{n:02}-%05d.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_default() {
        let t = PathTemplate::parse("{pool}/{session}/{peer}").unwrap();
        let root = Path::new("/rec");
        assert_eq!(
            t.session_dir(root, "room 1", "s1"),
            PathBuf::from("/rec/room_1/s1")
        );
        assert_eq!(
            t.peer_dir(root, "../etc", "s1", "ab/c"),
            PathBuf::from("/rec/_._etc/s1/ab_c")
        );
    }

    #[test]
    fn refuses_bad_templates() {
        for bad in [
            "/abs/{session}/{peer}",
            "{pool}/{peer}",
            "{session}/{peer}/x",
            "{session}/../{peer}",
            "{session}/{peerx}",
            "{session}//{peer}",
            "{session}/{user}/{peer}",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
        assert!(PathTemplate::parse("rec-{pool}-{session}/peer-{peer}").is_ok());
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_pattern(3, "mkv"), "03-%05d.mkv");
    }
}

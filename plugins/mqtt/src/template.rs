//! Topic templates: MQTT topics with `{pool}`, `{peer}` and `{label}` placeholders, rendered for
//! outgoing messages and matched against incoming topics.

use thiserror::Error;

/// A placeholder a template may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    Pool,
    Peer,
    Label,
}

impl Var {
    fn parse(name: &str) -> Option<Var> {
        match name {
            "pool" => Some(Var::Pool),
            "peer" => Some(Var::Peer),
            "label" => Some(Var::Label),
            _ => None,
        }
    }
}

/// A piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// Why a template or a rendered topic is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unknown placeholder {{{0}}} (use {{pool}}, {{peer}} or {{label}})")]
    UnknownPlaceholder(String),
    #[error("unclosed `{{`")]
    Unclosed,
    #[error("is empty")]
    Empty,
    #[error("contains the wildcard `{0}` (not allowed in a topic)")]
    Wildcard(char),
    #[error("{{peer}} and {{label}} must each fill a whole topic level, e.g. `a/{{peer}}/b`")]
    NotWholeLevel(Var),
    #[error("lacks the placeholder {0}")]
    Missing(&'static str),
    #[error("the value {0:?} cannot be part of a topic (it has `+`, `#` or NUL, or is empty)")]
    BadValue(String),
}

/// A parsed topic template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// A value that can stand in a topic: no wildcards, no NUL, not empty.
fn topic_safe(value: &str) -> bool {
    !value.is_empty() && !value.contains(['+', '#', '\0'])
}

impl Template {
    /// Parses `text`; `{` always opens a placeholder.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or(TemplateError::Unclosed)? + open;
            let name = &rest[open + 1..close];
            let var =
                Var::parse(name).ok_or_else(|| TemplateError::UnknownPlaceholder(name.into()))?;
            parts.push(Part::Var(var));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        for part in &parts {
            if let Part::Text(t) = part {
                if let Some(c) = t.chars().find(|c| *c == '+' || *c == '#') {
                    return Err(TemplateError::Wildcard(c));
                }
            }
        }
        Ok(Template { parts })
    }

    /// Whether the template uses `var`.
    pub fn uses(&self, var: Var) -> bool {
        self.parts.contains(&Part::Var(var))
    }

    /// The topic for these values; a value that cannot be in a topic is an error.
    pub fn render(&self, pool: &str, peer: &str, label: &str) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => {
                    let value = match v {
                        Var::Pool => pool,
                        Var::Peer => peer,
                        Var::Label => label,
                    };
                    if !topic_safe(value) {
                        return Err(TemplateError::BadValue(value.into()));
                    }
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }

    /// Checks that `{peer}` and `{label}` (where used) fill whole topic levels, so incoming
    /// topics can be matched, and that `required` placeholders are there.
    pub fn check_matchable(&self, required: &[Var]) -> Result<(), TemplateError> {
        for (i, part) in self.parts.iter().enumerate() {
            if let Part::Var(v @ (Var::Peer | Var::Label)) = part {
                let before_ok =
                    i == 0 || matches!(&self.parts[i - 1], Part::Text(t) if t.ends_with('/'));
                let after_ok = i + 1 == self.parts.len()
                    || matches!(&self.parts[i + 1], Part::Text(t) if t.starts_with('/'));
                if !before_ok || !after_ok {
                    return Err(TemplateError::NotWholeLevel(*v));
                }
            }
        }
        for var in required {
            if !self.uses(*var) {
                return Err(TemplateError::Missing(match var {
                    Var::Pool => "{pool}",
                    Var::Peer => "{peer}",
                    Var::Label => "{label}",
                }));
            }
        }
        Ok(())
    }

    /// Matches an incoming `topic` (with `{pool}` = `pool`): the `{peer}` and `{label}` levels it
    /// names, or `None`. Assumes [`Template::check_matchable`] passed.
    pub fn matches(&self, pool: &str, topic: &str) -> Option<Captures> {
        // Render the literal parts level by level; whole-level placeholders capture one level.
        let mut levels: Vec<Level> = Vec::new();
        let mut current = String::new();
        let mut pending_var = None;
        for part in &self.parts {
            match part {
                Part::Var(Var::Pool) => current.push_str(pool),
                Part::Var(v) => pending_var = Some(*v),
                Part::Text(t) => {
                    for (i, piece) in t.split('/').enumerate() {
                        if i > 0 {
                            levels.push(match pending_var.take() {
                                Some(v) => Level::Capture(v),
                                None => Level::Literal(std::mem::take(&mut current)),
                            });
                        }
                        current.push_str(piece);
                    }
                }
            }
        }
        levels.push(match pending_var.take() {
            Some(v) => Level::Capture(v),
            None => Level::Literal(current),
        });
        let topic_levels: Vec<&str> = topic.split('/').collect();
        if topic_levels.len() != levels.len() {
            return None;
        }
        let mut captures = Captures::default();
        for (want, got) in levels.iter().zip(topic_levels) {
            match want {
                Level::Literal(l) if l == got => {}
                Level::Literal(_) => return None,
                Level::Capture(_) if got.is_empty() => return None,
                Level::Capture(Var::Peer) => captures.peer = Some(got.to_string()),
                Level::Capture(_) => captures.label = Some(got.to_string()),
            }
        }
        Some(captures)
    }
}

enum Level {
    Literal(String),
    Capture(Var),
}

/// What an incoming topic named.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captures {
    pub peer: Option<String>,
    pub label: Option<String>,
}

/// Checks an MQTT subscription filter (after `{pool}` is substituted): `+` and `#` fill whole
/// levels, `#` only last.
pub fn check_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() {
        return Err("is empty".into());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(format!("{filter:?}: `#` must be the whole last level"));
        }
        if level.contains('+') && *level != "+" {
            return Err(format!("{filter:?}: `+` must be a whole level"));
        }
    }
    Ok(())
}

/// Whether `topic` matches the subscription `filter` (MQTT 3.1.1 rules, without the `$` topic
/// special case).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_default_template() {
        let t = Template::parse("poolgate/{pool}/{peer}/{label}").unwrap();
        assert_eq!(t.render("p", "a1", "chat").unwrap(), "poolgate/p/a1/chat");
        assert!(matches!(
            t.render("p", "a1", "x/#"),
            Err(TemplateError::BadValue(_))
        ));
        assert!(matches!(
            t.render("p", "a1", ""),
            Err(TemplateError::BadValue(_))
        ));
    }

    #[test]
    fn refuses_bad_templates() {
        assert_eq!(
            Template::parse("a/{nope}").unwrap_err(),
            TemplateError::UnknownPlaceholder("nope".into())
        );
        assert_eq!(
            Template::parse("a/{pool").unwrap_err(),
            TemplateError::Unclosed
        );
        assert_eq!(
            Template::parse("a/#").unwrap_err(),
            TemplateError::Wildcard('#')
        );
        assert_eq!(Template::parse("").unwrap_err(), TemplateError::Empty);
        let t = Template::parse("a/x{peer}/{label}").unwrap();
        assert_eq!(
            t.check_matchable(&[]),
            Err(TemplateError::NotWholeLevel(Var::Peer))
        );
        let t = Template::parse("a/{peer}").unwrap();
        assert_eq!(
            t.check_matchable(&[Var::Peer, Var::Label]),
            Err(TemplateError::Missing("{label}"))
        );
    }

    #[test]
    fn matches_incoming_topics() {
        let t = Template::parse("poolgate/{pool}/to/{peer}/{label}").unwrap();
        t.check_matchable(&[Var::Peer, Var::Label]).unwrap();
        assert_eq!(
            t.matches("p", "poolgate/p/to/abc/cmd"),
            Some(Captures {
                peer: Some("abc".into()),
                label: Some("cmd".into())
            })
        );
        assert_eq!(t.matches("q", "poolgate/p/to/abc/cmd"), None);
        assert_eq!(t.matches("p", "poolgate/p/to/abc"), None);
        assert_eq!(t.matches("p", "poolgate/p/to/abc/cmd/x"), None);
        assert_eq!(t.matches("p", "poolgate/p/to//cmd"), None);
        let all = Template::parse("{pool}-all/{label}").unwrap();
        all.check_matchable(&[Var::Label]).unwrap();
        assert_eq!(
            all.matches("p", "p-all/x").and_then(|c| c.label),
            Some("x".into())
        );
        let first = Template::parse("{label}/in/{pool}").unwrap();
        first.check_matchable(&[Var::Label]).unwrap();
        assert_eq!(
            first.matches("p", "x/in/p").and_then(|c| c.label),
            Some("x".into())
        );
    }

    #[test]
    fn filters() {
        assert!(check_filter("a/+/b/#").is_ok());
        assert!(check_filter("a/#/b").is_err());
        assert!(check_filter("a/b+").is_err());
        assert!(check_filter("").is_err());
        assert!(filter_matches("a/+/c/#", "a/b/c"));
        assert!(filter_matches("a/+/c/#", "a/b/c/d/e"));
        assert!(!filter_matches("a/+/c", "a/b/d"));
        assert!(!filter_matches("a/b", "a/b/c"));
        assert!(filter_matches("#", "x"));
    }
}

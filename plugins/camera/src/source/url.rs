//! Camera URLs: `rtsp://user:pass@host:port/path` split so the credentials go to `rtspsrc`'s
//! `user-id`/`user-pw` properties and never into a location, a log line or a status.

use thiserror::Error;

/// Why a camera URL was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("must be \"test\" or start with rtsp:// or rtsps://")]
    Scheme,
    #[error("has no host")]
    NoHost,
    #[error("has a port that is not a number from 1 to 65535")]
    Port,
}

/// An `rtsp://` or `rtsps://` URL, its credentials apart.
#[derive(Clone, PartialEq, Eq)]
pub struct CameraUrl {
    /// `rtsp` or `rtsps`.
    pub scheme: String,
    /// Percent-decoded user name, if any.
    pub user: Option<String>,
    /// Percent-decoded password, if any.
    pub password: Option<String>,
    /// `host` or `host:port` (IPv6 literals keep their brackets).
    pub host_port: String,
    /// From the first `/` on (path and query), or empty.
    pub rest: String,
}

// Never print the password, not even in a debug dump.
impl std::fmt::Debug for CameraUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CameraUrl({})", self.redacted())
    }
}

impl CameraUrl {
    /// Parses `url`; `test` is not a URL (the caller handles it first).
    pub fn parse(url: &str) -> Result<CameraUrl, UrlError> {
        let (scheme, after) = if let Some(a) = url.strip_prefix("rtsp://") {
            ("rtsp", a)
        } else if let Some(a) = url.strip_prefix("rtsps://") {
            ("rtsps", a)
        } else {
            return Err(UrlError::Scheme);
        };
        let authority_end = after.find(['/', '?']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(authority_end);
        // The last `@` ends the userinfo: passwords may contain an unescaped `@`.
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
                None => (Some(percent_decode(info)), None),
            },
        };
        let host_end = if host_port.starts_with('[') {
            host_port
                .find(']')
                .map(|i| i + 1)
                .unwrap_or(host_port.len())
        } else {
            host_port.find(':').unwrap_or(host_port.len())
        };
        if host_end == 0 || host_port == "[]" {
            return Err(UrlError::NoHost);
        }
        if let Some(port) = host_port[host_end..].strip_prefix(':') {
            match port.parse::<u16>() {
                Ok(p) if p > 0 => {}
                _ => return Err(UrlError::Port),
            }
        } else if host_end != host_port.len() {
            return Err(UrlError::Port);
        }
        Ok(CameraUrl {
            scheme: scheme.to_string(),
            user: user.filter(|u| !u.is_empty()),
            password,
            host_port: host_port.to_string(),
            rest: rest.to_string(),
        })
    }

    /// The URL without credentials: what `rtspsrc`'s `location` gets.
    pub fn location(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host_port, self.rest)
    }

    /// The URL as logs and statuses may show it: no credentials, no query.
    pub fn redacted(&self) -> String {
        let path = self.rest.split('?').next().unwrap_or("");
        let who = if self.user.is_some() { "***@" } else { "" };
        format!("{}://{who}{}{path}", self.scheme, self.host_port)
    }

    /// `text` with every occurrence of the password (raw or as written in the URL) masked: for
    /// GStreamer messages, which may quote the location or credentials.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        if let Some(p) = self.password.as_deref().filter(|p| !p.is_empty()) {
            out = out.replace(p, "***");
        }
        out
    }
}

/// `%XX` escapes decoded; anything malformed is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off() {
        let u = CameraUrl::parse("rtsp://admin:p%40ss@cam.local:554/stream1?channel=2").unwrap();
        assert_eq!(u.user.as_deref(), Some("admin"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.location(), "rtsp://cam.local:554/stream1?channel=2");
        assert_eq!(u.redacted(), "rtsp://***@cam.local:554/stream1");
        assert!(!format!("{u:?}").contains("p@ss"));
        assert_eq!(u.scrub("denied for p@ss"), "denied for ***");
    }

    #[test]
    fn an_at_sign_in_the_password_and_ipv6_hosts() {
        let u = CameraUrl::parse("rtsps://u:a@b@[::1]:8554/x").unwrap();
        assert_eq!(u.password.as_deref(), Some("a@b"));
        assert_eq!(u.host_port, "[::1]:8554");
        assert_eq!(u.location(), "rtsps://[::1]:8554/x");
        let u = CameraUrl::parse("rtsp://127.0.0.1").unwrap();
        assert_eq!((u.user, u.password, u.rest.as_str()), (None, None, ""));
    }

    #[test]
    fn bad_urls_say_why() {
        assert_eq!(CameraUrl::parse("http://x/").unwrap_err(), UrlError::Scheme);
        assert_eq!(CameraUrl::parse("rtsp:///x").unwrap_err(), UrlError::NoHost);
        assert_eq!(
            CameraUrl::parse("rtsp://u:p@/x").unwrap_err(),
            UrlError::NoHost
        );
        assert_eq!(CameraUrl::parse("rtsp://h:0/").unwrap_err(), UrlError::Port);
        assert_eq!(
            CameraUrl::parse("rtsp://h:99999/").unwrap_err(),
            UrlError::Port
        );
        assert_eq!(CameraUrl::parse("rtsp://h:x/").unwrap_err(), UrlError::Port);
    }
}

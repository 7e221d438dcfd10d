//! Why a camera session ended, from what GStreamer said, and the status operators see for it.
//! Wrong credentials, a wrong path and an unreachable camera read differently, so an operator
//! knows what to fix.

/// Why the camera is not live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The camera answered 401: wrong or missing credentials.
    Unauthorized,
    /// The camera answered 404: no such stream path.
    NotFound,
    /// Nothing listens on the camera's port.
    Refused,
    /// No answer (no route, DNS, timeout).
    Unreachable,
    /// The camera ended the stream (EOS) or closed the connection.
    Ended,
    /// No media for a while although the session was up.
    Stalled { seconds: u64 },
    /// No stream the browsers can get (no video or audio, or nothing to play).
    NoMedia,
    /// Anything else, with GStreamer's message (credentials scrubbed by the caller).
    Other(String),
}

impl Failure {
    /// The text after `retrying: `.
    pub fn reason(&self) -> String {
        match self {
            Failure::Unauthorized => {
                "unauthorized: the camera refused the credentials (401)".into()
            }
            Failure::NotFound => "not found: the camera has no such stream (404)".into(),
            Failure::Refused => {
                "connection refused: nothing listens at the camera's address".into()
            }
            Failure::Unreachable => "unreachable: the camera does not answer".into(),
            Failure::Ended => "camera ended the stream".into(),
            Failure::Stalled { seconds } => format!("no media from the camera for {seconds} s"),
            Failure::NoMedia => "the camera offers no audio or video stream".into(),
            Failure::Other(message) => message.clone(),
        }
    }

    /// The bridge status while waiting to reconnect.
    pub fn status(&self) -> String {
        format!("retrying: {}", self.reason())
    }

    /// Classifies a GStreamer error message: its domain code (`NotAuthorized`, `NotFound`,
    /// `OpenReadWrite`, ...), text and debug string.
    pub fn from_error(code: &str, message: &str, debug: &str) -> Failure {
        let all = format!("{message} {debug}").to_ascii_lowercase();
        if code == "NotAuthorized" || all.contains("unauthorized") || all.contains(" 401") {
            Failure::Unauthorized
        } else if code == "NotFound" && (all.contains("not found") || all.contains(" 404")) {
            Failure::NotFound
        } else if all.contains("connection refused") {
            Failure::Refused
        } else if all.contains("timeout")
            || all.contains("timed out")
            || all.contains("no route")
            || all.contains("unreachable")
            || all.contains("could not resolve")
            || all.contains("name or service not known")
        {
            Failure::Unreachable
        } else if all.contains("connection reset")
            || all.contains("broken pipe")
            || all.contains("connection closed")
            || all.contains("eof")
        {
            Failure::Ended
        } else {
            Failure::Other(message.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtspsrc_errors_are_told_apart() {
        // As rtspsrc 1.22 words them.
        let cases = [
            (
                "NotAuthorized",
                "Unauthorized",
                "gstrtspsrc.c(6575): gst_rtspsrc_send (): Unauthorized (401)",
                Failure::Unauthorized,
            ),
            (
                "NotFound",
                "Not found",
                "gstrtspsrc.c(6601): gst_rtspsrc_send (): Not Found (404)",
                Failure::NotFound,
            ),
            (
                "OpenReadWrite",
                "Could not open resource for reading and writing.",
                "Failed to connect. (Error connecting to 127.0.0.1:1: Connection refused)",
                Failure::Refused,
            ),
            (
                "OpenReadWrite",
                "Could not open resource for reading and writing.",
                "Failed to connect. (Timeout while waiting for server response)",
                Failure::Unreachable,
            ),
            (
                "Failed",
                "Internal data stream error.",
                "",
                Failure::Other("Internal data stream error.".into()),
            ),
        ];
        for (code, message, debug, want) in cases {
            assert_eq!(Failure::from_error(code, message, debug), want, "{debug}");
        }
    }

    #[test]
    fn statuses_are_distinct() {
        let all = [
            Failure::Unauthorized,
            Failure::NotFound,
            Failure::Refused,
            Failure::Unreachable,
            Failure::Ended,
            Failure::Stalled { seconds: 5 },
            Failure::NoMedia,
        ];
        let statuses: std::collections::HashSet<_> = all.iter().map(|f| f.status()).collect();
        assert_eq!(statuses.len(), all.len());
        assert!(statuses.iter().all(|s| s.starts_with("retrying: ")));
        assert_eq!(
            Failure::Refused.status(),
            "retrying: connection refused: nothing listens at the camera's address"
        );
    }
}

//! Why a camera cannot be reached. rtspsrc 1.22 says only "Failed to connect. (Generic error)"
//! whether the port is closed, the host is down or its name does not resolve; one plain TCP
//! connect to the camera's address tells these apart.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::url::CameraUrl;

/// What a TCP connect to the camera found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Something listens: the failure was above TCP.
    Open,
    /// The host answered that nothing listens on the port.
    Refused,
    /// No answer within the limit, or no route.
    NoAnswer,
    /// The host name does not resolve.
    NoSuchHost,
}

/// The RTSP default port of `scheme`.
fn default_port(scheme: &str) -> u16 {
    if scheme == "rtsps" {
        322
    } else {
        554
    }
}

/// `host:port` with the scheme's default port when the URL has none.
pub fn address(url: &CameraUrl) -> String {
    let has_port = if url.host_port.starts_with('[') {
        url.host_port.contains("]:")
    } else {
        url.host_port.contains(':')
    };
    if has_port {
        url.host_port.clone()
    } else {
        format!("{}:{}", url.host_port, default_port(&url.scheme))
    }
}

/// Connects once to the camera's address (blocking, at most `limit` per address).
pub fn reach(url: &CameraUrl, limit: Duration) -> Reach {
    let Ok(addrs) = address(url).to_socket_addrs() else {
        return Reach::NoSuchHost;
    };
    let mut found = Reach::NoSuchHost;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, limit) {
            Ok(_) => return Reach::Open,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => found = Reach::Refused,
            Err(_) => {
                if found == Reach::NoSuchHost {
                    found = Reach::NoAnswer
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports() {
        let u = CameraUrl::parse("rtsp://cam.local/x").unwrap();
        assert_eq!(address(&u), "cam.local:554");
        let u = CameraUrl::parse("rtsps://[::1]/x").unwrap();
        assert_eq!(address(&u), "[::1]:322");
        let u = CameraUrl::parse("rtsp://[::1]:8554/x").unwrap();
        assert_eq!(address(&u), "[::1]:8554");
    }

    #[test]
    fn a_closed_loopback_port_is_refused() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let u = CameraUrl::parse(&format!("rtsp://127.0.0.1:{port}/x")).unwrap();
        assert_eq!(reach(&u, Duration::from_secs(2)), Reach::Refused);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let u = CameraUrl::parse(&format!("rtsp://127.0.0.1:{port}/x")).unwrap();
        assert_eq!(reach(&u, Duration::from_secs(2)), Reach::Open);
    }
}

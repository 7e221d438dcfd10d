//! ICE servers (STUN/TURN) handed to browsers by `GET /rtc-config` and used by poolgate's own
//! endpoints.

use serde::{Deserialize, Serialize};

/// One `RTCIceServer`. Validated when the config is read, so a typo fails at start-up with the
/// line of the offending table rather than as a silent ICE failure in a browser.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "RawIceServer")]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `urls` may be one string or a list, as in `RTCIceServer`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Urls {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIceServer {
    urls: Urls,
    username: Option<String>,
    credential: Option<String>,
}

impl TryFrom<RawIceServer> for IceServer {
    type Error = String;

    fn try_from(raw: RawIceServer) -> Result<Self, String> {
        let urls = match raw.urls {
            Urls::One(u) => vec![u],
            Urls::Many(v) => v,
        };
        if urls.is_empty() {
            return Err("ice_servers: `urls` must list at least one stun:/turn: URL".into());
        }
        for url in &urls {
            let scheme = url.split(':').next().unwrap_or_default();
            let is_turn = match scheme {
                "stun" | "stuns" => false,
                "turn" | "turns" => true,
                _ => {
                    return Err(format!(
                        "ice_servers: URL {url:?} must start with stun:, stuns:, turn: or turns:"
                    ))
                }
            };
            if url.len() <= scheme.len() + 1 {
                return Err(format!("ice_servers: URL {url:?} has no host"));
            }
            if is_turn && (raw.username.is_none() || raw.credential.is_none()) {
                return Err(format!(
                    "ice_servers: TURN URL {url:?} needs `username` and `credential`"
                ));
            }
        }
        Ok(IceServer {
            urls,
            username: raw.username,
            credential: raw.credential,
        })
    }
}

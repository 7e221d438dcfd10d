//! The bridge's `config` table, its defaults and the checks serde cannot express.

use serde::Deserialize;

use crate::route::Route;
use crate::template::{check_filter, Template, Var};

/// The bridge's `config` table (see the README's "MQTT bridge" section).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `mqtt://host:port` or `mqtts://host:port` (TLS; the server certificate is checked
    /// against `ca_file`, or the system's roots without it).
    pub broker: String,
    /// PEM file of the CA certificate(s) trusted for an `mqtts://` broker, instead of the
    /// system's roots.
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// Secret: never logged nor returned.
    #[serde(default)]
    pub password: Option<String>,
    /// Default: `poolgate-{pool}-` and the first 8 characters of the bridge's endpoint id.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_seconds: u64,
    #[serde(default = "yes")]
    pub clean_session: bool,
    /// Channel labels forwarded to MQTT; `["*"]` forwards every channel. Default `["*"]`; not
    /// allowed beside `routes` (each route lists its own).
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[serde(default = "default_topic")]
    pub topic_template: String,
    /// false: the message's bytes as they are; true: a JSON envelope.
    #[serde(default)]
    pub envelope: bool,
    #[serde(default = "default_qos")]
    pub qos: u8,
    #[serde(default)]
    pub retain: bool,
    #[serde(default = "default_subscribe")]
    pub subscribe: Vec<String>,
    #[serde(default = "default_to_peer")]
    pub to_peer_template: String,
    #[serde(default = "default_to_all")]
    pub to_all_template: String,
    #[serde(default = "default_buffer")]
    pub buffer_messages: usize,
    #[serde(default)]
    pub drop_policy: DropPolicy,
    #[serde(default = "yes")]
    pub presence: bool,
    /// Per-channel publish settings; the first route whose `channels` match a message's label
    /// takes it. Without it, the top-level keys form the one route.
    #[serde(default)]
    pub routes: Option<Vec<RouteConfig>>,
}

/// One `[[bridge.config.routes]]` entry: the keys left out are the top-level ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Labels this route takes, or `["*"]` for every label.
    pub channels: Vec<String>,
    #[serde(default)]
    pub topic_template: Option<String>,
    #[serde(default)]
    pub envelope: Option<bool>,
    #[serde(default)]
    pub qos: Option<u8>,
    #[serde(default)]
    pub retain: Option<bool>,
}

/// Which message goes when the buffer is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropPolicy {
    /// Drop the oldest buffered message to make room for the new one.
    #[default]
    Oldest,
    /// Drop the new message.
    Newest,
}

fn yes() -> bool {
    true
}
fn default_keep_alive() -> u64 {
    30
}
fn default_topic() -> String {
    "poolgate/{pool}/{peer}/{label}".into()
}
fn default_qos() -> u8 {
    1
}
fn default_subscribe() -> Vec<String> {
    vec!["poolgate/{pool}/to/#".into()]
}
fn default_to_peer() -> String {
    "poolgate/{pool}/to/{peer}/{label}".into()
}
fn default_to_all() -> String {
    "poolgate/{pool}/to/all/{label}".into()
}
fn default_buffer() -> usize {
    10_000
}

/// Where the broker is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

/// Parses `mqtt://host[:port]` or `mqtts://host[:port]`. Errors never repeat the URL (it might
/// hold credentials).
pub fn parse_broker(url: &str) -> Result<Broker, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else {
        return Err("must start with mqtt:// or mqtts://".into());
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') {
        return Err("must not hold credentials: use `username` and `password`".into());
    }
    if rest.contains('/') {
        return Err("must be mqtt[s]://host[:port], without a path".into());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| "has an invalid port".to_string())?;
            (h, port)
        }
        _ => (rest, if tls { 8883 } else { 1883 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("has no host".into());
    }
    Ok(Broker {
        host: host.to_string(),
        port,
        tls,
    })
}

/// The CA certificates of `ca_file` (PEM), read and checked when the bridge starts; the error
/// names the field.
pub fn read_ca(path: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("`ca_file`: cannot read {path}: {e}"))?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(format!("`ca_file`: {path} holds no PEM certificate"));
    }
    Ok(pem)
}

/// The checked, parsed forms of the templates, and the routes they make.
#[derive(Clone, Debug)]
pub struct Templates {
    /// Pool -> MQTT, in config order (the first match wins); never empty.
    pub routes: Vec<Route>,
    pub to_peer: Template,
    pub to_all: Template,
}

impl Config {
    /// Every check serde cannot express; the error names the field.
    pub fn validate(&self) -> Result<(Broker, Templates), String> {
        let broker = parse_broker(&self.broker).map_err(|e| format!("`broker`: {e}"))?;
        if self.ca_file.is_some() && !broker.tls {
            return Err("`ca_file`: only for an mqtts:// broker".into());
        }
        if self.ca_file.as_deref() == Some("") {
            return Err(
                "`ca_file`: must not be empty (leave it out for the system's roots)".into(),
            );
        }
        if self.qos > 2 {
            return Err(format!("`qos`: {} is not 0, 1 or 2", self.qos));
        }
        if self.buffer_messages == 0 {
            return Err("`buffer_messages`: must be at least 1".into());
        }
        if self.keep_alive_seconds > u16::MAX as u64 {
            return Err("`keep_alive_seconds`: at most 65535".into());
        }
        if self.client_id.as_deref() == Some("") {
            return Err("`client_id`: must not be empty (leave it out for a default)".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("`password`: needs a `username`".into());
        }
        let topic =
            Template::parse(&self.topic_template).map_err(|e| format!("`topic_template`: {e}"))?;
        let routes =
            match &self.routes {
                None => {
                    let channels = self.channels.clone().unwrap_or_else(|| vec!["*".into()]);
                    check_channels(&channels, "channels")?;
                    vec![Route::new(
                        &channels,
                        topic,
                        self.envelope,
                        self.qos,
                        self.retain,
                    )]
                }
                Some(_) if self.channels.is_some() => return Err(
                    "`channels`: leave it out when `routes` is given (each route lists its own)"
                        .into(),
                ),
                Some(list) if list.is_empty() => {
                    return Err("`routes`: list at least one route, or leave it out".into())
                }
                Some(list) => list
                    .iter()
                    .enumerate()
                    .map(|(i, r)| self.route(i, r, &topic))
                    .collect::<Result<_, _>>()?,
            };
        let to_peer = Template::parse(&self.to_peer_template)
            .and_then(|t| t.check_matchable(&[Var::Peer, Var::Label]).map(|_| t))
            .map_err(|e| format!("`to_peer_template`: {e}"))?;
        let to_all = Template::parse(&self.to_all_template)
            .and_then(|t| t.check_matchable(&[Var::Label]).map(|_| t))
            .map_err(|e| format!("`to_all_template`: {e}"))?;
        if to_all.uses(Var::Peer) {
            return Err("`to_all_template`: must not use {peer}".into());
        }
        for (i, filter) in self.subscribe.iter().enumerate() {
            if filter.contains("{peer}") || filter.contains("{label}") {
                return Err(format!(
                    "`subscribe[{i}]`: only {{pool}} may be used in a filter"
                ));
            }
            check_filter(&filter.replace("{pool}", "pool"))
                .map_err(|e| format!("`subscribe[{i}]`: {e}"))?;
        }
        Ok((
            broker,
            Templates {
                routes,
                to_peer,
                to_all,
            },
        ))
    }
}

impl Config {
    /// Route `i` checked, with the top-level keys for those it leaves out.
    fn route(&self, i: usize, r: &RouteConfig, topic: &Template) -> Result<Route, String> {
        check_channels(&r.channels, &format!("routes[{i}].channels"))?;
        let qos = r.qos.unwrap_or(self.qos);
        if qos > 2 {
            return Err(format!("`routes[{i}].qos`: {qos} is not 0, 1 or 2"));
        }
        let topic = match &r.topic_template {
            Some(t) => {
                Template::parse(t).map_err(|e| format!("`routes[{i}].topic_template`: {e}"))?
            }
            None => topic.clone(),
        };
        Ok(Route::new(
            &r.channels,
            topic,
            r.envelope.unwrap_or(self.envelope),
            qos,
            r.retain.unwrap_or(self.retain),
        ))
    }
}

/// A `channels` list names labels (or is `["*"]`); `field` is its name in errors.
fn check_channels(channels: &[String], field: &str) -> Result<(), String> {
    if channels.is_empty() {
        return Err(format!(
            "`{field}`: list labels, or [\"*\"] for every channel"
        ));
    }
    if let Some(bad) = channels.iter().find(|l| l.is_empty()) {
        return Err(format!("`{field}`: {bad:?} is not a label"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use poolgate_plugin_api::parse_config;

    fn check(json: &str) -> Result<(), String> {
        parse_config::<Config>(json)?.validate().map(|_| ())
    }

    #[test]
    fn defaults_are_valid() {
        let c: Config = parse_config(r#"{"broker": "mqtt://127.0.0.1:1883"}"#).unwrap();
        c.validate().unwrap();
        assert_eq!(c.qos, 1);
        assert_eq!(c.channels, None);
        assert_eq!(c.buffer_messages, 10_000);
        assert_eq!(c.drop_policy, DropPolicy::Oldest);
        assert!(c.presence && c.clean_session && !c.envelope && !c.retain);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"broker": "http://x"}"#, "`broker`: must start"),
            (
                r#"{"broker": "mqtt://u:secret@x"}"#,
                "`broker`: must not hold",
            ),
            (r#"{"broker": "mqtt://x", "qos": 3}"#, "`qos`"),
            (
                r#"{"broker": "mqtt://x", "ca_file": "/ca.pem"}"#,
                "`ca_file`: only for an mqtts:// broker",
            ),
            (
                r#"{"broker": "mqtt://x", "topic_template": "a/{nope}"}"#,
                "`topic_template`: unknown placeholder {nope}",
            ),
            (
                r#"{"broker": "mqtt://x", "to_peer_template": "a/{label}"}"#,
                "`to_peer_template`: lacks the placeholder {peer}",
            ),
            (
                r#"{"broker": "mqtt://x", "subscribe": ["a/#/b"]}"#,
                "`subscribe[0]`",
            ),
            (
                r#"{"broker": "mqtt://x", "drop_policy": "middle"}"#,
                "`drop_policy`",
            ),
            (
                r#"{"broker": "mqtt://x", "buffer_messages": 0}"#,
                "`buffer_messages`",
            ),
            (
                r#"{"broker": "mqtt://x", "password": "p"}"#,
                "`password`: needs",
            ),
            (
                r#"{"broker": "mqtt://x", "routes": [{"channels": ["a"]}, {"channels": ["b"], "qos": 3}]}"#,
                "`routes[1].qos`: 3 is not",
            ),
            (
                r#"{"broker": "mqtt://x", "qos": 5, "routes": [{"channels": ["a"], "qos": 0}]}"#,
                "`qos`",
            ),
            (
                r#"{"broker": "mqtt://x", "routes": [{"channels": []}]}"#,
                "`routes[0].channels`: list labels",
            ),
            (
                r#"{"broker": "mqtt://x", "routes": [{"channels": ["a"], "topic_template": "a/{x}"}]}"#,
                "`routes[0].topic_template`: unknown placeholder {x}",
            ),
            (
                r#"{"broker": "mqtt://x", "routes": [{"channels": ["a"], "qos_": 1}]}"#,
                "unknown field `qos_`",
            ),
            (
                r#"{"broker": "mqtt://x", "routes": [{"qos": 1}]}"#,
                "missing field `channels`",
            ),
            (
                r#"{"broker": "mqtt://x", "routes": []}"#,
                "`routes`: list at least",
            ),
            (
                r#"{"broker": "mqtt://x", "channels": ["a"], "routes": [{"channels": ["a"]}]}"#,
                "`channels`: leave it out",
            ),
            (
                r#"{"broker": "mqtt://x", "channels": []}"#,
                "`channels`: list labels",
            ),
            (
                r#"{"broker": "mqtt://x", "brokr": 1}"#,
                "unknown field `brokr`",
            ),
        ];
        for (json, want) in cases {
            let err = check(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("mqtt-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("ca.pem");
        let bad = dir.join("bad.pem");
        std::fs::write(
            &good,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(&bad, "not a certificate").unwrap();
        assert!(read_ca(good.to_str().unwrap()).is_ok());
        let err = read_ca(bad.to_str().unwrap()).unwrap_err();
        assert!(
            err.starts_with("`ca_file`: ") && err.contains("no PEM"),
            "{err}"
        );
        let err = read_ca("/nonexistent/ca.pem").unwrap_err();
        assert!(err.starts_with("`ca_file`: cannot read"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker("mqtt://127.0.0.1:1884").unwrap(),
            Broker {
                host: "127.0.0.1".into(),
                port: 1884,
                tls: false
            }
        );
        assert_eq!(parse_broker("mqtts://example.org").unwrap().port, 8883);
        assert_eq!(parse_broker("mqtt://[::1]:1").unwrap().host, "::1");
        assert!(parse_broker("mqtt://h:x").is_err());
        assert!(parse_broker("mqtt://").is_err());
    }
}

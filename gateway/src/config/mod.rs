//! poolgate's configuration: one TOML file, every key documented in the README. Unknown keys
//! are errors, and every error names the key and the line.

mod admin;
mod ice;
mod secret;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

pub use admin::{check_token, AdminConfig, MIN_TOKEN_CHARS};
pub use ice::IceServer;
pub use secret::Secret;

use crate::bridge::BridgeSpec;
use crate::plugin::PluginsConfig;
use crate::signalling::{Keepalive, Limits, PoolMode};

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub pools: PoolsConfig,
    pub limits: Limits,
    pub keepalive: Keepalive,
    pub ice_servers: Vec<IceServer>,
    /// The only addresses poolgate's endpoints (its bridges) may offer as ICE host candidates,
    /// unless a bridge sets its own list: the operator's control over what the gateway exposes
    /// (as Janus's `ice_enforce_list`). Empty: every address libnice finds.
    pub ice_local_addresses: Vec<std::net::IpAddr>,
    pub log: LogConfig,
    /// `[admin]`: the admin API. `None` (no `[admin]` table) means no admin listener.
    pub admin: Option<AdminConfig>,
    /// `[plugins]`: the plugin folder.
    pub plugins: PluginsConfig,
    /// `[[bridge]]`: bridges started at boot.
    pub bridge: Vec<BridgeSpec>,
    /// `[memory]`: allocator settings of the `poolgate` process.
    pub memory: crate::memory::MemoryConfig,
}

/// `[server]`: the signalling and HTTP listener.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the signalling/HTTP listener (WebSocket `/ws`, socket.io, demo page).
    pub listen: SocketAddr,
    /// Directory served at `/` (the demo page). Relative paths are relative to the config file.
    pub web_root: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            web_root: None,
        }
    }
}

/// `[pools]`: who creates pools.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PoolsConfig {
    pub mode: PoolMode,
    /// Operator pools created at start; they live until closed through the API.
    pub create: Vec<String>,
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter (`info`, `poolgate=debug,warn`, ...). `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}:\n{message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads and validates a config file. Relative paths in it are made relative to its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(root) = &config.server.web_root {
            if root.is_relative() {
                config.server.web_root = Some(base.join(root));
            }
        }
        if let Some(file) = config.admin.as_mut().and_then(|a| a.token_file.as_mut()) {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        if let Some(dir) = &config.plugins.dir {
            if dir.is_relative() {
                config.plugins.dir = Some(base.join(dir));
            }
        }
        Ok(config)
    }

    /// Parses config text. The error text names the line, column and key at fault.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Rules that span several keys.
    fn validate(&self) -> Result<(), String> {
        if self.keepalive.timeout_secs <= self.keepalive.interval_secs {
            return Err(format!(
                "keepalive.timeout_secs ({}) must be greater than keepalive.interval_secs ({}), \
                 or every connection would time out between two pings",
                self.keepalive.timeout_secs, self.keepalive.interval_secs
            ));
        }
        if self.pools.create.len() > self.limits.max_pools {
            return Err(format!(
                "pools.create lists {} pools, more than limits.max_pools ({})",
                self.pools.create.len(),
                self.limits.max_pools
            ));
        }
        if let Some(admin) = &self.admin {
            admin.validate()?;
            if admin.listen == self.server.listen && admin.listen.port() != 0 {
                return Err(format!(
                    "admin.listen and server.listen are both {}: the admin API needs its own port",
                    admin.listen
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for bridge in &self.bridge {
            bridge.validate()?;
            if !names.insert(&bridge.name) {
                return Err(format!(
                    "two [[bridge]] entries are named {:?}",
                    bridge.name
                ));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(format!(
                "log.level {:?} is not a valid filter: {e}",
                self.log.level
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_means_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.pools.mode, PoolMode::Public);
    }

    #[test]
    fn full_config_parses() {
        let c = Config::parse(
            r#"
ice_local_addresses = ["127.0.0.1", "::1"]

[server]
listen = "0.0.0.0:9000"
web_root = "web"

[pools]
mode = "private"
create = ["lobby", "stage"]

[limits]
max_message_bytes = 1000
max_endpoints_per_pool = 8
max_pools = 10
max_queued_messages = 50

[keepalive]
interval_secs = 5
timeout_secs = 15

[[ice_servers]]
urls = "stun:stun.example.net:3478"

[[ice_servers]]
urls = ["turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349"]
username = "u"
credential = "p"

[log]
level = "poolgate=debug,info"
"#,
        )
        .unwrap();
        assert_eq!(c.pools.mode, PoolMode::Private);
        assert_eq!(c.pools.create, vec!["lobby", "stage"]);
        assert_eq!(c.limits.max_endpoints_per_pool, 8);
        assert_eq!(c.ice_servers.len(), 2);
        assert_eq!(c.ice_servers[1].urls.len(), 2);
        assert_eq!(c.ice_local_addresses.len(), 2);
        assert_eq!(c.keepalive.interval_secs, 5);
    }

    /// Each bad config fails with a message naming the key, and the line where it can.
    #[test]
    fn errors_name_the_key_and_line() {
        let cases = [
            (
                "[server]\nlisten = \"127.0.0.1:8080\"\nlsiten = 1\n",
                &["line 3", "lsiten"][..],
            ),
            ("[server]\nlisten = \"nowhere\"\n", &["line 2", "listen"]),
            (
                "[pools]\nmode = \"secret\"\n",
                &["line 2", "public", "private"],
            ),
            (
                "[limits]\n\nmax_pools = 0\n",
                &["line 3", "max_pools", "at least 1"],
            ),
            ("[limits]\nmax_pools = -1\n", &["line 2", "max_pools"]),
            ("[bogus]\n", &["line 1", "bogus"]),
            (
                "[[ice_servers]]\nurls = \"http://x\"\n",
                &["line 1", "stun:"],
            ),
            (
                "[[ice_servers]]\nurls = \"turn:x:3478\"\n",
                &["line 1", "username"],
            ),
            ("[[ice_servers]]\nurls = []\n", &["line 1", "at least one"]),
            (
                "[[ice_servers]]\nurls = \"stun:x\"\npassword = \"p\"\n",
                &["password"],
            ),
            (
                "[keepalive]\ninterval_secs = 10\ntimeout_secs = 5\n",
                &["keepalive.timeout_secs"],
            ),
            ("[log]\nlevel = \"[[[\"\n", &["log.level"]),
            (
                "ice_local_addresses = [\"eth0\"]\n",
                &["line 1", "ice_local_addresses", "IP address"],
            ),
            ("server = 3\n", &["line 1", "server"]),
            ("[admin]\nlisten = \"127.0.0.1\"\n", &["line 2", "listen"]),
            ("[admin]\ntokn = \"x\"\n", &["line 2", "tokn"]),
            (
                "[admin]\nlisten = \"0.0.0.0:8081\"\ninsecure_no_auth = true\n",
                &["admin.insecure_no_auth", "loopback", "0.0.0.0:8081"],
            ),
            (
                "[admin]\ninsecure_no_auth = true\ntoken_file = \"t\"\n",
                &["admin.insecure_no_auth", "admin.token_file"],
            ),
            ("[admin]\ntoken = \"short\"\n", &["admin.token", "16"]),
            (
                "[admin]\ntoken = \"has a space in it, sixteen+\"\n",
                &["admin.token", "visible ASCII"],
            ),
            ("[admin]\nmax_body_bytes = 0\n", &["admin.max_body_bytes"]),
            (
                "[server]\nlisten = \"127.0.0.1:9000\"\n[admin]\nlisten = \"127.0.0.1:9000\"\n",
                &["admin.listen", "own port"],
            ),
        ];
        for (text, needles) in cases {
            let err = Config::parse(text).expect_err(text);
            for n in needles {
                assert!(err.contains(n), "error for {text:?} lacks {n:?}:\n{err}");
            }
        }
    }

    #[test]
    fn admin_table_turns_the_admin_api_on() {
        assert_eq!(Config::parse("").unwrap().admin, None);
        let a = Config::parse("[admin]\n").unwrap().admin.unwrap();
        assert_eq!(a, AdminConfig::default());
        assert_eq!(a.listen.to_string(), "127.0.0.1:8081");
        let a = Config::parse("[admin]\ntoken = \"0123456789abcdef\"\ninsecure_no_auth = false\n")
            .unwrap()
            .admin
            .unwrap();
        assert_eq!(a.token.unwrap().expose(), "0123456789abcdef");
        // The token never shows in a debug print of the config.
        let c = Config::parse("[admin]\ntoken = \"0123456789abcdef\"\n").unwrap();
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        // A bad token's error does not echo it either.
        let e = Config::parse("[admin]\ntoken = \"sekrit\"\n").unwrap_err();
        assert!(!e.contains("sekrit"), "{e}");
        assert!(
            Config::parse("[admin]\nlisten = \"[::1]:8081\"\ninsecure_no_auth = true\n").is_ok()
        );
    }

    #[test]
    fn bridges_and_plugins_parse() {
        let c = Config::parse(
            r#"
[plugins]
dir = "/opt/poolgate/plugins"

[[bridge]]
name = "echo"
plugin = "example-echo"
pool = "demo"
description = { role = "echo" }
config = { prefix = "> " }

[[bridge]]
name = "far"
plugin = "example-echo"
pool = "room"
signalling = "ws://127.0.0.1:7001/"
restart = { mode = "never" }
"#,
        )
        .unwrap();
        assert_eq!(
            c.plugins.dir.as_deref(),
            Some(Path::new("/opt/poolgate/plugins"))
        );
        assert_eq!(c.bridge.len(), 2);
        assert_eq!(c.bridge[0].config["prefix"], "> ");
        assert_eq!(
            c.bridge[1].signalling.as_deref(),
            Some("ws://127.0.0.1:7001/")
        );
    }

    #[test]
    fn bridge_errors_name_the_bridge_and_key() {
        let cases = [
            (
                "[[bridge]]\nname = \"a\"\nplugin = \"p\"\npool = \"x\"\n\
                 [[bridge]]\nname = \"a\"\nplugin = \"p\"\npool = \"y\"\n",
                &["two [[bridge]] entries are named \"a\""][..],
            ),
            (
                "[[bridge]]\nname = \"a\"\nplugin = \"p\"\npool = \"x\"\nsignal = \"ws://x\"\n",
                &["line 5", "unknown field `signal`"],
            ),
            (
                "[[bridge]]\nname = \"a\"\nplugin = \"p\"\npool = \"x\"\nsignalling = \"tcp://u:secret@x\"\n",
                &["bridge \"a\"", "signalling"],
            ),
            ("[plugins]\nfolder = \"x\"\n", &["line 2", "folder"]),
        ];
        for (text, needles) in cases {
            let err = Config::parse(text).expect_err(text);
            for n in needles {
                assert!(err.contains(n), "error for {text:?} lacks {n:?}:\n{err}");
            }
            assert!(!err.contains("secret"), "a secret leaked: {err}");
        }
    }

    #[test]
    fn relative_web_root_is_relative_to_the_config_file() {
        let dir = std::env::temp_dir().join(format!("poolgate-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.toml");
        std::fs::write(
            &path,
            "[server]\nweb_root = \"site\"\n[admin]\ntoken_file = \"state/token\"\n[plugins]\ndir = \"plugins\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.server.web_root, Some(dir.join("site")));
        assert_eq!(c.admin.unwrap().token_file, Some(dir.join("state/token")));
        assert_eq!(c.plugins.dir, Some(dir.join("plugins")));
        let missing = Config::load(&dir.join("none.toml"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("none.toml"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

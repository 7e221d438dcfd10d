//! `[admin]`: the admin API's own listener and how it checks who is calling.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::secret::Secret;

/// Shortest token accepted from the config, the environment or a token file: anything shorter
/// can be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The admin API. Present in the config file as `[admin]`; without that table there is no
/// admin listener at all.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin listener. Keep it on loopback unless a firewall guards it.
    pub listen: SocketAddr,
    /// The bearer token. `POOLGATE_ADMIN_TOKEN` overrides it; prefer the environment or a
    /// token file to writing it here.
    pub token: Option<Secret>,
    /// Where the token is read from, or generated into (mode 0600) when the file does not
    /// exist. Relative paths are relative to the config file. Default: see
    /// [`crate::admin::token::default_token_file`].
    pub token_file: Option<PathBuf>,
    /// Serve the admin API without authentication. Only allowed when `listen` is a loopback
    /// address, and logged as a warning at start.
    pub insecure_no_auth: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            token: None,
            token_file: None,
            insecure_no_auth: false,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl AdminConfig {
    /// Rules that span several keys of `[admin]`.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.insecure_no_auth {
            if !self.listen.ip().is_loopback() {
                return Err(format!(
                    "admin.insecure_no_auth is only allowed when admin.listen is a loopback \
                     address (127.0.0.1 or ::1), not {}",
                    self.listen
                ));
            }
            if self.token.is_some() || self.token_file.is_some() {
                return Err(
                    "admin.insecure_no_auth cannot be combined with admin.token or \
                            admin.token_file: choose one"
                        .into(),
                );
            }
        }
        if let Some(token) = &self.token {
            check_token(token.expose()).map_err(|e| format!("admin.token: {e}"))?;
        }
        if self.max_body_bytes == 0 {
            return Err("admin.max_body_bytes must be at least 1".into());
        }
        Ok(())
    }
}

/// Checks that a token is usable in an `Authorization: Bearer` header and long enough not to
/// be guessed. The error never contains the token.
pub fn check_token(token: &str) -> Result<(), String> {
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(format!(
            "the token must have at least {MIN_TOKEN_CHARS} characters"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the token may only contain visible ASCII characters (no spaces)".into());
    }
    Ok(())
}

//! The rules a pool server enforces, as read from the `[pools]` and `[limits]` config tables.

use serde::{Deserialize, Deserializer};

/// Who may bring a pool into existence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    /// Joining a pool that does not exist creates it.
    #[default]
    Public,
    /// Only pools the operator created exist; joining another is refused.
    Private,
}

/// Bounds that keep one client or one pool from exhausting the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest signalling message accepted, in bytes (an SDP offer with many tracks is ~10 KiB).
    #[serde(deserialize_with = "positive")]
    pub max_message_bytes: usize,
    /// Most endpoints in one pool.
    #[serde(deserialize_with = "positive")]
    pub max_endpoints_per_pool: usize,
    /// Most pools on this server (operator pools included).
    #[serde(deserialize_with = "positive")]
    pub max_pools: usize,
    /// Messages queued for one client before it is disconnected as too slow to read.
    #[serde(deserialize_with = "positive")]
    pub max_queued_messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            max_endpoints_per_pool: 64,
            max_pools: 10_000,
            max_queued_messages: 1024,
        }
    }
}

/// Pool names are shown to operators and used in URLs and topic names: keep them bounded.
pub const MAX_POOL_NAME_BYTES: usize = 256;

/// A limit of zero would refuse everything: reject it when the config is read.
fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(n)
}

/// How dead connections are found: the server pings every `interval_secs` and closes a
/// connection from which nothing (not even a pong) arrived for `timeout_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Keepalive {
    #[serde(deserialize_with = "positive_u64")]
    pub interval_secs: u64,
    #[serde(deserialize_with = "positive_u64")]
    pub timeout_secs: u64,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            interval_secs: 10,
            timeout_secs: 30,
        }
    }
}

impl Keepalive {
    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.interval_secs)
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }
}

fn positive_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(n)
}

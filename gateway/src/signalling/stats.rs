//! Counters of what the pool server did, for `/metrics`. Plain numbers kept under the server's
//! lock and bumped where the registry's outputs are carried out, so they count what happened
//! (a message queued to a client), not what was attempted.

use std::collections::BTreeMap;

use super::output::{Notice, PoolRemoval};

/// Totals since the server started. Maps are keyed by a label value (a transport, an event
/// type, an error code, a leave reason).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignallingStats {
    /// Connections opened, by transport (`websocket`, `socketio`, `in-process`).
    pub connections_opened: BTreeMap<&'static str, u64>,
    /// Endpoints that joined a pool.
    pub joins: u64,
    /// Endpoints that left a pool, by reason ([`super::LeaveReason::code`]).
    pub leaves: BTreeMap<&'static str, u64>,
    /// `rtc:sdp` and `rtc:candidate` messages routed from one endpoint to another, by type.
    pub routed: BTreeMap<&'static str, u64>,
    /// Every message queued to a client, by type (`rtc:joined`, `rtc:describe`, ...).
    pub sent: BTreeMap<&'static str, u64>,
    /// Client messages refused with `rtc:error`, by error code.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Pools created, by origin (`operator`, `joined`).
    pub pools_created: BTreeMap<&'static str, u64>,
    /// Pools removed, by reason (`empty`, `closed_by_operator`).
    pub pools_removed: BTreeMap<&'static str, u64>,
    /// Descriptions set or cleared by the operator.
    pub descriptions_set: u64,
}

impl SignallingStats {
    pub(super) fn connection_opened(&mut self, transport: &'static str) {
        *self.connections_opened.entry(transport).or_default() += 1;
    }

    /// A message was queued to a client.
    pub(super) fn queued(&mut self, event: &'static str) {
        *self.sent.entry(event).or_default() += 1;
        if matches!(event, "rtc:sdp" | "rtc:candidate") {
            *self.routed.entry(event).or_default() += 1;
        }
    }

    pub(super) fn notice(&mut self, notice: &Notice) {
        match notice {
            Notice::Joined { .. } => self.joins += 1,
            Notice::Left { reason, .. } => *self.leaves.entry(reason.code()).or_default() += 1,
            Notice::PoolCreated { origin, .. } => {
                *self.pools_created.entry(origin.as_str()).or_default() += 1;
            }
            Notice::PoolRemoved { reason, .. } => {
                let reason = match reason {
                    PoolRemoval::Empty => "empty",
                    PoolRemoval::ClosedByOperator => "closed_by_operator",
                };
                *self.pools_removed.entry(reason).or_default() += 1;
            }
            Notice::DescriptionChanged { .. } => self.descriptions_set += 1,
            Notice::Refused { error, .. } => *self.rejected.entry(error.code()).or_default() += 1,
        }
    }
}

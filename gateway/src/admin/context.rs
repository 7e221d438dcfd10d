//! What every admin route can reach: the pool server, readiness, and the API's own counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::recordings::Places;
use crate::bridge::Bridges;
use crate::signalling::PoolServer;

/// Whether the gateway is serving: set once its listeners are up, cleared when shutdown
/// begins. Shared between the gateway and `/health`.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Shared state of the admin routes. Cheap to clone.
#[derive(Clone)]
pub struct AdminContext {
    pub pools: PoolServer,
    /// The bridges, and through them the plugin folder.
    pub bridges: Bridges,
    pub readiness: Readiness,
    pub max_body_bytes: u64,
    /// Where recorder bridges have recorded (for `/api/v1/recordings`).
    pub recordings: Places,
    /// Admin responses by HTTP status code, for `/metrics`.
    responses: Arc<Mutex<BTreeMap<u16, u64>>>,
}

impl AdminContext {
    pub fn new(
        pools: PoolServer,
        bridges: Bridges,
        readiness: Readiness,
        max_body_bytes: u64,
    ) -> Self {
        AdminContext {
            pools,
            bridges,
            readiness,
            max_body_bytes,
            recordings: Places::default(),
            responses: Arc::default(),
        }
    }

    pub(super) fn count_response(&self, status: u16) {
        let mut responses = self.responses.lock().unwrap_or_else(|p| p.into_inner());
        *responses.entry(status).or_default() += 1;
    }

    /// Admin API responses so far, by status code.
    pub fn responses(&self) -> BTreeMap<u16, u64> {
        self.responses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

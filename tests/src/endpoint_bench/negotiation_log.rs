//! What the endpoint's negotiation did, counted from its own log events: collisions seen by
//! either side, rebuilds and their reasons, negotiations given up, and webrtcbins abandoned
//! in teardown. The glare soak uses it to tell a real collision from two offers that merely
//! followed each other.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Counts per (peer id, kind). The peer id is the *remote* peer of the endpoint that logged;
/// kinds are the negotiation diagnostics' names (`RemoteOfferIgnored`, `CreatedOfferDropped`,
/// ...), `Rebuild:<reason>`, `GaveUp` and `TeardownAbandoned` (no peer).
#[derive(Clone, Default)]
pub struct NegotiationLog {
    counts: Arc<Mutex<HashMap<(String, String), u64>>>,
}

impl NegotiationLog {
    /// How many events of `kind` were logged for remote peer `peer` so far.
    pub fn count(&self, peer: &str, kind: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .get(&(peer.to_string(), kind.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Totals per kind over every peer.
    pub fn totals(&self) -> Vec<(String, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut totals: HashMap<String, u64> = HashMap::new();
        for ((_, kind), n) in counts.iter() {
            *totals.entry(kind.clone()).or_default() += n;
        }
        let mut out: Vec<_> = totals.into_iter().collect();
        out.sort();
        out
    }

    fn add(&self, peer: String, kind: String) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry((peer, kind)).or_default() += 1;
    }
}

/// Installs the process's tracing: operator logs to stderr (`RUST_LOG`, default `warn`), and
/// the endpoint's debug events into the returned counter.
pub fn install() -> NegotiationLog {
    let log = NegotiationLog::default();
    let stderr_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let counter_filter = tracing_subscriber::filter::Targets::new()
        .with_target("poolgate::endpoint", tracing::Level::DEBUG);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(stderr_filter),
        )
        .with(Counter { log: log.clone() }.with_filter(counter_filter))
        .try_init();
    log
}

struct Counter {
    log: NegotiationLog,
}

#[derive(Default)]
struct Fields {
    message: String,
    peer: String,
    d: String,
    reason: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = text,
            "peer" => self.peer = text.trim_matches('"').to_string(),
            "d" => self.d = text,
            "reason" => self.reason = text,
            _ => {}
        }
    }
}

/// The variant name at the start of a Debug rendering (`OperationFailed { .. }` -> `OperationFailed`).
fn variant(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default()
        .to_string()
}

impl<S: tracing::Subscriber> Layer<S> for Counter {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let kind = if f.message == "negotiation" && !f.d.is_empty() {
            variant(&f.d)
        } else if f.message == "rebuilding the peer connection" {
            format!("Rebuild:{}", variant(&f.reason))
        } else if f.message.starts_with("negotiation gave up") {
            "GaveUp".to_string()
        } else if f.message.contains("did not stop this element") {
            "TeardownAbandoned".to_string()
        } else {
            return;
        };
        self.log.add(f.peer, kind);
    }
}

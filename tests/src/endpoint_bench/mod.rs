//! Benchmarks of poolgate's managed endpoint (`bench-endpoint`): connect time, the glare soak,
//! fan-out cost and memory over join/leave churn, all on loopback with the pool hosted by an
//! in-process [`Gateway`]. Figures are printed, never asserted.
//!
//! - [`connect`]: rtc:peer -> connected, endpoint vs endpoint, over many joins.
//! - [`glare`]: two endpoints open a data channel to each other at the same instant, again and
//!   again; rounds that do not converge and the time to converge.
//! - [`fanout`]: one published 720p30 VP8 stream to N receiving endpoints: the publisher's CPU
//!   and RSS per peer.
//! - [`churn`]: one long-lived endpoint while peers join and leave: RSS after 10 cycles and
//!   after many.
//!
//! Peers that join and leave run in child processes ([`peer_process`]), so the measured
//! process holds only the long-lived endpoint and the pool server. Every wait is bounded.

pub mod churn;
pub mod connect;
pub mod cycle;
pub mod fanout;
pub mod glare;
pub mod hang;
pub mod negotiation_log;
pub mod peer_process;
pub mod procstat;
pub mod report;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use poolgate::endpoint::{Endpoint, EndpointEvent, EndpointOptions, MediaSource};
use poolgate::signalling::{EndpointId, SignallingTarget};
use poolgate::{Config, Gateway};

pub use report::Section;

/// Bound on an endpoint's join (rtc:join -> rtc:joined).
pub const JOIN_LIMIT: Duration = Duration::from_secs(20);

/// What every scenario shares: the in-process pool server, a scratch folder for child logs
/// and backtraces, and this program (to start peers in child processes).
pub struct Bench {
    pub gateway: Gateway,
    pub scratch: PathBuf,
    pub exe: PathBuf,
    pub log: negotiation_log::NegotiationLog,
}

impl Bench {
    pub async fn start(log: negotiation_log::NegotiationLog) -> anyhow::Result<Bench> {
        let config = Config::parse(
            "[server]\nlisten = \"127.0.0.1:0\"\n[limits]\nmax_endpoints_per_pool = 64\n",
        )
        .map_err(anyhow::Error::msg)?;
        let gateway = Gateway::start(&config).await?;
        let scratch = std::env::temp_dir().join(format!("bench-endpoint-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let exe = std::env::current_exe().context("finding this program")?;
        Ok(Bench {
            gateway,
            scratch,
            exe,
            log,
        })
    }

    /// The raw-WebSocket URL child peers join through.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.gateway.addr())
    }

    /// Starts an in-process endpoint on the hosted pool `pool` and waits for its join.
    pub async fn endpoint(
        &self,
        pool: &str,
        media: Vec<MediaSource>,
    ) -> anyhow::Result<(Endpoint, EndpointId)> {
        let mut endpoint = Endpoint::start(EndpointOptions {
            target: SignallingTarget::Hosted(self.gateway.pools().clone()),
            pool: pool.to_string(),
            ice_servers: Vec::new(),
            ice_local_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            media,
        })
        .await?;
        let deadline = tokio::time::Instant::now() + JOIN_LIMIT;
        loop {
            let event = tokio::time::timeout_at(deadline, endpoint.next_event())
                .await
                .with_context(|| {
                    format!("the endpoint did not join {pool:?} within {JOIN_LIMIT:?}")
                })?
                .context("the endpoint stopped before joining")?;
            if let EndpointEvent::Joined { id, .. } = event {
                return Ok((endpoint, id));
            }
        }
    }
}

impl Bench {
    /// Stops an in-process endpoint. One that has not stopped within [`STOP_LIMIT`] is a hang:
    /// this process's threads are captured with gdb and the description returned.
    pub async fn stop_endpoint(&self, endpoint: Endpoint, what: &str) -> Option<String> {
        if tokio::time::timeout(STOP_LIMIT, endpoint.stop())
            .await
            .is_ok()
        {
            return None;
        }
        let what = format!("{what} did not stop within {STOP_LIMIT:?}");
        eprintln!("bench-endpoint: HANG: {what}; capturing backtraces with gdb");
        let pid = std::process::id();
        let scratch = self.scratch.clone();
        let what2 = what.clone();
        let bt = tokio::task::spawn_blocking(move || hang::capture(pid, &scratch, &what2))
            .await
            .ok()
            .flatten();
        Some(match bt {
            Some(bt) => format!(
                "{what}; backtrace in {}:\n{}",
                bt.file.display(),
                bt.excerpt
            ),
            None => what,
        })
    }
}

/// Bound on stopping an in-process endpoint (its own teardown bounds each element at 5 s).
pub const STOP_LIMIT: Duration = Duration::from_secs(30);

/// The `p`-th percentile (nearest rank) of `samples`, in milliseconds.
pub fn percentile_ms(samples: &[Duration], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[i].as_secs_f64() * 1000.0)
}

/// `12.3` or `-`.
pub fn fmt_opt(v: Option<f64>, precision: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.precision$}"))
}

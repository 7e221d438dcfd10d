//! `bench-signalling`: the same ssp v2 signalling load against poolgate and against the
//! reference server `pyrtc` 2.0.2, in one run, printed side by side with the ratios.
//!
//! ```text
//! cargo build --release -p poolgate -p poolgate-tests
//! python3 -m venv .venv/pyrtc && .venv/pyrtc/bin/pip install pyrtc==2.0.2 wsproto
//! cargo run --release -p poolgate-tests --bin bench-signalling            # both servers
//! cargo run --release -p poolgate-tests --bin bench-signalling -- --only pyrtc
//! ```
//!
//! The program first re-executes itself in a network namespace that has only `lo`, then starts
//! each server itself (poolgate on a free port with a temporary config, pyrtc with
//! `python -m pyrtc.test` on its fixed port 7001), runs the load of [`signalling_load`] against
//! it, reads the server's peak RSS (`VmHWM`), and stops it (kill + wait). Each server gets an
//! overall time bound (`--timeout-secs`); a run that hits it is reported as a timeout.
//!
//! # What pyrtc 2.0.2 does differently (read from its code, `pyrtc/pool.py`, `transport.py`,
//! `test.py`), and what that means for the comparison
//! - It routes `rtc:sdp` (`to`) and `rtc:candidate` (`for`) to any endpoint id in any pool
//!   (a linear scan over the pools), not only to members of the sender's pool. The load only
//!   addresses pool peers, so the counts compare; the per-message cost does not scale alike.
//! - It fills `peer` / `from` from the sender's socket and ignores the client's `from`, as ssp v2
//!   says. An `rtc:sdp` to an unknown id gets an `rtc:error`; an `rtc:candidate` to an unknown
//!   id is dropped silently.
//! - `rtc:joined.descriptions` includes the joining endpoint itself; `peers` does not.
//! - It is one thread polling every socket with `select()` and then sleeping 10 ms per loop, so
//!   a join waits for the next pass (up to 10 ms of sleep plus one pass over all sockets),
//!   whatever the CPU does; and `select()` limits it to file descriptors below 1024 (about 1,000 clients).
//! - Its listen backlog is 5 and it prunes a just-accepted socket whose upgrade has not arrived
//!   yet, hence the connect retries (reported as `connect retries`). The pruned socket is held
//!   by a reference cycle (`Websocket.transceiver` <-> `WebsocketTransceiver._ws`), so it stays
//!   open until Python's cycle collector runs: the client sees no error, only an upgrade that
//!   never answers, and retries after 1.5 s. Those waits are in `connect+join phase`, not in the
//!   join latency (which starts when `rtc:join` is sent on an open socket).
//! - `transport.py` calls `time.sleep` without importing `time`: the server dies with a
//!   NameError when a client's socket is not writable (a slow reader). The load's readers drain
//!   continuously so this does not trigger here; an `exited during the run` line would show it.
//! - It also accepts a client-sent `describe` event (clients setting their own description);
//!   poolgate sets descriptions only through its admin API. The load does not use it.
//!
//! Both servers share the machine's cores with the load generator, whose runtime is limited to
//! `--client-threads` (default 1) worker threads.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use poolgate_tests::signalling_load::{self, LoadConfig, LoadReport};
use tokio::process::{Child, Command};
use tokio::time::{sleep, Instant};

/// The port `python -m pyrtc.test` always listens on.
const PYRTC_PORT: u16 = 7001;

const VENV_RECIPE: &str =
    "python3 -m venv .venv/pyrtc && .venv/pyrtc/bin/pip install pyrtc==2.0.2 wsproto";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ServerKind {
    Poolgate,
    Pyrtc,
}

impl ServerKind {
    fn name(self) -> &'static str {
        match self {
            ServerKind::Poolgate => "poolgate",
            ServerKind::Pyrtc => "pyrtc",
        }
    }
}

/// Signalling benchmark: poolgate vs the reference ssp server pyrtc 2.0.2.
#[derive(Parser, Debug)]
#[command(
    name = "bench-signalling",
    after_help = format!("The pyrtc venv: {VENV_RECIPE}")
)]
struct Args {
    /// The poolgate binary (relative paths: to the current directory, else the workspace root).
    #[arg(long, default_value = "target/release/poolgate")]
    poolgate: PathBuf,
    /// The Python of a venv that has pyrtc 2.0.2 and wsproto.
    #[arg(long, default_value = ".venv/pyrtc/bin/python")]
    python: PathBuf,
    /// Run against one server only.
    #[arg(long, value_enum)]
    only: Option<ServerKind>,
    /// WebSocket clients.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Clients per pool.
    #[arg(long, default_value_t = 10)]
    pool_size: usize,
    /// `rtc:sdp` messages per client.
    #[arg(long, default_value_t = 10)]
    sdp: usize,
    /// `rtc:candidate` messages per client.
    #[arg(long, default_value_t = 20)]
    candidates: usize,
    /// Clients connecting and joining at once.
    #[arg(long, default_value_t = 50)]
    connect_concurrency: usize,
    /// Overall bound per server, start-up included.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
}

/// What one server's run produced.
struct Outcome {
    kind: ServerKind,
    version: Option<String>,
    report: Option<LoadReport>,
    /// Why there is no report, or what went wrong beside it.
    problems: Vec<String>,
    peak_rss_kib: Option<u64>,
    idle_rss_kib: Option<u64>,
    log_tail: Option<String>,
}

fn main() -> ExitCode {
    poolgate_tests::namespace::enter_loopback_only();
    let args = Args::parse();
    if args.pool_size < 2 || args.clients < args.pool_size {
        eprintln!("need --pool-size >= 2 and --clients >= --pool-size");
        return ExitCode::from(2);
    }
    raise_fd_limit(args.clients as u64 + 256);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("bench-signalling: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the selected servers one after the other; true when every run completed cleanly.
async fn run(args: Args) -> anyhow::Result<bool> {
    let kinds: Vec<ServerKind> = match args.only {
        Some(k) => vec![k],
        None => vec![ServerKind::Poolgate, ServerKind::Pyrtc],
    };
    let scratch = std::env::temp_dir().join(format!("bench-signalling-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;

    let cfg = LoadConfig {
        clients: args.clients,
        pool_size: args.pool_size,
        sdp_per_client: args.sdp,
        candidates_per_client: args.candidates,
        connect_concurrency: args.connect_concurrency,
        ..LoadConfig::default()
    };
    eprintln!(
        "bench-signalling: {} clients in {} pools of {}, {} rtc:sdp + {} rtc:candidate each, \
         interfaces {:?}",
        cfg.clients,
        cfg.pools(),
        cfg.pool_size,
        cfg.sdp_per_client,
        cfg.candidates_per_client,
        poolgate_tests::namespace::interfaces()
    );
    if kinds.contains(&ServerKind::Pyrtc) && cfg.clients > 1000 {
        eprintln!(
            "warning: pyrtc polls with select(), which fails on file descriptors >= 1024; \
             more than ~1,000 clients will likely crash it"
        );
    }

    let mut outcomes = Vec::new();
    for kind in kinds {
        let bound = Duration::from_secs(args.timeout_secs);
        let cfg = LoadConfig {
            pool_prefix: format!("bench-{}", kind.name()),
            ..cfg.clone()
        };
        eprintln!("bench-signalling: {} ...", kind.name());
        let outcome = run_one(kind, &args, &cfg, &scratch, bound).await;
        if let Some(r) = &outcome.report {
            eprintln!(
                "bench-signalling: {} done: {} joined, {}/{} delivered",
                kind.name(),
                r.joined,
                r.received,
                r.sent
            );
        }
        outcomes.push(outcome);
    }
    let _ = std::fs::remove_dir_all(&scratch);

    print!("{}", render(&cfg, &outcomes));
    Ok(outcomes
        .iter()
        .all(|o| o.problems.is_empty() && o.report.as_ref().is_some_and(|r| r.timeouts.is_empty())))
}

async fn run_one(
    kind: ServerKind,
    args: &Args,
    cfg: &LoadConfig,
    scratch: &Path,
    bound: Duration,
) -> Outcome {
    let deadline = Instant::now() + bound;
    let mut outcome = Outcome {
        kind,
        version: None,
        report: None,
        problems: Vec::new(),
        peak_rss_kib: None,
        idle_rss_kib: None,
        log_tail: None,
    };
    let started = match kind {
        ServerKind::Poolgate => start_poolgate(&args.poolgate, scratch, deadline).await,
        ServerKind::Pyrtc => start_pyrtc(&args.python, scratch, deadline).await,
    };
    let (mut server, url) = match started {
        Ok(s) => s,
        Err(e) => {
            outcome.problems.push(format!("could not start: {e:#}"));
            return outcome;
        }
    };
    outcome.version = server.version.clone();
    outcome.idle_rss_kib = proc_status_kib(server.pid, "VmRSS");

    // The load respects `deadline` phase by phase; the outer bound is only a backstop.
    let load = signalling_load::run(&url, cfg, deadline);
    match tokio::time::timeout_at(deadline + Duration::from_secs(10), load).await {
        Ok(report) => outcome.report = Some(report),
        Err(_) => outcome.problems.push(format!(
            "TIMEOUT: the load did not finish within {} s",
            bound.as_secs()
        )),
    }

    outcome.peak_rss_kib = proc_status_kib(server.pid, "VmHWM");
    if let Ok(Some(status)) = server.child.try_wait() {
        outcome
            .problems
            .push(format!("the server exited during the run ({status})"));
    }
    server.stop().await;
    let crashed = !outcome.problems.is_empty()
        || outcome
            .report
            .as_ref()
            .is_some_and(|r| !r.timeouts.is_empty() || r.disconnected_early > 0);
    if crashed {
        outcome.log_tail = log_tail(&server.log, 15);
    }
    outcome
}

struct Server {
    child: Child,
    pid: u32,
    log: PathBuf,
    version: Option<String>,
}

impl Server {
    /// Kills the server and reaps it (bounded).
    async fn stop(&mut self) {
        let _ = self.child.start_kill();
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "warning: server {} did not exit within 5 s of SIGKILL",
                self.pid
            );
        }
    }
}

async fn start_poolgate(
    bin: &Path,
    scratch: &Path,
    deadline: Instant,
) -> anyhow::Result<(Server, String)> {
    let bin = resolve(bin).with_context(|| {
        format!(
            "poolgate binary {} not found (cargo build --release -p poolgate)",
            bin.display()
        )
    })?;
    let port = free_port()?;
    let config = scratch.join("poolgate.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let log = scratch.join("poolgate.log");
    let mut cmd = Command::new(&bin);
    cmd.arg("--config").arg(&config);
    let server = spawn(cmd, log, None)?;
    finish_start(server, port, deadline, "/ws").await
}

async fn start_pyrtc(
    python: &Path,
    scratch: &Path,
    deadline: Instant,
) -> anyhow::Result<(Server, String)> {
    let python = resolve(python).with_context(|| {
        format!(
            "{} not found; make the venv with: {VENV_RECIPE}",
            python.display()
        )
    })?;
    let probe = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m, pyrtc.test, wsproto; print(m.version('pyrtc'))",
        ])
        .output()
        .await
        .with_context(|| format!("running {}", python.display()))?;
    if !probe.status.success() {
        bail!(
            "{} cannot import pyrtc and wsproto ({}); make the venv with: {VENV_RECIPE}",
            python.display(),
            String::from_utf8_lossy(&probe.stderr).trim()
        );
    }
    let version = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    if version != "2.0.2" {
        eprintln!("warning: pyrtc {version} found, the reference is 2.0.2");
    }
    if std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, PYRTC_PORT)).is_ok() {
        bail!("port {PYRTC_PORT} is already in use; pyrtc.test cannot listen there");
    }
    let log = scratch.join("pyrtc.log");
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pyrtc.test"]).env("PYTHONUNBUFFERED", "1");
    let server = spawn(cmd, log, Some(version))?;
    finish_start(server, PYRTC_PORT, deadline, "").await
}

fn spawn(mut cmd: Command, log: PathBuf, version: Option<String>) -> anyhow::Result<Server> {
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.as_std()))?;
    let pid = child.id().context("the server exited at once")?;
    Ok(Server {
        child,
        pid,
        log,
        version,
    })
}

/// Waits (bounded) until the server accepts TCP connections on 127.0.0.1:`port`.
async fn finish_start(
    mut server: Server,
    port: u16,
    deadline: Instant,
    path: &str,
) -> anyhow::Result<(Server, String)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let ready_by = deadline.min(Instant::now() + Duration::from_secs(20));
    loop {
        if let Some(status) = server.child.try_wait()? {
            let tail = log_tail(&server.log, 15).unwrap_or_default();
            bail!("the server exited while starting ({status}):\n{tail}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        if Instant::now() >= ready_by {
            server.stop().await;
            bail!("nothing accepted connections on {addr} within 20 s");
        }
        sleep(Duration::from_millis(50)).await;
    }
    Ok((server, format!("ws://{addr}{path}")))
}

/// A relative path as given if it exists from the current directory, else from the workspace.
fn resolve(path: &Path) -> Option<PathBuf> {
    if path.exists() {
        return Some(path.to_path_buf());
    }
    if path.is_relative() {
        let in_workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        if in_workspace.exists() {
            return Some(in_workspace);
        }
    }
    None
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A `kB` field of `/proc/<pid>/status`, such as `VmHWM` (peak RSS) or `VmRSS`.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

fn log_tail(log: &Path, lines: usize) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    (!tail.is_empty()).then_some(tail)
}

/// Raises the soft open-files limit to at least `want` (up to the hard limit).
fn raise_fd_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= want {
            return;
        }
        lim.rlim_cur = want.min(lim.rlim_max);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur < want {
            eprintln!(
                "warning: open-files limit is {}, below the {want} this load needs",
                lim.rlim_cur
            );
        }
    }
}

fn render(cfg: &LoadConfig, outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nssp v2 signalling benchmark: {} raw-WebSocket clients, {} pools of {}, each client \
         sends {} rtc:sdp + {} rtc:candidate to its pool peers ({} routed messages planned)",
        cfg.clients,
        cfg.pools(),
        cfg.pool_size,
        cfg.sdp_per_client,
        cfg.candidates_per_client,
        cfg.planned_messages()
    );
    let find = |k: ServerKind| outcomes.iter().find(|o| o.kind == k);
    let (pg, py) = (find(ServerKind::Poolgate), find(ServerKind::Pyrtc));
    fn rep(o: Option<&Outcome>) -> Option<&LoadReport> {
        o.and_then(|o| o.report.as_ref())
    }

    type Metric = fn(&Outcome, &LoadReport) -> Option<f64>;
    let rows: &[(&str, Metric, usize, bool)] = &[
        ("clients joined", |_, r| Some(r.joined as f64), 0, false),
        (
            "connect retries",
            |_, r| Some(r.connect_retries as f64),
            0,
            false,
        ),
        (
            "  attempts timed out (1.5 s)",
            |_, r| Some(r.connect_attempt_timeouts as f64),
            0,
            false,
        ),
        (
            "  attempts failed",
            |_, r| Some(r.connect_attempt_errors as f64),
            0,
            false,
        ),
        (
            "pools complete",
            |_, r| Some(r.pools_complete as f64),
            0,
            false,
        ),
        (
            "join latency p50 (ms)",
            |_, r| r.join_percentile_ms(50.0),
            2,
            true,
        ),
        (
            "join latency p99 (ms)",
            |_, r| r.join_percentile_ms(99.0),
            2,
            true,
        ),
        (
            "join latency max (ms)",
            |_, r| r.join_percentile_ms(100.0),
            2,
            false,
        ),
        (
            "connect+join phase (s)",
            |_, r| Some(r.join_phase.as_secs_f64()),
            2,
            false,
        ),
        ("routed messages sent", |_, r| Some(r.sent as f64), 0, false),
        (
            "routed messages received",
            |_, r| Some(r.received as f64),
            0,
            false,
        ),
        ("messages lost", |_, r| Some(r.lost() as f64), 0, true),
        (
            "first send -> last receive (s)",
            |_, r| r.route_elapsed.map(|d| d.as_secs_f64()),
            3,
            false,
        ),
        ("routed messages/s", |_, r| r.routed_per_sec(), 0, true),
        (
            "routed from outside the pool",
            |_, r| Some(r.foreign as f64),
            0,
            false,
        ),
        ("rtc:error received", |_, r| Some(r.errors as f64), 0, false),
        (
            "closed by server early",
            |_, r| Some(r.disconnected_early as f64),
            0,
            false,
        ),
        (
            "server RSS idle (MiB)",
            |o, _| o.idle_rss_kib.map(|k| k as f64 / 1024.0),
            1,
            false,
        ),
        (
            "server peak RSS VmHWM (MiB)",
            |o, _| o.peak_rss_kib.map(|k| k as f64 / 1024.0),
            1,
            true,
        ),
    ];
    let cell = |o: Option<&Outcome>, f: Metric, prec: usize| -> String {
        match (o, rep(o)) {
            (Some(o), Some(r)) => f(o, r).map_or("-".into(), |v| format!("{v:.prec$}")),
            _ => "-".into(),
        }
    };
    let _ = writeln!(
        out,
        "\n{:<32} {:>14} {:>14} {:>16}",
        "metric", "poolgate", "pyrtc", "poolgate/pyrtc"
    );
    let _ = writeln!(out, "{}", "-".repeat(79));
    for (label, f, prec, ratio) in rows {
        let ratio = if *ratio {
            let a = pg.zip(rep(pg)).and_then(|(o, r)| f(o, r));
            let b = py.zip(rep(py)).and_then(|(o, r)| f(o, r));
            match (a, b) {
                (Some(a), Some(b)) if b != 0.0 => format!("{:.3}", a / b),
                (Some(0.0), Some(_)) => "0/0".into(),
                (Some(_), Some(_)) => "inf".into(),
                _ => "-".into(),
            }
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:<32} {:>14} {:>14} {:>16}",
            label,
            cell(pg, *f, *prec),
            cell(py, *f, *prec),
            ratio
        );
    }

    let status = |o: Option<&Outcome>| -> &'static str {
        match o {
            None => "-",
            Some(o) => match &o.report {
                _ if o.problems.iter().any(|p| p.starts_with("TIMEOUT")) => "TIMEOUT",
                None => "FAILED",
                Some(r) if !r.timeouts.is_empty() => "TIMEOUT",
                Some(_) if !o.problems.is_empty() => "FAILED",
                Some(_) => "completed",
            },
        }
    };
    let _ = writeln!(
        out,
        "{:<32} {:>14} {:>14}",
        "status",
        status(pg),
        status(py)
    );

    for o in outcomes {
        let status = status(Some(o));
        let version = o
            .version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        let _ = writeln!(out, "\n{}{}: {}", o.kind.name(), version, status);
        for p in &o.problems {
            let _ = writeln!(out, "  problem: {p}");
        }
        if let Some(r) = &o.report {
            for t in &r.timeouts {
                let _ = writeln!(out, "  TIMEOUT/bound hit: {t}");
            }
            for f in &r.failures {
                let _ = writeln!(out, "  failure: {f}");
            }
            if let Some(e) = &r.error_sample {
                let _ = writeln!(out, "  first error: {e}");
            }
        }
        if let Some(tail) = &o.log_tail {
            let _ = writeln!(out, "  server log (tail):");
            for line in tail.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
    }

    out.push_str(
        "\nNotes on the comparison (from pyrtc 2.0.2's code):\n\
         - pyrtc routes rtc:sdp/rtc:candidate to any id in any pool (a linear scan over pools); \
         this load only addresses pool peers, so the counts compare.\n\
         - pyrtc is one thread that polls every socket with select() and sleeps 10 ms per loop: \
         a join waits up to 10 ms plus a pass over all sockets, and select() caps it near 1,000 \
         sockets.\n\
         - pyrtc prunes a just-accepted socket whose upgrade has not arrived yet; the load retries \
         connects that do not open within 1.5 s (see `connect retries`).\n\
         - messages lost = routed messages written by the clients minus routed messages received \
         before the routing bound; routed messages/s = received / (last receive - first send).\n\
         - the load generator runs on the same cores as the server under test.\n",
    );
    out
}

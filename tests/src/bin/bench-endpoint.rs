//! `bench-endpoint`: benchmarks of poolgate's managed endpoint, on loopback, with the pool
//! hosted by an in-process `poolgate::Gateway`. Figures are printed, never asserted.
//!
//! ```text
//! cargo build --release -p poolgate-tests --bin bench-endpoint
//! target/release/bench-endpoint                               # every scenario, full sizes
//! target/release/bench-endpoint --scenarios glare --glare-rounds 100
//! target/release/bench-endpoint --scenarios fanout --fanout 1,5
//! ```
//!
//! Scenarios (see `poolgate_tests::endpoint_bench`), run in this order by default (the glare
//! soak last: it starts and stops thousands of endpoints in this process):
//! - `connect`: rtc:peer -> connected p50/p99 over `--joins` joins, endpoint vs endpoint;
//! - `fanout`: one 720p30 VP8 stream to N receiving endpoints in child processes; the
//!   publishing side's CPU and RSS per peer;
//! - `churn`: RSS of the process holding one long-lived endpoint after 10 join/leave cycles
//!   and after `--churn-cycles`;
//! - `glare`: `--glare-rounds` forced offer collisions (both sides open a data channel at the
//!   same instant); failures and time to converge.
//!
//! The machine's load average is printed with each scenario: CPU figures taken on shared,
//! busy cores are not comparable with figures from an idle machine.
//!
//! The program first re-executes itself in a network namespace that has only `lo`. Peers that
//! must be measured apart run as child processes of this same program (`peer` subcommand).
//! Every scenario is bounded in count and in time, and prints progress on stderr; the tables
//! go to stdout at the end. Child logs and gdb backtraces of hangs stay in the scratch folder
//! printed at the end.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use poolgate_tests::endpoint_bench::churn::{self, ChurnArgs};
use poolgate_tests::endpoint_bench::connect::{self, ConnectArgs};
use poolgate_tests::endpoint_bench::fanout::{self, FanoutArgs, SOURCE_720P};
use poolgate_tests::endpoint_bench::glare::{self, GlareArgs};
use poolgate_tests::endpoint_bench::peer_process::{self, PeerArgs};
use poolgate_tests::endpoint_bench::{fmt_opt, negotiation_log, procstat, Bench, Section};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Connect,
    Glare,
    Fanout,
    Churn,
}

/// Managed-endpoint benchmarks: connect time, glare soak, fan-out cost, memory over churn.
#[derive(Parser, Debug)]
#[command(name = "bench-endpoint")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Internal: one peer endpoint in a child process, driven over stdin and stdout.
    #[command(hide = true)]
    Peer(PeerArgs),
}

#[derive(clap::Args, Debug)]
struct Args {
    /// Scenarios to run, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "connect,fanout,churn,glare"
    )]
    scenarios: Vec<Scenario>,

    /// connect: joins to measure.
    #[arg(long, default_value_t = 100)]
    joins: usize,
    /// connect: time bound.
    #[arg(long, default_value_t = 300)]
    connect_max_secs: u64,
    /// connect, churn: the joining peer receives only (by default it publishes the VP8 test
    /// pattern too, and so offers at once).
    #[arg(long)]
    joiner_receive_only: bool,
    /// connect, churn: bound on one join until connected and receiving.
    #[arg(long, default_value_t = 30)]
    cycle_limit_secs: u64,

    /// glare: forced collisions.
    #[arg(long, default_value_t = 1000)]
    glare_rounds: usize,
    /// glare: endpoint pairs colliding at once (each in its own pool).
    #[arg(long, default_value_t = 4)]
    glare_pairs: usize,
    /// glare: time bound.
    #[arg(long, default_value_t = 900)]
    glare_max_secs: u64,
    /// glare: bound on one round's convergence (a round not converged by then is a failure).
    #[arg(long, default_value_t = 15)]
    glare_limit_secs: u64,
    /// glare: wait after a join before colliding, so that both peer connections exist.
    #[arg(long, default_value_t = 1700)]
    glare_settle_ms: u64,

    /// fanout: receiver counts, ascending; receivers are added and stay.
    #[arg(long, value_delimiter = ',', default_value = "1,5,10,20")]
    fanout: Vec<usize>,
    /// fanout: the published source, a gst-launch description ending in RTP.
    #[arg(long, default_value = SOURCE_720P)]
    fanout_source: String,
    /// fanout: measuring window per step.
    #[arg(long, default_value_t = 10)]
    fanout_window_secs: u64,
    /// fanout: bound on all receivers of a step connecting and receiving.
    #[arg(long, default_value_t = 120)]
    fanout_limit_secs: u64,

    /// churn: join/leave cycles.
    #[arg(long, default_value_t = 1000)]
    churn_cycles: usize,
    /// churn: the early reading the last is compared with.
    #[arg(long, default_value_t = 10)]
    churn_baseline: usize,
    /// churn: time bound. A cycle takes about 1 s on loopback, so 1,000 cycles need about
    /// 17 minutes: a 15-minute bound stopped the default run short of the 1,000 the figure is
    /// about.
    #[arg(long, default_value_t = 1500)]
    churn_max_secs: u64,
}

fn main() -> ExitCode {
    // The allocator as the `poolgate` binary sets it, before any thread: the figures are the
    // gateway's. GLib's slice allocator on malloc the same way (this program re-executes
    // itself with G_SLICE=always-malloc; its `peer` children inherit it); `G_SLICE=` (empty)
    // in the environment measures GLib's own slice allocator, `MALLOC_ARENA_MAX=0` glibc's
    // default arenas, and `BENCH_NO_ENDPOINT_TRIM=1` the endpoints without a trim after each
    // stop.
    let memory = poolgate::memory::MemoryConfig {
        trim_after_endpoint_stop: std::env::var_os("BENCH_NO_ENDPOINT_TRIM").is_none(),
        ..Default::default()
    };
    let slice = poolgate::memory::ensure_glib_slice_malloc(memory.glib_slice_malloc);
    poolgate_tests::namespace::enter_loopback_only();
    let cli = Cli::parse();
    let arenas = poolgate::memory::apply(&memory);
    if cli.command.is_none() {
        eprintln!(
            "bench-endpoint: {arenas}; trim after an endpoint stops: {}; {slice}; \
             slice allocator on malloc: {}",
            memory.trim_after_endpoint_stop,
            poolgate::memory::glib_slice_always_malloc()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime");
    if let Some(Command::Peer(peer)) = cli.command {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .try_init();
        return match runtime.block_on(peer_process::run_child(peer)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench-endpoint peer: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let log = negotiation_log::install();
    let ok = runtime.block_on(run(cli.args, log));
    runtime.shutdown_timeout(Duration::from_secs(5));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runs the scenarios; false when one could not run at all.
async fn run(args: Args, log: negotiation_log::NegotiationLog) -> bool {
    eprintln!(
        "bench-endpoint: scenarios {:?}, interfaces {:?}",
        args.scenarios,
        poolgate_tests::namespace::interfaces()
    );
    let bench = match Bench::start(log).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench-endpoint: cannot start the pool server: {e:#}");
            return false;
        }
    };
    let mut sections: Vec<Section> = Vec::new();
    let mut ok = true;
    for scenario in &args.scenarios {
        eprintln!("bench-endpoint: {scenario:?} ...");
        let load_before = procstat::load_average();
        let result = match scenario {
            Scenario::Connect => {
                connect::run(
                    &bench,
                    &ConnectArgs {
                        joins: args.joins,
                        max_time: Duration::from_secs(args.connect_max_secs),
                        joiner_video: !args.joiner_receive_only,
                        limit: Duration::from_secs(args.cycle_limit_secs),
                    },
                )
                .await
            }
            Scenario::Glare => {
                glare::run(
                    &bench,
                    &GlareArgs {
                        rounds: args.glare_rounds,
                        pairs: args.glare_pairs,
                        max_time: Duration::from_secs(args.glare_max_secs),
                        limit: Duration::from_secs(args.glare_limit_secs),
                        settle: Duration::from_millis(args.glare_settle_ms),
                    },
                )
                .await
            }
            Scenario::Fanout => {
                let mut steps = args.fanout.clone();
                steps.sort_unstable();
                steps.dedup();
                fanout::run(
                    &bench,
                    &FanoutArgs {
                        steps,
                        source: args.fanout_source.clone(),
                        window: Duration::from_secs(args.fanout_window_secs),
                        settle: Duration::from_secs(3),
                        limit: Duration::from_secs(args.fanout_limit_secs),
                    },
                )
                .await
            }
            Scenario::Churn => {
                churn::run(
                    &bench,
                    &ChurnArgs {
                        cycles: args.churn_cycles,
                        baseline_cycle: args.churn_baseline,
                        max_time: Duration::from_secs(args.churn_max_secs),
                        joiner_video: !args.joiner_receive_only,
                        limit: Duration::from_secs(args.cycle_limit_secs),
                    },
                )
                .await
            }
        };
        let load = format!(
            "{} / {}",
            fmt_opt(load_before, 2),
            fmt_opt(procstat::load_average(), 2)
        );
        match result {
            Ok(mut section) => {
                section.row("machine load average (1 min), start / end", load);
                eprint!("{}", section.render());
                sections.push(section);
            }
            Err(e) => {
                ok = false;
                let mut s = Section::new(format!("{scenario:?}: could not run"));
                s.note(format!("{e:#}"));
                sections.push(s);
            }
        }
    }
    let totals: Vec<String> = bench
        .log
        .totals()
        .into_iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "\npoolgate managed-endpoint benchmarks (loopback, hosted pool on an in-process Gateway)"
    );
    for s in &sections {
        print!("{}", s.render());
    }
    println!(
        "\nnegotiation log counts over the whole run: {}",
        totals.join(", ")
    );
    println!("child logs and backtraces: {}", bench.scratch.display());
    bench.gateway.stop().await;
    ok
}

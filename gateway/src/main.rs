//! The `poolgate` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use poolgate::{Config, Gateway};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "poolgate",
    version,
    about = "A WebRTC media gateway for rtcpool pools"
)]
struct Cli {
    /// The configuration file.
    #[arg(long, short, default_value = "config/poolgate.toml", global = true)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Run,
    /// Check a configuration file and exit: 0 when valid, else every error, one a line, naming
    /// key and line. Each bridge's plugin must also load from the plugin folder and accept the
    /// bridge's config; a plugin that is not there is reported as `no plugin named "x" in DIR`.
    CheckConfig {
        /// The file to check (defaults to --config).
        path: Option<PathBuf>,
        /// Check the bridges against the plugins of this folder instead of plugins.dir (e.g.
        /// `target/release` in a source checkout).
        #[arg(long, conflicts_with = "no_plugins")]
        plugin_dir: Option<PathBuf>,
        /// Load no plugin: check the file and each bridge's declaration, not the bridges'
        /// plugins nor their configs (for a machine that does not have the plugins).
        #[arg(long)]
        no_plugins: bool,
    },
    /// List the plugin folder (plugins.dir of --config, or --dir): each library's plugin name
    /// and version, or why it was refused. Exit 1 when any was refused.
    Plugins {
        /// The folder to list instead of the config's plugins.dir.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig {
            path,
            plugin_dir,
            no_plugins,
        }) => {
            let plugins = match (no_plugins, plugin_dir) {
                (true, _) => PluginCheck::Skip,
                (false, Some(dir)) => PluginCheck::Dir(dir),
                (false, None) => PluginCheck::Configured,
            };
            check_config(&path.unwrap_or(cli.config), plugins)
        }
        Some(Command::Plugins { dir }) => list_plugins(&cli.config, dir),
        Some(Command::Run) | None => match run(&cli.config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("poolgate: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Which plugins `check-config` checks the bridges against.
enum PluginCheck {
    /// The config's `plugins.dir`.
    Configured,
    /// Another folder (`--plugin-dir`).
    Dir(PathBuf),
    /// None (`--no-plugins`).
    Skip,
}

fn check_config(path: &std::path::Path, plugins: PluginCheck) -> ExitCode {
    let c = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let errors = match &plugins {
        PluginCheck::Skip => Vec::new(),
        PluginCheck::Dir(dir) => check_bridges(&c, Some(dir), "--plugin-dir"),
        PluginCheck::Configured => check_bridges(&c, c.plugins.dir.as_deref(), "plugins.dir"),
    };
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{}: {e}", path.display());
        }
        return ExitCode::FAILURE;
    }
    let admin = match &c.admin {
        Some(a) => format!("admin API on {}", a.listen),
        None => "no admin API".to_string(),
    };
    let bridges = match (&plugins, c.bridge.len()) {
        (_, 0) => String::new(),
        (PluginCheck::Skip, n) => format!(", {n} bridges (plugins not checked: --no-plugins)"),
        (_, n) => format!(", {n} bridges"),
    };
    println!(
        "{}: OK (listen {}, pool mode {:?}, {} ICE servers, {admin}{bridges})",
        path.display(),
        c.server.listen,
        c.pools.mode,
        c.ice_servers.len()
    );
    ExitCode::SUCCESS
}

/// Each bridge's plugin must load from `dir` and accept the bridge's config. Every problem is
/// reported, not only the first; a folder that cannot be read is one problem, and then each
/// bridge names the plugin it would need from it.
fn check_bridges(config: &Config, dir: Option<&std::path::Path>, key: &str) -> Vec<String> {
    let plugins = match poolgate::plugin::Plugins::load_dir(dir) {
        Ok(p) => p,
        Err(e) => {
            let dir = dir.unwrap_or(std::path::Path::new("")).display();
            let mut errors = vec![format!("cannot read the plugin folder {dir} ({key}): {e}")];
            errors.extend(config.bridge.iter().map(|b| {
                format!(
                    "bridge {:?}: plugin {:?} not found: the plugin folder {dir} cannot be read",
                    b.name, b.plugin
                )
            }));
            return errors;
        }
    };
    let mut errors = Vec::new();
    for bridge in &config.bridge {
        match plugins.find(&bridge.plugin) {
            Err(e) => errors.push(format!("bridge {:?}: {e}", bridge.name)),
            Ok(plugin) => {
                if let Err(e) = plugin.validate_config(&bridge.config) {
                    errors.push(format!(
                        "bridge {:?}: invalid config for plugin {}: {e}",
                        bridge.name, plugin.name
                    ));
                }
            }
        }
    }
    errors
}

fn list_plugins(config: &std::path::Path, dir: Option<PathBuf>) -> ExitCode {
    let dir = match dir {
        Some(d) => d,
        None => match Config::load(config) {
            Ok(c) => match c.plugins.dir {
                Some(d) => d,
                None => {
                    eprintln!("{} sets no plugins.dir; pass --dir", config.display());
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let plugins = match poolgate::plugin::Plugins::load_dir(Some(&dir)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot read the plugin folder {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let list = plugins.list();
    println!("plugin folder {}: {} libraries", dir.display(), list.len());
    let mut refused = 0;
    for p in &list {
        let file = p.file.file_name().unwrap_or_default().to_string_lossy();
        match (&p.name, &p.error) {
            (Some(name), _) => {
                let version = p.version.as_deref().unwrap_or("?");
                match p.summary.as_deref().filter(|s| !s.is_empty()) {
                    Some(summary) => println!("  {file}: {name} {version} ({summary})"),
                    None => println!("  {file}: {name} {version}"),
                }
            }
            (None, error) => {
                refused += 1;
                println!("  {file}: refused: {}", error.as_deref().unwrap_or("?"));
            }
        }
    }
    if refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run(path: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    // First, while nothing else has run: when it re-executes, this process is replaced and
    // the new one comes back here with G_SLICE set.
    let slice = poolgate::memory::ensure_glib_slice_malloc(config.memory.glib_slice_malloc);
    // Before any thread exists: the arena cap only governs arenas created after it.
    let arenas = poolgate::memory::apply(&config.memory);
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .context("log.level")?;
    // The README promises logs on stderr; fmt() alone would write them to stdout.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    tracing::info!(
        "poolgate {} starting with {}",
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    tracing::info!("{arenas}");
    match slice {
        poolgate::memory::SlicePlan::Lost | poolgate::memory::SlicePlan::Failed(_) => {
            tracing::warn!("{slice}")
        }
        _ => tracing::info!("{slice}"),
    }

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        // Before anything listens: a SIGTERM sent once the listeners are up (by an operator, a
        // supervisor or a test that waits for the "listening" line) must find the handler in
        // place; installed after the start, one that came in between killed the process with
        // the signal's default action, not a clean stop (seen as a rare test failure).
        let mut signals = ShutdownSignals::install().context("installing signal handlers")?;
        let gateway = Gateway::start(&config).await?;
        if let Some(root) = &config.server.web_root {
            tracing::info!(
                "demo page: http://{}/ (from {})",
                gateway.addr(),
                root.display()
            );
        }
        signals.recv().await;
        tracing::info!("shutting down: closing every connection (a second signal exits at once)");
        tokio::select! {
            _ = gateway.stop() => {}
            _ = signals.recv() => {
                tracing::warn!("second signal: exiting now");
                std::process::exit(130);
            }
        }
        tracing::info!("stopped");
        Ok(())
    })
}

/// SIGTERM and SIGINT, listened for from the moment [`ShutdownSignals::install`] returns.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<ShutdownSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

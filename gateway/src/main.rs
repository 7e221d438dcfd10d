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
    /// Check a configuration file and exit: 0 when valid, else the error naming key and line.
    /// With plugins.dir set, each bridge's plugin must also load and accept its config.
    CheckConfig {
        /// The file to check (defaults to --config).
        path: Option<PathBuf>,
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
        Some(Command::CheckConfig { path }) => check_config(&path.unwrap_or(cli.config)),
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

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(c) => {
            if let Err(e) = check_bridges(&c) {
                eprintln!("{}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            let admin = match &c.admin {
                Some(a) => format!("admin API on {}", a.listen),
                None => "no admin API".to_string(),
            };
            println!(
                "{}: OK (listen {}, pool mode {:?}, {} ICE servers, {admin})",
                path.display(),
                c.server.listen,
                c.pools.mode,
                c.ice_servers.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// With a plugin folder configured, each bridge's plugin must load and accept its config.
fn check_bridges(config: &Config) -> Result<(), String> {
    let Some(dir) = &config.plugins.dir else {
        return Ok(());
    };
    let plugins = poolgate::plugin::Plugins::load_dir(Some(dir)).map_err(|e| {
        format!(
            "cannot read the plugin folder {} (plugins.dir): {e}",
            dir.display()
        )
    })?;
    for bridge in &config.bridge {
        let plugin = plugins
            .find(&bridge.plugin)
            .map_err(|e| format!("bridge {:?}: {e}", bridge.name))?;
        plugin.validate_config(&bridge.config).map_err(|e| {
            format!(
                "bridge {:?}: invalid config for plugin {}: {e}",
                bridge.name, plugin.name
            )
        })?;
    }
    Ok(())
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

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let gateway = Gateway::start(&config).await?;
        if let Some(root) = &config.server.web_root {
            tracing::info!(
                "demo page: http://{}/ (from {})",
                gateway.addr(),
                root.display()
            );
        }
        shutdown_signal().await;
        tracing::info!("shutting down: closing every connection (a second signal exits at once)");
        tokio::select! {
            _ = gateway.stop() => {}
            _ = shutdown_signal() => {
                tracing::warn!("second signal: exiting now");
                std::process::exit(130);
            }
        }
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

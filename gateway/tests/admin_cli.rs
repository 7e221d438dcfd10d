//! The `poolgate` binary: the admin token file generated at first start (mode 0600, its path
//! logged, never the token) and reused on restart; the token from the environment;
//! `insecure_no_auth`; graceful exit on SIGTERM; `check-config` on every shipped config.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_poolgate");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poolgate-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `poolgate` with its log lines.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    /// Starts `poolgate --config <config>` with a clean environment apart from `env`.
    fn start(config: &Path, env: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting poolgate");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits (at most 20 s) for a log line containing `needle` and returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?} in 20 s; log:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// The admin API's address, from its start-up line.
    fn admin_addr(&mut self) -> String {
        let line = self.wait_for("admin API");
        let start = line.find("http://").expect("admin URL in the log") + 7;
        let rest = &line[start..];
        rest[..rest.find('/').unwrap()].to_string()
    }

    /// SIGTERM, then the exit status (at most 20 s) and the rest of the log.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let exit = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("poolgate did not exit within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        (exit, std::mem::take(&mut self.log))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on the admin API with an optional bearer token: (status, body).
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut req = client.get(format!("http://{addr}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = tokio::time::timeout(Duration::from_secs(10), req.send())
            .await
            .expect("no answer within 10 s")
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    })
}

fn write_config(dir: &Path, admin: &str) -> PathBuf {
    let path = dir.join("poolgate.toml");
    std::fs::write(
        &path,
        format!("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{admin}"),
    )
    .unwrap();
    path
}

#[test]
fn the_token_file_is_generated_once_with_mode_0600_and_reused_on_restart() {
    let dir = temp_dir("token-file");
    let state = dir.join("state");
    let config = write_config(&dir, "");
    let env = [
        ("XDG_STATE_HOME", state.to_str().unwrap()),
        ("HOME", dir.to_str().unwrap()),
    ];
    let token_file = state.join("poolgate/admin-token");

    let mut first = Running::start(&config, &env);
    let addr = first.admin_addr();
    let line = first.log.last().unwrap().clone();
    assert!(line.contains(&token_file.display().to_string()), "{line}");
    assert!(line.contains("new random token"), "{line}");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "token file mode {mode:o}");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(token.len() >= 32, "token of {} characters", token.len());
    assert_eq!(get(&addr, "/api/v1/pools", Some(&token)).0, 200);
    assert_eq!(get(&addr, "/api/v1/pools", None).0, 401);
    let (status, log) = first.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(log.iter().any(|l| l.contains("stopped")), "{log:#?}");
    assert!(
        !log.iter().any(|l| l.contains(&token)),
        "the token was logged"
    );

    // A restart reads the same file; the token still works.
    let mut second = Running::start(&config, &env);
    let addr = second.admin_addr();
    let line = second.log.last().unwrap().clone();
    assert!(
        line.contains(&format!("the token in {}", token_file.display())),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
    assert_eq!(get(&addr, "/api/v1/pools", Some(&token)).0, 200);
    let (status, log) = second.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(
        !log.iter().any(|l| l.contains(&token)),
        "the token was logged"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_environment_token_wins_and_writes_no_file() {
    let dir = temp_dir("env");
    let config = write_config(&dir, "token_file = \"t/admin-token\"\n");
    let token = "env-token-0123456789abcdef";
    let mut run = Running::start(&config, &[("POOLGATE_ADMIN_TOKEN", token)]);
    let addr = run.admin_addr();
    assert!(run.log.last().unwrap().contains("POOLGATE_ADMIN_TOKEN"));
    assert_eq!(get(&addr, "/api/v1/pools", Some(token)).0, 200);
    assert_eq!(
        get(&addr, "/api/v1/pools", Some("env-token-0123456789abcdeF")).0,
        401
    );
    assert!(!dir.join("t").exists(), "a token file was written");
    let (status, _) = run.terminate();
    assert!(status.success());

    // A token too short to be safe stops the start, without echoing it.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .env("POOLGATE_ADMIN_TOKEN", "guessable")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("POOLGATE_ADMIN_TOKEN") && err.contains("16"),
        "{err}"
    );
    assert!(!err.contains("guessable"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn insecure_no_auth_serves_without_a_token_and_says_so() {
    let dir = temp_dir("noauth");
    let config = write_config(&dir, "insecure_no_auth = true\n");
    let mut run = Running::start(&config, &[]);
    let line = run.wait_for("admin API");
    assert!(
        line.contains("WARN") && line.contains("WITHOUT AUTHENTICATION"),
        "{line}"
    );
    let start = line.find("http://").unwrap() + 7;
    let addr = line[start..][..line[start..].find('/').unwrap()].to_string();
    assert_eq!(get(&addr, "/api/v1/pools", None).0, 200);
    let (status, _) = run.terminate();
    assert!(status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_closes_signalling_connections_and_exits_cleanly() {
    let dir = temp_dir("sigterm");
    let config = write_config(&dir, "token = \"sigterm-token-0123456789\"\n");
    let mut run = Running::start(&config, &[]);
    let line = run.wait_for("pool server listening");
    let start = line.find("http://").unwrap() + 7;
    let public = line[start..].split_whitespace().next().unwrap().to_string();
    run.admin_addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ws = runtime.block_on(async {
        use futures_util::SinkExt;
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{public}/ws"))
            .await
            .unwrap();
        ws.send(tokio_tungstenite::tungstenite::Message::text(
            r#"{"type": "rtc:join", "data": {"pool": "p"}}"#,
        ))
        .await
        .unwrap();
        ws
    });
    run.wait_for("joined pool");
    let (status, log) = run.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(log.iter().any(|l| l.contains("shutting down")), "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.contains("left pool") && l.contains("shutting down")),
        "the endpoint did not leave its pool: {log:#?}"
    );
    // The client's socket ends (a close frame or end of stream), within a bound.
    runtime.block_on(async {
        use futures_util::StreamExt;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Err(_) => panic!("the WebSocket was still open 10 s after shutdown"),
                Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(m))) if m.is_close() => break,
                Ok(Some(Ok(_))) => {}
            }
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_shipped_config_passes_check_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut configs: Vec<PathBuf> = std::fs::read_dir(root.join("config/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    configs.sort();
    assert!(configs.len() >= 6, "examples: {configs:?}");
    configs.push(root.join("config/poolgate.toml"));
    configs.push(root.join("config/docker.toml"));
    let check = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(BIN)
            .arg("check-config")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The plugins the example bridges use are built by other crates (or not yet): an empty
    // folder makes the check the same on every machine.
    let empty = temp_dir("no-plugins");
    let built = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release");
    let mut plugins_used = std::collections::BTreeSet::new();
    for config in &configs {
        let parsed = poolgate::Config::load(config).unwrap();
        let name = config.display();
        // Everything but the plugins.
        let (ok, stdout, stderr) = check(&["--no-plugins".as_ref(), config.as_ref()]);
        assert!(ok && stdout.contains("OK"), "{name} --no-plugins: {stderr}");
        // Against an empty plugin folder the only errors are the bridges' missing plugins,
        // one a bridge, each naming the plugin and the folder.
        let (ok, _, stderr) = check(&["--plugin-dir".as_ref(), empty.as_ref(), config.as_ref()]);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(ok, parsed.bridge.is_empty(), "{name}: {stderr}");
        assert_eq!(lines.len(), parsed.bridge.len(), "{name}: {stderr}");
        for (bridge, line) in parsed.bridge.iter().zip(&lines) {
            let want = format!(
                "bridge {:?}: no plugin named {:?} in {}",
                bridge.name,
                bridge.plugin,
                empty.display()
            );
            assert!(line.contains(&want), "{name}: {line:?} lacks {want:?}");
            plugins_used.insert(bridge.plugin.clone());
        }
        // Against the plugins this workspace builds (`make test` builds them first), every
        // example bridge's config is one its plugin accepts.
        let (ok, stdout, stderr) =
            check(&["--plugin-dir".as_ref(), built.as_ref(), config.as_ref()]);
        assert!(
            ok && stdout.contains("OK"),
            "{name} against the built plugins in {} (run `make build` first): {stderr}",
            built.display()
        );
        // A config that needs no plugin folder passes as it is.
        if parsed.bridge.is_empty() && parsed.plugins.dir.is_none() {
            let (ok, stdout, stderr) = check(&[config.as_ref()]);
            assert!(ok && stdout.contains("OK"), "{name}: {stderr}");
        }
    }
    for plugin in ["recorder", "camera", "mqtt"] {
        assert!(
            plugins_used.contains(plugin),
            "no example uses plugin {plugin}: {plugins_used:?}"
        );
    }
    // A plugin folder that cannot be read is an error, and each bridge says what it needed.
    let (ok, _, stderr) = check(&[
        "--plugin-dir".as_ref(),
        empty.join("nothing-here").as_ref(),
        root.join("config/examples/mqtt.toml").as_ref(),
    ]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("cannot read the plugin folder")
            && stderr.contains("(--plugin-dir)")
            && stderr
                .contains("bridge \"mqtt-plant\": plugin \"mqtt\" not found: the plugin folder"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&empty).unwrap();
    // And check-config does fail on a broken one.
    let dir = temp_dir("check");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[admin]\nlisten = \"0.0.0.0:8081\"\ninsecure_no_auth = true\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("insecure_no_auth"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `G_SLICE` as the process `pid` was started with it (`/proc/<pid>/environ`).
fn start_env(pid: u32, name: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    environ.split(|b| *b == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

/// The value of the unlabelled metric `name` in a Prometheus text.
fn metric(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().to_string())
}

#[test]
fn the_gateway_runs_with_glib_slices_on_malloc_by_reexecuting_itself() {
    let dir = temp_dir("slice");
    let default = write_config(&dir, "insecure_no_auth = true\n");
    // Default: the process re-executed itself (same pid) with G_SLICE=always-malloc, says so
    // once, and reports it.
    let mut run = Running::start(&default, &[]);
    let addr = run.admin_addr();
    let pid = run.child.id();
    assert_eq!(
        start_env(pid, "G_SLICE").as_deref(),
        Some("always-malloc"),
        "log: {:#?}",
        run.log
    );
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "poolgate",
        "the re-executed process keeps its name"
    );
    let (status, text) = get(&addr, "/metrics", None);
    assert_eq!(status, 200);
    assert_eq!(
        metric(&text, "poolgate_glib_slice_always_malloc").as_deref(),
        Some("1")
    );
    let (status, log) = run.terminate();
    assert!(status.success(), "exit status {status}");
    let said: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("re-executed with G_SLICE=always-malloc"))
        .collect();
    assert_eq!(said.len(), 1, "{log:#?}");
    assert_eq!(
        log.iter().filter(|l| l.contains("starting with")).count(),
        1,
        "the first start must not log: {log:#?}"
    );

    // The operator's own G_SLICE wins: kept as it is, no re-execution.
    let mut run = Running::start(&default, &[("G_SLICE", "debug-blocks")]);
    let addr = run.admin_addr();
    assert_eq!(
        start_env(run.child.id(), "G_SLICE").as_deref(),
        Some("debug-blocks")
    );
    assert_eq!(
        start_env(run.child.id(), "POOLGATE_GLIB_SLICE_REEXEC"),
        None
    );
    let (_, text) = get(&addr, "/metrics", None);
    assert_eq!(
        metric(&text, "poolgate_glib_slice_always_malloc").as_deref(),
        Some("0")
    );
    let (status, log) = run.terminate();
    assert!(status.success());
    assert!(
        log.iter()
            .any(|l| l.contains("G_SLICE=\"debug-blocks\" of the environment")),
        "{log:#?}"
    );

    // Turned off: GLib's own slice allocator.
    let off = dir.join("off.toml");
    std::fs::write(
        &off,
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         insecure_no_auth = true\n[memory]\nglib_slice_malloc = false\n",
    )
    .unwrap();
    let mut run = Running::start(&off, &[]);
    let addr = run.admin_addr();
    assert_eq!(start_env(run.child.id(), "G_SLICE"), None);
    let (_, text) = get(&addr, "/metrics", None);
    assert_eq!(
        metric(&text, "poolgate_glib_slice_always_malloc").as_deref(),
        Some("0")
    );
    let (status, _) = run.terminate();
    assert!(status.success());

    // A re-executed start that lost G_SLICE does not re-execute again (no loop): it starts,
    // and warns.
    let mut run = Running::start(&default, &[("POOLGATE_GLIB_SLICE_REEXEC", "1")]);
    run.admin_addr();
    assert_eq!(start_env(run.child.id(), "G_SLICE"), None);
    let (status, log) = run.terminate();
    assert!(status.success());
    assert!(
        log.iter()
            .any(|l| l.contains("WARN") && l.contains("not re-executed again")),
        "{log:#?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

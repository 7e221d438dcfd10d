//! Plugins and bridges, end to end: the workspace's real plugin libraries (as cargo built them)
//! are loaded from a plugin folder by a gateway; a real browser in the bridge's pool gets its
//! data-channel messages echoed and its camera looped back; libraries that are not plugins for this poolgate are refused
//! with their reasons while the gateway runs on; a plugin that panics fails only its own bridge,
//! which restarts.
//!
//! Trials named `endpoint_*` run GStreamer endpoints (the Makefile runs each in its own process).
//! The whole binary re-executes itself in a network namespace that has only `lo`.

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use libtest_mimic::Trial;
use poolgate::bridge::{BridgeError, BridgeSpec, BridgeStatus};
use poolgate::signalling::server::Delivery;
use poolgate::signalling::ServerMessage;
use poolgate::{Config, Gateway};
use poolgate_tests::browser::{repo_root, Browser};
use poolgate_tests::plugins::{self, wait_bridge, PluginDir};
use poolgate_tests::scenario::{run, run_trials};
use serde_json::{json, Value};

/// Bounds for a loaded 2-core machine: they bound a hang, they measure nothing.
const CONNECT_LIMIT: Duration = Duration::from_secs(45);
const STATUS_LIMIT: Duration = Duration::from_secs(30);

const ECHO: &str = "poolgate_example_echo";
const PANIC: &str = "poolgate_test_panic";
const BAD_VERSION: &str = "poolgate_test_bad_version";

fn main() {
    run_trials(|| {
        vec![
            Trial::test(
                "plugins_that_do_not_fit_are_refused_and_the_gateway_runs_on",
                || run(refusals_scenario()),
            ),
            Trial::test("endpoint_echo_plugin_echoes_a_browser", || {
                run(echo_scenario())
            }),
            Trial::test(
                "endpoint_a_panicking_plugin_restarts_and_other_bridges_run_on",
                || run(panic_scenario()),
            ),
            Trial::test("endpoint_bridge_in_a_pyrtc_pool_describes_itself", || {
                run(remote_scenario())
            }),
            Trial::test("endpoint_bridges_are_updated_restarted_and_deleted", || {
                run(lifecycle_scenario())
            }),
        ]
    });
}

/// A gateway serving the browser-test page, with `dir` as its plugin folder and `bridges` (TOML
/// `[[bridge]]` entries) declared.
async fn start_gateway(dir: &PluginDir, bridges: &str) -> anyhow::Result<Gateway> {
    plugins::start_gateway(dir, "", bridges).await
}

fn failed_with(status: &BridgeStatus, needles: &[&str]) -> bool {
    status.status.starts_with("failed: ") && needles.iter().all(|n| status.status.contains(n))
}

/// A library built for another ABI version, a library that is not a plugin, a file that is not
/// a library, a missing file, an unknown plugin name and a config the plugin refuses: each is
/// refused with its own reason, nothing crashes, and the gateway serves its pools meanwhile.
async fn refusals_scenario() -> anyhow::Result<()> {
    let dir = PluginDir::new("refusals")?;
    dir.add_built(ECHO)?;
    dir.add_built(BAD_VERSION)?;
    let libz = [
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libz.so.1",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).is_file())
    .context("libz.so.1 is missing (Debian's zlib1g)")?;
    dir.add_file(libz.as_ref(), "libz.so")?;
    std::fs::write(dir.path().join("notes.so"), "not a library")?;
    let bridge = |name: &str, plugin: &str, extra: &str| {
        format!("[[bridge]]\nname = {name:?}\nplugin = {plugin:?}\npool = \"p\"\n{extra}\n")
    };
    let bridges = [
        bridge("bad-version", &format!("lib{BAD_VERSION}.so"), ""),
        bridge("not-a-plugin", "libz.so", ""),
        bridge("not-a-library", "notes.so", ""),
        bridge("missing", "gone.so", ""),
        bridge("unknown", "no-such-plugin", ""),
        bridge("bad-config", "example-echo", "config = { prefix = 3 }"),
    ]
    .concat();
    let gateway = start_gateway(&dir, &bridges).await?;

    // The folder as the gateway loaded it.
    let list = gateway.plugins().list();
    let entry = |file: &str| {
        list.iter()
            .find(|p| p.file.file_name().is_some_and(|f| f == file))
            .with_context(|| format!("{file} not listed: {list:#?}"))
    };
    let echo = entry(&format!("lib{ECHO}.so"))?;
    ensure!(
        echo.name.as_deref() == Some("example-echo") && echo.version.as_deref() == Some("0.1.0"),
        "{echo:?}"
    );
    let abi = poolgate_plugin_api::contract::ABI_VERSION;
    let bad = entry(&format!("lib{BAD_VERSION}.so"))?;
    let bad_error = bad.error.as_deref().unwrap_or_default();
    ensure!(
        bad_error.contains(&format!("built for plugin ABI version {}", abi + 1))
            && bad_error.contains(&format!("speaks plugin ABI version {abi}")),
        "{bad:?}"
    );
    let z = entry("libz.so")?;
    ensure!(
        z.error.as_deref().is_some_and(
            |e| e.contains("is not a poolgate plugin") && e.contains("POOLGATE_PLUGIN_TAG")
        ),
        "{z:?}"
    );
    let notes = entry("notes.so")?;
    ensure!(
        notes
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cannot open") && e.contains("as a shared library")),
        "{notes:?}"
    );

    // Each bridge fails with its reason.
    let cases: [(&str, &[&str]); 6] = [
        ("bad-version", &["ABI version 2", "ABI version 1"]),
        ("not-a-plugin", &["is not a poolgate plugin"]),
        ("not-a-library", &["cannot open", "notes.so"]),
        ("missing", &["gone.so does not exist"]),
        (
            "unknown",
            &["no plugin named \"no-such-plugin\"", "example-echo"],
        ),
        (
            "bad-config",
            &[
                "invalid config for plugin example-echo",
                "`prefix`: invalid type: integer `3`",
            ],
        ),
    ];
    for (name, needles) in cases {
        let status = wait_bridge(&gateway, name, STATUS_LIMIT, |s| failed_with(s, needles)).await?;
        ensure!(
            status.restarts == 0,
            "a refused bridge is not restarted: {status:?}"
        );
    }

    // The library API refuses the same at once, with the kind the admin API maps to a status.
    let spec: BridgeSpec = serde_json::from_value(json!({
        "name": "new", "plugin": "example-echo", "pool": "p", "config": {"prefx": ""}
    }))?;
    match gateway.bridges().create(spec) {
        Err(BridgeError::Config { message, .. }) => {
            ensure!(message.contains("unknown field `prefx`"), "{message}")
        }
        other => bail!("a config with a typo was accepted: {other:?}"),
    }
    let spec: BridgeSpec = serde_json::from_value(json!({
        "name": "missing", "plugin": "example-echo", "pool": "p"
    }))?;
    ensure!(
        matches!(gateway.bridges().create(spec), Err(BridgeError::Exists(_))),
        "a second bridge named `missing` was accepted"
    );
    ensure!(matches!(
        gateway.bridges().get("nobody"),
        Err(BridgeError::NotFound(_))
    ));
    gateway.bridges().delete("missing").await?;
    ensure!(gateway.bridges().list().len() == 5);

    // The gateway still serves pools.
    let mut member = gateway.pools().join_local("still-serving");
    let joined = tokio::time::timeout(STATUS_LIMIT, member.recv())
        .await
        .context("no answer to a join")?;
    ensure!(
        matches!(
            joined,
            Some(Delivery::Message(ServerMessage::Joined { .. }))
        ),
        "{joined:?}"
    );
    drop(member);

    // `poolgate plugins` lists the same folder.
    let exe = repo_root().join("target/release/poolgate");
    ensure!(
        exe.is_file(),
        "{} is missing: run `make build`",
        exe.display()
    );
    let out = std::process::Command::new(&exe)
        .arg("plugins")
        .arg("--dir")
        .arg(dir.path())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.code() == Some(1),
        "refusals must exit 1: {:?}\n{stdout}",
        out.status
    );
    for line in [
        format!("lib{ECHO}.so: example-echo 0.1.0"),
        format!("lib{BAD_VERSION}.so: refused: "),
        "libz.so: refused: ".to_string(),
        "notes.so: refused: cannot open".to_string(),
    ] {
        ensure!(
            stdout.contains(&line),
            "`poolgate plugins` lacks {line:?}:\n{stdout}"
        );
    }

    // A plugin folder that cannot be read stops a gateway's start, naming the key.
    let config = Config::parse(
        "[server]\nlisten = \"127.0.0.1:0\"\n[plugins]\ndir = \"/nonexistent/poolgate-plugins\"\n",
    )
    .map_err(anyhow::Error::msg)?;
    match Gateway::start(&config).await {
        Err(e) => ensure!(
            format!("{e:#}").contains(
                "cannot read the plugin folder /nonexistent/poolgate-plugins (plugins.dir)"
            ),
            "{e:#}"
        ),
        Ok(_) => bail!("a gateway started with an unreadable plugin folder"),
    }

    // `poolgate check-config` asks the plugins too.
    let check = |bridges: &str| -> anyhow::Result<(Option<i32>, String)> {
        let file = dir.path().join("check.toml");
        std::fs::write(
            &file,
            format!(
                "[plugins]\ndir = {:?}\n{bridges}",
                dir.path().display().to_string()
            ),
        )?;
        let out = std::process::Command::new(&exe)
            .arg("check-config")
            .arg(&file)
            .output()?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let (code, err) = check(&bridge(
        "ok",
        "example-echo",
        "config = { prefix = \"> \" }",
    ))?;
    ensure!(code == Some(0), "a valid bridge failed check-config: {err}");
    let (code, err) = check(&bridge(
        "typo",
        "example-echo",
        "config = { prefx = \"> \" }",
    ))?;
    ensure!(
        code == Some(1) && err.contains("bridge \"typo\"") && err.contains("unknown field `prefx`"),
        "check-config on a config typo: {code:?} {err}"
    );
    let (code, err) = check(&bridge("old", &format!("lib{BAD_VERSION}.so"), ""))?;
    ensure!(
        code == Some(1) && err.contains("ABI version 2"),
        "check-config on a plugin of another ABI: {code:?} {err}"
    );
    gateway.stop().await;
    Ok(())
}

/// The peer entry for `peer` in a page's state.
fn peer<'a>(state: &'a Value, peer: &str) -> Option<&'a Value> {
    state["peers"]
        .as_array()?
        .iter()
        .find(|p| p["id"].as_str() == Some(peer))
}

/// A page joins `pool` with camera and data channel; returns the browser and the page's id.
async fn browser_in(gateway: &Gateway, pool: &str) -> anyhow::Result<(Browser, String)> {
    let mut b = Browser::launch().await?;
    b.open("p", &format!("http://{}/harness.html", gateway.addr()))
        .await?;
    let id = b
        .eval(
            "p",
            &format!("harness.join({{transport: 'ws', pool: {pool:?}, media: true}})"),
        )
        .await?;
    let id = id.as_str().context("join returned no id")?.to_string();
    Ok((b, id))
}

/// `harness.ping` to `endpoint`: the page sends `ping:<text>`; an echo sends it back, the page
/// answers `pong:<text>`, the echo returns that too, and the ping resolves.
async fn ping(b: &mut Browser, endpoint: &str, text: &str) -> anyhow::Result<()> {
    let ok = b
        .eval(
            "p",
            &format!(
                "harness.ping({endpoint:?}, {text:?}, {})",
                CONNECT_LIMIT.as_millis()
            ),
        )
        .await;
    match ok {
        Ok(Value::Bool(true)) => Ok(()),
        Ok(v) => bail!("ping {text} to {endpoint} returned {v}"),
        Err(e) => {
            let trace = b.eval("p", "harness.trace()").await.unwrap_or_default();
            Err(e.context(format!("page signalling trace: {trace:#}")))
        }
    }
}

async fn echo_scenario() -> anyhow::Result<()> {
    let dir = PluginDir::new("echo")?;
    dir.add_built(ECHO)?;
    dir.add_built(BAD_VERSION)?;
    let gateway = start_gateway(
        &dir,
        r#"
[[bridge]]
name = "echo"
plugin = "example-echo"
pool = "echo-room"
description = { role = "echo", label = "Echo bridge" }
ice_local_addresses = ["127.0.0.1"]

[[bridge]]
name = "refused"
plugin = "libpoolgate_test_bad_version.so"
pool = "echo-room"
"#,
    )
    .await?;
    let live = wait_bridge(&gateway, "echo", STATUS_LIMIT, |s| {
        s.status == "live" && s.endpoint.is_some()
    })
    .await?;
    let endpoint = live.endpoint.unwrap();
    wait_bridge(&gateway, "refused", STATUS_LIMIT, |s| {
        failed_with(s, &["ABI version"])
    })
    .await?;
    // Hosted pool: the description went through the pool server.
    let pool = gateway
        .pools()
        .pool("echo-room")
        .context("no pool echo-room")?;
    ensure!(
        pool.endpoints[0].description == Some(json!({"role": "echo", "label": "Echo bridge"})),
        "{pool:?}"
    );

    let (mut b, page) = browser_in(&gateway, "echo-room").await?;
    let state = b.eval("p", "harness.state()").await?;
    let seen =
        peer(&state, &endpoint).with_context(|| format!("page has no peer {endpoint}: {state}"))?;
    ensure!(seen["description"]["role"] == "echo", "{state}");
    ping(&mut b, &endpoint, "hello echo").await?;
    ping(&mut b, &endpoint, "second").await?;
    let status = gateway.bridges().get("echo")?;
    // Two pings, each echoed twice (the ping, then the page's pong).
    ensure!(
        status.metrics.get("messages_echoed") == Some(&4.0),
        "{status:?}"
    );
    ensure!(
        status.status == "live" && status.restarts == 0,
        "{status:?}"
    );
    let _ = page;
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

async fn panic_scenario() -> anyhow::Result<()> {
    let dir = PluginDir::new("panic")?;
    dir.add_built(ECHO)?;
    dir.add_built(PANIC)?;
    let gateway = start_gateway(
        &dir,
        r#"
[[bridge]]
name = "fragile"
plugin = "test-panic"
pool = "room"
restart = { backoff_initial_ms = 300, backoff_max_ms = 2000 }
ice_local_addresses = ["127.0.0.1"]

[[bridge]]
name = "steady"
plugin = "example-echo"
pool = "room"
config = { loop_video = false }
ice_local_addresses = ["127.0.0.1"]
"#,
    )
    .await?;
    let live = |s: &BridgeStatus| s.status == "live" && s.endpoint.is_some();
    let fragile = wait_bridge(&gateway, "fragile", STATUS_LIMIT, live).await?;
    let steady = wait_bridge(&gateway, "steady", STATUS_LIMIT, live).await?;
    let (fragile_id, steady_id) = (fragile.endpoint.unwrap(), steady.endpoint.unwrap());

    let (mut b, _page) = browser_in(&gateway, "room").await?;
    ping(&mut b, &fragile_id, "before").await?;
    ping(&mut b, &steady_id, "before").await?;

    // The fragile plugin panics on this message; the page's ping gets no answer.
    let lost = b
        .eval(
            "p",
            &format!("harness.ping({fragile_id:?}, 'panic now', 3000).catch((e) => String(e))"),
        )
        .await?;
    ensure!(lost != json!(true), "a panicking plugin answered: {lost}");
    let restarted = wait_bridge(&gateway, "fragile", STATUS_LIMIT, |s| {
        s.restarts >= 1 && live(s) && s.endpoint.as_deref() != Some(fragile_id.as_str())
    })
    .await?;
    let failure = restarted.last_failure.clone().unwrap_or_default();
    ensure!(
        failure.contains("asked to panic by peer"),
        "the failure is not the panic message: {restarted:?}"
    );
    let new_id = restarted.endpoint.unwrap();

    // The other bridge never noticed: same endpoint, no restart, still echoing.
    let steady = gateway.bridges().get("steady")?;
    ensure!(
        steady.status == "live"
            && steady.restarts == 0
            && steady.endpoint.as_deref() == Some(steady_id.as_str()),
        "{steady:?}"
    );
    ping(&mut b, &steady_id, "after").await?;
    // The restarted bridge is a new endpoint in the pool, and it works.
    ping(&mut b, &new_id, "after").await?;
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

/// A bridge created at run time joins a pool on the reference server `pyrtc` 2.0.2 by URL and
/// describes itself the way pyrtc's test server accepts it (a `describe` event): the page in
/// that pool sees the description, and the bridge echoes its messages.
async fn remote_scenario() -> anyhow::Result<()> {
    let dir = PluginDir::new("remote")?;
    dir.add_built(ECHO)?;
    let gateway = start_gateway(&dir, "").await?;
    let pyrtc = poolgate_tests::pyrtc::Pyrtc::start().await?;
    let mut b = Browser::launch().await?;
    b.open("p", &format!("http://{}/harness.html", gateway.addr()))
        .await?;
    b.eval(
        "p",
        &format!(
            "harness.join({{transport: 'ws', pool: 'far', media: true, url: {:?}}})",
            pyrtc.url()
        ),
    )
    .await?;
    let spec: BridgeSpec = serde_json::from_value(json!({
        "name": "far-echo",
        "plugin": "example-echo",
        "pool": "far",
        "signalling": pyrtc.url(),
        "description": {"role": "echo", "where": "pyrtc"},
        "config": {"loop_video": false},
        "ice_local_addresses": ["127.0.0.1"],
    }))?;
    let created = gateway.bridges().create(spec)?;
    ensure!(created.signalling == pyrtc.url(), "{created:?}");
    let live = wait_bridge(&gateway, "far-echo", STATUS_LIMIT, |s| {
        s.status == "live" && s.endpoint.is_some()
    })
    .await?;
    let endpoint = live.endpoint.unwrap();
    let described = b
        .wait_for("p", "harness.state()", CONNECT_LIMIT, |s| {
            peer(s, &endpoint).is_some_and(|p| p["description"]["where"] == "pyrtc")
        })
        .await;
    if let Err(e) = described {
        let trace = b.eval("p", "harness.trace()").await.unwrap_or_default();
        return Err(e.context(format!("page signalling trace: {trace:#}")));
    }
    ping(&mut b, &endpoint, "over pyrtc").await?;
    // pyrtc stops serving when a peer vanishes abruptly: leave cleanly first.
    b.eval("p", "harness.leave()").await?;
    gateway.bridges().delete("far-echo").await?;
    ensure!(gateway.bridges().list().is_empty());
    b.quit().await?;
    pyrtc.stop().await;
    gateway.stop().await;
    Ok(())
}

/// The run-time operations the admin API builds on: update (a refused update leaves the bridge
/// as it was), restart, delete; the bridge's endpoint follows each one in the pool.
async fn lifecycle_scenario() -> anyhow::Result<()> {
    let dir = PluginDir::new("lifecycle")?;
    dir.add_built(ECHO)?;
    let gateway = start_gateway(&dir, "").await?;
    let spec = |config: Value| -> anyhow::Result<BridgeSpec> {
        Ok(serde_json::from_value(json!({
            "name": "b", "plugin": "example-echo", "pool": "life",
            "description": {"v": 1}, "config": config,
            "signalling": null, "ice_local_addresses": ["127.0.0.1"],
        }))?)
    };
    let bridges = gateway.bridges();
    bridges.create(spec(json!({"prefix": "1:"}))?)?;
    let live = |s: &BridgeStatus| s.status == "live" && s.endpoint.is_some();
    let first = wait_bridge(&gateway, "b", STATUS_LIMIT, live).await?;
    let members = |gateway: &Gateway| -> Vec<String> {
        gateway
            .pools()
            .pool("life")
            .map(|p| p.endpoints.iter().map(|e| e.id.to_string()).collect())
            .unwrap_or_default()
    };
    ensure!(members(&gateway) == [first.endpoint.clone().unwrap()]);

    // A refused update changes nothing.
    match bridges.update("b", spec(json!({"prefix": 1}))?).await {
        Err(BridgeError::Config { message, .. }) => {
            ensure!(message.contains("`prefix`"), "{message}")
        }
        other => bail!("an update with a bad config was accepted: {other:?}"),
    }
    let mut renamed = spec(json!({}))?;
    renamed.name = "c".into();
    ensure!(matches!(
        bridges.update("b", renamed).await,
        Err(BridgeError::Invalid(_))
    ));
    let mut unknown = spec(json!({}))?;
    unknown.name = "nobody".into();
    ensure!(matches!(
        bridges.update("nobody", unknown).await,
        Err(BridgeError::NotFound(_))
    ));
    ensure!(
        bridges.get("b")?.endpoint == first.endpoint,
        "a refused update restarted it"
    );

    // An update restarts it with the new config: a new endpoint replaces the old one.
    let updated = bridges.update("b", spec(json!({"prefix": "2:"}))?).await?;
    ensure!(updated.config == json!({"prefix": "2:"}), "{updated:?}");
    let second = wait_bridge(&gateway, "b", STATUS_LIMIT, |s| {
        live(s) && s.endpoint != first.endpoint
    })
    .await?;
    ensure!(members(&gateway) == [second.endpoint.clone().unwrap()]);
    ensure!(
        gateway.pools().pool("life").unwrap().endpoints[0].description == Some(json!({"v": 1}))
    );

    let restarted = bridges.restart("b").await?;
    ensure!(restarted.restarts == 1, "{restarted:?}");
    let third = wait_bridge(&gateway, "b", STATUS_LIMIT, |s| {
        live(s) && s.endpoint != second.endpoint
    })
    .await?;
    ensure!(members(&gateway) == [third.endpoint.clone().unwrap()]);

    bridges.delete("b").await?;
    ensure!(bridges.list().is_empty());
    ensure!(
        members(&gateway).is_empty(),
        "the deleted bridge is still in the pool"
    );
    ensure!(matches!(
        bridges.delete("b").await,
        Err(BridgeError::NotFound(_))
    ));
    ensure!(matches!(
        bridges.restart("b").await,
        Err(BridgeError::NotFound(_))
    ));
    gateway.stop().await;
    Ok(())
}

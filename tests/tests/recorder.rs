//! The recorder bridge end to end: real browsers with fake camera and microphone in a pool, a
//! gateway running the workspace's built recorder plugin, and every segment it writes checked
//! with `gst-discoverer-1.0` (plays on its own, codecs as sent, durations as recorded).
//!
//! Trials named `endpoint_*` run GStreamer endpoints (the Makefile runs each in its own process).
//! The whole binary re-executes itself in a network namespace that has only `lo`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use libtest_mimic::Trial;
use poolgate::bridge::BridgeStatus;
use poolgate::Gateway;
use poolgate_tests::browser::{repo_root, Browser};
use poolgate_tests::plugins::{self, PluginDir};
use poolgate_tests::recordings::{discover, recordings, segment_count, session};
use poolgate_tests::scenario::{run, run_trials};
use serde_json::Value;

/// Bounds for a loaded 2-core machine: they bound a hang, they measure nothing.
const STATUS_LIMIT: Duration = Duration::from_secs(30);
const RECORDING_LIMIT: Duration = Duration::from_secs(60);

const RECORDER: &str = "poolgate_plugin_recorder";
/// Short segments, so a short test sees several.
const SEGMENT_SECONDS: u64 = 5;

fn main() {
    run_trials(|| {
        vec![
            Trial::test("endpoint_recorder_two_browsers", || {
                run(two_browsers_scenario())
            }),
            Trial::test(
                "endpoint_recorder_join_leave",
                || run(join_leave_scenario()),
            ),
            Trial::test("endpoint_recorder_kill9", || run(kill9_scenario())),
            Trial::test("endpoint_recorder_unwritable_dir", || {
                run(unwritable_scenario())
            }),
            Trial::test("endpoint_recorder_write_error_stops_one_recording", || {
                run(write_error_scenario())
            }),
            Trial::test("endpoint_recorder_composite", || run(composite_scenario())),
            Trial::test("endpoint_recorder_composite_h264_kill9", || {
                run(composite_h264_kill9_scenario())
            }),
        ]
    })
}

/// A fresh folder for one test's recordings, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> anyhow::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("poolgate-rec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // For a look at what a failing test recorded.
        if std::env::var_os("POOLGATE_KEEP_RECORDINGS").is_some() {
            eprintln!("recordings kept in {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `[[bridge]]` entry for a recorder into `dir`.
fn recorder_bridge(name: &str, pool: &str, dir: &Path) -> String {
    format!(
        "[[bridge]]\nname = {name:?}\nplugin = \"recorder\"\npool = {pool:?}\n\
         ice_local_addresses = [\"127.0.0.1\"]\n\
         config = {{ directory = {:?}, segment_seconds = {SEGMENT_SECONDS} }}\n",
        dir.display().to_string()
    )
}

async fn start_gateway(dir: &PluginDir, bridges: &str) -> anyhow::Result<Gateway> {
    plugins::start_gateway(dir, "", bridges).await
}

/// Waits until bridge `name`'s status satisfies `done`, within [`STATUS_LIMIT`].
async fn wait_bridge(
    gateway: &Gateway,
    name: &str,
    done: impl Fn(&BridgeStatus) -> bool,
) -> anyhow::Result<BridgeStatus> {
    plugins::wait_bridge(gateway, name, STATUS_LIMIT, done).await
}

fn live(s: &BridgeStatus) -> bool {
    s.status == "live" && s.endpoint.is_some()
}

/// Waits until the session index under `root` satisfies `done`; returns it.
async fn wait_index(
    root: &Path,
    pool: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<(PathBuf, Value)> {
    let deadline = tokio::time::Instant::now() + RECORDING_LIMIT;
    loop {
        let last = session(root, pool);
        if let Ok((dir, index)) = &last {
            if done(index) {
                return Ok((dir.clone(), index.clone()));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the recording index never showed {what}; last: {last:#?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether `peer` has a recording in progress with both an audio and a video track.
fn recording_av(index: &Value, peer: &str) -> bool {
    recordings(index, peer).iter().any(|r| {
        r["status"] == "recording"
            && r["tracks"].as_array().is_some_and(|t| {
                t.iter().any(|t| t["kind"] == "audio") && t.iter().any(|t| t["kind"] == "video")
            })
    })
}

/// A page joins `pool` with fake camera and microphone; returns its endpoint id.
async fn join(b: &mut Browser, page: &str, url: &str, pool: &str) -> anyhow::Result<String> {
    b.open(page, url).await?;
    let id = b
        .eval(
            page,
            &format!("harness.join({{transport: 'ws', pool: {pool:?}, media: true}})"),
        )
        .await?;
    Ok(id.as_str().context("join returned no id")?.to_string())
}

/// The codecs (`video/VP8`, `audio/opus`) `page` sends to `peer`, from its outbound RTP stats.
async fn sent_codecs(b: &mut Browser, page: &str, peer: &str) -> anyhow::Result<Vec<String>> {
    let v = b
        .eval(
            page,
            &format!(
                "(async () => {{ const p = harness.pool; \
                 const i = p.connections.findIndex((c) => c.id === {peer:?}); \
                 const st = await p._raw_connections[i].getStats(); const out = []; \
                 st.forEach((s) => {{ if (s.type === 'outbound-rtp' && s.codecId) \
                 out.push(st.get(s.codecId).mimeType); }}); return out; }})()"
            ),
        )
        .await?;
    Ok(serde_json::from_value(v)?)
}

/// Checks one recording of an index: each listed segment plays with the recording's codecs
/// (video and audio), and together they last as long as the recording ran, within 1 s. Returns
/// the total duration.
fn check_recording(dir: &Path, recording: &Value, codecs: &[&str]) -> anyhow::Result<f64> {
    let segments = recording["segments"].as_array().context("no segments")?;
    ensure!(
        !segments.is_empty(),
        "a recording without segments: {recording:#}"
    );
    let mut total = 0.0;
    let mut each = Vec::new();
    for segment in segments {
        let file = dir.join(segment["file"].as_str().context("segment without file")?);
        let found = discover(&file)?;
        ensure!(found.duration_s > 0.0, "{}: {found:?}", file.display());
        each.push(format!("{:.3}", found.duration_s));
        for codec in codecs {
            ensure!(
                found.has(codec),
                "{} lacks {codec}: {found:?}",
                file.display()
            );
        }
        ensure!(
            found.video.len() == 1 && found.audio.len() == 1,
            "{}: {found:?}",
            file.display()
        );
        total += found.duration_s;
    }
    let ran = (recording["stopped"]["unix_ms"]
        .as_u64()
        .context("not stopped")?
        - recording["started"]["unix_ms"]
            .as_u64()
            .context("no start")?) as f64
        / 1000.0;
    ensure!(
        (total - ran).abs() <= 1.0,
        "segments last {total:.2} s ({}), the recording ran {ran:.2} s: {recording:#}",
        each.join(" + ")
    );
    Ok(total)
}

/// Files in `dir` (one peer's folder) that the index does not list.
fn unlisted(session_dir: &Path, peer_entry: &Value) -> anyhow::Result<Vec<String>> {
    let folder = session_dir.join(peer_entry["folder"].as_str().context("no folder")?);
    let listed: Vec<String> = peer_entry["recordings"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["segments"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["file"].as_str().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for e in std::fs::read_dir(&folder)? {
        let path = e?.path();
        let rel = path
            .strip_prefix(session_dir)?
            .to_string_lossy()
            .to_string();
        if !listed.contains(&rel) {
            out.push(rel);
        }
    }
    Ok(out)
}

/// Two pages record ~20 s; the bridge stops: every segment plays with VP8 and Opus as the
/// browsers sent them, and each peer's segments last as long as its recording ran.
async fn two_browsers_scenario() -> anyhow::Result<()> {
    let plugins = PluginDir::new("recorder-two")?;
    plugins.add_built(RECORDER)?;
    let out = TempDir::new("two")?;
    let gateway = start_gateway(&plugins, &recorder_bridge("rec", "room", &out.0)).await?;
    let endpoint = wait_bridge(&gateway, "rec", live).await?.endpoint.unwrap();
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    let a = join(&mut b, "a", &url, "room").await?;
    let c = join(&mut b, "b", &url, "room").await?;
    wait_index(&out.0, "room", "both pages recording", |i| {
        recording_av(i, &a) && recording_av(i, &c)
    })
    .await?;
    let ms = std::env::var("REC_SLEEP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let sent = [
        sent_codecs(&mut b, "a", &endpoint).await?,
        sent_codecs(&mut b, "b", &endpoint).await?,
    ];
    gateway.bridges().delete("rec").await?;
    let (dir, index) = session(&out.0, "room")?;
    ensure!(
        index["status"] == "stopped" && index["pool"] == "room",
        "{index:#}"
    );
    for (peer, sent) in [(&a, &sent[0]), (&c, &sent[1])] {
        ensure!(
            sent.iter().any(|c| c.eq_ignore_ascii_case("video/VP8"))
                && sent.iter().any(|c| c.eq_ignore_ascii_case("audio/opus")),
            "page {peer} sent {sent:?}"
        );
        let recs = recordings(&index, peer);
        let av: Vec<&Value> = recs
            .iter()
            .filter(|r| r["tracks"].as_array().is_some_and(|t| t.len() == 2))
            .collect();
        ensure!(
            av.len() == 1,
            "peer {peer}: one audio+video recording expected: {index:#}"
        );
        let r = av[0];
        ensure!(
            r["status"] == "finished" && r["container"] == "webm",
            "{r:#}"
        );
        let total = check_recording(&dir, r, &["VP8", "OPUS"])?;
        ensure!(
            total >= 18.0,
            "peer {peer}: only {total:.1} s recorded: {r:#}"
        );
        let segments = r["segments"].as_array().unwrap().len();
        ensure!(
            segments >= 4,
            "peer {peer}: {segments} segments of {SEGMENT_SECONDS} s in {total:.1} s"
        );
        ensure!(
            unlisted(&dir, &index["peers"][peer.as_str()])?.is_empty(),
            "files the index does not list: {index:#}"
        );
    }
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

/// Page b leaves and page c joins during the recording: b's files end when it left, c's start
/// when it joined, and each covers its presence.
async fn join_leave_scenario() -> anyhow::Result<()> {
    let plugins = PluginDir::new("recorder-join-leave")?;
    plugins.add_built(RECORDER)?;
    let out = TempDir::new("join-leave")?;
    let gateway = start_gateway(&plugins, &recorder_bridge("rec", "jl", &out.0)).await?;
    wait_bridge(&gateway, "rec", live).await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    let a = join(&mut b, "a", &url, "jl").await?;
    let leaver = join(&mut b, "b", &url, "jl").await?;
    wait_index(&out.0, "jl", "a and b recording", |i| {
        recording_av(i, &a) && recording_av(i, &leaver)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let left_at = now_ms();
    b.eval("b", "harness.leave()").await?;
    b.close("b").await?;
    let joined_at = now_ms();
    let joiner = join(&mut b, "c", &url, "jl").await?;
    wait_index(&out.0, "jl", "c recording and b finished", |i| {
        recording_av(i, &joiner)
            && recordings(i, &leaver)
                .iter()
                .all(|r| r["status"] == "finished")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let stop_at = now_ms();
    gateway.bridges().delete("rec").await?;
    let (dir, index) = session(&out.0, "jl")?;
    let av = |peer: &str| -> anyhow::Result<Value> {
        let recs = recordings(&index, peer);
        let av: Vec<&Value> = recs
            .iter()
            .filter(|r| r["tracks"].as_array().is_some_and(|t| t.len() == 2))
            .collect();
        ensure!(av.len() == 1, "peer {peer}: {index:#}");
        Ok(av[0].clone())
    };
    let ms = |r: &Value, key: &str| r[key]["unix_ms"].as_u64().unwrap_or(0);
    // The leaver: recorded until it left (its recording stopped within a few seconds of that).
    let b_rec = av(&leaver)?;
    check_recording(&dir, &b_rec, &["VP8", "OPUS"])?;
    ensure!(
        ms(&b_rec, "stopped") >= left_at && ms(&b_rec, "stopped") <= joined_at + 5_000,
        "b left at {left_at}: {b_rec:#}"
    );
    ensure!(
        index["peers"][&leaver]["left"]["unix_ms"]
            .as_u64()
            .is_some(),
        "{index:#}"
    );
    // The joiner: recorded from its arrival to the stop.
    let c_rec = av(&joiner)?;
    let c_total = check_recording(&dir, &c_rec, &["VP8", "OPUS"])?;
    ensure!(
        ms(&c_rec, "started") >= joined_at,
        "c joined at {joined_at}: {c_rec:#}"
    );
    ensure!(
        c_total >= (stop_at - ms(&c_rec, "started")) as f64 / 1000.0 - 1.5,
        "c recorded {c_total:.1} s of its presence: {c_rec:#}"
    );
    // The one who stayed: one recording through it all.
    let a_rec = av(&a)?;
    check_recording(&dir, &a_rec, &["VP8", "OPUS"])?;
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A free loopback port (a race with other programs is possible but harmless in a namespace
/// of our own).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `target/release/poolgate` as a child process (killed on drop) with `bridges`, its config in
/// `dir`; returns once it serves HTTP, with its listen address.
async fn spawn_poolgate(
    plugins: &PluginDir,
    dir: &Path,
    bridges: &str,
) -> anyhow::Result<(tokio::process::Child, String)> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let config = dir.join("poolgate.toml");
    std::fs::write(
        &config,
        plugins::gateway_config(plugins.path(), "", &listen, bridges)?,
    )?;
    let exe = repo_root().join("target/release/poolgate");
    ensure!(
        exe.is_file(),
        "{} is missing: run `make build`",
        exe.display()
    );
    let child = tokio::process::Command::new(&exe)
        .arg("--config")
        .arg(&config)
        // Quiet unless asked: `POOLGATE_CHILD_LOG=poolgate=debug` when a trial needs a look inside.
        .env(
            "RUST_LOG",
            std::env::var("POOLGATE_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .kill_on_drop(true)
        .spawn()
        .context("starting poolgate")?;
    let url = format!("http://{listen}/harness.html");
    let deadline = tokio::time::Instant::now() + STATUS_LIMIT;
    loop {
        if reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "poolgate never served {url}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((child, listen))
}

/// The gateway as a child process, killed with SIGKILL mid-recording: every segment the index
/// lists plays; at most the segment in progress per recording is lost (on disk, not listed).
async fn kill9_scenario() -> anyhow::Result<()> {
    let plugins = PluginDir::new("recorder-kill9")?;
    plugins.add_built(RECORDER)?;
    let out = TempDir::new("kill9")?;
    let rec = out.0.join("rec");
    let (mut child, listen) =
        spawn_poolgate(&plugins, &out.0, &recorder_bridge("rec", "k9", &rec)).await?;
    let url = format!("http://{listen}/harness.html");
    let mut b = Browser::launch().await?;
    let page = join(&mut b, "a", &url, "k9").await?;
    wait_index(&rec, "k9", "two finished segments", |i| {
        recording_av(i, &page)
            && recordings(i, &page)
                .iter()
                .any(|r| r["segments"].as_array().is_some_and(|s| s.len() >= 2))
    })
    .await?;
    child.start_kill()?;
    let status = tokio::time::timeout(STATUS_LIMIT, child.wait()).await??;
    ensure!(!status.success(), "poolgate was not killed: {status}");
    let (dir, index) = session(&rec, "k9")?;
    ensure!(index["status"] == "recording", "{index:#}");
    let r = recordings(&index, &page)
        .iter()
        .find(|r| r["status"] == "recording")
        .context("no recording in progress")?
        .clone();
    let segments = r["segments"].as_array().unwrap();
    ensure!(segments.len() >= 2, "{r:#}");
    for segment in segments {
        let file = dir.join(segment["file"].as_str().unwrap());
        let found = discover(&file)?;
        ensure!(
            found.duration_s > 0.0 && found.video == ["VP8"] && found.audio == ["Opus"],
            "{}: {found:?}",
            file.display()
        );
        // The index says what the file holds.
        let listed = segment["duration_s"].as_f64().unwrap_or(0.0);
        ensure!(
            (listed - found.duration_s).abs() < 1.0,
            "{segment} vs {found:?}"
        );
    }
    let lost = unlisted(&dir, &index["peers"][&page])?;
    ensure!(
        lost.len() <= 1,
        "more than the segment in progress is unlisted: {lost:?}"
    );
    let _ = segment_count(&index);
    b.quit().await?;
    Ok(())
}

/// A recorder whose directory cannot be made reports why; a second recorder in the same pool
/// on a good directory records on.
async fn unwritable_scenario() -> anyhow::Result<()> {
    let plugins = PluginDir::new("recorder-unwritable")?;
    plugins.add_built(RECORDER)?;
    let out = TempDir::new("unwritable")?;
    // A path below a regular file cannot be created, even by root.
    let blocker = out.0.join("a-file");
    std::fs::write(&blocker, "not a folder")?;
    let bad = blocker.join("rec");
    let good = out.0.join("good");
    let bridges = recorder_bridge("bad", "uw", &bad) + &recorder_bridge("good", "uw", &good);
    let gateway = start_gateway(&plugins, &bridges).await?;
    let failed = wait_bridge(&gateway, "bad", |s| s.status.starts_with("failed: ")).await?;
    let want = format!("failed: cannot write {}: ", bad.display());
    ensure!(
        failed.status.starts_with(&want) && failed.status.contains("Not a directory"),
        "{failed:#?}"
    );
    wait_bridge(&gateway, "good", live).await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    let page = join(&mut b, "a", &url, "uw").await?;
    let (_, index) = wait_index(&good, "uw", "a finished segment", |i| {
        recording_av(i, &page) && segment_count(i) >= 1
    })
    .await?;
    ensure!(index["status"] == "recording", "{index:#}");
    let good_status = gateway.bridges().get("good")?;
    ensure!(
        good_status.status == "live" && good_status.restarts == 0,
        "{good_status:#?}"
    );
    ensure!(
        gateway
            .bridges()
            .get("bad")?
            .last_failure
            .is_some_and(|f| f.starts_with("cannot write")),
        "the bad bridge's failure is not kept"
    );
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

/// A peer's folder turns unwritable mid-recording (replaced by a regular file, so the next
/// segment cannot be opened, even by root): that recording stops with the reason, in the index
/// and the bridge's status; the other peer's recording goes on, segment after segment.
async fn write_error_scenario() -> anyhow::Result<()> {
    let plugins = PluginDir::new("recorder-write-error")?;
    plugins.add_built(RECORDER)?;
    let out = TempDir::new("write-error")?;
    let gateway = start_gateway(&plugins, &recorder_bridge("rec", "we", &out.0)).await?;
    wait_bridge(&gateway, "rec", live).await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    let steady = join(&mut b, "a", &url, "we").await?;
    let broken = join(&mut b, "b", &url, "we").await?;
    let (dir, _) = wait_index(&out.0, "we", "both pages recording", |i| {
        recording_av(i, &steady) && recording_av(i, &broken)
    })
    .await?;
    let folder = dir.join(&broken);
    std::fs::rename(&folder, dir.join(format!("{broken}.moved")))?;
    std::fs::write(&folder, "not a folder any more")?;
    let want = format!("failed: cannot write {}: ", folder.display());
    let failed = wait_bridge(&gateway, "rec", |s| s.status.starts_with(&want)).await?;
    let (_, index) = wait_index(&out.0, "we", "the broken recording failed", |i| {
        recordings(i, &broken)
            .iter()
            .any(|r| r["status"].as_str().is_some_and(|s| s.starts_with(&want)))
    })
    .await?;
    let segments = |i: &Value| -> usize {
        recordings(i, &steady)
            .iter()
            .map(|r| r["segments"].as_array().map_or(0, Vec::len))
            .sum()
    };
    let before = segments(&index);
    wait_index(&out.0, "we", "the other recording going on", |i| {
        segments(i) > before && recording_av(i, &steady)
    })
    .await?;
    gateway.bridges().delete("rec").await?;
    let (dir, index) = session(&out.0, "we")?;
    let r = recordings(&index, &steady)
        .iter()
        .find(|r| r["status"] == "finished")
        .with_context(|| format!("{index:#}"))?;
    check_recording(&dir, r, &["VP8", "OPUS"])?;
    ensure!(failed.restarts == 0, "{failed:#?}");
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

/// The composite picture of [`composite_scenario`]: small, to spare the 2-core CI machine.
const COMPOSITE_WIDTH: u32 = 640;
const COMPOSITE_HEIGHT: u32 = 360;

/// The tracks of a composite index, each as (peer, kind, removed at in Unix ms).
fn composite_tracks(index: &Value) -> Vec<(String, String, Option<u64>)> {
    index["composite"]["tracks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["peer"].as_str().unwrap_or("").to_string(),
                t["kind"].as_str().unwrap_or("").to_string(),
                t["removed"]["unix_ms"].as_u64(),
            )
        })
        .collect()
}

/// Whether `peer`'s audio and video are in the composite now.
fn in_composite(index: &Value, peer: &str) -> bool {
    let t = composite_tracks(index);
    ["audio", "video"].iter().all(|k| {
        t.iter()
            .any(|(p, kind, gone)| p == peer && kind == k && gone.is_none())
    })
}

/// A composite recorder; two pages in the pool, one leaves half-way: one set of segments, each
/// playing with one VP8 video of the configured size and one Opus audio, lasting together as
/// long as the composite ran; the index says who was in it when.
async fn composite_scenario() -> anyhow::Result<()> {
    let plugins = PluginDir::new("recorder-composite")?;
    plugins.add_built(RECORDER)?;
    let out = TempDir::new("composite")?;
    let bridge = format!(
        "[[bridge]]\nname = \"rec\"\nplugin = \"recorder\"\npool = \"mix\"\n\
         ice_local_addresses = [\"127.0.0.1\"]\n\
         config = {{ directory = {:?}, segment_seconds = {SEGMENT_SECONDS}, composite = true, \
         width = {COMPOSITE_WIDTH}, height = {COMPOSITE_HEIGHT}, framerate = 15 }}\n",
        out.0.display().to_string()
    );
    let gateway = start_gateway(&plugins, &bridge).await?;
    wait_bridge(&gateway, "rec", live).await?;
    let url = format!("http://{}/harness.html", gateway.addr());
    let mut b = Browser::launch().await?;
    let stayer = join(&mut b, "a", &url, "mix").await?;
    let leaver = join(&mut b, "b", &url, "mix").await?;
    wait_index(&out.0, "mix", "both pages in the composite", |i| {
        in_composite(i, &stayer) && in_composite(i, &leaver)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let left_at = now_ms();
    b.eval("b", "harness.leave()").await?;
    b.close("b").await?;
    wait_index(&out.0, "mix", "the leaver out of the composite", |i| {
        composite_tracks(i)
            .iter()
            .filter(|(p, _, _)| p == &leaver)
            .all(|(_, _, gone)| gone.is_some())
            && in_composite(i, &stayer)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    gateway.bridges().delete("rec").await?;

    let (dir, index) = session(&out.0, "mix")?;
    let c = &index["composite"];
    ensure!(
        index["status"] == "stopped"
            && c["status"] == "finished"
            && c["container"] == "webm"
            && c["video_codec"] == "VP8"
            && c["width"] == COMPOSITE_WIDTH
            && c["height"] == COMPOSITE_HEIGHT,
        "{index:#}"
    );
    // Who was there when: the leaver's tracks end when it left, the stayer's at the stop.
    for (peer, kind, gone) in composite_tracks(&index) {
        let gone = gone.with_context(|| format!("{peer} {kind} never removed: {index:#}"))?;
        if peer == leaver {
            ensure!(
                gone >= left_at && gone <= left_at + 10_000,
                "left at {left_at}: {index:#}"
            );
        } else {
            ensure!(peer == stayer && gone > left_at, "{index:#}");
        }
    }
    ensure!(
        index["peers"][&leaver]["left"]["unix_ms"]
            .as_u64()
            .is_some()
            && index["peers"][&stayer]["joined"]["unix_ms"]
                .as_u64()
                .is_some(),
        "{index:#}"
    );
    // One set of segments, each plays on its own.
    let segments = c["segments"].as_array().context("no segments")?;
    ensure!(segments.len() >= 2, "{c:#}");
    let mut total = 0.0;
    for segment in segments {
        let file = dir.join(segment["file"].as_str().context("segment without file")?);
        let found = discover(&file)?;
        ensure!(
            found.duration_s > 0.0
                && found.video == ["VP8"]
                && found.audio == ["Opus"]
                && (found.width, found.height) == (COMPOSITE_WIDTH, COMPOSITE_HEIGHT),
            "{}: {found:?}",
            file.display()
        );
        total += found.duration_s;
    }
    let ran = (c["stopped"]["unix_ms"].as_u64().context("not stopped")?
        - c["started"]["unix_ms"].as_u64().context("no start")?) as f64
        / 1000.0;
    ensure!(
        (total - ran).abs() <= 1.0,
        "segments last {total:.2} s, the composite ran {ran:.2} s: {c:#}"
    );
    let listed: Vec<&str> = segments.iter().filter_map(|s| s["file"].as_str()).collect();
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir.join("composite"))? {
        let path = e?.path();
        files.push(path.strip_prefix(&dir)?.to_string_lossy().to_string());
    }
    ensure!(
        files.iter().all(|f| listed.contains(&f.as_str())) && files.len() == listed.len(),
        "files {files:?}, listed {listed:?}"
    );
    eprintln!(
        "composite: {} segments, {total:.2} s of media for {ran:.2} s of wall clock",
        segments.len()
    );
    b.quit().await?;
    gateway.stop().await;
    Ok(())
}

/// An H.264 + Opus sender for [`composite_h264_kill9_scenario`]: openh264 (constrained
/// baseline, as browsers send it), small and slow to spare the CI machine.
const H264_SENDER: &str = "videotestsrc is-live=true pattern=ball \
    ! video/x-raw,width=320,height=240,framerate=15/1 ! videoconvert \
    ! openh264enc complexity=low rate-control=bitrate bitrate=300000 gop-size=30 \
    ! video/x-h264,profile=constrained-baseline ! h264parse \
    ! rtph264pay pt=102 config-interval=-1 aggregate-mode=zero-latency \
    ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000\"";
const OPUS_SENDER: &str = "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 \
    ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 \
    ! capsfilter caps=\"application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000\"";

/// A managed endpoint of this process joins `pool` at `ws` and sends two H.264 videos and Opus
/// from the start (all in its first offer); returns its id and the task that drains its events.
/// One endpoint with two videos rather than two endpoints: two endpoints in one pool also
/// connect to each other, and their offer collisions (webrtcbin rebuilds) made the trial flaky.
async fn h264_sender(
    ws: &str,
    pool: &str,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    use poolgate::endpoint::{Endpoint, EndpointEvent, EndpointOptions, MediaSource};
    let mut endpoint = Endpoint::start(EndpointOptions {
        target: poolgate::signalling::SignallingTarget::Remote(ws.to_string()),
        pool: pool.to_string(),
        ice_servers: Vec::new(),
        ice_local_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        media: vec![
            MediaSource::Launch(H264_SENDER.to_string()),
            MediaSource::Launch(H264_SENDER.replace("pattern=ball", "pattern=smpte")),
            MediaSource::Launch(OPUS_SENDER.to_string()),
        ],
    })
    .await?;
    let mut id = None;
    let deadline = tokio::time::Instant::now() + STATUS_LIMIT;
    while id.is_none() {
        match tokio::time::timeout_at(deadline, endpoint.next_event()).await {
            Ok(Some(EndpointEvent::Joined { id: me, .. })) => id = Some(me.to_string()),
            Ok(Some(_)) => {}
            Ok(None) => bail!("the sender stopped before joining"),
            Err(_) => bail!("the sender did not join within {STATUS_LIMIT:?}"),
        }
    }
    let pump = tokio::spawn(async move { while endpoint.next_event().await.is_some() {} });
    Ok((id.context("no id")?, pump))
}

/// A composite recording of two H.264 videos (decoded, mixed, encoded to VP8), and the gateway
/// killed with SIGKILL mid-recording: every segment the index lists plays with the configured
/// picture size and audio; at most the segment in progress is not listed.
async fn composite_h264_kill9_scenario() -> anyhow::Result<()> {
    const WIDTH: u32 = 320;
    const HEIGHT: u32 = 180;
    let plugins = PluginDir::new("recorder-composite-h264")?;
    plugins.add_built(RECORDER)?;
    let out = TempDir::new("composite-h264")?;
    let rec = out.0.join("rec");
    let bridge = format!(
        "[[bridge]]\nname = \"rec\"\nplugin = \"recorder\"\npool = \"mix264\"\n\
         ice_local_addresses = [\"127.0.0.1\"]\n\
         config = {{ directory = {:?}, segment_seconds = {SEGMENT_SECONDS}, composite = true, \
         width = {WIDTH}, height = {HEIGHT}, framerate = 15 }}\n",
        rec.display().to_string()
    );
    let (mut child, listen) = spawn_poolgate(&plugins, &out.0, &bridge).await?;
    let ws = format!("ws://{listen}/ws");
    let (a, pump) = h264_sender(&ws, "mix264").await?;
    let videos_in = |i: &Value| {
        composite_tracks(i)
            .iter()
            .filter(|(p, kind, gone)| p == &a && kind == "video" && gone.is_none())
            .count()
    };
    wait_index(&rec, "mix264", "both H.264 videos in the composite", |i| {
        in_composite(i, &a) && videos_in(i) == 2
    })
    .await?;
    let (_, index) = session(&rec, "mix264")?;
    let before = index["composite"]["segments"]
        .as_array()
        .map_or(0, Vec::len);
    wait_index(&rec, "mix264", "two segments with both senders", |i| {
        i["composite"]["segments"]
            .as_array()
            .is_some_and(|s| s.len() >= before + 2)
    })
    .await?;
    child.start_kill()?;
    let status = tokio::time::timeout(STATUS_LIMIT, child.wait()).await??;
    ensure!(!status.success(), "poolgate was not killed: {status}");
    pump.abort();

    let (dir, index) = session(&rec, "mix264")?;
    let c = &index["composite"];
    ensure!(
        index["status"] == "recording" && c["status"] == "recording",
        "{index:#}"
    );
    // The senders' video reached the composite as H.264.
    {
        let peer = &a;
        let codecs: Vec<&str> = c["tracks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["peer"] == peer.as_str() && t["kind"] == "video")
            .filter_map(|t| t["codec"].as_str())
            .collect();
        // A reconnection lists a peer's track again: every entry is H.264.
        ensure!(
            codecs.len() >= 2 && codecs.iter().all(|c| *c == "H264"),
            "{peer}: {codecs:?} in {c:#}"
        );
    }
    let segments = c["segments"].as_array().context("no segments")?;
    ensure!(segments.len() >= 2, "{c:#}");
    for segment in segments {
        let file = dir.join(segment["file"].as_str().context("segment without file")?);
        let found = discover(&file)?;
        ensure!(
            found.duration_s > 0.0
                && found.video == ["VP8"]
                && found.audio == ["Opus"]
                && (found.width, found.height) == (WIDTH, HEIGHT),
            "{}: {found:?}",
            file.display()
        );
        let listed = segment["duration_s"].as_f64().unwrap_or(0.0);
        ensure!(
            (listed - found.duration_s).abs() < 1.0,
            "{segment} vs {found:?}"
        );
    }
    // Only the segment in progress at the kill is on disk and not listed.
    let listed: Vec<&str> = segments.iter().filter_map(|s| s["file"].as_str()).collect();
    let mut unlisted = Vec::new();
    for e in std::fs::read_dir(dir.join("composite"))? {
        let path = e?.path();
        let name = path.strip_prefix(&dir)?.to_string_lossy().to_string();
        if !listed.contains(&name.as_str()) {
            unlisted.push(name);
        }
    }
    ensure!(
        unlisted.len() <= 1,
        "more than the segment in progress is unlisted: {unlisted:?}"
    );
    eprintln!(
        "composite of 2 H.264 videos: {} segments listed and playable after kill -9",
        segments.len()
    );
    Ok(())
}

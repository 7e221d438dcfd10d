//! Recordings through the admin API, end to end: a recorder started over the API records an
//! endpoint peer of this process, is stopped over the API, and its session is listed,
//! downloaded (whole and by range: the bytes on disk), played (`gst-discoverer-1.0`) and
//! deleted (409 while recorded). Also H.264 recorded to MP4 and Matroska without
//! transcoding, and segments cut by `segment_bytes`.
//!
//! Every trial starts GStreamer endpoints, so each is named `endpoint_*` (the Makefile runs
//! each in its own process); the binary re-executes itself in a network namespace with only
//! `lo`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use libtest_mimic::Trial;
use poolgate::endpoint::{Endpoint, EndpointOptions, MediaSource};
use poolgate::signalling::SignallingTarget;
use poolgate::Gateway;
use poolgate_tests::plugins::{self, PluginDir};
use poolgate_tests::recordings::{discover, Discovered};
use poolgate_tests::scenario::{run, run_trials};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bounds for a loaded 2-core machine: they bound a hang, they measure nothing.
const LIMIT: Duration = Duration::from_secs(60);
const TOKEN: &str = "recordings-api-test-token-0123456789";
const RECORDER: &str = "poolgate_plugin_recorder";

fn main() {
    run_trials(|| {
        vec![
            Trial::test("endpoint_recordings_api_start_stop_download_delete", || {
                run(api_scenario())
            }),
            Trial::test(
                "endpoint_recorder_h264_mp4_and_mkv",
                || run(h264_scenario()),
            ),
            Trial::test("endpoint_recorder_segment_bytes", || {
                run(segment_bytes_scenario())
            }),
        ]
    })
}

/// A fresh folder for one test's recordings, removed on drop (kept with
/// `POOLGATE_KEEP_RECORDINGS`).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> anyhow::Result<TempDir> {
        let path =
            std::env::temp_dir().join(format!("poolgate-recapi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("POOLGATE_KEEP_RECORDINGS").is_some() {
            eprintln!("recordings kept in {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A gateway with the recorder plugin and the admin API on loopback.
async fn gateway(plugins: &PluginDir) -> anyhow::Result<Gateway> {
    plugins.add_built(RECORDER)?;
    let admin = format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n");
    plugins::start_gateway(plugins, "", &admin).await
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.bytes)
            .with_context(|| format!("not JSON: {:?}", String::from_utf8_lossy(&self.bytes)))
    }

    /// The JSON body of an answer that must have `status`.
    fn ok(&self, status: u16) -> anyhow::Result<Value> {
        ensure!(
            self.status.as_u16() == status,
            "{} instead of {status}: {}",
            self.status,
            String::from_utf8_lossy(&self.bytes)
        );
        if self.bytes.is_empty() {
            return Ok(Value::Null);
        }
        self.json()
    }

    /// An error answer with `status` and `code`.
    fn error(&self, status: u16, code: &str) -> anyhow::Result<Value> {
        let body = self.json()?;
        ensure!(
            self.status.as_u16() == status && body["error"] == code,
            "{} instead of {status} {code}: {body}",
            self.status
        );
        Ok(body)
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(g: &Gateway) -> anyhow::Result<Api> {
        let addr = g.admin().context("no admin API")?.addr();
        Ok(Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().no_proxy().build()?,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = tokio::time::timeout(Duration::from_secs(30), req.send())
            .await
            .context("no answer within 30 s")??;
        Ok(Answer {
            status: res.status(),
            headers: res.headers().clone(),
            bytes: res.bytes().await?.to_vec(),
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.call(Method::GET, path, &[], None).await
    }

    /// Starts a recorder of `pool` into `dir` with the extra config `more`.
    async fn start(
        &self,
        name: &str,
        pool: &str,
        dir: &Path,
        more: Value,
    ) -> anyhow::Result<Value> {
        let mut body = json!({"pool": pool, "name": name, "directory": dir,
                              "ice_local_addresses": ["127.0.0.1"]});
        for (k, v) in more.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        self.call(Method::POST, "/api/v1/recorders", &[], Some(body))
            .await?
            .ok(201)
    }

    /// Polls recorder `name` until `done` holds; returns it.
    async fn wait_recorder(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let r = self
                .get(&format!("/api/v1/recorders/{name}"))
                .await?
                .ok(200)?;
            if done(&r) {
                return Ok(r);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("recorder {name} never showed {what}: {r:#}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops recorder `name`; returns the session it recorded (its index, from the API).
    async fn stop(&self, name: &str) -> anyhow::Result<Value> {
        let stopped = self
            .call(
                Method::DELETE,
                &format!("/api/v1/recorders/{name}"),
                &[],
                None,
            )
            .await?
            .ok(200)?;
        let url = stopped["session"]["url"]
            .as_str()
            .with_context(|| format!("no session: {stopped:#}"))?;
        ensure!(
            stopped["session"]["status"] == "stopped" && stopped["session"]["live"] == false,
            "{stopped:#}"
        );
        self.get(url).await?.ok(200)
    }
}

/// How many finished segments the recorder's current session has.
fn segments_now(recorder: &Value) -> u64 {
    recorder["recording"]["segments"].as_u64().unwrap_or(0)
}

/// A peer of this process in `pool`, publishing `media`, until [`Sender::stop`].
struct Sender {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Sender {
    async fn start(
        gateway: &Gateway,
        pool: &str,
        media: Vec<MediaSource>,
    ) -> anyhow::Result<Sender> {
        let mut endpoint = Endpoint::start(EndpointOptions {
            target: SignallingTarget::Hosted(gateway.pools().clone()),
            pool: pool.to_string(),
            ice_servers: Vec::new(),
            ice_local_addresses: vec![Ipv4Addr::LOCALHOST.into()],
            media,
        })
        .await?;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    event = endpoint.next_event() => if event.is_none() { break },
                    _ = &mut stopped => break,
                }
            }
            endpoint.stop().await;
        });
        Ok(Sender { stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(LIMIT, self.task).await;
    }
}

/// VP8 at 320x240, a keyframe every `gop` frames, then the RTP caps the endpoint wants.
fn vp8(gop: u32) -> MediaSource {
    MediaSource::Launch(format!(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! videoconvert ! vp8enc deadline=1 cpu-used=8 target-bitrate=400000 keyframe-max-dist={gop} \
         ! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit \
         ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000\""
    ))
}

/// H.264 constrained baseline from openh264 (the profile browsers send).
fn h264() -> MediaSource {
    MediaSource::Launch(
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! videoconvert ! openh264enc complexity=low rate-control=bitrate bitrate=500000 gop-size=30 \
         ! video/x-h264,profile=constrained-baseline ! h264parse \
         ! rtph264pay pt=102 config-interval=-1 aggregate-mode=zero-latency \
         ! capsfilter caps=\"application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000\""
            .into(),
    )
}

/// Every finished segment of a session index (from the API): (file, bytes, url, recording).
fn segments(session: &Value) -> Vec<(String, u64, String, Value)> {
    let mut out = Vec::new();
    for peer in session["peers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|p| p.1)
    {
        for r in peer["recordings"].as_array().into_iter().flatten() {
            for s in r["segments"].as_array().into_iter().flatten() {
                out.push((
                    s["file"].as_str().unwrap_or_default().to_string(),
                    s["bytes"].as_u64().unwrap_or(0),
                    s["url"].as_str().unwrap_or_default().to_string(),
                    r.clone(),
                ));
            }
        }
    }
    out
}

/// Plays a segment: one video and one audio stream, longer than zero.
fn plays(path: &Path) -> anyhow::Result<Discovered> {
    let found = discover(path)?;
    ensure!(
        found.duration_s > 0.0 && found.video.len() == 1 && found.audio.len() == 1,
        "{}: {found:?}",
        path.display()
    );
    Ok(found)
}

/// Start a recorder over the API, record an endpoint peer, refuse to delete the live session,
/// stop, list, download a segment whole and by range (equal to the file), play the download,
/// delete the session.
async fn api_scenario() -> anyhow::Result<()> {
    let plugins = PluginDir::new("recapi")?;
    let out = TempDir::new("api")?;
    let gateway = gateway(&plugins).await?;
    let api = Api::new(&gateway)?;
    let started = api
        .start("rec", "api", &out.0, json!({"segment_seconds": 2}))
        .await?;
    ensure!(
        started["bridge"]["plugin"] == "recorder" && started["directory"] == json!(out.0),
        "{started:#}"
    );
    // The same name again, and a config the recorder refuses: nothing more starts.
    api.call(
        Method::POST,
        "/api/v1/recorders",
        &[],
        Some(json!({"pool": "api", "name": "rec", "directory": out.0})),
    )
    .await?
    .error(409, "bridge_exists")?;
    let refused = api
        .call(
            Method::POST,
            "/api/v1/recorders",
            &[],
            Some(json!({"pool": "api", "container": "avi"})),
        )
        .await?
        .error(400, "invalid_field")?;
    ensure!(
        refused["message"]
            .as_str()
            .unwrap_or_default()
            .contains("container"),
        "{refused}"
    );
    let sender = Sender::start(&gateway, "api", vec![vp8(30), MediaSource::TestAudio]).await?;
    let recorder = api
        .wait_recorder("rec", "two finished segments", |r| segments_now(r) >= 2)
        .await?;
    let live = &recorder["recording"];
    ensure!(
        live["live"] == true && live["status"] == "recording",
        "{recorder:#}"
    );
    let session_url = live["url"].as_str().context("no url")?.to_string();
    api.call(Method::DELETE, &session_url, &[], None)
        .await?
        .error(409, "session_recording")?;
    let listed = api.get("/api/v1/recorders").await?.ok(200)?;
    ensure!(
        listed["recorders"].as_array().map(Vec::len) == Some(1),
        "{listed:#}"
    );

    let session = api.stop("rec").await?;
    sender.stop().await;
    api.get("/api/v1/recorders/rec")
        .await?
        .error(404, "unknown_recorder")?;
    // Listed after its recorder is gone.
    let list = api.get("/api/v1/recordings?pool=api").await?.ok(200)?;
    let sessions = list["sessions"].as_array().context("no sessions")?;
    ensure!(
        sessions.len() == 1 && sessions[0]["url"] == session_url.as_str(),
        "{list:#}"
    );
    let folder = PathBuf::from(session["folder"].as_str().context("no folder")?);
    let all = segments(&session);
    ensure!(all.len() >= 2, "{session:#}");
    let (file, bytes, url, recording) = &all[0];
    ensure!(
        recording["tracks"].as_array().is_some_and(|t| t.len() == 2)
            && recording["container"] == "webm",
        "{recording:#}"
    );
    let on_disk = std::fs::read(folder.join(file))?;
    ensure!(
        on_disk.len() as u64 == *bytes,
        "{file}: {} bytes, the index says {bytes}",
        on_disk.len()
    );

    let whole = api.get(url).await?;
    ensure!(
        whole.status == 200 && whole.bytes == on_disk,
        "{url}: {} {} bytes",
        whole.status,
        whole.bytes.len()
    );
    ensure!(
        whole.headers["content-type"] == "video/webm",
        "{:?}",
        whole.headers
    );
    let len = on_disk.len();
    let (first, last) = (100, (len / 2).max(101));
    let part = api
        .call(
            Method::GET,
            url,
            &[("range", &format!("bytes={first}-{last}"))],
            None,
        )
        .await?;
    ensure!(
        part.status == 206
            && part.headers["content-range"] == format!("bytes {first}-{last}/{len}").as_str()
            && part.bytes == on_disk[first..=last],
        "range: {} {:?}",
        part.status,
        part.headers
    );
    let tail = api
        .call(Method::GET, url, &[("range", "bytes=-1000")], None)
        .await?;
    ensure!(
        tail.status == 206 && tail.bytes == on_disk[len - 1000..],
        "suffix range"
    );
    let past = api
        .call(
            Method::GET,
            url,
            &[("range", &format!("bytes={len}-"))],
            None,
        )
        .await?;
    past.error(416, "range_not_satisfiable")?;
    ensure!(
        past.headers["content-range"] == format!("bytes */{len}").as_str(),
        "{:?}",
        past.headers
    );
    // The download plays on its own: VP8 and Opus as sent.
    let copy = out.0.join("download.webm");
    std::fs::write(&copy, &whole.bytes)?;
    let found = plays(&copy)?;
    ensure!(found.has("VP8") && found.has("OPUS"), "{found:?}");

    api.call(Method::DELETE, &session_url, &[], None)
        .await?
        .ok(204)?;
    ensure!(!folder.exists(), "{} still exists", folder.display());
    api.get(&session_url).await?.error(404, "unknown_session")?;
    api.get(url).await?.error(404, "unknown_session")?;
    let list = api.get("/api/v1/recordings").await?.ok(200)?;
    ensure!(list["sessions"] == json!([]), "{list:#}");
    gateway.stop().await;
    Ok(())
}

/// An endpoint peer sends H.264 (constrained baseline) and Opus; recorders into MP4 and
/// Matroska keep H.264 as sent (the profile too: nothing re-encoded) with the audio.
async fn h264_scenario() -> anyhow::Result<()> {
    let plugins = PluginDir::new("recapi-h264")?;
    let out = TempDir::new("h264")?;
    let gateway = gateway(&plugins).await?;
    let api = Api::new(&gateway)?;
    for container in ["mp4", "mkv"] {
        api.start(
            container,
            "h264",
            &out.0.join(container),
            json!({"container": container, "segment_seconds": 2}),
        )
        .await?;
    }
    let sender = Sender::start(&gateway, "h264", vec![h264(), MediaSource::TestAudio]).await?;
    for container in ["mp4", "mkv"] {
        api.wait_recorder(container, "two finished segments", |r| segments_now(r) >= 2)
            .await?;
    }
    for container in ["mp4", "mkv"] {
        let session = api.stop(container).await?;
        let folder = PathBuf::from(session["folder"].as_str().context("no folder")?);
        let all = segments(&session);
        ensure!(all.len() >= 2, "{container}: {session:#}");
        for (file, _, _, recording) in &all {
            ensure!(recording["container"] == container, "{recording:#}");
            let codecs: Vec<&str> = recording["tracks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["codec"].as_str())
                .collect();
            ensure!(
                codecs.contains(&"H264") && codecs.contains(&"OPUS"),
                "{recording:#}"
            );
            ensure!(file.ends_with(&format!(".{container}")), "{file}");
            let found = plays(&folder.join(file))?;
            ensure!(
                found.has("H264") && found.has("OPUS") && found.video[0].contains("Baseline"),
                "{container} {file}: {found:?}"
            );
        }
        eprintln!(
            "{container}: {} segments play, H.264 (Constrained Baseline) + Opus",
            all.len()
        );
    }
    sender.stop().await;
    gateway.stop().await;
    Ok(())
}

/// The smallest `segment_bytes` the recorder takes.
const SEGMENT_BYTES: u64 = 65_536;
/// What a segment may exceed `segment_bytes` by: splitmuxsink cuts before a keyframe when the
/// next GOP would cross the limit, so only container overhead and a frame's worth of slack
/// remain (a 320x240 VP8 frame at 400 kbit/s is 1 to 8 KiB).
const SLACK: u64 = 8 * 1024;

/// With `segment_bytes` at its minimum and `segment_seconds` at 60, an ~8 s recording is cut
/// by size: several segments, each within the limit plus slack, each playing.
async fn segment_bytes_scenario() -> anyhow::Result<()> {
    let plugins = PluginDir::new("recapi-bytes")?;
    let out = TempDir::new("bytes")?;
    let gateway = gateway(&plugins).await?;
    let api = Api::new(&gateway)?;
    api.start(
        "bytes",
        "bytes",
        &out.0,
        json!({"segment_seconds": 60, "segment_bytes": SEGMENT_BYTES}),
    )
    .await?;
    // A keyframe every 5 frames: splitmuxsink can cut often.
    let sender = Sender::start(&gateway, "bytes", vec![vp8(5), MediaSource::TestAudio]).await?;
    api.wait_recorder("bytes", "three segments cut by size", |r| {
        segments_now(r) >= 3
    })
    .await?;
    let session = api.stop("bytes").await?;
    sender.stop().await;
    let folder = PathBuf::from(session["folder"].as_str().context("no folder")?);
    let all = segments(&session);
    // Time alone (60 s) would give one segment, finished at the stop.
    ensure!(all.len() >= 4, "{} segments: {session:#}", all.len());
    let mut sizes = Vec::new();
    for (file, bytes, _, _) in &all {
        let size = std::fs::metadata(folder.join(file))?.len();
        ensure!(
            size == *bytes,
            "{file}: {size} bytes, the index says {bytes}"
        );
        ensure!(
            size <= SEGMENT_BYTES + SLACK,
            "{file}: {size} bytes, over {SEGMENT_BYTES} + {SLACK}: {session:#}"
        );
        plays(&folder.join(file))?;
        sizes.push(size);
    }
    eprintln!("segment sizes (limit {SEGMENT_BYTES}): {sizes:?}");
    gateway.stop().await;
    Ok(())
}

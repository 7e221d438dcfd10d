//! Recordings: start and stop recorder bridges (`/api/v1/recorders`), and the sessions they
//! wrote (`/api/v1/recordings`): list, read, download a segment (with `Range`), delete.
//!
//! The gateway learns where recordings are from the config of every recorder bridge it runs
//! ([`places`]) and reads each session's `index.json` ([`sessions`]); the recorder plugin is
//! not asked anything. Only files an index lists are served, and only inside their session
//! folder.
//!
//! - [`places`]: recorder bridges' `directory` and `path_template`, remembered.
//! - [`sessions`]: finding, reading and deleting session folders; which are being recorded.
//! - [`start`]: the start body and the bridge it becomes.
//! - [`range`], [`download`]: `Range` requests and serving a file.

pub mod download;
pub mod places;
pub mod range;
pub mod sessions;
pub mod start;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Serialize;
use utoipa::ToSchema;
use warp::filters::BoxedFilter;
use warp::http::{header, HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::body;
use super::bridges::from_bridge;
use super::context::AdminContext;
use super::error::{ApiError, ErrorBody};
use super::path;
use crate::bridge::{BridgeError, BridgeStatus};
use places::{is_recorder, Place};
use sessions::{FileRefusal, Found, Instant, Peer};
use start::StartRecording;

pub use places::Places;

/// A recorder bridge and where it records.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recorder {
    /// The bridge (status, pool, config with secrets masked).
    pub bridge: BridgeStatus,
    /// Its `directory`.
    pub directory: Option<String>,
    /// Its `path_template`.
    pub path_template: Option<String>,
    /// The session it is recording now, if any.
    pub recording: Option<SessionSummary>,
    /// Every session of its pool in its directory, oldest first (earlier runs included).
    pub sessions: Vec<SessionSummary>,
}

/// `GET /api/v1/recorders`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecorderList {
    /// Every recorder bridge, in creation order.
    pub recorders: Vec<Recorder>,
}

/// `DELETE /api/v1/recorders/{name}`: what the stopped recorder left.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stopped {
    pub name: String,
    pub pool: String,
    /// The session it was recording, now finished (its last segments finalized).
    pub session: Option<SessionSummary>,
}

/// A session, in short.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SessionSummary {
    pub pool: String,
    /// The session's name (its start time, `20261127T190500Z`, with `-2`... when taken).
    pub session: String,
    /// `recording`, `stopped`, or `failed: <reason>` (from the index).
    pub status: String,
    /// Whether a running recorder writes it now (it cannot be deleted then).
    pub live: bool,
    pub started: Instant,
    pub stopped: Option<Instant>,
    /// The session folder on the gateway's disk.
    pub folder: String,
    /// How many peers were recorded.
    pub peers: usize,
    /// Finished segments, over all peers.
    pub segments: usize,
    /// Their total size.
    pub bytes: u64,
    /// This session's URL.
    #[schema(example = "/api/v1/recordings/lobby/20261127T190500Z")]
    pub url: String,
}

/// `GET /api/v1/recordings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Every session in every known place, oldest first.
    pub sessions: Vec<SessionSummary>,
}

/// A session with its index: peers, their descriptions, recordings, tracks and segments
/// (each with its download URL).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub summary: SessionSummary,
    /// By peer id.
    pub peers: BTreeMap<String, Peer>,
}

fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

pub fn routes(ctx: AdminContext) -> BoxedFilter<(Response,)> {
    let max_body = ctx.max_body_bytes;
    let with_ctx = warp::any().map(move || ctx.clone());
    let recorders = warp::path!("api" / "v1" / "recorders");
    let recorder = warp::path!("api" / "v1" / "recorders" / String);
    let list_recorders = recorders
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|ctx: AdminContext| list_recorders(&ctx).into_response());
    let start_route = recorders
        .and(warp::post())
        .and(with_ctx.clone())
        .and(body::limited(max_body))
        .map(|ctx: AdminContext, body: Bytes| answer(start_recorder(&ctx, &body)));
    let get_recorder = recorder
        .and(warp::get())
        .and(with_ctx.clone())
        .map(|name: String, ctx: AdminContext| answer(get_recorder(&ctx, &name)));
    let stop_route = recorder.and(warp::delete()).and(with_ctx.clone()).then(
        |name: String, ctx: AdminContext| async move { answer(stop_recorder(&ctx, &name).await) },
    );
    let list_sessions = warp::path!("api" / "v1" / "recordings")
        .and(warp::get())
        .and(query())
        .and(with_ctx.clone())
        .map(|query: String, ctx: AdminContext| answer(list_sessions(&ctx, &query)));
    let session = warp::path!("api" / "v1" / "recordings" / String / String);
    let get_session = session
        .and(warp::get())
        .and(query())
        .and(with_ctx.clone())
        .map(
            |pool: String, name: String, query: String, ctx: AdminContext| {
                answer(get_session(&ctx, &pool, &name, &query))
            },
        );
    let delete_session = session
        .and(warp::delete())
        .and(query())
        .and(with_ctx.clone())
        .map(
            |pool: String, name: String, query: String, ctx: AdminContext| {
                answer(delete_session(&ctx, &pool, &name, &query))
            },
        );
    let download_route = warp::path!("api" / "v1" / "recordings" / String / String / "files" / ..)
        .and(warp::path::tail())
        .and(warp::get())
        .and(query())
        .and(warp::header::headers_cloned())
        .and(with_ctx)
        .then(
            |pool: String,
             name: String,
             tail: warp::path::Tail,
             query: String,
             headers: HeaderMap,
             ctx: AdminContext| async move {
                let file = tail.as_str().to_string();
                answer(download(&ctx, &pool, &name, &file, &query, &headers).await)
            },
        );
    list_recorders
        .or(start_route)
        .unify()
        .or(get_recorder)
        .unify()
        .or(stop_route)
        .unify()
        .or(list_sessions)
        .unify()
        .or(get_session)
        .unify()
        .or(delete_session)
        .unify()
        .or(download_route)
        .unify()
        .boxed()
}

/// The raw query string, empty when there is none.
fn query() -> BoxedFilter<(String,)> {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .boxed()
}

/// The recorder bridges running now, with their places (remembered for later).
fn recorder_bridges(ctx: &AdminContext) -> Vec<(BridgeStatus, Option<Place>)> {
    ctx.recordings.remember_bridges(&ctx.bridges);
    ctx.bridges
        .list()
        .into_iter()
        .filter(|s| is_recorder(&ctx.bridges, s))
        .map(|s| {
            let place = Place::of_config(&s.config);
            (s, place)
        })
        .collect()
}

/// Every session on disk, and which of them are being recorded.
struct Snapshot {
    recorders: Vec<(BridgeStatus, Option<Place>)>,
    found: Vec<Found>,
    live: Vec<std::path::PathBuf>,
}

impl Snapshot {
    fn take(ctx: &AdminContext) -> Snapshot {
        let recorders = recorder_bridges(ctx);
        let found = sessions::scan_all(&ctx.recordings.all());
        let running: Vec<(Place, String)> = recorders
            .iter()
            .filter_map(|(s, p)| Some((p.clone()?, s.pool.clone())))
            .collect();
        let live = sessions::live(&found, &running)
            .into_iter()
            .map(|f| f.dir.clone())
            .collect();
        Snapshot {
            recorders,
            found,
            live,
        }
    }

    fn summary(&self, f: &Found) -> SessionSummary {
        let index = &f.index;
        SessionSummary {
            pool: index.pool.clone(),
            session: index.session.clone(),
            status: index.status.clone(),
            live: self.live.contains(&f.dir),
            started: index.started.clone(),
            stopped: index.stopped.clone(),
            folder: f.dir.display().to_string(),
            peers: index.peers.len(),
            segments: index.segments().count(),
            bytes: index.segments().map(|s| s.bytes).sum(),
            url: self.url(f),
        }
    }

    fn recorder(&self, status: &BridgeStatus, place: &Option<Place>) -> Recorder {
        let mine: Vec<&Found> = self
            .found
            .iter()
            .filter(|f| Some(&f.place) == place.as_ref() && f.index.pool == status.pool)
            .collect();
        Recorder {
            bridge: status.clone(),
            directory: place.as_ref().map(|p| p.directory.display().to_string()),
            path_template: place.as_ref().map(|p| p.path_template.clone()),
            recording: mine
                .iter()
                .find(|f| self.live.contains(&f.dir))
                .map(|f| self.summary(f)),
            sessions: mine.iter().map(|f| self.summary(f)).collect(),
        }
    }

    /// The sessions of `pool` named `session` (one, unless recorders in two directories
    /// started in the same second).
    fn named(&self, pool: &str, session: &str) -> Vec<&Found> {
        self.found
            .iter()
            .filter(|f| f.index.pool == pool && f.index.session == session)
            .collect()
    }

    /// A session's URL; with `?folder=` when its pool and name alone are ambiguous.
    fn url(&self, f: &Found) -> String {
        let base = session_url(&f.index.pool, &f.index.session);
        if self.named(&f.index.pool, &f.index.session).len() > 1 {
            let folder = f.dir.display().to_string();
            format!("{base}?folder={}", path::encode(&folder))
        } else {
            base
        }
    }

    /// A segment's download URL.
    fn file_url(&self, f: &Found, file: &str) -> String {
        let url = self.url(f);
        let (base, query) = url.split_once('?').unwrap_or((&url, ""));
        let file: Vec<String> = file.split('/').map(path::encode).collect();
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{base}/files/{}{query}", file.join("/"))
    }

    /// The session `pool`/`session` (path segments, percent-encoded), picked by its `folder`
    /// (the query's) when several have that pool and name: 404 when there is none, 409 when
    /// several match.
    fn find(&self, pool: &str, session: &str, query: &str) -> Result<&Found, ApiError> {
        let pool = path::decode(pool, "pool")?;
        let session = path::decode(session, "session")?;
        let folder = query_param(query, "folder")?;
        let named = self.named(&pool, &session);
        let matching: Vec<&Found> = named
            .iter()
            .copied()
            .filter(|f| {
                folder
                    .as_ref()
                    .is_none_or(|d| f.dir.display().to_string() == *d)
            })
            .collect();
        match matching.as_slice() {
            [one] => Ok(one),
            [] => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_session",
                match folder {
                    Some(d) => {
                        format!("no recorded session {session:?} of pool {pool:?} in folder {d:?}")
                    }
                    None => format!("no recorded session {session:?} of pool {pool:?}"),
                },
            )),
            several => {
                let folders: Vec<String> = several
                    .iter()
                    .map(|f| f.dir.display().to_string())
                    .collect();
                Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "ambiguous_session",
                    format!(
                        "{} sessions {session:?} of pool {pool:?} (in {folders:?}); \
                         add ?folder=<folder> (each one's url has it)",
                        several.len()
                    ),
                ))
            }
        }
    }
}

fn session_url(pool: &str, session: &str) -> String {
    format!(
        "/api/v1/recordings/{}/{}",
        path::encode(pool),
        path::encode(session)
    )
}

fn unknown_recorder(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_recorder",
        format!("no recorder bridge named {name:?}"),
    )
}

/// List recorders.
#[utoipa::path(
    get,
    operation_id = "list_recorders",
    path = "/api/v1/recorders",
    tag = "recordings",
    responses(
        (status = 200, description = "Every recorder bridge, with its sessions", body = RecorderList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub fn list_recorders(ctx: &AdminContext) -> impl Reply {
    let snap = Snapshot::take(ctx);
    let recorders = snap
        .recorders
        .iter()
        .map(|(s, p)| snap.recorder(s, p))
        .collect();
    warp::reply::json(&RecorderList { recorders })
}

/// Start recording a pool.
///
/// Creates a recorder bridge (as `POST /api/v1/bridges` with plugin `recorder` would); it
/// joins the pool and records every peer. Errors name the field at fault.
#[utoipa::path(
    post,
    operation_id = "start_recorder",
    path = "/api/v1/recorders",
    tag = "recordings",
    request_body = StartRecording,
    responses(
        (status = 201, description = "Created and starting", body = Recorder,
            headers(("location" = String, description = "The recorder's URL"))),
        (status = 400, description = "Invalid JSON or field, no `directory` to default to, no recorder plugin loaded, or a config the recorder refuses (`invalid_json`, `invalid_field`); the message names the field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "A bridge of that name exists (`bridge_exists`)", body = ErrorBody),
        (status = 413, description = "Body over `admin.max_body_bytes`", body = ErrorBody),
    )
)]
pub fn start_recorder(ctx: &AdminContext, body: &Bytes) -> Result<Response, ApiError> {
    let request: StartRecording = body::parse(body)?;
    ctx.recordings.remember_bridges(&ctx.bridges);
    let fallback = ctx.recordings.all().pop();
    let spec = request
        .into_spec(fallback.as_ref(), |n| ctx.bridges.get(n).is_ok())
        .map_err(|e| ApiError::bad_request("invalid_field", e))?;
    let status = ctx.bridges.create(spec).map_err(from_bridge)?;
    tracing::info!(bridge = %status.name, pool = %status.pool,
        "admin API: recording of pool \"{}\" started by bridge \"{}\"", status.pool, status.name);
    let snap = Snapshot::take(ctx);
    let place = Place::of_config(&status.config);
    let recorder = snap.recorder(&status, &place);
    let location = format!("/api/v1/recorders/{}", path::encode(&status.name));
    let reply = warp::reply::with_status(warp::reply::json(&recorder), StatusCode::CREATED);
    Ok(warp::reply::with_header(reply, header::LOCATION, location).into_response())
}

/// Get a recorder.
#[utoipa::path(
    get,
    operation_id = "get_recorder",
    path = "/api/v1/recorders/{name}",
    tag = "recordings",
    params(("name" = String, Path, description = "Recorder bridge name")),
    responses(
        (status = 200, description = "The recorder, with its sessions", body = Recorder),
        (status = 400, description = "The name is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No recorder bridge of that name (`unknown_recorder`)", body = ErrorBody),
    )
)]
pub fn get_recorder(ctx: &AdminContext, name: &str) -> Result<Response, ApiError> {
    let name = path::decode(name, "name")?;
    let snap = Snapshot::take(ctx);
    let (status, place) = snap
        .recorders
        .iter()
        .find(|(s, _)| s.name == name)
        .ok_or_else(|| unknown_recorder(&name))?;
    Ok(warp::reply::json(&snap.recorder(status, place)).into_response())
}

/// Stop a recorder.
///
/// The bridge stops (every recording's last segment is finalized and the index says
/// `stopped`) and is removed; its files stay. The answer is the session it was recording.
#[utoipa::path(
    delete,
    operation_id = "stop_recorder",
    path = "/api/v1/recorders/{name}",
    tag = "recordings",
    params(("name" = String, Path, description = "Recorder bridge name")),
    responses(
        (status = 200, description = "Stopped; the session it recorded", body = Stopped),
        (status = 400, description = "The name is not valid percent-encoded UTF-8", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No recorder bridge of that name (`unknown_recorder`)", body = ErrorBody),
    )
)]
pub async fn stop_recorder(ctx: &AdminContext, name: &str) -> Result<Response, ApiError> {
    let name = path::decode(name, "name")?;
    let before = Snapshot::take(ctx);
    let (status, place) = before
        .recorders
        .iter()
        .find(|(s, _)| s.name == name)
        .ok_or_else(|| unknown_recorder(&name))?;
    let live_dir = before
        .found
        .iter()
        .find(|f| {
            before.live.contains(&f.dir)
                && f.index.pool == status.pool
                && Some(&f.place) == place.as_ref()
        })
        .map(|f| f.dir.clone());
    match ctx.bridges.delete(&name).await {
        Ok(()) => {}
        Err(BridgeError::NotFound(_)) => return Err(unknown_recorder(&name)),
        Err(e) => return Err(from_bridge(e)),
    }
    tracing::info!(bridge = %name, "admin API: recorder \"{name}\" stopped");
    let after = Snapshot::take(ctx);
    let session = live_dir.and_then(|dir| {
        after
            .found
            .iter()
            .find(|f| f.dir == dir)
            .map(|f| after.summary(f))
    });
    Ok(warp::reply::json(&Stopped {
        name,
        pool: status.pool.clone(),
        session,
    })
    .into_response())
}

/// The one parameter `name` a query string may hold (decoded); any other is refused.
fn query_param(query: &str, name: &str) -> Result<Option<String>, ApiError> {
    let mut value = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, v) = pair.split_once('=').unwrap_or((pair, ""));
        if key != name {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("query: unknown parameter {key:?} (only `{name}` is taken here)"),
            ));
        }
        value = Some(path::decode(&v.replace('+', " "), name)?);
    }
    Ok(value)
}

/// List recorded sessions.
///
/// Every session in the directories of the recorder bridges the gateway has run since it
/// started, oldest first.
#[utoipa::path(
    get,
    operation_id = "list_sessions",
    path = "/api/v1/recordings",
    tag = "recordings",
    params(("pool" = Option<String>, Query, description = "Only this pool's sessions")),
    responses(
        (status = 200, description = "The sessions", body = SessionList),
        (status = 400, description = "A query parameter other than `pool` (`invalid_field`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub fn list_sessions(ctx: &AdminContext, query: &str) -> Result<Response, ApiError> {
    let pool = query_param(query, "pool")?;
    let snap = Snapshot::take(ctx);
    let sessions = snap
        .found
        .iter()
        .filter(|f| pool.as_ref().is_none_or(|p| &f.index.pool == p))
        .map(|f| snap.summary(f))
        .collect();
    Ok(warp::reply::json(&SessionList { sessions }).into_response())
}

/// Get a recorded session.
///
/// Its index: peers with their descriptions, recordings with tracks (codecs) and finished
/// segments (duration, bytes, download URL).
#[utoipa::path(
    get,
    operation_id = "get_session",
    path = "/api/v1/recordings/{pool}/{session}",
    tag = "recordings",
    params(
        ("pool" = String, Path, description = "Pool name"),
        ("session" = String, Path, description = "Session name"),
        ("folder" = Option<String>, Query, description = "The session folder, when recorders in two directories made sessions of the same pool and name (the session's `url` has it then)"),
    ),
    responses(
        (status = 200, description = "The session", body = SessionDetail),
        (status = 400, description = "A path segment or the query is not valid percent-encoded UTF-8, or an unknown query parameter (`invalid_field`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such session (`unknown_session`)", body = ErrorBody),
        (status = 409, description = "Several sessions of that pool and name, and no `folder` to pick one (`ambiguous_session`)", body = ErrorBody),
    )
)]
pub fn get_session(
    ctx: &AdminContext,
    pool: &str,
    session: &str,
    query: &str,
) -> Result<Response, ApiError> {
    let snap = Snapshot::take(ctx);
    let found = snap.find(pool, session, query)?;
    let mut peers = found.index.peers.clone();
    for segment in peers
        .values_mut()
        .flat_map(|p| &mut p.recordings)
        .flat_map(|r| &mut r.segments)
    {
        segment.url = Some(snap.file_url(found, &segment.file));
    }
    Ok(warp::reply::json(&SessionDetail {
        summary: snap.summary(found),
        peers,
    })
    .into_response())
}

/// Delete a recorded session.
///
/// Removes the session folder with its index and every file in it. Refused while a recorder
/// writes the session (stop the recorder first).
#[utoipa::path(
    delete,
    operation_id = "delete_session",
    path = "/api/v1/recordings/{pool}/{session}",
    tag = "recordings",
    params(
        ("pool" = String, Path, description = "Pool name"),
        ("session" = String, Path, description = "Session name"),
        ("folder" = Option<String>, Query, description = "The session folder, when recorders in two directories made sessions of the same pool and name (the session's `url` has it then)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A path segment or the query is not valid percent-encoded UTF-8, or an unknown query parameter (`invalid_field`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such session (`unknown_session`)", body = ErrorBody),
        (status = 409, description = "Being recorded (`session_recording`), or several sessions of that pool and name and no `folder` (`ambiguous_session`)", body = ErrorBody),
        (status = 500, description = "The folder could not be removed (`delete_failed`)", body = ErrorBody),
    )
)]
pub fn delete_session(
    ctx: &AdminContext,
    pool: &str,
    session: &str,
    query: &str,
) -> Result<Response, ApiError> {
    let snap = Snapshot::take(ctx);
    let found = snap.find(pool, session, query)?;
    let (pool, session) = (&found.index.pool, &found.index.session);
    if snap.live.contains(&found.dir) {
        let by = snap
            .recorders
            .iter()
            .find(|(s, p)| &s.pool == pool && p.as_ref() == Some(&found.place))
            .map(|(s, _)| s.name.clone())
            .unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "session_recording",
            format!(
                "session {session:?} of pool {pool:?} is being recorded by {by:?}; \
                 stop the recorder first (DELETE /api/v1/recorders/{})",
                path::encode(&by)
            ),
        ));
    }
    sessions::remove(found).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "delete_failed",
            format!("session {session:?} of pool {pool:?} could not be removed: {e}"),
        )
    })?;
    tracing::info!(pool = %pool, session = %session, "admin API: recorded session deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Download a segment.
///
/// A finished segment the session's index lists (its `file`, relative to the session
/// folder). `Range: bytes=…` (one range) answers 206 with `Content-Range`.
#[utoipa::path(
    get,
    operation_id = "download_segment",
    path = "/api/v1/recordings/{pool}/{session}/files/{file}",
    tag = "recordings",
    params(
        ("pool" = String, Path, description = "Pool name"),
        ("session" = String, Path, description = "Session name"),
        ("folder" = Option<String>, Query, description = "The session folder, when recorders in two directories made sessions of the same pool and name (the session's `url` has it then)"),
        ("file" = String, Path, description = "The segment's `file` as the index lists it, e.g. `<peer>/01-00000.webm`"),
        ("range" = Option<String>, Header, description = "One byte range: `bytes=0-1023`, `bytes=1024-`, `bytes=-1024`"),
    ),
    responses(
        (status = 200, description = "The whole file", content_type = "video/webm"),
        (status = 206, description = "The requested range, with `Content-Range`", content_type = "video/webm"),
        (status = 400, description = "A path segment or the query is not valid percent-encoded UTF-8, or an unknown query parameter (`invalid_field`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such session (`unknown_session`), or the index lists no such file or it is gone (`unknown_file`)", body = ErrorBody),
        (status = 409, description = "Several sessions of that pool and name, and no `folder` to pick one (`ambiguous_session`)", body = ErrorBody),
        (status = 416, description = "A range that is malformed, several ranges, or one past the end (`range_not_satisfiable`); `Content-Range: bytes */<length>`", body = ErrorBody),
    )
)]
pub async fn download(
    ctx: &AdminContext,
    pool: &str,
    session: &str,
    file: &str,
    query: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let path = {
        let snap = Snapshot::take(ctx);
        let found = snap.find(pool, session, query)?;
        let name = path::decode(file, "file")?;
        sessions::segment_file(found, &name).map_err(|refusal| {
            let why = match refusal {
                FileRefusal::NotListed => "the session's index lists no segment",
                FileRefusal::Missing => "the segment is gone from the disk:",
            };
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_file",
                format!("{why} {name:?}"),
            )
        })?
    };
    let range = match headers.get(header::RANGE) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                "Range: not ASCII",
            )
        })?),
    };
    download::serve(&path, range).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_each_part() {
        assert_eq!(session_url("a b", "s1"), "/api/v1/recordings/a%20b/s1");
    }

    #[test]
    fn one_query_parameter_is_taken() {
        let pool_filter = |q| query_param(q, "pool");
        assert_eq!(pool_filter("").unwrap(), None);
        assert_eq!(pool_filter("pool=a%20b").unwrap().as_deref(), Some("a b"));
        assert_eq!(pool_filter("pool=a+b").unwrap().as_deref(), Some("a b"));
        let e = pool_filter("pool=a&limit=3").unwrap_err();
        assert_eq!(e.code, "invalid_field");
        assert!(e.message.contains("limit"), "{}", e.message);
    }
}

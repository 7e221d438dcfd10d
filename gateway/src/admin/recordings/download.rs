//! Serving a segment file: whole (200) or one byte range (206), streamed in chunks so a large
//! segment is never held in memory; 416 with `Content-Range: bytes */<length>` for a range
//! that cannot be served. Finished segments never change, so `If-Range` needs no check.

use std::path::Path;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

use super::range;
use crate::admin::error::ApiError;

/// Bytes read per chunk of a response body.
const CHUNK: usize = 64 * 1024;

/// The media type of a segment, by extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("mp4") => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// The file at `path` (already checked to be a listed segment), as asked by `range_header`.
pub async fn serve(path: &Path, range_header: Option<&str>) -> Result<Response, ApiError> {
    let unreadable = |e: std::io::Error| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_file",
            format!("the segment file cannot be read: {e}"),
        )
    };
    let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    let total = file.metadata().await.map_err(unreadable)?.len();
    let (status, part) = match range_header {
        None => (StatusCode::OK, None),
        Some(h) => match range::parse(h, total) {
            Ok(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
            Err(e) => {
                let mut answer = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    format!("{e} (the file has {total} bytes)"),
                )
                .into_response();
                insert(
                    &mut answer,
                    header::CONTENT_RANGE,
                    format!("bytes */{total}"),
                );
                insert(&mut answer, header::ACCEPT_RANGES, "bytes".into());
                return Ok(answer);
            }
        },
    };
    let (first, length) = match part {
        Some(r) => (r.first, r.len()),
        None => (0, total),
    };
    if first > 0 {
        file.seek(std::io::SeekFrom::Start(first))
            .await
            .map_err(unreadable)?;
    }
    let body = futures_util::stream::unfold((file, length), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; CHUNK.min(left as usize)];
        match file.read(&mut buf).await {
            // The file shrank under us: end the body short (the client sees the length
            // mismatch) rather than loop.
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    let mut answer = warp::reply::stream(body).into_response();
    *answer.status_mut() = status;
    insert(&mut answer, header::CONTENT_LENGTH, length.to_string());
    insert(&mut answer, header::ACCEPT_RANGES, "bytes".into());
    insert(
        &mut answer,
        header::CONTENT_TYPE,
        content_type(path).to_string(),
    );
    if let Some(r) = part {
        insert(&mut answer, header::CONTENT_RANGE, r.content_range(total));
    }
    Ok(answer)
}

fn insert(answer: &mut Response, name: header::HeaderName, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        answer.headers_mut().insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(content_type(Path::new("a/01-00000.webm")), "video/webm");
        assert_eq!(content_type(Path::new("x.mkv")), "video/x-matroska");
        assert_eq!(content_type(Path::new("x.mp4")), "video/mp4");
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }

    #[tokio::test]
    async fn serves_whole_ranges_and_refusals() {
        let path = std::env::temp_dir().join(format!("poolgate-dl-{}.webm", std::process::id()));
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let body = |r: Response| async move {
            use http_body_util::BodyExt;
            r.into_body().collect().await.unwrap().to_bytes()
        };
        let whole = serve(&path, None).await.unwrap();
        assert_eq!(whole.status(), 200);
        assert_eq!(whole.headers()["content-length"], "200000");
        assert_eq!(whole.headers()["content-type"], "video/webm");
        assert_eq!(body(whole).await, data);
        let part = serve(&path, Some("bytes=70000-150000")).await.unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.headers()["content-range"], "bytes 70000-150000/200000");
        assert_eq!(body(part).await, &data[70000..=150000]);
        let bad = serve(&path, Some("bytes=200000-")).await.unwrap();
        assert_eq!(bad.status(), 416);
        assert_eq!(bad.headers()["content-range"], "bytes */200000");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(serve(&path, None).await.unwrap_err().status, 404);
    }
}

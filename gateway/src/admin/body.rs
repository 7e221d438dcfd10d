//! Request bodies: strict JSON, with errors that name the field at fault.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::error::ApiError;

/// The request body, at most `max` bytes. A `Content-Length` over the limit is refused with
/// 413 before anything is read; a chunked body is counted as it arrives and refused the same
/// way once it passes the limit.
pub fn limited(max: u64) -> BoxedFilter<(Bytes,)> {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |length, stream| read(length, stream, max))
        .boxed()
}

async fn read<S, B>(length: Option<u64>, stream: S, max: u64) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: Buf + Send,
{
    let too_large = || {
        warp::reject::custom(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is over admin.max_body_bytes ({max} bytes)"),
        ))
    };
    if length.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut stream = std::pin::pin!(stream);
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            warp::reject::custom(ApiError::bad_request(
                "invalid_body",
                format!("reading the request body failed: {e}"),
            ))
        })?;
        if (body.len() + chunk.remaining()) as u64 > max {
            return Err(too_large());
        }
        body.put(chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON request body into `T` (whose type should deny unknown fields). Syntax errors
/// answer `invalid_json`; a missing, unknown or wrong-typed field answers `invalid_field` with
/// the field's path in the message.
pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body is empty; send a JSON object",
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    // serde would also fill a struct from an array (`["lobby"]`); only objects are requests.
    if !json.is_object() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    let value = serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // At the top level serde's own message names the field (missing or unknown).
        if path == "." {
            ApiError::bad_request("invalid_field", inner.to_string())
        } else {
            ApiError::bad_request("invalid_field", format!("{path}: {inner}"))
        }
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    fn error(text: &str) -> (&'static str, String) {
        let e = parse::<Body>(&Bytes::from(text.to_string())).unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn errors_name_the_field() {
        assert!(parse::<Body>(&Bytes::from_static(br#"{"name": "x"}"#)).is_ok());
        let cases = [
            ("", "invalid_json", "empty"),
            ("{", "invalid_json", "not valid JSON"),
            (r#"{"name": "x"} x"#, "invalid_json", "not valid JSON"),
            ("[]", "invalid_json", "must be a JSON object"),
            (r#"["x"]"#, "invalid_json", "must be a JSON object"),
            (
                r#"{"name": 7}"#,
                "invalid_field",
                "name: invalid type: integer `7`",
            ),
            (r#"{}"#, "invalid_field", "missing field `name`"),
            (
                r#"{"name": "x", "nmae": 1}"#,
                "invalid_field",
                "unknown field `nmae`",
            ),
            (
                r#"{"name": "x", "inner": {"count": -1}}"#,
                "invalid_field",
                "inner.count: invalid value: integer `-1`",
            ),
        ];
        for (text, code, needle) in cases {
            let (c, m) = error(text);
            assert_eq!(c, code, "{text}: {m}");
            assert!(m.contains(needle), "{text}: {m:?} lacks {needle:?}");
        }
    }
}

//! Request bodies: strict JSON, with errors that name the field at fault.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use warp::filters::BoxedFilter;
use warp::Filter;

use super::error::ApiError;

/// The request body, at most `max` bytes: a bigger one is refused with 413 before it is read,
/// and one without `Content-Length` with 411.
pub fn limited(max: u64) -> BoxedFilter<(Bytes,)> {
    warp::body::content_length_limit(max)
        .and(warp::body::bytes())
        .boxed()
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
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
                "invalid_json",
                format!("the body is not valid JSON: {inner}"),
            ),
            // At the top level serde's own message names the field (missing or unknown).
            Category::Data if path == "." => {
                ApiError::bad_request("invalid_field", inner.to_string())
            }
            Category::Data => ApiError::bad_request("invalid_field", format!("{path}: {inner}")),
        }
    })?;
    de.end().map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
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
            ("[]", "invalid_field", "expected struct Body"),
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

//! Path segments: percent-decoding what clients send, percent-encoding what we link to.

use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};

use super::error::ApiError;

/// Decodes a percent-encoded path segment; `field` names it in the error.
pub fn decode(segment: &str, field: &str) -> Result<String, ApiError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_field",
                format!("{field} in the path is not valid percent-encoded UTF-8"),
            )
        })
}

/// Encodes a value for use as one path segment.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

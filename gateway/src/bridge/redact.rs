//! Secrets never leave poolgate: bridge configs are shown with passwords, tokens and keys
//! masked, and URLs without their credentials.

use serde_json::Value;

use crate::signalling::client::redact_url;

/// What a masked value reads as.
pub const MASK: &str = "***";

/// Whether a config key names a secret (`password`, `mqtt_token`, `apiKey`, `credential`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "key",
        "auth",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// `value` with every secret-named field masked and every URL-looking string redacted.
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) && !v.is_null() {
                        Value::String(MASK.into())
                    } else {
                        redact_json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::String(s) if s.contains("://") => Value::String(redact_url(s)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_everywhere() {
        let config = json!({
            "url": "rtsp://admin:hunter2@cam.local/stream?token=abc",
            "broker": {"host": "mqtt.local", "password": "pw", "clientKey": "k"},
            "topics": [{"name": "a", "auth_token": "t"}],
            "retries": 3,
            "api_key": null,
        });
        let shown = redact_json(&config);
        let text = shown.to_string();
        for secret in ["hunter2", "admin", "abc", "\"pw\"", "\"k\"", "\"t\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(shown["broker"]["host"], "mqtt.local");
        assert_eq!(shown["retries"], 3);
        assert_eq!(shown["api_key"], Value::Null);
        assert_eq!(shown["url"], "rtsp://***@cam.local/stream?***");
    }
}

//! Bearer-token authentication, checked before anything else a route does.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use warp::http::header::AUTHORIZATION;
use warp::http::HeaderMap;
use warp::{Filter, Rejection};

use super::error::ApiError;
use super::token::Access;

/// Passes requests that carry `Authorization: Bearer <token>` with the right token (or every
/// request when access is open); rejects the others with 401 before the route runs.
pub fn require(access: Access) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    let access = Arc::new(access);
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let access = access.clone();
            async move {
                // A header that is not visible ASCII cannot hold a token: treat it as malformed
                // (401), not as a server error.
                let header = headers
                    .get(AUTHORIZATION)
                    .map(|v| v.to_str().unwrap_or_default());
                check(&access, header).map_err(warp::reject::custom)
            }
        })
        .untuple_one()
}

fn check(access: &Access, header: Option<&str>) -> Result<(), ApiError> {
    let Access::Token(token) = access else {
        return Ok(());
    };
    let Some(header) = header else {
        return Err(ApiError::unauthorized(
            "missing Authorization header; send `Authorization: Bearer <token>`",
        ));
    };
    let presented = match header.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => {
            return Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ))
        }
    };
    // Constant time over the token's bytes: a wrong guess takes as long however much of it
    // matched. (Only a length mismatch returns early, which reveals the length alone.)
    if bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("wrong token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let access = Access::Token(Secret::new("0123456789abcdef0123"));
        assert!(check(&access, Some("Bearer 0123456789abcdef0123")).is_ok());
        assert!(check(&access, Some("bearer 0123456789abcdef0123")).is_ok());
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic 0123456789abcdef0123"),
            Some("Bearer 0123456789abcdef012"),
            Some("Bearer 0123456789abcdef01234"),
            Some("Bearer 0123456789abcdef0124"),
            Some("0123456789abcdef0123"),
        ] {
            let e = check(&access, bad).unwrap_err();
            assert_eq!(e.status, 401, "{bad:?}");
        }
        assert!(check(&Access::Open, None).is_ok());
    }
}

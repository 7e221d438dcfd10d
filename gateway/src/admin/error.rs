//! The one error shape of the admin API: `{"error": code, "message": text}`, and how every
//! rejection (unknown route, wrong method, oversize body, missing token) becomes it.

use std::convert::Infallible;

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::{header, StatusCode};
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::signalling::{OperatorError, Refusal};

/// An error answer. `error` is a stable code for programs, `message` a sentence for people;
/// for a bad request body it names the field at fault.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_field`, `unknown_pool`, `unauthorized`.
    #[schema(example = "unknown_pool")]
    pub error: String,
    /// What went wrong, for a person.
    #[schema(example = "no pool named \"lobby\"")]
    pub message: String,
}

/// A request that cannot be carried out, with the status it answers with.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl warp::reject::Reject for ApiError {}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_string(),
            message: self.message,
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"poolgate admin\""),
            );
        }
        response
    }
}

/// Operator errors from the pool server, as API errors. `field` names the request field the
/// error is about, when there is one.
pub fn from_operator(error: OperatorError, field: &str) -> ApiError {
    let message = error.to_string();
    match error {
        OperatorError::UnknownEndpoint(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_endpoint", message)
        }
        OperatorError::UnknownPool(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "unknown_pool", message)
        }
        OperatorError::PoolExists(_) => ApiError::new(StatusCode::CONFLICT, "pool_exists", message),
        OperatorError::DescriptionNotObject => {
            ApiError::bad_request("invalid_field", format!("{field}: {message}"))
        }
        OperatorError::Refused(Refusal::TooManyPools { .. }) => {
            ApiError::new(StatusCode::CONFLICT, "too_many_pools", message)
        }
        OperatorError::Refused(r) => {
            ApiError::bad_request("invalid_field", format!("{field}: {r}"))
        }
    }
}

/// Turns any rejection into the error shape. Registered last, so nothing leaves the admin
/// API in another format.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    use warp::reject;
    let error = if let Some(e) = rejection.find::<ApiError>() {
        e.clone()
    } else if rejection.find::<reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method; see /api/v1/openapi.json",
        )
    } else if rejection.is_not_found() {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route; see /api/v1/openapi.json",
        )
    } else {
        tracing::warn!("admin API: unexpected rejection {rejection:?}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{rejection:?}"),
        )
    };
    Ok(error.into_response())
}

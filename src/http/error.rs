//! The one place where errors become HTTP responses: `{"error": {"code", "message"}}`.
//!
//! Domain errors map to statuses here; warp's own rejections (unknown route, wrong method,
//! oversize body…) are mapped in `recover`. Internal errors are logged with their detail
//! and answered with a generic message, so nothing about the server leaks to clients.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Rejection;

use crate::error::Error;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For 429: when the client may try again (sent as `Retry-After`, whole seconds).
    pub retry_after_ms: Option<u64>,
}

/// The body of every error response (the OpenAPI description is derived from it).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable and machine-readable: match on it (README.md lists every code).
    pub code: &'a str,
    /// For people; may change.
    pub message: &'a str,
    /// For 429 only: when the client may try again, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::Gone { .. } => StatusCode::GONE,
            Error::RateLimited { retry_after_ms, .. } => {
                let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, e.code(), e.to_string());
                e.retry_after_ms = *retry_after_ms;
                return e;
            }
            Error::Unavailable(detail) => {
                tracing::warn!("{detail}");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service is temporarily unavailable; retry shortly",
                );
            }
            Error::Internal(detail) => {
                tracing::error!("{detail}");
                return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error");
            }
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                retry_after_ms: self.retry_after_ms,
            },
        };
        let mut res = warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        let headers = res.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert("www-authenticate", warp::http::HeaderValue::from_static("Bearer"));
        }
        if let Some(ms) = self.retry_after_ms {
            headers.insert("retry-after", warp::http::HeaderValue::from(ms.div_ceil(1000).max(1)));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert("retry-after", warp::http::HeaderValue::from_static("5"));
        }
        res
    }
}

/// Handlers return `Result<Response, ApiError>`; routes end in `.map(reply)`.
pub fn reply(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(Reply::into_response)
}

/// Maps what no route answered (or warp refused) to the JSON error shape.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    use warp::reject;
    let err = if rejection.is_not_found() {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    } else if rejection.find::<reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this endpoint",
        )
    } else if rejection.find::<reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        )
    } else if rejection.find::<reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a Content-Length header is required",
        )
    } else if rejection.find::<reject::UnsupportedMediaType>().is_some() {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json",
        )
    } else if let Some(e) = rejection.find::<warp::filters::cors::CorsForbidden>() {
        ApiError::new(StatusCode::FORBIDDEN, "cors_forbidden", format!("CORS: {e}"))
    } else if rejection.find::<reject::InvalidQuery>().is_some() {
        ApiError::bad_request("invalid_query", "the query string is malformed")
    } else if let Some(e) = rejection.find::<reject::InvalidHeader>() {
        ApiError::bad_request("invalid_header", format!("header {} is invalid", e.name()))
    } else if let Some(e) = rejection.find::<reject::MissingHeader>() {
        ApiError::bad_request("missing_header", format!("header {} is required", e.name()))
    } else {
        tracing::error!(?rejection, "unhandled rejection");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
    };
    Ok(err.into_response())
}

//! Liveness and readiness probes, at the root (for load balancers) and under `/api/v1`.

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::ErrorDetail;
use super::{json, with_state};
use crate::app::AppState;

/// `GET /healthz`: the process runs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(value_type = String, example = "ok")]
    pub status: &'static str,
}

/// `GET /readyz`: whether the database answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(value_type = String, example = "ready")]
    pub status: &'static str,
    /// `ok` or `unreachable`.
    #[schema(value_type = String, example = "ok")]
    pub database: &'static str,
    /// Only when unavailable: the same shape as every error (`code` = `unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail<'static>>,
}

pub fn routes(state: &AppState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let healthz = warp::path!("healthz").or(warp::path!("api" / "v1" / "healthz")).unify();
    let readyz = warp::path!("readyz").or(warp::path!("api" / "v1" / "readyz")).unify();
    // HEAD too: some load balancers probe with it. Spelled out at each route so that the
    // OpenAPI test, which reads the methods next to the paths, sees them.
    let health = healthz
        .and(warp::get().or(warp::head()).unify())
        .map(|| json(StatusCode::OK, &Health { status: "ok" }));
    let ready = readyz
        .and(warp::get().or(warp::head()).unify())
        .and(with_state(state))
        .then(|state: AppState| async move {
            if state.db.is_ready().await {
                let ready = Readiness {
                    status: "ready",
                    database: "ok",
                    error: None,
                };
                json(StatusCode::OK, &ready)
            } else {
                let unavailable = Readiness {
                    status: "unavailable",
                    database: "unreachable",
                    error: Some(ErrorDetail {
                        code: "unavailable",
                        message: "the database is unreachable",
                        retry_after_ms: None,
                    }),
                };
                let mut res = json(StatusCode::SERVICE_UNAVAILABLE, &unavailable);
                res.headers_mut()
                    .insert("retry-after", warp::http::HeaderValue::from_static("5"));
                res
            }
        });
    health.or(ready).unify()
}

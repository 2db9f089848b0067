//! Liveness and readiness probes, at the root (for load balancers) and under `/api/v1`.

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::{json, with_state};
use crate::app::AppState;

pub fn routes(state: &AppState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let healthz = warp::path!("healthz").or(warp::path!("api" / "v1" / "healthz")).unify();
    let readyz = warp::path!("readyz").or(warp::path!("api" / "v1" / "readyz")).unify();
    // HEAD too: some load balancers probe with it.
    let get_or_head = || warp::get().or(warp::head()).unify();
    let health = healthz
        .and(get_or_head())
        .map(|| json(StatusCode::OK, &json!({"status": "ok"})));
    let ready = readyz
        .and(get_or_head())
        .and(with_state(state))
        .then(|state: AppState| async move {
            if state.db.is_ready().await {
                json(StatusCode::OK, &json!({"status": "ready", "database": "ok"}))
            } else {
                let mut res = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "unavailable", "database": "unreachable",
                        "error": {"code": "unavailable", "message": "the database is unreachable"}}),
                );
                res.headers_mut()
                    .insert("retry-after", warp::http::HeaderValue::from_static("5"));
                res
            }
        });
    health.or(ready).unify()
}

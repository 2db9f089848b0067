//! `/api/v1/sessions`: list my live sessions, revoke one.

use serde::Serialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::reply;
use super::{authenticate, bearer, json, no_content, with_state, ApiError};
use crate::app::AppState;
use crate::auth::SessionView;
use crate::error::Error;

pub fn routes(state: &AppState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let list = warp::path!("api" / "v1" / "sessions")
        .and(warp::get())
        .and(bearer())
        .and(with_state(state))
        .then(list)
        .map(reply);
    let revoke = warp::path!("api" / "v1" / "sessions" / String)
        .and(warp::delete())
        .and(bearer())
        .and(with_state(state))
        .then(revoke)
        .map(reply);
    list.or(revoke).unify()
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Sessions {
    items: Vec<SessionView>,
}

async fn list(auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    let me = authenticate(&state, auth).await?;
    Ok(json(
        StatusCode::OK,
        &Sessions {
            items: state.accounts.sessions(&me).await?,
        },
    ))
}

async fn revoke(id: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    let me = authenticate(&state, auth).await?;
    let id = Uuid::parse_str(&id).map_err(|_| Error::not_found("session_not_found", "no such live session"))?;
    state.accounts.revoke_session(&me, id).await?;
    Ok(no_content())
}

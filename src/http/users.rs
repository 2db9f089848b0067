//! `/api/v1/users/*`: my profile, my password, my account; others' public profiles; search.

use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::reply;
use super::{
    authenticate, bearer, body, double_option, json, no_content, param_limit, parse_json, path_param, query,
    with_state, ApiError, Body, Query,
};
use crate::app::AppState;
use crate::users::{ProfileUpdate, SEARCH_LIMIT};

pub fn routes(state: &AppState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let me = warp::path!("api" / "v1" / "users" / "me");
    let get_me = me
        .and(warp::get())
        .and(bearer())
        .and(with_state(state))
        .then(get_me)
        .map(reply);
    let patch_me = me
        .and(warp::patch())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(patch_me)
        .map(reply);
    let delete_me = me
        .and(warp::delete())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(delete_me)
        .map(reply);
    let password = warp::path!("api" / "v1" / "users" / "me" / "password")
        .and(warp::put())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(change_password)
        .map(reply);
    let profile = warp::path!("api" / "v1" / "users" / String)
        .and(warp::get())
        .and(bearer())
        .and(with_state(state))
        .then(profile)
        .map(reply);
    let search = warp::path!("api" / "v1" / "users")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(search)
        .map(reply);
    get_me
        .or(patch_me)
        .unify()
        .or(delete_me)
        .unify()
        .or(password)
        .unify()
        .or(profile)
        .unify()
        .or(search)
        .unify()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchMe {
    #[serde(default, deserialize_with = "double_option")]
    display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    avatar_url: Option<Option<String>>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangePassword {
    current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteMe {
    password: String,
}

async fn get_me(auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    let me = authenticate(&state, auth).await?;
    Ok(json(StatusCode::OK, &state.accounts.me(&me).await?))
}

async fn patch_me(auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    let me = authenticate(&state, auth).await?;
    let req: PatchMe = parse_json(body)?;
    let update = ProfileUpdate {
        display_name: req.display_name,
        bio: req.bio,
        avatar_url: req.avatar_url,
    };
    Ok(json(StatusCode::OK, &state.accounts.update_profile(&me, update).await?))
}

async fn delete_me(auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    let me = authenticate(&state, auth).await?;
    let req: DeleteMe = parse_json(body)?;
    state.accounts.delete_account(&me, &req.password).await?;
    Ok(no_content())
}

async fn change_password(auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    let me = authenticate(&state, auth).await?;
    let req: ChangePassword = parse_json(body)?;
    state
        .accounts
        .change_password(&me, &req.current_password, req.new_password)
        .await?;
    Ok(no_content())
}

async fn profile(username: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    authenticate(&state, auth).await?;
    Ok(json(
        StatusCode::OK,
        &state.accounts.public_profile(&path_param(&username)).await?,
    ))
}

async fn search(auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    let q = q?;
    authenticate(&state, auth).await?;
    let limit = param_limit(&q, SEARCH_LIMIT)?;
    let page = state
        .accounts
        .search_users(
            q.get("q").map(String::as_str),
            q.get("cursor").map(String::as_str),
            limit,
        )
        .await?;
    Ok(json(StatusCode::OK, &page))
}

//! `/api/v1/rooms/{id}/…` membership: join, leave, members and roles, kicks and bans.

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::reply;
use super::{
    bearer, body, in_room, json, no_content, param_limit, parse_json, path_param, query, with_state, ApiError, Body,
    Query,
};
use crate::app::AppState;
use crate::chat::{Role, MEMBERS_LIMIT};

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    let join = warp::path!("api" / "v1" / "rooms" / String / "join")
        .and(warp::post())
        .and(bearer())
        .and(with_state(state))
        .then(join)
        .map(reply);
    let leave = warp::path!("api" / "v1" / "rooms" / String / "leave")
        .and(warp::post())
        .and(bearer())
        .and(with_state(state))
        .then(leave)
        .map(reply);
    let members = warp::path!("api" / "v1" / "rooms" / String / "members")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(members)
        .map(reply);
    let add = warp::path!("api" / "v1" / "rooms" / String / "members")
        .and(warp::post())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(add)
        .map(reply);
    let set_role = warp::path!("api" / "v1" / "rooms" / String / "members" / String)
        .and(warp::patch())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(set_role)
        .map(reply);
    let kick = warp::path!("api" / "v1" / "rooms" / String / "members" / String)
        .and(warp::delete())
        .and(bearer())
        .and(with_state(state))
        .then(kick)
        .map(reply);
    let bans = warp::path!("api" / "v1" / "rooms" / String / "bans")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(bans)
        .map(reply);
    let ban = warp::path!("api" / "v1" / "rooms" / String / "bans")
        .and(warp::post())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(ban)
        .map(reply);
    let unban = warp::path!("api" / "v1" / "rooms" / String / "bans" / String)
        .and(warp::delete())
        .and(bearer())
        .and(with_state(state))
        .then(unban)
        .map(reply);
    join.or(leave)
        .unify()
        .or(members)
        .unify()
        .or(add)
        .unify()
        .or(set_role)
        .unify()
        .or(kick)
        .unify()
        .or(bans)
        .unify()
        .or(ban)
        .unify()
        .or(unban)
        .unify()
        .boxed()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AddMember {
    username: String,
    /// `member` (the default) or `admin`.
    #[schema(pattern = "^(member|admin)$")]
    role: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetRole {
    /// `owner` transfers ownership.
    #[schema(pattern = "^(owner|admin|member)$")]
    role: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Ban {
    username: String,
    #[schema(max_length = 500)]
    reason: Option<String>,
}

fn created(new: bool) -> StatusCode {
    if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

async fn join(id: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        Ok(json(StatusCode::OK, &state.chat.join(actor, room).await?))
    })
    .await
}

async fn leave(id: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        state.chat.leave(actor, room).await?;
        Ok(no_content())
    })
    .await
}

async fn members(id: String, auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let q = q?;
        let limit = param_limit(&q, MEMBERS_LIMIT)?;
        let page = state
            .chat
            .members(actor, room, q.get("cursor").map(String::as_str), limit)
            .await?;
        Ok(json(StatusCode::OK, &page))
    })
    .await
}

async fn add(id: String, auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let req: AddMember = parse_json(body)?;
        let role = req.role.as_deref().map(str::parse::<Role>).transpose()?;
        let (member, new) = state.chat.add_member(actor, room, &req.username, role).await?;
        Ok(json(created(new), &member))
    })
    .await
}

async fn set_role(
    id: String,
    username: String,
    auth: Option<String>,
    body: Body,
    state: AppState,
) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let req: SetRole = parse_json(body)?;
        let member = state
            .chat
            .set_role(actor, room, &path_param(&username), req.role.parse()?)
            .await?;
        Ok(json(StatusCode::OK, &member))
    })
    .await
}

async fn kick(id: String, username: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        state.chat.kick(actor, room, &path_param(&username)).await?;
        Ok(no_content())
    })
    .await
}

async fn bans(id: String, auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let q = q?;
        let limit = param_limit(&q, MEMBERS_LIMIT)?;
        let page = state
            .chat
            .bans(actor, room, q.get("cursor").map(String::as_str), limit)
            .await?;
        Ok(json(StatusCode::OK, &page))
    })
    .await
}

async fn ban(id: String, auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let req: Ban = parse_json(body)?;
        let (ban, new) = state
            .chat
            .ban(actor, room, &req.username, req.reason.as_deref())
            .await?;
        Ok(json(created(new), &ban))
    })
    .await
}

async fn unban(id: String, username: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        state.chat.unban(actor, room, &path_param(&username)).await?;
        Ok(no_content())
    })
    .await
}

//! Invite links: `/api/v1/rooms/{id}/invites…` for the room's owner and admins, and
//! `POST /api/v1/invites/{code}/accept` for whoever holds a code. The rules are in
//! `chat::invites`.

use std::borrow::Cow;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::reply;
use super::{
    actor, bearer, body, in_room, json, no_content, param_limit, parse_json, path_param, query, with_state, ApiError,
    Body, Query,
};
use crate::app::AppState;
use crate::chat::{InviteTerms, INVITES_LIMIT};

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    let create = warp::path!("api" / "v1" / "rooms" / String / "invites")
        .and(warp::post())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(create)
        .map(reply);
    let list = warp::path!("api" / "v1" / "rooms" / String / "invites")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(list)
        .map(reply);
    let revoke = warp::path!("api" / "v1" / "rooms" / String / "invites" / String)
        .and(warp::delete())
        .and(bearer())
        .and(with_state(state))
        .then(revoke)
        .map(reply);
    let accept = warp::path!("api" / "v1" / "invites" / String / "accept")
        .and(warp::post())
        .and(bearer())
        .and(with_state(state))
        .then(accept)
        .map(reply);
    create.or(list).unify().or(revoke).unify().or(accept).unify().boxed()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateInvite {
    /// Lifetime in seconds, 60 to 2592000 (30 days); absent or `null`: 604800 (7 days).
    #[schema(minimum = 60, maximum = 2592000)]
    expires_in_secs: Option<i64>,
    /// How many people may join with it, 1 to 10000; absent or `null`: no limit.
    #[schema(minimum = 1, maximum = 10000)]
    max_uses: Option<i64>,
}

async fn create(id: String, auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let req: CreateInvite = parse_json(body)?;
        let terms = InviteTerms::parse(req.expires_in_secs, req.max_uses)?;
        let invite = state.chat.create_invite(actor, room, terms).await?;
        Ok(json(StatusCode::CREATED, &invite))
    })
    .await
}

async fn list(id: String, auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let q = q?;
        let limit = param_limit(&q, INVITES_LIMIT)?;
        let page = state
            .chat
            .invites(actor, room, q.get("cursor").map(String::as_str), limit)
            .await?;
        Ok(json(StatusCode::OK, &page))
    })
    .await
}

async fn revoke(id: String, code: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        state.chat.revoke_invite(actor, room, &path_param(&code)).await?;
        Ok(no_content())
    })
    .await
}

async fn accept(code: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    let actor = actor(&state, auth).await?;
    let room = state.chat.accept_invite(&actor, &path_param(&code)).await?;
    Ok(json(StatusCode::OK, &room))
}

/// `path` as the request log may show it: an invite code is a bearer secret, so only its first
/// four characters are kept (`/api/v1/invites/AbCd…/accept`). Other paths are left alone.
pub(super) fn redact(path: &str) -> Cow<'_, str> {
    let segments: Vec<&str> = path.split('/').collect();
    let at = match segments.as_slice() {
        ["", "api", "v1", "invites", _, ..] => 4,
        ["", "api", "v1", "rooms", _, "invites", _, ..] => 6,
        _ => return Cow::Borrowed(path),
    };
    let mut out: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
    let code = &segments[at];
    out[at] = format!("{}…", code.get(..4).unwrap_or(""));
    Cow::Owned(out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn request_logs_keep_only_a_codes_prefix() {
        let code = "AbCdEfGhIjKlMnOpQrStUv";
        assert_eq!(
            redact(&format!("/api/v1/invites/{code}/accept")),
            "/api/v1/invites/AbCd…/accept"
        );
        let room = "0b9e0c55-6f0c-4e4e-9d4b-2a2f3c1b2a10";
        assert_eq!(
            redact(&format!("/api/v1/rooms/{room}/invites/{code}")),
            format!("/api/v1/rooms/{room}/invites/AbCd…")
        );
        assert_eq!(redact("/api/v1/invites/é/accept"), "/api/v1/invites/…/accept");
        for other in ["/api/v1/rooms", "/api/v1/rooms/x/invites", "/api/v1/users/me"] {
            assert_eq!(redact(other), other);
        }
    }
}

//! `/api/v1/rooms/{id}/messages` and `/read`: post (idempotent by `client_msg_id`), history,
//! edit, delete, and the read marker.

use std::collections::HashMap;

use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply as _, Response};
use warp::Filter;

use super::error::reply;
use super::{
    bearer, body, in_room, json, no_content, param_limit, parse_json, query, with_state, ApiError, Body, Query,
};
use crate::app::AppState;
use crate::chat::{HistoryPage, MESSAGES_LIMIT};
use crate::error::Error;

pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    let post = warp::path!("api" / "v1" / "rooms" / String / "messages")
        .and(warp::post())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(post)
        .map(reply);
    let history = warp::path!("api" / "v1" / "rooms" / String / "messages")
        .and(warp::get())
        .and(bearer())
        .and(query())
        .and(with_state(state))
        .then(history)
        .map(reply);
    let edit = warp::path!("api" / "v1" / "rooms" / String / "messages" / String)
        .and(warp::patch())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(edit)
        .map(reply);
    let delete = warp::path!("api" / "v1" / "rooms" / String / "messages" / String)
        .and(warp::delete())
        .and(bearer())
        .and(with_state(state))
        .then(delete)
        .map(reply);
    let read = warp::path!("api" / "v1" / "rooms" / String / "read")
        .and(warp::put())
        .and(bearer())
        .and(body(state))
        .and(with_state(state))
        .then(read)
        .map(reply);
    post.or(history)
        .unify()
        .or(edit)
        .unify()
        .or(delete)
        .unify()
        .or(read)
        .unify()
        .boxed()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PostMessage {
    /// 1–4000 characters, not blank.
    #[schema(min_length = 1, max_length = 4000)]
    body: String,
    /// The sender's idempotency key: a repeat stores nothing and returns the original.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    client_msg_id: Option<String>,
    /// The seq of the earlier message of this room that this one replies to (not deleted).
    #[schema(minimum = 1)]
    reply_to: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EditMessage {
    #[schema(min_length = 1, max_length = 4000)]
    body: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MarkRead {
    /// Up to the room's `last_seq`.
    #[schema(minimum = 0)]
    seq: i64,
}

/// A `seq` in a path: anything but a positive number names no message.
pub(super) fn seq_param(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| Error::not_found("message_not_found", "no such message in this room").into())
}

/// Which messages a history request asks for.
enum Wanted {
    Page(HistoryPage),
    /// `around=SEQ`: the messages around one (`Chat::context`).
    Around(i64),
}

/// `before=SEQ` (newest first), `after=SEQ` (oldest first) or `around=SEQ` (the messages
/// around one, oldest first); none means the newest.
fn history_page(q: &HashMap<String, String>) -> Result<Wanted, ApiError> {
    let seq = |name: &str| -> Result<Option<i64>, ApiError> {
        q.get(name)
            .map(|v| {
                v.parse::<i64>().ok().filter(|s| *s >= 0).ok_or_else(|| {
                    Error::invalid(
                        "invalid_seq",
                        format!("{name} must be a seq (a whole number, 0 or more)"),
                    )
                    .into()
                })
            })
            .transpose()
    };
    let around = seq("around")?;
    match (seq("before")?, seq("after")?, around) {
        (None, None, Some(0)) => {
            Err(Error::invalid("invalid_seq", "around must be a message's seq (1 or more)").into())
        }
        (None, None, Some(s)) => Ok(Wanted::Around(s)),
        (_, _, Some(_)) => Err(Error::invalid("invalid_query", "give around without before or after").into()),
        (Some(_), Some(_), None) => Err(Error::invalid("invalid_query", "give before or after, not both").into()),
        (Some(b), None, None) => Ok(Wanted::Page(HistoryPage::Before(b))),
        (None, Some(a), None) => Ok(Wanted::Page(HistoryPage::After(a))),
        (None, None, None) => Ok(Wanted::Page(HistoryPage::Before(i64::MAX))),
    }
}

async fn post(id: String, auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let req: PostMessage = parse_json(body)?;
        let (message, new) = state
            .chat
            .post(actor, room, &req.body, req.client_msg_id.as_deref(), req.reply_to)
            .await?;
        let mut res = json(StatusCode::CREATED, &message);
        if !new {
            // A retry gets the original's response, marked as such (the header Stripe uses).
            res.headers_mut()
                .insert("idempotent-replayed", warp::http::HeaderValue::from_static("true"));
        }
        Ok(res.into_response())
    })
    .await
}

async fn history(id: String, auth: Option<String>, q: Query, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let q = q?;
        let wanted = history_page(&q)?;
        let limit = param_limit(&q, MESSAGES_LIMIT)?;
        let page = match wanted {
            Wanted::Page(page) => state.chat.history(actor, room, page, limit).await?,
            Wanted::Around(seq) => state.chat.context(actor, room, seq, limit).await?,
        };
        Ok(json(StatusCode::OK, &page))
    })
    .await
}

async fn edit(
    id: String,
    seq: String,
    auth: Option<String>,
    body: Body,
    state: AppState,
) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let seq = seq_param(&seq)?;
        let req: EditMessage = parse_json(body)?;
        Ok(json(
            StatusCode::OK,
            &state.chat.edit_message(actor, room, seq, &req.body).await?,
        ))
    })
    .await
}

async fn delete(id: String, seq: String, auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        state.chat.delete_message(actor, room, seq_param(&seq)?).await?;
        Ok(no_content())
    })
    .await
}

async fn read(id: String, auth: Option<String>, body: Body, state: AppState) -> Result<Response, ApiError> {
    in_room(&state, auth, &id, async |actor, room| {
        let req: MarkRead = parse_json(body)?;
        Ok(json(
            StatusCode::OK,
            &state.chat.mark_read(actor, room, req.seq, None).await?,
        ))
    })
    .await
}

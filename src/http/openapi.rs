//! The OpenAPI 3.1 description of the HTTP API, served at `GET /api/v1/openapi.json`.
//!
//! The schemas are derived (`utoipa::ToSchema`) from the very types the handlers read and write,
//! so they follow every serde attribute and cannot drift from the wire. What the derive cannot
//! see — warp's routing — is declared here, one `#[utoipa::path]` per route and method, with
//! every status the handler answers and the error codes it may carry. `tests/api/openapi.rs`
//! reads the route definitions in `src/` and fails when one is missing here, and calls every
//! operation declared here on a live server to check that it is routed.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use super::accounts::{AuthResponse, LoginRequest, RefreshRequest, RegisterRequest};
use super::error::{ErrorBody, ErrorDetail};
use super::health::{Health, Readiness};
use super::invites::CreateInvite;
use super::members::{AddMember, Ban, SetRole};
use super::messages::{EditMessage, MarkRead, PostMessage};
use super::rooms::{CreateRoom, OpenDirect, PatchRoom};
use super::sessions::Sessions;
use super::users::{ChangePassword, DeleteMe, PatchMe};
use crate::admin::types::{CloseRequest, ConnectionInfo, NodeStats, PoolStats, RoomInfo, Stats, Totals};
use crate::auth::{SessionView, TokenPair};
use crate::chat::audit::AuditEntry;
use crate::chat::Mention;
use crate::chat::{BanView, MemberView, MessageView, ReadState, Role, RoomView, Visibility};
use crate::chat::{InviteState, InviteView};
use crate::chat::{MessageReactions, Reaction, ReplyTo};
use crate::chat::{SearchHit, SearchRoom};
use crate::page::Page;
use crate::users::{PublicProfile, User};

/// `GET /api/v1/openapi.json` (the description, built once at start-up), and the 405 for a
/// method a described path does not take.
pub fn routes() -> BoxedFilter<(Response,)> {
    let doc = std::sync::Arc::new(ApiDoc::openapi());
    warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(move || super::json(warp::http::StatusCode::OK, &*doc))
        .or(method_not_allowed())
        .unify()
        .boxed()
}

/// The answer to a request whose path is served but whose method is not: 405 with the `Allow`
/// header RFC 9110 §15.5.6 requires, which warp's own rejection cannot give (it does not know
/// the path's other methods). The description is the table of methods per path; the test in
/// `tests/api/openapi.rs` keeps it equal to the routes. It answers only for a method no route
/// takes, so where it sits among the routes does not matter. Anything else is left to `recover`.
fn method_not_allowed() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let table = std::sync::Arc::new(methods_by_path(&ApiDoc::openapi()));
    warp::path::full()
        .and(warp::method())
        .and_then(move |path: warp::path::FullPath, method: warp::http::Method| {
            let allowed = allowed_methods(&table, path.as_str());
            async move {
                match allowed {
                    Some(allow) if !allow.split(", ").any(|m| m == method.as_str()) => {
                        let mut res = warp::reply::Reply::into_response(super::ApiError::new(
                            warp::http::StatusCode::METHOD_NOT_ALLOWED,
                            "method_not_allowed",
                            format!("{method} is not allowed on this endpoint; allowed: {allow}"),
                        ));
                        if let Ok(value) = warp::http::HeaderValue::from_str(&allow) {
                            res.headers_mut().insert("allow", value);
                        }
                        Ok(res)
                    }
                    _ => Err(warp::reject::not_found()),
                }
            }
        })
}

/// Each described path as its segments (`None` for a parameter) with its methods.
type MethodTable = Vec<(Vec<Option<String>>, Vec<String>)>;

fn methods_by_path(doc: &utoipa::openapi::OpenApi) -> MethodTable {
    let value = serde_json::to_value(&doc.paths).unwrap_or_default();
    let Some(paths) = value.as_object() else {
        return Vec::new();
    };
    paths
        .iter()
        .map(|(path, item)| {
            let segments = path
                .split('/')
                .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                .collect();
            let methods = item
                .as_object()
                .map(|ops| {
                    ops.keys()
                        .filter(|m| {
                            ["get", "head", "post", "put", "patch", "delete", "options", "trace"].contains(&m.as_str())
                        })
                        .map(|m| m.to_ascii_uppercase())
                        .collect()
                })
                .unwrap_or_default();
            (segments, methods)
        })
        .collect()
}

/// The methods of every described path `path` matches (`GET, PATCH, DELETE`), or `None` when it
/// matches none.
fn allowed_methods(table: &MethodTable, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut allowed: Vec<&str> = Vec::new();
    for (template, methods) in table {
        let matches = template.len() == segments.len()
            && template
                .iter()
                .zip(&segments)
                .all(|(t, s)| t.as_deref().map_or(!s.is_empty(), |t| t == *s));
        if matches {
            allowed.extend(methods.iter().map(String::as_str));
        }
    }
    if allowed.is_empty() {
        return None;
    }
    let order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];
    allowed.sort_by_key(|m| order.iter().position(|o| o == m));
    allowed.dedup();
    Some(allowed.join(", "))
}

/// The whole description (`ApiDoc::openapi()`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "chatd",
        description = "A self-hosted real-time chat server. Errors are `{\"error\": {\"code\", \"message\"}}`: match on `code` (README.md lists them all). The WebSocket protocol spoken after `GET /api/v1/ws` is described in docs/protocol.md.",
    ),
    paths(
        operations::openapi_json,
        operations::register,
        operations::login,
        operations::refresh,
        operations::logout,
        operations::get_me,
        operations::patch_me,
        operations::delete_me,
        operations::change_password,
        operations::profile,
        operations::search_users,
        operations::list_sessions,
        operations::revoke_session,
        operations::create_room,
        operations::list_rooms,
        operations::get_room,
        operations::patch_room,
        operations::archive_room,
        operations::open_direct,
        operations::join_room,
        operations::leave_room,
        operations::list_members,
        operations::add_member,
        operations::set_role,
        operations::kick,
        operations::list_bans,
        operations::ban,
        operations::unban,
        operations::post_message,
        operations::history,
        operations::edit_message,
        operations::delete_message,
        operations::mark_read,
        operations::healthz,
        operations::api_healthz,
        operations::readyz,
        operations::api_readyz,
        operations::metrics,
        operations::admin_stats,
        operations::admin_connections,
        operations::admin_close_connection,
        operations::admin_rooms,
        operations::admin_archive_room,
        operations::admin_disable_user,
        operations::admin_enable_user,
        operations::admin_stream,
        operations::websocket,
        operations::add_reaction,
        operations::remove_reaction,
        operations::search_messages,
        operations::create_invite,
        operations::list_invites,
        operations::revoke_invite,
        operations::accept_invite,
        operations::room_audit,
        operations::admin_audit,
    ),
    components(
        schemas(
            ErrorBody, ErrorDetail, Health, Readiness, User, PublicProfile, TokenPair, SessionView,
            Visibility, Role, RoomView, MemberView, BanView, MessageView, ReadState,
            Stats, NodeStats, PoolStats, Totals, ConnectionInfo, RoomInfo, CloseRequest,
            ReplyTo, Reaction, MessageReactions,
            SearchHit, SearchRoom,
            InviteView, InviteState, CreateInvite,
            AuditEntry, crate::db::audit::AuditAction,
            Mention,
        ),
        responses(
            operations::Unauthorized,
            operations::BadBody,
            operations::TooLarge,
            operations::TooSlow,
            operations::UnsupportedMediaType,
            operations::Unavailable,
        ),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, login, token refresh, logout"),
        (name = "users", description = "My account, profiles, search"),
        (name = "sessions", description = "My signed-in sessions"),
        (name = "rooms", description = "Rooms and direct conversations"),
        (name = "members", description = "Membership, roles, kicks and bans"),
        (name = "messages", description = "Messages and read markers"),
        (name = "admin", description = "For server administrators (docs/admin.md)"),
        (name = "operations", description = "Probes, metrics, this description"),
        (name = "websocket", description = "The WebSocket gateway (docs/protocol.md)"),
    ),
)]
pub struct ApiDoc;

/// The `bearer` security scheme: `Authorization: Bearer <access_token>`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The access_token of /auth/register, /auth/login or /auth/refresh (valid 15 minutes by default)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The path declarations. No function here is called: each is the anchor of one operation
/// (utoipa reads its attribute), and the response types exist only to be described.
#[allow(dead_code)]
mod operations {
    use super::*;

    // Responses shared by many operations. Each wraps the one error body; the description says
    // which codes it carries.

    /// No usable access token.
    #[derive(ToResponse)]
    #[response(
        description = "No usable access token: `unauthorized` (no bearer token), `invalid_token`, `token_expired`, `session_revoked`, `session_expired`. Sets `WWW-Authenticate: Bearer`."
    )]
    pub(super) struct Unauthorized(ErrorBody<'static>);

    /// A request body that is not a JSON object of the expected shape.
    #[derive(ToResponse)]
    #[response(
        description = "The body is not what the operation takes: `invalid_json` (not JSON, or no body), `invalid_request` (not a JSON object, a missing field, a wrong type, an unknown field), `invalid_body` (it could not be read)."
    )]
    pub(super) struct BadBody(ErrorBody<'static>);

    /// Over `server.max_body_bytes`.
    #[derive(ToResponse)]
    #[response(description = "`payload_too_large`: the body exceeds `server.max_body_bytes` (64 KiB by default).")]
    pub(super) struct TooLarge(ErrorBody<'static>);

    /// A body that does not arrive in time.
    #[derive(ToResponse)]
    #[response(
        description = "`request_timeout`: the body did not arrive whole within `server.body_read_timeout_secs` (30 s by default)."
    )]
    pub(super) struct TooSlow(ErrorBody<'static>);

    /// A body declared as something else than JSON.
    #[derive(ToResponse)]
    #[response(
        description = "`unsupported_media_type`: the body is declared with a `Content-Type` other than `application/json` or `…+json` (no `Content-Type` is read as JSON)."
    )]
    pub(super) struct UnsupportedMediaType(ErrorBody<'static>);

    /// The database cannot be reached.
    #[derive(ToResponse)]
    #[response(
        description = "`unavailable`: the database cannot be reached (or too many logins are queued for hashing); retry after `Retry-After` seconds."
    )]
    pub(super) struct Unavailable(ErrorBody<'static>);

    /// This OpenAPI 3.1 description.
    #[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
        responses((status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json", body = Object)))]
    fn openapi_json() {}

    /// Create an account and sign in.
    #[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
        responses(
            (status = 201, description = "The account and a first session's tokens", body = AuthResponse),
            (status = 400, response = BadBody),
            (status = 409, description = "`username_taken` (also by a disabled or deleted-later account)", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_username`, `invalid_password`, `invalid_display_name`, `invalid_input`", body = ErrorBody),
            (status = 429, description = "`rate_limited`: over `limits.registrations_per_ip_per_hour` for this client address; `Retry-After` and `error.retry_after_ms` say when to retry", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Seconds"))),
            (status = 503, response = Unavailable),
        ))]
    fn register() {}

    /// Sign in: a new session.
    #[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
        responses(
            (status = 200, description = "The account and the new session's tokens", body = AuthResponse),
            (status = 400, response = BadBody),
            (status = 401, description = "`invalid_credentials` (the same for a wrong username or password)", body = ErrorBody),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_input` (a value the database refuses, e.g. a NUL byte)", body = ErrorBody),
            (status = 429, description = "`rate_limited` (over `limits.login_attempts_per_ip_per_min` for this client address) or `login_throttled` (too many failed logins for this username: it backs off, the password is not checked); `Retry-After` and `error.retry_after_ms` say when to retry", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Seconds"))),
            (status = 503, response = Unavailable),
        ))]
    fn login() {}

    /// Spend a refresh token for a new token pair (it rotates on every use).
    #[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
        responses(
            (status = 200, description = "New tokens for the same session", body = AuthResponse),
            (status = 400, response = BadBody),
            (status = 401, description = "`invalid_refresh_token`, `refresh_token_reused` (the session is revoked), `refresh_token_expired`, `session_revoked`, `session_expired`", body = ErrorBody),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn refresh() {}

    /// End this session: its tokens stop working.
    #[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
        responses(
            (status = 204, description = "Signed out"),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn logout() {}

    /// My account.
    #[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
        responses(
            (status = 200, description = "My account", body = User),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn get_me() {}

    /// Edit my profile: an absent field is unchanged, `null` or `""` clears it.
    #[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])), request_body = PatchMe,
        responses(
            (status = 200, description = "My account as changed", body = User),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_display_name`, `invalid_bio`, `invalid_avatar_url`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn patch_me() {}

    /// Delete my account and its sessions (my messages stay, with no author).
    #[utoipa::path(delete, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])), request_body = DeleteMe,
        responses(
            (status = 204, description = "The account is gone"),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`wrong_password`, `account_disabled`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn delete_me() {}

    /// Change my password; my other sessions are revoked.
    #[utoipa::path(put, path = "/api/v1/users/me/password", tag = "users", security(("bearer" = [])), request_body = ChangePassword,
        responses(
            (status = 204, description = "Changed"),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`wrong_password` (the current password check failed), `account_disabled`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_password`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn change_password() {}

    /// Someone's public profile.
    #[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users", security(("bearer" = [])),
        params(("username" = String, Path, description = "A username (any case)")),
        responses(
            (status = 200, description = "The profile", body = PublicProfile),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 404, description = "`user_not_found`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn profile() {}

    /// Search users by username prefix or part of a display name.
    #[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
        params(
            ("q" = Option<String>, Query, description = "A username prefix or part of a display name"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1–100, default 20"),
            ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ),
        responses(
            (status = 200, description = "One page of profiles", body = Page<PublicProfile>),
            (status = 400, description = "`invalid_query` (a malformed query string)", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 422, description = "`invalid_limit`, `invalid_cursor`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn search_users() {}

    /// My live sessions.
    #[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", security(("bearer" = [])),
        responses(
            (status = 200, description = "My sessions; `current` marks the one asking", body = Sessions),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn list_sessions() {}

    /// Revoke one of my sessions.
    #[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
        params(("id" = Uuid, Path, description = "A session's id")),
        responses(
            (status = 204, description = "Its tokens stop working"),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 404, description = "`session_not_found`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn revoke_session() {}

    /// Create a room; I am its owner.
    #[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])), request_body = CreateRoom,
        responses(
            (status = 201, description = "The room", body = RoomView),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 409, description = "`room_name_taken`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_room_name`, `invalid_topic`, `invalid_visibility`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn create_room() {}

    /// Public rooms and mine, by name, then my direct rooms.
    #[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])),
        params(
            ("mine" = Option<bool>, Query, description = "Only rooms I am a member of"),
            ("q" = Option<String>, Query, description = "Part of the name"),
            ("include_archived" = Option<bool>, Query, description = "Archived rooms too"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1–100, default 50"),
            ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ),
        responses(
            (status = 200, description = "One page of rooms", body = Page<RoomView>),
            (status = 400, description = "`invalid_query` (a malformed query string)", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 422, description = "`invalid_query` (not a boolean), `invalid_limit`, `invalid_cursor`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn list_rooms() {}

    /// A room I may read.
    #[utoipa::path(get, path = "/api/v1/rooms/{id}", tag = "rooms", security(("bearer" = [])),
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 200, description = "The room", body = RoomView),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found` (also for a private room I am not in)", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn get_room() {}

    /// Edit a room (owner, admins): an absent field is unchanged; `topic: null` or `""` clears it.
    #[utoipa::path(patch, path = "/api/v1/rooms/{id}", tag = "rooms", security(("bearer" = [])), request_body = PatchRoom,
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 200, description = "The room as changed", body = RoomView),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 409, description = "`room_name_taken`, `room_archived`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_room_name`, `invalid_topic`, `invalid_visibility`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn patch_room() {}

    /// Archive a room (owner): read-only, history kept.
    #[utoipa::path(delete, path = "/api/v1/rooms/{id}", tag = "rooms", security(("bearer" = [])),
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 204, description = "Archived"),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 409, description = "`room_archived`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn archive_room() {}

    /// Open (or find) my direct conversation with someone.
    #[utoipa::path(post, path = "/api/v1/dms", tag = "rooms", security(("bearer" = [])), request_body = OpenDirect,
        responses(
            (status = 200, description = "The existing direct room", body = RoomView),
            (status = 201, description = "A new direct room", body = RoomView),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 404, description = "`user_not_found`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`cannot_dm_self`, `invalid_username`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn open_direct() {}

    /// Join a public room (again: no change).
    #[utoipa::path(post, path = "/api/v1/rooms/{id}/join", tag = "members", security(("bearer" = [])),
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 200, description = "The room", body = RoomView),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`banned`, `forbidden` (a direct room), `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 409, description = "`room_archived`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn join_room() {}

    /// Leave a room.
    #[utoipa::path(post, path = "/api/v1/rooms/{id}/leave", tag = "members", security(("bearer" = [])),
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 204, description = "Left (the last member to leave archives the room)"),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 409, description = "`owner_must_transfer`, `direct_room`, `room_archived`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn leave_room() {}

    /// A room's members, by username.
    #[utoipa::path(get, path = "/api/v1/rooms/{id}/members", tag = "members", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
            ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ),
        responses(
            (status = 200, description = "One page of members", body = Page<MemberView>),
            (status = 400, description = "`invalid_query`", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 422, description = "`invalid_limit`, `invalid_cursor`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn list_members() {}

    /// Add (or invite) a user (owner, admins; only the owner adds admins).
    #[utoipa::path(post, path = "/api/v1/rooms/{id}/members", tag = "members", security(("bearer" = [])), request_body = AddMember,
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 200, description = "Already a member", body = MemberView),
            (status = 201, description = "Added", body = MemberView),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `user_not_found`", body = ErrorBody),
            (status = 409, description = "`user_banned`, `room_archived`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_role`, `invalid_username`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn add_member() {}

    /// Change a member's role (owner); `owner` transfers ownership.
    #[utoipa::path(patch, path = "/api/v1/rooms/{id}/members/{username}", tag = "members", security(("bearer" = [])), request_body = SetRole,
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("username" = String, Path, description = "A member's username"),
        ),
        responses(
            (status = 200, description = "The member", body = MemberView),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `member_not_found`", body = ErrorBody),
            (status = 409, description = "`room_archived`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_role`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn set_role() {}

    /// Kick a member ranked below me (kicking myself is leaving).
    #[utoipa::path(delete, path = "/api/v1/rooms/{id}/members/{username}", tag = "members", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("username" = String, Path, description = "A member's username"),
        ),
        responses(
            (status = 204, description = "Removed"),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `member_not_found`", body = ErrorBody),
            (status = 409, description = "`owner_must_transfer`, `direct_room`, `room_archived`", body = ErrorBody),
            (status = 422, description = "`invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn kick() {}

    /// A room's bans (owner, admins).
    #[utoipa::path(get, path = "/api/v1/rooms/{id}/bans", tag = "members", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
            ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ),
        responses(
            (status = 200, description = "One page of bans", body = Page<BanView>),
            (status = 400, description = "`invalid_query`", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 422, description = "`invalid_limit`, `invalid_cursor`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn list_bans() {}

    /// Ban a user (owner, admins); a banned member is removed.
    #[utoipa::path(post, path = "/api/v1/rooms/{id}/bans", tag = "members", security(("bearer" = [])), request_body = Ban,
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 200, description = "Already banned: the reason is updated", body = BanView),
            (status = 201, description = "Banned", body = BanView),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `user_not_found`", body = ErrorBody),
            (status = 409, description = "`direct_room`, `room_archived`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`cannot_ban_self`, `invalid_reason`, `invalid_username`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn ban() {}

    /// Lift a ban (owner, admins).
    #[utoipa::path(delete, path = "/api/v1/rooms/{id}/bans/{username}", tag = "members", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("username" = String, Path, description = "The banned user's username"),
        ),
        responses(
            (status = 204, description = "Lifted"),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `ban_not_found`", body = ErrorBody),
            (status = 409, description = "`room_archived`", body = ErrorBody),
            (status = 422, description = "`invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn unban() {}

    /// Post a message (members); idempotent by `client_msg_id`.
    #[utoipa::path(post, path = "/api/v1/rooms/{id}/messages", tag = "messages", security(("bearer" = [])), request_body = PostMessage,
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 201, description = "The message: new, or the original of a repeated `client_msg_id`", body = MessageView,
                headers(("Idempotent-Replayed" = String, description = "`true` when this answers a repeat and nothing was stored"))),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 409, description = "`room_archived`, `client_msg_id_reused` (used in another room), `reply_to_deleted`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_message`, `invalid_client_msg_id`, `invalid_reply_to` (no such message in this room), `invalid_input`", body = ErrorBody),
            (status = 429, description = "`rate_limited`: over `limits.messages_per_sec`; `Retry-After` and `error.retry_after_ms` say when to retry", body = ErrorBody,
                headers(("Retry-After" = u64, description = "Seconds"))),
            (status = 503, response = Unavailable),
        ))]
    fn post_message() {}

    /// History: `before` (or neither: the newest) newest first, `after` oldest first, `around` the
    /// messages around one, oldest first.
    #[utoipa::path(get, path = "/api/v1/rooms/{id}/messages", tag = "messages", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("before" = Option<i64>, Query, minimum = 0, description = "Messages before this seq, newest first (pass `next_cursor` back here)"),
            ("after" = Option<i64>, Query, minimum = 0, description = "Messages after this seq, oldest first (not with `before`)"),
            ("around" = Option<i64>, Query, minimum = 1, description = "Up to `limit` messages centred on this seq, oldest first, it included (with an even `limit`, one more before it; one side short of messages leaves more to the other); `next_cursor` is `null`. Not with `before` or `after`"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
        ),
        responses(
            (status = 200, description = "One page of messages", body = Page<MessageView>),
            (status = 400, description = "`invalid_query` (a malformed query string)", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `message_not_found` (no message at `around`)", body = ErrorBody),
            (status = 422, description = "`invalid_seq`, `invalid_query` (both `before` and `after`, or `around` with either), `invalid_limit`, `invalid_input`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn history() {}

    /// Edit my message.
    #[utoipa::path(patch, path = "/api/v1/rooms/{id}/messages/{seq}", tag = "messages", security(("bearer" = [])), request_body = EditMessage,
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("seq" = i64, Path, minimum = 1, description = "The message's seq (1, 2, 3… in its room)"),
        ),
        responses(
            (status = 200, description = "The message, with `edited_at`", body = MessageView),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden` (not its author), `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `message_not_found`", body = ErrorBody),
            (status = 409, description = "`message_deleted`, `room_archived`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_message`, `invalid_input`", body = ErrorBody),
            (status = 429, description = "`rate_limited`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn edit_message() {}

    /// Delete a message (its author, the owner, admins): it becomes a tombstone.
    #[utoipa::path(delete, path = "/api/v1/rooms/{id}/messages/{seq}", tag = "messages", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("seq" = i64, Path, minimum = 1, description = "The message's seq"),
        ),
        responses(
            (status = 204, description = "Deleted"),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `message_not_found`", body = ErrorBody),
            (status = 409, description = "`room_archived`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn delete_message() {}

    /// Move my read marker forward.
    #[utoipa::path(put, path = "/api/v1/rooms/{id}/read", tag = "messages", security(("bearer" = [])), request_body = MarkRead,
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 200, description = "My read marker", body = ReadState),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_seq` (negative, or past the room's `last_seq`)", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn mark_read() {}

    /// Liveness: 200 while the process runs.
    #[utoipa::path(method(get, head), path = "/healthz", tag = "operations",
        responses((status = 200, description = "Alive", body = Health)))]
    fn healthz() {}

    /// Liveness, under `/api/v1`.
    #[utoipa::path(method(get, head), path = "/api/v1/healthz", tag = "operations",
        responses((status = 200, description = "Alive", body = Health)))]
    fn api_healthz() {}

    /// Readiness: whether the database answers.
    #[utoipa::path(method(get, head), path = "/readyz", tag = "operations",
        responses(
            (status = 200, description = "Ready", body = Readiness),
            (status = 503, description = "The database is unreachable (`Retry-After: 5`)", body = Readiness),
        ))]
    fn readyz() {}

    /// Readiness, under `/api/v1`.
    #[utoipa::path(method(get, head), path = "/api/v1/readyz", tag = "operations",
        responses(
            (status = 200, description = "Ready", body = Readiness),
            (status = 503, description = "The database is unreachable (`Retry-After: 5`)", body = Readiness),
        ))]
    fn api_readyz() {}

    /// Prometheus metrics (OpenMetrics text); no credentials. Not here when `server.metrics_bind`
    /// serves it on an address of its own.
    #[utoipa::path(get, path = "/metrics", tag = "operations",
        responses(
            (status = 200, description = "The metrics (docs/admin.md#metrics)", body = String,
                content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            (status = 404, description = "`not_found`: served on `server.metrics_bind` instead", body = ErrorBody),
        ))]
    fn metrics() {}

    /// Every live node's figures and the totals (server administrators, operator tokens).
    #[utoipa::path(get, path = "/api/v1/admin/stats", tag = "admin", security(("bearer" = [])),
        responses(
            (status = 200, description = "The statistics", body = Stats),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`admin_required`, `account_disabled`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn admin_stats() {}

    /// Live WebSocket connections, oldest first.
    #[utoipa::path(get, path = "/api/v1/admin/connections", tag = "admin", security(("bearer" = [])),
        params(
            ("scope" = Option<String>, Query, pattern = "^(cluster|node)$", description = "`cluster` (every live node, the default) or `node` (this one)"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100"),
            ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ),
        responses(
            (status = 200, description = "One page of connections", body = Page<ConnectionInfo>),
            (status = 400, description = "`invalid_query` (an unknown parameter or scope, a malformed query string)", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`admin_required`, `account_disabled`", body = ErrorBody),
            (status = 422, description = "`invalid_limit`, `invalid_cursor`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn admin_connections() {}

    /// Close a connection: of this node (204), or of another live node named by `node` (202).
    #[utoipa::path(delete, path = "/api/v1/admin/connections/{id}", tag = "admin", security(("bearer" = [])),
        request_body(content = Option<CloseRequest>, description = "Optional; an empty body gives no reason"),
        params(
            ("id" = u64, Path, description = "A connection's id (unique on its node)"),
            ("node" = Option<Uuid>, Query, description = "The node that holds it; default: this one"),
        ),
        responses(
            (status = 202, description = "That node is told to close it"),
            (status = 204, description = "Closed"),
            (status = 400, description = "`invalid_query`, `invalid_json`, `invalid_request`, `invalid_body`", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`admin_required`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`connection_not_found`, `node_not_found`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_reason`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn admin_close_connection() {}

    /// Live rooms (subscribed on some node, or with messages in the last 10 minutes), by id.
    #[utoipa::path(get, path = "/api/v1/admin/rooms", tag = "admin", security(("bearer" = [])),
        params(
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100"),
            ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ),
        responses(
            (status = 200, description = "One page of rooms", body = Page<RoomInfo>),
            (status = 400, description = "`invalid_query`", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`admin_required`, `account_disabled`", body = ErrorBody),
            (status = 422, description = "`invalid_limit`, `invalid_cursor`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn admin_rooms() {}

    /// Archive any room.
    #[utoipa::path(post, path = "/api/v1/admin/rooms/{id}/archive", tag = "admin", security(("bearer" = [])),
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 204, description = "Archived"),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`admin_required`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 409, description = "`room_archived`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn admin_archive_room() {}

    /// Disable an account: its sessions are revoked, its sockets closed, its logins refused.
    #[utoipa::path(post, path = "/api/v1/admin/users/{username}/disable", tag = "admin", security(("bearer" = [])),
        params(("username" = String, Path, description = "A username")),
        responses(
            (status = 200, description = "The account", body = User),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`admin_required`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`user_not_found`", body = ErrorBody),
            (status = 409, description = "`cannot_disable_self`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn admin_disable_user() {}

    /// Enable a disabled account.
    #[utoipa::path(post, path = "/api/v1/admin/users/{username}/enable", tag = "admin", security(("bearer" = [])),
        params(("username" = String, Path, description = "A username")),
        responses(
            (status = 200, description = "The account", body = User),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`admin_required`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`user_not_found`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn admin_enable_user() {}

    /// A WebSocket pushing a snapshot (`{"type": "snapshot", at, stats, rooms, connections,
    /// truncated}`) at once and then every `interval_ms`.
    #[utoipa::path(get, path = "/api/v1/admin/stream", tag = "admin", security(("bearer" = [])),
        params(
            ("interval_ms" = Option<u64>, Query, minimum = 250, maximum = 60000, description = "Default 1000"),
            ("rooms" = Option<u64>, Query, maximum = 1000, description = "Busiest rooms per snapshot, default 200"),
            ("connections" = Option<u64>, Query, maximum = 5000, description = "Connections per snapshot, default 500"),
            ("token" = Option<String>, Query, description = "The access token, for clients that cannot set headers"),
        ),
        responses(
            (status = 101, description = "Switching Protocols: the WebSocket is open"),
            (status = 400, description = "`invalid_query`", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`admin_required`, `account_disabled`", body = ErrorBody),
            (status = 426, description = "`upgrade_required`: not a WebSocket upgrade request", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn admin_stream() {}

    /// The WebSocket gateway: JSON text frames, described in docs/protocol.md.
    #[utoipa::path(get, path = "/api/v1/ws", tag = "websocket", security(("bearer" = [])),
        params(("token" = Option<String>, Query, description = "The access token, for browsers (which cannot set headers on a WebSocket); the header wins")),
        responses(
            (status = 101, description = "Switching Protocols: the WebSocket is open; the server's first frame is `hello`"),
            (status = 400, description = "`invalid_query` (a parameter other than `token`)", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`account_disabled`", body = ErrorBody),
            (status = 426, description = "`upgrade_required`: not a WebSocket upgrade request (`Upgrade: websocket`, `Sec-WebSocket-Version: 13`)", body = ErrorBody),
            (status = 429, description = "`too_many_connections`: this account holds `limits.ws_connections_per_user` open sockets on this server, or this address `limits.ws_connections_per_ip`; close one first (no retry hint)", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn websocket() {}

    /// React to a message with an emoji (whoever may post in the room); adding it again changes nothing.
    #[utoipa::path(put, path = "/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("seq" = i64, Path, minimum = 1, description = "The message's seq"),
            ("emoji" = String, Path, description = "One Unicode emoji, percent-encoded (at most 64 bytes; a skin tone is part of it)"),
        ),
        responses(
            (status = 200, description = "The message's reactions", body = MessageReactions),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `message_not_found`", body = ErrorBody),
            (status = 409, description = "`message_deleted`, `room_archived`, `too_many_reactions` (50 different emojis on the message)", body = ErrorBody),
            (status = 422, description = "`invalid_emoji`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn add_reaction() {}

    /// Remove my reaction; removing one that is not there changes nothing.
    #[utoipa::path(delete, path = "/api/v1/rooms/{id}/messages/{seq}/reactions/{emoji}", tag = "messages", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("seq" = i64, Path, minimum = 1, description = "The message's seq"),
            ("emoji" = String, Path, description = "One Unicode emoji, percent-encoded"),
        ),
        responses(
            (status = 200, description = "The message's reactions", body = MessageReactions),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`not_a_member`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `message_not_found`", body = ErrorBody),
            (status = 409, description = "`message_deleted`, `room_archived`", body = ErrorBody),
            (status = 422, description = "`invalid_emoji`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn remove_reaction() {}

    /// Full-text search in the messages I may read: my rooms and the public rooms I am not
    /// banned from. Best match first (ties: newest first); among a term's newest 1,000 matches.
    #[utoipa::path(get, path = "/api/v1/search", tag = "messages", security(("bearer" = [])),
        params(
            ("q" = String, Query, min_length = 1, max_length = 200, description = "Words (all must match), \"a phrase\", `or`, `-word` to exclude (PostgreSQL `websearch_to_tsquery`, 'simple' configuration: no stemming); trimmed; text without any word matches nothing"),
            ("room_id" = Option<Uuid>, Query, description = "Only this room"),
            ("before" = Option<String>, Query, description = "`next_cursor` of the previous page"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1–100, default 20"),
        ),
        responses(
            (status = 200, description = "One page of hits: each message as history shows it, its room, and a plain-text snippet with the matches between `«` and `»`", body = Page<SearchHit>),
            (status = 400, description = "`invalid_query` (a malformed query string, or an unknown parameter)", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`banned` (from `room_id`), `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found` (`room_id` names no room I may read)", body = ErrorBody),
            (status = 422, description = "`invalid_query` (`q` missing, blank, over 200 characters or not on one line), `invalid_limit`, `invalid_cursor`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn search_messages() {}

    /// Make an invite code (owner, admins) to a public or private room. The code is a bearer
    /// secret: whoever holds it may join until it expires, is used up or is revoked.
    #[utoipa::path(post, path = "/api/v1/rooms/{id}/invites", tag = "members", security(("bearer" = [])), request_body = CreateInvite,
        params(("id" = Uuid, Path, description = "A room's id")),
        responses(
            (status = 201, description = "The invite", body = InviteView),
            (status = 400, response = BadBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 409, description = "`direct_room`, `room_archived`", body = ErrorBody),
            (status = 408, response = TooSlow),
            (status = 413, response = TooLarge),
            (status = 415, response = UnsupportedMediaType),
            (status = 422, description = "`invalid_expiry`, `invalid_max_uses`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn create_invite() {}

    /// A room's invites, newest first, each with its `state` (owner, admins).
    #[utoipa::path(get, path = "/api/v1/rooms/{id}/invites", tag = "members", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
            ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ),
        responses(
            (status = 200, description = "One page of invites", body = Page<InviteView>),
            (status = 400, description = "`invalid_query`", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 422, description = "`invalid_limit`, `invalid_cursor`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn list_invites() {}

    /// Revoke an invite (owner, admins); revoking it again changes nothing.
    #[utoipa::path(delete, path = "/api/v1/rooms/{id}/invites/{code}", tag = "members", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("code" = String, Path, description = "The invite's code"),
        ),
        responses(
            (status = 204, description = "Revoked"),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`, `invite_not_found`", body = ErrorBody),
            (status = 409, description = "`direct_room`, `room_archived`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn revoke_invite() {}

    /// Join the invite's room as a member (a member already: the room, no use counted).
    #[utoipa::path(post, path = "/api/v1/invites/{code}/accept", tag = "members", security(("bearer" = [])),
        params(("code" = String, Path, description = "An invite code")),
        responses(
            (status = 200, description = "The room", body = RoomView),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`banned` (no use is counted), `account_disabled`", body = ErrorBody),
            (status = 404, description = "`invite_not_found`", body = ErrorBody),
            (status = 409, description = "`room_archived`", body = ErrorBody),
            (status = 410, description = "`invite_expired`, `invite_exhausted`, `invite_revoked`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn accept_invite() {}

    /// A room's audit log (owner, admins): moderation of the room, newest first.
    #[utoipa::path(get, path = "/api/v1/rooms/{id}/audit", tag = "members", security(("bearer" = [])),
        params(
            ("id" = Uuid, Path, description = "A room's id"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
            ("before" = Option<String>, Query, description = "`next_cursor` of the previous page"),
            ("action" = Option<String>, Query, description = "Only this action (`member_kicked`, `member_banned`, …)"),
        ),
        responses(
            (status = 200, description = "One page of entries, newest first", body = Page<AuditEntry>),
            (status = 400, description = "`invalid_query`", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`forbidden`, `banned`, `account_disabled`", body = ErrorBody),
            (status = 404, description = "`room_not_found`", body = ErrorBody),
            (status = 422, description = "`invalid_query` (an unknown action), `invalid_limit`, `invalid_cursor`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn room_audit() {}

    /// The whole audit log, filtered, newest first. Entries are never pruned.
    #[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])),
        params(
            ("room" = Option<String>, Query, description = "A room's id, or its name as recorded"),
            ("user" = Option<String>, Query, description = "Entries this user did or that were done to them (`operator`: the operator's)"),
            ("action" = Option<String>, Query, description = "Only this action"),
            ("since" = Option<String>, Query, description = "RFC 3339; entries at or after it"),
            ("until" = Option<String>, Query, description = "RFC 3339; entries at or before it"),
            ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1–200, default 50"),
            ("before" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ),
        responses(
            (status = 200, description = "One page of entries, newest first", body = Page<AuditEntry>),
            (status = 400, description = "`invalid_query`", body = ErrorBody),
            (status = 401, response = Unauthorized),
            (status = 403, description = "`admin_required`, `account_disabled`", body = ErrorBody),
            (status = 422, description = "`invalid_query` (a bad filter), `invalid_limit`, `invalid_cursor`", body = ErrorBody),
            (status = 503, response = Unavailable),
        ))]
    fn admin_audit() {}
}

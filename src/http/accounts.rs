//! `/api/v1/auth/*`: register, login, refresh, logout.

use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::error::reply;
use super::{authenticate, bearer, body, client_info, json, no_content, parse_json, with_state, ApiError, Body};
use crate::app::AppState;
use crate::auth::{ClientInfo, TokenPair};
use crate::error::Error;
use crate::users::{User, Username};

pub fn routes(state: &AppState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let register = warp::path!("api" / "v1" / "auth" / "register")
        .and(warp::post())
        .and(body(state))
        .and(client_info(state))
        .and(with_state(state))
        .then(register)
        .map(reply);
    let login = warp::path!("api" / "v1" / "auth" / "login")
        .and(warp::post())
        .and(body(state))
        .and(client_info(state))
        .and(with_state(state))
        .then(login)
        .map(reply);
    let refresh = warp::path!("api" / "v1" / "auth" / "refresh")
        .and(warp::post())
        .and(body(state))
        .and(with_state(state))
        .then(refresh)
        .map(reply);
    let logout = warp::path!("api" / "v1" / "auth" / "logout")
        .and(warp::post())
        .and(bearer())
        .and(with_state(state))
        .then(logout)
        .map(reply);
    register.or(login).unify().or(refresh).unify().or(logout).unify()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterRequest {
    /// 3–32 of `a-z 0-9 _ . -`; ASCII letters are lower-cased.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{3,32}$")]
    username: String,
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    #[schema(max_length = 64)]
    display_name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshRequest {
    refresh_token: String,
}

/// Register, login and refresh all answer with the user and a fresh token pair.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AuthResponse {
    user: User,
    #[serde(flatten)]
    tokens: TokenPair,
}

async fn register(body: Body, client: ClientInfo, state: AppState) -> Result<Response, ApiError> {
    let req: RegisterRequest = parse_json(body)?;
    state.guards.register(client.ip_addr())?;
    let (user, tokens) = state
        .accounts
        .register(&req.username, req.password, req.display_name.as_deref(), &client)
        .await?;
    Ok(json(StatusCode::CREATED, &AuthResponse { user, tokens }))
}

async fn login(body: Body, client: ClientInfo, state: AppState) -> Result<Response, ApiError> {
    let req: LoginRequest = parse_json(body)?;
    // Limits first: a refused attempt costs no password hash. Back-off is kept per canonical
    // username; a name that cannot exist has none (the per-address limit still counts it).
    let name = Username::parse(&req.username).ok();
    let name = name.as_ref().map(Username::as_str);
    let ticket = state.guards.login(client.ip_addr(), name)?;
    let outcome = state.accounts.login(&req.username, &req.password, &client).await;
    match &outcome {
        Err(e) if e.code() == "invalid_credentials" => ticket.outcome(false),
        // A disabled account's password was right all the same.
        Ok(_) | Err(Error::Forbidden { .. }) => ticket.outcome(true),
        Err(_) => drop(ticket),
    }
    let (user, tokens) = outcome?;
    Ok(json(StatusCode::OK, &AuthResponse { user, tokens }))
}

async fn refresh(body: Body, state: AppState) -> Result<Response, ApiError> {
    let req: RefreshRequest = parse_json(body)?;
    let (user, tokens) = state.accounts.refresh(&req.refresh_token).await?;
    Ok(json(StatusCode::OK, &AuthResponse { user, tokens }))
}

async fn logout(auth: Option<String>, state: AppState) -> Result<Response, ApiError> {
    let me = authenticate(&state, auth).await?;
    state.accounts.logout(&me).await?;
    Ok(no_content())
}

//! Authentication: password hashing, tokens, sessions, and the accounts service that the HTTP
//! API and the `chatd user` CLI both call.

pub mod password;
mod service;
pub mod tokens;

pub use service::{Accounts, AuthUser, ClientInfo, SessionView, TokenPair};

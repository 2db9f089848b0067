//! chatd: a self-hosted real-time chat server.
//!
//! Layout (a feature is found by its name): `config` (layered settings), `db` (pool, embedded
//! PostgreSQL, migrations, repositories), `auth` (passwords, tokens, sessions, the accounts
//! service), `users` (validated fields, profiles, administration), `chat` (rooms, membership,
//! moderation, direct messages, the message service), `http` (the REST API),
//! `page` (cursor pagination), `text` (what counts as visible text), `app` (state and server lifecycle), `cli` (the `chatd` command).

pub mod app;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod page;
pub mod telemetry;
pub mod text;
pub mod users;

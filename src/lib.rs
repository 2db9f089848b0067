//! chatd: a self-hosted real-time chat server.
//!
//! Layout (a feature is found by its name): `config` (layered settings), `db` (pool, embedded
//! PostgreSQL, migrations, repositories), `auth` (passwords, tokens, sessions, the accounts
//! service), `users` (validated fields, profiles, administration), `http` (the REST API),
//! `app` (state and server lifecycle), `cli` (the `chatd` command).

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod telemetry;
pub mod users;

//! chatd: a self-hosted real-time chat server.
//!
//! Layout (a feature is found by its name): `config` (layered settings), `db` (pool, embedded
//! PostgreSQL, migrations, repositories), `auth` (passwords, tokens, sessions, the accounts
//! service), `users` (validated fields, profiles, administration), `chat` (rooms, membership,
//! moderation, direct messages, the message service), `http` (the REST API), `ws` (the WebSocket gateway: protocol, hub, connections), `bus`
//! (how committed changes reach the hub, across processes through PostgreSQL NOTIFY),
//! `page` (cursor pagination), `text` (what counts as visible text), `app` (state and server lifecycle), `cli` (the `chatd` command), `bench` (the load generator behind `chatd bench`), `tui` (the operators' console behind `chatd tui`).

pub mod abuse;
pub mod admin;
pub mod app;
pub mod auth;
pub mod bench;
pub mod bus;
pub mod chat;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod page;
pub mod telemetry;
pub mod text;
pub mod tui;
pub mod users;
pub mod ws;

//! Integration tests: a real PostgreSQL, a real chatd on loopback, a real HTTP client.
//! One binary (modules below) so the cluster and the link step are shared.

mod helpers;

mod admin;
mod audit;
mod auth;
mod bench;
mod cli;
mod cluster;
mod docs;
mod faults;
mod health;
mod invites;
mod limits;
mod members;
mod mentions;
mod messages;
mod migrations;
mod openapi;
mod operator;
mod replies;
mod room_cli;
mod rooms;
mod search;
mod security;
mod sessions;
mod tui;
mod users;
mod ws;

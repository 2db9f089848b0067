//! Live statistics for operators: what the admin API (`/api/v1/admin/*`), its stream and
//! `chatd tui` show.

pub mod types;

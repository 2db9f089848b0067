//! User accounts as the rest of chatd sees them: validated fields, the views sent to clients,
//! and the profile and administration operations (`service`).

mod service;
mod types;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

pub use service::{ProfileUpdate, SEARCH_LIMIT};
pub use types::*;

use crate::db::users::UserRecord;

/// A user as they see themselves (and as admins see them).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
    #[schema(required = true)]
    pub bio: Option<String>,
    #[schema(required = true)]
    pub avatar_url: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&UserRecord> for User {
    fn from(r: &UserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username.clone(),
            display_name: r.display_name.clone(),
            bio: r.bio.clone(),
            avatar_url: r.avatar_url.clone(),
            is_admin: r.is_admin,
            disabled: r.disabled_at.is_some(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// What anyone signed in may see of another user.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PublicProfile {
    pub id: Uuid,
    pub username: String,
    #[schema(required = true)]
    pub display_name: Option<String>,
    #[schema(required = true)]
    pub bio: Option<String>,
    #[schema(required = true)]
    pub avatar_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&UserRecord> for PublicProfile {
    fn from(r: &UserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username.clone(),
            display_name: r.display_name.clone(),
            bio: r.bio.clone(),
            avatar_url: r.avatar_url.clone(),
            created_at: r.created_at,
        }
    }
}

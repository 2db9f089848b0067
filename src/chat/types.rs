//! Validated chat inputs. Parse, don't validate: holding a `RoomName` means it is valid.
//!
//! Limits (documented in README.md):
//! - room name: 1–64 characters after trimming, no control or invisible characters; unique
//!   case-insensitively and across Unicode forms (NFKC, then lower case).
//! - topic: up to 250 characters, one line; empty clears it.
//! - message body: 1–4000 characters, not blank (`crate::text::is_blank`); newlines and tabs
//!   allowed, as are the joiners emoji sequences need.
//! - client_msg_id: 1–64 characters of `A-Z a-z 0-9 - _ . :`.
//! - ban reason: up to 500 characters; empty means none.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

use crate::error::Error;
use crate::text::{has_forbidden, is_blank};

pub const ROOM_NAME_MAX: usize = 64;
pub const TOPIC_MAX: usize = 250;
pub const MESSAGE_MAX: usize = 4000;
pub const CLIENT_MSG_ID_MAX: usize = 64;
pub const BAN_REASON_MAX: usize = 500;

/// The form room names are compared in (uniqueness, lookup by name, the `q` filter).
/// Invisible characters (a zero-width joiner, a direction mark) are dropped, so `general` and
/// `gen\u{200C}eral` are one name.
pub fn name_key(name: &str) -> String {
    // Dropped first: between a letter and its combining mark, an invisible character would
    // keep NFKC from composing them.
    let visible = crate::text::visible_only(name);
    let folded: String = visible.nfkc().collect::<String>().to_lowercase().nfkc().collect();
    crate::text::visible_only(&folded)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName {
    name: String,
    key: String,
}

impl RoomName {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let name = input.trim();
        let len = name.chars().count();
        if !(1..=ROOM_NAME_MAX).contains(&len) || is_blank(name) || has_forbidden(name, false) {
            return Err(Error::invalid(
                "invalid_room_name",
                format!("name must be 1-{ROOM_NAME_MAX} visible characters without control or invisible characters"),
            ));
        }
        // Stored as typed (NFC, so `é` is one code point either way); unique by a key that also
        // folds compatibility forms and case, so `Café`, `cafe\u{301}` and `ｃａｆé` are one name.
        let name: String = name.nfc().collect();
        let key = name_key(&name);
        Ok(Self { name, key })
    }
    pub fn as_str(&self) -> &str {
        &self.name
    }
    /// The case-insensitive form names are unique by.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// `None` means "no topic": an empty (or blank) topic clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic(Option<String>);

impl Topic {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let topic = input.trim();
        if topic.chars().count() > TOPIC_MAX || has_forbidden(topic, false) {
            return Err(Error::invalid(
                "invalid_topic",
                format!("topic must be at most {TOPIC_MAX} characters on one line"),
            ));
        }
        Ok(Self((!topic.is_empty()).then(|| topic.to_string())))
    }
    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let len = input.chars().count();
        if !(1..=MESSAGE_MAX).contains(&len) || is_blank(input) || has_forbidden(input, true) {
            return Err(Error::invalid(
                "invalid_message",
                format!("body must be 1-{MESSAGE_MAX} characters, not blank, without control characters"),
            ));
        }
        Ok(Self(input.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The sender's idempotency key for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let ok = (1..=CLIENT_MSG_ID_MAX).contains(&input.len())
            && input
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !ok {
            return Err(Error::invalid(
                "invalid_client_msg_id",
                format!("client_msg_id must be 1-{CLIENT_MSG_ID_MAX} characters of A-Z a-z 0-9 - _ . :"),
            ));
        }
        Ok(Self(input.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanReason(Option<String>);

impl BanReason {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let reason = input.trim();
        if reason.chars().count() > BAN_REASON_MAX || has_forbidden(reason, false) {
            return Err(Error::invalid(
                "invalid_reason",
                format!("reason must be at most {BAN_REASON_MAX} characters on one line"),
            ));
        }
        Ok(Self((!reason.is_empty()).then(|| reason.to_string())))
    }
    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Public,
    Private,
    Direct,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Direct => "direct",
        }
    }

    /// What a client may ask for when creating or editing a room (never `direct`).
    pub fn parse_settable(input: &str) -> Result<Self, Error> {
        match input {
            "public" => Ok(Self::Public),
            "private" => Ok(Self::Private),
            _ => Err(Error::invalid(
                "invalid_visibility",
                "visibility must be 'public' or 'private'",
            )),
        }
    }
}

impl FromStr for Visibility {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "direct" => Ok(Self::Direct),
            other => Self::parse_settable(other),
        }
    }
}

/// A member's role in a room, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            _ => Err(Error::invalid(
                "invalid_role",
                "role must be 'owner', 'admin' or 'member'",
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_trimmed_bounded_and_keyed_case_insensitively() {
        let n = RoomName::parse("  Général Chat ").unwrap();
        assert_eq!(n.as_str(), "Général Chat");
        assert_eq!(n.key(), "général chat");
        assert_eq!(RoomName::parse("GÉNÉRAL CHAT").unwrap().key(), n.key());
        let composed = RoomName::parse("Caf\u{E9}").unwrap();
        for same in ["cafe\u{301}", "CAF\u{C9}", "\u{FF43}\u{FF41}\u{FF46}\u{E9}"] {
            assert_eq!(RoomName::parse(same).unwrap().key(), composed.key(), "{same:?}");
        }
        assert_eq!(
            RoomName::parse("cafe\u{301}").unwrap().as_str(),
            "caf\u{E9}",
            "stored composed"
        );
        for spoof in [
            "gen\u{200C}eral",
            "general\u{200E}",
            "\u{200F}general",
            "gene\u{200D}ral",
        ] {
            assert_eq!(RoomName::parse(spoof).unwrap().key(), "general", "{spoof:?}");
        }
        for spoof in ["cafe\u{200D}\u{301}", "cafe\u{34F}\u{301}", "cafe\u{FE0F}\u{301}"] {
            assert_eq!(RoomName::parse(spoof).unwrap().key(), "caf\u{E9}", "{spoof:?}");
        }
        for bad in ["", "   ", &"x".repeat(65), "a\nb", "a\u{202E}b"] {
            assert_eq!(RoomName::parse(bad).unwrap_err().code(), "invalid_room_name", "{bad:?}");
        }
        assert!(RoomName::parse(&"é".repeat(64)).is_ok());
    }

    #[test]
    fn topics_and_reasons_clear_when_blank() {
        assert_eq!(Topic::parse("  ").unwrap().into_inner(), None);
        assert!(Topic::parse(&"t".repeat(251)).is_err());
        assert!(Topic::parse("two\nlines").is_err());
        assert_eq!(BanReason::parse("").unwrap().into_inner(), None);
        assert_eq!(
            BanReason::parse(" spam ").unwrap().into_inner().as_deref(),
            Some("spam")
        );
    }

    #[test]
    fn message_bodies_keep_newlines_and_refuse_blank() {
        assert_eq!(MessageBody::parse("hi\n  there").unwrap().as_str(), "hi\n  there");
        for bad in ["", " \n\t ", "bell\u{7}", &"m".repeat(4001)] {
            assert_eq!(
                MessageBody::parse(bad).unwrap_err().code(),
                "invalid_message",
                "{bad:?}"
            );
        }
        assert!(MessageBody::parse(&"m".repeat(4000)).is_ok());
    }

    #[test]
    fn client_msg_ids_are_short_ascii_tokens() {
        assert!(ClientMsgId::parse("9b2f1c1e-8a3d-4e7b-9b71-000000000001").is_ok());
        for bad in ["", "has space", "é", &"x".repeat(65)] {
            assert!(ClientMsgId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_order_by_power_and_direct_is_not_settable() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
        assert!(Visibility::parse_settable("direct").is_err());
        assert_eq!("direct".parse::<Visibility>().unwrap(), Visibility::Direct);
    }
}

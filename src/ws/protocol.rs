//! The wire protocol: JSON text frames, each with a `type` (docs/protocol.md is the reference).
//!
//! Client frames are parsed in two steps so every mistake has its own stable code: the text
//! must be JSON (`invalid_json`), an object with a string `type` (`invalid_frame`) that names a
//! frame (`unknown_type`), whose fields are the documented ones (`invalid_frame`, naming the
//! field). Server frames are built here and serialized once; a `message` frame's bytes are
//! shared by every subscriber's queue.

/// An encoded server frame: JSON text in shared, reference-counted bytes. A message is
/// serialized once and every subscriber's socket sends the same bytes, without a copy.
pub type Frame = tokio_tungstenite::tungstenite::Utf8Bytes;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::chat::{MessageView, ReadState, Role};

/// Bumped when a change could break a client written against the previous version.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest client `id` echoed back, in characters.
const MAX_ID_CHARS: usize = 64;

/// A client frame that could not be understood: answered with an `error` frame, and the
/// connection stays open.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    pub id: Option<Value>,
    pub code: &'static str,
    pub message: String,
}

/// What a client may send.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    Subscribe {
        room_id: String,
        since_seq: Option<i64>,
    },
    Unsubscribe {
        room_id: String,
    },
    Send {
        room_id: String,
        body: String,
        client_msg_id: String,
        reply_to: Option<i64>,
    },
    Typing {
        room_id: String,
    },
    Read {
        room_id: String,
        seq: i64,
    },
    Ping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeFields {
    room_id: String,
    since_seq: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomFields {
    room_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendFields {
    room_id: String,
    body: String,
    client_msg_id: String,
    #[serde(default)]
    reply_to: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadFields {
    room_id: String,
    seq: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// Parses one text frame: the frame and its client `id`, or what is wrong with it.
pub fn parse(text: &str) -> Result<(Option<Value>, ClientFrame), FrameError> {
    let err = |id: Option<Value>, code, message: String| FrameError { id, code, message };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| err(None, "invalid_json", format!("the frame is not valid JSON: {e}")))?;
    let Value::Object(mut fields) = value else {
        return Err(err(None, "invalid_frame", "a frame must be a JSON object".into()));
    };
    let id = match fields.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_ID_CHARS => Some(Value::String(s)),
        Some(Value::Number(n)) => Some(Value::Number(n)),
        Some(_) => {
            return Err(err(
                None,
                "invalid_frame",
                format!("id must be a number or a string of at most {MAX_ID_CHARS} characters"),
            ))
        }
    };
    let kind = match fields.remove("type") {
        Some(Value::String(t)) => t,
        Some(_) => return Err(err(id, "invalid_frame", "type must be a string".into())),
        None => return Err(err(id, "invalid_frame", "the frame has no type".into())),
    };
    let rest = Value::Object(fields);
    fn fields_of<T: DeserializeOwned>(kind: &str, rest: Value) -> Result<T, (&'static str, String)> {
        serde_json::from_value(rest).map_err(|e| ("invalid_frame", format!("invalid {kind} frame: {e}")))
    }
    let frame = match kind.as_str() {
        "subscribe" => fields_of::<SubscribeFields>(&kind, rest).map(|f| ClientFrame::Subscribe {
            room_id: f.room_id,
            since_seq: f.since_seq,
        }),
        "unsubscribe" => fields_of::<RoomFields>(&kind, rest).map(|f| ClientFrame::Unsubscribe { room_id: f.room_id }),
        "send" => fields_of::<SendFields>(&kind, rest).map(|f| ClientFrame::Send {
            room_id: f.room_id,
            body: f.body,
            client_msg_id: f.client_msg_id,
            reply_to: f.reply_to,
        }),
        "typing" => fields_of::<RoomFields>(&kind, rest).map(|f| ClientFrame::Typing { room_id: f.room_id }),
        "read" => fields_of::<ReadFields>(&kind, rest).map(|f| ClientFrame::Read {
            room_id: f.room_id,
            seq: f.seq,
        }),
        "ping" => fields_of::<NoFields>(&kind, rest).map(|_| ClientFrame::Ping),
        other => Err((
            "unknown_type",
            format!(
                "unknown frame type '{}': expected subscribe, unsubscribe, send, typing, read or ping",
                other.chars().take(64).collect::<String>()
            ),
        )),
    };
    frame
        .map(|f| (id.clone(), f))
        .map_err(|(code, message)| err(id, code, message))
}

/// The signed-in user, as `hello` describes them.
#[derive(Debug, Clone, Serialize)]
pub struct HelloUser {
    pub id: Uuid,
    pub username: String,
}

/// Limits a client should know about.
#[derive(Debug, Clone, Serialize)]
pub struct HelloLimits {
    pub max_frame_bytes: usize,
    pub max_subscriptions: usize,
    pub outbound_queue: usize,
    pub typing_interval_ms: u64,
    pub messages_per_sec: u32,
    pub message_burst: u32,
}

/// What the server sends. `message` and `message_edited` carry every field of a message
/// (docs/protocol.md), flattened next to `type`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Hello {
        protocol: u32,
        connection_id: u64,
        session_id: Uuid,
        user: &'a HelloUser,
        heartbeat_secs: u64,
        limits: &'a HelloLimits,
        /// My rooms' unread state when I connected (at most `db::unread::HELLO_ROOMS`, those
        /// with something unread first); `null` if it could not be read in time.
        rooms: Option<&'a [crate::db::unread::RoomUnread]>,
        /// More rooms than `rooms` lists: the room list has them all.
        rooms_truncated: bool,
    },
    Subscribed {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        room_id: Uuid,
        since_seq: i64,
        last_seq: i64,
    },
    Unsubscribed {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        room_id: Uuid,
        reason: &'a str,
    },
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        /// `true` when the `client_msg_id` was already used: this is the original message.
        duplicate: bool,
        message: &'a MessageView,
    },
    Message(&'a MessageView),
    MessageEdited(&'a MessageView),
    MessageDeleted {
        room_id: Uuid,
        seq: i64,
        id: Uuid,
        #[serde(with = "time::serde::rfc3339::option")]
        deleted_at: Option<time::OffsetDateTime>,
    },
    MemberJoined {
        room_id: Uuid,
        user: &'a str,
        role: Role,
    },
    MemberLeft {
        room_id: Uuid,
        user: &'a str,
        reason: &'a str,
    },
    MemberRoleChanged {
        room_id: Uuid,
        user: &'a str,
        role: Role,
    },
    RoomUpdated {
        room_id: Uuid,
        name: Option<&'a str>,
        topic: Option<&'a str>,
        visibility: &'a str,
        archived: bool,
    },
    ReadMarker {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        #[serde(flatten)]
        state: &'a ReadState,
    },
    Typing {
        room_id: Uuid,
        user: &'a str,
    },
    Presence {
        user: &'a str,
        status: &'a str,
    },
    /// Several presence states in one frame, however many: who is online after `hello` and
    /// after joining a room, or a burst of changes.
    PresenceList {
        online: &'a [String],
        offline: &'a [String],
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Value>,
    },
    /// `user` added (`added`) or removed their reaction `emoji` to message `seq`; `count`:
    /// how many reacted with it now.
    Reaction {
        room_id: Uuid,
        seq: i64,
        emoji: &'a str,
        user: &'a str,
        added: bool,
        count: i64,
    },
    /// A new (or newly edited) message names the user: sent to all their connections, whether
    /// or not they are subscribed to the room.
    Mention {
        room_id: Uuid,
        seq: i64,
        author: Option<&'a str>,
        message: &'a MessageView,
    },
}

impl ServerFrame<'_> {
    /// The frame as the text sent on the wire.
    pub fn encode(&self) -> Frame {
        // Every field is a plain value (no maps with non-string keys), so this cannot fail.
        Frame::from(serde_json::to_string(self).unwrap_or_default())
    }
}

/// Close codes (RFC 6455 §7.4; 4000–4999 are ours). docs/protocol.md lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// 1000: the client closed, or asked to.
    Normal,
    /// 1001: the server is shutting down; reconnect (elsewhere) and resume with `since_seq`.
    GoingAway,
    /// 1002: a WebSocket protocol violation (say, an unmasked client frame).
    ProtocolError,
    /// 1007: a text frame that is not UTF-8.
    InvalidData,
    /// 1009: a frame larger than `ws.max_frame_bytes`.
    TooBig,
    /// 1011: an unexpected server error.
    Internal,
    /// 4000: no frame from the client for two heartbeat intervals.
    HeartbeatTimeout,
    /// 4001: the session ended (logout, revoked, password changed, account deleted).
    SessionEnded(String),
    /// 4003: the account was disabled.
    AccountDisabled,
    /// 4008: the client did not read fast enough; resume with `since_seq`.
    SlowConsumer,
    /// 4010: an administrator closed the connection, saying why.
    ClosedByAdmin(String),
}

impl Close {
    pub fn code(&self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::ProtocolError => 1002,
            Self::InvalidData => 1007,
            Self::TooBig => 1009,
            Self::Internal => 1011,
            Self::HeartbeatTimeout => 4000,
            Self::SessionEnded(_) => 4001,
            Self::AccountDisabled => 4003,
            Self::SlowConsumer => 4008,
            Self::ClosedByAdmin(_) => 4010,
        }
    }

    /// The close frame that says this.
    pub fn message(&self) -> tokio_tungstenite::tungstenite::Message {
        use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
        tokio_tungstenite::tungstenite::Message::Close(Some(CloseFrame {
            code: CloseCode::from(self.code()),
            reason: self.reason().into(),
        }))
    }

    /// The close reason: a stable word, then (for an ended session) why.
    pub fn reason(&self) -> String {
        match self {
            Self::Normal => "normal".into(),
            Self::GoingAway => "going_away".into(),
            Self::ProtocolError => "protocol_error".into(),
            Self::InvalidData => "invalid_utf8".into(),
            Self::TooBig => "message_too_big".into(),
            Self::Internal => "internal_error".into(),
            Self::HeartbeatTimeout => "heartbeat_timeout".into(),
            Self::SessionEnded(why) => format!("session_ended: {why}"),
            Self::AccountDisabled => "account_disabled".into(),
            Self::SlowConsumer => "slow_consumer".into(),
            Self::ClosedByAdmin(why) if why.is_empty() => "closed_by_admin".into(),
            Self::ClosedByAdmin(why) => format!("closed_by_admin: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> &'static str {
        parse(text).unwrap_err().code
    }

    #[test]
    fn frames_parse_with_their_id() {
        let (id, f) = parse(r#"{"type":"subscribe","room_id":"r","since_seq":5,"id":7}"#).unwrap();
        assert_eq!(id, Some(Value::from(7)));
        assert_eq!(
            f,
            ClientFrame::Subscribe {
                room_id: "r".into(),
                since_seq: Some(5)
            }
        );
        assert_eq!(parse(r#"{"type":"ping"}"#).unwrap(), (None, ClientFrame::Ping));
    }

    #[test]
    fn each_mistake_has_its_code_and_keeps_the_id() {
        assert_eq!(code_of("{"), "invalid_json");
        assert_eq!(code_of("[1]"), "invalid_frame");
        assert_eq!(code_of(r#"{"room_id":"r"}"#), "invalid_frame");
        assert_eq!(code_of(r#"{"type":5}"#), "invalid_frame");
        assert_eq!(code_of(r#"{"type":"dance"}"#), "unknown_type");
        let e = parse(r#"{"type":"send","id":"a1","room_id":"r","body":"x"}"#).unwrap_err();
        assert_eq!((e.code, e.id), ("invalid_frame", Some(Value::from("a1"))));
        assert!(e.message.contains("client_msg_id"), "{}", e.message);
        assert_eq!(code_of(r#"{"type":"ping","extra":1}"#), "invalid_frame");
        assert_eq!(code_of(r#"{"type":"read","room_id":"r","seq":"x"}"#), "invalid_frame");
        assert_eq!(
            code_of(&format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(65))),
            "invalid_frame"
        );
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let long = Close::SessionEnded("password_changed".into());
        assert!(long.reason().len() <= 123);
        assert_eq!(Close::SlowConsumer.code(), 4008);
    }
}

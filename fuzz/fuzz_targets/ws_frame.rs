//! A client's WebSocket text frame, through the same `chatd::ws::protocol::parse` that
//! `ws::conn` calls for every frame a client sends.
//!
//! Beyond "never panics", every outcome must be something the connection can answer:
//! - a frame that parses re-encodes (as a client would write it) to text that parses to the
//!   same frame and id, and its id echoes back unchanged in a reply (`pong`);
//! - a rejected frame has one of the documented codes, echoes only an id the client may use,
//!   and its `error` reply is valid JSON whose size is bounded by the input's.
#![no_main]

use chatd::ws::protocol::{parse, ClientFrame, ServerFrame};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    // A text frame that is not UTF-8 never reaches the parser: the socket closes with 1007.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse(text) {
        Ok((id, frame)) => {
            assert_id_is_echoable(id.as_ref());
            let again = encode(id.as_ref(), &frame).to_string();
            let reparsed = parse(&again).unwrap_or_else(|e| panic!("{again:?} does not parse again: {e:?}"));
            assert_eq!(reparsed, (id.clone(), frame), "{again:?}");
            let pong: Value =
                serde_json::from_str(&ServerFrame::Pong { id: id.as_ref() }.encode()).expect("a pong is JSON");
            assert_eq!(pong.get("id"), id.as_ref());
        }
        Err(e) => {
            assert!(
                matches!(e.code, "invalid_json" | "invalid_frame" | "unknown_type"),
                "undocumented code {}",
                e.code
            );
            assert!(e.code != "invalid_json" || e.id.is_none());
            assert_id_is_echoable(e.id.as_ref());
            let reply = ServerFrame::Error {
                id: e.id.as_ref(),
                code: e.code,
                message: &e.message,
                retry_after_ms: None,
            }
            .encode();
            let reply: Value = serde_json::from_str(&reply).expect("an error frame is JSON");
            assert_eq!(reply["code"], e.code);
            // serde quotes offending input in its messages, escaping it (`\u{85}`: 6 bytes for 2).
            assert!(
                e.message.len() <= 4 * text.len() + 256,
                "a {}-byte frame got a {}-byte error",
                text.len(),
                e.message.len()
            );
        }
    }
});

/// What `parse` may hand back as an id: a number, or a string of at most 64 characters.
fn assert_id_is_echoable(id: Option<&Value>) {
    match id {
        None | Some(Value::Number(_)) => {}
        Some(Value::String(s)) => assert!(s.chars().count() <= 64, "id of {} chars", s.chars().count()),
        Some(other) => panic!("id {other} is neither a number nor a string"),
    }
}

/// The frame as a client writes it (docs/protocol.md).
fn encode(id: Option<&Value>, frame: &ClientFrame) -> Value {
    let mut v = match frame {
        ClientFrame::Subscribe { room_id, since_seq } => {
            let mut v = json!({"type": "subscribe", "room_id": room_id});
            if let Some(seq) = since_seq {
                v["since_seq"] = json!(seq);
            }
            v
        }
        ClientFrame::Unsubscribe { room_id } => json!({"type": "unsubscribe", "room_id": room_id}),
        ClientFrame::Send {
            room_id,
            body,
            client_msg_id,
        } => json!({"type": "send", "room_id": room_id, "body": body, "client_msg_id": client_msg_id}),
        ClientFrame::Typing { room_id } => json!({"type": "typing", "room_id": room_id}),
        ClientFrame::Read { room_id, seq } => json!({"type": "read", "room_id": room_id, "seq": seq}),
        ClientFrame::Ping => json!({"type": "ping"}),
    };
    if let Some(id) = id {
        v["id"] = id.clone();
    }
    v
}

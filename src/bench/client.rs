//! The bench's WebSocket client: connect with a bearer token (optionally from a chosen local
//! address), wait for `hello`, subscribe; and a cheap scanner for the frames that arrive by
//! the hundred thousand per second.
//!
//! Fully deserializing every delivered `message` would cost the load generator more CPU than
//! the server spends sending it. The server serializes frames with `type` first and a
//! message's fields in a fixed order (`id`, `room_id`, `seq`, …, `body`), and the bench writes
//! the bodies itself (`t=<µs> r=<step> w=<0|1> s=<sender> n=<k>`, no quotes or escapes), so the
//! scanner finds `"seq":` and `"body":"` with memchr and parses the digits exactly; anything it
//! does not recognise falls back to serde.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use memchr::memmem;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{failed, Result, Target};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type WsSink = SplitSink<Ws, Message>;
pub type WsStream = SplitStream<Ws>;

/// How long connecting, `hello` and `subscribed` may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The client sockets' buffers. tungstenite zero-fills its whole read buffer (128 KiB by
/// default) before every read: with a thousand sockets each reading one small frame at a time
/// that memset was 43% of the load generator's CPU (perf), and its latency figures measured
/// the generator. 8 KiB holds a burst of frames and grows for a larger one.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

/// Opens an authenticated WebSocket and waits for `hello`. With `local`, the TCP socket is
/// bound to that source address first (to spread many sockets over 127.0.0.x).
pub async fn connect(target: &Target, token: &str, local: Option<IpAddr>) -> std::result::Result<Ws, String> {
    let mut request = target
        .ws_url()
        .into_client_request()
        .map_err(|e| format!("bad_url: {e}"))?;
    let auth = format!("Bearer {token}").parse().map_err(|_| "bad_token".to_string())?;
    request.headers_mut().insert("authorization", auth);
    let work = async {
        let mut ws = match local {
            None => {
                // Nagle off, as the server does: a frame goes out when written.
                tokio_tungstenite::connect_async_with_config(request, Some(socket_config()), true)
                    .await
                    .map_err(|e| connect_error(&e))?
                    .0
            }
            Some(ip) => {
                let server = server_addr(target).await?;
                let socket = if ip.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(|e| io_reason("socket", &e))?;
                socket.bind(SocketAddr::new(ip, 0)).map_err(|e| io_reason("bind", &e))?;
                let stream = socket.connect(server).await.map_err(|e| io_reason("connect", &e))?;
                let _ = stream.set_nodelay(true);
                tokio_tungstenite::client_async_with_config(
                    request,
                    MaybeTlsStream::Plain(stream),
                    Some(socket_config()),
                )
                .await
                .map_err(|e| connect_error(&e))?
                .0
            }
        };
        // `hello` is always the first frame.
        match ws.next().await {
            Some(Ok(Message::Text(text))) if frame_type(text.as_bytes()) == Some("hello") => Ok(ws),
            Some(Ok(other)) => Err(format!("no_hello: {}", describe(&other))),
            Some(Err(e)) => Err(connect_error(&e)),
            None => Err("closed_before_hello".into()),
        }
    };
    tokio::time::timeout(SETUP_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err("timeout".into()))
}

async fn server_addr(target: &Target) -> std::result::Result<SocketAddr, String> {
    let host = target.base.host_str().unwrap_or("127.0.0.1").trim_matches(['[', ']']);
    let port = target.base.port_or_known_default().unwrap_or(80);
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| io_reason("resolve", &e))?
        .next()
        .ok_or_else(|| "resolve: no address".to_string())
}

fn io_reason(step: &str, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => format!("{step}_too_many_open_files"),
        Some(libc::EADDRNOTAVAIL) => format!("{step}_no_free_port"),
        Some(libc::ECONNREFUSED) => "connection_refused".into(),
        _ => format!("{step}_{:?}", e.kind()).to_lowercase(),
    }
}

/// A short, stable reason for a failed handshake: `http_503`, `connection_refused`, `io_…`.
fn connect_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(resp) => format!("http_{}", resp.status().as_u16()),
        E::Io(io) => io_reason("io", io),
        E::ConnectionClosed | E::AlreadyClosed => "closed".into(),
        other => format!(
            "ws_{}",
            other.to_string().split(':').next().unwrap_or("error").replace(' ', "_")
        ),
    }
}

fn describe(m: &Message) -> String {
    match m {
        Message::Close(Some(f)) => format!("close_{}", u16::from(f.code)),
        Message::Close(None) => "close".into(),
        Message::Text(t) => frame_type(t.as_bytes()).unwrap_or("text").to_string(),
        _ => "other".into(),
    }
}

/// Subscribes to `room` and waits for `subscribed`; returns the stream split for reading and
/// writing.
pub async fn subscribe(ws: Ws, room: &str) -> Result<(WsSink, WsStream)> {
    let (mut sink, mut stream) = ws.split();
    let frame = format!(r#"{{"type":"subscribe","id":"sub","room_id":"{room}"}}"#);
    sink.send(Message::text(frame))
        .await
        .map_err(|e| failed(format!("subscribe: {e}")))?;
    let wait = async {
        // Presence and membership frames may come first; skip them (bounded by the timeout).
        while let Some(frame) = stream.next().await {
            match frame {
                Ok(Message::Text(text)) => match frame_type(text.as_bytes()) {
                    Some("subscribed") => return Ok(()),
                    Some("error") => {
                        let v: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                        return Err(failed(format!("subscribe: {}", v["code"].as_str().unwrap_or("error"))));
                    }
                    _ => {}
                },
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Err(failed("subscribe: the socket closed"))
    };
    tokio::time::timeout(SETUP_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| Err(failed("subscribe: no answer in 30 s")))?;
    Ok((sink, stream))
}

/// A `send` frame. `room` is a UUID and `body` is the bench's own ASCII text, so plain
/// formatting produces valid JSON.
pub fn send_frame(id: u64, room: &str, body: &str, client_msg_id: &str) -> Message {
    Message::text(format!(
        r#"{{"type":"send","id":{id},"room_id":"{room}","body":"{body}","client_msg_id":"{client_msg_id}"}}"#
    ))
}

/// The `type` of a server frame, read from its start (`{"type":"…"`).
pub fn frame_type(frame: &[u8]) -> Option<&str> {
    const PREFIX: &[u8] = br#"{"type":""#;
    let rest = frame.strip_prefix(PREFIX)?;
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// What the bench needs from a `message` or an `ack`: the seq and the fields of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    /// Intended send time, µs since the run's epoch.
    pub sent_us: u64,
    /// Which step (rate) of a sweep sent it.
    pub step: u64,
    /// Sent during warm-up (not recorded).
    pub warmup: bool,
}

/// Reads the seq and the body's stamp of a `message` or `ack` frame; `None` when the frame is
/// not one the bench sent (another body) or not shaped as expected.
pub fn scan_stamp(frame: &[u8]) -> Option<Stamp> {
    let seq_at = memmem::find(frame, br#""seq":"#)? + 6;
    let seq = parse_digits(&frame[seq_at..], b",}")?;
    let body_at = memmem::find(&frame[seq_at..], br#""body":""#)? + seq_at + 8;
    let body_end = memchr::memchr(b'"', &frame[body_at..])? + body_at;
    let body = &frame[body_at..body_end];
    let field = |name: &[u8]| -> Option<u64> {
        let at = memmem::find(body, name)? + name.len();
        parse_digits(&body[at..], b" ")
    };
    Some(Stamp {
        seq,
        sent_us: field(b"t=")?,
        step: field(b" r=")?,
        warmup: field(b" w=")? == 1,
    })
}

/// Parses a decimal u64 running up to one of `ends` or the end of the input; `None` for no
/// digits, a stray character or overflow.
fn parse_digits(bytes: &[u8], ends: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    let mut n = 0;
    for &b in bytes {
        if b.is_ascii_digit() {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            n += 1;
        } else if ends.contains(&b) {
            break;
        } else {
            return None;
        }
    }
    (n > 0).then_some(value)
}

/// The `code` of an `error` frame.
pub fn error_frame_code(frame: &str) -> String {
    let v: Value = serde_json::from_str(frame).unwrap_or_default();
    v["code"].as_str().unwrap_or("error").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_a_message_frame_exactly() {
        let frame = br#"{"type":"message","id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","room_id":"0b5c3f4e-7d21-4a8e-9c1a-3f6d2b8e4a10","seq":18446744073709551615,"author":"bench-x-c1","body":"t=123456 r=2 w=0 s=3 n=9","client_msg_id":"x","created_at":"2025-06-02T09:14:07.512Z","edited_at":null,"deleted":false,"deleted_at":null}"#;
        assert_eq!(frame_type(frame), Some("message"));
        assert_eq!(
            scan_stamp(frame),
            Some(Stamp {
                seq: u64::MAX,
                sent_us: 123456,
                step: 2,
                warmup: false
            })
        );
    }

    #[test]
    fn scans_an_ack_frame_and_refuses_foreign_bodies() {
        let ack = br#"{"type":"ack","id":2,"duplicate":false,"message":{"id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","room_id":"0b5c3f4e-7d21-4a8e-9c1a-3f6d2b8e4a10","seq":44,"author":"a","body":"t=1 r=0 w=1 s=0 n=0","client_msg_id":"c"}}"#;
        assert_eq!(frame_type(ack), Some("ack"));
        let s = scan_stamp(ack).unwrap();
        assert_eq!((s.seq, s.sent_us, s.warmup), (44, 1, true));
        assert_eq!(scan_stamp(br#"{"type":"message","seq":4x,"body":"t=1 r=0 w=0"}"#), None);
        assert_eq!(scan_stamp(br#"{"type":"message","seq":4,"body":"hello"}"#), None);
        assert_eq!(
            scan_stamp(br#"{"type":"message","seq":99999999999999999999,"body":"t=1 r=0 w=0"}"#),
            None
        );
    }
}

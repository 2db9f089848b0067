//! Micro-benchmarks of the gateway's hot paths, without a server or a database: encoding a
//! `message` frame, parsing a client `send` frame, and fanning one message out to 1,000
//! subscribers' in-memory queues (serialization once, a cheap handle per queue).
//!
//! `cargo bench --bench hot_paths`; criterion keeps the last run under target/criterion and
//! reports the change against it, so a regression shows without a server.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use time::OffsetDateTime;
use uuid::Uuid;

use chatd::auth::AuthUser;
use chatd::chat::MessageView;
use chatd::config::WsConfig;
use chatd::db::Db;
use chatd::ws::hub::{Hub, Out};
use chatd::ws::protocol::{self, ServerFrame};

const SUBSCRIBERS: usize = 1_000;

fn message(room_id: Uuid, seq: i64) -> MessageView {
    MessageView {
        id: Uuid::new_v4(),
        room_id,
        seq,
        author: Some("alice".into()),
        body: Some("t=123456789 s=3 n=42 the quick brown fox jumps over the lazy dog".into()),
        client_msg_id: Some("c-3-42".into()),
        created_at: OffsetDateTime::now_utc(),
        edited_at: None,
        deleted: false,
        deleted_at: None,
        mentions: Vec::new(),
    }
}

fn frames(c: &mut Criterion) {
    let m = message(Uuid::new_v4(), 42);
    let mut group = c.benchmark_group("frame");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_message", |b| b.iter(|| ServerFrame::Message(&m).encode()));
    let send = format!(
        r#"{{"type":"send","id":17,"room_id":"{}","client_msg_id":"c-3-42","body":"t=123456789 s=3 n=42 the quick brown fox"}}"#,
        m.room_id
    );
    group.bench_function("decode_send", |b| b.iter(|| protocol::parse(&send).is_ok()));
    group.finish();
}

fn fanout(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    // A pool that never connects: the hub only needs the database for presence and replays.
    let pg: tokio_postgres::Config = "host=/nonexistent dbname=none".parse().expect("config");
    let db = Db::new(pg, 1, Duration::from_secs(1));
    let config = WsConfig {
        presence_max_members: 0,
        outbound_queue: 16,
        ..WsConfig::default()
    };
    let hub = Hub::new(db, config, Default::default(), uuid::Uuid::new_v4(), false);
    let room = Uuid::new_v4();
    let mut queues = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let user = AuthUser {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            username: "bench".into(),
            is_admin: false,
        };
        let (conn, mut queue) = hub.connect(&user, Default::default(), |_| ServerFrame::Pong { id: None }.encode());
        hub.subscribe(&conn, room).expect("subscribe");
        let start = Out::Subscribed {
            room,
            from: 0,
            frame: ServerFrame::Pong { id: None }.encode(),
        };
        assert!(hub.confirm(&conn, room, true, start));
        while queue.try_recv().is_ok() {}
        queues.push((conn, queue));
    }
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    let mut seq = 0;
    group.bench_function("publish_to_1000_queues", |b| {
        b.iter_batched(
            || {
                seq += 1;
                message(room, seq)
            },
            |m| {
                hub.publish_message(&m);
                // What each writer does first: take the frame off its queue.
                for (_, queue) in &mut queues {
                    match queue.try_recv() {
                        Ok(Out::Message { frame, .. }) => drop(frame),
                        other => panic!("expected the message, got {other:?}"),
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, frames, fanout);
criterion_main!(benches);

//! `chatd bench` against a real server: small real runs of every scenario, checking that the
//! load generator's own bookkeeping holds (nothing missing, nothing doubled, every count adds
//! up). The server's per-user send limit is off in tests.

use std::time::Duration;

use chatd::bench::connections::ConnectionsOptions;
use chatd::bench::fanout::FanoutOptions;
use chatd::bench::history::HistoryOptions;
use chatd::bench::login::LoginOptions;
use chatd::bench::rooms::RoomsOptions;
use chatd::bench::{self, Target};

use crate::helpers::TestApp;

fn target(app: &TestApp) -> Target {
    Target::new(&app.url(""), false).expect("valid url")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_acked_message_to_every_subscriber_once() {
    let app = TestApp::spawn().await;
    let options = FanoutOptions {
        clients: 20,
        senders: 2,
        rates: vec![40.0, 60.0],
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(2),
        drain: Duration::from_secs(5),
        cleanup: true,
    };
    let reports = bench::fanout::run(&target(&app), &options).await.expect("fanout runs");
    assert_eq!(reports.len(), 2, "one result per rate");
    for r in &reports {
        assert!(r.acked > 0, "{r:?}");
        assert_eq!((r.sent, r.unanswered), (r.acked, 0), "every send acked: {r:?}");
        assert_eq!((r.missing, r.duplicates, r.unexpected), (0, 0, 0), "{r:?}");
        assert_eq!(r.delivered, r.acked * 20, "{r:?}");
        assert_eq!(r.expected_deliveries, r.delivered, "{r:?}");
        assert!(r.errors.is_empty(), "{r:?}");
        assert!(r.deliver_ms.p99 > 0.0 && r.deliver_ms.count > 0, "{r:?}");
    }
    assert!(
        reports[1].sent > reports[0].sent,
        "a higher rate sends more: {reports:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_acks_and_delivers_within_each_room() {
    let app = TestApp::spawn().await;
    let options = RoomsOptions {
        rooms: 3,
        clients: 3,
        rate: 45.0,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(1),
        drain: Duration::from_secs(5),
        cleanup: false,
    };
    let r = bench::rooms::run(&target(&app), &options).await.expect("rooms runs");
    assert_eq!((r.rooms, r.clients, r.senders), (3, 9, 9));
    assert!(r.acked > 0 && r.ack_ms.count > 0, "{r:?}");
    assert_eq!((r.missing, r.duplicates), (0, 0), "{r:?}");
    assert_eq!(
        r.delivered,
        r.acked * 3,
        "each message reaches its own room's 3 sockets: {r:?}"
    );
    assert!(r.errors.is_empty(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_open_every_socket() {
    let app = TestApp::spawn().await;
    let options = ConnectionsOptions {
        count: 50,
        hold: Duration::from_millis(200),
        users: 5,
        concurrency: 16,
        server_pid: Some(std::process::id()),
        cleanup: true,
    };
    let r = bench::connections::run(&target(&app), &options)
        .await
        .expect("connections runs");
    assert_eq!(r.opened, 50, "{r:?}");
    assert!(r.failures.is_empty(), "{r:?}");
    assert_eq!(r.dropped, 0, "{r:?}");
    // The server's RSS comes from its own /metrics (chatd_process_resident_memory_bytes).
    assert_eq!(r.rss_source, "metrics");
    assert!(
        r.rss_after_bytes.is_some() && r.rss_per_connection_bytes.is_some(),
        "{r:?}"
    );
}

#[test]
fn connections_beyond_the_open_file_limit_are_refused_up_front() {
    let err = bench::connections::check_limit(100_000_000).expect_err("too many");
    assert!(
        matches!(&err, bench::BenchError::Usage(m) if m.contains("RLIMIT_NOFILE")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_counts_logins() {
    let app = TestApp::spawn().await;
    let options = LoginOptions {
        concurrency: 2,
        duration: Duration::from_secs(1),
        during: None,
        cleanup: false,
    };
    let r = bench::login::run(&target(&app), &options).await.expect("login runs");
    assert!(r.logins > 0 && r.login_ms.p50 > 0.0, "{r:?}");
    assert!(r.errors.is_empty(), "{r:?}");
    assert!(r.fanout_baseline.is_none() && r.p99_ratio.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_seeds_the_room_then_pages_through_it() {
    let app = TestApp::spawn().await;
    let options = HistoryOptions {
        messages: 300,
        requests: 50,
        concurrency: 4,
        room: None,
        in_flight: 50,
        cleanup: false,
    };
    let t = target(&app);
    let r = bench::history::run(&t, &options).await.expect("history runs");
    assert_eq!((r.messages, r.seeded), (300, 300), "{r:?}");
    assert!(r.seed_errors.is_empty() && r.errors.is_empty(), "{r:?}");
    assert_eq!(
        r.newest_ms.count + r.before_ms.count,
        50,
        "every request answered 200: {r:?}"
    );
    assert!(r.newest_ms.p99 > 0.0 && r.before_ms.p99 > 0.0, "{r:?}");

    // Reusing the room seeds nothing more.
    let again = HistoryOptions {
        room: Some(r.room_id.clone()),
        requests: 4,
        ..options
    };
    let r2 = bench::history::run(&t, &again).await.expect("history reruns");
    assert_eq!((r2.messages, r2.seeded), (300, 0), "{r2:?}");
}

//! `chatd tui` against a real server: its client (the stream and the actions), its state and
//! its rendering together, as an operator at the console would see them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatd::tui::app::Tab;
use chatd::tui::{ui, Action, AdminClient, App, Auth, ClientError, Secret, StreamEvent, StreamOptions};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::mpsc;

use crate::helpers::TestApp;

/// Fast enough that a test does not wait long for the next snapshot.
const OPTIONS: StreamOptions = StreamOptions {
    interval_ms: 250,
    rooms: 200,
    connections: 500,
};

/// How long a test waits for the console to show what it expects.
const WAIT: Duration = Duration::from_secs(15);

/// The console's screen, as lines of text.
fn screen(app: &App) -> String {
    ui::render_text(app, 110, 30)
}

/// The rows of the table on screen (inside its border), not the title or the status line.
fn table_rows(screen: &str) -> Vec<&str> {
    screen.lines().filter(|l| l.starts_with('│')).collect()
}

fn press(app: &mut App, keys: &str) -> Option<Action> {
    let mut action = None;
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        action = app.on_key(KeyEvent::new(code, KeyModifiers::NONE)).or(action);
    }
    action
}

/// The console and the stream feeding it, as `chatd tui` runs them.
struct Console {
    app: App,
    client: Arc<AdminClient>,
    events: mpsc::Receiver<StreamEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Console {
    fn start(server: &TestApp, auth: Auth) -> Self {
        let client = Arc::new(AdminClient::new(&server.url(""), auth).expect("a client"));
        let (tx, events) = mpsc::channel(8);
        let task = tokio::spawn(client.clone().run_stream(OPTIONS, tx));
        Self {
            app: App::new(client.base(), Instant::now()),
            client,
            events,
            task,
        }
    }

    fn operator(server: &TestApp) -> Self {
        Self::start(server, Auth::Operator(server.config.clone()))
    }

    /// Feeds stream events into the console until its screen satisfies `done`.
    async fn until(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let shown = screen(&self.app);
            if done(&shown) {
                return shown;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    self.app.tick(Instant::now());
                    self.app.on_stream(event);
                }
                Ok(None) => panic!("the stream task ended; waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; the console shows:\n{shown}"),
            }
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn tui_shows_live_rooms_and_closes_a_connection() {
    let server = TestApp::spawn().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = server.room(&alice, "townhall", "public").await;
    server
        .expect(200, "POST", &format!("/api/v1/rooms/{room}/join"), Some(&bob), None)
        .await;
    let mut alice_ws = server.ws(&alice).await;
    alice_ws.subscribe(&room, None).await;
    let mut bob_ws = server.ws(&bob).await;
    bob_ws.subscribe(&room, None).await;

    let mut console = Console::operator(&server);
    press(&mut console.app, "2");
    let shown = console
        .until("townhall with 2 subscribers", |s| {
            table_rows(s).iter().any(|row| {
                // Room, Visibility, Subs, …
                let cells: Vec<&str> = row.split_whitespace().collect();
                cells.windows(3).any(|w| w == ["townhall", "public", "2"])
            })
        })
        .await;
    assert!(!shown.contains("DISCONNECTED"), "{shown}");

    // Select bob's connection through the filter, clear the filter (the selection stays on
    // bob's row), close it and confirm.
    press(&mut console.app, "3/bob\n");
    assert_eq!(
        console.app.selected_connection().map(|c| c.username.as_str()),
        Some("bob")
    );
    press(&mut console.app, "/\x1b");
    assert_eq!(console.app.visible_connections().len(), 2);
    let action = press(&mut console.app, "cy").expect("confirmed");
    assert!(
        matches!(&action, Action::CloseConnection { username, .. } if username == "bob"),
        "{action:?}"
    );
    let result = console.client.perform(&action).await.map_err(|e| e.to_string());
    console.app.on_action_done(&action, result);
    assert!(
        screen(&console.app).contains("closed connection"),
        "the status line says so"
    );

    let (code, reason) = bob_ws.closed().await;
    assert_eq!((code, reason.as_str()), (4010, "closed_by_admin: closed by operator"));
    let shown = console
        .until("bob's connection gone from the table", |s| {
            let rows = table_rows(s);
            rows.iter().any(|r| r.contains("alice")) && !rows.iter().any(|r| r.contains("bob"))
        })
        .await;
    assert!(!shown.contains("DISCONNECTED"), "{shown}");
}

#[tokio::test]
async fn tui_says_when_the_server_is_gone_and_keeps_the_last_data() {
    let mut server = TestApp::spawn().await;
    let alice = server.user("alice").await;
    let room = server.room(&alice, "lobby", "public").await;
    let mut ws = server.ws(&alice).await;
    ws.subscribe(&room, None).await;

    let mut console = Console::operator(&server);
    press(&mut console.app, "2");
    console
        .until("the lobby", |s| table_rows(s).iter().any(|r| r.contains("lobby")))
        .await;
    server.stop();
    let shown = console
        .until("the disconnected banner", |s| {
            s.contains("DISCONNECTED — last snapshot")
        })
        .await;
    assert!(shown.contains("retrying in"), "{shown}");
    assert!(
        table_rows(&shown).iter().any(|r| r.contains("lobby")),
        "the last data stays: {shown}"
    );
}

#[tokio::test]
async fn tui_signs_in_as_an_administrator_and_refuses_others() {
    let server = TestApp::spawn().await;
    server.admin("root").await;
    server.user("carol").await;

    let login = |username: &str| Auth::Login {
        username: username.into(),
        password: Secret::new("password123".into()),
    };
    let mut console = Console::start(&server, login("root"));
    console
        .until("a live snapshot", |s| {
            s.contains("Nodes") && !s.contains("DISCONNECTED")
        })
        .await;

    let carol = AdminClient::new(&server.url(""), login("carol")).unwrap();
    // The code is the server's to choose (it answers admin_required); 403 is the contract.
    assert!(
        matches!(carol.stats().await, Err(ClientError::Api { status: 403, .. })),
        "a non-administrator is refused"
    );
    let wrong = AdminClient::new(
        &server.url(""),
        Auth::Login {
            username: "root".into(),
            password: Secret::new("not-the-password".into()),
        },
    )
    .unwrap();
    assert!(matches!(wrong.snapshot(&OPTIONS).await, Err(ClientError::Auth(_))));
    let mut console = Console::start(&server, login("carol"));
    let shown = console
        .until("a refusal in the banner", |s| {
            s.contains("ACCESS REFUSED") && s.contains("HTTP 403")
        })
        .await;
    assert!(
        shown.contains("press q to quit") && !shown.contains("DISCONNECTED"),
        "{shown}"
    );
    assert_eq!(console.app.tab, Tab::Overview);
}

/// Every event the stream sends until its task ends by itself; a stream that keeps retrying
/// never ends, and fails the test.
async fn events_until_the_stream_stops(server: &TestApp, auth: Auth) -> Vec<StreamEvent> {
    let client = Arc::new(AdminClient::new(&server.url(""), auth).expect("a client"));
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(client.run_stream(OPTIONS, tx));
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(event)) => events.push(event),
            Ok(None) => break,
            Err(_) => panic!("the stream still runs after {WAIT:?}: {events:?}"),
        }
    }
    task.await.expect("the stream task");
    events
}

#[tokio::test]
async fn tui_gives_up_at_once_when_it_can_never_get_in() {
    let server = TestApp::spawn().await;
    server.admin("root").await;
    server.user("carol").await;
    let login = |username: &str, password: &str| Auth::Login {
        username: username.into(),
        password: Secret::new(password.into()),
    };
    let mut other_secret = (*server.config).clone();
    other_secret.auth.jwt_secret = Some("another-secret-another-secret-another-secret".into());
    other_secret.auth.jwt_secret_file = None;
    let cases = [
        ("not an administrator", login("carol", "password123"), "admin_required"),
        (
            "a wrong password",
            login("root", "not-the-password"),
            "invalid_credentials",
        ),
        (
            "a token signed with another secret",
            Auth::Operator(Arc::new(other_secret)),
            "invalid_token",
        ),
    ];
    for (what, auth, code) in cases {
        // Before the console starts: one call says it cannot get in.
        let client = AdminClient::new(&server.url(""), auth.clone()).expect("a client");
        let refused = client.check_access().await.expect_err(what);
        assert!(refused.is_refusal(), "{what}: {refused:?}");
        assert!(refused.to_string().contains(code), "{what}: {refused}");

        // While it runs: one refusal, and the stream stops (no password sent again and again).
        let events = events_until_the_stream_stops(&server, auth).await;
        match events.as_slice() {
            [StreamEvent::Refused { reason }] => assert!(reason.contains(code), "{what}: {reason}"),
            other => panic!("{what}: {other:?}"),
        }
        let mut app = App::new(server.url(""), Instant::now());
        for event in events {
            app.on_stream(event);
        }
        let shown = screen(&app);
        assert!(
            shown.contains("ACCESS REFUSED") && shown.contains(code) && shown.contains("press q to quit"),
            "{what}: {shown}"
        );
    }

    let root = AdminClient::new(&server.url(""), login("root", "password123")).expect("a client");
    root.check_access().await.expect("an administrator gets in");
}

#[tokio::test]
async fn tui_reports_a_server_that_is_not_running_as_such() {
    let mut server = TestApp::spawn().await;
    let client = AdminClient::new(&server.url(""), Auth::Operator(server.config.clone())).expect("a client");
    client.check_access().await.expect("running");
    server.stop();
    let e = client.check_access().await.expect_err("stopped");
    assert!(!e.is_refusal(), "an outage may pass: {e:?}");
    assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
}

//! The console's state and every change to it, as plain functions of (state, input): a key, a
//! snapshot from the stream, a tick, an action's outcome. Nothing here touches the terminal
//! or the network, so every behaviour (sorting, filtering, where the selection goes when rows
//! disappear, what a key does in a dialog) is unit-tested without either.
//!
//! The selection follows its row, not its position: each table remembers the key of the
//! selected row (a room's id, a connection's node and id), so a re-sort or a new snapshot
//! keeps the same row selected; only when that row is gone does the selection fall back to
//! the same position, clamped to the rows that are left.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use uuid::Uuid;

use crate::admin::types::{ConnectionInfo, RoomInfo, Snapshot};

/// Rows PgUp/PgDn move by.
pub const PAGE: usize = 10;

/// The reason sent with a close from the console.
pub const CLOSE_REASON: &str = "closed by operator";

/// The smallest terminal the layout fits. Below it only a "terminal too small" line is drawn,
/// and every key but the quit keys is ignored: a key must never act on rows nobody can see.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// How long an action's result stays on the status line. A failure stays until the next key.
pub const STATUS_TTL: Duration = Duration::from_secs(8);

/// The console's screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    Rooms,
    Connections,
}

impl Tab {
    pub const ALL: [Tab; 3] = [Tab::Overview, Tab::Rooms, Tab::Connections];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Rooms => "Rooms",
            Tab::Connections => "Connections",
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    fn next(self) -> Self {
        Tab::ALL[(self.index() + 1) % Tab::ALL.len()]
    }

    fn previous(self) -> Self {
        Tab::ALL[(self.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
    }
}

/// What the stream task tells the console.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Snapshot(Box<Snapshot>),
    /// The stream is down (or could not be opened); the next attempt is in `retry_in`.
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    /// The server refused us (not an administrator, a wrong password, a token it does not
    /// accept). Asking again would only repeat the refusal, so the stream has stopped.
    Refused {
        reason: String,
    },
}

/// The state of the link to the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// No snapshot yet, no failure yet.
    Connecting,
    Live,
    /// Down since the last failure; the client retries at `retry_at`.
    Down {
        reason: String,
        retry_at: Instant,
    },
    /// Refused for good (`StreamEvent::Refused`): nothing more will come.
    Refused {
        reason: String,
    },
}

/// Something the operator confirmed, for the client to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Connection `id` of node `node`.
    CloseConnection {
        id: u64,
        node: Uuid,
        username: String,
    },
    DisableUser {
        username: String,
    },
    ArchiveRoom {
        id: Uuid,
        name: String,
    },
}

impl Action {
    /// The confirmation question.
    pub fn question(&self) -> String {
        match self {
            Action::CloseConnection { id, username, .. } => format!("Close connection {id} ({username})?"),
            Action::DisableUser { username } => {
                format!("Disable user {username}? They are signed out everywhere and cannot log in.")
            }
            Action::ArchiveRoom { name, .. } => format!("Archive room {name}? It becomes read-only."),
        }
    }

    /// The status line while it is under way.
    pub fn pending(&self) -> String {
        match self {
            Action::CloseConnection { id, .. } => format!("closing connection {id}…"),
            Action::DisableUser { username } => format!("disabling user {username}…"),
            Action::ArchiveRoom { name, .. } => format!("archiving room {name}…"),
        }
    }

    /// The status line once it is done.
    pub fn done(&self) -> String {
        match self {
            Action::CloseConnection { id, username, .. } => format!("closed connection {id} ({username})"),
            Action::DisableUser { username } => format!("disabled user {username}"),
            Action::ArchiveRoom { name, .. } => format!("archived room {name}"),
        }
    }

    fn failed(&self, error: &str) -> String {
        match self {
            Action::CloseConnection { id, .. } => format!("cannot close connection {id}: {error}"),
            Action::DisableUser { username } => format!("cannot disable user {username}: {error}"),
            Action::ArchiveRoom { name, .. } => format!("cannot archive room {name}: {error}"),
        }
    }
}

/// The line above the help bar: the last action's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
    /// When it goes away by itself; `None` while the action is under way, and for a failure
    /// (which stays until the next key, so it is not missed).
    pub expires: Option<Instant>,
}

/// A table's columns: what the header says and how two rows compare.
pub trait Column: Copy + PartialEq + 'static {
    const ALL: &'static [Self];
    fn title(self) -> &'static str;
}

/// A row of a table: its identity, whether a filter matches it, how it sorts.
pub trait Row {
    type Column: Column;
    /// Stable across snapshots.
    fn key(&self) -> String;
    /// Whether `needle` (lower case) is a substring of its name, username or id.
    fn matches(&self, needle: &str) -> bool;
    fn compare(&self, other: &Self, column: Self::Column) -> Ordering;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomColumn {
    Name,
    Visibility,
    Subscribers,
    Members,
    Rate,
    LastSeq,
    Activity,
}

impl Column for RoomColumn {
    const ALL: &'static [Self] = &[
        RoomColumn::Name,
        RoomColumn::Visibility,
        RoomColumn::Subscribers,
        RoomColumn::Members,
        RoomColumn::Rate,
        RoomColumn::LastSeq,
        RoomColumn::Activity,
    ];

    fn title(self) -> &'static str {
        match self {
            RoomColumn::Name => "Room",
            RoomColumn::Visibility => "Visibility",
            RoomColumn::Subscribers => "Subs",
            RoomColumn::Members => "Members",
            RoomColumn::Rate => "Msg/s",
            RoomColumn::LastSeq => "Last seq",
            RoomColumn::Activity => "Active",
        }
    }
}

/// A room's name as the console shows it: direct rooms have none.
pub fn room_label(room: &RoomInfo) -> String {
    match &room.name {
        Some(name) => name.clone(),
        None => format!("(direct {})", short_id(&room.id)),
    }
}

/// The first 8 hex digits of a UUID: enough to tell rows apart on screen.
pub fn short_id(id: &Uuid) -> String {
    id.simple().to_string()[..8].to_string()
}

impl Row for RoomInfo {
    type Column = RoomColumn;

    fn key(&self) -> String {
        self.id.to_string()
    }

    fn matches(&self, needle: &str) -> bool {
        self.name.as_deref().unwrap_or_default().to_lowercase().contains(needle) || self.id.to_string().contains(needle)
    }

    fn compare(&self, other: &Self, column: RoomColumn) -> Ordering {
        match column {
            RoomColumn::Name => room_label(self).to_lowercase().cmp(&room_label(other).to_lowercase()),
            RoomColumn::Visibility => self.visibility.cmp(&other.visibility),
            RoomColumn::Subscribers => self.subscribers.cmp(&other.subscribers),
            RoomColumn::Members => self.members.cmp(&other.members),
            RoomColumn::Rate => self.messages_per_sec.total_cmp(&other.messages_per_sec),
            RoomColumn::LastSeq => self.last_seq.cmp(&other.last_seq),
            RoomColumn::Activity => self.last_activity.cmp(&other.last_activity),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionColumn {
    Id,
    User,
    Remote,
    Connected,
    Rooms,
    Queue,
    FramesIn,
    FramesOut,
}

impl Column for ConnectionColumn {
    const ALL: &'static [Self] = &[
        ConnectionColumn::Id,
        ConnectionColumn::User,
        ConnectionColumn::Remote,
        ConnectionColumn::Connected,
        ConnectionColumn::Rooms,
        ConnectionColumn::Queue,
        ConnectionColumn::FramesIn,
        ConnectionColumn::FramesOut,
    ];

    fn title(self) -> &'static str {
        match self {
            ConnectionColumn::Id => "Id",
            ConnectionColumn::User => "User",
            ConnectionColumn::Remote => "Remote",
            ConnectionColumn::Connected => "Age",
            ConnectionColumn::Rooms => "Rooms",
            ConnectionColumn::Queue => "Queue",
            ConnectionColumn::FramesIn => "In",
            ConnectionColumn::FramesOut => "Out",
        }
    }
}

impl Row for ConnectionInfo {
    type Column = ConnectionColumn;

    fn key(&self) -> String {
        // Ids are unique per node only.
        format!("{}/{}", self.node_id, self.id)
    }

    fn matches(&self, needle: &str) -> bool {
        self.username.to_lowercase().contains(needle) || self.id.to_string().contains(needle)
    }

    fn compare(&self, other: &Self, column: ConnectionColumn) -> Ordering {
        match column {
            ConnectionColumn::Id => (self.id, self.node_id).cmp(&(other.id, other.node_id)),
            ConnectionColumn::User => self.username.cmp(&other.username),
            ConnectionColumn::Remote => self.remote_addr.cmp(&other.remote_addr),
            // Oldest first reads as "by age, descending": the same order as the server's.
            ConnectionColumn::Connected => other.connected_at.cmp(&self.connected_at),
            ConnectionColumn::Rooms => self.rooms.len().cmp(&other.rooms.len()),
            ConnectionColumn::Queue => self.queue_depth.cmp(&other.queue_depth),
            ConnectionColumn::FramesIn => self.frames_in.cmp(&other.frames_in),
            ConnectionColumn::FramesOut => self.frames_out.cmp(&other.frames_out),
        }
    }
}

/// How one table is looked at: its sort, its filter and its selection.
#[derive(Debug, Clone, PartialEq)]
pub struct TableView<C> {
    pub sort: C,
    pub descending: bool,
    /// Applied filter, lower case; empty for none.
    pub filter: String,
    /// Index into the visible (filtered, sorted) rows.
    pub selected: usize,
    selected_key: Option<String>,
}

impl<C: Column> TableView<C> {
    pub fn new(sort: C, descending: bool) -> Self {
        Self {
            sort,
            descending,
            filter: String::new(),
            selected: 0,
            selected_key: None,
        }
    }

    /// The rows that pass the filter, in the view's order. Ties keep the server's order.
    pub fn visible<'a, R: Row<Column = C>>(&self, rows: &'a [R]) -> Vec<&'a R> {
        let mut out: Vec<&R> = rows.iter().filter(|r| r.matches(&self.filter)).collect();
        out.sort_by(|a, b| {
            let o = a.compare(b, self.sort);
            if self.descending {
                o.reverse()
            } else {
                o
            }
        });
        out
    }

    /// Puts the selection back on its row after the rows, the sort or the filter changed; when
    /// the row is gone, keeps the position, clamped to what is left.
    pub fn reselect<R: Row<Column = C>>(&mut self, rows: &[R]) {
        let visible = self.visible(rows);
        if let Some(key) = &self.selected_key {
            if let Some(at) = visible.iter().position(|r| &r.key() == key) {
                self.selected = at;
                return;
            }
        }
        self.selected = self.selected.min(visible.len().saturating_sub(1));
        self.selected_key = visible.get(self.selected).map(|r| r.key());
    }

    /// Moves the selection by `delta` rows, within the visible ones.
    pub fn move_by<R: Row<Column = C>>(&mut self, rows: &[R], delta: isize) {
        let visible = self.visible(rows);
        let last = visible.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
        self.selected_key = visible.get(self.selected).map(|r| r.key());
    }

    /// The next column becomes the sort key.
    pub fn cycle_sort(&mut self) {
        let at = C::ALL.iter().position(|c| *c == self.sort).unwrap_or(0);
        self.sort = C::ALL[(at + 1) % C::ALL.len()];
    }

    pub fn selected_row<'a, R: Row<Column = C>>(&self, rows: &'a [R]) -> Option<&'a R> {
        self.visible(rows).get(self.selected).copied()
    }
}

/// Everything the console shows.
#[derive(Debug, Clone)]
pub struct App {
    /// The server, as shown in the title.
    pub target: String,
    pub tab: Tab,
    /// The last snapshot received (kept, greyed, while the link is down).
    pub snapshot: Option<Snapshot>,
    pub link: Link,
    pub rooms: TableView<RoomColumn>,
    pub connections: TableView<ConnectionColumn>,
    /// Whether the selected row's detail pane is open.
    pub detail: bool,
    /// The filter being typed, while the filter input is open.
    pub input: Option<String>,
    /// The action awaiting y/n.
    pub dialog: Option<Action>,
    pub status: Option<Status>,
    /// The time of the last tick: the "retrying in" countdown counts down from it.
    pub now: Instant,
    /// When the last snapshot arrived, to say how old the data is while the link is down.
    pub received_at: Option<Instant>,
    /// The terminal's size at the last draw (or resize), as (width, height); `None` before
    /// the first. Keys are judged against what the operator can see.
    pub size: Option<(u16, u16)>,
    pub quit: bool,
}

impl App {
    pub fn new(target: impl Into<String>, now: Instant) -> Self {
        Self {
            target: target.into(),
            tab: Tab::Overview,
            snapshot: None,
            link: Link::Connecting,
            // The busiest rooms first (the server's order), the oldest connections first.
            rooms: TableView::new(RoomColumn::Subscribers, true),
            connections: TableView::new(ConnectionColumn::Id, false),
            detail: false,
            input: None,
            dialog: None,
            status: None,
            now,
            received_at: None,
            size: None,
            quit: false,
        }
    }

    /// Records the size the screen was last drawn at.
    pub fn resized(&mut self, width: u16, height: u16) {
        self.size = Some((width, height));
    }

    /// Whether the last draw was the "terminal too small" screen.
    pub fn too_small(&self) -> bool {
        matches!(self.size, Some((w, h)) if w < MIN_WIDTH || h < MIN_HEIGHT)
    }

    fn room_rows(&self) -> &[RoomInfo] {
        self.snapshot.as_ref().map(|s| s.rooms.as_slice()).unwrap_or_default()
    }

    fn connection_rows(&self) -> &[ConnectionInfo] {
        self.snapshot
            .as_ref()
            .map(|s| s.connections.as_slice())
            .unwrap_or_default()
    }

    pub fn visible_rooms(&self) -> Vec<&RoomInfo> {
        self.rooms.visible(self.room_rows())
    }

    pub fn visible_connections(&self) -> Vec<&ConnectionInfo> {
        self.connections.visible(self.connection_rows())
    }

    pub fn selected_room(&self) -> Option<&RoomInfo> {
        self.rooms.selected_row(self.room_rows())
    }

    pub fn selected_connection(&self) -> Option<&ConnectionInfo> {
        self.connections.selected_row(self.connection_rows())
    }

    /// Whether what is shown is the server's present (not the last data before a failure).
    pub fn is_live(&self) -> bool {
        self.link == Link::Live
    }

    /// Whole seconds until the next reconnection attempt, when the link is down.
    pub fn retry_in_secs(&self) -> Option<u64> {
        match &self.link {
            Link::Down { retry_at, .. } => {
                let left = retry_at.saturating_duration_since(self.now);
                Some(left.as_millis().div_ceil(1000) as u64)
            }
            _ => None,
        }
    }

    /// Whole seconds since the last snapshot arrived, if one did.
    pub fn data_age_secs(&self) -> Option<u64> {
        self.received_at
            .map(|at| self.now.saturating_duration_since(at).as_secs())
    }

    pub fn tick(&mut self, now: Instant) {
        self.now = now;
        if matches!(&self.status, Some(Status { expires: Some(at), .. }) if *at <= now) {
            self.status = None;
        }
    }

    pub fn on_stream(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Snapshot(snapshot) => {
                self.snapshot = Some(*snapshot);
                self.link = Link::Live;
                self.received_at = Some(self.now);
                self.reselect();
            }
            StreamEvent::Disconnected { reason, retry_in } => {
                self.link = Link::Down {
                    reason,
                    retry_at: self.now + retry_in,
                };
            }
            StreamEvent::Refused { reason } => self.link = Link::Refused { reason },
        }
    }

    /// An action the operator confirmed is under way.
    pub fn on_action_started(&mut self, action: &Action) {
        self.status = Some(Status {
            text: action.pending(),
            error: false,
            expires: None,
        });
    }

    /// The outcome of an action the client carried out.
    pub fn on_action_done(&mut self, action: &Action, result: Result<(), String>) {
        self.status = Some(match result {
            Ok(()) => Status {
                text: action.done(),
                error: false,
                expires: Some(self.now + STATUS_TTL),
            },
            Err(e) => Status {
                text: action.failed(&e),
                error: true,
                expires: None,
            },
        });
    }

    fn reselect(&mut self) {
        let (rooms, connections) = match &self.snapshot {
            Some(s) => (s.rooms.as_slice(), s.connections.as_slice()),
            None => (&[][..], &[][..]),
        };
        self.rooms.reselect(rooms);
        self.connections.reselect(connections);
    }

    /// Handles a key; returns the action the operator just confirmed, if any.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('c' | 'C')) {
            self.quit = true;
            return None;
        }
        if self.too_small() {
            // Nothing on screen to act on: only the ways out work.
            if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                self.quit = true;
            }
            return None;
        }
        // A failure has been seen once a key is pressed.
        if self.status.as_ref().is_some_and(|s| s.error) {
            self.status = None;
        }
        if let Some(action) = self.dialog.take() {
            return match key.code {
                KeyCode::Char('y' | 'Y') => Some(action),
                KeyCode::Char('n' | 'N') | KeyCode::Esc => None,
                // Any other key leaves the question up.
                _ => {
                    self.dialog = Some(action);
                    None
                }
            };
        }
        if let Some(text) = &mut self.input {
            // The filter applies as it is typed; Enter closes the input and keeps it.
            match key.code {
                KeyCode::Enter => self.input = None,
                KeyCode::Esc => {
                    self.input = None;
                    self.set_filter(String::new());
                }
                KeyCode::Backspace => {
                    text.pop();
                    let filter = text.trim().to_lowercase();
                    self.set_filter(filter);
                }
                KeyCode::Char(c) => {
                    text.push(c);
                    let filter = text.trim().to_lowercase();
                    self.set_filter(filter);
                }
                _ => {}
            }
            return None;
        }
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            // Esc steps back: the detail pane first, then the filter, then out.
            KeyCode::Esc => {
                if self.detail_shown() {
                    self.detail = false;
                } else if !self.current_filter().is_empty() {
                    self.set_filter(String::new());
                } else {
                    self.quit = true;
                }
            }
            KeyCode::Tab => self.tab = self.tab.next(),
            KeyCode::BackTab => self.tab = self.tab.previous(),
            KeyCode::Char('1') => self.tab = Tab::Overview,
            KeyCode::Char('2') => self.tab = Tab::Rooms,
            KeyCode::Char('3') => self.tab = Tab::Connections,
            KeyCode::Char('s') => self.with_view(|v| v.cycle_sort(), |v| v.cycle_sort()),
            KeyCode::Char('S') => self.with_view(|v| v.descending ^= true, |v| v.descending ^= true),
            KeyCode::Char('/') if self.tab != Tab::Overview => {
                let current = match self.tab {
                    Tab::Rooms => self.rooms.filter.clone(),
                    _ => self.connections.filter.clone(),
                };
                self.input = Some(current);
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-(PAGE as isize)),
            KeyCode::PageDown => self.move_by(PAGE as isize),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(isize::MIN),
            KeyCode::End | KeyCode::Char('G') => self.move_by(isize::MAX),
            KeyCode::Enter if self.tab != Tab::Overview => self.detail = !self.detail,
            KeyCode::Char('c') if self.tab == Tab::Connections => {
                self.dialog = self.selected_connection().map(|c| Action::CloseConnection {
                    id: c.id,
                    node: c.node_id,
                    username: c.username.clone(),
                });
            }
            KeyCode::Char('d') if self.tab == Tab::Connections => {
                self.dialog = self.selected_connection().map(|c| Action::DisableUser {
                    username: c.username.clone(),
                });
            }
            KeyCode::Char('a') if self.tab == Tab::Rooms => {
                self.dialog = self.selected_room().map(|r| Action::ArchiveRoom {
                    id: r.id,
                    name: room_label(r),
                });
            }
            _ => {}
        }
        None
    }

    /// Whether a detail pane is open with a row in it: what Esc closes first. (With no row
    /// selected there is no pane to see, and Esc goes on to the filter.)
    pub fn detail_shown(&self) -> bool {
        self.detail
            && match self.tab {
                Tab::Rooms => self.selected_room().is_some(),
                Tab::Connections => self.selected_connection().is_some(),
                Tab::Overview => false,
            }
    }

    /// The filter applied to the current screen's table (empty for none, and on the overview).
    pub fn current_filter(&self) -> &str {
        match self.tab {
            Tab::Rooms => &self.rooms.filter,
            Tab::Connections => &self.connections.filter,
            Tab::Overview => "",
        }
    }

    fn set_filter(&mut self, filter: String) {
        match self.tab {
            Tab::Rooms => self.rooms.filter = filter,
            Tab::Connections => self.connections.filter = filter,
            Tab::Overview => {}
        }
        self.reselect();
    }

    /// Applies `rooms` or `connections` to the current tab's view, then reselects.
    fn with_view(
        &mut self,
        rooms: impl FnOnce(&mut TableView<RoomColumn>),
        connections: impl FnOnce(&mut TableView<ConnectionColumn>),
    ) {
        match self.tab {
            Tab::Rooms => rooms(&mut self.rooms),
            Tab::Connections => connections(&mut self.connections),
            Tab::Overview => return,
        }
        self.reselect();
    }

    fn move_by(&mut self, delta: isize) {
        let Some(snapshot) = &self.snapshot else {
            return;
        };
        match self.tab {
            Tab::Rooms => self.rooms.move_by(&snapshot.rooms, delta),
            Tab::Connections => self.connections.move_by(&snapshot.connections, delta),
            Tab::Overview => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::admin::types::{NodeStats, PoolStats, Stats, Totals};
    use time::OffsetDateTime;

    pub fn room(name: &str, subscribers: u64) -> RoomInfo {
        RoomInfo {
            id: Uuid::new_v4(),
            name: Some(name.into()),
            visibility: "public".into(),
            archived: false,
            subscribers,
            members: subscribers + 1,
            last_seq: 7,
            messages_per_sec: 0.5,
            last_activity: None,
        }
    }

    pub fn connection(id: u64, username: &str) -> ConnectionInfo {
        ConnectionInfo {
            id,
            node_id: Uuid::nil(),
            user_id: Uuid::new_v4(),
            username: username.into(),
            session_id: Uuid::new_v4(),
            remote_addr: Some("127.0.0.1:50000".into()),
            user_agent: None,
            connected_at: OffsetDateTime::UNIX_EPOCH,
            rooms: vec![],
            queue_depth: 0,
            queue_capacity: 256,
            frames_in: 3,
            frames_out: 4,
        }
    }

    pub fn node() -> NodeStats {
        NodeStats {
            node_id: Uuid::nil(),
            hostname: "alpha".into(),
            address: "127.0.0.1:8080".into(),
            url: "http://127.0.0.1:8080".into(),
            signing_key_id: "0123456789abcdef".into(),
            version: "0.1.0".into(),
            started_at: OffsetDateTime::UNIX_EPOCH,
            uptime_secs: 3725,
            connections: 2,
            users_online: 2,
            subscriptions: 3,
            rooms_live: 1,
            messages_in_total: 10,
            messages_out_total: 30,
            messages_in_per_sec: 1.5,
            messages_out_per_sec: 4.5,
            queue_drops_total: 0,
            db_pool: PoolStats {
                max_size: 16,
                connections: 4,
                idle: 3,
                in_use: 1,
            },
            rss_bytes: Some(50 * 1024 * 1024),
            message_rate_history: vec![1.0, 2.0, 3.0, 2.0],
        }
    }

    pub fn snapshot(rooms: Vec<RoomInfo>, connections: Vec<ConnectionInfo>) -> Snapshot {
        Snapshot {
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1),
            stats: Stats {
                nodes: vec![node()],
                totals: Totals {
                    nodes: 1,
                    connections: connections.len() as u64,
                    ..Totals::default()
                },
            },
            rooms,
            connections,
            truncated: false,
        }
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn app_with(rooms: Vec<RoomInfo>, connections: Vec<ConnectionInfo>) -> App {
        let mut app = App::new("http://test", Instant::now());
        app.on_stream(StreamEvent::Snapshot(Box::new(snapshot(rooms, connections))));
        app
    }

    fn names(app: &App) -> Vec<String> {
        app.visible_rooms().iter().map(|r| room_label(r)).collect()
    }

    #[test]
    fn rooms_sort_by_subscribers_descending_then_by_the_chosen_column() {
        let mut app = app_with(vec![room("b", 1), room("c", 9), room("a", 5)], vec![]);
        app.on_key(key(KeyCode::Char('2')));
        assert_eq!(names(&app), ["c", "a", "b"]);
        // Subscribers → Members → Msg/s → Last seq → Active → Room.
        for _ in 0..5 {
            app.on_key(key(KeyCode::Char('s')));
        }
        assert_eq!(app.rooms.sort, RoomColumn::Name);
        assert_eq!(names(&app), ["c", "b", "a"], "still descending");
        app.on_key(key(KeyCode::Char('S')));
        assert_eq!(names(&app), ["a", "b", "c"]);
    }

    #[test]
    fn the_filter_matches_names_and_ids_and_esc_clears_it() {
        let general = room("General", 1);
        let id = general.id.to_string();
        let mut app = app_with(vec![general, room("random", 2), room("gen-z", 3)], vec![]);
        app.on_key(key(KeyCode::Char('2')));
        app.on_key(key(KeyCode::Char('/')));
        for c in "GEN".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(names(&app), ["gen-z", "General"], "applied as it is typed");
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.input, None);
        assert_eq!(names(&app), ["gen-z", "General"], "and kept by Enter");
        assert!(!app.quit);

        app.on_key(key(KeyCode::Char('/')));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(names(&app).len(), 3, "Esc clears the filter");
        assert!(!app.quit, "Esc in the filter input does not quit");

        app.on_key(key(KeyCode::Char('/')));
        for c in id[..13].chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        app.on_key(key(KeyCode::Enter));
        assert_eq!(names(&app), ["General"], "by id");
    }

    #[test]
    fn connections_filter_by_username_or_id() {
        let mut app = app_with(
            vec![],
            vec![connection(1, "alice"), connection(22, "bob"), connection(3, "carol")],
        );
        app.on_key(key(KeyCode::Char('3')));
        app.on_key(key(KeyCode::Char('/')));
        app.on_key(key(KeyCode::Char('2')));
        app.on_key(key(KeyCode::Enter));
        let users: Vec<_> = app.visible_connections().iter().map(|c| c.username.clone()).collect();
        assert_eq!(users, ["bob"]);
    }

    #[test]
    fn the_selection_follows_its_row_and_is_clamped_when_rows_disappear() {
        let rows: Vec<_> = (1..=5).map(|i| connection(i, &format!("u{i}"))).collect();
        let mut app = app_with(vec![], rows.clone());
        app.on_key(key(KeyCode::Char('3')));
        app.on_key(key(KeyCode::End));
        assert_eq!(app.selected_connection().map(|c| c.id), Some(5));
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.selected_connection().map(|c| c.id), Some(4));

        // Row 1 goes: the selection stays on connection 4, now one position up.
        app.on_stream(StreamEvent::Snapshot(Box::new(snapshot(vec![], rows[1..].to_vec()))));
        assert_eq!(app.selected_connection().map(|c| c.id), Some(4));
        assert_eq!(app.connections.selected, 2);

        // Connections 4 and 5 go: the selection falls back to the last row left.
        app.on_stream(StreamEvent::Snapshot(Box::new(snapshot(vec![], rows[1..3].to_vec()))));
        assert_eq!(app.selected_connection().map(|c| c.id), Some(3));

        // All go: nothing is selected, and moving does not panic.
        app.on_stream(StreamEvent::Snapshot(Box::new(snapshot(vec![], vec![]))));
        assert_eq!(app.selected_connection(), None);
        for code in [
            KeyCode::Down,
            KeyCode::PageDown,
            KeyCode::Home,
            KeyCode::PageUp,
            KeyCode::End,
        ] {
            app.on_key(key(code));
        }
        assert_eq!(app.connections.selected, 0);
    }

    #[test]
    fn moving_stays_within_the_rows() {
        let rows: Vec<_> = (1..=25).map(|i| connection(i, "u")).collect();
        let mut app = app_with(vec![], rows);
        app.on_key(key(KeyCode::Char('3')));
        app.on_key(key(KeyCode::Char('k')));
        assert_eq!(app.connections.selected, 0);
        app.on_key(key(KeyCode::PageDown));
        app.on_key(key(KeyCode::Char('j')));
        assert_eq!(app.connections.selected, PAGE + 1);
        for _ in 0..5 {
            app.on_key(key(KeyCode::PageDown));
        }
        assert_eq!(app.connections.selected, 24);
        app.on_key(key(KeyCode::Home));
        assert_eq!(app.connections.selected, 0);
    }

    #[test]
    fn close_asks_first_and_n_cancels() {
        let mut app = app_with(vec![], vec![connection(7, "mallory")]);
        app.on_key(key(KeyCode::Char('c')));
        assert_eq!(app.dialog, None, "not on the overview");
        app.on_key(key(KeyCode::Char('3')));
        assert_eq!(app.on_key(key(KeyCode::Char('c'))), None);
        assert!(app.dialog.is_some());
        assert_eq!(app.on_key(key(KeyCode::Char('x'))), None, "other keys leave it up");
        assert!(app.dialog.is_some());
        assert_eq!(app.on_key(key(KeyCode::Char('n'))), None);
        assert_eq!(app.dialog, None);
        assert!(!app.quit);

        app.on_key(key(KeyCode::Char('c')));
        assert_eq!(app.on_key(key(KeyCode::Esc)), None);
        assert!(!app.quit, "Esc closes the dialog, not the console");

        app.on_key(key(KeyCode::Char('c')));
        assert_eq!(
            app.on_key(key(KeyCode::Char('y'))),
            Some(Action::CloseConnection {
                id: 7,
                node: node().node_id,
                username: "mallory".into()
            })
        );
        app.on_key(key(KeyCode::Char('d')));
        assert_eq!(
            app.on_key(key(KeyCode::Char('y'))),
            Some(Action::DisableUser {
                username: "mallory".into()
            })
        );
    }

    #[test]
    fn archive_is_offered_on_the_rooms_screen_only() {
        let r = room("old", 0);
        let id = r.id;
        let mut app = app_with(vec![r], vec![connection(1, "a")]);
        app.on_key(key(KeyCode::Char('3')));
        app.on_key(key(KeyCode::Char('a')));
        assert_eq!(app.dialog, None);
        app.on_key(key(KeyCode::Tab));
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.tab, Tab::Rooms, "Tab wraps around");
        app.on_key(key(KeyCode::Char('a')));
        assert_eq!(
            app.on_key(key(KeyCode::Char('Y'))),
            Some(Action::ArchiveRoom { id, name: "old".into() })
        );
        app.on_key(key(KeyCode::Char('d')));
        assert_eq!(app.dialog, None, "disable is for connections");
    }

    #[test]
    fn q_esc_and_ctrl_c_quit() {
        for k in [
            key(KeyCode::Char('q')),
            key(KeyCode::Esc),
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
        ] {
            let mut app = app_with(vec![], vec![]);
            app.on_key(k);
            assert!(app.quit, "{k:?}");
        }
        let mut app = app_with(vec![], vec![connection(1, "a")]);
        app.on_key(key(KeyCode::Char('3')));
        app.on_key(key(KeyCode::Char('c')));
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(app.quit, "Ctrl-C quits even with a dialog open");
    }

    #[test]
    fn a_failure_keeps_the_data_and_counts_down() {
        let start = Instant::now();
        let mut app = App::new("http://test", start);
        app.on_stream(StreamEvent::Snapshot(Box::new(snapshot(vec![room("a", 1)], vec![]))));
        assert!(app.is_live());
        app.on_stream(StreamEvent::Disconnected {
            reason: "connection refused".into(),
            retry_in: Duration::from_secs(4),
        });
        assert!(!app.is_live());
        assert_eq!(app.retry_in_secs(), Some(4));
        app.tick(start + Duration::from_millis(1500));
        assert_eq!(app.retry_in_secs(), Some(3));
        app.tick(start + Duration::from_secs(10));
        assert_eq!(app.retry_in_secs(), Some(0));
        assert_eq!(app.visible_rooms().len(), 1, "the last data stays");
    }

    #[test]
    fn below_the_minimum_size_only_the_quit_keys_work() {
        let mut app = app_with(vec![], vec![connection(4, "bob")]);
        app.resized(40, 10);
        assert!(app.too_small());
        // What closed a connection blind in the acceptance test.
        for code in [KeyCode::Char('3'), KeyCode::End, KeyCode::Char('c'), KeyCode::Char('y')] {
            assert_eq!(app.on_key(key(code)), None);
        }
        assert_eq!(app.tab, Tab::Overview);
        assert_eq!(app.dialog, None);
        app.on_key(key(KeyCode::Esc));
        assert!(app.quit, "Esc still quits");

        let mut app = app_with(vec![], vec![connection(4, "bob")]);
        app.resized(MIN_WIDTH, MIN_HEIGHT);
        assert!(!app.too_small());
        app.on_key(key(KeyCode::Char('3')));
        app.on_key(key(KeyCode::Char('c')));
        assert!(app.dialog.is_some(), "at the minimum the keys work");
        app.resized(MIN_WIDTH - 1, MIN_HEIGHT);
        assert_eq!(app.on_key(key(KeyCode::Char('y'))), None, "not even to confirm");
        app.on_key(key(KeyCode::Char('q')));
        assert!(app.quit);
    }

    #[test]
    fn esc_closes_the_detail_then_clears_the_filter_then_quits() {
        let mut app = app_with(vec![], vec![connection(1, "alice"), connection(2, "bob")]);
        app.on_key(key(KeyCode::Char('3')));
        app.on_key(key(KeyCode::Char('/')));
        app.on_key(key(KeyCode::Char('b')));
        app.on_key(key(KeyCode::Enter));
        app.on_key(key(KeyCode::Enter));
        assert!(app.detail);
        app.on_key(key(KeyCode::Esc));
        assert!(!app.detail && !app.quit, "the detail pane first");
        assert_eq!(app.visible_connections().len(), 1);
        app.on_key(key(KeyCode::Esc));
        assert!(!app.quit, "then the filter");
        assert_eq!(app.visible_connections().len(), 2);
        app.on_key(key(KeyCode::Esc));
        assert!(app.quit, "then out");

        // A pane with no row in it is not there to close.
        let mut app = app_with(vec![], vec![]);
        app.on_key(key(KeyCode::Char('3')));
        app.on_key(key(KeyCode::Enter));
        app.on_key(key(KeyCode::Esc));
        assert!(app.quit, "nothing to close: out");
    }

    #[test]
    fn a_result_leaves_the_status_line_after_a_while_and_a_failure_at_the_next_key() {
        let start = Instant::now();
        let mut app = App::new("http://test", start);
        let action = Action::CloseConnection {
            id: 4,
            node: Uuid::nil(),
            username: "bob".into(),
        };
        app.on_action_started(&action);
        app.tick(start + STATUS_TTL * 2);
        assert!(app.status.is_some(), "under way: stays");
        app.on_action_done(&action, Ok(()));
        app.tick(start + STATUS_TTL * 2 + Duration::from_secs(7));
        assert!(app.status.is_some());
        app.tick(start + STATUS_TTL * 3);
        assert_eq!(app.status, None, "gone after {STATUS_TTL:?}");

        app.on_action_done(&action, Err("not_found".into()));
        app.tick(start + STATUS_TTL * 10);
        assert!(
            app.status.as_ref().is_some_and(|s| s.error),
            "a failure waits to be seen"
        );
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.status, None);
    }

    #[test]
    fn a_refusal_is_final_and_the_data_age_is_known() {
        let start = Instant::now();
        let mut app = App::new("http://test", start);
        assert_eq!(app.data_age_secs(), None);
        app.on_stream(StreamEvent::Snapshot(Box::new(snapshot(vec![], vec![]))));
        app.tick(start + Duration::from_secs(35));
        assert_eq!(app.data_age_secs(), Some(35));
        app.on_stream(StreamEvent::Refused {
            reason: "admin_required".into(),
        });
        assert_eq!(
            app.link,
            Link::Refused {
                reason: "admin_required".into()
            }
        );
        assert!(!app.is_live());
        assert_eq!(app.retry_in_secs(), None, "no retry to count down to");
    }

    #[test]
    fn action_outcomes_reach_the_status_line() {
        let mut app = App::new("http://test", Instant::now());
        let action = Action::DisableUser { username: "bob".into() };
        app.on_action_done(&action, Ok(()));
        assert_eq!(
            app.status.as_ref().map(|s| (s.text.as_str(), s.error)),
            Some(("disabled user bob", false))
        );
        app.on_action_done(&action, Err("forbidden".into()));
        assert_eq!(
            app.status.as_ref().map(|s| (s.text.as_str(), s.error)),
            Some(("cannot disable user bob: forbidden", true))
        );
    }
}

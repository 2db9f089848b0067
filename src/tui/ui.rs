//! Drawing: one pure `render(frame, &App)`, nothing else. It reads the state and never
//! changes it, so what a screen shows for a given state is tested with ratatui's
//! `TestBackend` and no terminal.
//!
//! Every size must draw without a panic, 0×0 included: below `MIN_WIDTH`×`MIN_HEIGHT` only a
//! "terminal too small" line is drawn, and on short terminals the detail pane and the
//! sparkline give way to the tables.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize as _};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row as TableRow, Sparkline, Table, TableState, Tabs, Wrap};
use ratatui::Frame;
use time::OffsetDateTime;

use super::app::{room_label, short_id, Action, App, Column, Link, Tab, TableView};
use crate::admin::types::{ConnectionInfo, NodeStats, RoomInfo, Snapshot};

/// The smallest terminal the layout fits.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

/// Body height under which the detail pane is not shown.
const DETAIL_MIN_BODY: u16 = 16;
/// Body height under which the overview's sparkline is not shown.
const SPARKLINE_MIN_BODY: u16 = 14;
/// Width under which the overview leaves out the nodes' addresses.
const ADDRESS_MIN_WIDTH: u16 = 100;

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "terminal too small ({}×{}), need {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let banner_height = u16::from(!app.is_live());
    let [title, banner, body, status, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_height),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    render_title(frame, title, app);
    render_banner(frame, banner, app);
    // The last data, greyed, while it is no longer the server's present.
    let data = if app.is_live() {
        Style::default()
    } else {
        Style::default().fg(Color::DarkGray)
    };
    match (&app.snapshot, app.tab) {
        (None, _) => frame.render_widget(
            Paragraph::new("waiting for the first snapshot…").block(Block::bordered()),
            body,
        ),
        (Some(s), Tab::Overview) => render_overview(frame, body, s, data),
        (Some(s), Tab::Rooms) => render_rooms(frame, body, app, s, data),
        (Some(s), Tab::Connections) => render_connections(frame, body, app, s, data),
    }
    render_status(frame, status, app);
    render_help(frame, help, app);
    if let Some(action) = &app.dialog {
        render_dialog(frame, body, action);
    }
}

fn render_title(frame: &mut Frame, area: Rect, app: &App) {
    let (rooms, connections) = match &app.snapshot {
        Some(s) => (s.rooms.len().to_string(), s.connections.len().to_string()),
        None => ("-".into(), "-".into()),
    };
    let titles = [
        format!("1 {}", Tab::Overview.title()),
        format!("2 {} ({rooms})", Tab::Rooms.title()),
        format!("3 {} ({connections})", Tab::Connections.title()),
    ];
    let at = app.snapshot.as_ref().map(|s| clock(s.at)).unwrap_or_default();
    let target = format!("{} {at}", app.target);
    // The tabs come first; the server and the time only where they fit beside them.
    let tabs_width: usize = titles.iter().map(|t| t.chars().count() + 3).sum();
    let target_width = if tabs_width + target.chars().count() < usize::from(area.width) {
        u16::try_from(target.chars().count()).unwrap_or(0)
    } else {
        0
    };
    let [tabs, target_area] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(target_width)]).areas(area);
    frame.render_widget(
        Tabs::new(titles)
            .select(app.tab.index())
            .highlight_style(Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        tabs,
    );
    frame.render_widget(Line::from(target).dim(), target_area);
}

fn render_banner(frame: &mut Frame, area: Rect, app: &App) {
    let (text, style) = match &app.link {
        Link::Live => return,
        Link::Connecting => (
            format!(" connecting to {}…", app.target),
            Style::default().fg(Color::Black).bg(Color::Yellow),
        ),
        Link::Down { reason, .. } => (
            format!(
                " DISCONNECTED — retrying in {}s ({reason}); showing the last data received",
                app.retry_in_secs().unwrap_or(0)
            ),
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ),
    };
    frame.render_widget(Paragraph::new(text).style(style), area);
}

fn render_overview(frame: &mut Frame, area: Rect, snapshot: &Snapshot, data: Style) {
    let spark_height = if area.height >= SPARKLINE_MIN_BODY { 6 } else { 0 };
    let [nodes, spark] = Layout::vertical([Constraint::Fill(1), Constraint::Length(spark_height)]).areas(area);
    let t = &snapshot.stats.totals;
    let drops: u64 = snapshot.stats.nodes.iter().map(|n| n.queue_drops_total).sum();
    let header = [
        "Node", "Address", "Uptime", "Conns", "Subs", "In/s", "Out/s", "Drops", "DB pool", "RSS",
    ]
    .map(String::from);
    let totals = [
        format!("{} node(s)", t.nodes),
        String::new(),
        String::new(),
        t.connections.to_string(),
        t.subscriptions.to_string(),
        rate(t.messages_in_per_sec),
        rate(t.messages_out_per_sec),
        drops.to_string(),
        String::new(),
        format!("{} users", t.users_online),
    ];
    let widths = [
        Constraint::Min(14),
        Constraint::Min(14),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(9),
    ];
    // On a narrow terminal the address gives way: the hostname names the node.
    let keep = |i: usize| i != 1 || area.width >= ADDRESS_MIN_WIDTH;
    let pick = |cells: [String; 10]| -> TableRow<'static> {
        TableRow::new(cells.into_iter().enumerate().filter(|(i, _)| keep(*i)).map(|(_, c)| c))
    };
    let rows = snapshot.stats.nodes.iter().map(|n| pick(node_cells(n)));
    let header = pick(header).bold();
    let totals = pick(totals).bold();
    let widths: Vec<Constraint> = widths
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, w)| w)
        .collect();
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .footer(totals)
            .style(data)
            .block(Block::bordered().title(" Nodes ")),
        nodes,
    );
    if spark_height > 0 {
        // Inside the border: one column per sample, the newest at the right.
        let width = usize::from(spark.width.saturating_sub(2));
        let history = total_history(&snapshot.stats.nodes);
        let shown = &history[history.len().saturating_sub(width)..];
        let peak = shown.iter().copied().fold(0.0_f64, f64::max);
        let samples: Vec<u64> = shown.iter().map(|r| r.round() as u64).collect();
        let title = format!(
            " Messages in/s, last {}s: now {}, peak {} ",
            shown.len(),
            rate(shown.last().copied().unwrap_or(0.0)),
            rate(peak)
        );
        frame.render_widget(
            Sparkline::default()
                .data(&samples)
                .style(if data == Style::default() {
                    Style::default().fg(Color::Green)
                } else {
                    data
                })
                .block(Block::bordered().title(title)),
            spark,
        );
    }
}

fn node_cells(n: &NodeStats) -> [String; 10] {
    [
        format!("{} {}", n.hostname, short_id(&n.node_id)),
        n.address.clone(),
        duration(n.uptime_secs),
        n.connections.to_string(),
        n.subscriptions.to_string(),
        rate(n.messages_in_per_sec),
        rate(n.messages_out_per_sec),
        n.queue_drops_total.to_string(),
        format!("{}/{}", n.db_pool.in_use, n.db_pool.max_size),
        n.rss_bytes.map(bytes).unwrap_or_else(|| "-".into()),
    ]
}

/// The message rate over all nodes, one sample a second, oldest first: the nodes' histories
/// aligned on their newest sample and summed.
pub fn total_history(nodes: &[NodeStats]) -> Vec<f64> {
    let len = nodes.iter().map(|n| n.message_rate_history.len()).max().unwrap_or(0);
    let mut total = vec![0.0; len];
    for n in nodes {
        let offset = len - n.message_rate_history.len();
        for (i, r) in n.message_rate_history.iter().enumerate() {
            total[offset + i] += r;
        }
    }
    total
}

/// The table area and, when open and there is room, the detail pane below it.
fn split_detail(area: Rect, open: bool) -> (Rect, Option<Rect>) {
    if !open || area.height < DETAIL_MIN_BODY {
        return (area, None);
    }
    let [table, detail] = Layout::vertical([Constraint::Fill(1), Constraint::Length(9)]).areas(area);
    (table, Some(detail))
}

fn header<C: Column>(view: &TableView<C>) -> TableRow<'static> {
    TableRow::new(C::ALL.iter().map(|c| {
        let mark = match (*c == view.sort, view.descending) {
            (false, _) => "",
            (true, true) => "▼",
            (true, false) => "▲",
        };
        Cell::from(format!("{}{mark}", c.title()))
    }))
    .bold()
}

fn table_title(what: &str, shown: usize, total: usize, filter: &str, truncated: bool) -> String {
    let mut title = format!(" {what}: {shown}");
    if shown != total {
        title.push_str(&format!(" of {total}"));
    }
    if !filter.is_empty() {
        title.push_str(&format!(", filter \"{filter}\""));
    }
    if truncated {
        title.push_str(" (the server cut the list at its limit)");
    }
    title.push(' ');
    title
}

fn selection(len: usize, selected: usize) -> TableState {
    TableState::new().with_selected((len > 0).then_some(selected))
}

fn render_rooms(frame: &mut Frame, area: Rect, app: &App, snapshot: &Snapshot, data: Style) {
    let rooms = app.visible_rooms();
    let (table_area, detail_area) = split_detail(area, app.detail);
    let rows = rooms.iter().map(|r| {
        let row = TableRow::new([
            room_label(r),
            r.visibility.clone(),
            r.subscribers.to_string(),
            r.members.to_string(),
            rate(r.messages_per_sec),
            r.last_seq.to_string(),
            r.last_activity
                .map(|t| ago(snapshot.at, t))
                .unwrap_or_else(|| "-".into()),
        ]);
        if r.archived {
            row.italic()
        } else {
            row
        }
    });
    let widths = [
        Constraint::Min(14),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(8),
    ];
    let title = table_title(
        "Rooms",
        rooms.len(),
        snapshot.rooms.len(),
        &app.rooms.filter,
        snapshot.truncated,
    );
    let table = Table::new(rows, widths)
        .header(header(&app.rooms))
        .style(data)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("› ")
        .block(Block::bordered().title(title));
    frame.render_stateful_widget(table, table_area, &mut selection(rooms.len(), app.rooms.selected));
    if let Some(detail) = detail_area {
        let lines = app.selected_room().map(room_detail).unwrap_or_default();
        frame.render_widget(
            Paragraph::new(lines)
                .style(data)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().title(" Room ")),
            detail,
        );
    }
}

fn field(name: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::from(format!("{name:>12}: ")).bold(),
        Span::from(value.into()),
    ])
}

fn room_detail(r: &RoomInfo) -> Vec<Line<'static>> {
    vec![
        field("id", r.id.to_string()),
        field("name", room_label(r)),
        field(
            "visibility",
            format!("{}{}", r.visibility, if r.archived { ", archived" } else { "" }),
        ),
        field(
            "subscribers",
            format!("{} live, {} member(s)", r.subscribers, r.members),
        ),
        field(
            "messages",
            format!("last seq {}, {}/s", r.last_seq, rate(r.messages_per_sec)),
        ),
        field(
            "last active",
            r.last_activity.map(timestamp).unwrap_or_else(|| "-".into()),
        ),
    ]
}

fn render_connections(frame: &mut Frame, area: Rect, app: &App, snapshot: &Snapshot, data: Style) {
    let connections = app.visible_connections();
    let (table_area, detail_area) = split_detail(area, app.detail);
    let rows = connections.iter().map(|c| {
        TableRow::new([
            c.id.to_string(),
            c.username.clone(),
            c.remote_addr.clone().unwrap_or_else(|| "-".into()),
            ago(snapshot.at, c.connected_at),
            c.rooms.len().to_string(),
            format!("{}/{}", c.queue_depth, c.queue_capacity),
            c.frames_in.to_string(),
            c.frames_out.to_string(),
        ])
    });
    let widths = [
        Constraint::Length(7),
        Constraint::Min(10),
        Constraint::Length(21),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    let title = table_title(
        "Connections",
        connections.len(),
        snapshot.connections.len(),
        &app.connections.filter,
        snapshot.truncated,
    );
    let table = Table::new(rows, widths)
        .header(header(&app.connections))
        .style(data)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("› ")
        .block(Block::bordered().title(title));
    frame.render_stateful_widget(
        table,
        table_area,
        &mut selection(connections.len(), app.connections.selected),
    );
    if let Some(detail) = detail_area {
        let lines = app
            .selected_connection()
            .map(|c| connection_detail(c, snapshot))
            .unwrap_or_default();
        frame.render_widget(
            Paragraph::new(lines)
                .style(data)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().title(" Connection ")),
            detail,
        );
    }
}

fn connection_detail(c: &ConnectionInfo, snapshot: &Snapshot) -> Vec<Line<'static>> {
    // Rooms by name where the snapshot knows them (it lists the busiest only).
    let rooms: Vec<String> = c
        .rooms
        .iter()
        .map(|id| match snapshot.rooms.iter().find(|r| r.id == *id) {
            Some(r) => room_label(r),
            None => short_id(id),
        })
        .collect();
    vec![
        field("connection", format!("{} on node {}", c.id, short_id(&c.node_id))),
        field("user", format!("{} ({})", c.username, c.user_id)),
        field("session", c.session_id.to_string()),
        field(
            "from",
            format!(
                "{}, {}",
                c.remote_addr.as_deref().unwrap_or("-"),
                c.user_agent.as_deref().unwrap_or("no user agent")
            ),
        ),
        field("connected", timestamp(c.connected_at)),
        field(
            "frames",
            format!(
                "{} in, {} out, queue {}/{}",
                c.frames_in, c.frames_out, c.queue_depth, c.queue_capacity
            ),
        ),
        field(
            "rooms",
            if rooms.is_empty() {
                "none".into()
            } else {
                rooms.join(", ")
            },
        ),
    ]
}

fn render_status(frame: &mut Frame, area: Rect, app: &App) {
    let line = if let Some(text) = &app.input {
        Line::from(vec![Span::from("filter: ").bold(), Span::from(format!("{text}█"))])
    } else if let Some(status) = &app.status {
        let style = if status.error {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::Green)
        };
        Line::styled(status.text.clone(), style)
    } else {
        Line::default()
    };
    frame.render_widget(line, area);
}

fn render_help(frame: &mut Frame, area: Rect, app: &App) {
    let keys: &[(&str, &str)] = if app.dialog.is_some() {
        &[("y", "confirm"), ("n/Esc", "cancel")]
    } else if app.input.is_some() {
        &[("Enter", "apply"), ("Esc", "clear"), ("Backspace", "delete")]
    } else {
        match app.tab {
            Tab::Overview => &[("q", "quit"), ("Tab/1-3", "screen")],
            Tab::Rooms => &[
                ("q", "quit"),
                ("Tab/1-3", "screen"),
                ("↑↓", "select"),
                ("s/S", "sort/reverse"),
                ("/", "filter"),
                ("Enter", "details"),
                ("a", "archive"),
            ],
            Tab::Connections => &[
                ("q", "quit"),
                ("Tab/1-3", "screen"),
                ("↑↓", "select"),
                ("s/S", "sort/reverse"),
                ("/", "filter"),
                ("Enter", "details"),
                ("c", "close"),
                ("d", "disable user"),
            ],
        }
    };
    let spans: Vec<Span> = keys
        .iter()
        .flat_map(|(key, what)| {
            [
                Span::from(format!(" {key} ")).reversed(),
                Span::from(format!(" {what} ")),
            ]
        })
        .collect();
    frame.render_widget(Line::from(spans), area);
}

fn render_dialog(frame: &mut Frame, area: Rect, action: &Action) {
    let width = area.width.min(64);
    let height = area.height.min(6);
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(action.question()),
            Line::default(),
            Line::from("y: yes   n: no").bold(),
        ])
        .wrap(Wrap { trim: true })
        .block(
            Block::bordered()
                .title(" Confirm ")
                .border_style(Style::default().fg(Color::Yellow)),
        ),
        popup,
    );
}

fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 {
        format!("{per_sec:.0}")
    } else {
        format!("{per_sec:.1}")
    }
}

/// "3d 04h", "2h 05m", "5m 03s", "42s".
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h:02}h"),
    }
}

/// How long before `now` `then` was.
fn ago(now: OffsetDateTime, then: OffsetDateTime) -> String {
    duration((now - then).whole_seconds().max(0).unsigned_abs())
}

fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let n = n as f64;
    if n >= 1024.0 * MIB {
        format!("{:.1} GiB", n / 1024.0 / MIB)
    } else {
        format!("{:.1} MiB", n / MIB)
    }
}

fn clock(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

fn timestamp(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;
    use crate::tui::app::tests::{connection, room, snapshot};
    use crate::tui::app::StreamEvent;

    /// The screen as lines of text.
    fn draw(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render(f, app)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut out = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                out.push_str(buffer[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn live_app() -> App {
        let mut app = App::new("http://127.0.0.1:8080", Instant::now());
        app.on_stream(StreamEvent::Snapshot(Box::new(snapshot(
            vec![room("general", 42), room("random", 3)],
            vec![connection(7, "alice"), connection(8, "bob")],
        ))));
        app
    }

    #[test]
    fn the_rooms_screen_shows_a_row_per_room_with_its_subscribers() {
        let mut app = live_app();
        app.tab = Tab::Rooms;
        let screen = draw(&app, 100, 30);
        let line = screen.lines().find(|l| l.contains("general")).expect(&screen);
        assert!(line.contains("42"), "{line}");
        assert!(screen.contains("random"), "{screen}");
        assert!(screen.contains("Subs▼"), "the sort column is marked: {screen}");
        assert!(!screen.contains("DISCONNECTED"), "{screen}");
    }

    #[test]
    fn the_overview_shows_nodes_totals_and_the_rate() {
        let app = live_app();
        let screen = draw(&app, 120, 30);
        assert!(screen.contains("alpha 00000000"), "{screen}");
        assert!(screen.contains("1h 02m"), "uptime: {screen}");
        assert!(screen.contains("50.0 MiB"), "{screen}");
        assert!(screen.contains("Messages in/s, last 4s: now 2.0, peak 3.0"), "{screen}");
        // Too short for the sparkline: the table alone.
        let screen = draw(&app, 80, 15);
        assert!(screen.contains("alpha"), "{screen}");
        assert!(!screen.contains("Messages in/s"), "{screen}");
    }

    #[test]
    fn the_connections_screen_and_its_detail_pane() {
        let mut app = live_app();
        app.tab = Tab::Connections;
        app.detail = true;
        let screen = draw(&app, 100, 30);
        assert!(screen.contains("alice") && screen.contains("bob"), "{screen}");
        assert!(screen.contains("session:"), "detail pane: {screen}");
        // Too short for the detail pane: the table keeps the room.
        let screen = draw(&app, 100, 16);
        assert!(screen.contains("alice") && !screen.contains("session:"), "{screen}");
    }

    #[test]
    fn a_small_terminal_says_so_and_no_size_panics() {
        let app = live_app();
        let screen = draw(&app, 40, 10);
        assert!(screen.contains("terminal too small (40×10), need 60×15"), "{screen}");
        for (w, h) in [
            (0, 0),
            (1, 1),
            (0, 20),
            (200, 0),
            (59, 15),
            (60, 14),
            (60, 15),
            (300, 100),
        ] {
            for tab in Tab::ALL {
                let mut app = app.clone();
                app.tab = tab;
                app.detail = true;
                let _ = draw(&app, w, h);
                app.dialog = Some(Action::DisableUser { username: "bob".into() });
                app.input = Some("x".into());
                let _ = draw(&app, w, h);
            }
        }
    }

    #[test]
    fn a_lost_link_shows_the_banner_and_keeps_the_last_data() {
        let mut app = live_app();
        app.tab = Tab::Rooms;
        app.on_stream(StreamEvent::Disconnected {
            reason: "connection refused".into(),
            retry_in: Duration::from_secs(4),
        });
        let screen = draw(&app, 100, 30);
        assert!(
            screen.contains("DISCONNECTED — retrying in 4s (connection refused)"),
            "{screen}"
        );
        assert!(screen.contains("general"), "stale data stays: {screen}");
    }

    #[test]
    fn the_dialog_asks_before_an_action() {
        let mut app = live_app();
        app.tab = Tab::Connections;
        app.dialog = Some(Action::CloseConnection {
            id: 7,
            username: "alice".into(),
        });
        let screen = draw(&app, 100, 30);
        assert!(screen.contains("Close connection 7 (alice)?"), "{screen}");
        assert!(screen.contains("y: yes"), "{screen}");
    }

    #[test]
    fn history_is_summed_aligned_on_the_newest_sample() {
        let mut a = crate::tui::app::tests::node();
        let mut b = a.clone();
        a.message_rate_history = vec![1.0, 2.0, 3.0];
        b.message_rate_history = vec![10.0];
        assert_eq!(total_history(&[a, b]), vec![1.0, 2.0, 13.0]);
        assert_eq!(total_history(&[]), Vec::<f64>::new());
    }
}

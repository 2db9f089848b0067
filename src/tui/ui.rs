//! Drawing: one pure `render(frame, &App)`, nothing else. It reads the state and never
//! changes it, so what a screen shows for a given state is tested with ratatui's
//! `TestBackend` and no terminal.
//!
//! Every size must draw without a panic, 0×0 included: below `MIN_WIDTH`×`MIN_HEIGHT` only a
//! "terminal too small" line is drawn, and on short terminals the detail pane and the
//! sparkline give way to the tables.
//!
//! A value is never cut: numeric and address columns are as wide as their widest cell, and
//! on a narrow terminal whole columns give way, least useful first (`fit_columns`); only
//! text columns (a user's or a room's name) flex. `0/102` for `0/1024` would be a lie.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize as _};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, Clear, HighlightSpacing, Paragraph, Row as TableRow, Sparkline, Table, TableState, Tabs, Wrap,
};
use ratatui::Frame;
use time::OffsetDateTime;

use super::app::{room_label, short_id, Action, App, Column, Link, Tab, TableView};
use crate::admin::types::{ConnectionInfo, NodeStats, RoomInfo, Snapshot};

pub use super::app::{MIN_HEIGHT, MIN_WIDTH};

/// Body height under which the detail pane is not shown.
const DETAIL_MIN_BODY: u16 = 16;
/// Body height under which the overview's sparkline is not shown.
const SPARKLINE_MIN_BODY: u16 = 14;
/// The selected row's mark, in front of every row of a selectable table.
const HIGHLIGHT: &str = "› ";

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
    let banner_height = banner_text(app).map_or(0, |(text, _)| {
        // Wrapped, so a long reason is read in full; at most three lines.
        u16::try_from(text.chars().count().div_ceil(usize::from(area.width)))
            .unwrap_or(3)
            .clamp(1, 3)
    });
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
        (None, _) => {
            let text = match &app.link {
                Link::Refused { .. } => "no data: the server refused access (see above)",
                Link::Down { .. } => "no data yet: the server cannot be reached (see above)",
                _ => "waiting for the first snapshot…",
            };
            frame.render_widget(Paragraph::new(text).block(Block::bordered()), body);
        }
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

/// The line under the title while the data is not the server's present, and its style.
fn banner_text(app: &App) -> Option<(String, Style)> {
    let alarm = Style::default()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD);
    // Says how old what is shown is: the header's clock and uptime stopped with it.
    let shown = match (&app.snapshot, app.data_age_secs()) {
        (Some(s), Some(age)) => format!("last snapshot {}, {age}s ago", clock(s.at)),
        _ => "nothing received yet".to_string(),
    };
    match &app.link {
        Link::Live => None,
        Link::Connecting => Some((
            format!(" connecting to {}…", app.target),
            Style::default().fg(Color::Black).bg(Color::Yellow),
        )),
        Link::Down { reason, .. } => Some((
            format!(
                " DISCONNECTED — {shown}; retrying in {}s ({reason})",
                app.retry_in_secs().unwrap_or(0)
            ),
            alarm,
        )),
        Link::Refused { reason } => Some((
            format!(" ACCESS REFUSED — {reason}. Not retrying ({shown}); press q to quit"),
            alarm,
        )),
    }
}

fn render_banner(frame: &mut Frame, area: Rect, app: &App) {
    if let Some((text, style)) = banner_text(app) {
        frame.render_widget(Paragraph::new(text).style(style).wrap(Wrap { trim: false }), area);
    }
}

/// How a column behaves when the table is laid out.
#[derive(Debug, Clone, Copy)]
struct Fit {
    /// At least this wide: room for the usual values, so that columns do not shift as
    /// values change (or when a filter leaves no rows).
    min: usize,
    /// Text that may be cut (a name): `min` wide, and takes the room left over.
    flex: bool,
    /// When it gives way on a narrow terminal: 0 never, otherwise higher goes first.
    drop: u8,
}

/// A value column: `min` wide or as wide as its widest cell.
const fn fixed(min: usize, drop: u8) -> Fit {
    Fit { min, flex: false, drop }
}

/// A name: 12 cells, more when there is room.
const FLEX: Fit = Fit {
    min: 12,
    flex: true,
    drop: 0,
};

fn text_width(s: &str) -> usize {
    Span::raw(s).width()
}

/// Which columns fit in `available` cells (one cell apart), and their constraints. Each
/// column needs its header's, its `min` and (unless flexible) its widest cell's width; while
/// they do not fit, the column with the highest `drop` goes, whole.
fn fit_columns(available: u16, header: &[String], rows: &[Vec<String>], fits: &[Fit]) -> (Vec<usize>, Vec<Constraint>) {
    let widths: Vec<usize> = fits
        .iter()
        .enumerate()
        .map(|(i, fit)| {
            let cells = rows
                .iter()
                .map(|r| r.get(i).map_or(0, |c| text_width(c)))
                .max()
                .unwrap_or(0);
            let head = header.get(i).map_or(0, |h| text_width(h));
            if fit.flex {
                head.max(fit.min)
            } else {
                head.max(fit.min).max(cells)
            }
        })
        .collect();
    let mut keep: Vec<usize> = (0..fits.len()).collect();
    let total = |keep: &[usize]| keep.iter().map(|&i| widths[i]).sum::<usize>() + keep.len().saturating_sub(1);
    while total(&keep) > usize::from(available) {
        let Some(at) = (0..keep.len())
            .filter(|&at| fits[keep[at]].drop > 0)
            .max_by_key(|&at| fits[keep[at]].drop)
        else {
            break;
        };
        keep.remove(at);
    }
    let constraints = keep
        .iter()
        .map(|&i| {
            let width = u16::try_from(widths[i]).unwrap_or(u16::MAX);
            if fits[i].flex {
                Constraint::Min(width)
            } else {
                Constraint::Length(width)
            }
        })
        .collect();
    (keep, constraints)
}

/// The kept cells of a row, in order.
fn pick(cells: &[String], keep: &[usize]) -> Vec<String> {
    keep.iter().filter_map(|&i| cells.get(i).cloned()).collect()
}

/// The width inside a table's border, less the selection mark's.
fn inner_width(area: Rect, selectable: bool) -> u16 {
    let mark = if selectable { text_width(HIGHLIGHT) } else { 0 };
    area.width
        .saturating_sub(2)
        .saturating_sub(u16::try_from(mark).unwrap_or(0))
}

fn render_overview(frame: &mut Frame, area: Rect, snapshot: &Snapshot, data: Style) {
    let spark_height = if area.height >= SPARKLINE_MIN_BODY { 6 } else { 0 };
    let [nodes, spark] = Layout::vertical([Constraint::Fill(1), Constraint::Length(spark_height)]).areas(area);
    let t = &snapshot.stats.totals;
    let drops: u64 = snapshot.stats.nodes.iter().map(|n| n.queue_drops_total).sum();
    let header: Vec<String> = [
        "Node", "Address", "Uptime", "Conns", "Subs", "In/s", "Out/s", "Drops", "DB pool", "RSS",
    ]
    .map(String::from)
    .to_vec();
    let totals = vec![
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
    // The hostname names a node, so its address goes first; then what the totals also say.
    let fits = [
        FLEX,
        fixed(15, 6),
        fixed(6, 1),
        fixed(5, 0),
        fixed(5, 5),
        fixed(5, 0),
        fixed(5, 4),
        fixed(5, 0),
        fixed(7, 2),
        fixed(8, 3),
    ];
    let mut cells: Vec<Vec<String>> = snapshot.stats.nodes.iter().map(node_cells).collect();
    cells.push(totals);
    let (keep, widths) = fit_columns(inner_width(area, false), &header, &cells, &fits);
    let totals = cells.pop().unwrap_or_default();
    let rows = cells.iter().map(|c| TableRow::new(pick(c, &keep)));
    frame.render_widget(
        Table::new(rows, widths)
            .header(TableRow::new(pick(&header, &keep)).bold())
            .footer(TableRow::new(pick(&totals, &keep)).bold())
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

fn node_cells(n: &NodeStats) -> Vec<String> {
    vec![
        format!("{} {}", n.hostname, short_id(&n.node_id)),
        n.address.clone(),
        duration(n.uptime_secs),
        n.connections.to_string(),
        n.subscriptions.to_string(),
        rate(n.messages_in_per_sec),
        rate(n.messages_out_per_sec),
        n.queue_drops_total.to_string(),
        format!("{}/{}/{}", n.db_pool.in_use, n.db_pool.idle, n.db_pool.max_size),
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

/// The column titles, the sort column marked. Every title counts a cell for the mark, so a
/// column does not change width when the sort moves.
fn header_titles<C: Column>(view: &TableView<C>) -> (Vec<String>, Vec<String>) {
    C::ALL
        .iter()
        .map(|c| {
            let mark = match (*c == view.sort, view.descending) {
                (false, _) => "",
                (true, true) => "▼",
                (true, false) => "▲",
            };
            (format!("{}{mark}", c.title()), format!("{} ", c.title()))
        })
        .unzip()
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

fn room_cells(r: &RoomInfo, now: OffsetDateTime) -> Vec<String> {
    vec![
        room_label(r),
        r.visibility.clone(),
        r.subscribers.to_string(),
        r.members.to_string(),
        rate(r.messages_per_sec),
        r.last_seq.to_string(),
        r.last_activity.map(|t| ago(now, t)).unwrap_or_else(|| "-".into()),
    ]
}

/// A selectable table with its border, its header and the rows' styles.
fn selectable_table<'a>(
    rows: Vec<TableRow<'a>>,
    widths: Vec<Constraint>,
    header: Vec<String>,
    title: String,
    data: Style,
) -> Table<'a> {
    Table::new(rows, widths)
        .header(TableRow::new(header.into_iter().map(Cell::from)).bold())
        .style(data)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol(HIGHLIGHT)
        // The mark's room is kept with no row selected too, so an empty table's header
        // stays over its columns.
        .highlight_spacing(HighlightSpacing::Always)
        .block(Block::bordered().title(title))
}

fn render_rooms(frame: &mut Frame, area: Rect, app: &App, snapshot: &Snapshot, data: Style) {
    let rooms = app.visible_rooms();
    let selected = app.selected_room();
    let (table_area, detail_area) = split_detail(area, app.detail && selected.is_some());
    let cells: Vec<Vec<String>> = rooms.iter().map(|r| room_cells(r, snapshot.at)).collect();
    let (header, measure) = header_titles(&app.rooms);
    // Room, Visibility, Subs, Members, Msg/s, Last seq, Active.
    let fits = [
        FLEX,
        fixed(7, 5),
        fixed(5, 0),
        fixed(5, 3),
        fixed(6, 1),
        fixed(6, 4),
        fixed(6, 2),
    ];
    let (keep, widths) = fit_columns(inner_width(table_area, true), &measure, &cells, &fits);
    let rows = rooms
        .iter()
        .zip(&cells)
        .map(|(r, c)| {
            let row = TableRow::new(pick(c, &keep));
            if r.archived {
                row.italic()
            } else {
                row
            }
        })
        .collect();
    let title = table_title(
        "Rooms",
        rooms.len(),
        snapshot.rooms.len(),
        &app.rooms.filter,
        snapshot.truncated,
    );
    let table = selectable_table(rows, widths, pick(&header, &keep), title, data);
    frame.render_stateful_widget(table, table_area, &mut selection(rooms.len(), app.rooms.selected));
    if let (Some(detail), Some(room)) = (detail_area, selected) {
        frame.render_widget(
            Paragraph::new(room_detail(room))
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

fn connection_cells(c: &ConnectionInfo, now: OffsetDateTime) -> Vec<String> {
    vec![
        c.id.to_string(),
        c.username.clone(),
        c.remote_addr.clone().unwrap_or_else(|| "-".into()),
        ago(now, c.connected_at),
        c.rooms.len().to_string(),
        format!("{}/{}", c.queue_depth, c.queue_capacity),
        c.frames_in.to_string(),
        c.frames_out.to_string(),
    ]
}

fn render_connections(frame: &mut Frame, area: Rect, app: &App, snapshot: &Snapshot, data: Style) {
    let connections = app.visible_connections();
    let selected = app.selected_connection();
    let (table_area, detail_area) = split_detail(area, app.detail && selected.is_some());
    let cells: Vec<Vec<String>> = connections.iter().map(|c| connection_cells(c, snapshot.at)).collect();
    let (header, measure) = header_titles(&app.connections);
    // Id, User, Remote, Age, Rooms, Queue, In, Out. The address (`127.0.0.1:54321` wide
    // by default, wider for IPv6) is in the detail pane too, so it goes first.
    let fits = [
        fixed(4, 0),
        FLEX,
        fixed(15, 5),
        fixed(6, 1),
        fixed(5, 2),
        fixed(9, 0),
        fixed(6, 3),
        fixed(6, 4),
    ];
    let (keep, widths) = fit_columns(inner_width(table_area, true), &measure, &cells, &fits);
    let rows = cells.iter().map(|c| TableRow::new(pick(c, &keep))).collect();
    let title = table_title(
        "Connections",
        connections.len(),
        snapshot.connections.len(),
        &app.connections.filter,
        snapshot.truncated,
    );
    let table = selectable_table(rows, widths, pick(&header, &keep), title, data);
    frame.render_stateful_widget(
        table,
        table_area,
        &mut selection(connections.len(), app.connections.selected),
    );
    if let (Some(detail), Some(connection)) = (detail_area, selected) {
        frame.render_widget(
            Paragraph::new(connection_detail(connection, snapshot))
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
        let matches = match app.tab {
            Tab::Rooms => "name or id",
            _ => "username or id",
        };
        Line::from(vec![
            Span::from(format!("filter ({matches}): ")).bold(),
            Span::from(format!("{text}█")),
        ])
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

/// The keys that do something on the current screen, as (key, what, when it gives way:
/// 0 never, otherwise higher first).
fn help_keys(app: &App) -> Vec<(&'static str, &'static str, u8)> {
    if app.dialog.is_some() {
        return vec![("y", "confirm", 0), ("n/Esc", "cancel", 0)];
    }
    if app.input.is_some() {
        return vec![("Enter", "done", 0), ("Esc", "clear", 0), ("Backspace", "delete", 1)];
    }
    let mut keys = vec![("q", "quit", 0), ("Tab", "screen", 0)];
    if app.tab == Tab::Overview {
        return keys;
    }
    keys.extend([
        ("↑↓", "move", 3),
        ("s/S", "sort", 2),
        ("/", "filter", 0),
        ("Enter", "detail", 0),
    ]);
    // What Esc does before it quits.
    if app.detail_shown() {
        keys.push(("Esc", "back", 1));
    } else if !app.current_filter().is_empty() {
        keys.push(("Esc", "unfilter", 1));
    }
    match app.tab {
        Tab::Rooms => keys.push(("a", "archive", 0)),
        Tab::Connections => keys.extend([("c", "close", 0), ("d", "disable", 0)]),
        Tab::Overview => {}
    }
    keys
}

/// The help bar: every key of the screen when it fits (two cells apart, else one), else the
/// ones that give way last.
fn render_help(frame: &mut Frame, area: Rect, app: &App) {
    let mut keys = help_keys(app);
    let width = |keys: &[(&str, &str, u8)], gap: usize| -> usize {
        keys.iter()
            .map(|(k, w, _)| text_width(k) + 1 + text_width(w))
            .sum::<usize>()
            + gap * keys.len().saturating_sub(1)
    };
    let available = usize::from(area.width);
    let gap = if width(&keys, 2) <= available { 2 } else { 1 };
    while width(&keys, gap) > available {
        let Some(at) = (0..keys.len()).filter(|&i| keys[i].2 > 0).max_by_key(|&i| keys[i].2) else {
            break;
        };
        keys.remove(at);
    }
    let mut spans = Vec::new();
    for (i, (key, what, _)) in keys.iter().enumerate() {
        if i > 0 {
            spans.push(Span::from(" ".repeat(gap)));
        }
        spans.push(Span::from(*key).bold().reversed());
        spans.push(Span::from(format!(" {what}")));
    }
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

/// `2026-12-02 04:23:05Z`: UTC, to the second, the same in every pane.
fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// What `render` draws on a `width` × `height` terminal, as lines of text (for tests, here
/// and against a live server, and for looking at a screen without a terminal).
pub fn render_text(app: &App, width: u16, height: u16) -> String {
    let mut terminal = match ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    if let Err(e) = terminal.draw(|f| render(f, app)) {
        match e {}
    }
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::tui::app::tests::{connection, room, snapshot};
    use crate::tui::app::StreamEvent;

    fn draw(app: &App, width: u16, height: u16) -> String {
        render_text(app, width, height)
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
        assert!(screen.contains("retrying in 4s (connection refused)"), "{screen}");
        assert!(screen.contains("general"), "stale data stays: {screen}");
    }

    #[test]
    fn the_dialog_asks_before_an_action() {
        let mut app = live_app();
        app.tab = Tab::Connections;
        app.dialog = Some(Action::CloseConnection {
            id: 7,
            node: uuid::Uuid::nil(),
            username: "alice".into(),
        });
        let screen = draw(&app, 100, 30);
        assert!(screen.contains("Close connection 7 (alice)?"), "{screen}");
        assert!(screen.contains("y: yes"), "{screen}");
    }

    /// The table's header line and rows (inside its border).
    fn table_lines(screen: &str) -> Vec<&str> {
        screen.lines().filter(|l| l.starts_with('│')).collect()
    }

    #[test]
    fn at_the_minimum_size_no_number_or_address_is_cut() {
        let mut app = live_app();
        let mut snap = app.snapshot.clone().unwrap();
        snap.connections[0].remote_addr = Some("[::1]:54321".into());
        snap.connections[1].remote_addr = Some("127.0.0.1:54321".into());
        for c in &mut snap.connections {
            c.queue_capacity = 1024;
        }
        snap.stats.nodes[0].rss_bytes = Some(32_820_000);
        app.on_stream(StreamEvent::Snapshot(Box::new(snap)));

        app.tab = Tab::Connections;
        let wide = draw(&app, 100, 20);
        assert!(
            wide.contains("[::1]:54321") && wide.contains("127.0.0.1:54321"),
            "{wide}"
        );
        let narrow = draw(&app, 60, 15);
        assert!(narrow.contains("0/1024"), "{narrow}");
        assert!(!narrow.contains("0/102 "), "{narrow}");
        // The address is there whole or not at all.
        assert!(!narrow.contains("127.0 ") && !narrow.contains("Remot "), "{narrow}");
        for (w, h) in [(60, 15), (70, 20), (80, 24), (100, 30)] {
            let screen = draw(&app, w, h);
            for addr in ["[::1]:54321", "127.0.0.1:54321"] {
                let rows = table_lines(&screen);
                let prefix = &addr[..4];
                assert!(
                    rows.iter().all(|r| !r.contains(prefix) || r.contains(addr)),
                    "{w}×{h}: {screen}"
                );
            }
        }

        app.tab = Tab::Overview;
        let screen = draw(&app, 60, 15);
        for whole in ["Uptime", "Conns", "Drops", "DB pool", "31.3 MiB", "1/3/16"] {
            let cut = &whole[..whole.len() - 1];
            assert!(
                screen.contains(whole) || !screen.contains(cut),
                "{whole} is cut: {screen}"
            );
        }
        assert!(screen.contains("1h 02m") && screen.contains("Drops"), "{screen}");

        app.tab = Tab::Rooms;
        let screen = draw(&app, 60, 15);
        for title in ["Room", "Subs▼", "Msg/s", "Active"] {
            assert!(screen.contains(title), "{title}: {screen}");
        }
        assert!(!screen.contains("Visibi ") && !screen.contains("Member "), "{screen}");
    }

    #[test]
    fn the_help_bar_fits_the_keys_of_the_screen() {
        let mut app = live_app();
        app.tab = Tab::Connections;
        let help = |app: &App, w| draw(app, w, 24).lines().last().unwrap_or_default().to_string();
        let line = help(&app, 80);
        for k in [
            "q quit",
            "Tab screen",
            "↑↓ move",
            "s/S sort",
            "/ filter",
            "Enter detail",
            "c close",
            "d disable",
        ] {
            assert!(line.contains(k), "{k}: {line}");
        }
        let line = help(&app, 60);
        for k in [
            "q quit",
            "Tab screen",
            "/ filter",
            "Enter detail",
            "c close",
            "d disable",
        ] {
            assert!(line.contains(k), "{k} at 60: {line}");
        }
        app.tab = Tab::Rooms;
        app.detail = true;
        let line = help(&app, 80);
        for k in ["a archive", "Esc back", "s/S sort", "/ filter"] {
            assert!(line.contains(k), "{k}: {line}");
        }
        assert!(!line.contains("d disable"), "{line}");
        app.input = Some(String::new());
        let screen = draw(&app, 80, 24);
        assert!(screen.contains("filter (name or id): █"), "{screen}");
    }

    #[test]
    fn an_empty_filtered_table_keeps_its_header_and_shows_no_detail() {
        let mut app = live_app();
        app.tab = Tab::Connections;
        app.detail = true;
        let header = |screen: &str| table_lines(screen).first().map(|l| l.to_string()).unwrap_or_default();
        let full = draw(&app, 100, 30);
        assert!(full.contains("session:"), "{full}");
        app.connections.filter = "nobody".into();
        let empty = draw(&app, 100, 30);
        assert_eq!(header(&empty), header(&full), "{empty}");
        assert!(!empty.contains(" Connection ─"), "no empty detail pane: {empty}");
    }

    #[test]
    fn detail_panes_show_whole_seconds_and_the_pool_in_use_idle_max() {
        let mut app = live_app();
        let mut snap = app.snapshot.clone().unwrap();
        snap.connections[0].connected_at = OffsetDateTime::UNIX_EPOCH + time::Duration::nanoseconds(1_500_000_000_123);
        app.on_stream(StreamEvent::Snapshot(Box::new(snap)));
        app.tab = Tab::Connections;
        app.detail = true;
        let screen = draw(&app, 100, 30);
        assert!(screen.contains("connected: 1970-01-01 00:25:00Z"), "{screen}");
        app.tab = Tab::Overview;
        let screen = draw(&app, 120, 30);
        assert!(screen.contains("1/3/16"), "{screen}");
    }

    #[test]
    fn the_banner_says_how_old_the_data_is_or_that_there_is_none() {
        let start = Instant::now();
        let mut app = App::new("http://127.0.0.1:8080", start);
        app.on_stream(StreamEvent::Disconnected {
            reason: "connection refused".into(),
            retry_in: Duration::from_secs(2),
        });
        let screen = draw(&app, 100, 20);
        assert!(screen.contains("nothing received yet"), "{screen}");
        assert!(!screen.contains("last data"), "{screen}");

        app.on_stream(StreamEvent::Snapshot(Box::new(snapshot(vec![], vec![]))));
        app.tick(start + Duration::from_secs(35));
        app.on_stream(StreamEvent::Disconnected {
            reason: "connection refused".into(),
            retry_in: Duration::from_secs(2),
        });
        let screen = draw(&app, 100, 20);
        assert!(screen.contains("last snapshot 01:00:00, 35s ago"), "{screen}");

        let mut app = App::new("http://127.0.0.1:8080", start);
        app.on_stream(StreamEvent::Refused {
            reason: "admin_required: only server administrators may use the admin API (HTTP 403)".into(),
        });
        let screen = draw(&app, 60, 15);
        assert!(screen.contains("ACCESS REFUSED"), "{screen}");
        assert!(screen.contains("press q to quit"), "wrapped, not cut: {screen}");
        assert!(!screen.contains("retrying in"), "{screen}");
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

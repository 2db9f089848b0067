//! `chatd bench …`: the load generator's command line. Parses the options, runs one scenario
//! from `crate::bench` on its own runtime (one thread unless `--threads`), and prints a table
//! (or one JSON object per result with `--json`). Needs no configuration or database: it talks
//! to a running chatd over HTTP and WebSocket only.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::{print, CliError};
use crate::bench::connections::{ConnectionsOptions, ConnectionsReport};
use crate::bench::fanout::FanoutOptions;
use crate::bench::history::{HistoryOptions, HistoryReport};
use crate::bench::load::LoadReport;
use crate::bench::login::{LoginOptions, LoginReport};
use crate::bench::rooms::RoomsOptions;
use crate::bench::{self, errors_cell, BenchError, Target};

#[derive(Debug, Args)]
#[command(
    long_about = "Drive a running chatd like real clients and measure it. The bench registers its own \
        accounts and public rooms, named with a run prefix (bench-<6 random chars>-...), so it can run \
        against a server in use; --cleanup archives its rooms (by their owner) and deletes its accounts \
        at the end (`chatd room delete ROOM --yes` purges archived rooms for good).\n\n\
        Sends are open-loop: each sender follows a fixed schedule whatever the server answers, and \
        latency is measured from the intended send time, so an overloaded server shows as latency. \
        Warm-up is sent but not recorded; after the recorded duration the bench waits at most --drain \
        seconds for outstanding acks and deliveries. Every acked message must reach every subscriber \
        exactly once: anything else is reported as missing or duplicate. Errors are counted by code \
        (a server with the default limits answers rate_limited or too_many_connections: the bench \
        is one address with many accounts; start it with every [limits] rate set to 0, as \
        scripts/bench.sh does, to measure the server rather than the limits).\n\n\
        Progress goes to standard error once a second; the results to standard output."
)]
pub struct BenchArgs {
    /// The chatd to drive; nodes of one cluster as a comma list (URL1,URL2,...): the k-th
    /// client goes to node k mod n, setup (accounts, rooms) to the first
    #[arg(long, global = true, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Print one JSON object per result (one per line) instead of a table
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress lines on standard error
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Worker threads of the load generator (1: a single-threaded runtime)
    #[arg(long, global = true, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Seconds sent before recording starts
    #[arg(long, global = true, value_name = "SECS", default_value_t = 2)]
    pub warmup: u64,
    /// Seconds recorded (login: how long the flood runs without --during)
    #[arg(long, global = true, value_name = "SECS", default_value_t = 10)]
    pub duration: u64,
    /// Seconds to wait at most for outstanding acks and deliveries after the duration
    #[arg(long, global = true, value_name = "SECS", default_value_t = 5)]
    pub drain: u64,
    /// Archive the bench's rooms and delete its accounts at the end
    #[arg(long, global = true)]
    pub cleanup: bool,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// One room, N subscribed sockets, S of them sending R messages/s in total (a comma list
    /// of rates runs a sweep on the same setup)
    Fanout(FanoutArgs),
    /// K rooms of N sockets each, every socket sending, R messages/s in total
    Rooms {
        /// Rooms
        #[arg(long, value_name = "K", default_value_t = 10)]
        rooms: usize,
        /// Sockets per room, one account each, all sending
        #[arg(long, value_name = "N", default_value_t = 10)]
        clients: usize,
        /// Messages/s over all sockets
        #[arg(long, value_name = "R", default_value_t = 1000.0)]
        rate: f64,
    },
    /// Open N authenticated idle WebSockets, hold them, close them; report the server's RSS
    Connections {
        /// Sockets to open (at most the open-file limit less a margin)
        #[arg(long, value_name = "N", default_value_t = 1000)]
        count: usize,
        /// Seconds to hold them open
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        hold: u64,
        /// Accounts the sockets share, round-robin
        #[arg(long, value_name = "U", default_value_t = 100)]
        users: usize,
        /// Handshakes in flight at once
        #[arg(long, value_name = "C", default_value_t = 256)]
        concurrency: usize,
        /// The server's process id, to read its RSS from /proc when it serves no /metrics (one
        /// node only)
        #[arg(long, value_name = "PID")]
        server_pid: Option<u32>,
    },
    /// C tasks logging in back to back; with --during fanout, compare fan-out latency with and
    /// without the flood
    Login {
        /// Concurrent logins (one account each)
        #[arg(long, value_name = "C", default_value_t = 8)]
        concurrency: usize,
        /// Run this scenario alone, then under the flood, and compare their p99s
        #[arg(long, value_name = "SCENARIO")]
        during: Option<During>,
        #[command(flatten)]
        fanout: FanoutArgs,
    },
    /// Seed a room with M messages, then time Q history pages
    History {
        /// Messages the room must hold (seeded unless --room already has them)
        #[arg(long, value_name = "M", default_value_t = 10_000)]
        messages: u64,
        /// History requests
        #[arg(long, value_name = "Q", default_value_t = 1000)]
        requests: usize,
        /// Requests in flight at once
        #[arg(long, value_name = "C", default_value_t = 8)]
        concurrency: usize,
        /// Reuse this public room (seeded by an earlier run) instead of creating one
        #[arg(long, value_name = "ID")]
        room: Option<String>,
        /// Unanswered sends per seeding socket
        #[arg(long, value_name = "N", default_value_t = 200)]
        in_flight: usize,
    },
    /// Print saved --json results (any scenarios) as tables, or as Markdown
    Report {
        /// Files of --json output
        #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Markdown tables instead of aligned columns
        #[arg(long)]
        markdown: bool,
    },
    /// Draw a fan-out sweep (its --json output) as an SVG line chart
    Plot {
        /// The --json output of `chatd bench fanout`
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// The SVG to write
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Subscribed sockets, one account each (the senders are among them)
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub clients: usize,
    /// How many of the clients also send
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub senders: usize,
    /// Messages/s over all senders; a comma list runs a sweep
    #[arg(long, value_name = "R[,R2...]", value_delimiter = ',', default_value = "100")]
    pub rate: Vec<f64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum During {
    Fanout,
}

impl From<BenchError> for CliError {
    fn from(e: BenchError) -> Self {
        match e {
            BenchError::Usage(m) => CliError::usage(m),
            BenchError::Failed(m) => CliError::failure(m),
        }
    }
}

pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    if let Scenario::Plot { input, out } = &args.scenario {
        let points = bench::plot::read(input)?;
        bench::plot::draw(&points, out)?;
        return print(format_args!("wrote {} ({} points)", out.display(), points.len()));
    }
    if let Scenario::Report { input, markdown } = &args.scenario {
        let style = if *markdown { Style::Markdown } else { Style::Plain };
        return print(report(input, style)?.trim_end());
    }
    bench::raise_nofile_limit();
    let target = Target::new(&args.url, !args.quiet)?;
    let urls: Vec<String> = target
        .nodes
        .iter()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .collect();
    let secs = Duration::from_secs;
    let fanout_options = |f: &FanoutArgs| -> Result<FanoutOptions, CliError> {
        if f.clients == 0 || f.senders == 0 || f.senders > f.clients {
            return Err(CliError::usage("--senders must be between 1 and --clients"));
        }
        if f.rate.is_empty() || f.rate.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
            return Err(CliError::usage("--rate takes positive numbers, e.g. 50,100,150"));
        }
        Ok(FanoutOptions {
            clients: f.clients,
            senders: f.senders,
            rates: f.rate.clone(),
            warmup: secs(args.warmup),
            duration: secs(args.duration.max(1)),
            drain: secs(args.drain),
            cleanup: args.cleanup,
        })
    };
    match &args.scenario {
        Scenario::Fanout(f) => {
            let options = fanout_options(f)?;
            let reports = bench::block_on(args.threads, bench::fanout::run(&target, &options))??;
            output(args.json, &urls, &reports, load_table)
        }
        Scenario::Rooms { rooms, clients, rate } => {
            if *rooms == 0 || *clients == 0 || !(rate.is_finite() && *rate > 0.0) {
                return Err(CliError::usage("--rooms, --clients and --rate must be positive"));
            }
            let options = RoomsOptions {
                rooms: *rooms,
                clients: *clients,
                rate: *rate,
                warmup: secs(args.warmup),
                duration: secs(args.duration.max(1)),
                drain: secs(args.drain),
                cleanup: args.cleanup,
            };
            let report = bench::block_on(args.threads, bench::rooms::run(&target, &options))??;
            output(args.json, &urls, &[report], load_table)
        }
        Scenario::Connections {
            count,
            hold,
            users,
            concurrency,
            server_pid,
        } => {
            if *count == 0 {
                return Err(CliError::usage("--count must be positive"));
            }
            bench::connections::check_limit(*count)?;
            let options = ConnectionsOptions {
                count: *count,
                hold: secs(*hold),
                users: *users,
                concurrency: *concurrency,
                server_pid: *server_pid,
                cleanup: args.cleanup,
            };
            let report = bench::block_on(args.threads, bench::connections::run(&target, &options))??;
            output(args.json, &urls, &[report], connections_table)
        }
        Scenario::Login {
            concurrency,
            during,
            fanout,
        } => {
            if *concurrency == 0 {
                return Err(CliError::usage("--concurrency must be positive"));
            }
            let options = LoginOptions {
                concurrency: *concurrency,
                duration: secs(args.duration.max(1)),
                during: match during {
                    Some(During::Fanout) => Some(fanout_options(fanout)?),
                    None => None,
                },
                cleanup: args.cleanup,
            };
            let report = bench::block_on(args.threads, bench::login::run(&target, &options))??;
            output(args.json, &urls, &[report], login_table)
        }
        Scenario::History {
            messages,
            requests,
            concurrency,
            room,
            in_flight,
        } => {
            if let Some(room) = room {
                uuid::Uuid::parse_str(room).map_err(|_| CliError::usage(format!("--room {room}: not a room id")))?;
            }
            let options = HistoryOptions {
                messages: *messages,
                requests: *requests,
                concurrency: *concurrency,
                room: room.clone(),
                in_flight: *in_flight,
                cleanup: args.cleanup,
            };
            let report = bench::block_on(args.threads, bench::history::run(&target, &options))??;
            output(args.json, &urls, &[report], history_table)
        }
        Scenario::Plot { .. } | Scenario::Report { .. } => Ok(()),
    }
}

/// Prints one JSON object per line, or the table `table` makes; with several nodes, both
/// name them (`urls`; a single URL prints exactly the report).
fn output<T: serde::Serialize>(
    json: bool,
    urls: &[String],
    reports: &[T],
    table: fn(&[T], Style) -> String,
) -> Result<(), CliError> {
    if json {
        for report in reports {
            let line =
                serde_json::to_string(&Printed { report, urls }).map_err(|e| CliError::failure(e.to_string()))?;
            print(line)?;
        }
        Ok(())
    } else {
        print((nodes_head(urls, Style::Plain) + &table(reports, Style::Plain)).trim_end())
    }
}

/// A result line of `--json`: the report's fields, then the nodes driven when there are
/// several.
#[derive(serde::Serialize)]
struct Printed<'a, T> {
    #[serde(flatten)]
    report: &'a T,
    #[serde(skip_serializing_if = "one_node")]
    urls: &'a [String],
}

fn one_node(urls: &&[String]) -> bool {
    urls.len() < 2
}

/// `nodes: URL1, URL2` above a table when the run drove several nodes.
fn nodes_head(urls: &[String], style: Style) -> String {
    if urls.len() < 2 {
        return String::new();
    }
    format!("nodes: {}\n{}", urls.join(", "), gap(style))
}

/// How tables are printed: aligned columns for a terminal, or Markdown for documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Markdown,
}

/// A blank line between a heading line and a Markdown table.
fn gap(style: Style) -> &'static str {
    if style == Style::Markdown {
        "\n"
    } else {
        ""
    }
}

/// Left-aligned columns, two spaces apart (or a Markdown table); the first row is the header.
fn columns(rows: &[Vec<String>], style: Style) -> String {
    let mut out = String::new();
    if style == Style::Markdown {
        for (i, row) in rows.iter().enumerate() {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
            if i == 0 {
                out.push_str(&format!("|{}\n", "---|".repeat(row.len())));
            }
        }
        return out;
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn load_table(reports: &[LoadReport], style: Style) -> String {
    let mut rows = vec![[
        "rate",
        "sent/s",
        "acks/s",
        "deliveries/s",
        "deliver ms p50/p90/p99/p99.9/max",
        "ack ms p50/p90/p99/p99.9/max",
        "unanswered",
        "missing",
        "dup",
        "errors",
        "cpu%",
    ]
    .map(String::from)
    .to_vec()];
    for r in reports {
        rows.push(vec![
            format!("{}", r.rate),
            format!("{:.1}", r.sends_per_sec),
            format!("{:.1}", r.acks_per_sec),
            format!("{:.0}", r.deliveries_per_sec),
            r.deliver_ms.cell(),
            r.ack_ms.cell(),
            r.unanswered.to_string(),
            r.missing.to_string(),
            r.duplicates.to_string(),
            errors_cell(&r.errors),
            format!("{:.1}", r.client_cpu_percent),
        ]);
    }
    let head = reports
        .first()
        .map(|r| {
            format!(
                "{}: {} rooms, {} clients, {} senders, {} s recorded\n{}",
                r.scenario,
                r.rooms,
                r.clients,
                r.senders,
                r.duration_secs,
                gap(style)
            )
        })
        .unwrap_or_default();
    head + &columns(&rows, style)
}

fn connections_table(reports: &[ConnectionsReport], style: Style) -> String {
    let mb = |b: Option<u64>| {
        b.map(|b| format!("{:.1}", b as f64 / 1_048_576.0))
            .unwrap_or("unknown".into())
    };
    let mut rows = vec![[
        "count",
        "opened",
        "open s",
        "connects/s",
        "connect ms p50/p90/p99/p99.9/max",
        "failures",
        "dropped",
        "rss MiB before/after",
        "rss/conn KiB",
        "cpu%",
    ]
    .map(String::from)
    .to_vec()];
    for r in reports {
        rows.push(vec![
            r.count.to_string(),
            r.opened.to_string(),
            format!("{:.2}", r.open_secs),
            format!("{:.0}", r.connects_per_sec),
            r.connect_ms.cell(),
            errors_cell(&r.failures),
            r.dropped.to_string(),
            format!(
                "{}/{} ({})",
                mb(r.rss_before_bytes),
                mb(r.rss_after_bytes),
                r.rss_source
            ),
            r.rss_per_connection_bytes
                .map(|b| format!("{:.1}", b / 1024.0))
                .unwrap_or("unknown".into()),
            format!("{:.1}", r.client_cpu_percent),
        ]);
    }
    columns(&rows, style)
}

fn login_table(reports: &[LoginReport], style: Style) -> String {
    let mut out = String::new();
    for r in reports {
        let rows = vec![
            [
                "concurrency",
                "logins",
                "logins/s",
                "login ms p50/p90/p99/p99.9/max",
                "errors",
            ]
            .map(String::from)
            .to_vec(),
            vec![
                r.concurrency.to_string(),
                r.logins.to_string(),
                format!("{:.1}", r.logins_per_sec),
                r.login_ms.cell(),
                errors_cell(&r.errors),
            ],
        ];
        out.push_str(&columns(&rows, style));
        if let (Some(b), Some(d)) = (&r.fanout_baseline, &r.fanout_during) {
            out.push_str(&format!(
                "\nfan-out alone, then during the login flood:\n{}",
                gap(style)
            ));
            out.push_str(&load_table(&[b.clone(), d.clone()], style));
            out.push_str(&format!(
                "{}p99 ratio (during / alone): {} (target ≤ 2)\n",
                gap(style),
                r.p99_ratio.map(|x| format!("{x:.2}")).unwrap_or("unknown".into())
            ));
        }
    }
    out
}

fn history_table(reports: &[HistoryReport], style: Style) -> String {
    let mut rows = vec![[
        "messages",
        "seeded",
        "seed/s",
        "requests",
        "requests/s",
        "newest ms p50/p90/p99/p99.9/max",
        "before ms p50/p90/p99/p99.9/max",
        "errors",
    ]
    .map(String::from)
    .to_vec()];
    for r in reports {
        let mut errors = r.errors.clone();
        for (k, v) in &r.seed_errors {
            *errors.entry(format!("seed_{k}")).or_default() += v;
        }
        rows.push(vec![
            r.messages.to_string(),
            r.seeded.to_string(),
            format!("{:.0}", r.seed_per_sec),
            r.requests.to_string(),
            format!("{:.1}", r.requests_per_sec),
            r.newest_ms.cell(),
            r.before_ms.cell(),
            errors_cell(&errors),
        ]);
    }
    let head = reports
        .first()
        .map(|r| format!("history: room {}\n{}", r.room_id, gap(style)))
        .unwrap_or_default();
    head + &columns(&rows, style)
}

/// Renders saved results: each run of lines of one scenario becomes one table.
fn report(inputs: &[PathBuf], style: Style) -> Result<String, CliError> {
    let mut values = Vec::new();
    for input in inputs {
        let text = std::fs::read_to_string(input)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", input.display())))?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let value: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| CliError::usage(format!("{} line {}: not JSON: {e}", input.display(), n + 1)))?;
            values.push((format!("{} line {}", input.display(), n + 1), value));
        }
    }
    fn parse<T: serde::de::DeserializeOwned>(group: &[(String, serde_json::Value)]) -> Result<Vec<T>, CliError> {
        group
            .iter()
            .map(|(at, v)| serde_json::from_value(v.clone()).map_err(|e| CliError::usage(format!("{at}: {e}"))))
            .collect()
    }
    let mut out = String::new();
    let mut rest = &values[..];
    while let Some((_, first)) = rest.first() {
        let scenario = first["scenario"].as_str().unwrap_or_default().to_owned();
        let len = rest
            .iter()
            .take_while(|(_, v)| v["scenario"] == scenario.as_str())
            .count();
        let group = &rest[..len];
        rest = &rest[len..];
        let urls: Vec<String> = serde_json::from_value(group[0].1["urls"].clone()).unwrap_or_default();
        out.push_str(&nodes_head(&urls, style));
        let table = match scenario.as_str() {
            "fanout" | "rooms" => load_table(&parse(group)?, style),
            "connections" => connections_table(&parse(group)?, style),
            "login" => login_table(&parse(group)?, style),
            "history" => history_table(&parse(group)?, style),
            other => return Err(CliError::usage(format!("{}: unknown scenario {other:?}", group[0].0))),
        };
        out.push_str(&table);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Report {
        scenario: &'static str,
        rate: f64,
    }

    #[test]
    fn results_name_the_nodes_only_when_there_are_several() {
        let report = Report {
            scenario: "fanout",
            rate: 100.0,
        };
        let one = vec!["http://127.0.0.1:8080".to_string()];
        let line = serde_json::to_string(&Printed {
            report: &report,
            urls: &one,
        })
        .unwrap();
        assert_eq!(
            line,
            serde_json::to_string(&report).unwrap(),
            "a single URL changes nothing"
        );
        assert_eq!(nodes_head(&one, Style::Plain), "");

        let two = vec!["http://127.0.0.1:8081".to_string(), "http://127.0.0.1:8082".to_string()];
        let line = serde_json::to_string(&Printed {
            report: &report,
            urls: &two,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"scenario":"fanout","rate":100.0,"urls":["http://127.0.0.1:8081","http://127.0.0.1:8082"]}"#
        );
        assert_eq!(
            nodes_head(&two, Style::Markdown),
            "nodes: http://127.0.0.1:8081, http://127.0.0.1:8082\n\n"
        );
    }
}

//! `chatd man --out DIR`: the manual pages, generated from the clap definitions.
//!
//! clap_mangen renders what `--help` knows (synopsis, options, subcommands); this module adds
//! what it cannot: EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES. Nothing is written by hand
//! twice: the environment variables are the keys of `Config::default()` (so a new config key
//! appears on its own), each described by its comment in the repository's `config.toml`,
//! which already documents every key; the exit codes are the CLI's own constants.
//!
//! The pages are committed under `man/`. A unit test below renders them again and fails when
//! the committed files differ, so regenerate with `cargo run -- man --out man` after changing
//! a flag, a subcommand, a config key or its comment. The output is deterministic: no date,
//! and the only version in it is Cargo.toml's.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

use super::{print, Cli, CliError, EXIT_FAILURE, EXIT_USAGE};
use crate::config::{Config, DEFAULT_CONFIG_FILE};

/// The annotated configuration file: every key with its default and a comment on what it does.
const CONFIG_TOML: &str = include_str!("../../config.toml");

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing; stale chatd pages are removed)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// One manual page: its file name (`chatd-user-create.1`) and its roff source.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub file_name: String,
    pub text: String,
}

pub fn run(args: &ManArgs) -> Result<(), CliError> {
    let pages = pages().map_err(|e| CliError::failure(format!("cannot render the manual pages: {e}")))?;
    let out = &args.out;
    let io = |what: &str, path: &Path, e: std::io::Error| {
        CliError::failure(format!("cannot {what} {}: {e}", path.display()))
    };
    std::fs::create_dir_all(out).map_err(|e| io("create", out, e))?;
    // Pages of subcommands that no longer exist would otherwise linger in the committed set.
    let entries = std::fs::read_dir(out).map_err(|e| io("read", out, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let ours = name == "chatd.1" || (name.starts_with("chatd-") && name.ends_with(".1"));
        if ours && !pages.iter().any(|p| p.file_name == name) {
            std::fs::remove_file(entry.path()).map_err(|e| io("remove", &entry.path(), e))?;
            print(format_args!("removed {}", entry.path().display()))?;
        }
    }
    for page in &pages {
        let path = out.join(&page.file_name);
        std::fs::write(&path, &page.text).map_err(|e| io("write", &path, e))?;
        print(format_args!("wrote {}", path.display()))?;
    }
    Ok(())
}

/// Every page: `chatd.1` and one per visible subcommand, nested ones included (each page's
/// SUBCOMMANDS section refers to them by name).
pub fn pages() -> std::io::Result<Vec<Page>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Sets each subcommand's bin name ("chatd user create") and display name ("chatd-user-create").
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, 0, &mut pages)?;
    Ok(pages)
}

fn collect(cmd: &clap::Command, depth: usize, pages: &mut Vec<Page>) -> std::io::Result<()> {
    pages.push(render(cmd, depth)?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, depth + 1, pages)?;
    }
    Ok(())
}

fn render(cmd: &clap::Command, depth: usize) -> std::io::Result<Page> {
    // The default footer names the subcommand alone ("create") and no version.
    let man = Man::new(cmd.clone())
        .source(format!("chatd {}", env!("CARGO_PKG_VERSION")))
        .manual("chatd manual");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut out)?;
    }
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name()).to_string();
    let mut roff = Roff::new();
    // Names of keys, variables and paths read better whole than hyphenated across lines.
    roff.control("nh", []);
    exit_status(&mut roff);
    if depth == 0 {
        environment(&mut roff, cmd);
        files(&mut roff);
    }
    examples(&mut roff, &name);
    see_also(&mut roff, cmd, depth);
    roff.to_writer(&mut out)?;
    if depth == 0 {
        man.render_version_section(&mut out)?;
    }
    Ok(Page {
        file_name: man.get_filename(),
        text: String::from_utf8_lossy(&out).into_owned(),
    })
}

fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    let codes: [(u8, &str); 3] = [
        (
            0,
            "Success. Also for --help and --version, and when a reader closes the output pipe early.",
        ),
        (
            EXIT_FAILURE,
            "Runtime failure: the database cannot be reached, no such user or room, a name is taken, \
             a migration was changed after it was applied, interrupted by a signal.",
        ),
        (
            EXIT_USAGE,
            "Usage, configuration or input error: an unknown flag or subcommand, an invalid or unknown \
             configuration key, a missing configuration file, an invalid username or password. \
             Retrying will not help until the command or the configuration is fixed.",
        ),
    ];
    for (code, meaning) in codes {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(meaning)]);
    }
    roff.control("PP", []);
    roff.text([
        roman("Every error is a single line on standard error, starting with "),
        bold("chatd: error:"),
        roman("."),
    ]);
}

/// A configuration key, its environment variable, its default and what it does.
#[derive(Debug)]
pub struct ConfigKey {
    pub key: String,
    pub variable: String,
    pub default: Option<String>,
    pub description: Option<String>,
}

/// Every configuration key, in declaration order, from the serialised defaults: a key added to
/// `Config` is listed without anyone remembering to list it.
pub fn config_keys() -> Vec<ConfigKey> {
    let descriptions = describe_keys(CONFIG_TOML);
    let position = |key: &str| descriptions.iter().position(|(k, _)| k == key).unwrap_or(usize::MAX);
    let description = |key: &str| descriptions.iter().find(|(k, _)| k == key).map(|(_, d)| d.clone());
    let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(Config::default()) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for (section, fields) in sections {
        let serde_json::Value::Object(fields) = fields else {
            continue;
        };
        for (field, value) in fields {
            let key = format!("{section}.{field}");
            let default = match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s),
                other => Some(other.to_string()),
            };
            keys.push(ConfigKey {
                variable: format!("CHATD_{}__{}", section.to_uppercase(), field.to_uppercase()),
                description: description(&key),
                key,
                default,
            });
        }
    }
    // In the order config.toml presents them (serde_json sorts them by name); a key it lacks
    // goes last, and a test insists there is none.
    keys.sort_by_key(|k| position(&k.key));
    keys
}

/// Reads the comments of `config.toml`: the comment block right above a key (written as
/// `key = …`, or `# key = …` when it has no default) describes it, and keys listed one after
/// the other under one block share it. Returns `(section.key, description)` in file order.
fn describe_keys(toml: &str) -> Vec<(String, String)> {
    let is_key = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut described = Vec::new();
    let mut section = "";
    let mut comment: Vec<&str> = Vec::new();
    let mut shared: Option<String> = None;
    for line in toml.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            (section, shared) = (name, None);
            comment.clear();
            continue;
        }
        if line.is_empty() {
            shared = None;
            comment.clear();
            continue;
        }
        let uncommented = line.strip_prefix('#').map(str::trim);
        let key = uncommented
            .unwrap_or(line)
            .split_once(" = ")
            .map(|(k, _)| k)
            .filter(|k| is_key(k) && !section.is_empty());
        match (key, uncommented) {
            (Some(key), _) => {
                if !comment.is_empty() {
                    shared = Some(comment.join(" "));
                    comment.clear();
                }
                if let Some(text) = &shared {
                    described.push((format!("{section}.{key}"), text.clone()));
                }
            }
            (None, Some(text)) => {
                shared = None;
                comment.push(text);
            }
            (None, None) => {}
        }
    }
    described
}

fn environment(roff: &mut Roff, cmd: &clap::Command) {
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([
        roman(
            "Settings are read, lowest precedence first, from built-in defaults, the configuration file, \
               the environment and the command line. Every configuration key ",
        ),
        italic("section.key"),
        roman(" can be set as "),
        bold("CHATD_"),
        italic("SECTION"),
        bold("__"),
        italic("KEY"),
        roman(" (two underscores). An unknown key in such a variable, or an invalid value, is an error (exit status 2); other CHATD_ variables are not configuration and are ignored."),
    ]);
    for arg in cmd.get_arguments() {
        if let (Some(variable), Some(help)) = (arg.get_env(), arg.get_help()) {
            roff.control("TP", []);
            roff.text([bold(variable.to_string_lossy())]);
            let flag = arg.get_long().unwrap_or_else(|| arg.get_id().as_str());
            roff.text([roman(format!("Same as --{flag}: {help}."))]);
        }
    }
    for key in config_keys() {
        roff.control("TP", []);
        roff.text([bold(key.variable)]);
        let default = match key.default.as_deref() {
            Some("") | None => "unset".to_string(),
            Some(value) => value.to_string(),
        };
        let mut line = vec![italic(key.key), roman(format!(" (default: {default})."))];
        if let Some(description) = key.description {
            line.push(roman(format!(" {description}")));
        }
        roff.text(line);
    }
    roff.control("TP", []);
    roff.text([bold("RUST_LOG")]);
    roff.text([roman(
        "A tracing filter that overrides log.level, e.g. chatd=debug,warp=info.",
    )]);
}

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    let entries: [(Vec<Inline>, &str); 6] = [
        (
            vec![bold(format!("./{DEFAULT_CONFIG_FILE}"))],
            "The configuration file read when neither --config nor CHATD_CONFIG names one, if it exists. \
             The config.toml shipped with chatd lists every key with its default; scripts/install.sh \
             installs it as /etc/chatd/config.toml, which the systemd unit passes with --config.",
        ),
        (
            vec![bold("./data")],
            "The data directory (--data-dir, server.data_dir): chatd's own state. The systemd unit \
             uses /var/lib/chatd.",
        ),
        (
            vec![italic("DATA_DIR"), bold("/postgres")],
            "The embedded PostgreSQL cluster, used when database.url is unset. It is created on \
             first use with the PostgreSQL server binaries installed on the machine, listens only on \
             a unix socket under the data directory, and is stopped by the last chatd process using it.",
        ),
        (
            vec![italic("DATA_DIR"), bold("/jwt_secret")],
            "The token signing secret, generated once (mode 0600) when neither auth.jwt_secret nor \
             auth.jwt_secret_file is set. Keep it: replacing it signs everyone out.",
        ),
        (
            vec![italic("DATA_DIR"), bold("/serve.lock")],
            "Held by the running chatd serve: one server per data directory.",
        ),
        (
            vec![bold("/var/lib/chatd/embedded/"), italic("HASH")],
            "Where the embedded cluster is kept when chatd runs as root and database.embedded_user \
             cannot reach the data directory; DATA_DIR/postgres then links to it.",
        ),
    ];
    for (path, meaning) in entries {
        roff.control("TP", []);
        roff.text(path);
        roff.text([roman(meaning)]);
    }
}

/// Examples per page, by the page's name; pages without any get none.
fn examples(roff: &mut Roff, page: &str) {
    let examples: &[(&str, &str)] = match page {
        "chatd" => &[
            (
                "Run the server with an embedded PostgreSQL cluster under ./data:",
                "chatd serve",
            ),
            (
                "Run it against an existing PostgreSQL server, with a configuration file:",
                "CHATD_DATABASE__URL=postgres://chatd@db.internal/chatd chatd --config /etc/chatd/config.toml serve",
            ),
            (
                "Create an administrator without putting the password on the command line:",
                "printf '%s\\n' \"$PASSWORD\" | chatd user create admin --admin --password-stdin",
            ),
            (
                "Install shell completions for bash:",
                "chatd completions bash > /etc/bash_completion.d/chatd",
            ),
        ],
        "chatd-serve" => &[
            (
                "Listen on every interface, port 8080:",
                "chatd serve --bind 0.0.0.0:8080",
            ),
            (
                "Start without applying migrations (apply them first with chatd migrate):",
                "chatd serve --no-migrate",
            ),
        ],
        "chatd-migrate" => &[
            (
                "Apply pending migrations before starting a new version:",
                "chatd migrate",
            ),
            ("List applied and pending migrations:", "chatd migrate status"),
        ],
        "chatd-user" => &[
            (
                "Create an account, reading the password from standard input:",
                "printf '%s\\n' \"$PASSWORD\" | chatd user create alice --password-stdin",
            ),
            ("List every account as JSON:", "chatd user list --json"),
            (
                "Lock an account out and end its sessions:",
                "chatd user disable mallory",
            ),
        ],
        "chatd-room" => &[
            (
                "Create a private room owned by alice:",
                "chatd room create staff --private --owner alice",
            ),
            ("Make bob an admin of it:", "chatd room set-role staff bob admin"),
            (
                "Delete a room and its messages for good:",
                "chatd room delete old-room --yes",
            ),
        ],
        "chatd-migrate-up" => &[
            ("Apply every pending migration:", "chatd migrate up"),
            (
                "The same, for the service's data directory, as its account:",
                "sudo -u chatd chatd --data-dir /var/lib/chatd migrate up",
            ),
        ],
        "chatd-migrate-status" => &[
            ("List applied and pending migrations:", "chatd migrate status"),
            (
                "Check from a deploy script that the database matches this binary:",
                "chatd migrate status >/dev/null || echo 'edited or unknown migrations'",
            ),
        ],
        "chatd-user-create" => &[
            (
                "Create an account; the password is asked for without echo:",
                "chatd user create alice --display-name 'Alice Liddell'",
            ),
            (
                "Create an administrator from a script, the password on standard input:",
                "printf '%s\\n' \"$PASSWORD\" | chatd user create admin --admin --password-stdin",
            ),
        ],
        "chatd-user-list" => &[
            ("Every account, as a table:", "chatd user list"),
            (
                "The usernames of the disabled accounts:",
                "chatd user list --json | jq -r '.[] | select(.disabled) | .username'",
            ),
        ],
        "chatd-user-show" => &[
            ("One account:", "chatd user show alice"),
            ("The same as JSON:", "chatd user show alice --json"),
        ],
        "chatd-user-passwd" => &[
            ("Set a new password, asked for without echo:", "chatd user passwd alice"),
            (
                "Set it from a password manager:",
                "pass show chat/alice | chatd user passwd alice --password-stdin",
            ),
        ],
        "chatd-user-disable" => &[(
            "Lock an account out and end its sessions:",
            "chatd user disable mallory",
        )],
        "chatd-user-enable" => &[("Let a disabled account sign in again:", "chatd user enable mallory")],
        "chatd-user-delete" => &[(
            "Delete an account (its messages stay, without an author):",
            "chatd user delete mallory",
        )],
        "chatd-user-set-admin" => &[
            ("Make alice a server administrator:", "chatd user set-admin alice true"),
            ("Take it back:", "chatd user set-admin alice false"),
        ],
        "chatd-room-create" => &[
            (
                "A public room, owned by the operator until a member is made owner:",
                "chatd room create general --topic 'Anything goes'",
            ),
            (
                "A private room owned by alice:",
                "chatd room create staff --private --owner alice",
            ),
        ],
        "chatd-room-list" => &[
            ("Every room, archived and direct ones too:", "chatd room list"),
            (
                "The names of the private rooms:",
                "chatd room list --json | jq -r '.[] | select(.visibility == \"private\") | .name'",
            ),
        ],
        "chatd-room-show" => &[
            ("A room by name, in any case:", "chatd room show General"),
            (
                "A direct room, by its id:",
                "chatd room show 0b9d6c1e-5f0e-4c3a-9d57-2f1e8c4b7a10",
            ),
        ],
        "chatd-room-archive" => &[(
            "Make a room read-only, keeping its history:",
            "chatd room archive old-project",
        )],
        "chatd-room-delete" => &[(
            "Delete a room and all its messages for good:",
            "chatd room delete old-project --yes",
        )],
        "chatd-room-add-member" => &[
            ("Add bob to a private room:", "chatd room add-member staff bob"),
            (
                "Add carol as an admin:",
                "chatd room add-member staff carol --role admin",
            ),
        ],
        "chatd-room-remove-member" => &[("Remove bob from a room:", "chatd room remove-member staff bob")],
        "chatd-room-set-role" => &[
            ("Make bob an admin:", "chatd room set-role staff bob admin"),
            (
                "Transfer ownership to carol (the old owner becomes an admin):",
                "chatd room set-role staff carol owner",
            ),
        ],
        "chatd-bench" => &[
            (
                "A fan-out sweep against a server started with CHATD_LIMITS__MESSAGES_PER_SEC=0:",
                "chatd bench fanout --clients 1000 --senders 10 --rate 50,100,150",
            ),
            (
                "The same as JSON lines, then drawn as a chart:",
                "chatd bench fanout --rate 50,100,150 --json > fanout.json && chatd bench plot --input fanout.json --out fanout.svg",
            ),
            (
                "Remove what a run created (rooms are archived; purge them with chatd room delete):",
                "chatd bench rooms --rooms 10 --clients 10 --rate 1000 --cleanup",
            ),
        ],
        "chatd-bench-fanout" => &[
            (
                "1000 subscribers of one room, 10 of them sending 150 messages/s in total:",
                "chatd bench fanout --clients 1000 --senders 10 --rate 150",
            ),
            (
                "A sweep over five rates on one setup, as JSON lines:",
                "chatd bench fanout --clients 1000 --senders 10 --rate 50,100,150,200,250 --json",
            ),
        ],
        "chatd-bench-rooms" => &[(
            "100 rooms of 10 sockets, 10000 messages/s in total:",
            "chatd bench rooms --rooms 100 --clients 10 --rate 10000",
        )],
        "chatd-bench-connections" => &[
            (
                "Hold 10000 idle sockets for 30 s, reading the server's RSS from /proc:",
                "chatd bench connections --count 10000 --hold 30 --server-pid $(pgrep -x chatd)",
            ),
            (
                "Share 10 accounts among the sockets:",
                "chatd bench connections --count 2000 --users 10",
            ),
        ],
        "chatd-bench-login" => &[
            (
                "32 logins in flight for 10 s:",
                "chatd bench login --concurrency 32 --duration 10",
            ),
            (
                "Fan-out latency alone, then under the login flood:",
                "chatd bench login --concurrency 32 --during fanout --clients 1000 --senders 10 --rate 150",
            ),
        ],
        "chatd-bench-history" => &[
            (
                "Seed a room with a million messages, then time 2000 history pages:",
                "chatd bench history --messages 1000000 --requests 2000 --concurrency 16",
            ),
            (
                "Reuse the room seeded before:",
                "chatd bench history --messages 1000000 --requests 2000 --room 0b9d6c1e-5f0e-4c3a-9d57-2f1e8c4b7a10",
            ),
        ],
        "chatd-bench-report" => &[
            ("Saved results as tables:", "chatd bench report --input fanout.json rooms.json"),
            (
                "The same as Markdown, for a document:",
                "chatd bench report --input fanout.json --markdown >> docs/benchmarks.md",
            ),
        ],
        "chatd-bench-plot" => &[(
            "Draw a fan-out sweep:",
            "chatd bench plot --input fanout.json --out docs/bench-fanout.svg",
        )],
        "chatd-audit" => &[
            (
                "What the moderators of a room did last week:",
                "chatd audit --room general --since 2026-01-24T00:00:00Z --until 2026-01-31T00:00:00Z",
            ),
            (
                "Every ban, as JSON lines:",
                "chatd audit --action member_banned --limit 1000 --json | jq -r .target",
            ),
            ("Everything done by or to mallory:", "chatd audit --user mallory"),
        ],
        "chatd-tui" => &[
            (
                "Watch the server configured here, as the operator (on the server's machine):",
                "sudo -u chatd chatd --config /etc/chatd/config.toml tui",
            ),
            (
                "Watch a server elsewhere, signed in as an administrator:",
                "chatd tui --url http://chat.internal:8080 --username admin",
            ),
        ],
        "chatd-completions" => &[
            (
                "Load completions in the current bash:",
                "source <(chatd completions bash)",
            ),
            (
                "Install them for zsh:",
                "chatd completions zsh > /usr/local/share/zsh/site-functions/_chatd",
            ),
            (
                "Install them for fish:",
                "chatd completions fish > ~/.config/fish/completions/chatd.fish",
            ),
        ],
        _ => &[],
    };
    if examples.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    for (what, command) in examples {
        roff.text([roman(*what)]);
        roff.control("PP", []);
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        roff.text([bold(*command)]);
        roff.control("fi", []);
        roff.control("RE", []);
        roff.control("PP", []);
    }
}

fn see_also(roff: &mut Roff, cmd: &clap::Command, depth: usize) {
    roff.control("SH", ["SEE ALSO"]);
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let mut refs: Vec<String> = Vec::new();
    if depth > 0 {
        refs.push("chatd(1)".into());
    }
    // The parent page: "chatd-user" for "chatd-user-create".
    if depth > 1 {
        if let Some((parent, _)) = name.rsplit_once('-') {
            refs.push(format!("{parent}(1)"));
        }
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        refs.push(format!("{name}-{}(1)", sub.get_name()));
    }
    let mut line = vec![roman(refs.join(", "))];
    if depth > 0 {
        line.push(roman(
            ". chatd(1) lists the environment variables and files chatd reads.",
        ));
    } else {
        line.push(roman(
            ". In chatd's source tree: scripts/chatd.service (a hardened systemd unit) and scripts/install.sh.",
        ));
    }
    roff.text(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
    }

    #[test]
    fn committed_man_pages_are_current() {
        let pages = pages().unwrap();
        let mut stale = Vec::new();
        for page in &pages {
            match std::fs::read_to_string(committed_dir().join(&page.file_name)) {
                Ok(text) if text == page.text => {}
                Ok(_) => stale.push(format!("{} differs", page.file_name)),
                Err(_) => stale.push(format!("{} is missing", page.file_name)),
            }
        }
        for entry in std::fs::read_dir(committed_dir()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(".1") && !pages.iter().any(|p| p.file_name == name) {
                stale.push(format!("{name} documents nothing any more"));
            }
        }
        assert!(
            stale.is_empty(),
            "man/ is out of date ({}); regenerate with `cargo run -- man --out man` and commit",
            stale.join(", ")
        );
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(pages().unwrap(), pages().unwrap());
    }

    #[test]
    fn there_is_a_page_per_subcommand() {
        let names: Vec<String> = pages().unwrap().into_iter().map(|p| p.file_name).collect();
        for name in [
            "chatd.1",
            "chatd-serve.1",
            "chatd-migrate.1",
            "chatd-user.1",
            "chatd-room.1",
            "chatd-completions.1",
            "chatd-user-create.1",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.starts_with("chatd-man")),
            "the developer's `man` command stays hidden"
        );
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    }

    #[test]
    fn every_page_has_examples_and_exit_statuses() {
        for page in pages().unwrap() {
            for section in [".SH EXAMPLES", ".SH \"EXIT STATUS\""] {
                assert!(page.text.contains(section), "{} lacks {section}", page.file_name);
            }
        }
    }

    #[test]
    fn every_config_key_is_described_and_in_the_environment_section() {
        let page = &pages().unwrap()[0];
        let environment = page
            .text
            .split(".SH ENVIRONMENT")
            .nth(1)
            .unwrap()
            .split(".SH FILES")
            .next()
            .unwrap();
        let keys = config_keys();
        // Unset-by-default keys (`None`) are listed too, not skipped by the serialisation.
        for known in ["server.bind", "database.url", "auth.jwt_secret_file", "log.format"] {
            assert!(keys.iter().any(|k| k.key == known), "{known} not in {keys:?}");
        }
        // config.toml describes exactly the keys there are.
        let mut described: Vec<String> = describe_keys(CONFIG_TOML).into_iter().map(|(k, _)| k).collect();
        let mut actual: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
        described.sort();
        actual.sort();
        assert_eq!(described, actual);
        for key in &keys {
            assert!(
                key.description.is_some(),
                "config.toml has no comment above {}",
                key.key
            );
            assert!(environment.contains(&key.variable), "{} missing", key.variable);
        }
        assert!(environment.contains("CHATD_CONFIG"));
        assert!(environment.contains("RUST_LOG"));
    }

    #[test]
    fn config_comments_describe_the_keys_below_them() {
        let text = "# header\n[a]\n# One.\n# Two.\nx = 1\n# Shared.\n# y = \"\"\n# z = \"\"\n\n# Lone comment\n\n# 0 = none\nw = 0\n";
        let d = describe_keys(text);
        let d: Vec<(&str, &str)> = d.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            d,
            [
                ("a.x", "One. Two."),
                ("a.y", "Shared."),
                ("a.z", "Shared."),
                ("a.w", "0 = none")
            ]
        );
    }

    #[test]
    fn exit_status_names_every_code_the_cli_uses() {
        for page in pages().unwrap() {
            let section = page.text.split(".SH \"EXIT STATUS\"").nth(1).unwrap_or_default();
            for code in [0, EXIT_FAILURE, EXIT_USAGE] {
                assert!(
                    section.contains(&format!("\\fB{code}\\fR")),
                    "{}: exit {code} undocumented",
                    page.file_name
                );
            }
        }
    }
}

//! The operator kit: exit statuses, shell completions, the manual pages and the install and
//! deploy scripts, as an operator meets them. Nothing here needs root or the network; the
//! scripts only ever write into temporary directories.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::{chatd, outcome, run, text};
use crate::helpers::{scratch_dir, TestDb};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A loopback URL on which nothing listens: the port was free a moment ago.
fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("postgres://chatd@127.0.0.1:{port}/chatd?connect_timeout=2")
}

// --- exit statuses: 0 ok, 1 runtime failure, 2 usage or configuration error ----------------

#[tokio::test]
async fn exit_status_0_when_the_command_succeeds() {
    let dir = scratch_dir();
    let out = run(chatd(dir.path(), None, &["--version"]));
    let (code, stdout, _) = outcome(&out);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), format!("chatd {}", env!("CARGO_PKG_VERSION")));

    let db = TestDb::new().await;
    let (code, stdout, err) = outcome(&run(chatd(dir.path(), Some(&db.url), &["migrate", "status"])));
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("applied  0001_accounts"), "{stdout}");
}

#[tokio::test]
async fn exit_status_1_for_a_runtime_failure() {
    let dir = scratch_dir();
    let db = TestDb::new().await;
    let (code, _, err) = outcome(&run(chatd(dir.path(), Some(&db.url), &["user", "show", "nosuchuser"])));
    assert_eq!(code, 1);
    assert!(err.contains("nosuchuser"), "{err}");

    // An unreachable database is a runtime failure for every command that needs one.
    let url = closed_port_url();
    for args in [
        &["migrate"][..],
        &["migrate", "status"],
        &["user", "list"],
        &["room", "list"],
    ] {
        let mut cmd = chatd(dir.path(), Some(&url), args);
        cmd.env("CHATD_DATABASE__CONNECT_TIMEOUT_SECS", "1");
        let (code, _, err) = outcome(&run(cmd));
        assert_eq!(code, 1, "{args:?}: {err}");
    }

    // A mistyped --data-dir is not a new installation: administration commands refuse it
    // and create nothing (`chatd()` points --data-dir at DIR/data, which does not exist).
    let fresh = scratch_dir();
    for args in [&["user", "list"][..], &["room", "list"]] {
        let (code, _, err) = outcome(&run(chatd(fresh.path(), None, args)));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("does not exist: check --data-dir"), "{err}");
        assert!(!fresh.path().join("data").exists());
    }
}

#[test]
fn exit_status_2_for_a_usage_or_configuration_error() {
    let dir = scratch_dir();
    // Nothing here reaches a database: usage and configuration are checked first.
    let url = Some("postgres://chatd@127.0.0.1:1/unused");
    let commands: [&[&str]; 6] = [
        &["serve"],
        &["migrate"],
        &["migrate", "status"],
        &["user", "list"],
        &["room", "list"],
        &["completions", "bash"],
    ];
    for args in commands {
        let bad_flag = [args, &["--frobnicate"]].concat();
        let (code, _, err) = outcome(&run(chatd(dir.path(), url, &bad_flag)));
        assert_eq!(code, 2, "{bad_flag:?}: {err}");
        assert!(err.contains("--frobnicate"), "{err}");
    }
    for args in &commands[..5] {
        let mut bad_value = chatd(dir.path(), url, args);
        bad_value.env("CHATD_SERVER__BIND", "not-an-address");
        let (code, _, err) = outcome(&run(bad_value));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("CHATD_SERVER__BIND"), "{err}");
    }
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[database]\npool_size = 0\n").unwrap();
    let file = file.to_string_lossy().to_string();
    let (code, _, err) = outcome(&run(chatd(dir.path(), url, &["--config", &file, "migrate"])));
    assert_eq!(code, 2);
    assert!(err.contains("database.pool_size"), "{err}");
    let (code, _, err) = outcome(&run(chatd(dir.path(), url, &["completions", "tcsh"])));
    assert_eq!(code, 2);
    assert!(err.contains("tcsh"), "{err}");
    // A missing subcommand is one line naming the choices, not the whole help on stderr.
    for (args, needle) in [
        (&[][..], "`chatd` needs a subcommand: serve"),
        (&["user"][..], "`chatd user` needs a subcommand: create"),
    ] {
        let (code, _, err) = outcome(&run(chatd(dir.path(), url, args)));
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

// --- completions ---------------------------------------------------------------------------

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    let dir = scratch_dir();
    for shell in ["bash", "zsh", "fish"] {
        // Completions describe the command line only: a broken configuration does not matter.
        let mut cmd = chatd(dir.path(), None, &["completions", shell]);
        cmd.env("CHATD_DATABASE__POOL_SIZE", "lots");
        let (code, script, err) = outcome(&run(cmd));
        assert_eq!(code, 0, "{shell}: {err}");
        for word in [
            "serve",
            "migrate",
            "user",
            "room",
            "completions",
            "data-dir",
            "set-admin",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
        let words = script.split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_');
        assert!(
            !{ words }.any(|w| w == "man"),
            "{shell} completions offer the hidden `man`"
        );
    }
}

#[test]
fn bash_completions_load_into_bash_and_offer_the_visible_subcommands() {
    // Loads the script, then asks it what follows `chatd ` as bash's completion would.
    let script = r#"source <("$CHATD_BIN" completions bash) && complete -p chatd &&
        COMP_WORDS=(chatd ""); COMP_CWORD=1; _chatd chatd "" chatd; echo "offered: ${COMPREPLY[*]}""#;
    let out = Command::new("bash")
        .args(["-c", script])
        .env("CHATD_BIN", env!("CARGO_BIN_EXE_chatd"))
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("_chatd chatd"), "{stdout}");
    assert_eq!(text(&out.stderr), "");
    let offered: Vec<&str> = stdout
        .split("offered:")
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    for word in ["serve", "migrate", "user", "room", "completions", "--data-dir"] {
        assert!(offered.contains(&word), "{word} not in {offered:?}");
    }
    assert!(
        !offered.contains(&"man"),
        "the hidden `man` is not offered: {offered:?}"
    );
}

// --- manual pages --------------------------------------------------------------------------

#[test]
fn chatd_man_writes_exactly_the_committed_pages() {
    let dir = scratch_dir();
    let out_dir = dir.path().join("man");
    let out_arg = out_dir.to_string_lossy().to_string();
    let (code, _, err) = outcome(&run(chatd(dir.path(), None, &["man", "--out", &out_arg])));
    assert_eq!(code, 0, "{err}");
    let names = |d: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".1"))
            .collect();
        names.sort();
        names
    };
    let committed = repo().join("man");
    assert_eq!(names(&out_dir), names(&committed));
    for name in names(&out_dir) {
        assert_eq!(
            std::fs::read_to_string(out_dir.join(&name)).unwrap(),
            std::fs::read_to_string(committed.join(&name)).unwrap(),
            "man/{name} is stale: run `cargo run -- man --out man`"
        );
    }
}

#[test]
fn man_pages_render_without_warnings_where_groff_is_installed() {
    // groff is the operator's tool, not a build requirement: skip where it is missing.
    if Command::new("groff").arg("--version").output().is_err() {
        return;
    }
    for entry in std::fs::read_dir(repo().join("man")).unwrap() {
        let path = entry.unwrap().path();
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", path.display());
        assert_eq!(text(&out.stderr), "", "{}", path.display());
    }
    let chatd = std::fs::read_to_string(repo().join("man/chatd.1")).unwrap();
    for section in ["EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES"] {
        assert!(chatd.contains(&format!(".SH {section}")) || chatd.contains(&format!(".SH \"{section}\"")));
    }
}

// --- scripts/install.sh ----------------------------------------------------------------------

fn install(prefix: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(repo().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(prefix)
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_chatd"))
        .args(extra)
        .output()
        .expect("run scripts/install.sh");
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.path().is_dir() {
                todo.push(e.path());
            } else {
                found.push(e.path());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn install_sh_installs_everything_into_the_prefix_and_is_idempotent() {
    let dir = scratch_dir();
    let prefix = dir.path().join("prefix");
    let (code, stdout, err) = install(&prefix, &[]);
    assert_eq!(code, 0, "{stdout}{err}");

    let binary = prefix.join("bin/chatd");
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert!(version.status.success());
    for file in [
        "share/man/man1/chatd.1",
        "share/man/man1/chatd-serve.1",
        "share/man/man1/chatd-user-create.1",
        "share/bash-completion/completions/chatd",
        "share/zsh/site-functions/_chatd",
        "share/fish/vendor_completions.d/chatd.fish",
        "etc/chatd/config.toml",
        "lib/systemd/system/chatd.service",
        "lib/sysusers.d/chatd.conf",
    ] {
        let path = prefix.join(file);
        assert!(path.is_file(), "{file} not installed: {stdout}");
        assert!(std::fs::metadata(&path).unwrap().len() > 0, "{file} is empty");
    }
    // The unit points at this prefix's binary and configuration.
    let unit = std::fs::read_to_string(prefix.join("lib/systemd/system/chatd.service")).unwrap();
    let bin = binary.to_string_lossy();
    let config = prefix.join("etc/chatd/config.toml");
    assert!(
        unit.contains(&format!(
            "ExecStart={bin} --config {} --data-dir /var/lib/chatd serve",
            config.display()
        )),
        "{unit}"
    );
    assert!(!unit.contains("/usr/local/bin"), "{unit}");

    // Again: nothing changes, and an operator's edited configuration is kept.
    std::fs::write(&config, "# mine\n").unwrap();
    let before: Vec<_> = files_under(&prefix)
        .into_iter()
        .map(|p| (std::fs::metadata(&p).unwrap().modified().unwrap(), p))
        .collect();
    let (code, stdout, err) = install(&prefix, &[]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(!stdout.contains("installed "), "{stdout}");
    assert!(stdout.contains("done: 0 file(s) installed"), "{stdout}");
    let after: Vec<_> = files_under(&prefix)
        .into_iter()
        .map(|p| (std::fs::metadata(&p).unwrap().modified().unwrap(), p))
        .collect();
    assert_eq!(before, after, "a second run rewrote files");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
}

#[test]
fn install_sh_dry_run_writes_nothing() {
    let dir = scratch_dir();
    let prefix = dir.path().join("prefix");
    let (code, stdout, err) = install(&prefix, &["--dry-run"]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        stdout.contains(&format!("would install {}", prefix.join("bin/chatd").display())),
        "{stdout}"
    );
    assert!(stdout.contains("nothing was changed"), "{stdout}");
    assert!(!prefix.exists(), "--dry-run created {}", prefix.display());
}

#[test]
fn install_sh_refuses_unknown_arguments_with_status_2() {
    let out = Command::new(repo().join("scripts/install.sh"))
        .arg("--frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let help = Command::new(repo().join("scripts/install.sh"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("--dry-run"));
    // Paths the unit could not use, and a binary that is not chatd, are refused up front.
    for args in [
        &["--prefix", "relative/dir", "--dry-run"][..],
        &["--binary", "/bin/true", "--prefix", "/tmp/chatd-never", "--dry-run"][..],
    ] {
        let out = Command::new(repo().join("scripts/install.sh"))
            .args(args)
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

// --- scripts/deploy.sh -----------------------------------------------------------------------

#[test]
fn deploy_sh_takes_the_database_url_from_the_environment_only() {
    let deploy = || {
        let mut cmd = Command::new(repo().join("scripts/deploy.sh"));
        cmd.env_remove("CHATD_DATABASE__URL");
        cmd
    };
    let help = deploy().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("CHATD_DATABASE__URL"));

    let missing = deploy().arg("--dry-run").output().unwrap();
    assert_eq!(missing.status.code(), Some(2), "no CHATD_DATABASE__URL");
    assert!(text(&missing.stderr).contains("CHATD_DATABASE__URL"));

    let secret = "postgres://chatd:hunter2-secret@db.internal/chatd";
    let out = deploy()
        .env("CHATD_DATABASE__URL", secret)
        .args(["--dry-run", "--binary", env!("CARGO_BIN_EXE_chatd")])
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    for step in ["migrate", "systemctl restart chatd", "/readyz", "nothing was changed"] {
        assert!(all.contains(step), "{step}: {all}");
    }
    assert!(!all.contains("hunter2"), "the URL was printed: {all}");
}

//! `chatd user …`: account administration straight against the database, through the same
//! accounts service the API uses. Passwords are read from a no-echo prompt or, for scripts,
//! from standard input (`--password-stdin`) — never from argv.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _};
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{print, require_installation, with_database, CliError};
use crate::app::{prepare_schema, Signals};
use crate::config::Config;
use crate::db::Database;
use crate::users::User;

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account (prompts for the password on a terminal)
    Create {
        /// Account name: 3-32 of a-z 0-9 _ . - (upper case is lowered)
        username: String,
        /// Name shown to others
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        /// Make the account a server administrator
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every account, disabled ones included
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show one account
    Show {
        /// The account's username
        username: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Set a new password (signs the user out everywhere)
    Passwd {
        /// The account's username
        username: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: it cannot log in and its sessions are revoked
    Disable {
        /// The account's username
        username: String,
    },
    /// Re-enable a disabled account
    Enable {
        /// The account's username
        username: String,
    },
    /// Delete an account and its sessions, permanently
    Delete {
        /// The account's username
        username: String,
    },
    /// Grant or revoke server administration
    SetAdmin {
        /// The account's username
        username: String,
        /// `true` to grant, `false` to revoke
        #[arg(action = clap::ArgAction::Set, value_name = "true|false")]
        admin: bool,
    },
}

/// The password a `create` or `passwd` needs, read before anything else: a typo at the
/// prompt costs nothing, and Ctrl-C at the prompt simply ends chatd (its terminal restored).
pub fn read_password_for(action: &UserAction) -> Result<Option<String>, CliError> {
    match action {
        UserAction::Create { password_stdin, .. } | UserAction::Passwd { password_stdin, .. } => {
            read_password(*password_stdin, true).map(Some)
        }
        _ => Ok(None),
    }
}

pub async fn run(
    config: Config,
    args: UserArgs,
    password: Option<String>,
    mut signals: Signals,
) -> Result<(), CliError> {
    require_installation(&config)?;
    let config = Arc::new(config);
    with_database(&config.clone(), &mut signals, async |database| {
        act(&config, database, args.action, password).await
    })
    .await
}

async fn act(
    config: &Arc<Config>,
    database: &Database,
    action: UserAction,
    password: Option<String>,
) -> Result<(), CliError> {
    prepare_schema(&database.db, config.database.auto_migrate).await?;
    // The accounts service alone: no hub, no background tasks in a short command.
    let tokens = crate::auth::tokens::TokenKeys::from_config(config)?;
    let accounts = crate::auth::Accounts::new(database.db.clone(), config, tokens);
    let password = || password.clone().unwrap_or_default();
    match action {
        UserAction::Create {
            username,
            display_name,
            admin,
            ..
        } => {
            let user = accounts
                .create_user(&username, password(), display_name.as_deref(), admin)
                .await?;
            print(format_args!(
                "created user {}{}",
                user.username,
                if user.is_admin { " (admin)" } else { "" }
            ))?;
        }
        UserAction::List { json } => {
            let users = accounts.all_users().await?;
            if json {
                print(serde_json::to_string_pretty(&users).map_err(|e| CliError::failure(e.to_string()))?)?;
            } else {
                let mut table = format!(
                    "{:<32}  {:<24}  {:<5}  {:<8}  CREATED",
                    "USERNAME", "DISPLAY NAME", "ADMIN", "STATUS"
                );
                for u in &users {
                    let _ = write!(
                        table,
                        "\n{:<32}  {:<24}  {:<5}  {:<8}  {}",
                        u.username,
                        u.display_name.as_deref().unwrap_or("-"),
                        if u.is_admin { "yes" } else { "no" },
                        if u.disabled { "disabled" } else { "active" },
                        rfc3339(u.created_at)
                    );
                }
                print(table)?;
            }
        }
        UserAction::Show { username, json } => {
            let u = accounts.user(&username).await?;
            if json {
                print(serde_json::to_string_pretty(&u).map_err(|e| CliError::failure(e.to_string()))?)?;
            } else {
                print(describe_user(&u))?;
            }
        }
        UserAction::Passwd { username, .. } => {
            accounts.set_password(&username, password()).await?;
            print(format_args!(
                "password changed for {username}; all of its sessions were revoked"
            ))?;
        }
        UserAction::Disable { username } => {
            let u = accounts.set_disabled(&username, true).await?;
            print(format_args!(
                "disabled {}; all of its sessions were revoked",
                u.username
            ))?;
        }
        UserAction::Enable { username } => {
            let u = accounts.set_disabled(&username, false).await?;
            print(format_args!("enabled {}", u.username))?;
        }
        UserAction::Delete { username } => {
            accounts.delete_user(&username).await?;
            print(format_args!("deleted {username}"))?;
        }
        UserAction::SetAdmin { username, admin } => {
            let u = accounts.set_admin(&username, admin).await?;
            print(format_args!(
                "{} is {} an administrator",
                u.username,
                if u.is_admin { "now" } else { "no longer" }
            ))?;
        }
    }
    Ok(())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn describe_user(u: &User) -> String {
    [
        format!("id:           {}", u.id),
        format!("username:     {}", u.username),
        format!("display name: {}", u.display_name.as_deref().unwrap_or("-")),
        format!("bio:          {}", u.bio.as_deref().unwrap_or("-")),
        format!("avatar url:   {}", u.avatar_url.as_deref().unwrap_or("-")),
        format!("admin:        {}", if u.is_admin { "yes" } else { "no" }),
        format!("status:       {}", if u.disabled { "disabled" } else { "active" }),
        format!("created:      {}", rfc3339(u.created_at)),
        format!("updated:      {}", rfc3339(u.updated_at)),
    ]
    .join("\n")
}

/// From stdin with `--password-stdin`, else a no-echo prompt (typed twice) on a terminal.
pub(super) fn read_password(from_stdin: bool, confirm: bool) -> Result<String, CliError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => CliError::usage("the password on standard input is not valid UTF-8"),
                _ => CliError::failure(format!("cannot read the password from standard input: {e}")),
            })?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            return Err(CliError::usage("no password on standard input"));
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "no terminal to prompt for a password: pipe it with --password-stdin",
        ));
    }
    let first =
        super::prompt::hidden("Password: ").map_err(|e| CliError::failure(format!("cannot read the password: {e}")))?;
    if confirm {
        let second = super::prompt::hidden("Repeat password: ")
            .map_err(|e| CliError::failure(format!("cannot read the password: {e}")))?;
        if first != second {
            return Err(CliError::usage("the passwords do not match"));
        }
    }
    Ok(first)
}

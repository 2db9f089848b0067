//! `chatd tui`: the operators' live console (`crate::tui`), as a subcommand. Reads the
//! configuration for two things only: where the server listens (the default `--url`) and the
//! signing secret (to mint operator tokens). With `--username` it signs in as that
//! administrator instead, so it also works from another machine.

use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::app::Signals;
use crate::config::Config;
use crate::tui::{AdminClient, Auth, ClientError, Secret, StreamOptions};

#[derive(Debug, Args)]
#[command(
    long_about = "A live console for operators: the nodes (connections, subscriptions, message rates, \
        queue drops, database pool, memory) with a sparkline of the message rate, the live rooms and \
        the open connections, refreshed every second over the admin API's stream. Tables sort (s, S), \
        filter (/) and show a detail pane (Enter); from them an operator can close a connection (c), \
        disable its user (d) or archive a room (a), each after a y/n confirmation. When the server \
        cannot be reached the console says so, keeps the last data greyed and reconnects by itself. \
        Access is checked before the console starts: a refusal (not an administrator, a wrong \
        password, a token the server does not accept) or a server that is not running is one error \
        line and exit status 1; a refusal later stops the console's stream with a banner, never \
        retried.\n\n\
        Without --username it mints short-lived operator tokens from the configured signing secret \
        (auth.jwt_secret, auth.jwt_secret_file or the data directory's generated secret), so it runs \
        where the server runs, with the server's configuration. With --username it signs in as that \
        account, which must be a server administrator.\n\n\
        Keys: Tab/1/2/3 screens, arrows/j/k/PgUp/PgDn/Home/End select; Esc closes the detail pane, \
        then clears the filter, then quits; q or Ctrl-C quit. Below 60×15 only the quit keys work."
)]
pub struct TuiArgs {
    /// The chatd to watch [default: http:// and server.bind, loopback for a wildcard bind]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Sign in as this administrator (asks for the password) instead of minting operator tokens
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// The password for `--username`, read before the console takes the terminal over.
pub fn read_password_for(args: &TuiArgs) -> Result<Option<String>, CliError> {
    match &args.username {
        Some(_) => super::user::read_password(args.password_stdin, false).map(Some),
        None => Ok(None),
    }
}

pub async fn run(
    config: Config,
    args: TuiArgs,
    password: Option<String>,
    mut signals: Signals,
) -> Result<(), CliError> {
    if !std::io::stdout().is_terminal() {
        return Err(CliError::usage("chatd tui needs a terminal on standard output"));
    }
    let url = args.url.clone().unwrap_or_else(|| default_url(config.server.bind));
    let auth = match (args.username, password) {
        (Some(username), Some(password)) => Auth::Login {
            username,
            password: Secret::new(password),
        },
        _ => {
            // Fail now, on the normal screen, rather than as a banner that never goes away.
            crate::auth::tokens::operator_token(&config).map_err(|e| CliError::failure(format!("{e:#}")))?;
            Auth::Operator(Arc::new(config))
        }
    };
    let client = AdminClient::new(&url, auth).map_err(|e| CliError::usage(e.to_string()))?;
    // Whether it can get in at all, before taking the terminal over: a refusal or a server
    // that is not there is one line on the normal screen, not a banner that never goes away.
    client
        .check_access()
        .await
        .map_err(|e| CliError::failure(access_error(&url, &e)))?;
    crate::tui::run(client, StreamOptions::default(), &mut signals)
        .await
        .map_err(|e| CliError::failure(format!("terminal: {e}")))
}

/// Why the console cannot start, in the operator's terms.
pub fn access_error(url: &str, e: &ClientError) -> String {
    match e {
        ClientError::Api { status: 401, .. } => format!(
            "{url} does not accept the token: {e} (is this the server's configuration, with its signing secret?)"
        ),
        ClientError::Api { status: 403, .. } => format!("{url} refused access: {e}"),
        ClientError::Auth(_) => e.to_string(),
        ClientError::Transport(_) => format!("cannot reach {url}: {e} (is the server running?)"),
        ClientError::Api { .. } => format!("{url} answered an error: {e}"),
    }
}

/// `http://` and the address the server binds; a wildcard bind (0.0.0.0, [::]) is reached
/// on loopback.
pub fn default_url(bind: SocketAddr) -> String {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, bind.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_url_reaches_a_wildcard_bind_on_loopback() {
        let url = |s: &str| default_url(s.parse().unwrap());
        assert_eq!(url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(url("0.0.0.0:9000"), "http://127.0.0.1:9000");
        assert_eq!(url("[::]:9000"), "http://[::1]:9000");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80");
    }

    #[test]
    fn access_errors_say_what_to_check() {
        let url = "http://127.0.0.1:8080";
        let refused = ClientError::Transport("connection refused".into());
        assert_eq!(
            access_error(url, &refused),
            "cannot reach http://127.0.0.1:8080: connection refused (is the server running?)"
        );
        let token = ClientError::Api {
            status: 401,
            code: "invalid_token".into(),
            message: "the access token is not valid".into(),
        };
        assert!(access_error(url, &token).contains("signing secret"));
        let admin = ClientError::Api {
            status: 403,
            code: "admin_required".into(),
            message: "only server administrators may use the admin API".into(),
        };
        assert!(access_error(url, &admin).contains("refused access: admin_required"));
    }
}

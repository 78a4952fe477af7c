//! The CLI's side of the control plane: reaching the server (starting one on loopback for this
//! aloft home on first use, as `sky api start` does), following a request's progress, and the
//! `aloft server` and `aloft api ...` commands.
//!
//! `ALOFT_API_URL` points the CLI at a server elsewhere (with `ALOFT_API_TOKEN`, or the home's
//! token file); otherwise the home's own server is used, and started when none answers.

use crate::cluster_cmd::{aloft_home, say};
use crate::output::{OutputFormat, new_table, table_text};
use aloft_api::local::{self, Remote, ServerInfo};
use aloft_api::{ErrorCode, RequestState};
use aloft_client::{Client, ClientError};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// How long a server a command started by itself lives with nothing to do.
const IDLE_EXIT: Duration = Duration::from_secs(600);

/// A client of the server for `home`: `ALOFT_API_URL`'s, else the home's own, started when
/// none answers.
pub(crate) async fn connect(home: &Path) -> Result<Client> {
    if let Some(url) = std::env::var_os("ALOFT_API_URL") {
        let url = url.to_string_lossy().into_owned();
        let token = match std::env::var("ALOFT_API_TOKEN") {
            Ok(token) => token,
            Err(_) => read_token(home)?,
        };
        return Ok(Client::new(&url, &token));
    }
    if let Some(remote) = read_remote(home)? {
        return Ok(Client::new(&remote.url, &remote.token));
    }
    if let Some(client) = reachable(home).await {
        return Ok(client);
    }
    start_local(home, Some(IDLE_EXIT)).await
}

fn read_token(home: &Path) -> Result<String> {
    let path = local::token_path(home);
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading the server's token ({})", path.display()))?
        .trim()
        .to_owned())
}

/// The server `aloft api login` chose, if any; a file that is there but unreadable is an
/// error (never a silent fall back to a local server).
fn read_remote(home: &Path) -> Result<Option<Remote>> {
    let path = local::remote_path(home);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!(
                "reading {} (written by `aloft api login`; `aloft api logout` removes it)",
                path.display()
            )
        })?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// `aloft api login URL`: checks the server answers and takes the token, then keeps both for
/// this home's commands.
async fn login(home: &Path, url: &str, token_file: Option<PathBuf>) -> Result<()> {
    let url = url.trim_end_matches('/');
    let host = url
        .strip_prefix("http://")
        .context("the server's URL must start with http:// (TLS comes with users and roles)")?
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        bail!(
            "{url} is not on this machine, and the token would cross the network in clear text; \
             reach it through an SSH tunnel (ssh -L PORT:127.0.0.1:PORT host) and log in to \
             http://127.0.0.1:PORT (TLS comes with users and roles)"
        );
    }
    let token = match token_file {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("reading the token from {}", path.display()))?,
        None => read_token_from_stdin()?,
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("no token given (on standard input, or --token-file)");
    }
    let client = Client::new(url, &token);
    client
        .health()
        .await
        .with_context(|| format!("no aloft server answers at {url}"))?;
    match client.background().await {
        Ok(_) => {}
        Err(err) if err.code() == Some(ErrorCode::Unauthorized) => {
            bail!("the server at {url} refused the token")
        }
        Err(err) => return Err(err.into()),
    }
    let remote = Remote {
        url: url.to_owned(),
        token,
    };
    let path = local::remote_path(home);
    local::write_private(&path, &serde_json::to_vec_pretty(&remote)?)
        .with_context(|| format!("writing {}", path.display()))?;
    say(&format!(
        "This home's commands now go to the aloft server at {url} (`aloft api logout` to use a \
         local one again)."
    ));
    Ok(())
}

/// The token from standard input: one line; on a terminal, asked for with the echo off.
fn read_token_from_stdin() -> Result<String> {
    use std::io::IsTerminal;
    let terminal = std::io::stdin().is_terminal();
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    if terminal {
        eprint!("The server's token (its $ALOFT_HOME/server/token; not echoed): ");
        echo(false);
    }
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    if terminal {
        echo(true);
        eprintln!();
    }
    read.context("reading the token from standard input")?;
    Ok(line)
}

/// The local server's `api.json`, if there is a readable one.
fn read_info(home: &Path) -> Option<ServerInfo> {
    serde_json::from_str(&std::fs::read_to_string(local::info_path(home)).ok()?).ok()
}

/// The home's server, if one answers as the one its `api.json` names.
async fn reachable(home: &Path) -> Option<Client> {
    let info = read_info(home)?;
    let client = Client::new(&info.url, &read_token(home).ok()?);
    let health = tokio::time::timeout(Duration::from_secs(5), client.health())
        .await
        .ok()?
        .ok()?;
    (health.pid == info.pid).then_some(client)
}

/// Starts the home's server in the background (its own session, so the terminal's Ctrl-C
/// never reaches it; its log in `server/server.log`) and waits until it answers. Two commands
/// starting one at once start one: the second waits on the first's lock and finds it.
async fn start_local(home: &Path, idle_exit: Option<Duration>) -> Result<Client> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(local::dir(home))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(local::start_lock_path(home))?;
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock)).await??;
    if let Some(client) = reachable(home).await {
        return Ok(client);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(local::log_path(home))?;
    let exe = std::env::current_exe().context("finding the aloft binary")?;
    let mut command = std::process::Command::new("setsid");
    command.arg(exe).arg("server");
    if let Some(idle) = idle_exit {
        command.arg("--idle-exit").arg(idle.as_secs().to_string());
    }
    let mut child = command
        .env("ALOFT_HOME", home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting the aloft server (setsid aloft server)")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(client) = reachable(home).await {
            drop(lock);
            // `setsid` has exited or execs the server; reap it either way.
            std::thread::spawn(move || child.wait());
            say_recovered(&client).await;
            return Ok(client);
        }
        if let Ok(Some(status)) = child.try_wait()
            && !status.success()
        {
            bail!(
                "the aloft server did not start ({status}); its log ({}) ends:\n{}",
                local::log_path(home).display(),
                log_tail(home)
            );
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "the aloft server did not answer within 20 s; its log ({}) ends:\n{}",
                local::log_path(home).display(),
                log_tail(home)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Says what a server just started found left over by interrupted commands (and undid, or
/// could not undo yet), once its first recovery has run.
async fn say_recovered(client: &Client) {
    let tasks = ["saga_recovery".to_owned()];
    let Ok(activated) = client.activate(Some(&tasks)).await else {
        return;
    };
    for task in &activated.tasks {
        let status = &task.last_status;
        let field = |entry: &serde_json::Value, name: &str| {
            entry[name].as_str().unwrap_or_default().to_owned()
        };
        for entry in status["undone_since_start"]
            .as_array()
            .into_iter()
            .flatten()
        {
            say(&format!(
                "Found an interrupted launch of `{}` ({}, its process is gone) and undid it.",
                field(entry, "cluster"),
                field(entry, "operation")
            ));
        }
        for entry in status["left"].as_array().into_iter().flatten() {
            say(&format!(
                "warning: could not undo the interrupted launch of `{}` ({}) yet: {}",
                field(entry, "cluster"),
                field(entry, "operation"),
                field(entry, "reason")
            ));
        }
    }
}

fn log_tail(home: &Path) -> String {
    let text = std::fs::read_to_string(local::log_path(home)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Calls `call` on the home's server; a server that says it is stopping (its state database
/// was replaced) is waited out and a new one asked, once.
pub(crate) async fn with_server<T, F, Fut>(home: &Path, call: F) -> Result<T>
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let client = connect(home).await?;
    match call(client).await {
        Err(err) if err.code() == Some(ErrorCode::Unavailable) => {
            wait_gone(home).await;
            let client = connect(home).await?;
            Ok(call(client).await?)
        }
        other => Ok(other?),
    }
}

/// Waits (ten seconds at most) until the home's server has stopped: it no longer answers and
/// has let go of its lock (a server stops listening before it has finished stopping, and a new
/// one started in between would find the lock held).
async fn wait_gone(home: &Path) {
    for _ in 0..500 {
        if lock_released(home) && reachable(home).await.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether no server holds the home's lock.
fn lock_released(home: &Path) -> bool {
    std::fs::File::open(local::lock_path(home)).map_or(true, |file| file.try_lock().is_ok())
}

/// Follows a request's progress on stderr until it ends; Ctrl-C detaches (the request goes
/// on in the server) and says how to come back. Fails with the request's error when it fails.
pub(crate) async fn follow(client: &Client, id: &str) -> Result<aloft_api::Request> {
    let followed = client.follow(id, 0, |event| say(&event.line));
    let request = tokio::select! {
        request = followed => request?,
        _ = tokio::signal::ctrl_c() => {
            say(&format!(
                "Detached from request {id}; it goes on in the server: `aloft api logs {id}` \
                 follows it again, `aloft api cancel {id}` cancels it."
            ));
            std::process::exit(130);
        }
    };
    match request.state {
        RequestState::Succeeded => Ok(request),
        RequestState::Cancelled => bail!("request {id} was cancelled"),
        _ => bail!(
            "{}",
            request
                .error
                .clone()
                .unwrap_or_else(|| format!("request {id} failed"))
        ),
    }
}

/// `aloft server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The loopback port to listen on (0: any free one; the chosen one is written to
    /// `$ALOFT_HOME/server/api.json`).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Stop after this many seconds with no call and no request running (how servers that a
    /// command started by itself end).
    #[arg(long, value_name = "SECONDS")]
    pub idle_exit: Option<u64>,
    /// The state database: a PostgreSQL URL (`postgres://user@host:port/db`; the password from
    /// PGPASSWORD or ~/.pgpass, never the command line). Default: `$ALOFT_DB`, else
    /// `$ALOFT_HOME/state.db`.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}

/// Refuses a database URL that carries a password: a command line is visible to every user of
/// the machine (`ps`).
fn check_no_password(url: &str) -> Result<()> {
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
    let user_info = authority.rsplit_once('@').map_or("", |(user, _)| user);
    if user_info.contains(':') || url.contains("password=") {
        bail!(
            "--db carries a password, which every user of this machine could read on the \
             command line; put it in PGPASSWORD or ~/.pgpass (or the whole URL in ALOFT_DB)"
        );
    }
    Ok(())
}

/// `aloft server`: the control plane in the foreground, logging to stderr.
pub fn server(args: ServerArgs) -> Result<ExitCode> {
    if let Some(db) = &args.db {
        check_no_password(db)?;
    }
    let options = aloft_server::Options {
        db: args.db,
        home: aloft_home(),
        port: args.port,
        periods: aloft_control::app::Periods::default(),
        idle_exit: args.idle_exit.map(Duration::from_secs),
    };
    crate::cluster_cmd::runtime()?.block_on(aloft_server::run(options))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Subcommand)]
pub enum ApiCommand {
    /// Start this home's server in the background (if none runs) and say where it is.
    Start,
    /// Stop this home's server (requests it runs are ended as failed; what they made is
    /// undone by the next server's recovery).
    Stop,
    /// The server's requests, newest first.
    Status {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
        output: OutputFormat,
    },
    /// Where the server is and which version it runs.
    Info,
    /// Follow a request's progress (from its first line) until it ends.
    Logs { request: String },
    /// Cancel a request: its work stops and what it made is undone.
    Cancel { request: String },
    /// Send this home's commands to a server elsewhere (its token from standard input or a
    /// file, never the command line).
    Login {
        /// The server's URL, e.g. http://127.0.0.1:46580 (an SSH tunnel to another machine).
        url: String,
        /// Read the token from this file instead of standard input.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Forget the server `login` chose: this home's commands use a local server again.
    Logout,
}

#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    #[command(subcommand)]
    pub command: ApiCommand,
}

pub fn api(args: ApiArgs) -> Result<ExitCode> {
    let home = aloft_home();
    crate::cluster_cmd::runtime()?.block_on(async move {
        match args.command {
            ApiCommand::Start => {
                let client = match reachable(&home).await {
                    Some(client) => client,
                    None => start_local(&home, None).await?,
                };
                let health = client.health().await?;
                say(&format!(
                    "aloft server running at {} (pid {}).",
                    client.url(),
                    health.pid
                ));
            }
            ApiCommand::Stop => stop(&home).await?,
            ApiCommand::Status { limit, output } => {
                let requests = with_server(&home, |client| async move {
                    client.requests(limit).await
                })
                .await?;
                match output {
                    OutputFormat::Json => crate::output::outln!(
                        "{}",
                        serde_json::to_string_pretty(&requests)?
                    ),
                    OutputFormat::Table if requests.is_empty() => {
                        crate::output::outln!("No requests.")
                    }
                    OutputFormat::Table => {
                        let mut table =
                            new_table(&["ID", "KIND", "CLUSTER", "STATE", "AGE", "ERROR"]);
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |elapsed| elapsed.as_secs() as i64);
                        for request in requests {
                            table.add_row(vec![
                                request.id,
                                request.kind,
                                request.cluster.unwrap_or_else(|| "-".to_owned()),
                                crate::output::snake(&request.state),
                                format!("{}s", (now - request.created_at).max(0)),
                                request.error.unwrap_or_default(),
                            ]);
                        }
                        crate::output::out!("{}", table_text(&table));
                    }
                }
            }
            ApiCommand::Login { url, token_file } => login(&home, &url, token_file).await?,
            ApiCommand::Logout => {
                let path = local::remote_path(&home);
                match std::fs::remove_file(&path) {
                    Ok(()) => say("This home's commands use a local aloft server again."),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        say("No server elsewhere was chosen for this home.")
                    }
                    Err(err) => {
                        return Err(err).with_context(|| format!("removing {}", path.display()));
                    }
                }
            }
            ApiCommand::Info => {
                if let Some(remote) = read_remote(&home)? {
                    crate::output::outln!(
                        "url: {}\nchosen by: aloft api login ({})",
                        remote.url,
                        local::remote_path(&home).display()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                let Some(info) = read_info(&home) else {
                    say(&format!(
                        "No aloft server runs for {} (a command starts one; so does `aloft api start`).",
                        home.display()
                    ));
                    return Ok(ExitCode::SUCCESS);
                };
                crate::output::outln!(
                    "url: {}\npid: {}\nversion: {}\nhome: {}\ntoken file: {}\nlog: {}",
                    info.url,
                    info.pid,
                    info.version,
                    home.display(),
                    local::token_path(&home).display(),
                    local::log_path(&home).display()
                );
            }
            ApiCommand::Logs { request } => {
                let client = connect(&home).await?;
                follow(&client, &request).await?;
            }
            ApiCommand::Cancel { request } => {
                let client = connect(&home).await?;
                let after = client.cancel(&request).await?;
                say(&format!(
                    "Request {} is {}.",
                    after.id,
                    crate::output::snake(&after.state)
                ));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Stops the home's server: SIGTERM to the process its `api.json` names, once it answered as
/// that process (never a pid that merely was the server's once), then waits for it to go.
async fn stop(home: &Path) -> Result<()> {
    let (Some(info), Some(_)) = (read_info(home), reachable(home).await) else {
        say("No aloft server runs for this home.");
        return Ok(());
    };
    let status = std::process::Command::new("kill")
        .args(["-TERM", &info.pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("could not signal the server (pid {})", info.pid);
    }
    for _ in 0..500 {
        // Gone, or done with the home (it let go of its lock: a process that started it may
        // not have reaped it yet).
        if !Path::new(&format!("/proc/{}", info.pid)).exists() || lock_released(home) {
            say(&format!("Stopped the aloft server (pid {}).", info.pid));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the server (pid {}) did not stop within 10 s", info.pid)
}

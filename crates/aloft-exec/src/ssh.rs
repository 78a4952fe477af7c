//! The SSH transport, over the system `ssh` client with a multiplexed, pinned connection.
//!
//! Every wait on the network has a deadline, because a node that silently drops packets (a
//! stale neighbour entry, a partition, a VM that vanished) otherwise holds a launch for as long
//! as the kernel keeps retrying. Each `ssh` process gets `ConnectTimeout` (TCP connect and the
//! banner exchange) and `ServerAliveInterval`/`ServerAliveCountMax` (everything after, and the
//! shared master for as long as it lives); [`SshTransport::connect`] retries an unreachable
//! node until an overall deadline, telling a caller's callback what it waits for, and then
//! gives up with [`ExecError::Unreachable`].

use crate::command::{RemoteCommand, shell_quote};
use crate::process::{exit_code, stream_child, stream_child_bytes};
use crate::{ExecError, LineSink, Transport};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// How long an idle shared connection stays open.
const CONTROL_PERSIST_SECONDS: u32 = 300;
/// The longest one connection attempt waits for the node to accept and send its banner.
const CONNECT_TIMEOUT_SECONDS: u64 = 10;
/// Seconds between keepalives on an open connection, and how many may go unanswered before
/// ssh gives up on the node: a node that stops answering is declared lost after about 15 s.
const SERVER_ALIVE_INTERVAL_SECONDS: u32 = 5;
const SERVER_ALIVE_COUNT_MAX: u32 = 3;
/// How long [`SshTransport::connect`] keeps retrying an unreachable node by default: long
/// enough for a cloud VM's sshd to come up after the VM reports running.
pub const DEFAULT_CONNECT_DEADLINE: Duration = Duration::from_secs(60);
/// The pause between two connection attempts grows from the first to the last value.
const RETRY_PAUSE_FIRST: Duration = Duration::from_millis(250);
const RETRY_PAUSE_LAST: Duration = Duration::from_secs(2);
/// Slack on top of an attempt's own timeouts before the attempt's `ssh` is killed: ssh
/// enforces them itself, this only guards against an ssh that does not.
const ATTEMPT_GRACE: Duration = Duration::from_secs(5);

/// What [`SshTransport::connect_reporting`] tells its callback after a failed attempt, before
/// it tries again. Its `Display` is a sentence for people ("still waiting for ...").
#[derive(Debug)]
pub struct ConnectRetry<'a> {
    /// `user@host:port`.
    pub target: &'a str,
    /// How many attempts have failed so far (1 after the first).
    pub attempt: u32,
    /// Why the last attempt failed (always [`ExecError::Unreachable`]).
    pub error: &'a ExecError,
    /// How much longer it keeps trying.
    pub remaining: Duration,
}

impl std::fmt::Display for ConnectRetry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.error {
            ExecError::Unreachable { detail, .. } => detail.as_str(),
            _ => "it did not answer",
        };
        write!(
            f,
            "still waiting for {} to accept an SSH connection (attempt {}: {why}); retrying for up \
             to {} s more",
            self.target,
            self.attempt,
            self.remaining.as_secs().max(1)
        )
    }
}

/// A node to reach over SSH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The private key to log in with.
    pub identity_file: PathBuf,
    /// The node's host public key, as in a `.pub` file (`ssh-ed25519 AAAA...`): the only key
    /// the node may answer with.
    pub host_key: String,
}

impl SshTarget {
    fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Runs commands on one node over a shared SSH connection.
#[derive(Debug)]
pub struct SshTransport {
    target: SshTarget,
    /// Holds the known-hosts file and the control socket.
    state_dir: PathBuf,
    /// How long [`SshTransport::connect`] keeps retrying an unreachable node.
    connect_deadline: Duration,
}

impl SshTransport {
    /// A transport to `target`, keeping its files (pinned key, control socket) in `state_dir`,
    /// which must be short enough for a Unix socket path (about 100 bytes).
    pub fn new(target: SshTarget, state_dir: &Path) -> Result<SshTransport, ExecError> {
        let file_error = |source| ExecError::LocalFile {
            path: state_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(file_error)?;
        let transport = SshTransport {
            target,
            state_dir: state_dir.to_path_buf(),
            connect_deadline: DEFAULT_CONNECT_DEADLINE,
        };
        let host = if transport.target.port == 22 {
            transport.target.host.clone()
        } else {
            format!("[{}]:{}", transport.target.host, transport.target.port)
        };
        let line = format!("{host} {}\n", transport.target.host_key.trim());
        std::fs::write(transport.known_hosts(), line).map_err(file_error)?;
        Ok(transport)
    }

    /// Sets how long [`SshTransport::connect`] keeps retrying a node that does not answer
    /// (default [`DEFAULT_CONNECT_DEADLINE`]). Commands and uploads never retry: they make one
    /// attempt, bounded by ssh's own timeouts.
    pub fn with_connect_deadline(mut self, deadline: Duration) -> SshTransport {
        self.connect_deadline = deadline;
        self
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    fn known_hosts(&self) -> PathBuf {
        self.state_dir.join("known_hosts")
    }

    fn control_path(&self) -> PathBuf {
        self.state_dir.join("ctl")
    }

    /// The options every `ssh` call shares.
    fn ssh_command(&self) -> Command {
        self.ssh_command_with_timeout(CONNECT_TIMEOUT_SECONDS)
    }

    /// [`SshTransport::ssh_command`] whose connection attempt gives up after
    /// `connect_timeout_seconds` (at least 1).
    fn ssh_command_with_timeout(&self, connect_timeout_seconds: u64) -> Command {
        let mut command = Command::new("ssh");
        let options = [
            "BatchMode=yes".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            format!("UserKnownHostsFile={}", self.known_hosts().display()),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            "IdentitiesOnly=yes".to_owned(),
            format!("IdentityFile={}", self.target.identity_file.display()),
            "ControlMaster=auto".to_owned(),
            format!("ControlPath={}", self.control_path().display()),
            format!("ControlPersist={CONTROL_PERSIST_SECONDS}"),
            format!("ConnectTimeout={}", connect_timeout_seconds.max(1)),
            format!("ServerAliveInterval={SERVER_ALIVE_INTERVAL_SECONDS}"),
            format!("ServerAliveCountMax={SERVER_ALIVE_COUNT_MAX}"),
            "LogLevel=ERROR".to_owned(),
        ];
        command.arg("-F").arg("/dev/null");
        for option in options {
            command.arg("-o").arg(option);
        }
        command
            .arg("-p")
            .arg(self.target.port.to_string())
            .arg("-l")
            .arg(&self.target.user)
            .arg(&self.target.host)
            .kill_on_drop(true);
        command
    }

    /// A `ssh` command with this transport's options (pinned key, shared connection) for an
    /// interactive session or a one-off command: `aloft ssh` hands the terminal to it.
    pub fn interactive_command(&self, remote_command: &[String]) -> std::process::Command {
        let mut command = self.ssh_command().into_std();
        if remote_command.is_empty() {
            command.arg("-t");
        } else {
            command.arg("--").args(remote_command);
        }
        command
    }

    /// Whether a shared connection to the node is open.
    pub async fn is_connected(&self) -> bool {
        let mut command = self.ssh_command();
        command
            .arg("-O")
            .arg("check")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command.status().await.is_ok_and(|status| status.success())
    }

    /// Opens the shared connection if it is not open. A node that does not answer (refused,
    /// timed out, no route) is tried again until the transport's connect deadline
    /// ([`SshTransport::with_connect_deadline`]) has passed, then the result is
    /// [`ExecError::Unreachable`] saying how long it waited and the last failure. A wrong host
    /// key or a refused login fails at once.
    pub async fn connect(&self) -> Result<(), ExecError> {
        self.connect_reporting(&mut |_| {}).await
    }

    /// [`SshTransport::connect`], calling `on_retry` after each failed attempt that will be
    /// retried, so a caller can say what it is waiting for.
    pub async fn connect_reporting(
        &self,
        on_retry: &mut (dyn FnMut(&ConnectRetry<'_>) + Send),
    ) -> Result<(), ExecError> {
        let started = Instant::now();
        let deadline = started.checked_add(self.connect_deadline);
        let mut attempt = 0u32;
        let mut pause = RETRY_PAUSE_FIRST;
        loop {
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            attempt += 1;
            let error = match self.connect_once(remaining).await {
                Ok(()) => return Ok(()),
                Err(error @ ExecError::Unreachable { .. }) => error,
                Err(other) => return Err(other),
            };
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if remaining <= pause {
                let last = match error {
                    ExecError::Unreachable { detail, .. } => detail,
                    other => other.to_string(),
                };
                let tries = if attempt == 1 {
                    "1 attempt".to_owned()
                } else {
                    format!("{attempt} attempts")
                };
                return Err(ExecError::Unreachable {
                    target: self.target.label(),
                    detail: format!(
                        "no SSH connection within {} s ({tries}); the last attempt: {last}",
                        started.elapsed().as_secs()
                    ),
                });
            }
            let label = self.target.label();
            on_retry(&ConnectRetry {
                target: &label,
                attempt,
                error: &error,
                remaining,
            });
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_PAUSE_LAST);
        }
    }

    /// One attempt to open the shared connection (or find it open), waiting at most
    /// `budget` (and never more than ssh's own connect timeout) for the node to answer.
    async fn connect_once(&self, budget: Duration) -> Result<(), ExecError> {
        if self.is_connected().await {
            return Ok(());
        }
        let attempt_seconds = budget.as_secs().clamp(1, CONNECT_TIMEOUT_SECONDS);
        let mut command = self.ssh_command_with_timeout(attempt_seconds);
        command
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // ssh bounds the connect and the banner (`ConnectTimeout`) and everything after
        // (`ServerAlive*`); this bound only catches an ssh that hangs anyway. Dropping the
        // future kills the process.
        let limit = Duration::from_secs(
            attempt_seconds
                + u64::from(SERVER_ALIVE_INTERVAL_SECONDS * (SERVER_ALIVE_COUNT_MAX + 1)),
        ) + ATTEMPT_GRACE;
        let output = match tokio::time::timeout(limit, command.output()).await {
            Ok(output) => output.map_err(|source| ExecError::Spawn {
                program: "ssh".to_owned(),
                source,
            })?,
            Err(_elapsed) => {
                return Err(ExecError::Unreachable {
                    target: self.target.label(),
                    detail: format!("ssh did not finish connecting within {} s", limit.as_secs()),
                });
            }
        };
        if output.status.success() {
            return Ok(());
        }
        Err(self.classify(&String::from_utf8_lossy(&output.stderr)))
    }

    /// Closes the shared connection. Dropping a transport leaves it open on purpose, so the
    /// next transport to the same node (same state directory) reuses it; it closes itself after
    /// a few idle minutes, or when the node goes away.
    pub async fn disconnect(&self) {
        let mut command = self.ssh_command();
        command
            .arg("-O")
            .arg("exit")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = command.status().await;
    }

    /// Runs `command` like [`Transport::run`], but hands its stdout to `stdout` in chunks as
    /// they arrive, bytes as they are, instead of line by line: for binary streams and bulk
    /// output (a job's log). Returns the exit code and what the command printed on stderr.
    pub async fn run_bytes(
        &self,
        command: &RemoteCommand,
        stdout: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(i32, String), ExecError> {
        self.connect().await?;
        let child = self
            .ssh_command()
            .arg("bash")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ExecError::Spawn {
                program: "ssh".to_owned(),
                source,
            })?;
        let (code, stderr) = stream_child_bytes(child, &command.to_script(), "ssh", stdout).await?;
        if code == 255 && !self.is_connected().await {
            return Err(ExecError::Unreachable {
                target: self.target.label(),
                detail: "the connection was lost while the command ran".to_owned(),
            });
        }
        Ok((code, stderr))
    }

    /// What an `ssh` connection failure means. The one place that reads ssh's messages.
    fn classify(&self, stderr: &str) -> ExecError {
        let target = self.target.label();
        let detail = stderr
            .trim()
            .lines()
            .last()
            .unwrap_or("ssh failed")
            .to_owned();
        if stderr.contains("Host key verification failed")
            || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            || stderr.contains("No ED25519 host key is known")
            || stderr.contains("host key for")
        {
            ExecError::HostKeyMismatch { target }
        } else if stderr.contains("Permission denied") || stderr.contains("Too many authentication")
        {
            ExecError::AuthFailed { target, detail }
        } else {
            ExecError::Unreachable { target, detail }
        }
    }
}

#[async_trait]
impl Transport for SshTransport {
    async fn run(&self, command: &RemoteCommand, sink: LineSink<'_>) -> Result<i32, ExecError> {
        self.connect_once(Duration::from_secs(CONNECT_TIMEOUT_SECONDS))
            .await?;
        let child = self
            .ssh_command()
            .arg("bash")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ExecError::Spawn {
                program: "ssh".to_owned(),
                source,
            })?;
        let code = stream_child(child, &command.to_script(), "ssh", sink).await?;
        // 255 is ssh's own failure code: tell a lost node from a command that exited 255.
        if code == 255 && !self.is_connected().await {
            return Err(ExecError::Unreachable {
                target: self.target.label(),
                detail: "the connection was lost while the command ran".to_owned(),
            });
        }
        Ok(code)
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<(), ExecError> {
        self.connect_once(Duration::from_secs(CONNECT_TIMEOUT_SECONDS))
            .await?;
        let metadata = std::fs::metadata(local).map_err(|source| ExecError::LocalFile {
            path: local.to_path_buf(),
            source,
        })?;
        let to = shell_quote(remote);
        let mut ssh = self.ssh_command();
        let mut tar = None;
        if metadata.is_dir() {
            let mut child = Command::new("tar")
                .arg("-C")
                .arg(local)
                .args(["-cf", "-", "."])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|source| ExecError::Spawn {
                    program: "tar".to_owned(),
                    source,
                })?;
            let stdout = child.stdout.take().and_then(|out| out.try_into().ok());
            ssh.stdin(stdout.unwrap_or_else(Stdio::null));
            ssh.arg(format!("mkdir -p {to} && tar -C {to} -xf -"));
            tar = Some(child);
        } else {
            let file = std::fs::File::open(local).map_err(|source| ExecError::LocalFile {
                path: local.to_path_buf(),
                source,
            })?;
            ssh.stdin(Stdio::from(file));
            ssh.arg(format!("mkdir -p \"$(dirname {to})\" && cat > {to}"));
        }
        let output = ssh
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|source| ExecError::Spawn {
                program: "ssh".to_owned(),
                source,
            })?;
        let tar_ok = match tar {
            Some(child) => child
                .wait_with_output()
                .await
                .is_ok_and(|out| out.status.success()),
            None => true,
        };
        if output.status.success() && tar_ok {
            return Ok(());
        }
        if exit_code(output.status) == 255 && !self.is_connected().await {
            return Err(self.classify(&String::from_utf8_lossy(&output.stderr)));
        }
        Err(ExecError::UploadFailed {
            path: local.to_path_buf(),
            target: self.target.label(),
            remote: remote.to_owned(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

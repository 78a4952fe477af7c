//! The SSH transport, over the system `ssh` client with a multiplexed, pinned connection.

use crate::command::{RemoteCommand, shell_quote};
use crate::process::{exit_code, stream_child, stream_child_bytes};
use crate::{ExecError, LineSink, Transport};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// How long an idle shared connection stays open.
const CONTROL_PERSIST_SECONDS: u32 = 300;
/// How long to wait for a node to answer a new connection.
const CONNECT_TIMEOUT_SECONDS: u32 = 10;

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
            format!("ConnectTimeout={CONNECT_TIMEOUT_SECONDS}"),
            "ServerAliveInterval=5".to_owned(),
            "ServerAliveCountMax=3".to_owned(),
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

    /// Opens the shared connection if it is not open, classifying any failure.
    pub async fn connect(&self) -> Result<(), ExecError> {
        if self.is_connected().await {
            return Ok(());
        }
        let mut command = self.ssh_command();
        command
            .arg("true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let output = command.output().await.map_err(|source| ExecError::Spawn {
            program: "ssh".to_owned(),
            source,
        })?;
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
        self.connect().await?;
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

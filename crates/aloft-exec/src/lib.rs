//! Running commands and copying files on a node: the [`Transport`] trait and its two
//! implementations, [`SshTransport`] (a remote node) and [`LocalTransport`] (this machine).
//!
//! The SSH transport drives the system `ssh` client, as SkyPilot does, rather than an SSH
//! library: one multiplexed connection per node (`ControlMaster`, kept for a few minutes) makes
//! every command after the first cost a channel, not a handshake; the node's host key is pinned
//! (a known-hosts file with exactly that key, `StrictHostKeyChecking=yes`), so a node that
//! answers with another key is refused; and users' ssh setups keep working. Failures are
//! classified in [`ExecError`], so callers never look at ssh's messages.

mod command;
mod local;
mod process;
mod ssh;

pub use command::{RemoteCommand, Stream, shell_quote};
pub use local::LocalTransport;
pub use ssh::{ConnectRetry, DEFAULT_CONNECT_DEADLINE, SshTarget, SshTransport};

use async_trait::async_trait;
use std::path::{Path, PathBuf};

/// Receives each line a command prints, as it is printed.
pub type LineSink<'a> = &'a mut (dyn FnMut(Stream, &str) + Send);

/// Runs commands and copies files on one node.
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Runs `command` with `bash`; each output line goes to `sink` as it arrives. Returns the
    /// command's exit code (a command killed by a signal reports 128 + the signal).
    async fn run(&self, command: &RemoteCommand, sink: LineSink<'_>) -> Result<i32, ExecError>;

    /// Copies a local file or directory to `remote` on the node. A directory's contents land in
    /// `remote` (created if missing), like `rsync -a dir/ remote/`; a file becomes `remote`.
    async fn upload(&self, local: &Path, remote: &str) -> Result<(), ExecError>;

    /// Runs a command and collects its output (stdout and stderr interleaved by line).
    async fn output(&self, command: &RemoteCommand) -> Result<(i32, String), ExecError> {
        let mut text = String::new();
        let mut sink = |_: Stream, line: &str| {
            text.push_str(line);
            text.push('\n');
        };
        let code = self.run(command, &mut sink).await?;
        Ok((code, text))
    }
}

/// Why a command could not be run or a file not copied. The class is in the variant, so
/// callers (failover, status refresh) never match on messages.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The node did not answer (refused, timed out, no route): it may be down or partitioned.
    #[error("cannot reach {target}: {detail}")]
    Unreachable { target: String, detail: String },
    /// The node answered with a host key other than the pinned one.
    #[error("{target} answered with a host key other than the pinned one; refusing to connect")]
    HostKeyMismatch { target: String },
    /// The node refused our key.
    #[error("{target} refused the login: {detail}")]
    AuthFailed { target: String, detail: String },
    /// A local file to upload is missing or unreadable.
    #[error("cannot read {path}")]
    LocalFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The copy ran but failed on the node (disk full, permissions, ...).
    #[error("copying {path} to {target}:{remote} failed: {detail}")]
    UploadFailed {
        path: PathBuf,
        target: String,
        remote: String,
        detail: String,
    },
    /// A local program (`ssh`, `bash`, `tar`) could not be started.
    #[error("cannot start `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

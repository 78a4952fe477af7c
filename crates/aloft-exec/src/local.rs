//! The local transport: commands run on this machine, with `bash`.

use crate::command::RemoteCommand;
use crate::process::{bash_script_upload, stream_child};
use crate::{ExecError, LineSink, Transport};
use async_trait::async_trait;
use std::path::Path;
use std::process::Stdio;
use tokio::process::Command;

/// Runs commands on this machine (for the local driver and for tests).
#[derive(Clone, Debug, Default)]
pub struct LocalTransport;

#[async_trait]
impl Transport for LocalTransport {
    async fn run(&self, command: &RemoteCommand, sink: LineSink<'_>) -> Result<i32, ExecError> {
        let child = Command::new("bash")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ExecError::Spawn {
                program: "bash".to_owned(),
                source,
            })?;
        stream_child(child, &command.to_script(), "bash", sink).await
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<(), ExecError> {
        let script = bash_script_upload(local, remote)?;
        let (code, text) = self.output(&RemoteCommand::new(script)).await?;
        if code != 0 {
            return Err(ExecError::UploadFailed {
                path: local.to_path_buf(),
                target: "localhost".to_owned(),
                remote: remote.to_owned(),
                detail: text.trim().to_owned(),
            });
        }
        Ok(())
    }
}

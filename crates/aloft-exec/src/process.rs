//! Driving a child process: feed it a script, stream its output lines, collect its exit code.

use crate::command::{Stream, shell_quote};
use crate::{ExecError, LineSink};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;

/// Writes `script` to the child's stdin, sends each stdout/stderr line to `sink` as it comes,
/// and returns the exit code (128 + signal for a killed process).
pub(crate) async fn stream_child(
    mut child: Child,
    script: &str,
    program: &str,
    sink: LineSink<'_>,
) -> Result<i32, ExecError> {
    let spawn_error = |source| ExecError::Spawn {
        program: program.to_owned(),
        source,
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A command that exits without reading its script closes the pipe early: not an error.
        let _ = stdin.write_all(script.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
        drop(stdin);
    }
    let stdout = child.stdout.take().map(|out| BufReader::new(out).lines());
    let stderr = child.stderr.take().map(|err| BufReader::new(err).lines());
    let (mut stdout, mut stderr) = (stdout, stderr);
    loop {
        tokio::select! {
            line = next_line(&mut stdout), if stdout.is_some() => match line {
                Some(line) => sink(Stream::Stdout, &line),
                None => stdout = None,
            },
            line = next_line(&mut stderr), if stderr.is_some() => match line {
                Some(line) => sink(Stream::Stderr, &line),
                None => stderr = None,
            },
            else => break,
        }
    }
    let status = child.wait().await.map_err(spawn_error)?;
    Ok(exit_code(status))
}

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut Option<tokio::io::Lines<R>>,
) -> Option<String> {
    match lines {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => None,
    }
}

pub(crate) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A bash script that copies `local` (file or directory) to `remote` on the same machine.
pub(crate) fn bash_script_upload(local: &Path, remote: &str) -> Result<String, ExecError> {
    let metadata = std::fs::metadata(local).map_err(|source| ExecError::LocalFile {
        path: local.to_path_buf(),
        source,
    })?;
    let from = shell_quote(&local.display().to_string());
    let to = shell_quote(remote);
    Ok(if metadata.is_dir() {
        format!("set -e\nmkdir -p {to}\ntar -C {from} -cf - . | tar -C {to} -xf -")
    } else {
        format!("set -e\nmkdir -p \"$(dirname {to})\"\ncp {from} {to}")
    })
}

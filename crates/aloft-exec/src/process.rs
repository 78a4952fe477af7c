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
    let mut stdout = child
        .stdout
        .take()
        .map(|out| BufReader::with_capacity(READ_BUFFER, out));
    let mut stderr = child
        .stderr
        .take()
        .map(|err| BufReader::with_capacity(READ_BUFFER, err));
    // One buffer per stream, reused for every line.
    let (mut out_line, mut err_line) = (Vec::new(), Vec::new());
    loop {
        tokio::select! {
            more = next_line(&mut stdout, &mut out_line), if stdout.is_some() => {
                if more {
                    sink(Stream::Stdout, &String::from_utf8_lossy(trim_newline(&out_line)));
                    out_line.clear();
                } else {
                    stdout = None;
                }
            }
            more = next_line(&mut stderr, &mut err_line), if stderr.is_some() => {
                if more {
                    sink(Stream::Stderr, &String::from_utf8_lossy(trim_newline(&err_line)));
                    err_line.clear();
                } else {
                    stderr = None;
                }
            }
            else => break,
        }
    }
    let status = child.wait().await.map_err(spawn_error)?;
    Ok(exit_code(status))
}

/// Writes `script` to the child's stdin and hands its stdout to `stdout` in chunks as they come,
/// bytes as they are (for binary streams). Returns the exit code and what it printed on stderr
/// (at most 64 KiB of it).
pub(crate) async fn stream_child_bytes(
    mut child: Child,
    script: &str,
    program: &str,
    stdout: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<(i32, String), ExecError> {
    use tokio::io::AsyncReadExt;
    let spawn_error = |source| ExecError::Spawn {
        program: program.to_owned(),
        source,
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes()).await;
        let _ = stdin.write_all(b"\n").await;
        drop(stdin);
    }
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut out_buffer = vec![0u8; READ_BUFFER];
    let mut err_buffer = vec![0u8; 4096];
    let mut err_text = Vec::new();
    loop {
        tokio::select! {
            read = async { out.as_mut().expect("guarded").read(&mut out_buffer).await }, if out.is_some() => {
                match read {
                    Ok(0) | Err(_) => out = None,
                    Ok(read) => stdout(&out_buffer[..read]),
                }
            }
            read = async { err.as_mut().expect("guarded").read(&mut err_buffer).await }, if err.is_some() => {
                match read {
                    Ok(0) | Err(_) => err = None,
                    Ok(read) if err_text.len() < READ_BUFFER => {
                        err_text.extend_from_slice(&err_buffer[..read]);
                    }
                    Ok(_) => {}
                }
            }
            else => break,
        }
    }
    let status = child.wait().await.map_err(spawn_error)?;
    Ok((
        exit_code(status),
        String::from_utf8_lossy(&err_text).into_owned(),
    ))
}

/// How much of a child's output is read at once.
const READ_BUFFER: usize = 64 * 1024;

/// Reads the next line (bytes, newline included) into `line`, which the caller clears once it
/// has used the line (a read cut short by `select!` leaves its bytes there for the next call);
/// false at the end of the stream. Bytes, not text: a line that is not UTF-8 is passed on (lossily), not taken for the end of
/// the output, which would leave the child blocked on a full pipe or killed by SIGPIPE.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut Option<R>,
    line: &mut Vec<u8>,
) -> bool {
    match reader {
        Some(reader) => reader
            .read_until(b'\n', line)
            .await
            .is_ok_and(|_| !line.is_empty()),
        None => false,
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
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

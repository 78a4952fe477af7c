//! The user's side: drives the agent on the head node over the head's SSH transport. Each call
//! is one `aloft agent ...` command over the node's shared connection, answering JSON. A
//! request's JSON goes to the agent's stdin as a here-document of the script the transport
//! feeds to `bash` on ITS stdin, so it is never in a command line on either machine.

use crate::logs::{Frame, FrameDecoder, Piece};
use crate::protocol::{
    AGENT_BIN, AGENT_DIR, AgentStatus, Autostop, ClusterInfo, JobSpec, LogEvent,
};
use aloft_exec::{ExecError, RemoteCommand, SshTransport, Stream, Transport, shell_quote};
use aloft_store::{Job, JobState};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a log stream hands out, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogItem<'a> {
    /// Which job the stream is about (first).
    Job(i64),
    /// Output of one node on one stream: whole lines, except at the very end of the job.
    Output(Piece<'a>),
}

/// How a log stream ended: the job and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct LogsEnd {
    pub job_id: i64,
    pub state: JobState,
    /// Non-zero exit codes by node rank (or an `error` the agent recorded).
    pub exit_codes: Option<serde_json::Value>,
}

/// Why a call to the agent failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The head node could not be reached, or a copy to it failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The agent ran and refused (its message says why).
    #[error("the agent on the head node failed: {0}")]
    Agent(String),
    /// The agent answered something that is not what was asked for (another version?).
    #[error("the agent's answer is unreadable ({detail}): {answer}")]
    BadAnswer { detail: String, answer: String },
    #[error("cannot read {path}")]
    LocalFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The agent on one cluster's head node.
#[derive(Debug, Clone)]
pub struct AgentClient {
    head: Arc<SshTransport>,
    /// The login user's home on the head (uploads take absolute paths).
    home: String,
}

/// What identifies a build of the binary: a new one is copied, the same one is not.
fn binary_id(path: &Path) -> Result<String, AgentError> {
    let meta = std::fs::metadata(path).map_err(|source| AgentError::LocalFile {
        path: path.to_path_buf(),
        source,
    })?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |elapsed| elapsed.as_nanos());
    Ok(format!(
        "{}-{}-{modified}",
        env!("CARGO_PKG_VERSION"),
        meta.len()
    ))
}

fn bad_answer(detail: impl ToString, answer: &str) -> AgentError {
    AgentError::BadAnswer {
        detail: detail.to_string(),
        answer: answer.chars().take(400).collect(),
    }
}

impl AgentClient {
    pub fn new(head: Arc<SshTransport>, remote_home: impl Into<String>) -> AgentClient {
        AgentClient {
            head,
            home: remote_home.into(),
        }
    }

    fn command(&self, args: &str) -> RemoteCommand {
        RemoteCommand::new(format!("\"$HOME/{AGENT_BIN}\" agent {args} </dev/null"))
    }

    /// `aloft agent ARGS` with `json` on its stdin. Serialized JSON is one line, so it cannot
    /// contain the here-document's end marker line.
    fn command_with_input(&self, args: &str, json: &str) -> RemoteCommand {
        RemoteCommand::new(format!(
            "\"$HOME/{AGENT_BIN}\" agent {args} <<'ALOFT_AGENT_REQUEST'\n{json}\nALOFT_AGENT_REQUEST"
        ))
    }

    /// Runs `aloft agent ARGS` on the head; its stdout, or its stderr as the error.
    async fn call(&self, args: &str) -> Result<String, AgentError> {
        self.call_command(&self.command(args)).await
    }

    /// Runs `aloft agent ARGS` with `request` as JSON on its stdin.
    async fn call_with_input(
        &self,
        args: &str,
        request: &impl serde::Serialize,
    ) -> Result<String, AgentError> {
        let json = serde_json::to_string(request).expect("a request serializes");
        debug_assert!(!json.contains('\n'));
        self.call_command(&self.command_with_input(args, &json))
            .await
    }

    async fn call_command(&self, command: &RemoteCommand) -> Result<String, AgentError> {
        let (mut out, mut err) = (String::new(), String::new());
        let mut sink = |stream: Stream, line: &str| {
            let text = if stream == Stream::Stdout {
                &mut out
            } else {
                &mut err
            };
            text.push_str(line);
            text.push('\n');
        };
        let code = self.head.run(command, &mut sink).await?;
        if code != 0 {
            let message = err.trim();
            return Err(AgentError::Agent(if message.is_empty() {
                format!("exit status {code}")
            } else {
                message.to_owned()
            }));
        }
        Ok(out)
    }

    /// Puts the agent on the head node (the binary only if it is not that build already, and
    /// the key for reaching the workers), records the cluster's nodes there and starts the
    /// daemon. Returns whether the binary was copied.
    pub async fn install(
        &self,
        binary: &Path,
        worker_key: &Path,
        info: &ClusterInfo,
    ) -> Result<bool, AgentError> {
        let id = binary_id(binary)?;
        let (_, current) = self
            .head
            .output(&RemoteCommand::new(format!(
                "cat \"$HOME/{AGENT_BIN}.id\" 2>/dev/null"
            )))
            .await?;
        let copy = current.trim() != id;
        if copy {
            let staged = format!("{}/{AGENT_BIN}.new", self.home);
            self.head.upload(binary, &staged).await?;
            let (code, text) = self
                .head
                .output(&RemoteCommand::new(format!(
                    "chmod 755 {staged} && mv {staged} \"$HOME/{AGENT_BIN}\" && echo {id} > \"$HOME/{AGENT_BIN}.id\"",
                    staged = shell_quote(&staged),
                    id = shell_quote(&id),
                )))
                .await?;
            if code != 0 {
                return Err(AgentError::Agent(text.trim().to_owned()));
            }
        }
        self.head
            .upload(worker_key, &format!("{}/{AGENT_DIR}/ssh/key", self.home))
            .await?;
        self.call_with_input("setup", info).await?;
        Ok(copy)
    }

    /// Queues a job; returns its id.
    pub async fn submit(&self, spec: &JobSpec) -> Result<i64, AgentError> {
        let answer = self.call_with_input("submit", spec).await?;
        let value: serde_json::Value =
            serde_json::from_str(answer.trim()).map_err(|err| bad_answer(err, &answer))?;
        value["job_id"]
            .as_i64()
            .ok_or_else(|| bad_answer("no job_id", &answer))
    }

    /// Streams a job's output (`None`: the latest job) to `sink`, as raw frames over the
    /// head's connection (see [`crate::logs`]); with `follow`, until the job ends. The first
    /// item names the job. Returns the job's state and exit codes at the end.
    pub async fn logs(
        &self,
        job: Option<i64>,
        follow: bool,
        sink: &mut (dyn FnMut(LogItem<'_>) + Send),
    ) -> Result<LogsEnd, AgentError> {
        let mut args = "logs --framed".to_owned();
        if let Some(job) = job {
            args.push_str(&format!(" {job}"));
        }
        if follow {
            args.push_str(" --follow");
        }
        let mut decoder = FrameDecoder::default();
        let mut job_id = job;
        let mut end = None;
        let mut unreadable = None;
        let mut on_bytes = |bytes: &[u8]| {
            if unreadable.is_some() {
                return;
            }
            let decoded = decoder.push(bytes, &mut |frame| match frame {
                Frame::Job(id) => {
                    job_id = Some(id);
                    sink(LogItem::Job(id));
                }
                Frame::Output(piece) => sink(LogItem::Output(piece)),
                Frame::End(LogEvent::End { state, exit_codes }) => end = Some((state, exit_codes)),
                Frame::End(LogEvent::Line { .. }) => {}
            });
            if let Err(error) = decoded {
                unreadable = Some(bad_answer(error, ""));
            }
        };
        let (code, err) = self
            .head
            .run_bytes(&self.command(&args), &mut on_bytes)
            .await?;
        if code != 0 {
            return Err(AgentError::Agent(err.trim().to_owned()));
        }
        if let Some(error) = unreadable {
            return Err(error);
        }
        let (Some((state, exit_codes)), Some(job_id)) = (end, job_id) else {
            return Err(bad_answer("the stream ended without the job's state", &err));
        };
        Ok(LogsEnd {
            job_id,
            state,
            exit_codes,
        })
    }

    /// The cluster's jobs, oldest first.
    pub async fn queue(&self) -> Result<Vec<Job>, AgentError> {
        let answer = self.call("queue").await?;
        serde_json::from_str(answer.trim()).map_err(|err| bad_answer(err, &answer))
    }

    /// Cancels jobs (`all`: every unfinished one); returns them as they are afterwards.
    pub async fn cancel(&self, jobs: &[i64], all: bool) -> Result<Vec<Job>, AgentError> {
        let mut args = "cancel".to_owned();
        for job in jobs {
            args.push_str(&format!(" {job}"));
        }
        if all {
            args.push_str(" --all");
        }
        let answer = self.call(&args).await?;
        serde_json::from_str(answer.trim()).map_err(|err| bad_answer(err, &answer))
    }

    /// Sets or clears the cluster's autostop.
    pub async fn set_autostop(&self, autostop: &Autostop) -> Result<(), AgentError> {
        self.call_with_input("autostop", autostop).await.map(drop)
    }

    /// The daemon, the autostop setting and the idle time.
    pub async fn status(&self) -> Result<AgentStatus, AgentError> {
        let answer = self.call("status").await?;
        serde_json::from_str(answer.trim()).map_err(|err| bad_answer(err, &answer))
    }
}

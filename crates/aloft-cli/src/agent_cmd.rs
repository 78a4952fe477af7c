//! `aloft agent ...`: the head-node agent's commands, run on the head node by the client over
//! SSH (hidden from `--help`: people use `aloft queue`, `logs`, `cancel`, `autostop`). Requests
//! (a cluster description, a job, an autostop setting) come as JSON on stdin, never as an
//! argument: a job carries its secrets, and every user of the node can read command lines.
//! Answers are JSON on stdout.

use aloft_agent::head::Agent;
use aloft_agent::{Autostop, ClusterInfo, JobSpec};
use anyhow::{Context, Result};
use std::io::Read;
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// Record the cluster's nodes (JSON on stdin) and start the daemon.
    Setup,
    /// Queue a job (JSON on stdin); prints its id.
    Submit,
    /// The jobs, as JSON.
    Queue,
    /// A job's log as JSON lines, ending with its state.
    Logs {
        job: Option<i64>,
        #[arg(long)]
        follow: bool,
        /// Frames of raw output instead of JSON lines (what the client reads).
        #[arg(long)]
        framed: bool,
    },
    /// Cancel jobs and wait for the running one to end.
    Cancel {
        jobs: Vec<i64>,
        #[arg(long)]
        all: bool,
    },
    /// Set or clear autostop (JSON on stdin).
    Autostop,
    /// The daemon, autostop and idle time, as JSON.
    Status,
    /// Run the daemon (started by the supervisor).
    Daemon,
    /// Run the daemon, and run it again whenever it dies (started by the other commands).
    Supervise,
}

/// Reads a request from stdin. A parse error says where, never what it read: a job's
/// secrets must not end up in a message.
fn parse_stdin<T: serde::de::DeserializeOwned>(what: &str) -> Result<T> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("reading the {what} from stdin"))?;
    serde_json::from_str(&text).map_err(|err| {
        anyhow::anyhow!(
            "the {what} is not valid JSON of the expected shape ({} at line {} column {})",
            match err.classify() {
                serde_json::error::Category::Io => "unreadable",
                serde_json::error::Category::Syntax => "a syntax error",
                serde_json::error::Category::Data => "a field of the wrong type or missing",
                serde_json::error::Category::Eof => "it ends early",
            },
            err.line(),
            err.column()
        )
    })
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    crate::output::outln!("{}", serde_json::to_string(value)?);
    Ok(())
}

pub fn run(command: AgentCommand) -> Result<ExitCode> {
    let agent = Agent::at(Agent::default_dir());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match command {
            AgentCommand::Setup => {
                let info: ClusterInfo = parse_stdin("cluster description")?;
                agent.setup(&info).await?;
                print_json(&serde_json::json!({"ok": true}))?;
            }
            AgentCommand::Submit => {
                let spec: JobSpec = parse_stdin("job")?;
                let id = agent.submit(&spec).await?;
                print_json(&serde_json::json!({"job_id": id}))?;
            }
            AgentCommand::Queue => print_json(&agent.queue().await?)?,
            AgentCommand::Logs {
                job,
                follow,
                framed,
            } => {
                let format = if framed {
                    aloft_agent::head::LogFormat::Framed
                } else {
                    aloft_agent::head::LogFormat::JsonLines
                };
                let mut out = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout());
                let gone = aloft_agent::head::stdout_reader_gone;
                agent.logs(job, follow, format, &mut out, &gone).await?;
            }
            AgentCommand::Cancel { jobs, all } => {
                if jobs.is_empty() && !all {
                    anyhow::bail!("name the jobs to cancel, or pass --all");
                }
                print_json(&agent.cancel(&jobs, all).await?)?;
            }
            AgentCommand::Autostop => {
                let autostop: Autostop = parse_stdin("autostop setting")?;
                agent.set_autostop(&autostop).await?;
                print_json(&serde_json::json!({"ok": true}))?;
            }
            AgentCommand::Status => print_json(&agent.status().await?)?,
            AgentCommand::Daemon => agent.daemon().await?,
            AgentCommand::Supervise => agent.supervise().await?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

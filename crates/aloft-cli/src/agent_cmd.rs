//! `aloft agent ...`: the head-node agent's commands, run on the head node by the client over
//! SSH (hidden from `--help`: people use `aloft queue`, `logs`, `cancel`, `autostop`). Each
//! takes its request as one JSON argument and answers JSON on stdout.

use aloft_agent::head::Agent;
use aloft_agent::{Autostop, ClusterInfo, JobSpec};
use anyhow::{Context, Result};
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// Record the cluster's nodes (JSON) and start the daemon.
    Setup { cluster: String },
    /// Queue a job (JSON); prints its id.
    Submit { job: String },
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
    /// Set or clear autostop (JSON).
    Autostop { setting: String },
    /// The daemon, autostop and idle time, as JSON.
    Status,
    /// Run the daemon (started by the other commands as needed).
    Daemon,
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .with_context(|| format!("the {what} is not valid JSON of the expected shape"))
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
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
            AgentCommand::Setup { cluster } => {
                let info: ClusterInfo = parse("cluster description", &cluster)?;
                agent.setup(&info).await?;
                print_json(&serde_json::json!({"ok": true}))?;
            }
            AgentCommand::Submit { job } => {
                let spec: JobSpec = parse("job", &job)?;
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
            AgentCommand::Autostop { setting } => {
                let autostop: Autostop = parse("autostop setting", &setting)?;
                agent.set_autostop(&autostop).await?;
                print_json(&serde_json::json!({"ok": true}))?;
            }
            AgentCommand::Status => print_json(&agent.status().await?)?,
            AgentCommand::Daemon => agent.daemon().await?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

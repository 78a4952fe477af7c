//! A gang run of one job: `setup` once on every node, then `run` on all nodes at once, with each
//! node told its rank, the node count and every node's address, under aloft's names and
//! SkyPilot's (`SKYPILOT_NODE_RANK`, `SKYPILOT_NUM_NODES`, `SKYPILOT_NODE_IPS`), so existing
//! scripts work. Output streams as it is printed, each line tagged with its node.
//!
//! Each node's commands run in a session of their own whose id is written to
//! `~/.aloft-agent/run/job-<id>.pid` on that node, so [`kill_job`] can end everything the job
//! started there (its children included), as a cancel must.

use crate::protocol::{AGENT_DIR, JobSpec};
use aloft_exec::{ExecError, RemoteCommand, Stream, Transport, shell_quote};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::JoinSet;

/// A node of the cluster: its rank (0 is the head), address and transport.
#[derive(Debug, Clone)]
pub struct Node {
    pub rank: u32,
    pub address: String,
    pub transport: Arc<dyn Transport>,
}

/// Which part of the job a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Setup,
    Run,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded,
    /// `setup` or `run` exited non-zero on some node(s): (rank, exit code) of each.
    Failed {
        phase: Phase,
        exits: Vec<(u32, i32)>,
    },
    /// Cancelled before or while it ran.
    Cancelled,
}

/// Receives every output line: (phase, node rank, stream, line).
pub type JobSink = Arc<dyn Fn(Phase, u32, Stream, &str) + Send + Sync>;

/// The environment a node's commands get.
pub fn node_env(
    nodes: &[Node],
    rank: u32,
    cluster: &str,
    task_envs: &[(String, String)],
) -> Vec<(String, String)> {
    let ips: Vec<&str> = nodes.iter().map(|node| node.address.as_str()).collect();
    let mut env: Vec<(String, String)> = task_envs.to_vec();
    for prefix in ["ALOFT", "SKYPILOT"] {
        env.push((format!("{prefix}_NODE_RANK"), rank.to_string()));
        env.push((format!("{prefix}_NUM_NODES"), nodes.len().to_string()));
        env.push((format!("{prefix}_NODE_IPS"), ips.join("\n")));
    }
    env.push(("ALOFT_CLUSTER_NAME".to_owned(), cluster.to_owned()));
    env
}

/// The file on a node holding the session id of a job's processes there.
fn pid_file(job: i64) -> String {
    format!("\"$HOME/{AGENT_DIR}/run/job-{job}.pid\"")
}

/// `script` run in a session of its own (so the whole process tree can be signalled), its
/// session id recorded for [`kill_job`], and its exit status passed on. `setsid` need not
/// fork here (a background job of a non-interactive shell is not a group leader), so `$!` is
/// the session id.
fn in_own_session(script: &str, job: i64) -> String {
    format!(
        "mkdir -p \"$HOME/{AGENT_DIR}/run\"\n\
         setsid bash -c {script} </dev/null &\n\
         aloft_job_pid=$!\n\
         echo $aloft_job_pid > {pid}\n\
         wait $aloft_job_pid\n\
         aloft_status=$?\n\
         rm -f {pid}\n\
         exit $aloft_status",
        script = shell_quote(script),
        pid = pid_file(job),
    )
}

/// Ends everything job `job` runs on `transport`'s node: TERM to its session, then KILL to
/// whatever is left after a few seconds.
pub async fn kill_job(transport: &dyn Transport, job: i64) -> Result<(), ExecError> {
    let script = format!(
        "f={pid}\n\
         [ -f \"$f\" ] || exit 0\n\
         p=$(cat \"$f\")\n\
         kill -TERM -- -$p 2>/dev/null || exit 0\n\
         for _ in $(seq 50); do kill -0 -- -$p 2>/dev/null || exit 0; sleep 0.1; done\n\
         kill -KILL -- -$p 2>/dev/null\n\
         exit 0",
        pid = pid_file(job)
    );
    transport
        .output(&RemoteCommand::new(script))
        .await
        .map(drop)
}

/// Runs a job's `setup` (if any) on every node, then its `run` (if any) on every node at once.
/// `on_phase` hears when each phase starts; a set `cancelled` keeps a phase from starting.
pub async fn run_gang(
    nodes: &[Node],
    job: i64,
    cluster: &str,
    spec: &JobSpec,
    cancelled: &AtomicBool,
    on_phase: &(dyn Fn(Phase) + Send + Sync),
    sink: JobSink,
) -> Result<JobOutcome, ExecError> {
    for (phase, script) in [
        (Phase::Setup, spec.setup.as_deref()),
        (Phase::Run, spec.run.as_deref()),
    ] {
        let Some(script) = script else { continue };
        if cancelled.load(Ordering::SeqCst) {
            return Ok(JobOutcome::Cancelled);
        }
        on_phase(phase);
        let mut running = JoinSet::new();
        for node in nodes {
            let mut command = RemoteCommand::new(in_own_session(script, job));
            command.env = node_env(nodes, node.rank, cluster, &spec.envs);
            command.cwd = spec.cwd.clone();
            let (transport, rank, sink) = (node.transport.clone(), node.rank, sink.clone());
            running.spawn(async move {
                let mut lines = |stream: Stream, line: &str| sink(phase, rank, stream, line);
                let code = transport.run(&command, &mut lines).await;
                (rank, code)
            });
        }
        let mut failures = Vec::new();
        let mut error = None;
        while let Some(joined) = running.join_next().await {
            let Ok((rank, code)) = joined else { continue };
            match code {
                Ok(0) => {}
                Ok(code) => failures.push((rank, code)),
                // Let the other nodes finish (or be cancelled) before saying so.
                Err(err) => error = Some(err),
            }
        }
        if cancelled.load(Ordering::SeqCst) {
            return Ok(JobOutcome::Cancelled);
        }
        if let Some(err) = error {
            return Err(err);
        }
        if !failures.is_empty() {
            failures.sort_unstable();
            return Ok(JobOutcome::Failed {
                phase,
                exits: failures,
            });
        }
    }
    Ok(JobOutcome::Succeeded)
}

//! Running a task on a cluster: `setup` once on every node, then `run` on all nodes at once
//! (gang), with each node told its rank, the node count and every node's address, under aloft's
//! names and SkyPilot's (`SKYPILOT_NODE_RANK`, `SKYPILOT_NUM_NODES`, `SKYPILOT_NODE_IPS`), so
//! existing scripts work. Output streams as it is printed, each line tagged with its node.
//!
//! This first version drives the nodes from the client over SSH; the head-node agent with its
//! own job queue replaces it next.

use aloft_exec::{RemoteCommand, SshTransport, Stream, Transport};
use std::sync::Arc;
use tokio::task::JoinSet;

/// A node of the cluster: its rank (0 is the head), address and transport.
#[derive(Debug, Clone)]
pub struct Node {
    pub rank: u32,
    pub address: String,
    pub transport: Arc<SshTransport>,
}

/// Where a job's line came from.
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

/// Runs `setup` (if any) on every node, then `run` (if any) on every node at once.
pub async fn run_job(
    nodes: &[Node],
    cluster: &str,
    setup: Option<&str>,
    run: Option<&str>,
    task_envs: &[(String, String)],
    cwd: Option<&str>,
    sink: JobSink,
) -> Result<JobOutcome, aloft_exec::ExecError> {
    for (phase, script) in [(Phase::Setup, setup), (Phase::Run, run)] {
        let Some(script) = script else { continue };
        let mut running = JoinSet::new();
        for node in nodes {
            let mut command = RemoteCommand::new(script);
            command.env = node_env(nodes, node.rank, cluster, task_envs);
            command.cwd = cwd.map(str::to_owned);
            let (transport, rank, sink) = (node.transport.clone(), node.rank, sink.clone());
            running.spawn(async move {
                let mut lines = |stream: Stream, line: &str| sink(phase, rank, stream, line);
                let code = transport.run(&command, &mut lines).await;
                (rank, code)
            });
        }
        let mut failures = Vec::new();
        while let Some(joined) = running.join_next().await {
            let Ok((rank, code)) = joined else { continue };
            let code = code?;
            if code != 0 {
                failures.push((rank, code));
            }
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

//! What the gang-runner tests share: ranks that are local processes, a job for them, and a sink
//! that keeps every line.

// Each test file uses a part of this module.
#![allow(dead_code)]

use aloft_agent::JobSpec;
use aloft_agent::runner::{GangJob, JobSink, Liveness, Node, Phase};
use aloft_exec::{LocalTransport, shell_quote};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// `count` ranks, each bash on this machine, with the address `address(rank)`.
pub fn local_nodes(count: u32, address: impl Fn(u32) -> String) -> Vec<Node> {
    (0..count)
        .map(|rank| Node {
            rank,
            address: address(rank),
            transport: Arc::new(LocalTransport),
        })
        .collect()
}

/// Job 7 of cluster `cluster` on `nodes` ranks, each with a run directory of its own under
/// `dir` (as separate machines would have), run in containers by `container_engine` if given.
pub fn gang_job<'a>(
    dir: &Path,
    cluster: &'a str,
    spec: &'a JobSpec,
    secrets: &'a [(String, String)],
    nodes: u32,
    container_engine: Option<String>,
) -> GangJob<'a> {
    GangJob {
        id: 7,
        cluster,
        spec,
        secrets,
        task_id: format!("sky-1970-01-01-00-00-00-000000_{cluster}_7"),
        cluster_info: format!(r#"{{"cluster_name":"{cluster}"}}"#),
        run_dirs: (0..nodes)
            .map(|rank| {
                let dir = dir.join(format!("run-{rank}"));
                (rank, shell_quote(&dir.display().to_string()))
            })
            .collect(),
        liveness: Liveness::default(),
        container_engine,
    }
}

/// Every line a job printed, with its node's rank.
pub type Lines = Arc<Mutex<Vec<(u32, String)>>>;

/// A sink that keeps every line, and the lines it keeps.
pub fn collecting() -> (JobSink, Lines) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let into = lines.clone();
    let sink: JobSink = Arc::new(move |_: Phase, rank: u32, _, line: &str| {
        into.lock().unwrap().push((rank, line.to_owned()));
    });
    (sink, lines)
}

//! A gang run of one job: `setup` once on every node, then `run` on all nodes at once, with each
//! node told its rank, the node count and every node's address, under aloft's names and
//! SkyPilot's (`SKYPILOT_NODE_RANK`, `SKYPILOT_NUM_NODES`, `SKYPILOT_NODE_IPS`,
//! `SKYPILOT_TASK_ID`, `SKYPILOT_CLUSTER_INFO`), so existing scripts work. Output streams as it
//! is printed, each line tagged with its node.
//!
//! A gang fails as a whole, as SkyPilot's do: the first rank to exit non-zero (or whose node
//! can no longer be reached) ends the job on every node, since the other ranks would otherwise
//! wait forever for a peer that is gone.
//!
//! Each node's commands run in a session of their own whose id is written to
//! `<run dir>/job-<id>.pid` on that node, so [`kill_job`] can end everything the job started
//! there (its children included), as a cancel must. Beside the session runs a small watcher
//! that ends it when the head is lost: the runner touches `<run dir>/job-<id>.alive` on every
//! node every [`Liveness::heartbeat_every`]; when that file has not been touched for
//! [`Liveness::head_timeout_secs`] (the head, its daemon or the network is gone: a dead SSH
//! connection is not noticed by a non-interactive session on its own), or the shell that
//! started the job is gone, the watcher kills the job's session. Secrets and other variables
//! reach the job through the environment (exported by the script the transport feeds on
//! stdin), never through a command line.

use crate::container;
use crate::protocol::{AGENT_DIR, JobSpec};
use aloft_exec::{ExecError, RemoteCommand, Stream, Transport, shell_quote};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;

/// A node of the cluster: its rank (0 is the head), address and transport.
#[derive(Debug, Clone)]
pub struct Node {
    pub rank: u32,
    pub address: String,
    pub transport: Arc<dyn Transport>,
}

/// Where a job's pid and heartbeat files live on a node: a shell word (it may name `$HOME`).
/// The head keeps them in the agent's own directory, so two agents on one machine (tests)
/// never mix their jobs up; workers keep them under the login home.
pub fn default_run_dir() -> String {
    format!("\"$HOME/{AGENT_DIR}/run\"")
}

/// How the nodes tell that the head still drives the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// How often the runner touches each node's heartbeat file.
    pub heartbeat_every: Duration,
    /// After how many seconds without a heartbeat a node ends the job by itself.
    pub head_timeout_secs: u64,
}

impl Default for Liveness {
    fn default() -> Liveness {
        Liveness {
            heartbeat_every: Duration::from_secs(2),
            head_timeout_secs: 30,
        }
    }
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
    /// `setup` or `run` exited non-zero on some node(s): (rank, exit code) of each rank that
    /// failed by itself (the ranks then ended because of it are not listed).
    Failed {
        phase: Phase,
        exits: Vec<(u32, i32)>,
    },
    /// Cancelled before or while it ran.
    Cancelled,
}

/// Receives every output line: (phase, node rank, stream, line).
pub type JobSink = Arc<dyn Fn(Phase, u32, Stream, &str) + Send + Sync>;

/// One job as the runner needs it.
#[derive(Clone)]
pub struct GangJob<'a> {
    pub id: i64,
    pub cluster: &'a str,
    pub spec: &'a JobSpec,
    /// Secret variables: in the environment of the job's processes, nowhere else.
    pub secrets: &'a [(String, String)],
    /// `SKYPILOT_TASK_ID`.
    pub task_id: String,
    /// `SKYPILOT_CLUSTER_INFO` (JSON).
    pub cluster_info: String,
    /// Where pid and heartbeat files live on each node, by rank; ranks not listed use
    /// [`default_run_dir`].
    pub run_dirs: Vec<(u32, String)>,
    pub liveness: Liveness,
    /// The command that runs containers on the nodes (`ALOFT_CONTAINER_ENGINE`), where the
    /// caller knows better than the nodes' own detection; `None`: each node picks its engine.
    pub container_engine: Option<String>,
}

impl std::fmt::Debug for GangJob<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GangJob")
            .field("id", &self.id)
            .field("cluster", &self.cluster)
            .field("task_id", &self.task_id)
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

impl GangJob<'_> {
    /// The run directory of the node of rank `rank`.
    pub fn run_dir(&self, rank: u32) -> String {
        self.run_dirs
            .iter()
            .find(|(listed, _)| *listed == rank)
            .map_or_else(default_run_dir, |(_, dir)| dir.clone())
    }
}

/// The environment a node's commands get: the task's variables, then aloft's and SkyPilot's
/// description of the gang. (Secrets are added by the runner, after these.)
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

/// SkyPilot's task id: `sky-<UTC submit time>_<cluster>_<job id>`, the time as
/// `YYYY-MM-DD-HH-MM-SS-ffffff`.
pub fn task_id(submitted_at: i64, cluster: &str, job: i64) -> String {
    let days = submitted_at.div_euclid(86_400);
    let seconds = submitted_at.rem_euclid(86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "sky-{year:04}-{month:02}-{day:02}-{:02}-{:02}-{:02}-000000_{cluster}_{job}",
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn pid_file(run_dir: &str, job: i64) -> String {
    format!("{run_dir}/job-{job}.pid")
}

fn alive_file(run_dir: &str, job: i64) -> String {
    format!("{run_dir}/job-{job}.alive")
}

/// `script` run in a session of its own (so the whole process tree can be signalled), its
/// session id recorded for [`kill_job`], watched by a loop that ends it when the head is lost,
/// and its exit status passed on. `setsid` need not fork here (a background job of a
/// non-interactive shell is not a group leader), so `$!` is the session id. The job gets the
/// usual umask (022); the agent's own files are private. A job ended by the watcher is also
/// ended in the node's container, if it runs there (what it runs there is not in the session).
fn in_own_session(script: &str, job: i64, run_dir: &str, head_timeout_secs: u64) -> String {
    format!(
        "umask 077\n\
         mkdir -p {run_dir}\n\
         aloft_pid_file={pid}\n\
         aloft_alive={alive}\n\
         touch \"$aloft_alive\"\n\
         (umask 022; exec setsid bash -c {script}) </dev/null &\n\
         aloft_job_pid=$!\n\
         echo $aloft_job_pid > \"$aloft_pid_file\"\n\
         aloft_parent=$$\n\
         (\n\
           while kill -0 $aloft_job_pid 2>/dev/null || kill -0 -- -$aloft_job_pid 2>/dev/null; do\n\
             aloft_seen=$(stat -c %Y \"$aloft_alive\" 2>/dev/null || echo 0)\n\
             printf -v aloft_now '%(%s)T' -1\n\
             if ! kill -0 $aloft_parent 2>/dev/null || [ $((aloft_now - aloft_seen)) -gt {timeout} ]; then\n\
               (\n\
                 for _ in 1 2 3 4 5 6 7 8 9 10; do\n\
                   kill -TERM -- -$aloft_job_pid 2>/dev/null; kill -TERM $aloft_job_pid 2>/dev/null\n\
                   sleep 0.5\n\
                   kill -0 -- -$aloft_job_pid 2>/dev/null || kill -0 $aloft_job_pid 2>/dev/null || exit 0\n\
                 done\n\
                 kill -KILL -- -$aloft_job_pid 2>/dev/null; kill -KILL $aloft_job_pid 2>/dev/null\n\
               )\n\
               ( {kill_in_container} )\n\
               exit 0\n\
             fi\n\
             sleep 1\n\
           done\n\
         ) </dev/null >/dev/null 2>&1 &\n\
         wait $aloft_job_pid\n\
         aloft_status=$?\n\
         rm -f \"$aloft_pid_file\" \"$aloft_alive\"\n\
         exit $aloft_status",
        script = shell_quote(script),
        pid = pid_file(run_dir, job),
        alive = alive_file(run_dir, job),
        timeout = head_timeout_secs,
        kill_in_container = container::kill_script(run_dir, job),
    )
}

/// Ends everything job `job` runs on `transport`'s node (its pid file under `run_dir`): TERM
/// to its session, then KILL to whatever is left after a few seconds; and the same to what the
/// job runs in the node's container, if it runs there (that is not in the session; the
/// container stays for the cluster's next job).
pub async fn kill_job(transport: &dyn Transport, run_dir: &str, job: i64) -> Result<(), ExecError> {
    let script = format!(
        "(\n\
         f={pid}\n\
         [ -f \"$f\" ] || exit 0\n\
         p=$(cat \"$f\")\n\
         kill -TERM -- -$p 2>/dev/null || exit 0\n\
         for _ in $(seq 50); do kill -0 -- -$p 2>/dev/null || exit 0; sleep 0.1; done\n\
         kill -KILL -- -$p 2>/dev/null\n\
         exit 0\n\
         )\n\
         ( {kill_in_container} )\n\
         exit 0",
        pid = pid_file(run_dir, job),
        kill_in_container = container::kill_script(run_dir, job),
    );
    transport
        .output(&RemoteCommand::new(script))
        .await
        .map(drop)
}

/// Ends job `job` on every node at once; a node that cannot be reached is reported, not
/// waited for twice (its own watcher ends the job there once the heartbeats stop).
pub async fn kill_job_everywhere(nodes: &[Node], job: &GangJob<'_>) -> Vec<(u32, ExecError)> {
    let mut kills = JoinSet::new();
    for node in nodes {
        let (transport, rank, run_dir, id) = (
            node.transport.clone(),
            node.rank,
            job.run_dir(node.rank),
            job.id,
        );
        kills.spawn(async move { (rank, kill_job(transport.as_ref(), &run_dir, id).await) });
    }
    let mut errors = Vec::new();
    while let Some(joined) = kills.join_next().await {
        if let Ok((rank, Err(err))) = joined {
            errors.push((rank, err));
        }
    }
    errors
}

/// Touches the job's heartbeat file on every node (only where the job still runs).
async fn heartbeat(nodes: &[Node], job: &GangJob<'_>) {
    let mut beats = JoinSet::new();
    for node in nodes {
        let file = alive_file(&job.run_dir(node.rank), job.id);
        let transport = node.transport.clone();
        let limit = job.liveness.heartbeat_every.max(Duration::from_secs(1)) * 2;
        beats.spawn(async move {
            let touch =
                RemoteCommand::new(format!("f={file}; [ -e \"$f\" ] && touch \"$f\"; true"));
            let _ = tokio::time::timeout(limit, transport.output(&touch)).await;
        });
    }
    while beats.join_next().await.is_some() {}
}

/// What a phase runs on each node.
#[derive(Clone, Copy)]
enum Step<'a> {
    /// Make sure the cluster's container runs (jobs with an image).
    EnsureContainer,
    /// One of the task's scripts, on the node or in its container.
    Script(&'a str),
}

/// Runs a job's `setup` (if any) on every node, then its `run` (if any) on every node at once;
/// a job with a container image first makes sure the cluster's container runs on every node (a
/// failure there is a setup failure), and runs its scripts in it. The container stays when the
/// job ends; what the job ran in it does not. The first rank to fail ends the phase on every
/// node. `on_phase` hears when each phase starts; a set `cancelled` keeps a phase from
/// starting (the caller kills what runs).
pub async fn run_gang(
    nodes: &[Node],
    job: &GangJob<'_>,
    cancelled: &AtomicBool,
    on_phase: &(dyn Fn(Phase) + Send + Sync),
    sink: JobSink,
) -> Result<JobOutcome, ExecError> {
    let outcome = run_phases(nodes, job, cancelled, on_phase, sink).await;
    // A job ended from outside (cancelled, a rank failed, a node lost) may end on the nodes
    // before the kill that ended it reached its containers (the caller drops a kill still
    // under way once the job is over): it is ended there before the job counts as over.
    if job.spec.container.is_some() && !matches!(outcome, Ok(JobOutcome::Succeeded)) {
        end_in_containers(nodes, job).await;
    }
    outcome
}

/// Ends what the job runs in the containers of every node (best effort: a node that cannot be
/// reached has its watcher, which does it once the heartbeats stop).
async fn end_in_containers(nodes: &[Node], job: &GangJob<'_>) {
    let mut kills = JoinSet::new();
    for node in nodes {
        let script = container::kill_script(&job.run_dir(node.rank), job.id);
        let transport = node.transport.clone();
        kills.spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(60),
                transport.output(&RemoteCommand::new(script)),
            )
            .await;
        });
    }
    while kills.join_next().await.is_some() {}
}

async fn run_phases(
    nodes: &[Node],
    job: &GangJob<'_>,
    cancelled: &AtomicBool,
    on_phase: &(dyn Fn(Phase) + Send + Sync),
    sink: JobSink,
) -> Result<JobOutcome, ExecError> {
    let spec = job.spec;
    let mut steps = Vec::new();
    // A job with nothing to run leaves the container as it is (not started either).
    if spec.container.is_some() && (spec.setup.is_some() || spec.run.is_some()) {
        steps.push((Phase::Setup, Step::EnsureContainer));
    }
    for (phase, script) in [
        (Phase::Setup, spec.setup.as_deref()),
        (Phase::Run, spec.run.as_deref()),
    ] {
        if let Some(script) = script {
            steps.push((phase, Step::Script(script)));
        }
    }
    for (phase, step) in steps {
        if cancelled.load(Ordering::SeqCst) {
            return Ok(JobOutcome::Cancelled);
        }
        on_phase(phase);
        let mut running = JoinSet::new();
        for node in nodes {
            let mut env = node_env(nodes, node.rank, job.cluster, &spec.envs);
            env.push(("SKYPILOT_TASK_ID".to_owned(), job.task_id.clone()));
            env.push(("SKYPILOT_CLUSTER_INFO".to_owned(), job.cluster_info.clone()));
            env.extend(job.secrets.iter().cloned());
            let run_dir = job.run_dir(node.rank);
            let script = match (step, &spec.container) {
                (Step::Script(script), None) => script.to_owned(),
                (Step::Script(script), Some(_)) => {
                    let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
                    container::exec_script(script, spec.cwd.as_deref(), &names, &run_dir, job.id)
                }
                (Step::EnsureContainer, Some(container)) => container::ensure_script(
                    container,
                    &container::container_name(job.cluster, node.rank),
                    &run_dir,
                ),
                (Step::EnsureContainer, None) => continue,
            };
            let mut command = RemoteCommand::new(in_own_session(
                &script,
                job.id,
                &run_dir,
                job.liveness.head_timeout_secs,
            ));
            command.env = env;
            if let Some(engine) = &job.container_engine {
                command
                    .env
                    .push(("ALOFT_CONTAINER_ENGINE".to_owned(), engine.clone()));
            }
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
        // Set once a rank failed: the others are being ended, and their exits are not theirs.
        let mut ending = false;
        let mut beat = tokio::time::interval(job.liveness.heartbeat_every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rekill = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                joined = running.join_next() => {
                    let Some(joined) = joined else { break };
                    let Ok((rank, code)) = joined else { continue };
                    if ending {
                        continue;
                    }
                    match code {
                        Ok(0) => continue,
                        Ok(code) => failures.push((rank, code)),
                        Err(err) => error = Some(err),
                    }
                    ending = true;
                    for (rank, err) in kill_job_everywhere(nodes, job).await {
                        eprintln!("ending job {} on node {rank}: {err}", job.id);
                    }
                }
                _ = beat.tick() => heartbeat(nodes, job).await,
                // A rank that had not yet recorded its session when the kill went out is
                // caught by the next one.
                _ = rekill.tick(), if ending => {
                    kill_job_everywhere(nodes, job).await;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_follow_skypilots_format() {
        assert_eq!(task_id(0, "c", 1), "sky-1970-01-01-00-00-00-000000_c_1");
        // 2024-02-29 13:14:15 UTC, a leap day.
        assert_eq!(
            task_id(1_709_212_455, "my-cluster", 42),
            "sky-2024-02-29-13-14-15-000000_my-cluster_42"
        );
    }
}

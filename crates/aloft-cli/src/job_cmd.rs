//! Commands about a cluster's jobs, answered by the agent on its head node: submitting and
//! following a job (for `launch` and `exec`), `queue`, `logs`, `cancel` and `autostop`.
//!
//! Job output is also kept on this machine (`$ALOFT_HOME/logs/<cluster>/<job>/node-<rank>.log`)
//! as it is followed, so `aloft logs` still has it after the cluster is gone.

use crate::cluster_cmd::{Existing, aloft_home, existing, runtime, say};
use crate::output::{OutputFormat, new_table, table_text};
use aloft_agent::container::container_image;
use aloft_agent::protocol::OutStream;
use aloft_agent::{AgentClient, Autostop, ContainerSpec, JobSpec, LogEvent};
use aloft_ops::launch::{LaunchContext, REMOTE_WORKDIR, agent_client};
use aloft_provision::InstanceInfo;
use aloft_store::{Cluster, ClusterStatus, JobState, Store};
use aloft_types::{FileMount, Task};
use anyhow::{Result, bail};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How a submitted job stands when the command returns.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobReport {
    pub cluster: String,
    pub job_id: i64,
    /// `None`: detached, not followed.
    pub state: Option<JobState>,
    pub exit_codes: Option<serde_json::Value>,
}

/// The task as a job for the agent. Its secrets travel with it (to the agent's stdin, over
/// SSH) and reach the job's environment; the task must have been checked with
/// `Task::with_overrides` (a placeholder still unset here becomes empty). A task whose image is
/// a container image (`image_id: docker:<image>`) runs in a container of it on every node, with
/// its workdir and file mounts mounted in.
pub(crate) fn job_spec(task: &Task, context: &LaunchContext) -> JobSpec {
    let values = |map: &std::collections::BTreeMap<String, Option<String>>| {
        map.iter()
            .map(|(name, value)| (name.clone(), value.clone().unwrap_or_default()))
            .collect()
    };
    JobSpec {
        name: task.name.clone(),
        setup: task.setup.clone(),
        run: task.run.clone(),
        envs: values(&task.envs),
        secrets: values(&task.secrets),
        secrets_file: None,
        cloud: Some(context.provider.id().to_owned()),
        region: Some(context.region.clone()),
        cwd: task
            .workdir
            .as_ref()
            .map(|_| context.expand_home(REMOTE_WORKDIR)),
        num_nodes: task.num_nodes.clamp(1, context.num_nodes.max(1)),
        container: container_spec(task, context),
    }
}

/// The container a task's commands run in: the image of the option the cluster was launched
/// with, when that is a container image the task names, else the first container image among
/// the task's options; `None` when it names none (its commands then run on the nodes).
fn container_spec(task: &Task, context: &LaunchContext) -> Option<ContainerSpec> {
    let images: Vec<&str> = task
        .resources
        .options
        .iter()
        .filter_map(|option| option.image_id.as_deref())
        .filter_map(container_image)
        .collect();
    let chosen = context
        .image_id
        .as_deref()
        .and_then(container_image)
        .filter(|image| images.contains(image));
    let image = chosen.or_else(|| images.first().copied())?;
    let mut mounts = Vec::new();
    if task.workdir.is_some() {
        mounts.push(context.expand_home(REMOTE_WORKDIR));
    }
    for (destination, mount) in &task.file_mounts {
        let destination = context.expand_home(destination);
        if matches!(mount, FileMount::Copy { .. }) && destination.starts_with('/') {
            mounts.push(destination);
        }
    }
    Some(ContainerSpec {
        image: image.to_owned(),
        mounts,
    })
}

/// A job just queued on a cluster's agent.
pub(crate) struct Queued {
    client: AgentClient,
    cluster: String,
    job_id: i64,
    many: bool,
}

impl Queued {
    /// The agent the job was queued on.
    pub(crate) fn client(&self) -> &AgentClient {
        &self.client
    }
}

/// Queues the task on the cluster's agent.
pub(crate) async fn enqueue(
    context: &LaunchContext,
    instances: &[InstanceInfo],
    task: &Task,
) -> Result<Queued> {
    let client = agent_client(context, instances).map_err(|err| anyhow::anyhow!(err.message))?;
    let spec = job_spec(task, context);
    let job_id = client.submit(&spec).await?;
    Ok(Queued {
        client,
        cluster: context.cluster.as_str().to_owned(),
        job_id,
        many: spec.num_nodes > 1,
    })
}

/// Unless `detach`, streams a queued job's output until it ends. With `quiet_stdout` (JSON
/// output), job lines go to stderr so stdout stays one document.
pub(crate) async fn await_job(
    queued: Queued,
    detach: bool,
    quiet_stdout: bool,
) -> Result<JobReport> {
    let Queued {
        client,
        cluster,
        job_id,
        many,
    } = queued;
    if detach {
        say(&format!(
            "Job {job_id} queued on `{cluster}`; follow it with `aloft logs -f {cluster} {job_id}`."
        ));
        return Ok(JobReport {
            cluster,
            job_id,
            state: None,
            exit_codes: None,
        });
    }
    say(&format!(
        "Job {job_id} queued on `{cluster}`; its output follows."
    ));
    let (state, exit_codes) = follow(
        &client,
        &aloft_home(),
        &cluster,
        Some(job_id),
        true,
        many,
        quiet_stdout,
    )
    .await?;
    Ok(JobReport {
        cluster,
        job_id,
        state: Some(state),
        exit_codes,
    })
}

/// Queues the task and, unless `detach`, follows it to its end.
pub(crate) async fn submit(
    context: &LaunchContext,
    instances: &[InstanceInfo],
    task: &Task,
    detach: bool,
    quiet_stdout: bool,
) -> Result<JobReport> {
    await_job(
        enqueue(context, instances, task).await?,
        detach,
        quiet_stdout,
    )
    .await
}

fn job_log_dir(home: &Path, cluster: &str, job: i64) -> PathBuf {
    home.join("logs").join(cluster).join(job.to_string())
}

/// Streams a job's log from the agent, printing each line (tagged with its node when there are
/// several) and keeping a copy on this machine.
async fn follow(
    client: &AgentClient,
    home: &Path,
    cluster: &str,
    job: Option<i64>,
    follow: bool,
    many: bool,
    to_stderr: bool,
) -> Result<(JobState, Option<serde_json::Value>)> {
    // The job id is known once the first line names it; with `job: None` the copy goes under
    // "latest" until then, which is fine: it is rewritten on the next read.
    let copy_dir = job.map(|id| job_log_dir(home, cluster, id));
    if let Some(dir) = &copy_dir {
        std::fs::create_dir_all(dir)?;
    }
    let mut copies: std::collections::HashMap<u32, std::fs::File> = Default::default();
    let mut sink = |event: &LogEvent| {
        let LogEvent::Line { rank, stream, line } = event else {
            return;
        };
        if let Some(dir) = &copy_dir {
            let file = copies.entry(*rank).or_insert_with(|| {
                std::fs::File::create(dir.join(format!("node-{rank}.log")))
                    .or_else(|_| std::fs::File::create("/dev/null"))
                    .expect("/dev/null opens")
            });
            let _ = writeln!(file, "{line}");
        }
        let tag = node_tag(many, *rank);
        if to_stderr || *stream == OutStream::Stderr {
            eprintln!("{tag}{line}");
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{tag}{line}");
            let _ = out.flush();
        }
    };
    Ok(client.logs(job, follow, &mut sink).await?)
}

/// What a line is prefixed with: nothing on a one-node cluster, else which node printed it.
fn node_tag(many: bool, rank: u32) -> String {
    match (many, rank) {
        (false, _) => String::new(),
        (true, 0) => "(head) ".to_owned(),
        (true, rank) => format!("(worker{rank}) "),
    }
}

/// Says how a job ended; the command's exit status follows it.
pub(crate) fn job_exit(report: &JobReport) -> ExitCode {
    let (cluster, job) = (&report.cluster, report.job_id);
    match report.state {
        None => ExitCode::SUCCESS,
        Some(JobState::Succeeded) => {
            say(&format!("Job {job} on `{cluster}` succeeded."));
            ExitCode::SUCCESS
        }
        Some(state) => {
            let exits = match exit_codes_text(report.exit_codes.as_ref()) {
                text if text == "-" => String::new(),
                text => text,
            };
            say(&format!(
                "Job {job} on `{cluster}` {}{}",
                crate::output::snake(&state),
                if exits.is_empty() {
                    ".".to_owned()
                } else {
                    format!(": {exits}")
                }
            ));
            ExitCode::FAILURE
        }
    }
}

/// The agent of a cluster whose head node is up (a degraded cluster's included: its queue and
/// logs are on the head).
async fn cluster_agent(home: &Path, name: &str) -> Result<(Existing, AgentClient)> {
    let existing = existing(home, name, Task::new(name), PathBuf::new()).await?;
    let instances = existing
        .provider
        .query(&existing.context.region, &existing.context.cluster)
        .await?;
    let health = aloft_control::clusters::Health::of(existing.record.num_nodes, &instances);
    let live = matches!(
        existing.record.status,
        ClusterStatus::Up | ClusterStatus::Degraded
    );
    if !live || !health.head_up() {
        bail!(
            "cluster `{name}` is {}{}: its jobs are kept on its head node (`aloft start {name}` first)",
            crate::output::snake(&existing.record.status),
            if live {
                " (its head node is not running)"
            } else {
                ""
            }
        );
    }
    let client =
        agent_client(&existing.context, &instances).map_err(|err| anyhow::anyhow!(err.message))?;
    Ok((existing, client))
}

#[derive(Debug, clap::Args)]
pub struct QueueArgs {
    /// The cluster.
    pub cluster: String,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft queue CLUSTER`: the cluster's jobs, oldest first, from its agent.
pub fn queue(args: QueueArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let (_, client) = cluster_agent(&home, &args.cluster).await?;
        let jobs = client.queue().await?;
        match args.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&jobs)?),
            OutputFormat::Table => print!("{}", jobs_table(&jobs)),
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn jobs_table(jobs: &[aloft_store::Job]) -> String {
    let mut table = new_table(&["ID", "NAME", "STATE", "DURATION", "EXIT CODES"]);
    for job in jobs {
        let duration = match (job.started_at, job.ended_at) {
            (Some(start), Some(end)) => crate::output::duration((end - start) as f64),
            (Some(_), None) => "running".to_owned(),
            _ => "-".to_owned(),
        };
        let exits = exit_codes_text(job.exit_codes.as_ref());
        table.add_row(vec![
            job.id.to_string(),
            job.name.clone().unwrap_or_else(|| "-".to_owned()),
            crate::output::snake(&job.state),
            duration,
            exits,
        ]);
    }
    table_text(&table)
}

/// Exit codes for people: `node 0: exit 1, node 1: exit 143` for the ranks that exited non-zero, the
/// reason when the job failed without exit codes, `-` when there is nothing to say.
pub(crate) fn exit_codes_text(codes: Option<&serde_json::Value>) -> String {
    let Some(codes) = codes.and_then(|codes| codes.as_object()) else {
        return "-".to_owned();
    };
    if let Some(error) = codes.get("error").and_then(|error| error.as_str()) {
        return error.to_owned();
    }
    let mut ranks: Vec<(u32, String)> = codes
        .iter()
        .filter_map(|(rank, code)| Some((rank.parse().ok()?, code.to_string())))
        .collect();
    if ranks.is_empty() {
        return "-".to_owned();
    }
    ranks.sort();
    ranks
        .iter()
        .map(|(rank, code)| format!("node {rank}: exit {code}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The cluster.
    pub cluster: String,
    /// The job id (default: the cluster's latest job).
    pub job: Option<i64>,
    /// Keep streaming until the job ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// `json`: one JSON object per line (`{"event": "line", "rank", "stream", "line"}`), the
    /// last one the job's state (`{"event": "end", "state", "exit_codes"}`).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft logs [-f] CLUSTER [JOB]`: a job's output, node by node: from the cluster's agent
/// while the cluster is up, else the copy kept on this machine.
pub fn logs(args: LogsArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let agent = cluster_agent(&home, &args.cluster).await;
        let (existing, client) = match agent {
            Ok(found) => found,
            Err(err) => {
                if args.follow {
                    return Err(err);
                }
                return local_copy(&home, &args.cluster, args.job, &err);
            }
        };
        if args.output == OutputFormat::Json {
            let mut print = |event: &LogEvent| crate::output::print_json_line(event);
            let (state, exit_codes) = client.logs(args.job, args.follow, &mut print).await?;
            print(&LogEvent::End { state, exit_codes });
            return Ok(ExitCode::SUCCESS);
        }
        let many = existing.record.num_nodes > 1;
        let (state, exit_codes) = follow(
            &client,
            &home,
            &args.cluster,
            args.job,
            args.follow,
            many,
            false,
        )
        .await?;
        if args.follow {
            let job_id = match args.job {
                Some(id) => id,
                None => client.queue().await?.last().map_or(0, |job| job.id),
            };
            return Ok(job_exit(&JobReport {
                cluster: args.cluster.clone(),
                job_id,
                state: Some(state),
                exit_codes,
            }));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Prints the copy of a job's log kept on this machine (the cluster is stopped or gone).
fn local_copy(
    home: &Path,
    cluster: &str,
    job: Option<i64>,
    why: &anyhow::Error,
) -> Result<ExitCode> {
    let dir = home.join("logs").join(cluster);
    let job = match job {
        Some(job) => Some(job),
        None => std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i64>().ok())
                    .max()
            })
            .unwrap_or(None),
    };
    let Some(job) = job else {
        bail!("{why:#}; and no copy of its logs is kept here");
    };
    let dir = job_log_dir(home, cluster, job);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => bail!("{why:#}; and no copy of job {job}'s logs is kept here"),
    };
    files.sort();
    say(&format!("({why:#}; showing the copy kept on this machine)"));
    let many = files.len() > 1;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let rank = file
            .file_stem()
            .and_then(|stem| stem.to_str()?.strip_prefix("node-")?.parse::<u32>().ok())
            .unwrap_or(0);
        for line in text.lines() {
            println!("{}{line}", node_tag(many, rank));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The cluster.
    pub cluster: String,
    /// The jobs to cancel.
    pub jobs: Vec<i64>,
    /// Cancel every job that has not finished.
    #[arg(short = 'a', long, conflicts_with = "jobs")]
    pub all: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft cancel CLUSTER JOB... | --all`: stop jobs, running or queued, on every node.
pub fn cancel(args: CancelArgs) -> Result<ExitCode> {
    if args.jobs.is_empty() && !args.all {
        bail!(
            "name the jobs to cancel, or pass --all (see `aloft queue {}`)",
            args.cluster
        );
    }
    let home = aloft_home();
    runtime()?.block_on(async move {
        let (_, client) = cluster_agent(&home, &args.cluster).await?;
        let jobs = client.cancel(&args.jobs, args.all).await?;
        match args.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&jobs)?),
            OutputFormat::Table if jobs.is_empty() => say("No unfinished jobs."),
            OutputFormat::Table => print!("{}", jobs_table(&jobs)),
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, clap::Args)]
pub struct AutostopArgs {
    /// The cluster.
    pub cluster: String,
    /// Stop after this many minutes without a queued or running job (`-1`: turn autostop off,
    /// as with `--cancel`).
    #[arg(
        short = 'i',
        long = "idle-minutes",
        default_value_t = 5,
        value_name = "MINUTES",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i64).range(-1..=i64::from(u32::MAX))
    )]
    pub idle_minutes: i64,
    /// Tear the cluster down instead of stopping it.
    #[arg(long)]
    pub down: bool,
    /// Turn autostop off.
    #[arg(long, conflicts_with_all = ["down"])]
    pub cancel: bool,
    /// Do not ask (accepted as in SkyPilot; nothing here asks).
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft autostop CLUSTER [-i MINUTES] [--down] [--cancel]`: the cluster stops (or is torn
/// down) by itself once idle, even with this machine off.
pub fn autostop(args: AutostopArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let (existing, client) = cluster_agent(&home, &args.cluster).await?;
        let cancel = args.cancel || args.idle_minutes < 0;
        let setting = Autostop {
            idle_minutes: if cancel {
                None
            } else {
                Some(u32::try_from(args.idle_minutes)?)
            },
            down: args.down && !cancel,
        };
        set_autostop(
            &existing.store,
            existing.record,
            &client,
            existing.provider.as_ref(),
            &setting,
        )
        .await?;
        match args.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&setting)?),
            OutputFormat::Table => say(&autostop_text(&args.cluster, &setting)),
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn autostop_text(cluster: &str, setting: &Autostop) -> String {
    match setting.idle_minutes {
        None => format!("Autostop is off for `{cluster}`."),
        Some(minutes) => format!(
            "`{cluster}` will {} after {minutes} idle minute(s).",
            if setting.down { "be torn down" } else { "stop" }
        ),
    }
}

/// Sets autostop on the cluster's agent and records it with the cluster. Where the cloud
/// decides what a power-off from inside means, it is told first.
pub(crate) async fn set_autostop(
    store: &Store,
    mut record: Cluster,
    client: &AgentClient,
    provider: &dyn aloft_provision::Provider,
    setting: &Autostop,
) -> Result<()> {
    if setting.idle_minutes.is_some() {
        if !setting.down {
            aloft_control::launch::check_stoppable(
                &record.name,
                &record.cloud,
                record.spot,
                provider,
            )?;
        }
        let cluster = aloft_provision::ClusterName::new(record.name.clone())
            .map_err(|err| anyhow::anyhow!("`{}`: {err}", record.name))?;
        provider
            .prepare_power_off(&record.region, &cluster, setting.down)
            .await?;
    }
    client.set_autostop(setting).await?;
    record.autostop_minutes = setting.idle_minutes;
    record.autostop_down = setting.down;
    store.cluster_update(&record).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::exit_codes_text;
    use serde_json::json;

    #[test]
    fn exit_codes_read_as_codes_per_node_not_json() {
        assert_eq!(
            exit_codes_text(Some(&json!({"1": 143, "0": 1}))),
            "node 0: exit 1, node 1: exit 143"
        );
        assert_eq!(exit_codes_text(Some(&json!({}))), "-");
        assert_eq!(exit_codes_text(None), "-");
        assert_eq!(
            exit_codes_text(Some(
                &json!({"error": "the node restarted while the job ran"})
            )),
            "the node restarted while the job ran"
        );
    }
}

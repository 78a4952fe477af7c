//! Commands that act on clusters: `launch` (for real), `exec`, `stop`, `start`, `ssh`, `down`,
//! `status`, and the local cloud's `local cleanup|preempt|partition`.
//!
//! The use cases (launching with failover, relaunching on a recorded cluster, recovery) live in
//! `aloft-control`; this file turns arguments into its calls and renders what comes back. When
//! the API server arrives, the calls go through its client instead.

use crate::launch_cmd::LaunchArgs;
use crate::output::{OutputFormat, new_table, table_text};
use aloft_control::clusters::{ClusterHandle, Health, check_fits, check_values, open_cluster};
use aloft_control::launch::{HowLaunched, LaunchRequest, bring_up};
use aloft_control::registry as clouds;
use aloft_control::{Progress, open_store};
use aloft_provision::{ClusterName, Provider};
use aloft_store::{ClusterStatus, JobState, Store};
use aloft_types::{Dag, Task};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub(crate) use aloft_control::aloft_home;

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A line for the user on stderr. A closed or broken stderr is ignored: the command goes on
/// (and never panics) where the user stopped reading.
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Progress from the application layer, rendered as lines on stderr.
pub(crate) fn progress() -> Progress {
    Arc::new(say)
}

/// Undoes what interrupted commands left (launches whose process is gone), saying what it did.
/// Never fails the command it runs in: what cannot be recovered now is named and left.
pub(crate) async fn recover(store: &Store, home: &Path, cluster: Option<&str>) {
    for note in aloft_control::recovery::recover_abandoned(home, store, cluster, &progress()).await
    {
        match note {
            aloft_control::recovery::Recovered::Undone { operation, cluster } => say(&format!(
                "Undid the interrupted launch of `{cluster}` ({operation})."
            )),
            aloft_control::recovery::Recovered::Left {
                operation,
                cluster,
                reason,
            } => say(&format!(
                "warning: could not undo the interrupted launch of `{cluster}` ({operation}) now: {reason}"
            )),
        }
    }
}

/// Which signal interrupted a command.
pub(crate) async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// `aloft launch TASK` for real: plan on the clouds aloft can use, bring the cluster up (or
/// reuse, start or repair a recorded one), run the task, and tear it down with `--down`.
///
/// A DAG or pipeline runs task by task in dependency order, each on a cluster of its own
/// (`<name>-<task index>`) that is torn down when its task ends, and stops at the first task
/// that fails (its cluster is kept for a look, unless `--down`).
pub fn launch(args: &LaunchArgs, dag: Dag, options: aloft_optimizer::Options) -> Result<ExitCode> {
    if dag.job_group.is_some() {
        return crate::group_cmd::launch(args, dag, options);
    }
    let order = dag.topological_order();
    let many = dag.tasks.len() > 1;
    if many && args.detach {
        bail!(
            "a DAG or pipeline cannot be detached yet: its tasks are run one after another from \
             this machine ({} tasks); run it without -d",
            dag.tasks.len()
        );
    }
    let mut tasks = Vec::new();
    for idx in &order {
        let task = dag.tasks[idx.0]
            .with_overrides(&args.envs, &args.secrets)
            .map_err(|missing| anyhow::anyhow!("{}: {missing}", args.task.display()))?;
        check_values(&dag.task_name(*idx), &task)?;
        tasks.push((dag.task_name(*idx), task));
    }
    let base_name = args.cluster.clone().unwrap_or_else(default_cluster_name);
    if !many {
        let (_, task) = tasks.pop().context("nothing to launch")?;
        return runtime()?.block_on(launch_through_server(args, task, base_name, &options));
    }
    let home = aloft_home();
    let base_dir = args
        .task
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let offers = crate::catalog_cmd::load_catalog(&args.source)?;
    runtime()?.block_on(async move {
        let (catalog, clouds) = clouds::launchable(&home, offers).await?;
        let store = open_store(&home).await?;
        recover(&store, &home, None).await;
        let mut reports = Vec::new();
        let mut code = ExitCode::SUCCESS;
        let count = tasks.len();
        for (position, (task_name, task)) in tasks.into_iter().enumerate() {
            let cluster_name = if many {
                format!("{base_name}-{position}")
            } else {
                base_name.clone()
            };
            if many {
                say(&format!(
                    "Task {}/{count}: `{task_name}` on `{cluster_name}`",
                    position + 1
                ));
            }
            let launched = LaunchOne {
                clouds: &clouds,
                store: &store,
                home: &home,
                args,
                catalog: &catalog,
                options: &options,
                base_dir: &base_dir,
                // Each task of a DAG has its cluster torn down when it ends well.
                down: args.down || many,
            };
            let report = launched.run(task, cluster_name).await?;
            let ok = report
                .job
                .state
                .is_none_or(|state| state == JobState::Succeeded);
            if many {
                code = crate::job_cmd::job_exit(&report.job);
            }
            reports.push(report);
            if !ok {
                break;
            }
        }
        if args.output == OutputFormat::Json {
            let document = if many {
                serde_json::json!({"tasks": reports})
            } else {
                serde_json::to_value(&reports[0])?
            };
            crate::output::outln!("{}", serde_json::to_string_pretty(&document)?);
        }
        let last = reports.last().context("nothing was launched")?;
        if !many {
            code = crate::job_cmd::job_exit(&last.job);
        }
        if many && reports.len() < count {
            say(&format!(
                "Stopped after task {} of {count}; the rest did not run.",
                reports.len()
            ));
        }
        Ok(code)
    })
}

/// Launching one task through the server: it brings the cluster up and queues the job (a
/// request this command follows); the job's output then streams from the server, and with
/// `--down` the cluster is torn down once the job is over. A signal while the cluster is being
/// brought up cancels the request, which undoes what it made; while the job runs with `--down`,
/// tears the cluster down.
async fn launch_through_server(
    args: &LaunchArgs,
    task: Task,
    cluster: String,
    options: &aloft_optimizer::Options,
) -> Result<ExitCode> {
    let home = aloft_home();
    // The server may run elsewhere in the file system's view (another working directory):
    // every path it gets is absolute.
    let parent = args
        .task
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base_dir = std::fs::canonicalize(parent)
        .with_context(|| format!("the task file's directory {}", parent.display()))?;
    let catalog = match &args.source.catalog {
        Some(dir) => Some(
            std::fs::canonicalize(dir)
                .with_context(|| format!("--catalog {}", dir.display()))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    let body = aloft_api::LaunchBody {
        cluster: cluster.clone(),
        task: serde_json::to_value(&task)?,
        secrets: task
            .secrets
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), value.clone()?)))
            .collect(),
        base_dir: base_dir.display().to_string(),
        plan: aloft_api::PlanOptions {
            objective: match options.objective {
                aloft_optimizer::Objective::Cost => aloft_api::Objective::Cost,
                aloft_optimizer::Objective::Time => aloft_api::Objective::Time,
                aloft_optimizer::Objective::Carbon => aloft_api::Objective::Carbon,
            },
            max_hourly_price: options.max_hourly_price,
            budget: options.budget,
            max_carbon_g: options.max_carbon_g,
            blocked: options.blocked.iter().map(ToString::to_string).collect(),
            default_runtime_hours: options.default_runtime.hours(),
            deadline_seconds: Some(options.deadline.map_or(0.0, |limit| limit.as_secs_f64())),
            catalog,
            catalog_outliers: Some(args.source.catalog_outliers.as_str().to_owned()),
            carbon_intensity: match &args.source.carbon_intensity {
                Some(file) => Some(
                    std::fs::canonicalize(file)
                        .with_context(|| format!("--carbon-intensity {}", file.display()))?
                        .display()
                        .to_string(),
                ),
                None => None,
            },
            start_time: options.start_time,
            slack: options.slack.as_ref().map(|slack| aloft_api::PlanSlack {
                measure: match slack.measure {
                    aloft_optimizer::SlackMeasure::Carbon => aloft_api::SlackMeasure::Carbon,
                    aloft_optimizer::SlackMeasure::Cost => aloft_api::SlackMeasure::Cost,
                },
                percent: slack.percent,
            }),
        },
        retry_until_up: args.retry_until_up,
        idle_minutes: args.idle_minutes,
        down: args.down,
        detach: args.detach,
    };
    let accepted = crate::api_cmd::with_server(&home, |client| {
        let body = body.clone();
        async move { client.launch(&body).await }
    })
    .await?;
    let client = crate::api_cmd::connect(&home).await?;
    let id = accepted.request_id;
    let request = tokio::select! {
        request = client.follow(&id, 0, |event| say(&event.line)) => request?,
        signal = interrupted() => {
            say(&format!(
                "Interrupted ({signal}) while bringing `{cluster}` up: undoing what this launch made"
            ));
            client.cancel(&id).await?;
            bail!("interrupted by {signal}; the launch was undone");
        }
    };
    match request.state {
        aloft_api::RequestState::Succeeded => {}
        aloft_api::RequestState::Cancelled => bail!("the launch (request {id}) was cancelled"),
        _ => bail!(
            "{}",
            request
                .error
                .unwrap_or_else(|| format!("the launch (request {id}) failed"))
        ),
    }
    let launched: aloft_api::Launched = serde_json::from_value(
        request
            .result
            .context("the launch request ended without its result")?,
    )
    .context("reading the launch request's result")?;
    if let Some(setting) = &launched.autostop {
        let setting = aloft_agent::Autostop {
            idle_minutes: setting.idle_minutes,
            down: setting.down,
        };
        say(&crate::job_cmd::autostop_text(&cluster, &setting));
    }
    let json = args.output == OutputFormat::Json;
    let report = if args.detach {
        crate::job_cmd::detached(&cluster, launched.job_id)
    } else {
        let tear_down_on_signal = args.down && args.idle_minutes.is_none();
        tokio::select! {
            report = crate::job_cmd::follow_launched(
                &client, &cluster, launched.job_id, launched.nodes, json,
            ) => report?,
            signal = interrupted() => {
                if tear_down_on_signal {
                    say(&format!("Interrupted ({signal}): tearing `{cluster}` down (--down)"));
                    down_through(&client, &cluster).await?;
                    bail!("interrupted by {signal}; `{cluster}` was torn down");
                }
                say(&format!(
                    "Interrupted ({signal}): the job goes on on `{cluster}`; `aloft logs -f {cluster}` follows it again, `aloft cancel {cluster} --all` ends it"
                ));
                bail!("interrupted by {signal}");
            }
        }
    };
    let tear_down = !args.detach && args.idle_minutes.is_none() && args.down;
    if tear_down {
        say(&format!("Tearing down `{cluster}`"));
        down_through(&client, &cluster).await?;
    }
    if json {
        let mut document = serde_json::json!({
            "cluster": cluster,
            "placement": launched.placement,
            "launched": launched.launched,
            "job": report,
            "torn_down": tear_down,
        });
        // As the in-process launch writes it: no `placement` for a recorded cluster.
        if document["placement"].is_null()
            && let Some(object) = document.as_object_mut()
        {
            object.remove("placement");
        }
        crate::output::outln!("{}", serde_json::to_string_pretty(&document)?);
    }
    Ok(crate::job_cmd::job_exit(&report))
}

/// Tears a cluster down through the server (its jobs' output copied first) and waits for it.
async fn down_through(client: &aloft_client::Client, cluster: &str) -> Result<()> {
    let accepted = client
        .down(cluster, &aloft_api::DownBody::default())
        .await?;
    let request = client.follow(&accepted.request_id, 0, |_| {}).await?;
    if request.state != aloft_api::RequestState::Succeeded {
        bail!(
            "tearing `{cluster}` down failed: {}",
            request.error.unwrap_or_default()
        );
    }
    Ok(())
}

/// What one launched task came to.
#[derive(Debug, serde::Serialize)]
pub(crate) struct LaunchReport {
    pub cluster: String,
    /// Where a new cluster was planned; absent when the task ran on a recorded cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<aloft_optimizer::Placement>,
    pub launched: HowLaunched,
    pub job: crate::job_cmd::JobReport,
    pub torn_down: bool,
}

/// Launching one task: bring its cluster up (see `aloft_control::launch`), submit it, follow
/// it, and tear down as asked. A signal (Ctrl-C, SIGTERM) while the cluster is being brought up
/// undoes what this launch made; while the job runs with `--down`, tears the cluster down.
struct LaunchOne<'a> {
    clouds: &'a std::collections::HashMap<String, clouds::CloudAccess>,
    store: &'a Store,
    home: &'a Path,
    args: &'a LaunchArgs,
    catalog: &'a aloft_catalog::Catalog,
    options: &'a aloft_optimizer::Options,
    base_dir: &'a Path,
    down: bool,
}

impl LaunchOne<'_> {
    async fn run(&self, task: Task, cluster_name: String) -> Result<LaunchReport> {
        let (store, home, args) = (self.store, self.home, self.args);
        let cluster = ClusterName::new(cluster_name.clone())
            .map_err(|err| anyhow::anyhow!("cluster name `{cluster_name}`: {err}"))?;
        let request = LaunchRequest {
            task: task.clone(),
            cluster: cluster.clone(),
            base_dir: self.base_dir.to_path_buf(),
            options: self.options.clone(),
            catalog: self.catalog,
            clouds: self.clouds,
            retry_until_up: args.retry_until_up,
            must_stop: args.idle_minutes.is_some() && !args.down,
        };
        let progress = progress();
        let launched = tokio::select! {
            launched = bring_up(home, store, request, &progress) => launched?,
            signal = interrupted() => {
                say(&format!(
                    "Interrupted ({signal}) while bringing `{cluster_name}` up: undoing what this launch made"
                ));
                undo_own(store, home, &cluster_name).await;
                bail!("interrupted by {signal}; the launch was undone");
            }
        };
        let context = launched.context;
        let provider = context.provider.clone();
        // Queued before autostop is set, so the cluster is not idle in between.
        let queued = crate::job_cmd::enqueue(&context, &launched.instances, &task).await?;
        if args.idle_minutes.is_some() || (args.down && args.detach) {
            // On the cluster itself, so it happens even if this machine is off by then.
            let setting = aloft_agent::Autostop {
                idle_minutes: Some(args.idle_minutes.unwrap_or(0)),
                down: args.down,
            };
            let record = store
                .cluster_fetch(cluster.as_str())
                .await?
                .context("the cluster's record vanished")?;
            aloft_control::jobs::set_autostop(store, record, queued.client(), &*provider, &setting)
                .await?;
            say(&crate::job_cmd::autostop_text(&cluster_name, &setting));
        }
        let json = args.output == OutputFormat::Json;
        let tear_down_on_signal = args.down && !args.detach && args.idle_minutes.is_none();
        let report = tokio::select! {
            report = crate::job_cmd::await_job(queued, args.detach, json) => report?,
            signal = interrupted() => {
                if tear_down_on_signal {
                    say(&format!("Interrupted ({signal}): tearing `{cluster_name}` down (--down)"));
                    provider.terminate(&context.region, &cluster).await?;
                    store.cluster_delete(cluster.as_str()).await?;
                    bail!("interrupted by {signal}; `{cluster_name}` was torn down");
                }
                say(&format!(
                    "Interrupted ({signal}): the job goes on on `{cluster_name}`; `aloft logs -f {cluster_name}` follows it again, `aloft cancel {cluster_name} --all` ends it"
                ));
                bail!("interrupted by {signal}");
            }
        };
        let failed = report
            .state
            .is_some_and(|state| state != JobState::Succeeded);
        // A failed task of a DAG keeps its cluster for a look, unless --down was asked for.
        let tear_down =
            !args.detach && args.idle_minutes.is_none() && (args.down || (self.down && !failed));
        if tear_down {
            say(&format!("Tearing down `{cluster_name}`"));
            provider.terminate(&context.region, &cluster).await?;
            store.cluster_delete(cluster.as_str()).await?;
        }
        Ok(LaunchReport {
            cluster: cluster_name,
            placement: launched.placement,
            launched: launched.how,
            job: report,
            torn_down: tear_down,
        })
    }
}

/// Undoes this process's own unfinished operations on `cluster` (after a signal cut them short).
pub(crate) async fn undo_own(store: &Store, home: &Path, cluster: &str) {
    // The launch's future was dropped, which cancels the provider's tasks at their next await
    // point only: one in the middle of a step (claiming an address, writing an instance's
    // metadata) finishes that step on another thread first. Undoing at once could miss what
    // it makes then (seen in CI: an instance record left behind, blocking the name). Give
    // those tasks a moment to reach their cancellation point; then undo by tag.
    // FIXME: cancel at step boundaries instead (the saga checks a token between steps).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let notes =
        aloft_control::recovery::undo_own_operations(home, store, cluster, &progress()).await;
    for note in notes {
        if let aloft_control::recovery::Recovered::Left { reason, .. } = note {
            say(&format!("warning: could not undo everything: {reason}"));
        }
    }
}

/// What the commands that act on an existing cluster need: the provider, the store, the
/// cluster's record and a context to drive it with.
pub(crate) struct Existing {
    pub provider: Arc<dyn Provider>,
    pub record: aloft_store::Cluster,
    pub context: aloft_ops::launch::LaunchContext,
}

pub(crate) async fn existing(
    home: &Path,
    name: &str,
    task: Task,
    base_dir: PathBuf,
) -> Result<Existing> {
    let store = open_store(home).await?;
    recover(&store, home, None).await;
    let ClusterHandle {
        provider,
        record,
        context,
    } = open_cluster(home, &store, name, task, base_dir, progress()).await?;
    Ok(Existing {
        provider,
        record,
        context,
    })
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The cluster to run on.
    pub cluster: String,
    /// The task YAML: it must fit the cluster (nodes, and the resources it asks for).
    pub task: PathBuf,
    /// Set an environment variable for the task.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = crate::launch_cmd::parse_env)]
    pub envs: Vec<(String, String)>,
    /// Pass a secret to the task (fills or overrides `secrets` in the YAML); without `=VALUE`,
    /// the value is taken from this environment. Never shown in a command line or a log.
    #[arg(long = "secret", value_name = "NAME[=VALUE]", value_parser = crate::launch_cmd::parse_secret)]
    pub secrets: Vec<(String, String)>,
    /// Queue the job and return at once (follow it with `aloft logs -f`).
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft exec CLUSTER TASK`: sync the task's files and run it on a cluster that is up.
pub fn exec(args: ExecArgs) -> Result<ExitCode> {
    let dag = crate::launch_cmd::read_dag(&args.task)?;
    crate::launch_cmd::refuse_unrunnable(&args.task, &dag)?;
    if dag.job_group.is_some() {
        bail!(
            "{}: `aloft exec` runs one task on one cluster; a job group runs its tasks at once, \
             each on a cluster of its own: launch it with `aloft launch`",
            args.task.display()
        );
    }
    if dag.tasks.len() != 1 {
        bail!(
            "`aloft exec` runs one task; {} has {}",
            args.task.display(),
            dag.tasks.len()
        );
    }
    let task = dag.tasks[0]
        .with_overrides(&args.envs, &args.secrets)
        .map_err(|missing| anyhow::anyhow!("{}: {missing}", args.task.display()))?;
    let home = aloft_home();
    let base_dir = args
        .task
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    check_values(&args.task.display().to_string(), &task)?;
    runtime()?.block_on(async move {
        let existing = existing(&home, &args.cluster, task.clone(), base_dir).await?;
        let instances = existing
            .provider
            .query(&existing.context.region, &existing.context.cluster)
            .await?;
        let health = Health::of(existing.record.num_nodes, &instances);
        let usable = matches!(
            existing.record.status,
            ClusterStatus::Up | ClusterStatus::Degraded
        ) && health.head_up();
        if !usable {
            bail!(
                "cluster `{}` is {}{}; `aloft start {}` brings it back",
                args.cluster,
                crate::output::snake(&existing.record.status),
                if health.head_up() { "" } else { " (its head node is not running)" },
                args.cluster
            );
        }
        // The same rule as launch: the task must fit the cluster as it is.
        let offers = crate::catalog_cmd::load_catalog(&crate::catalog_cmd::CatalogSource::default())?;
        let catalog = clouds::known_offers(&home, offers)?;
        check_fits(&catalog, &task, &existing.record)?;
        if !health.lost.is_empty() && task.num_nodes > health.running.len() as u32 {
            bail!(
                "the task needs {} node(s); `{}` has {} running (lost: {}): `aloft start {}` makes the lost ones anew",
                task.num_nodes,
                args.cluster,
                health.running.len(),
                aloft_ops::launch::node_list(&health.lost),
                args.cluster
            );
        }
        let instances: Vec<_> = instances
            .into_iter()
            .filter(|instance| health.running.contains(&instance.node_idx))
            .collect();
        let transports = existing
            .context
            .transports(&instances)
            .map_err(|err| anyhow::anyhow!(err.message))?;
        aloft_ops::launch::sync_task_files(&existing.context, &transports)
            .await
            .map_err(|err| anyhow::anyhow!(err.message))?;
        let json = args.output == OutputFormat::Json;
        let report =
            crate::job_cmd::submit(&existing.context, &instances, &task, args.detach, json).await?;
        if json {
            crate::output::outln!("{}", serde_json::to_string_pretty(&report)?);
        }
        Ok(crate::job_cmd::job_exit(&report))
    })
}

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The cluster.
    pub cluster: String,
    /// Do not ask (accepted as in SkyPilot; nothing here asks).
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft stop CLUSTER`: stop its instances, keeping their disks.
pub fn stop(args: ClusterArgs) -> Result<ExitCode> {
    set_power(args, ClusterStatus::Stopped)
}

/// `aloft start CLUSTER`: start a stopped cluster's instances again.
pub fn start(args: ClusterArgs) -> Result<ExitCode> {
    set_power(args, ClusterStatus::Up)
}

/// Stops (`Stopped`) or starts (`Up`) a cluster's instances through the server, following
/// the request's progress. Starting is a launch on the recorded cluster with no task: stopped
/// nodes start, lost ones are made anew, and the agent comes back with its queue.
fn set_power(args: ClusterArgs, status: ClusterStatus) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let name = args.cluster.clone();
        let accepted = crate::api_cmd::with_server(&home, |client| {
            let name = name.clone();
            async move {
                if status == ClusterStatus::Stopped {
                    client.stop(&name).await
                } else {
                    client.start(&name).await
                }
            }
        })
        .await?;
        let client = crate::api_cmd::connect(&home).await?;
        crate::api_cmd::follow(&client, &accepted.request_id).await?;
        if args.output == OutputFormat::Json {
            let clusters = client.clusters(std::slice::from_ref(&name)).await?;
            let cluster = clusters
                .first()
                .ok_or_else(|| anyhow::anyhow!("cluster `{name}` is no longer recorded"))?;
            crate::output::outln!("{}", serde_json::to_string_pretty(cluster)?);
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, clap::Args)]
pub struct SshArgs {
    /// The cluster.
    pub cluster: String,
    /// Which node (0 is the head).
    #[arg(default_value_t = 0)]
    pub node: u32,
    /// A command to run instead of an interactive shell (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// `aloft ssh CLUSTER [NODE] [-- COMMAND]`: a shell (or a command) on a node, with its host key
/// pinned.
pub fn ssh(args: SshArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let existing = existing(
            &home,
            &args.cluster,
            Task::new(&args.cluster),
            PathBuf::new(),
        )
        .await?;
        let instances = existing
            .provider
            .query(&existing.context.region, &existing.context.cluster)
            .await?;
        let Some(position) = instances
            .iter()
            .position(|instance| instance.node_idx == args.node)
        else {
            bail!(
                "cluster `{}` has no node {} (it has {})",
                args.cluster,
                args.node,
                instances.len()
            );
        };
        let transports = existing
            .context
            .transports(&instances)
            .map_err(|err| anyhow::anyhow!(err.message))?;
        let status = transports[position]
            .interactive_command(&args.command)
            .status()?;
        Ok(ExitCode::from(
            status.code().unwrap_or(1).clamp(0, 255) as u8
        ))
    })
}

pub(crate) fn default_cluster_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("aloft-{:04x}", nanos & 0xffff)
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Clusters to tear down.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub clusters: Vec<String>,
    /// Tear down every recorded cluster (asks first unless `--yes`).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not ask.
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft down NAME...`: terminate the clusters' instances and forget them, through the
/// server, one request per cluster, followed.
pub fn down(args: DownArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let client = crate::api_cmd::connect(&home).await?;
        let names: Vec<String> =
            if args.all {
                let names: Vec<String> = crate::api_cmd::with_server(&home, |client| async move {
                    client.clusters(&[]).await
                })
                .await?
                .into_iter()
                .map(|cluster| cluster.name)
                .collect();
                if names.is_empty() {
                    say("No clusters to tear down.");
                } else if !args.yes
                    && !confirm(&format!(
                        "Tear down {} cluster(s): {}?",
                        names.len(),
                        names.join(", ")
                    ))?
                {
                    bail!("nothing was torn down");
                }
                names
            } else {
                args.clusters.clone()
            };
        for name in &names {
            let accepted = crate::api_cmd::with_server(&home, |client| {
                let name = name.clone();
                async move { client.down(&name, &aloft_api::DownBody::default()).await }
            })
            .await?;
            crate::api_cmd::follow(&client, &accepted.request_id).await?;
        }
        if args.output == OutputFormat::Json {
            let document = serde_json::json!({"terminated": names});
            crate::output::outln!("{}", serde_json::to_string_pretty(&document)?);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Asks a yes/no question on the terminal; without one, says how to answer in advance.
fn confirm(question: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        bail!("{question} Not asking without a terminal: pass --yes (-y) to go ahead");
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Says what a refresh or a sweep found (the background tasks' findings, as JSON objects).
fn say_findings(findings: &[serde_json::Value]) {
    let field = |finding: &serde_json::Value, name: &str| {
        finding[name].as_str().unwrap_or_default().to_owned()
    };
    for finding in findings {
        let (cluster, cloud, region, reason) = (
            field(finding, "cluster"),
            field(finding, "cloud"),
            field(finding, "region"),
            field(finding, "reason"),
        );
        say(&match finding["kind"].as_str().unwrap_or_default() {
            "torn_down_by_autostop" => format!("`{cluster}` was torn down by its autostop."),
            "unreachable" => format!("warning: could not ask the cloud of `{cluster}`: {reason}"),
            "not_swept" => format!("Could not look for orphans on {cloud}: {reason}"),
            "orphan" => format!(
                "Instances of `{cluster}` are on {cloud} ({region}) but no cluster of that name \
                 is recorded there (left by an interrupted run?); `aloft down {cluster}` removes \
                 them."
            ),
            other => format!("({other}: {finding})"),
        });
    }
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only these clusters (default: all).
    pub clusters: Vec<String>,
    /// Ask the cloud for each cluster's instances instead of trusting the records.
    #[arg(long)]
    pub refresh: bool,
    /// Show where each cluster's open ports (`resources.ports`) are reached: the head node's
    /// address and the port.
    #[arg(long)]
    pub endpoints: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft status`: the recorded clusters, from the server, with what each cloud said at the
/// server's last refresh (`--refresh`: the server refreshes and sweeps for orphans first).
pub fn status(args: StatusArgs) -> Result<ExitCode> {
    let home = aloft_home();
    if args.endpoints {
        return endpoints(&home, &args);
    }
    runtime()?.block_on(async move {
        if args.refresh {
            let tasks = ["cluster_status".to_owned(), "orphan_sweep".to_owned()];
            let activated = crate::api_cmd::with_server(&home, |client| {
                let tasks = tasks.clone();
                async move { client.activate(Some(&tasks)).await }
            })
            .await?;
            for task in &activated.tasks {
                if let Some(findings) = task.last_status["findings"].as_array() {
                    say_findings(findings);
                }
            }
        }
        let names = args.clusters.clone();
        let rows = crate::api_cmd::with_server(&home, |client| {
            let names = names.clone();
            async move { client.clusters(&names).await }
        })
        .await?;
        match args.output {
            OutputFormat::Json => {
                crate::output::outln!("{}", serde_json::to_string_pretty(&rows)?);
            }
            OutputFormat::Table => {
                if rows.is_empty() {
                    crate::output::outln!("No clusters.");
                    return Ok(ExitCode::SUCCESS);
                }
                let mut table = new_table(&[
                    "NAME", "INFRA", "INSTANCE", "NODES", "STATUS", "LIVE", "AUTOSTOP", "$/h",
                ]);
                for cluster in &rows {
                    let live = match (&cluster.live_state, cluster.running_nodes) {
                        (None, _) => "-".to_owned(),
                        (Some(state), Some(running)) if running != cluster.num_nodes => {
                            format!("{state} ({running}/{} nodes)", cluster.num_nodes)
                        }
                        (Some(state), _) => state.clone(),
                    };
                    table.add_row(vec![
                        cluster.name.clone(),
                        format!(
                            "{}/{}",
                            cluster.cloud,
                            cluster.zone.as_deref().unwrap_or(&cluster.region)
                        ),
                        cluster.instance_type.clone(),
                        cluster.num_nodes.to_string(),
                        crate::output::snake(&cluster.status),
                        live,
                        match cluster.autostop_minutes {
                            None => "-".to_owned(),
                            Some(minutes) if cluster.autostop_down => format!("{minutes}m (down)"),
                            Some(minutes) => format!("{minutes}m"),
                        },
                        format!("{:.4}", cluster.hourly_price * f64::from(cluster.num_nodes)),
                    ]);
                }
                crate::output::out!("{}", table_text(&table));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `aloft status --endpoints [CLUSTER...]`: for each port a cluster's task opened, the address
/// that reaches it (on the head node, as SkyPilot's `status --endpoints`).
fn endpoints(home: &Path, args: &StatusArgs) -> Result<ExitCode> {
    runtime()?.block_on(async move {
        let names = args.clusters.clone();
        let found = crate::api_cmd::with_server(home, |client| {
            let names = names.clone();
            async move { client.endpoints(&names).await }
        })
        .await?;
        let rows: Vec<(String, String, String)> = found
            .into_iter()
            .map(|found| (found.cluster, found.port, found.endpoint))
            .collect();
        match args.output {
            OutputFormat::Json => {
                let rows: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(cluster, port, endpoint)| {
                        serde_json::json!({"cluster": cluster, "port": port, "endpoint": endpoint})
                    })
                    .collect();
                crate::output::outln!("{}", serde_json::to_string_pretty(&rows)?);
            }
            OutputFormat::Table if rows.is_empty() => crate::output::outln!("No open ports."),
            OutputFormat::Table => {
                let mut table = new_table(&["CLUSTER", "PORT", "ENDPOINT"]);
                for (cluster, port, endpoint) in rows {
                    table.add_row(vec![cluster, port, endpoint]);
                }
                crate::output::out!("{}", table_text(&table));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, clap::Subcommand)]
pub enum LocalCommand {
    /// Remove everything this aloft home's local cloud made (namespaces, veths, bridge,
    /// processes, disks), for instance after a crash, and forget its clusters. Instances of
    /// another aloft home with the same name prefix are never touched; those of a home that no
    /// longer exists are listed, and removed only with `--yes`.
    Cleanup {
        /// Also remove the instances with this cloud's name prefix that no existing aloft
        /// home claims (listed without this flag).
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Fault: preempt a node as a cloud reclaims a spot VM (network cut, then everything in it
    /// killed).
    Preempt {
        /// The cluster's name.
        cluster: String,
        /// The node's index in the cluster (0 is the head).
        node: u32,
    },
    /// Fault: cut a node off the network (connections time out), or `--restore` it.
    Partition {
        /// The cluster's name.
        cluster: String,
        /// The node's index in the cluster (0 is the head).
        node: u32,
        /// Reconnect the node instead of cutting it off.
        #[arg(long)]
        restore: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    #[command(subcommand)]
    pub command: LocalCommand,
    #[arg(
        short = 'o',
        long = "output",
        value_enum,
        default_value = "table",
        global = true
    )]
    pub output: OutputFormat,
}

/// Prints what a `local` command did: a line for people, or a JSON document.
fn report(output: OutputFormat, text: &str, json: serde_json::Value) -> Result<ExitCode> {
    match output {
        OutputFormat::Json => crate::output::outln!("{}", serde_json::to_string_pretty(&json)?),
        OutputFormat::Table => say(text),
    }
    Ok(ExitCode::SUCCESS)
}

/// What `aloft local cleanup` did, for people: what went, what stayed and why.
fn cleanup_text(
    config: &aloft_provider_local::LocalConfig,
    removed: &aloft_provider_local::CleanupReport,
) -> String {
    let mut text = format!(
        "Removed {} namespace(s), {} link(s) and {} cgroup(s)",
        removed.namespaces, removed.links, removed.cgroups
    );
    if removed.bridge {
        text.push_str(&format!(", the bridge {}", config.bridge));
    }
    if removed.state_dir {
        text.push_str(&format!(
            ", the state directory {}",
            config.state_dir.display()
        ));
    }
    text.push('.');
    let owner = |found: &aloft_provider_local::ForeignNamespace| match &found.owner {
        Some(dir) => format!(
            "{} (made by {}, which no longer exists)",
            found.netns,
            dir.display()
        ),
        None => format!("{} (no owner recorded)", found.netns),
    };
    if !removed.orphans_removed.is_empty() {
        text.push_str("\nRemoved instances no aloft home claims:");
        for found in &removed.orphans_removed {
            text.push_str(&format!("\n  {}", owner(found)));
        }
    }
    if !removed.orphans_left.is_empty() {
        text.push_str(
            "\nLeft instances no aloft home claims (run `aloft local cleanup --yes` to remove \
             them):",
        );
        for found in &removed.orphans_left {
            text.push_str(&format!("\n  {}", owner(found)));
        }
    }
    if !removed.others_left.is_empty() {
        text.push_str("\nLeft alone, as another aloft home owns them:");
        for found in &removed.others_left {
            let home = found
                .owner
                .as_ref()
                .map_or_else(String::new, |dir| format!(" ({})", dir.display()));
            text.push_str(&format!("\n  {}{home}", found.netns));
        }
    }
    if removed.bridge_kept {
        text.push_str(&format!(
            "\nKept the bridge {}: instances that were not removed still use it.",
            config.bridge
        ));
    }
    text
}

pub fn local(args: LocalArgs) -> Result<ExitCode> {
    let (command, output) = (args.command, args.output);
    let home = aloft_home();
    match command {
        LocalCommand::Cleanup { yes } => runtime()?.block_on(async move {
            aloft_provider_local::preflight()?;
            let config = clouds::local_config(&home)?;
            let orphans = if yes {
                aloft_provider_local::Orphans::Remove
            } else {
                aloft_provider_local::Orphans::List
            };
            let removed = aloft_provider_local::cleanup(&config, orphans).await?;
            let store = open_store(&home).await?;
            for cluster in store.cluster_list().await? {
                if cluster.cloud == "local" {
                    store.cluster_delete(&cluster.name).await?;
                }
            }
            report(
                output,
                &cleanup_text(&config, &removed),
                serde_json::to_value(&removed)?,
            )
        }),
        LocalCommand::Preempt { cluster, node } => runtime()?.block_on(async move {
            let provider = clouds::local_provider(&home)?;
            let name = ClusterName::new(cluster.clone())
                .map_err(|err| anyhow::anyhow!("`{cluster}`: {err}"))?;
            provider.preempt(&name, node).await?;
            report(
                output,
                &format!("Preempted node {node} of `{cluster}`."),
                serde_json::json!({"cluster": cluster, "node": node, "preempted": true}),
            )
        }),
        LocalCommand::Partition {
            cluster,
            node,
            restore,
        } => runtime()?.block_on(async move {
            let provider = clouds::local_provider(&home)?;
            let name = ClusterName::new(cluster.clone())
                .map_err(|err| anyhow::anyhow!("`{cluster}`: {err}"))?;
            provider.partition(&name, node, !restore).await?;
            let what = if restore { "Reconnected" } else { "Cut off" };
            report(
                output,
                &format!("{what} node {node} of `{cluster}`."),
                serde_json::json!({"cluster": cluster, "node": node, "partitioned": !restore}),
            )
        }),
    }
}

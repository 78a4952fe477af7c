//! Commands that act on clusters: a real `launch`, `down`, `status`, and `local cleanup`.
//!
//! For now the CLI drives the operations itself (store, provider, transports); when the API
//! server arrives these become its endpoints and the CLI its client.

use crate::clouds::CloudAccess;
use crate::launch_cmd::LaunchArgs;
use crate::output::{OutputFormat, new_table, table_text};
use aloft_catalog::Catalog;
use aloft_ops::Outcome;
use aloft_ops::launch::{FailoverError, LaunchContext, launch_saga, launch_with_failover};
use aloft_provision::{ClusterName, ClusterState, Provider};
use aloft_store::{Cluster, ClusterStatus, JobState, OperationKind, OperationState, Store};
use aloft_types::{Dag, Task};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// aloft's home: state database, local cloud disks, SSH state (`$ALOFT_HOME`, else `~/.aloft`).
pub(crate) fn aloft_home() -> PathBuf {
    match std::env::var_os("ALOFT_HOME") {
        Some(home) => PathBuf::from(home),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".aloft")
        }
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn open_store(home: &Path) -> Result<Store> {
    Ok(Store::open(&home.join("state.db")).await?)
}

pub(crate) fn say(line: &str) {
    eprintln!("{line}");
}

/// `aloft launch TASK` for real: plan on the clouds aloft can use (today: the local cloud),
/// bring the cluster up, run the task, and tear it down with `--down`.
///
/// A DAG or pipeline runs task by task in dependency order, each on a cluster of its own
/// (`<name>-<task index>`) that is torn down when its task ends, and stops at the first task
/// that fails (its cluster is kept for a look, unless `--down`).
pub fn launch(args: &LaunchArgs, dag: Dag, options: aloft_optimizer::Options) -> Result<ExitCode> {
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
        let mut task = dag.tasks[idx.0].clone();
        for (name, value) in &args.envs {
            task.envs.insert(name.clone(), Some(value.clone()));
        }
        let missing: Vec<&str> = task
            .envs
            .iter()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        if !missing.is_empty() {
            bail!(
                "task `{}` needs a value for {}: pass --env NAME=VALUE",
                dag.task_name(*idx),
                missing.join(", ")
            );
        }
        tasks.push((dag.task_name(*idx), task));
    }
    let base_name = args.cluster.clone().unwrap_or_else(default_cluster_name);
    let home = aloft_home();
    let base_dir = args
        .task
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    runtime()?.block_on(async move {
        let (catalog, clouds) = crate::clouds::launchable(&home).await?;
        let store = open_store(&home).await?;
        recover(&store, &home).await?;
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
            println!("{}", serde_json::to_string_pretty(&document)?);
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

/// The enabled clouds' names, for messages: `aws, local`.
fn enabled_names(clouds: &std::collections::HashMap<String, CloudAccess>) -> String {
    let mut names: Vec<&str> = clouds.keys().map(String::as_str).collect();
    names.sort_unstable();
    names.join(", ")
}

/// What one launched task came to.
#[derive(Debug, serde::Serialize)]
struct LaunchReport {
    cluster: String,
    placement: aloft_optimizer::Placement,
    job: crate::job_cmd::JobReport,
    torn_down: bool,
}

/// Launching one task: plan it, bring its cluster up (with failover), submit it.
struct LaunchOne<'a> {
    clouds: &'a std::collections::HashMap<String, CloudAccess>,
    store: &'a Store,
    home: &'a Path,
    args: &'a LaunchArgs,
    catalog: &'a Catalog,
    options: &'a aloft_optimizer::Options,
    base_dir: &'a Path,
    down: bool,
}

impl LaunchOne<'_> {
    async fn run(&self, task: Task, cluster_name: String) -> Result<LaunchReport> {
        let (store, home, args, catalog) = (self.store, self.home, self.args, self.catalog);
        let base_dir = self.base_dir.to_path_buf();
        let cluster = ClusterName::new(cluster_name.clone())
            .map_err(|err| anyhow::anyhow!("cluster name `{cluster_name}`: {err}"))?;
        // Plan, try, and on a failure that rules a place out, plan again without it.
        let mut last_placement = None;
        let mut plan = |blocked: &[aloft_types::Infra]| -> Result<LaunchContext, String> {
            let mut options = self.options.clone();
            options.blocked.extend(blocked.iter().cloned());
            let solution = aloft_optimizer::optimize(&Dag::single(task.clone()), catalog, &options)
                .map_err(|err| {
                    format!(
                        "no plan on the clouds aloft can use ({}): {err}",
                        enabled_names(self.clouds)
                    )
                })?;
            let placement = solution.best.tasks[0].clone();
            say(&format!(
                "Launching `{cluster_name}`: {} x {}{} in {}/{}{} at ${:.4}/h",
                placement.num_nodes,
                placement.instance_type,
                if placement.spot { " (spot)" } else { "" },
                placement.cloud,
                placement.region,
                placement
                    .zone
                    .as_deref()
                    .map(|zone| format!("/{zone}"))
                    .unwrap_or_default(),
                placement.cluster_hourly_price
            ));
            let cloud = self.clouds.get(&placement.cloud).ok_or_else(|| {
                format!(
                    "the plan chose cloud `{}`, which is not enabled",
                    placement.cloud
                )
            })?;
            if placement.spot && args.idle_minutes.is_some() && !args.down {
                crate::job_cmd::check_stoppable(
                    &cluster_name,
                    &placement.cloud,
                    true,
                    cloud.provider.as_ref(),
                )
                .map_err(|err| format!("{err:#}"))?;
            }
            let option = &task.resources.options[placement.option_index];
            let context = LaunchContext {
                zone: placement.zone.clone(),
                instance_type: placement.instance_type.clone(),
                num_nodes: placement.num_nodes,
                use_spot: placement.spot,
                ports: option.ports.clone(),
                image_id: option.image_id.clone(),
                default_image_id: default_image(catalog, &placement),
                disk_size_gb: option.disk_size,
                task: task.clone(),
                base_dir: base_dir.clone(),
                ..base_context(cloud, cluster.clone(), &placement.region, home)
            };
            last_placement = Some(placement);
            Ok(context)
        };
        let mut wait = std::time::Duration::from_secs(5);
        let result = loop {
            match launch_with_failover(&launch_saga(), store, &mut plan).await {
                Err(FailoverError::NoPlan { reason, blocked }) if args.retry_until_up => {
                    let _ = blocked;
                    say(&format!(
                        "{reason}; retrying in {}s (--retry-until-up)",
                        wait.as_secs()
                    ));
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(120));
                }
                other => break other,
            }
        };
        let result = result?;
        let (Some(context), Some(placement)) = (result.context.clone(), last_placement.clone())
        else {
            bail!("launch ended without a placement");
        };
        match result.outcome {
            Outcome::Succeeded { .. } => {}
            Outcome::Unwound { error, .. } => bail!("launch failed and was undone: {error}"),
            Outcome::Failed { error, .. } => {
                bail!("launch failed and could not be fully undone (see `aloft status`): {error}")
            }
        }
        let provider = context.provider.clone();
        record_cluster(store, &context, &task, &placement).await?;
        set_status(store, cluster.as_str(), ClusterStatus::Up).await?;
        let instances = provider.query(&context.region, &cluster).await?;
        // Queued before autostop is set, so the cluster is not idle in between.
        let queued = crate::job_cmd::enqueue(&context, &instances, &task).await?;
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
            crate::job_cmd::set_autostop(store, record, queued.client(), &*provider, &setting)
                .await?;
            say(&crate::job_cmd::autostop_text(&cluster_name, &setting));
        }
        let json = args.output == OutputFormat::Json;
        let report = crate::job_cmd::await_job(queued, args.detach, json).await?;
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
            placement,
            job: report,
            torn_down: tear_down,
        })
    }
}

/// What the commands that act on an existing cluster need: the provider, the store, the
/// cluster's record and a context to drive it with.
pub(crate) struct Existing {
    pub provider: Arc<dyn Provider>,
    pub store: Store,
    pub record: Cluster,
    pub context: LaunchContext,
}

pub(crate) async fn existing(
    home: &Path,
    name: &str,
    task: Task,
    base_dir: PathBuf,
) -> Result<Existing> {
    let store = open_store(home).await?;
    recover(&store, home).await?;
    let Some(record) = store.cluster_fetch(name).await? else {
        let known: Vec<String> = store
            .cluster_list()
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        let hint = aloft_catalog::did_you_mean(name, known.iter().map(String::as_str))
            .map(|close| format!("; did you mean `{close}`?"))
            .unwrap_or_default();
        bail!("no cluster named `{name}`{hint} (see `aloft status`)");
    };
    let cluster =
        ClusterName::new(name.to_owned()).map_err(|err| anyhow::anyhow!("`{name}`: {err}"))?;
    let cloud = crate::clouds::access(home, &record.cloud).await?;
    let context = LaunchContext {
        zone: record.zone.clone(),
        instance_type: record.instance_type.clone(),
        num_nodes: record.num_nodes,
        use_spot: record.spot,
        task,
        base_dir,
        ..base_context(&cloud, cluster, &record.region, home)
    };
    Ok(Existing {
        provider: cloud.provider,
        store,
        record,
        context,
    })
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The cluster to run on.
    pub cluster: String,
    /// The task YAML (its resources are not looked at: the cluster is already there).
    pub task: PathBuf,
    /// Set an environment variable for the task.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = crate::launch_cmd::parse_env)]
    pub envs: Vec<(String, String)>,
    /// Queue the job and return at once (follow it with `aloft logs -f`).
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft exec CLUSTER TASK`: sync the task's files and run it on a cluster that is up.
pub fn exec(args: ExecArgs) -> Result<ExitCode> {
    let dag = crate::launch_cmd::read_dag(&args.task)?;
    if dag.tasks.len() != 1 {
        bail!(
            "`aloft exec` runs one task; {} has {}",
            args.task.display(),
            dag.tasks.len()
        );
    }
    let mut task = dag.tasks.into_iter().next().expect("one task");
    for (name, value) in &args.envs {
        task.envs.insert(name.clone(), Some(value.clone()));
    }
    let home = aloft_home();
    let base_dir = args
        .task
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    runtime()?.block_on(async move {
        let existing = existing(&home, &args.cluster, task.clone(), base_dir).await?;
        if existing.record.status != ClusterStatus::Up {
            bail!(
                "cluster `{}` is {}; start it first",
                args.cluster,
                crate::output::snake(&existing.record.status)
            );
        }
        let instances = existing
            .provider
            .query(&existing.context.region, &existing.context.cluster)
            .await?;
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
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Ok(crate::job_cmd::job_exit(&report))
    })
}

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The cluster.
    pub cluster: String,
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

/// Stops (`Stopped`) or starts (`Up`) a cluster's instances and records it.
fn set_power(args: ClusterArgs, status: ClusterStatus) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let task = Task::new(&args.cluster);
        let existing = existing(&home, &args.cluster, task, PathBuf::new()).await?;
        let (provider, context) = (&existing.provider, &existing.context);
        if status == ClusterStatus::Stopped {
            crate::job_cmd::check_stoppable(
                &args.cluster,
                &existing.record.cloud,
                existing.record.spot,
                provider.as_ref(),
            )?;
            provider.stop(&context.region, &context.cluster).await?;
        } else {
            provider.start(&context.region, &context.cluster).await?;
            // The agent died with the nodes: start it again (its queue and autostop setting
            // are on the head's disk), with the nodes' addresses as they are now.
            let instances = provider.query(&context.region, &context.cluster).await?;
            for transport in context
                .transports(&instances)
                .map_err(|err| anyhow::anyhow!(err.message))?
            {
                transport.connect().await?;
            }
            aloft_ops::launch::install_agent(context, &instances)
                .await
                .map_err(|err| anyhow::anyhow!(err.message))?;
        }
        let mut record = existing.record;
        record.status = status;
        let record = existing.store.cluster_update(&record).await?;
        let name = &args.cluster;
        match args.output {
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&record)?),
            OutputFormat::Table => say(&match status {
                ClusterStatus::Stopped => {
                    format!("Stopped `{name}` (disks kept; `aloft start {name}` brings it back).")
                }
                _ => format!("Started `{name}`."),
            }),
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

/// A context for `cluster` on `cloud` with everything but the placement and the task
/// filled in: callers override what they know with `..base_context(..)`.
fn base_context(
    cloud: &CloudAccess,
    cluster: ClusterName,
    region: &str,
    home: &Path,
) -> LaunchContext {
    LaunchContext {
        provider: cloud.provider.clone(),
        task: Task::new(cluster.as_str()),
        cluster,
        region: region.to_owned(),
        zone: None,
        instance_type: String::new(),
        num_nodes: 0,
        use_spot: false,
        ports: Vec::new(),
        image_id: None,
        default_image_id: None,
        disk_size_gb: None,
        base_dir: PathBuf::new(),
        ssh_user: cloud.ssh_user.clone(),
        ssh_key: cloud.ssh_key.clone(),
        ssh_state_dir: home.join("ssh"),
        agent_binary: std::env::current_exe().ok(),
        progress: Arc::new(say),
    }
}

fn default_cluster_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("aloft-{:04x}", nanos & 0xffff)
}

async fn record_cluster(
    store: &Store,
    context: &LaunchContext,
    task: &Task,
    placement: &aloft_optimizer::Placement,
) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let resources = serde_json::to_value(&task.resources.options[placement.option_index])?;
    match store.cluster_fetch(context.cluster.as_str()).await? {
        Some(mut existing) => {
            existing.status = ClusterStatus::Init;
            existing.resources = resources;
            store.cluster_update(&existing).await?;
        }
        None => {
            store
                .cluster_insert(&Cluster {
                    name: context.cluster.as_str().to_owned(),
                    status: ClusterStatus::Init,
                    cloud: placement.cloud.clone(),
                    region: placement.region.clone(),
                    zone: placement.zone.clone(),
                    instance_type: placement.instance_type.clone(),
                    num_nodes: placement.num_nodes,
                    spot: placement.spot,
                    hourly_price: placement.hourly_price,
                    autostop_minutes: None,
                    autostop_down: false,
                    resources,
                    generation: 0,
                    created_at: now,
                    updated_at: now,
                })
                .await?;
        }
    }
    Ok(())
}

async fn set_status(store: &Store, name: &str, status: ClusterStatus) -> Result<()> {
    if let Some(mut cluster) = store.cluster_fetch(name).await? {
        cluster.status = status;
        store.cluster_update(&cluster).await?;
    }
    Ok(())
}

/// Finds launches an earlier aloft process left unfinished (it was killed, or the machine went
/// off) and undoes them, so no instance is leaked.
async fn recover(store: &Store, home: &Path) -> Result<()> {
    for operation in store.operation_list_unfinished().await? {
        if operation.kind != OperationKind::Launch {
            continue;
        }
        say(&format!(
            "Found an unfinished launch of `{}` ({}); undoing it",
            operation.cluster, operation.id
        ));
        let Ok(cluster) = ClusterName::new(operation.cluster.clone()) else {
            continue;
        };
        // Undoing needs only the provider, the cluster and its region, which the bootstrap
        // step recorded (before it, nothing was made).
        let bootstrap = operation
            .steps
            .iter()
            .find(|step| step.step == "bootstrap")
            .map(|step| step.output.clone())
            .unwrap_or_default();
        let cloud_name = bootstrap["cloud"].as_str().unwrap_or("local");
        let region = bootstrap["region"]
            .as_str()
            .unwrap_or(aloft_catalog::LOCAL_REGION);
        let cloud = crate::clouds::access(home, cloud_name).await?;
        let context = base_context(&cloud, cluster, region, home);
        let name = operation.cluster.clone();
        if operation.state == OperationState::Running {
            store
                .operation_set_state(
                    &operation.id,
                    OperationState::Unwinding,
                    Some("interrupted"),
                )
                .await?;
        }
        let operation = store
            .operation_fetch(&operation.id)
            .await?
            .context("operation vanished")?;
        launch_saga().resume(store, operation, &context).await?;
        if let Some(cluster) = store.cluster_fetch(&name).await?
            && cluster.status == ClusterStatus::Init
        {
            store.cluster_delete(&name).await?;
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Clusters to tear down.
    #[arg(required = true)]
    pub clusters: Vec<String>,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft down NAME...`: terminate the clusters' instances and forget them.
pub fn down(args: DownArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let store = open_store(&home).await?;
        recover(&store, &home).await?;
        let mut providers = Providers::new();
        for name in &args.clusters {
            let cluster =
                ClusterName::new(name.clone()).map_err(|err| anyhow::anyhow!("`{name}`: {err}"))?;
            let Some(record) = store.cluster_fetch(name).await? else {
                // Not recorded: an orphan, wherever the clouds have instances tagged with it.
                let found: Vec<Found> = sweep(&home, &mut providers)
                    .await?
                    .into_iter()
                    .filter(|found| found.cluster == cluster)
                    .collect();
                if found.is_empty() {
                    bail!(
                        "no cluster `{name}` is recorded, and no cloud aloft can reach has \
                         instances tagged with it (see `aloft status --refresh`)"
                    );
                }
                for found in found {
                    say(&format!(
                        "No cluster `{name}` is recorded; terminating its instances on {} ({})",
                        found.cloud, found.region
                    ));
                    found.provider.terminate(&found.region, &cluster).await?;
                }
                if args.output == OutputFormat::Table {
                    say(&format!("Terminated `{name}`."));
                }
                continue;
            };
            let provider = crate::clouds::access(&home, &record.cloud).await?.provider;
            provider.terminate(&record.region, &cluster).await?;
            store.cluster_delete(name).await?;
            if args.output == OutputFormat::Table {
                say(&format!("Terminated `{name}`."));
            }
        }
        if args.output == OutputFormat::Json {
            let document = serde_json::json!({"terminated": args.clusters});
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The catalog's default image for a placement: its region's GPU image when the placement has
/// accelerators, else the CPU one. `None` leaves the choice to the provider.
fn default_image(catalog: &Catalog, placement: &aloft_optimizer::Placement) -> Option<String> {
    let flavor = if placement.accelerator.is_some() {
        aloft_catalog::ImageFlavor::Gpu
    } else {
        aloft_catalog::ImageFlavor::Cpu
    };
    catalog
        .default_image(&placement.cloud, &placement.region, flavor)
        .map(|image| image.image_id.clone())
}

/// Providers by cloud name, made once per command.
type Providers = std::collections::HashMap<String, Arc<dyn Provider>>;

/// A cluster found on a cloud by its tag.
struct Found {
    cloud: String,
    region: String,
    cluster: ClusterName,
    provider: Arc<dyn Provider>,
}

/// Every cluster with instances on the clouds this machine can act on (the local cloud where it
/// can run, the clouds `aloft check` enabled), in the regions where each provider made
/// instances: what `status --refresh` compares with the records to name orphans. A cloud that
/// cannot be asked is reported and skipped. Providers already made (`providers`, by cloud) are
/// reused, and those made here are added.
async fn sweep(home: &Path, providers: &mut Providers) -> Result<Vec<Found>> {
    let mut clouds: Vec<(String, Arc<dyn Provider>)> = Vec::new();
    for name in std::iter::once("local".to_owned()).chain(crate::clouds::enabled_clouds(home)) {
        if let Some(provider) = providers.get(&name) {
            clouds.push((name, provider.clone()));
            continue;
        }
        let provider = if name == "local" {
            // Not root: the local cloud cannot be asked (and has nothing of ours to find).
            match crate::clouds::local_provider(home) {
                Ok(local) => local as Arc<dyn Provider>,
                Err(_) => continue,
            }
        } else {
            match crate::clouds::access(home, &name).await {
                Ok(access) => access.provider,
                Err(err) => {
                    say(&format!("Skipping {name} in the orphan sweep: {err:#}"));
                    continue;
                }
            }
        };
        providers.insert(name.clone(), provider.clone());
        clouds.push((name, provider));
    }
    let mut found = Vec::new();
    for (cloud, provider) in clouds {
        let swept: Result<Vec<Found>, aloft_provision::ProvisionError> = async {
            let mut found = Vec::new();
            for region in provider.regions_in_use().await? {
                for cluster in provider.list_clusters(&region).await? {
                    found.push(Found {
                        cloud: cloud.clone(),
                        region: region.clone(),
                        cluster,
                        provider: provider.clone(),
                    });
                }
            }
            Ok(found)
        }
        .await;
        match swept {
            Ok(mut swept) => found.append(&mut swept),
            Err(err) => say(&format!(
                "Could not look for orphans on {cloud}: {:#}",
                anyhow::Error::new(err)
            )),
        }
    }
    Ok(found)
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Ask the cloud for each cluster's instances instead of trusting the records.
    #[arg(long)]
    pub refresh: bool,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `aloft status`: the recorded clusters (with `--refresh`, as the cloud sees them now).
pub fn status(args: StatusArgs) -> Result<ExitCode> {
    let home = aloft_home();
    runtime()?.block_on(async move {
        let store = open_store(&home).await?;
        let mut clusters = store.cluster_list().await?;
        // (state, nodes running) as the cloud sees each cluster now.
        let mut live: Vec<Option<(String, usize)>> = vec![None; clusters.len()];
        // Clusters found gone for good (and forgotten).
        let mut gone = Vec::new();
        let mut providers = Providers::new();
        if args.refresh && !clusters.is_empty() {
            for (idx, cluster) in clusters.iter_mut().enumerate() {
                let Ok(name) = ClusterName::new(cluster.name.clone()) else {
                    continue;
                };
                let provider = match providers.get(&cluster.cloud) {
                    Some(provider) => provider.clone(),
                    None => {
                        let provider = crate::clouds::access(&home, &cluster.cloud).await?.provider;
                        providers.insert(cluster.cloud.clone(), provider.clone());
                        provider
                    }
                };
                let instances = provider.query(&cluster.region, &name).await?;
                let running = instances
                    .iter()
                    .filter(|instance| instance.state == aloft_provision::InstanceState::Running)
                    .count();
                let state = ClusterState::of(&instances);
                // A cluster that lost nodes (a preempted spot node, say) is degraded, even where
                // the provider's summary still says up.
                let lost_nodes = running > 0 && running < cluster.num_nodes as usize;
                let summary = if lost_nodes {
                    "degraded".to_owned()
                } else {
                    crate::output::snake(&state)
                };
                if lost_nodes && cluster.status == ClusterStatus::Up {
                    cluster.status = ClusterStatus::Degraded;
                    *cluster = store.cluster_update(cluster).await?;
                }
                // A cluster that stopped or tore itself down (autostop on its agent) since
                // this machine last looked.
                let was_live =
                    matches!(cluster.status, ClusterStatus::Up | ClusterStatus::Degraded);
                if was_live && state == ClusterState::Stopped {
                    cluster.status = ClusterStatus::Stopped;
                    *cluster = store.cluster_update(cluster).await?;
                } else if was_live && state == ClusterState::Terminated && cluster.autostop_down {
                    say(&format!(
                        "`{}` was torn down by its autostop.",
                        cluster.name
                    ));
                    store.cluster_delete(&cluster.name).await?;
                    gone.push(idx);
                }
                live[idx] = Some((summary, running));
            }
        }
        for idx in gone.into_iter().rev() {
            clusters.remove(idx);
            live.remove(idx);
        }
        // The reconcile pass: instances the clouds have for clusters aloft does not know.
        if args.refresh {
            for orphan in sweep(&home, &mut providers).await? {
                let recorded = clusters.iter().any(|cluster| {
                    cluster.name == orphan.cluster.as_str() && cluster.cloud == orphan.cloud
                });
                if !recorded {
                    say(&format!(
                        "Instances of `{name}` are on {cloud} ({region}) but no cluster of that \
                         name is recorded there (left by an interrupted run?); `aloft down \
                         {name}` removes them.",
                        name = orphan.cluster,
                        cloud = orphan.cloud,
                        region = orphan.region,
                    ));
                }
            }
        }
        match args.output {
            OutputFormat::Json => {
                let rows: Vec<serde_json::Value> = clusters
                    .iter()
                    .zip(&live)
                    .map(|(cluster, state)| {
                        let mut value = serde_json::to_value(cluster).unwrap_or_default();
                        if let Some((state, running)) = state {
                            value["live_state"] = serde_json::json!(state);
                            value["running_nodes"] = serde_json::json!(running);
                        }
                        value
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            }
            OutputFormat::Table => {
                if clusters.is_empty() {
                    println!("No clusters.");
                    return Ok(ExitCode::SUCCESS);
                }
                let mut table = new_table(&[
                    "NAME", "INFRA", "INSTANCE", "NODES", "STATUS", "LIVE", "AUTOSTOP", "$/h",
                ]);
                for (cluster, state) in clusters.iter().zip(&live) {
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
                        state.as_ref().map_or("-".to_owned(), |(state, running)| {
                            if *running == cluster.num_nodes as usize {
                                state.clone()
                            } else {
                                format!("{state} ({running}/{} nodes)", cluster.num_nodes)
                            }
                        }),
                        match cluster.autostop_minutes {
                            None => "-".to_owned(),
                            Some(minutes) if cluster.autostop_down => format!("{minutes}m (down)"),
                            Some(minutes) => format!("{minutes}m"),
                        },
                        format!("{:.4}", cluster.hourly_price * f64::from(cluster.num_nodes)),
                    ]);
                }
                print!("{}", table_text(&table));
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
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&json)?),
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
            let config = crate::clouds::local_config(&home)?;
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
            let provider = crate::clouds::local_provider(&home)?;
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
            let provider = crate::clouds::local_provider(&home)?;
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

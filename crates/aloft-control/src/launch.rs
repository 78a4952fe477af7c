//! Bringing a cluster up for a task.
//!
//! A launch on a name with no record plans the task (over the clouds aloft can use), launches
//! with failover and records the cluster where it landed. A launch on a recorded cluster never
//! re-plans and never destroys what was there: the task must fit the cluster (see
//! [`check_fits`]); a stopped cluster is started, lost nodes are recreated (repair), the agent is
//! refreshed and the task's files synced. The undo of a failed launch removes only what that
//! launch made ([`LaunchContext::pre_existing`]).

use crate::Progress;
use crate::clusters::{Fit, Health, check_fits, fitting_option, open_cluster};
use crate::registry::CloudAccess;
use aloft_catalog::Catalog;
use aloft_ops::Outcome;
use aloft_ops::launch::{
    FailoverError, LaunchContext, launch_saga, launch_with_failover, node_list,
};
use aloft_ops::owner;
use aloft_optimizer::Placement;
use aloft_provision::{ClusterName, InstanceInfo, Provider};
use aloft_store::{Cluster, ClusterStatus, Store};
use aloft_types::{Dag, Task};
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to launch, and where it may go.
#[allow(missing_debug_implementations)]
pub struct LaunchRequest<'a> {
    pub task: Task,
    pub cluster: ClusterName,
    /// The directory the task's relative paths are relative to.
    pub base_dir: PathBuf,
    pub options: aloft_optimizer::Options,
    pub catalog: &'a Catalog,
    pub clouds: &'a HashMap<String, CloudAccess>,
    /// When no placement is left, wait and plan again (with backoff) until one works.
    pub retry_until_up: bool,
    /// The cluster must be stoppable (autostop without `--down`): spot where the cloud cannot
    /// stop spot instances is refused before anything is made.
    pub must_stop: bool,
}

/// How a cluster came to be up for the task.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HowLaunched {
    /// A new cluster.
    Created,
    /// A recorded cluster that was up.
    Reused,
    /// A recorded cluster that was stopped, started again.
    Started,
    /// A recorded cluster that had lost nodes, with those nodes made anew.
    Repaired { nodes: Vec<u32> },
}

/// A cluster up and ready for the task's job.
#[allow(missing_debug_implementations)]
pub struct Launched {
    pub context: LaunchContext,
    pub instances: Vec<InstanceInfo>,
    /// Where a new cluster was planned (`None` for a recorded cluster: it stays where it is).
    pub placement: Option<Placement>,
    pub how: HowLaunched,
    pub record: Cluster,
}

/// Brings the cluster up for the task: see the module docs.
pub async fn bring_up(
    home: &Path,
    store: &Store,
    request: LaunchRequest<'_>,
    progress: &Progress,
) -> Result<Launched> {
    check_not_busy(store, request.cluster.as_str()).await?;
    match store.cluster_fetch(request.cluster.as_str()).await? {
        Some(record) => relaunch(home, store, request, record, progress).await,
        None => launch_new(home, store, request, progress).await,
    }
}

/// Refuses to act on a cluster while an operation on it is owned by a live process (another
/// aloft command): an operation in progress belongs to its owner.
pub async fn check_not_busy(store: &Store, cluster: &str) -> Result<()> {
    let now = crate::unix_now();
    for operation in store.operation_list_unfinished().await? {
        if operation.cluster == cluster
            && owner::is_alive(operation.owner.as_deref(), operation.heartbeat_at, now)
        {
            let by = operation
                .owner
                .as_deref()
                .and_then(owner::pid_of)
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            bail!(
                "cluster `{cluster}` is being launched by another aloft command{by}; wait for it to finish (or end that command: its launch is then undone)"
            );
        }
    }
    Ok(())
}

/// A launch on a recorded cluster: reuse, start or repair it where it is.
async fn relaunch(
    home: &Path,
    store: &Store,
    request: LaunchRequest<'_>,
    record: Cluster,
    progress: &Progress,
) -> Result<Launched> {
    check_fits(request.catalog, &request.task, &record)?;
    let handle = open_cluster(
        home,
        store,
        &record.name,
        request.task.clone(),
        request.base_dir.clone(),
        progress.clone(),
    )
    .await?;
    let provider = handle.provider.clone();
    let mut context = handle.context;
    let mut how = HowLaunched::Reused;
    let mut health = Health::of(
        record.num_nodes,
        &provider.query(&record.region, &context.cluster).await?,
    );
    if !health.stopped.is_empty() {
        progress(&format!("Starting `{}` (stopped)", record.name));
        provider.start(&record.region, &context.cluster).await?;
        health = Health::of(
            record.num_nodes,
            &provider.query(&record.region, &context.cluster).await?,
        );
        how = HowLaunched::Started;
    }
    if !health.lost.is_empty() {
        progress(&format!(
            "`{}` lost node(s) {}; making them anew",
            record.name,
            node_list(&health.lost)
        ));
        how = HowLaunched::Repaired {
            nodes: health.lost.clone(),
        };
    } else if how == HowLaunched::Reused {
        progress(&format!("Reusing `{}` (up)", record.name));
    }
    // The nodes it has are never touched by this launch's undo.
    context.pre_existing = health.running.clone();
    // The ports the task asks for, and, for nodes made anew, what the cluster was made with.
    if let Fit::Option(option) = fitting_option(request.catalog, &request.task, &record) {
        context.ports = option.ports.clone();
    }
    if let Ok(original) = serde_json::from_value::<aloft_types::Resources>(record.resources.clone())
    {
        context.image_id = original.image_id.clone();
        context.disk_size_gb = original.disk_size;
    }
    let params = serde_json::to_value(context.params())?;
    let outcome = launch_saga()
        .start(store, &record.name, &params, &context)
        .await?;
    match outcome {
        Outcome::Succeeded { .. } => {}
        Outcome::Unwound { error, .. } => bail!(
            "launch on `{}` failed and was undone (its nodes {} are kept): {error}",
            record.name,
            node_list(&context.pre_existing)
        ),
        Outcome::Failed { error, .. } => bail!(
            "launch on `{}` failed and could not be fully undone (see `aloft status --refresh`): {error}",
            record.name
        ),
    }
    let mut record = record;
    record.status = ClusterStatus::Up;
    let record = store.cluster_update(&record).await?;
    let instances = provider.query(&record.region, &context.cluster).await?;
    Ok(Launched {
        context,
        instances,
        placement: None,
        how,
        record,
    })
}

/// A launch on a name with no record: plan, launch with failover, record where it landed.
async fn launch_new(
    home: &Path,
    store: &Store,
    request: LaunchRequest<'_>,
    progress: &Progress,
) -> Result<Launched> {
    let LaunchRequest {
        task,
        cluster,
        base_dir,
        options,
        catalog,
        clouds,
        retry_until_up,
        must_stop,
    } = request;
    let cluster_name = cluster.as_str().to_owned();
    let mut last_placement = None;
    let mut plan = |blocked: &[aloft_types::Infra]| -> Result<LaunchContext, String> {
        let mut options = options.clone();
        options.blocked.extend(blocked.iter().cloned());
        let solution = aloft_optimizer::optimize(&Dag::single(task.clone()), catalog, &options)
            .map_err(|err| {
                format!(
                    "no plan on the clouds aloft can use ({}): {err}",
                    enabled_names(clouds)
                )
            })?;
        let placement = solution.best.tasks[0].clone();
        progress(&format!(
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
        let cloud = clouds.get(&placement.cloud).ok_or_else(|| {
            format!(
                "the plan chose cloud `{}`, which is not enabled",
                placement.cloud
            )
        })?;
        if placement.spot && must_stop {
            check_stoppable(
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
            ..crate::clusters::base_context(
                cloud,
                cluster.clone(),
                &placement.region,
                home,
                progress.clone(),
            )
        };
        last_placement = Some(placement);
        Ok(context)
    };
    let mut wait = std::time::Duration::from_secs(5);
    let result = loop {
        match launch_with_failover(&launch_saga(), store, &mut plan).await {
            Err(FailoverError::NoPlan { reason, .. }) if retry_until_up => {
                progress(&format!(
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
    let (Some(context), Some(placement)) = (result.context.clone(), last_placement.clone()) else {
        bail!("launch ended without a placement");
    };
    match result.outcome {
        Outcome::Succeeded { .. } => {}
        Outcome::Unwound { error, .. } => bail!("launch failed and was undone: {error}"),
        Outcome::Failed { error, .. } => {
            bail!("launch failed and could not be fully undone (see `aloft status`): {error}")
        }
    }
    let record = record_new_cluster(store, &context, &task, &placement).await?;
    let instances = context
        .provider
        .query(&context.region, &context.cluster)
        .await?;
    Ok(Launched {
        context,
        instances,
        placement: Some(placement),
        how: HowLaunched::Created,
        record,
    })
}

/// Records a cluster just launched, where it landed (the last placement tried), as up.
async fn record_new_cluster(
    store: &Store,
    context: &LaunchContext,
    task: &Task,
    placement: &Placement,
) -> Result<Cluster> {
    let now = crate::unix_now();
    let resources = serde_json::to_value(&task.resources.options[placement.option_index])?;
    let record = Cluster {
        name: context.cluster.as_str().to_owned(),
        status: ClusterStatus::Up,
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
    };
    store.cluster_insert(&record).await?;
    store
        .cluster_fetch(&record.name)
        .await?
        .context("the cluster's record vanished")
}

/// The catalog's default image for a placement: its region's GPU image when the placement has
/// accelerators, else the CPU one. `None` leaves the choice to the provider.
fn default_image(catalog: &Catalog, placement: &Placement) -> Option<String> {
    let flavor = if placement.accelerator.is_some() {
        aloft_catalog::ImageFlavor::Gpu
    } else {
        aloft_catalog::ImageFlavor::Cpu
    };
    catalog
        .default_image(&placement.cloud, &placement.region, flavor)
        .map(|image| image.image_id.clone())
}

/// Refuses to stop (or to plan for stopping) a cluster on spot instances its cloud cannot
/// stop (only terminate).
pub fn check_stoppable(
    cluster: &str,
    cloud: &str,
    spot: bool,
    provider: &dyn Provider,
) -> Result<()> {
    if spot && !provider.capabilities().stop_spot {
        bail!(
            "`{cluster}` runs on spot instances, which {cloud} cannot stop; tear it down instead \
             (`aloft down {cluster}`, or autostop with --down)"
        );
    }
    Ok(())
}

/// The enabled clouds' names, for messages: `aws, local`.
fn enabled_names(clouds: &HashMap<String, CloudAccess>) -> String {
    let mut names: Vec<&str> = clouds.keys().map(String::as_str).collect();
    names.sort_unstable();
    names.join(", ")
}

/// Holds providers for the commands that made them.
pub type Providers = HashMap<String, Arc<dyn Provider>>;

/// A task to launch as the server runs it: bring its cluster up (see [`bring_up`]), queue the
/// task as a job, and set the cluster's autostop. Following the job and tearing down after it
/// are the client's to ask for (the job's logs, then `down`).
#[allow(missing_debug_implementations)]
pub struct TaskLaunch {
    pub task: Task,
    pub cluster: ClusterName,
    /// The directory the task's relative paths are relative to.
    pub base_dir: PathBuf,
    pub options: aloft_optimizer::Options,
    /// A SkyPilot-format catalog directory whose clouds replace the bundled ones.
    pub catalog_dir: Option<PathBuf>,
    pub catalog_outliers: aloft_catalog::OutlierPolicy,
    /// A CSV of hourly carbon intensity over the catalog's own.
    pub carbon_intensity: Option<PathBuf>,
    pub retry_until_up: bool,
    /// Stop the cluster (with `down`: tear it down) after this many idle minutes.
    pub idle_minutes: Option<u32>,
    pub down: bool,
    /// The client will not follow the job: with `down`, the cluster tears itself down once
    /// idle.
    pub detach: bool,
}

pub use aloft_optimizer::{Objective, Slack, SlackMeasure};

/// How a new cluster is planned, as a client asks for it.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    pub objective: Objective,
    pub max_hourly_price: Option<f64>,
    pub budget: Option<f64>,
    pub max_carbon_g: Option<f64>,
    /// `aws`, `aws/us-east-1`, ...
    pub blocked: Vec<String>,
    pub default_runtime_hours: f64,
    /// `None` or 0: until proven optimal.
    pub deadline_seconds: Option<f64>,
    pub catalog: Option<String>,
    /// `keep`, `drop` or `warn` (the default).
    pub catalog_outliers: Option<String>,
    /// A CSV of hourly carbon intensity over the catalog's own.
    pub carbon_intensity: Option<String>,
    /// Unix seconds; `None`: carbon at the regions' annual averages.
    pub start_time: Option<i64>,
    pub slack: Option<aloft_optimizer::Slack>,
}

impl TaskLaunch {
    /// A launch from what a client sent: the task in aloft's task model as JSON, and the plan's
    /// settings as text and numbers. An error names the field that is wrong.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        cluster: &str,
        task: serde_json::Value,
        secrets: std::collections::BTreeMap<String, String>,
        base_dir: &str,
        plan: PlanSpec,
        retry_until_up: bool,
        idle_minutes: Option<u32>,
        down: bool,
        detach: bool,
    ) -> Result<TaskLaunch, String> {
        let cluster = ClusterName::new(cluster.to_owned())
            .map_err(|err| format!("cluster: `{cluster}`: {err}"))?;
        let mut task: Task = serde_path_to_error::deserialize(task)
            .map_err(|err| format!("task: at {}: {}", err.path(), err.inner()))?;
        // The task model never carries a secret's value: they come beside it.
        for (name, value) in secrets {
            task.secrets.insert(name, Some(value));
        }
        let at_least_zero = |value: Option<f64>, name: &str| match value {
            Some(value) if !value.is_finite() || value < 0.0 => Err(format!(
                "plan.{name}: expected a number, 0 or more, found {value}"
            )),
            other => Ok(other),
        };
        let blocked = plan
            .blocked
            .iter()
            .map(|text| {
                aloft_types::Infra::parse(text)
                    .map_err(|err| format!("plan.blocked: `{text}`: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !plan.default_runtime_hours.is_finite() || plan.default_runtime_hours <= 0.0 {
            return Err(format!(
                "plan.default_runtime_hours: expected hours above 0, found {}",
                plan.default_runtime_hours
            ));
        }
        let deadline = match at_least_zero(plan.deadline_seconds, "deadline_seconds")? {
            Some(seconds) if seconds > 0.0 => {
                Some(std::time::Duration::from_secs_f64(seconds.min(86_400.0)))
            }
            _ => None,
        };
        let catalog_outliers = match plan.catalog_outliers.as_deref() {
            None => aloft_catalog::OutlierPolicy::Warn,
            Some(text) => aloft_catalog::OutlierPolicy::parse(text).ok_or_else(|| {
                format!("plan.catalog_outliers: `{text}`: expected keep, drop or warn")
            })?,
        };
        let options = aloft_optimizer::Options {
            objective: plan.objective,
            max_hourly_price: at_least_zero(plan.max_hourly_price, "max_hourly_price")?,
            budget: at_least_zero(plan.budget, "budget")?,
            max_carbon_g: at_least_zero(plan.max_carbon_g, "max_carbon_g")?,
            blocked,
            default_runtime: aloft_types::Duration::from_hours(plan.default_runtime_hours),
            deadline,
            start_time: plan.start_time,
            slack: match plan.slack {
                Some(slack) if !slack.percent.is_finite() || slack.percent < 0.0 => {
                    return Err(format!(
                        "plan.slack.percent: expected a percentage, 0 or more, found {}",
                        slack.percent
                    ));
                }
                other => other,
            },
            ..aloft_optimizer::Options::default()
        };
        Ok(TaskLaunch {
            task,
            cluster,
            base_dir: PathBuf::from(base_dir),
            options,
            catalog_dir: plan.catalog.map(PathBuf::from),
            catalog_outliers,
            carbon_intensity: plan.carbon_intensity.map(PathBuf::from),
            retry_until_up,
            idle_minutes,
            down,
            detach,
        })
    }
}

/// A task's cluster up and its job queued.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskLaunched {
    pub cluster: String,
    pub job_id: i64,
    /// How many nodes the job runs on.
    pub nodes: u32,
    pub placement: Option<Placement>,
    pub launched: HowLaunched,
    /// The autostop set on the cluster, if any.
    pub autostop: Option<aloft_agent::Autostop>,
}

/// Launches a task (see [`TaskLaunch`]).
pub async fn launch_task(
    home: &Path,
    store: &Store,
    launch: TaskLaunch,
    progress: &Progress,
) -> Result<TaskLaunched> {
    let mut offers = Catalog::bundled();
    if let Some(dir) = &launch.catalog_dir {
        let load = Catalog::load_dir_cached_with(
            dir,
            aloft_catalog::default_cache_dir().as_deref(),
            launch.catalog_outliers,
        )
        .with_context(|| format!("the catalog in {}", dir.display()))?;
        offers.merge(load.catalog);
    }
    if let Some(file) = &launch.carbon_intensity {
        offers
            .load_carbon_intensity(file)
            .with_context(|| format!("the carbon intensity in {}", file.display()))?;
    }
    let (catalog, clouds) = crate::registry::launchable(home, offers).await?;
    let request = LaunchRequest {
        task: launch.task.clone(),
        cluster: launch.cluster.clone(),
        base_dir: launch.base_dir.clone(),
        options: launch.options.clone(),
        catalog: &catalog,
        clouds: &clouds,
        retry_until_up: launch.retry_until_up,
        must_stop: launch.idle_minutes.is_some() && !launch.down,
    };
    let launched = bring_up(home, store, request, progress).await?;
    let context = &launched.context;
    let client = aloft_ops::launch::agent_client(context, &launched.instances)
        .map_err(|err| anyhow::anyhow!(err.message))?;
    let spec = crate::jobs::job_spec(&launch.task, context);
    // Queued before autostop is set, so the cluster is not idle in between.
    let job_id = client.submit(&spec).await?;
    let autostop = (launch.idle_minutes.is_some() || (launch.down && launch.detach)).then(|| {
        // On the cluster itself, so it happens even if no one is watching by then.
        aloft_agent::Autostop {
            idle_minutes: Some(launch.idle_minutes.unwrap_or(0)),
            down: launch.down,
        }
    });
    if let Some(setting) = &autostop {
        let record = store
            .cluster_fetch(launch.cluster.as_str())
            .await?
            .context("the cluster's record vanished")?;
        crate::jobs::set_autostop(store, record, &client, &*context.provider, setting).await?;
    }
    Ok(TaskLaunched {
        cluster: launch.cluster.as_str().to_owned(),
        job_id,
        nodes: spec.num_nodes,
        placement: launched.placement,
        launched: launched.how,
        autostop,
    })
}

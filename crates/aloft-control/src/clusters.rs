//! A recorded cluster as the commands act on it: its record, its provider, a context to drive it
//! with, how healthy it is, and whether a task fits it.

use crate::Progress;
use crate::registry::CloudAccess;
use aloft_agent::container::container_image;
use aloft_catalog::Catalog;
use aloft_ops::launch::LaunchContext;
use aloft_provision::{ClusterName, InstanceInfo, InstanceState, Provider};
use aloft_store::{Cluster, Store};
use aloft_types::Task;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A recorded cluster, with its provider and a context for its nodes.
#[allow(missing_debug_implementations)]
pub struct ClusterHandle {
    pub provider: Arc<dyn Provider>,
    pub record: Cluster,
    pub context: LaunchContext,
}

/// A context for `cluster` on `cloud` with everything but the placement and the task filled in:
/// callers override what they know with `..base_context(..)`.
pub fn base_context(
    cloud: &CloudAccess,
    cluster: ClusterName,
    region: &str,
    home: &Path,
    progress: Progress,
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
        pre_existing: Vec::new(),
        image_id: None,
        default_image_id: None,
        disk_size_gb: None,
        base_dir: PathBuf::new(),
        ssh_user: cloud.ssh_user.clone(),
        ssh_key: cloud.ssh_key.clone(),
        ssh_state_dir: home.join("ssh"),
        agent_binary: std::env::current_exe().ok(),
        progress,
    }
}

/// The recorded cluster `name`, with a context carrying `task` (whose relative paths are
/// relative to `base_dir`).
pub async fn open_cluster(
    home: &Path,
    store: &Store,
    name: &str,
    task: Task,
    base_dir: PathBuf,
    progress: Progress,
) -> Result<ClusterHandle> {
    let Some(record) = store.cluster_fetch(name).await? else {
        let known: Vec<String> = store
            .cluster_list()
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        let hint = aloft_types::suggest::suggest(name, known.iter().map(String::as_str))
            .map(|close| format!("; did you mean `{close}`?"))
            .unwrap_or_default();
        bail!("no cluster named `{name}`{hint} (see `aloft status`)");
    };
    let cluster = ClusterName::new(name.to_owned())
        .map_err(|err| anyhow::anyhow!("cluster name `{name}`: {err}"))?;
    let cloud = crate::registry::access(home, &record.cloud).await?;
    let context = LaunchContext {
        // What the cluster was launched with: a container image it runs every job in.
        image_id: record
            .resources
            .get("image_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        zone: record.zone.clone(),
        instance_type: record.instance_type.clone(),
        num_nodes: record.num_nodes,
        use_spot: record.spot,
        task,
        base_dir,
        ..base_context(&cloud, cluster, &record.region, home, progress)
    };
    Ok(ClusterHandle {
        provider: cloud.provider,
        record,
        context,
    })
}

/// A cluster's nodes as the cloud reports them, against the nodes it should have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Node indices running.
    pub running: Vec<u32>,
    /// Node indices stopped (disks kept).
    pub stopped: Vec<u32>,
    /// Node indices the cluster should have and does not (terminated, preempted, missing).
    pub lost: Vec<u32>,
}

impl Health {
    pub fn of(num_nodes: u32, instances: &[InstanceInfo]) -> Health {
        let mut health = Health::default();
        for node in 0..num_nodes {
            match instances
                .iter()
                .find(|instance| instance.node_idx == node)
                .map(|instance| instance.state)
            {
                Some(InstanceState::Running | InstanceState::Pending) => health.running.push(node),
                Some(InstanceState::Stopped | InstanceState::Stopping) => health.stopped.push(node),
                _ => health.lost.push(node),
            }
        }
        health
    }

    /// The head node (0) is running: the cluster's agent can answer.
    pub fn head_up(&self) -> bool {
        self.running.contains(&0)
    }
}

/// Names the task's environment variables and secrets that have no value (`NAME: null` in the
/// YAML, and no `--env`/`--secret` given).
pub fn missing_values(task: &Task) -> Vec<&str> {
    task.envs
        .iter()
        .chain(task.secrets.iter())
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| name.as_str())
        .collect()
}

/// Refuses a task that needs values nobody supplied.
pub fn check_values(task_name: &str, task: &Task) -> Result<()> {
    let missing = missing_values(task);
    if !missing.is_empty() {
        bail!(
            "task `{task_name}` needs a value for {}: pass --env NAME=VALUE (or --secret NAME=VALUE for a secret)",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Whether `task` can run on the recorded cluster `record`: no more nodes than it has, and at
/// least one of its resource options admits the cluster's instance type where the cluster is
/// (the catalog's one definition of "fits"). A cluster whose type the catalog does not know is
/// judged by its node count alone.
pub fn check_fits(catalog: &Catalog, task: &Task, record: &Cluster) -> Result<()> {
    if task.num_nodes > record.num_nodes {
        bail!(
            "the task needs {} node(s); cluster `{}` has {}: launch it on a new cluster (another -c NAME)",
            task.num_nodes,
            record.name,
            record.num_nodes
        );
    }
    if let Fit::Nothing = fitting_option(catalog, task, record) {
        bail!(
            "the task's resources do not fit cluster `{}` ({} x {} in {}/{}): launch it on a new cluster (another -c NAME), or ask for what the cluster has",
            record.name,
            record.num_nodes,
            record.instance_type,
            record.cloud,
            record.region
        );
    }
    check_image(task, record)
}

/// The container image a recorded cluster runs every job in (`image_id: docker:<image>` of the
/// option it was launched with); `None`: its jobs run on its nodes.
pub fn cluster_container_image(record: &Cluster) -> Option<&str> {
    record
        .resources
        .get("image_id")
        .and_then(serde_json::Value::as_str)
        .and_then(container_image)
}

/// Refuses a task that can only run in a container the cluster does not run its jobs in: every
/// one of its options names a container image, none of them the cluster's. A task that names
/// no container image runs in the cluster's container, if it has one (as with SkyPilot, whose
/// container is the cluster's for its life): a cluster never changes its container.
pub fn check_image(task: &Task, record: &Cluster) -> Result<()> {
    let cluster_image = cluster_container_image(record);
    let images: Vec<Option<&str>> = task
        .resources
        .options
        .iter()
        .map(|option| option.image_id.as_deref().and_then(container_image))
        .collect();
    if images.is_empty()
        || images
            .iter()
            .any(|image| image.is_none() || *image == cluster_image)
    {
        return Ok(());
    }
    let mut asked: Vec<&str> = images.into_iter().flatten().collect();
    asked.dedup();
    let asked = asked.join(" or ");
    match cluster_image {
        Some(image) => bail!(
            "the task runs in a container of {asked}; cluster `{}` runs every job in its container of {image} (the image it was launched with): name that image or none, or launch the task on a new cluster (another -c NAME)",
            record.name
        ),
        None => bail!(
            "the task runs in a container of {asked}; cluster `{}` was launched without a container image and runs its jobs on its nodes: launch the task on a new cluster (another -c NAME)",
            record.name
        ),
    }
}

/// Which of a task's resource options a recorded cluster satisfies.
#[derive(Debug, Clone, Copy)]
pub enum Fit<'t> {
    /// The first option the cluster satisfies.
    Option(&'t aloft_types::Resources),
    /// The catalog does not know the cluster's instance type: nothing can be judged.
    UnknownType,
    /// No option fits.
    Nothing,
}

/// The first of the task's options that the recorded cluster satisfies: the catalog admits its
/// instance type (an option that asks for no size fits any machine: the planner's default size
/// is for choosing a new one, not for judging one that exists), on its cloud, in its region and
/// zone where the option names them.
pub fn fitting_option<'t>(catalog: &Catalog, task: &'t Task, record: &Cluster) -> Fit<'t> {
    let Some(instance_type) = catalog
        .instance_types
        .iter()
        .find(|ty| ty.name == record.instance_type && catalog.cloud(ty.cloud).name == record.cloud)
    else {
        return Fit::UnknownType;
    };
    let fits = |option: &aloft_types::Resources| {
        let sized = option.cpus.is_some()
            || option.memory.is_some()
            || option.accelerator.is_some()
            || option.instance_type.is_some();
        let cloud_ok = option
            .infra
            .cloud
            .as_ref()
            .is_none_or(|cloud| *cloud == record.cloud);
        (if sized {
            catalog.admits(instance_type, option)
        } else {
            cloud_ok
        }) && option
            .infra
            .region
            .as_ref()
            .is_none_or(|region| *region == record.region)
            && option
                .infra
                .zone
                .as_ref()
                .is_none_or(|zone| record.zone.as_ref() == Some(zone))
    };
    match task.resources.options.iter().find(|option| fits(option)) {
        Some(option) => Fit::Option(option),
        None => Fit::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(image_id: Option<&str>) -> Cluster {
        Cluster {
            name: "c".to_owned(),
            status: aloft_store::ClusterStatus::Up,
            cloud: "local".to_owned(),
            region: "local".to_owned(),
            zone: None,
            instance_type: "local.large".to_owned(),
            num_nodes: 1,
            spot: false,
            hourly_price: 0.0,
            autostop_minutes: None,
            autostop_down: false,
            resources: serde_json::json!({ "image_id": image_id }),
            generation: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn task(images: &[Option<&str>]) -> Task {
        let mut task = Task::new("t");
        task.resources.options = images
            .iter()
            .map(|image| aloft_types::Resources {
                image_id: image.map(str::to_owned),
                ..aloft_types::Resources::default()
            })
            .collect();
        task
    }

    #[test]
    fn a_task_without_an_image_or_with_the_clusters_runs_on_a_container_cluster() {
        let boxed = cluster(Some("docker:img:1"));
        assert_eq!(cluster_container_image(&boxed), Some("img:1"));
        check_image(&task(&[None]), &boxed).unwrap();
        check_image(&task(&[Some("docker:img:1")]), &boxed).unwrap();
        check_image(&task(&[Some("docker:img:2"), None]), &boxed).unwrap();
    }

    #[test]
    fn a_task_in_another_image_is_refused_naming_both_images() {
        let boxed = cluster(Some("docker:img:1"));
        let err = check_image(&task(&[Some("docker:img:2")]), &boxed).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("img:2"), "{message}");
        assert!(message.contains("container of img:1"), "{message}");
        assert!(message.contains("new cluster"), "{message}");
    }

    #[test]
    fn a_task_in_a_container_is_refused_on_a_cluster_launched_without_one() {
        let plain = cluster(None);
        assert_eq!(cluster_container_image(&plain), None);
        check_image(&task(&[None]), &plain).unwrap();
        let err = check_image(&task(&[Some("docker:img:1")]), &plain).unwrap_err();
        assert!(
            err.to_string()
                .contains("launched without a container image"),
            "{err}"
        );
        // A machine image is no container.
        let machine = cluster(Some("ami-0123"));
        assert_eq!(cluster_container_image(&machine), None);
    }
}

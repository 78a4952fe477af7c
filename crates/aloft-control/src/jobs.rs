//! A cluster's jobs as its head node's agent keeps them, and where its open ports are reached:
//! reads (and cancels) that ask the cluster itself, for `aloft queue`, `aloft cancel` and
//! `aloft status --endpoints`.

use crate::clusters::{ClusterHandle, Health, open_cluster};
use crate::{Progress, registry};
use aloft_agent::container::container_image;
use aloft_agent::{AgentClient, Autostop, ContainerSpec, JobSpec};
use aloft_ops::launch::{LaunchContext, REMOTE_WORKDIR, agent_client};
use aloft_provision::{ClusterName, InstanceInfo};
use aloft_store::{Cluster, ClusterStatus, Job, Store};
use aloft_types::{FileMount, Task};
use anyhow::{Result, anyhow};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a cluster's agent cannot be asked.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotRunning(pub String);

/// The agent on a cluster's head node; a cluster that is not up (or whose head is not
/// running) is [`NotRunning`].
pub async fn head_agent(home: &Path, store: &Store, name: &str) -> Result<AgentClient> {
    Ok(head(home, store, name).await?.1)
}

/// The cluster (its handle) and the agent on its head node.
async fn head(home: &Path, store: &Store, name: &str) -> Result<(ClusterHandle, AgentClient)> {
    let quiet: Progress = Arc::new(|_: &str| {});
    let ClusterHandle {
        provider,
        record,
        context,
    } = open_cluster(home, store, name, Task::new(name), PathBuf::new(), quiet).await?;
    let live = matches!(record.status, ClusterStatus::Up | ClusterStatus::Degraded);
    let instances = if live {
        provider.query(&context.region, &context.cluster).await?
    } else {
        Vec::new()
    };
    if !live || !Health::of(record.num_nodes, &instances).head_up() {
        let status = serde_json::to_value(record.status)
            .ok()
            .and_then(|status| status.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(NotRunning(format!(
            "cluster `{name}` is {status}{}: its jobs are kept on its head node (`aloft start {name}` first)",
            if live {
                " (its head node is not running)"
            } else {
                ""
            }
        ))
        .into());
    }
    let client = agent_client(&context, &instances).map_err(|err| anyhow!(err.message))?;
    Ok((
        ClusterHandle {
            provider,
            record,
            context,
        },
        client,
    ))
}

/// Sets a cluster's autostop (`idle_minutes` `None`: off) on its head node's agent, which
/// stops or tears the cluster down by itself once idle, and records it.
pub async fn autostop(home: &Path, store: &Store, name: &str, setting: &Autostop) -> Result<()> {
    let (handle, client) = head(home, store, name).await?;
    set_autostop(
        store,
        handle.record,
        &client,
        handle.provider.as_ref(),
        setting,
    )
    .await
}

/// Sets the autostop of `record`'s cluster through its agent: a stop needs a cloud that can
/// stop the cluster's instances, and the cloud gets ready to power them off from inside.
pub async fn set_autostop(
    store: &Store,
    mut record: Cluster,
    client: &AgentClient,
    provider: &dyn aloft_provision::Provider,
    setting: &Autostop,
) -> Result<()> {
    if setting.idle_minutes.is_some() {
        if !setting.down {
            crate::launch::check_stoppable(&record.name, &record.cloud, record.spot, provider)?;
        }
        let cluster = ClusterName::new(record.name.clone())
            .map_err(|err| anyhow!("`{}`: {err}", record.name))?;
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

/// The cluster's jobs, oldest first.
pub async fn queue(home: &Path, store: &Store, name: &str) -> Result<Vec<Job>> {
    Ok(head_agent(home, store, name).await?.queue().await?)
}

/// Cancels jobs (those named, or every unfinished one); returns those it cancelled.
pub async fn cancel(
    home: &Path,
    store: &Store,
    name: &str,
    jobs: &[i64],
    all: bool,
) -> Result<Vec<Job>> {
    Ok(head_agent(home, store, name)
        .await?
        .cancel(jobs, all)
        .await?)
}

/// A port a cluster's task opened, and the address that reaches it (on the head node, as
/// SkyPilot's `status --endpoints`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub cluster: String,
    /// `8080`, or a range `9000-9010`.
    pub port: String,
    pub endpoint: String,
}

/// The endpoints of the recorded clusters (only those named, if any) whose task opened ports
/// and whose head node answers its cloud with an address.
pub async fn endpoints(home: &Path, store: &Store, only: &[String]) -> Result<Vec<Endpoint>> {
    let mut found = Vec::new();
    for record in store.cluster_list().await? {
        if !only.is_empty() && !only.contains(&record.name) {
            continue;
        }
        let ports: Vec<aloft_types::spec::PortRange> = record
            .resources
            .get("ports")
            .cloned()
            .and_then(|ports| serde_json::from_value(ports).ok())
            .unwrap_or_default();
        if ports.is_empty() {
            continue;
        }
        let provider = registry::access(home, &record.cloud).await?.provider;
        let cluster = ClusterName::new(record.name.clone())
            .map_err(|err| anyhow!("`{}`: {err}", record.name))?;
        let instances = provider.query(&record.region, &cluster).await?;
        let Some(address) = instances
            .iter()
            .find(|instance| instance.node_idx == 0)
            .and_then(InstanceInfo::ssh_address)
        else {
            continue;
        };
        for range in ports {
            let port = if range.first == range.last {
                range.first.to_string()
            } else {
                format!("{}-{}", range.first, range.last)
            };
            found.push(Endpoint {
                cluster: record.name.clone(),
                endpoint: format!("{address}:{port}"),
                port,
            });
        }
    }
    Ok(found)
}

/// The task as a job for the agent. Its secrets travel with it (to the agent's stdin, over
/// SSH) and reach the job's environment; the task must have been checked with
/// `Task::with_overrides` (a placeholder still unset here becomes empty). On a cluster launched
/// with a container image (`image_id: docker:<image>`), it runs in the cluster's container on
/// every node, with its workdir and file mounts mounted in.
pub fn job_spec(task: &Task, context: &LaunchContext) -> JobSpec {
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

/// The container a task's commands run in: the cluster's, when it was launched with a container
/// image (`context.image_id`; `check_fits` refused a task that names another), whatever image
/// the task names; `None`: they run on the nodes. The workdir's path is always mounted (a later
/// job may sync one), and so are the task's file mounts.
fn container_spec(task: &Task, context: &LaunchContext) -> Option<ContainerSpec> {
    let image = context.image_id.as_deref().and_then(container_image)?;
    let mut mounts = vec![context.expand_home(REMOTE_WORKDIR)];
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

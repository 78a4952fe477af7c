//! The launch operation: bring a cluster up and ready for jobs.
//!
//! Steps (each recorded before the next): `bootstrap` the region, `create_instances` (or find
//! the ones a previous attempt already made, by the cluster's tag), `connect` to every node with
//! its pinned host key, `install_agent` on the head node (the `aloft` binary, which keeps the
//! cluster's job queue: see `aloft-agent`), `open_ports` the task asks for, and `sync` the task's
//! workdir and file mounts. A failure unwinds: ports are closed and the instances this launch
//! made are terminated, and only those: a launch on a cluster that already had nodes (a stopped
//! cluster started again, a degraded one repaired) records them as [`LaunchParams::pre_existing`]
//! and never touches them. Jobs are then submitted to the agent on the cluster this leaves up.

use crate::{Done, Saga, Step, StepError};
use aloft_exec::{SshTarget, SshTransport, Transport};
use aloft_provision::{ClusterName, CreateRequest, InstanceInfo, InstanceState, Provider};
use aloft_store::OperationKind;
use aloft_types::{FileMount, Infra, Task};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// Where SkyPilot (and so existing task scripts) expect the workdir on a node.
pub const REMOTE_WORKDIR: &str = "~/sky_workdir";

/// Everything the launch steps need.
#[derive(Clone)]
pub struct LaunchContext {
    pub provider: Arc<dyn Provider>,
    pub cluster: ClusterName,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: String,
    pub num_nodes: u32,
    pub use_spot: bool,
    /// The image and root disk size the task's chosen resources ask for (`None`: the
    /// provider's defaults).
    pub image_id: Option<String>,
    /// The catalog's default image for the placement, below the provider's own configuration.
    pub default_image_id: Option<String>,
    pub disk_size_gb: Option<u32>,
    /// Ports the task's chosen resources ask to be open.
    pub ports: Vec<aloft_types::spec::PortRange>,
    /// Node indices of the cluster that existed before this launch: never terminated by it.
    pub pre_existing: Vec<u32>,
    pub task: Task,
    /// The directory relative paths in the task (workdir, file mounts) are relative to.
    pub base_dir: PathBuf,
    /// Login user and key on the nodes.
    pub ssh_user: String,
    pub ssh_key: PathBuf,
    /// Where per-node SSH state (pinned key, connection socket) lives.
    pub ssh_state_dir: PathBuf,
    /// The `aloft` binary to install on the head node as the cluster's agent; `None`: no agent
    /// (clusters that only need provisioning, as in failover tests).
    pub agent_binary: Option<PathBuf>,
    /// Progress lines for the user.
    pub progress: Arc<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for LaunchContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchContext")
            .field("provider", &self.provider.id())
            .field("cluster", &self.cluster)
            .field("region", &self.region)
            .field("zone", &self.zone)
            .field("instance_type", &self.instance_type)
            .field("num_nodes", &self.num_nodes)
            .finish_non_exhaustive()
    }
}

/// What a launch was asked to do, recorded with its operation: everything recovery needs to
/// undo it after its process died (with the provider the registry gives for `cloud`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LaunchParams {
    pub cloud: String,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: String,
    pub num_nodes: u32,
    pub use_spot: bool,
    #[serde(default)]
    pub ports: Vec<aloft_types::spec::PortRange>,
    #[serde(default)]
    pub pre_existing: Vec<u32>,
}

impl LaunchContext {
    /// What to record with the launch's operation.
    pub fn params(&self) -> LaunchParams {
        LaunchParams {
            cloud: self.provider.id().to_owned(),
            region: self.region.clone(),
            zone: self.zone.clone(),
            instance_type: self.instance_type.clone(),
            num_nodes: self.num_nodes,
            use_spot: self.use_spot,
            ports: self.ports.clone(),
            pre_existing: self.pre_existing.clone(),
        }
    }

    /// The login user's home on the nodes.
    pub fn remote_home(&self) -> String {
        if self.ssh_user == "root" {
            "/root".to_owned()
        } else {
            format!("/home/{}", self.ssh_user)
        }
    }

    /// `~/x` on the nodes, as an absolute path (transports quote paths, so `~` would not expand).
    pub fn expand_home(&self, path: &str) -> String {
        match path.strip_prefix("~/") {
            Some(rest) => format!("{}/{rest}", self.remote_home()),
            None if path == "~" => self.remote_home(),
            None => path.to_owned(),
        }
    }

    /// A transport to each node, head first, from the instances the provider reported.
    pub fn transports(
        &self,
        instances: &[InstanceInfo],
    ) -> Result<Vec<Arc<SshTransport>>, StepError> {
        instances
            .iter()
            .map(|instance| {
                let address = instance.ssh_address().ok_or_else(|| {
                    StepError::new(format!("instance {} has no address", instance.id))
                })?;
                let host_key = instance.ssh_host_key.clone().ok_or_else(|| {
                    StepError::new(format!(
                        "instance {} did not report its host key",
                        instance.id
                    ))
                })?;
                let target = SshTarget {
                    host: address.to_string(),
                    port: 22,
                    user: self.ssh_user.clone(),
                    identity_file: self.ssh_key.clone(),
                    host_key,
                };
                let dir = self.ssh_state_dir.join(format!(
                    "{}-{}",
                    self.cluster.as_str(),
                    instance.node_idx
                ));
                SshTransport::new(target, &dir)
                    .map(Arc::new)
                    .map_err(|err| StepError::new(err.to_string()))
            })
            .collect()
    }
}

/// A provider error as a step failure: capacity, quota and auth failures name the place they
/// rule out, so failover can block it and plan again (no message matching).
pub fn provision_failure(
    context: &LaunchContext,
    err: &aloft_provision::ProvisionError,
) -> StepError {
    use aloft_provision::Scope;
    let message = error_chain(err);
    let cloud = Some(context.provider.id().to_owned());
    match err.failover_scope() {
        Some(Scope::Zone(zone)) => StepError::blocking(
            message,
            Infra {
                cloud,
                region: Some(context.region.clone()),
                zone: Some(zone),
            },
        ),
        Some(Scope::Region(region)) => StepError::blocking(
            message,
            Infra {
                cloud,
                region: Some(region),
                zone: None,
            },
        ),
        Some(Scope::Cloud) => StepError::blocking(
            message,
            Infra {
                cloud,
                region: None,
                zone: None,
            },
        ),
        None => StepError::new(message),
    }
}

/// An error with its causes: `top: cause: cause`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The launch saga.
pub fn launch_saga() -> Saga<LaunchContext> {
    Saga::new(
        OperationKind::Launch,
        vec![
            Box::new(Bootstrap),
            Box::new(CreateInstances),
            Box::new(Connect),
            Box::new(InstallAgent),
            Box::new(OpenPorts),
            Box::new(SyncFiles),
        ],
    )
}

/// The launch saga's provisioning part alone (bootstrap and create, no SSH): what failover
/// exercises, and what brings a cluster's instances back.
pub fn provisioning_saga() -> Saga<LaunchContext> {
    Saga::new(
        OperationKind::Launch,
        vec![Box::new(Bootstrap), Box::new(CreateInstances)],
    )
}

/// The instances recorded by `create_instances`.
pub fn recorded_instances(done: Done<'_>) -> Result<Vec<InstanceInfo>, StepError> {
    let output = done
        .output(CreateInstances::NAME)
        .ok_or_else(|| StepError::new("no instances were recorded"))?;
    serde_json::from_value(output["instances"].clone())
        .map_err(|err| StepError::new(format!("recorded instances are unreadable: {err}")))
}

struct Bootstrap;

#[async_trait]
impl Step<LaunchContext> for Bootstrap {
    fn name(&self) -> &'static str {
        "bootstrap"
    }

    async fn run(&self, context: &LaunchContext, _: Done<'_>) -> Result<Value, StepError> {
        (context.progress)(&format!(
            "Bootstrapping {} region {}",
            context.provider.id(),
            context.region
        ));
        context
            .provider
            .bootstrap(&context.region)
            .await
            .map_err(|err| provision_failure(context, &err))?;
        // What recovery needs to find (and undo) the cluster after a crash.
        Ok(json!({"cloud": context.provider.id(), "region": context.region}))
    }

    async fn undo(&self, _: &LaunchContext, _: Option<&Value>) -> Result<(), StepError> {
        // Region defaults are shared by every cluster there; they stay.
        Ok(())
    }
}

struct CreateInstances;

impl CreateInstances {
    const NAME: &'static str = "create_instances";
}

#[async_trait]
impl Step<LaunchContext> for CreateInstances {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn run(&self, context: &LaunchContext, _: Done<'_>) -> Result<Value, StepError> {
        let provider_error =
            |err: aloft_provision::ProvisionError| provision_failure(context, &err);
        // Idempotent: a previous attempt may have made some of them already. What is there and
        // not usable (a preempted node, one left half-made) is replaced, never adopted; nodes of
        // the cluster from before this launch are kept as they are.
        let found = context
            .provider
            .query(&context.region, &context.cluster)
            .await
            .map_err(provider_error)?;
        let usable = |instance: &InstanceInfo| {
            matches!(
                instance.state,
                InstanceState::Running | InstanceState::Pending
            ) && instance.node_idx < context.num_nodes
        };
        let replace: Vec<u32> = found
            .iter()
            .filter(|instance| {
                !usable(instance) && !context.pre_existing.contains(&instance.node_idx)
            })
            .map(|instance| instance.node_idx)
            .collect();
        if !replace.is_empty() {
            (context.progress)(&format!(
                "Replacing node(s) {} of {} (not running)",
                node_list(&replace),
                context.cluster.as_str()
            ));
            context
                .provider
                .terminate_nodes(&context.region, &context.cluster, &replace)
                .await
                .map_err(provider_error)?;
        }
        let present: Vec<u32> = found
            .iter()
            .filter(|instance| usable(instance))
            .map(|instance| instance.node_idx)
            .collect();
        let missing: Vec<u32> = (0..context.num_nodes)
            .filter(|idx| !present.contains(idx))
            .collect();
        if !missing.is_empty() {
            (context.progress)(&format!(
                "Creating {} {} instance(s) in {}{}",
                missing.len(),
                context.instance_type,
                context.region,
                context
                    .zone
                    .as_deref()
                    .map(|zone| format!("/{zone}"))
                    .unwrap_or_default()
            ));
        }
        // One request per run of consecutive missing indices (node 1 of 0..3, say).
        for (first, count) in runs(&missing) {
            let request = CreateRequest {
                cluster: context.cluster.clone(),
                region: context.region.clone(),
                zone: context.zone.clone(),
                instance_type: context.instance_type.clone(),
                count,
                first_node_idx: first,
                use_spot: context.use_spot,
                // A container image (`docker:...`) is run by the agent on the default machine
                // image; only a machine image is the provider's business.
                image_id: context
                    .image_id
                    .clone()
                    .filter(|image| aloft_agent::container::container_image(image).is_none()),
                default_image_id: context.default_image_id.clone(),
                disk_size_gb: context.disk_size_gb,
            };
            context
                .provider
                .create_instances(&request)
                .await
                .map_err(provider_error)?;
        }
        let instances: Vec<InstanceInfo> = context
            .provider
            .query(&context.region, &context.cluster)
            .await
            .map_err(provider_error)?
            .into_iter()
            .filter(|instance| instance.node_idx < context.num_nodes)
            .collect();
        Ok(json!({"region": context.region, "instances": instances, "created": missing}))
    }

    async fn undo(&self, context: &LaunchContext, _: Option<&Value>) -> Result<(), StepError> {
        // Found by the cluster's tag, not from the output: a process that died while creating
        // recorded none, and what it made must go all the same.
        let undo_error = |err: aloft_provision::ProvisionError| StepError::new(error_chain(&err));
        if context.pre_existing.is_empty() {
            (context.progress)(&format!(
                "Terminating the instances of {}",
                context.cluster.as_str()
            ));
            return context
                .provider
                .terminate(&context.region, &context.cluster)
                .await
                .map_err(undo_error);
        }
        let made: Vec<u32> = context
            .provider
            .query(&context.region, &context.cluster)
            .await
            .map_err(undo_error)?
            .iter()
            .map(|instance| instance.node_idx)
            .filter(|idx| !context.pre_existing.contains(idx))
            .collect();
        if made.is_empty() {
            return Ok(());
        }
        (context.progress)(&format!(
            "Terminating node(s) {} of {} (made by this launch; nodes {} are kept)",
            node_list(&made),
            context.cluster.as_str(),
            node_list(&context.pre_existing)
        ));
        context
            .provider
            .terminate_nodes(&context.region, &context.cluster, &made)
            .await
            .map_err(undo_error)
    }
}

/// Consecutive runs in sorted indices, as (first, count): `[1, 2, 4]` is `[(1, 2), (4, 1)]`.
fn runs(indices: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &idx in indices {
        match runs.last_mut() {
            Some((first, count)) if *first + *count == idx => *count += 1,
            _ => runs.push((idx, 1)),
        }
    }
    runs
}

/// Node indices for messages: `0, 2, 3`.
pub fn node_list(indices: &[u32]) -> String {
    let texts: Vec<String> = indices.iter().map(u32::to_string).collect();
    texts.join(", ")
}

struct Connect;

#[async_trait]
impl Step<LaunchContext> for Connect {
    fn name(&self) -> &'static str {
        "connect"
    }

    async fn run(&self, context: &LaunchContext, done: Done<'_>) -> Result<Value, StepError> {
        let instances = recorded_instances(done)?;
        (context.progress)(&format!("Connecting to {} node(s)", instances.len()));
        // All at once: each first connection is a full SSH handshake.
        let mut connecting = tokio::task::JoinSet::new();
        for transport in context.transports(&instances)? {
            let progress = context.progress.clone();
            connecting.spawn(async move {
                // A node slow to answer is said, not waited on in silence; the transport gives
                // up at its deadline.
                transport
                    .connect_reporting(&mut |retry| progress(&retry.to_string()))
                    .await
            });
        }
        while let Some(joined) = connecting.join_next().await {
            joined
                .map_err(|err| StepError::new(format!("connecting: {err}")))?
                .map_err(|err| StepError::new(err.to_string()))?;
        }
        Ok(json!({"nodes": instances.len()}))
    }

    async fn undo(&self, _: &LaunchContext, _: Option<&Value>) -> Result<(), StepError> {
        Ok(())
    }
}

struct InstallAgent;

#[async_trait]
impl Step<LaunchContext> for InstallAgent {
    fn name(&self) -> &'static str {
        "install_agent"
    }

    async fn run(&self, context: &LaunchContext, done: Done<'_>) -> Result<Value, StepError> {
        let instances = recorded_instances(done)?;
        let copied = install_agent(context, &instances).await?;
        Ok(json!({"installed": context.agent_binary.is_some(), "copied": copied}))
    }

    async fn undo(&self, _: &LaunchContext, _: Option<&Value>) -> Result<(), StepError> {
        // It lives on the instances, which unwinding terminates.
        Ok(())
    }
}

/// The cluster as its agent needs to know it: nodes, addresses, host keys, how to power off.
pub fn cluster_info(
    context: &LaunchContext,
    instances: &[InstanceInfo],
) -> Result<aloft_agent::ClusterInfo, StepError> {
    let nodes = instances
        .iter()
        .map(|instance| {
            Ok(aloft_agent::NodeInfo {
                rank: instance.node_idx,
                address: instance
                    .private_address
                    .or(instance.public_address)
                    .ok_or_else(|| {
                        StepError::new(format!("instance {} has no address", instance.id))
                    })?
                    .to_string(),
                host_key: instance.ssh_host_key.clone().unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, StepError>>()?;
    let power_off = match (
        context.provider.power_off_command(false),
        context.provider.power_off_command(true),
    ) {
        (Some(stop), Some(terminate)) => Some(aloft_agent::PowerOff { stop, terminate }),
        _ => None,
    };
    Ok(aloft_agent::ClusterInfo {
        cluster: context.cluster.as_str().to_owned(),
        ssh_user: context.ssh_user.clone(),
        nodes,
        power_off,
    })
}

/// The agent on the cluster's head node (the first of `instances`).
pub fn agent_client(
    context: &LaunchContext,
    instances: &[InstanceInfo],
) -> Result<aloft_agent::AgentClient, StepError> {
    let head = context
        .transports(&instances[..instances.len().min(1)])?
        .into_iter()
        .next()
        .ok_or_else(|| StepError::new("the cluster has no nodes"))?;
    Ok(aloft_agent::AgentClient::new(head, context.remote_home()))
}

/// Installs (or refreshes) the agent on the head node and starts it: at launch, and when a
/// stopped cluster starts again (its addresses are recorded anew). Returns whether the binary
/// was copied (it is not when that build is already there).
pub async fn install_agent(
    context: &LaunchContext,
    instances: &[InstanceInfo],
) -> Result<bool, StepError> {
    let Some(binary) = &context.agent_binary else {
        return Ok(false);
    };
    (context.progress)("Starting the agent on the head node");
    let info = cluster_info(context, instances)?;
    agent_client(context, instances)?
        .install(binary, &context.ssh_key, &info)
        .await
        .map_err(|err| StepError::new(format!("installing the agent: {err}")))
}

struct SyncFiles;

#[async_trait]
impl Step<LaunchContext> for SyncFiles {
    fn name(&self) -> &'static str {
        "sync"
    }

    async fn run(&self, context: &LaunchContext, done: Done<'_>) -> Result<Value, StepError> {
        let instances = recorded_instances(done)?;
        let transports = context.transports(&instances)?;
        let copies = sync_task_files(context, &transports).await?;
        Ok(json!({"copies": copies}))
    }

    async fn undo(&self, _: &LaunchContext, _: Option<&Value>) -> Result<(), StepError> {
        Ok(())
    }
}

/// Copies the task's workdir (to [`REMOTE_WORKDIR`]) and local file mounts to every node;
/// returns how many copies were made. Used by launch and by `exec` on a running cluster.
pub async fn sync_task_files(
    context: &LaunchContext,
    transports: &[Arc<SshTransport>],
) -> Result<usize, StepError> {
    let mut copies: Vec<(PathBuf, String)> = Vec::new();
    if let Some(workdir) = &context.task.workdir {
        copies.push((context.base_dir.join(workdir), REMOTE_WORKDIR.to_owned()));
    }
    for (destination, mount) in &context.task.file_mounts {
        if let FileMount::Copy { source } = mount {
            if source.contains("://") {
                return Err(StepError::new(format!(
                    "file mount {destination}: bucket sources ({source}) are not supported yet"
                )));
            }
            copies.push((context.base_dir.join(source), destination.clone()));
        }
    }
    for (local, remote) in &copies {
        (context.progress)(&format!(
            "Syncing {} to {remote} on every node",
            local.display()
        ));
        // `~` is the remote home: the transports quote paths, so expand it here.
        let remote = context.expand_home(remote);
        for transport in transports {
            transport
                .upload(local, &remote)
                .await
                .map_err(|err| StepError::new(err.to_string()))?;
        }
    }
    Ok(copies.len())
}

/// Opens the task's ports on the cluster (the cluster's own firewall, like a security group).
struct OpenPorts;

#[async_trait]
impl Step<LaunchContext> for OpenPorts {
    fn name(&self) -> &'static str {
        "open_ports"
    }

    async fn run(&self, context: &LaunchContext, _: Done<'_>) -> Result<Value, StepError> {
        if !context.ports.is_empty() {
            let listed: Vec<String> = context
                .ports
                .iter()
                .map(|p| {
                    if p.first == p.last {
                        p.first.to_string()
                    } else {
                        format!("{}-{}", p.first, p.last)
                    }
                })
                .collect();
            (context.progress)(&format!("Opening ports {}", listed.join(", ")));
            context
                .provider
                .open_ports(&context.region, &context.cluster, &context.ports)
                .await
                .map_err(|err| provision_failure(context, &err))?;
        }
        Ok(json!({"ports": context.ports.len()}))
    }

    async fn undo(&self, context: &LaunchContext, _: Option<&Value>) -> Result<(), StepError> {
        // A cluster that existed before this launch may have had these ports open already.
        if context.ports.is_empty() || !context.pre_existing.is_empty() {
            return Ok(());
        }
        context
            .provider
            .close_ports(&context.region, &context.cluster, &context.ports)
            .await
            .map_err(|err| StepError::new(err.to_string()))
    }
}

/// What a failover launch ended with.
#[derive(Debug)]
pub struct FailoverOutcome {
    /// The last attempt's outcome.
    pub outcome: crate::Outcome,
    /// The context of the last attempt (where it ran, or last tried to).
    pub context: Option<LaunchContext>,
    /// Places ruled out along the way, in the order they failed.
    pub blocked: Vec<Infra>,
}

/// Launches with failover: plan, try; when an attempt fails in a way that rules out a place
/// (no capacity in a zone, no quota in a region, a cloud refusing our credentials), block that
/// place, plan again, and try the next best placement, until one succeeds or planning finds
/// nothing left (`plan` returns `Err` with its reason). Each attempt is its own recorded, unwound
/// operation, so nothing of a failed attempt is left behind.
pub async fn launch_with_failover(
    saga: &Saga<LaunchContext>,
    store: &aloft_store::Store,
    mut plan: impl FnMut(&[Infra]) -> Result<LaunchContext, String>,
) -> Result<FailoverOutcome, FailoverError> {
    let mut blocked: Vec<Infra> = Vec::new();
    loop {
        let context = plan(&blocked).map_err(|reason| FailoverError::NoPlan {
            reason,
            blocked: blocked.clone(),
        })?;
        // A new cluster's name must be free where it lands: instances already tagged with it
        // there belong to no launch of ours (left by a crashed run, or another aloft home) and
        // are neither adopted nor, on an unwind, destroyed.
        if context.pre_existing.is_empty() {
            let found = context
                .provider
                .query(&context.region, &context.cluster)
                .await
                .map_err(|source| FailoverError::Query {
                    cluster: context.cluster.as_str().to_owned(),
                    source,
                })?;
            if !found.is_empty() {
                return Err(FailoverError::Unrecorded {
                    cluster: context.cluster.as_str().to_owned(),
                    cloud: context.provider.id().to_owned(),
                    region: context.region.clone(),
                    count: found.len(),
                });
            }
        }
        let params = serde_json::to_value(context.params()).unwrap_or_default();
        let outcome = saga
            .start(store, context.cluster.as_str(), &params, &context)
            .await?;
        match &outcome {
            crate::Outcome::Unwound {
                blocked: Some(place),
                error,
                ..
            } if !blocked.contains(place) => {
                (context.progress)(&format!(
                    "{error}; trying the next best placement without {place}"
                ));
                blocked.push(place.clone());
            }
            _ => {
                return Ok(FailoverOutcome {
                    outcome,
                    context: Some(context),
                    blocked,
                });
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error("no placement left to try{}: {reason}", blocked_list(.blocked))]
    NoPlan { reason: String, blocked: Vec<Infra> },
    #[error(
        "{count} instance(s) tagged with cluster `{cluster}` already exist on {cloud} ({region}), and no launch here made them (left by an interrupted run, or recorded in another $ALOFT_HOME): `aloft status --refresh` shows them, `aloft down {cluster}` removes them, or launch under another name"
    )]
    Unrecorded {
        cluster: String,
        cloud: String,
        region: String,
        count: usize,
    },
    #[error("asking the cloud for the instances of `{cluster}`")]
    Query {
        cluster: String,
        #[source]
        source: aloft_provision::ProvisionError,
    },
    #[error(transparent)]
    Ops(#[from] crate::OpsError),
}

fn blocked_list(blocked: &[Infra]) -> String {
    if blocked.is_empty() {
        String::new()
    } else {
        let places: Vec<String> = blocked.iter().map(ToString::to_string).collect();
        format!(" (blocked after failures: {})", places.join(", "))
    }
}

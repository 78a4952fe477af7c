//! The AWS cloud: EC2 instances through the official AWS SDK for Rust.
//!
//! [`AwsCloud`] implements [`aloft_provision::Provider`]. Its pieces:
//!
//! - `client`: one SDK configuration (the standard credential chain or a profile, an optional
//!   endpoint override, the SDK's retry with backoff for throttling) and one EC2 client per
//!   region;
//! - `bootstrap`: per account and region, aloft's SSH key pair and a security group allowing
//!   SSH, cached on disk and re-created when they vanish;
//! - `network`: the VPC to launch into (the default one or the configured one) and a subnet of
//!   it per zone;
//! - `instances`: one `RunInstances` per node, tagged `<prefix>-cluster`/`<prefix>-node`, found
//!   again by tag;
//! - `error`: the only place EC2 error codes are read, turning them into the
//!   [`ProvisionError`] classes failover acts on.
//!
//! Each cluster also gets its own security group (`<prefix>-cluster-<name>`): its members reach
//! each other through it, the task's ports are opened on it, and `terminate` deletes it.
//!
//! [`check`] answers "can aloft use AWS with these credentials, and if not, why" with two cheap
//! authenticated calls, for `aloft check`.

mod bootstrap;
mod client;
mod config;
mod error;
mod instances;
mod network;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use aloft_provision::{
    Capabilities, ClusterName, CreateRequest, InstanceInfo, InstanceState, Operation, PortRange,
    Provider, ProvisionError, Scope,
};
use async_trait::async_trait;
use aws_sdk_ec2::types::{IpPermission, UserIdGroupPair};

pub use bootstrap::RegionBootstrap;
pub use client::FALLBACK_REGION;
pub use config::{AwsConfig, ENDPOINT_ENV, StaticCredentials};

use crate::bootstrap::{
    authorize_ingress, create_security_group, find_security_group, revoke_ingress,
    tcp_from_anywhere_v4, tcp_from_anywhere_v6,
};
use crate::client::Clients;
use crate::error::{AwsCallError, Place, classify};
use crate::instances::{Ec2Instance, LaunchSpec, ResolvedImage, Target};
use crate::network::RegionNetwork;

/// The AWS cloud. Cheap to clone; clones share clients, caches and locks.
#[derive(Clone, Debug)]
pub struct AwsCloud {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: AwsConfig,
    clients: Clients,
    /// The account the credentials belong to, learnt once (it names the bootstrap cache).
    account: tokio::sync::OnceCell<String>,
    /// Bootstrap results of this process by region; also serializes bootstraps, which create
    /// the key file and security groups.
    bootstrapped: tokio::sync::Mutex<HashMap<String, RegionBootstrap>>,
    /// The VPC and subnets of each region, resolved once.
    networks: tokio::sync::Mutex<HashMap<String, RegionNetwork>>,
    /// Resolved images by (region, architecture).
    images: tokio::sync::Mutex<HashMap<(String, &'static str), ResolvedImage>>,
}

impl AwsCloud {
    /// The provider id.
    pub const ID: &'static str = "aws";

    /// Checks the configuration and loads the SDK configuration (profiles are read, nothing is
    /// sent yet). A bad configuration is `InvalidRequest` naming the field.
    pub async fn new(config: AwsConfig) -> Result<Self, ProvisionError> {
        config
            .validate()
            .map_err(|reason| ProvisionError::InvalidRequest {
                operation: Operation::Bootstrap,
                detail: format!("AWS configuration: {reason}"),
                source: None,
            })?;
        let sdk_config = client::load_sdk_config(&config).await;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                clients: Clients::new(sdk_config),
                account: tokio::sync::OnceCell::new(),
                bootstrapped: tokio::sync::Mutex::new(HashMap::new()),
                networks: tokio::sync::Mutex::new(HashMap::new()),
                images: tokio::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &AwsConfig {
        &self.inner.config
    }

    /// The user to log in as (the default Ubuntu images' user, or the configured one).
    pub fn ssh_user(&self) -> &str {
        &self.inner.config.ssh_user
    }

    /// The private key every instance authorizes (created by `bootstrap`, mode 0600). The public
    /// key is beside it with `.pub` appended.
    pub fn client_key_path(&self) -> PathBuf {
        bootstrap::key_path(&self.inner.config)
    }

    /// The account id of the credentials (one STS `GetCallerIdentity`, then remembered).
    pub async fn account_id(&self) -> Result<String, ProvisionError> {
        self.inner
            .account
            .get_or_try_init(|| async {
                let home = self.inner.clients.home_region();
                let output = self
                    .inner
                    .clients
                    .sts()
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|err| {
                        classify(
                            Operation::Bootstrap,
                            Place {
                                region: &home,
                                zone: None,
                            },
                            AwsCallError::from_sdk("GetCallerIdentity", err),
                        )
                    })?;
                output
                    .account()
                    .map(str::to_owned)
                    .ok_or_else(|| ProvisionError::Other {
                        operation: Operation::Bootstrap,
                        detail: "STS GetCallerIdentity named no account".into(),
                        source: None,
                    })
            })
            .await
            .cloned()
    }

    /// Where the bootstrap of `region` is cached for the current credentials' account.
    pub async fn bootstrap_cache_path(&self, region: &str) -> Result<PathBuf, ProvisionError> {
        let account = self.account_id().await?;
        Ok(bootstrap::cache_path(&self.inner.config, &account, region))
    }

    /// Bootstraps `region` (verifying cached resources in EC2, re-creating what vanished) and
    /// returns the ids.
    pub async fn bootstrap_region(&self, region: &str) -> Result<RegionBootstrap, ProvisionError> {
        let mut bootstrapped = self.inner.bootstrapped.lock().await;
        let config = &self.inner.config;
        let cache_path = self.bootstrap_cache_path(region).await?;
        let public_key = bootstrap::ensure_local_key(config).await?;
        let cached = bootstrap::read_cache(&cache_path);
        let ec2 = self.inner.clients.ec2(region);
        let network = self.network(region).await?;
        let state = bootstrap::bootstrap_region(
            config,
            &ec2,
            region,
            &network.vpc_id,
            cached.clone(),
            &public_key,
        )
        .await?;
        if cached.as_ref() != Some(&state) {
            bootstrap::write_cache(&cache_path, &state)?;
        }
        bootstrapped.insert(region.to_owned(), state.clone());
        Ok(state)
    }

    /// The bootstrap of `region` from this process, or a fresh one.
    async fn bootstrapped(&self, region: &str) -> Result<RegionBootstrap, ProvisionError> {
        if let Some(state) = self.inner.bootstrapped.lock().await.get(region) {
            return Ok(state.clone());
        }
        self.bootstrap_region(region).await
    }

    /// The VPC and subnets to launch into in `region` (looked up once per process).
    async fn network(&self, region: &str) -> Result<RegionNetwork, ProvisionError> {
        let mut networks = self.inner.networks.lock().await;
        if let Some(network) = networks.get(region) {
            return Ok(network.clone());
        }
        let ec2 = self.inner.clients.ec2(region);
        let network = network::resolve(&self.inner.config, &ec2, region).await?;
        networks.insert(region.to_owned(), network.clone());
        Ok(network)
    }

    /// The image to launch: the task's own (`requested`), else the configured one, else the
    /// catalog's (`catalog_default`), else the newest Ubuntu for the region and architecture
    /// (looked up once per process).
    async fn image_for(
        &self,
        region: &str,
        arch: &'static str,
        requested: Option<&str>,
        catalog_default: Option<&str>,
    ) -> Result<ResolvedImage, ProvisionError> {
        let config = &self.inner.config;
        let ec2 = self.inner.clients.ec2(region);
        if requested.is_some() || catalog_default.is_some() {
            return instances::resolve_image(
                config,
                &ec2,
                region,
                arch,
                requested,
                catalog_default,
            )
            .await;
        }
        let key = (region.to_owned(), arch);
        if let Some(image) = self.inner.images.lock().await.get(&key) {
            return Ok(image.clone());
        }
        let image = instances::resolve_image(config, &ec2, region, arch, None, None).await?;
        self.inner.images.lock().await.insert(key, image.clone());
        Ok(image)
    }

    /// Every cluster with live instances in `region` that carries this installation's tags,
    /// whether or not aloft's state knows it: the way to find orphans (instances left by a
    /// crashed launch or a lost state directory).
    pub async fn clusters_in_region(
        &self,
        region: &str,
    ) -> Result<BTreeMap<ClusterName, Vec<InstanceInfo>>, ProvisionError> {
        let ec2 = self.inner.clients.ec2(region);
        let found =
            instances::describe_tagged(&self.inner.config, &ec2, Operation::Query, region, None)
                .await?;
        let mut clusters: BTreeMap<ClusterName, Vec<InstanceInfo>> = BTreeMap::new();
        for instance in found {
            clusters
                .entry(instance.info.cluster.clone())
                .or_default()
                .push(instance.info);
        }
        Ok(clusters)
    }

    /// Whether these credentials can use EC2, and why not; see [`check`].
    pub async fn check(&self) -> CheckReport {
        let region = self.inner.clients.home_region();
        let mut report = CheckReport {
            cloud: Self::ID.into(),
            usable: false,
            reason: None,
            account: None,
            region: region.clone(),
            enabled_regions: Vec::new(),
        };
        match self.account_id().await {
            Ok(account) => report.account = Some(account),
            Err(err) => {
                report.reason = Some(error_chain(&err));
                return report;
            }
        }
        let described = self
            .inner
            .clients
            .ec2(&region)
            .describe_regions()
            .send()
            .await;
        match described {
            Ok(output) => {
                report.usable = true;
                report.enabled_regions = output
                    .regions()
                    .iter()
                    .filter_map(|region| region.region_name().map(str::to_owned))
                    .collect();
                report.enabled_regions.sort();
            }
            Err(err) => {
                let err = classify(
                    Operation::Query,
                    Place {
                        region: &region,
                        zone: None,
                    },
                    AwsCallError::from_sdk("DescribeRegions", err),
                );
                report.reason = Some(error_chain(&err));
            }
        }
        report
    }

    /// The cluster's own security group, if it exists.
    async fn cluster_security_group(
        &self,
        operation: Operation,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<Option<String>, ProvisionError> {
        let ec2 = self.inner.clients.ec2(region);
        let name = self
            .inner
            .config
            .cluster_security_group_name(cluster.as_str());
        // Cluster names are unique per installation, so the name alone finds the group in
        // whichever VPC the cluster was launched into.
        find_security_group(&ec2, None, &name)
            .await
            .map_err(|err| classify(operation, Place { region, zone: None }, err))
    }

    /// Creates the cluster's security group (members reach each other on every port) or
    /// returns the existing one.
    async fn ensure_cluster_security_group(
        &self,
        region: &str,
        vpc_id: &str,
        cluster: &ClusterName,
    ) -> Result<String, ProvisionError> {
        let config = &self.inner.config;
        let ec2 = self.inner.clients.ec2(region);
        let fail = |err| {
            classify(
                Operation::CreateInstances,
                Place { region, zone: None },
                err,
            )
        };
        let name = config.cluster_security_group_name(cluster.as_str());
        let group_id = match find_security_group(&ec2, Some(vpc_id), &name)
            .await
            .map_err(fail)?
        {
            Some(id) => id,
            None => create_security_group(
                &ec2,
                vpc_id,
                &name,
                &format!("aloft: cluster {cluster}"),
                &[instances::tag(&config.cluster_tag_key(), cluster.as_str())],
            )
            .await
            .map_err(fail)?,
        };
        let members = IpPermission::builder()
            .ip_protocol("-1")
            .user_id_group_pairs(UserIdGroupPair::builder().group_id(&group_id).build())
            .build();
        authorize_ingress(&ec2, &group_id, members)
            .await
            .map_err(fail)?;
        Ok(group_id)
    }

    async fn describe_cluster(
        &self,
        operation: Operation,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<Ec2Instance>, ProvisionError> {
        let ec2 = self.inner.clients.ec2(region);
        instances::describe_tagged(&self.inner.config, &ec2, operation, region, Some(cluster)).await
    }

    /// Waits for `ids` to run (and, if configured, accept SSH) and returns the cluster.
    async fn wait_running(
        &self,
        operation: Operation,
        region: &str,
        cluster: &ClusterName,
        ids: &[String],
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        let config = &self.inner.config;
        let ec2 = self.inner.clients.ec2(region);
        let running =
            instances::wait_for(config, &ec2, operation, region, ids, Target::Running).await?;
        if config.wait_for_ssh {
            instances::wait_for_ssh(config, operation, &running).await?;
        }
        let mut infos: Vec<InstanceInfo> = running.into_iter().map(|i| i.info).collect();
        infos.retain(|info| &info.cluster == cluster);
        infos.sort_by_key(|info| info.node_idx);
        Ok(infos)
    }

    async fn change_ports(
        &self,
        operation: Operation,
        region: &str,
        cluster: &ClusterName,
        ports: &[PortRange],
    ) -> Result<(), ProvisionError> {
        let Some(group_id) = self
            .cluster_security_group(operation, region, cluster)
            .await?
        else {
            return Err(ProvisionError::NotFound {
                operation,
                detail: format!(
                    "cluster {cluster} has no security group in region {region} (was it \
                     launched by aloft?)"
                ),
                source: None,
            });
        };
        let ec2 = self.inner.clients.ec2(region);
        let fail = |err| classify(operation, Place { region, zone: None }, err);
        for range in ports {
            if range.first > range.last {
                return Err(ProvisionError::InvalidRequest {
                    operation,
                    detail: format!("port range {}-{} is empty", range.first, range.last),
                    source: None,
                });
            }
            // IPv4 and IPv6 separately: EC2 refuses a whole call if one of its rules already
            // exists (or is already gone), which would leave the other half undone.
            for permission in [
                tcp_from_anywhere_v4(range.first, range.last),
                tcp_from_anywhere_v6(range.first, range.last),
            ] {
                if operation == Operation::OpenPorts {
                    authorize_ingress(&ec2, &group_id, permission)
                        .await
                        .map_err(fail)?;
                } else {
                    revoke_ingress(&ec2, &group_id, permission)
                        .await
                        .map_err(fail)?;
                }
            }
        }
        Ok(())
    }
}

/// The answer to "can aloft use AWS?", as `aloft check` prints it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckReport {
    /// Always `aws`.
    pub cloud: String,
    pub usable: bool,
    /// Why not, with the whole cause chain (e.g. no credentials found, rejected key, endpoint
    /// not reachable).
    pub reason: Option<String>,
    /// The account the credentials belong to.
    pub account: Option<String>,
    /// The region the check ran against.
    pub region: String,
    /// The regions enabled for the account.
    pub enabled_regions: Vec<String>,
}

/// Checks whether AWS can be used with `config`: STS `GetCallerIdentity` (are there credentials,
/// does AWS accept them) and EC2 `DescribeRegions` (may they use EC2, is the endpoint right).
/// Never fails: every problem is a reason in the report.
pub async fn check(config: AwsConfig) -> CheckReport {
    let region = config
        .home_region
        .clone()
        .unwrap_or_else(|| FALLBACK_REGION.to_owned());
    match AwsCloud::new(config).await {
        Ok(cloud) => cloud.check().await,
        Err(err) => CheckReport {
            cloud: AwsCloud::ID.into(),
            usable: false,
            reason: Some(error_chain(&err)),
            account: None,
            region,
            enabled_regions: Vec::new(),
        },
    }
}

/// An error and its causes on one line, each layer once.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait]
impl Provider for AwsCloud {
    fn id(&self) -> &str {
        Self::ID
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            spot: true,
            stop_start: true,
            // EC2 refuses to stop one-time spot instances.
            stop_spot: false,
            multi_node: true,
            open_ports: true,
        }
    }

    /// A shutdown from inside; whether EC2 then stops or terminates the instance is its
    /// shutdown behaviour, which [`Provider::prepare_power_off`] sets. So the instance needs no
    /// AWS credentials of its own to tear itself down.
    fn power_off_command(&self, terminate: bool) -> Option<String> {
        let _ = terminate;
        Some(
            "if [ \"$(id -u)\" -eq 0 ]; then shutdown -h now; else sudo -n shutdown -h now; fi"
                .into(),
        )
    }

    async fn prepare_power_off(
        &self,
        region: &str,
        cluster: &ClusterName,
        terminate: bool,
    ) -> Result<(), ProvisionError> {
        let found = self
            .describe_cluster(Operation::Stop, region, cluster)
            .await?;
        let ec2 = self.inner.clients.ec2(region);
        let behavior = if terminate { "terminate" } else { "stop" };
        for instance in found {
            ec2.modify_instance_attribute()
                .instance_id(&instance.info.id)
                .attribute(
                    aws_sdk_ec2::types::InstanceAttributeName::InstanceInitiatedShutdownBehavior,
                )
                .value(behavior)
                .send()
                .await
                .map_err(|err| {
                    classify(
                        Operation::Stop,
                        Place { region, zone: None },
                        AwsCallError::from_sdk("ModifyInstanceAttribute", err),
                    )
                })?;
        }
        Ok(())
    }

    /// The regions this account has a bootstrap cache for: aloft never launches elsewhere.
    async fn regions_in_use(&self) -> Result<Vec<String>, ProvisionError> {
        let account = self.account_id().await?;
        Ok(bootstrap::cached_regions(&self.inner.config, &account))
    }

    async fn bootstrap(&self, region: &str) -> Result<(), ProvisionError> {
        self.bootstrap_region(region).await.map(|_| ())
    }

    async fn list_clusters(&self, region: &str) -> Result<Vec<ClusterName>, ProvisionError> {
        Ok(self.clusters_in_region(region).await?.into_keys().collect())
    }

    /// With a zone planned, launches there. Without one (the catalog prices the region as a
    /// whole), tries the zones where the VPC has subnets in turn, removing what a failed zone
    /// left before the next, so a shortage in one zone doesn't rule out the whole region.
    async fn create_instances(
        &self,
        request: &CreateRequest,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        if let Some(zone) = &request.zone {
            return self.create_in_zone(request, zone).await;
        }
        let region = request.region.as_str();
        let want_public = !self.inner.config.use_internal_ips;
        let network = self.network(region).await?;
        // No subnet at all: the region is unavailable, as a zone without one is.
        network.subnet_for(region, None, want_public)?;
        // A cluster that already has nodes grows in their zone.
        let existing = self
            .describe_cluster(Operation::CreateInstances, region, &request.cluster)
            .await?;
        let zones = match existing
            .iter()
            .find(|instance| instance.info.state != InstanceState::Terminating)
        {
            Some(instance) => vec![instance.info.zone.clone()],
            None => network.zones(want_public),
        };
        let mut failures = Vec::new();
        for zone in zones {
            match self.create_in_zone(request, &zone).await {
                Err(err) if err.failover_scope() == Some(Scope::Zone(zone.clone())) => {
                    self.remove_nodes_in_zone(region, &request.cluster, &zone)
                        .await?;
                    failures.push(error_chain(&err));
                }
                other => return other,
            }
        }
        Err(ProvisionError::Capacity {
            operation: Operation::CreateInstances,
            scope: Scope::Region(region.to_owned()),
            detail: format!("no zone could take the cluster: {}", failures.join("; ")),
            source: None,
        })
    }

    async fn query(
        &self,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        let found = self
            .describe_cluster(Operation::Query, region, cluster)
            .await?;
        Ok(found.into_iter().map(|instance| instance.info).collect())
    }

    async fn stop(&self, region: &str, cluster: &ClusterName) -> Result<(), ProvisionError> {
        let found = self
            .describe_cluster(Operation::Stop, region, cluster)
            .await?;
        let to_stop: Vec<String> = found
            .iter()
            .filter(|i| {
                matches!(
                    i.info.state,
                    InstanceState::Pending | InstanceState::Running
                )
            })
            .map(|i| i.info.id.clone())
            .collect();
        let ec2 = self.inner.clients.ec2(region);
        if !to_stop.is_empty() {
            ec2.stop_instances()
                .set_instance_ids(Some(to_stop))
                .send()
                .await
                .map_err(|err| {
                    classify(
                        Operation::Stop,
                        Place { region, zone: None },
                        AwsCallError::from_sdk("StopInstances", err),
                    )
                })?;
        }
        let all: Vec<String> = found
            .iter()
            .filter(|i| i.info.state != InstanceState::Terminating)
            .map(|i| i.info.id.clone())
            .collect();
        instances::wait_for(
            &self.inner.config,
            &ec2,
            Operation::Stop,
            region,
            &all,
            Target::Stopped,
        )
        .await
        .map(|_| ())
    }

    async fn start(
        &self,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        let found = self
            .describe_cluster(Operation::Start, region, cluster)
            .await?;
        let ids: Vec<String> = found
            .iter()
            .filter(|i| i.info.state != InstanceState::Terminating)
            .map(|i| i.info.id.clone())
            .collect();
        self.start_ids(Operation::Start, region, &ids).await?;
        self.wait_running(Operation::Start, region, cluster, &ids)
            .await
    }

    async fn terminate(&self, region: &str, cluster: &ClusterName) -> Result<(), ProvisionError> {
        let found = self
            .describe_cluster(Operation::Terminate, region, cluster)
            .await?;
        let ids: Vec<String> = found.iter().map(|i| i.info.id.clone()).collect();
        let ec2 = self.inner.clients.ec2(region);
        let fail = |err| classify(Operation::Terminate, Place { region, zone: None }, err);
        if !ids.is_empty() {
            ec2.terminate_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|err| fail(AwsCallError::from_sdk("TerminateInstances", err)))?;
            // The cluster's security group can only go once no instance uses it.
            instances::wait_for(
                &self.inner.config,
                &ec2,
                Operation::Terminate,
                region,
                &ids,
                Target::Gone,
            )
            .await?;
        }
        self.delete_cluster_security_group(region, cluster).await
    }

    async fn terminate_nodes(
        &self,
        region: &str,
        cluster: &ClusterName,
        nodes: &[u32],
    ) -> Result<(), ProvisionError> {
        let ids: Vec<String> = self
            .describe_cluster(Operation::Terminate, region, cluster)
            .await?
            .iter()
            .filter(|instance| nodes.contains(&instance.info.node_idx))
            .map(|instance| instance.info.id.clone())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let ec2 = self.inner.clients.ec2(region);
        let fail = |err| classify(Operation::Terminate, Place { region, zone: None }, err);
        ec2.terminate_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .map_err(|err| fail(AwsCallError::from_sdk("TerminateInstances", err)))?;
        // Gone before returning, so a replacement with the same node index is never confused
        // with the instance it replaces. The cluster's security group stays: others use it.
        instances::wait_for(
            &self.inner.config,
            &ec2,
            Operation::Terminate,
            region,
            &ids,
            Target::Gone,
        )
        .await?;
        Ok(())
    }

    async fn open_ports(
        &self,
        region: &str,
        cluster: &ClusterName,
        ports: &[PortRange],
    ) -> Result<(), ProvisionError> {
        self.change_ports(Operation::OpenPorts, region, cluster, ports)
            .await
    }

    async fn close_ports(
        &self,
        region: &str,
        cluster: &ClusterName,
        ports: &[PortRange],
    ) -> Result<(), ProvisionError> {
        self.change_ports(Operation::ClosePorts, region, cluster, ports)
            .await
    }
}

impl AwsCloud {
    /// Starts the given instances once none of them is still stopping.
    async fn start_ids(
        &self,
        operation: Operation,
        region: &str,
        ids: &[String],
    ) -> Result<(), ProvisionError> {
        if ids.is_empty() {
            return Ok(());
        }
        let config = &self.inner.config;
        let ec2 = self.inner.clients.ec2(region);
        let now = instances::describe_ids(config, &ec2, operation, region, ids).await?;
        let stopping: Vec<String> = now
            .iter()
            .filter(|i| i.info.state == InstanceState::Stopping)
            .map(|i| i.info.id.clone())
            .collect();
        if !stopping.is_empty() {
            instances::wait_for(config, &ec2, operation, region, &stopping, Target::Stopped)
                .await?;
        }
        let to_start: Vec<String> = now
            .iter()
            .filter(|i| {
                matches!(
                    i.info.state,
                    InstanceState::Stopped | InstanceState::Stopping
                )
            })
            .map(|i| i.info.id.clone())
            .collect();
        if to_start.is_empty() {
            return Ok(());
        }
        ec2.start_instances()
            .set_instance_ids(Some(to_start))
            .send()
            .await
            .map_err(|err| {
                classify(
                    operation,
                    Place { region, zone: None },
                    AwsCallError::from_sdk("StartInstances", err),
                )
            })?;
        Ok(())
    }

    /// Deletes the cluster's security group. EC2 refuses while a terminated instance's network
    /// interface still holds it (`DependencyViolation`, classified transient), so retry until
    /// the state timeout.
    async fn delete_cluster_security_group(
        &self,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<(), ProvisionError> {
        let config = &self.inner.config;
        let ec2 = self.inner.clients.ec2(region);
        let Some(group_id) = self
            .cluster_security_group(Operation::Terminate, region, cluster)
            .await?
        else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + config.state_timeout();
        loop {
            let deleted = ec2.delete_security_group().group_id(&group_id).send().await;
            let err = match deleted {
                Ok(_) => return Ok(()),
                Err(err) => AwsCallError::from_sdk("DeleteSecurityGroup", err),
            };
            if error::has_code(&err, error::codes::GROUP_NOT_FOUND)
                || error::has_code(&err, error::codes::GROUP_ID_NOT_FOUND)
            {
                return Ok(());
            }
            let err = classify(Operation::Terminate, Place { region, zone: None }, err);
            if !err.is_retryable() || tokio::time::Instant::now() >= deadline {
                return Err(err);
            }
            tokio::time::sleep(config.poll_interval()).await;
        }
    }
}

impl AwsCloud {
    /// Creates the request's nodes in `zone` (or starts them, if stopped).
    async fn create_in_zone(
        &self,
        request: &CreateRequest,
        zone: &str,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        let region = request.region.as_str();
        let config = &self.inner.config;
        let ec2 = self.inner.clients.ec2(region);
        let place = Place {
            region,
            zone: Some(zone),
        };
        let bootstrap = self.bootstrapped(region).await?;
        let network = self.network(region).await?;
        let subnet = network.subnet_for(region, Some(zone), !config.use_internal_ips)?;

        let cluster_group = self
            .ensure_cluster_security_group(region, &network.vpc_id, &request.cluster)
            .await?;
        // Idempotent: nodes that already exist (a repeated call, a resumed launch) are kept.
        let existing = self
            .describe_cluster(Operation::CreateInstances, region, &request.cluster)
            .await?;
        let last = request.first_node_idx.saturating_add(request.count);
        let wanted = request.first_node_idx..last;
        let mut ids: Vec<String> = existing
            .iter()
            .filter(|instance| wanted.contains(&instance.info.node_idx))
            .filter(|instance| instance.info.state != InstanceState::Terminating)
            .map(|instance| instance.info.id.clone())
            .collect();
        let missing: Vec<u32> = wanted
            .clone()
            .filter(|idx| {
                !existing.iter().any(|instance| {
                    instance.info.node_idx == *idx
                        && instance.info.state != InstanceState::Terminating
                })
            })
            .collect();
        if !missing.is_empty() {
            let arch = instances::architecture_of(&ec2, place, &request.instance_type).await?;
            let image = self
                .image_for(
                    region,
                    arch,
                    request.image_id.as_deref(),
                    request.default_image_id.as_deref(),
                )
                .await?;
            let disk_size_gb = request.disk_size_gb.unwrap_or(config.disk_size_gb);
            if !(8..=16384).contains(&disk_size_gb) {
                return Err(ProvisionError::InvalidRequest {
                    operation: Operation::CreateInstances,
                    detail: format!("disk size {disk_size_gb} GB: EC2 takes 8 to 16384 GB"),
                    source: None,
                });
            }
            for node_idx in missing {
                let host_key = bootstrap::generate_host_key(config).await?;
                let spec = LaunchSpec {
                    cluster: &request.cluster,
                    node_idx,
                    zone: Some(zone),
                    instance_type: &request.instance_type,
                    use_spot: request.use_spot,
                    image: &image,
                    disk_size_gb,
                    key_pair_name: &bootstrap.key_pair_name,
                    subnet,
                    security_group_ids: [&bootstrap.ssh_security_group_id, &cluster_group],
                    host_key: &host_key,
                };
                ids.push(instances::run_instance(config, &ec2, region, &spec).await?);
            }
        }
        // Stopped (or stopping) nodes of an earlier launch are started rather than duplicated.
        let stopped: Vec<String> = existing
            .iter()
            .filter(|instance| {
                wanted.contains(&instance.info.node_idx)
                    && matches!(
                        instance.info.state,
                        InstanceState::Stopped | InstanceState::Stopping
                    )
            })
            .map(|instance| instance.info.id.clone())
            .collect();
        if !stopped.is_empty() {
            self.start_ids(Operation::CreateInstances, region, &stopped)
                .await?;
        }
        self.wait_running(Operation::CreateInstances, region, &request.cluster, &ids)
            .await
    }

    /// Terminates the cluster's instances in `zone` (what a failed attempt there left), without
    /// waiting: terminating instances no longer count as nodes.
    async fn remove_nodes_in_zone(
        &self,
        region: &str,
        cluster: &ClusterName,
        zone: &str,
    ) -> Result<(), ProvisionError> {
        let ids: Vec<String> = self
            .describe_cluster(Operation::CreateInstances, region, cluster)
            .await?
            .into_iter()
            .filter(|instance| instance.info.zone == zone)
            .map(|instance| instance.info.id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        self.inner
            .clients
            .ec2(region)
            .terminate_instances()
            .set_instance_ids(Some(ids))
            .send()
            .await
            .map_err(|err| {
                classify(
                    Operation::CreateInstances,
                    Place {
                        region,
                        zone: Some(zone),
                    },
                    AwsCallError::from_sdk("TerminateInstances", err),
                )
            })?;
        Ok(())
    }
}

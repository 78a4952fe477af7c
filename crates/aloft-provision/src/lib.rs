//! The provider interface: what aloft needs from a cloud to run clusters on it.
//!
//! One [`Provider`] implementation exists per compatibility layer (`aloft-provider-local`, and
//! later AWS, GCP, Azure, Kubernetes). Callers hold adapters as `Arc<dyn Provider>`, so the trait
//! is object-safe and its async methods are boxed (`async-trait`).
//!
//! The interface is deliberately small and cluster-oriented: instances are created in batches
//! tagged with a cluster name and a node index, and every later call addresses the cluster by
//! name. That is what lets a persisted launch operation be recovered after a crash: it only needs
//! the cluster name and region to find (or clean up) what it made. The contract each adapter
//! must honour is in `docs/specs/provider.md`.
//!
//! Errors are classified in the type ([`ProvisionError`]) so that failover never parses
//! messages.

mod error;
mod types;

use async_trait::async_trait;

pub use aloft_types::spec::PortRange;
pub use error::{BoxError, Operation, ProvisionError, Scope};
pub use types::{
    Capabilities, ClusterName, ClusterState, CreateRequest, InstanceInfo, InstanceState,
    InvalidClusterName,
};

/// A cloud (or cloud-like system) that can run the instances of a cluster.
///
/// Every method is idempotent: repeating a call that already succeeded succeeds again without
/// changing anything (terminating a terminated cluster, opening an open port). See
/// `docs/specs/provider.md` for the full contract.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider's ID: a lowercase noun named after the service (`local`, `aws`).
    fn id(&self) -> &str;

    /// What this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// A shell command that, run as the login user on one of this provider's instances, makes
    /// that instance stop itself (`terminate`: terminate itself), the way a VM runs `poweroff`.
    /// The head-node agent runs it on every node for autostop, so a cluster can stop while the
    /// user's machine is off. `None` (the default): instances cannot, and autostop is refused.
    fn power_off_command(&self, terminate: bool) -> Option<String> {
        let _ = terminate;
        None
    }

    /// Readies the cluster's instances for [`Provider::power_off_command`] with this
    /// `terminate`, where the cloud decides outside the instance what a power-off means (EC2's
    /// shutdown behaviour). Called when autostop is set. The default does nothing.
    async fn prepare_power_off(
        &self,
        region: &str,
        cluster: &ClusterName,
        terminate: bool,
    ) -> Result<(), ProvisionError> {
        let _ = (region, cluster, terminate);
        Ok(())
    }

    /// The regions where this provider may have made instances (where it bootstrapped), for a
    /// reconcile pass that looks for orphans with [`Provider::list_clusters`]. The default
    /// names none.
    async fn regions_in_use(&self) -> Result<Vec<String>, ProvisionError> {
        Ok(Vec::new())
    }

    /// Per-region, one-time setup: keys, default firewall rules, networks. Idempotent; the
    /// launch operation calls it before every creation.
    async fn bootstrap(&self, region: &str) -> Result<(), ProvisionError>;

    /// Creates `request.count` instances and returns them once they are running and their SSH
    /// port accepts connections (for providers that can tell).
    ///
    /// On error, instances already made stay tagged with the cluster name, so [`Provider::query`]
    /// finds them and [`Provider::terminate`] undoes the call.
    async fn create_instances(
        &self,
        request: &CreateRequest,
    ) -> Result<Vec<InstanceInfo>, ProvisionError>;

    /// The clusters that have instances in `region`, found by the cluster tag: what a reconcile
    /// pass compares with aloft's records to find orphans (instances of a cluster aloft has
    /// forgotten, say after a crash). The default finds none: adapters should implement it.
    async fn list_clusters(&self, region: &str) -> Result<Vec<ClusterName>, ProvisionError> {
        let _ = region;
        Ok(Vec::new())
    }

    /// The instances of `cluster` in `region`, ordered by node index. An unknown cluster has no
    /// instances (an empty list, not an error).
    async fn query(
        &self,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<InstanceInfo>, ProvisionError>;

    /// Stops every instance of the cluster, keeping disks and addresses.
    async fn stop(&self, region: &str, cluster: &ClusterName) -> Result<(), ProvisionError>;

    /// Starts the stopped instances of the cluster and returns them once running, like
    /// [`Provider::create_instances`].
    async fn start(
        &self,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<InstanceInfo>, ProvisionError>;

    /// Deletes every instance of the cluster and whatever was made for it alone.
    async fn terminate(&self, region: &str, cluster: &ClusterName) -> Result<(), ProvisionError>;

    /// Deletes the instances of the cluster with these node indices (a lost node being
    /// replaced, or the nodes one launch added to a cluster that existed before it), leaving
    /// the others and what the cluster shares untouched. Indices with no instance are skipped.
    async fn terminate_nodes(
        &self,
        region: &str,
        cluster: &ClusterName,
        nodes: &[u32],
    ) -> Result<(), ProvisionError>;

    /// Lets TCP traffic from anywhere reach `ports` on every instance of the cluster. Members of
    /// a cluster can always reach each other, and port 22 is always open.
    async fn open_ports(
        &self,
        region: &str,
        cluster: &ClusterName,
        ports: &[PortRange],
    ) -> Result<(), ProvisionError>;

    /// Lets every instance of the cluster accept any traffic from `peers`, as it does from its
    /// own members: the nodes of the other clusters of a job group, whose tasks talk to each
    /// other. Replaces the cluster's previous list (an empty list removes it); it lives as long
    /// as the cluster. Returns `false` where the provider cannot do this (the default): the
    /// clusters then reach each other only as far as the cloud's network allows.
    async fn admit_peers(
        &self,
        region: &str,
        cluster: &ClusterName,
        peers: &[std::net::IpAddr],
    ) -> Result<bool, ProvisionError> {
        let _ = (region, cluster, peers);
        Ok(false)
    }

    /// Undoes [`Provider::open_ports`]. New connections to a closed port are dropped (they time
    /// out, as with a cloud security group); established ones may survive.
    async fn close_ports(
        &self,
        region: &str,
        cluster: &ClusterName,
        ports: &[PortRange],
    ) -> Result<(), ProvisionError>;
}

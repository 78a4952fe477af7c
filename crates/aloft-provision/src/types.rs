//! The data a provider takes and returns: cluster names, creation requests, instances and
//! their states.
//!
//! These types are persisted (the launch saga stores them between steps), so they are serde
//! types and their enums are `snake_case`. Fields may be added; renaming one is a migration.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The name a user gives a cluster; every instance of the cluster is tagged with it.
///
/// Lowercase ASCII letters, digits and `-`, starting with a letter, not ending with `-`, at most
/// [`ClusterName::MAX_LEN`] characters. That fits every cloud's tag and label rules and is a
/// valid host name label, so adapters can use it verbatim.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClusterName(String);

impl ClusterName {
    /// Long enough for humans, short enough to leave room for a node suffix in a host name.
    pub const MAX_LEN: usize = 40;

    /// Checks `name` against the rules above.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidClusterName> {
        let name = name.into();
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let starts_with_letter = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if valid_chars && starts_with_letter && !name.ends_with('-') && name.len() <= Self::MAX_LEN
        {
            Ok(Self(name))
        } else {
            Err(InvalidClusterName { name })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ClusterName {
    type Error = InvalidClusterName;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

impl From<ClusterName> for String {
    fn from(name: ClusterName) -> Self {
        name.0
    }
}

/// A cluster name that breaks the rules of [`ClusterName`].
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid cluster name {name:?}: use lowercase letters, digits and '-', start with a letter, \
     don't end with '-', at most {max} characters",
    max = ClusterName::MAX_LEN
)]
pub struct InvalidClusterName {
    pub name: String,
}

/// What a provider can do. Callers check these before asking (e.g. the optimizer's plan is
/// filtered on `spot`, `aloft stop` refuses early without `stop_start`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Spot (preemptible) instances can be requested.
    pub spot: bool,
    /// Instances can be stopped and started again with their disk and address.
    pub stop_start: bool,
    /// Spot instances can be stopped too (EC2 refuses to stop one-time spot instances).
    pub stop_spot: bool,
    /// Clusters can have more than one node.
    pub multi_node: bool,
    /// Ports can be opened and closed after creation.
    pub open_ports: bool,
}

/// Create `count` instances of one type in one zone, for one cluster.
///
/// Instance `i` of the request gets node index `first_node_idx + i`; node 0 is the head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    pub cluster: ClusterName,
    pub region: String,
    /// `None` lets the provider pick a zone in `region`.
    pub zone: Option<String>,
    pub instance_type: String,
    pub count: u32,
    pub first_node_idx: u32,
    pub use_spot: bool,
    /// The task's image (`image_id`), overriding the provider's default; providers without
    /// images (the local cloud) ignore it.
    #[serde(default)]
    pub image_id: Option<String>,
    /// The catalog's default image for the region and instance type, used when neither the task
    /// nor the provider's own configuration names one.
    #[serde(default)]
    pub default_image_id: Option<String>,
    /// The task's root disk size in GB (`disk_size`), overriding the provider's default;
    /// providers without disks to size (the local cloud) ignore it.
    #[serde(default)]
    pub disk_size_gb: Option<u32>,
}

/// The lifecycle state of one instance, as the provider reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Created, not yet running.
    Pending,
    /// Running; for providers that can tell, its SSH port accepts connections.
    Running,
    Stopping,
    /// Stopped with its disk kept; `start` brings it back.
    Stopped,
    /// Being deleted.
    Terminating,
    /// Gone (some clouds keep listing terminated instances for a while).
    Terminated,
}

/// One instance as a provider reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// The provider's own ID for the instance.
    pub id: String,
    pub cluster: ClusterName,
    pub node_idx: u32,
    pub zone: String,
    pub instance_type: String,
    pub state: InstanceState,
    /// The address other nodes of the cluster use.
    pub private_address: Option<IpAddr>,
    /// The address the broker uses, when it differs from `private_address`.
    pub public_address: Option<IpAddr>,
    /// The SSH host public key (`ssh-ed25519 AAAA…`), when the provider knows it. The transport
    /// pins it instead of trusting on first use.
    pub ssh_host_key: Option<String>,
}

impl InstanceInfo {
    /// Where the broker connects: the public address if there is one, else the private one.
    pub fn ssh_address(&self) -> Option<IpAddr> {
        self.public_address.or(self.private_address)
    }
}

/// The state of a whole cluster, derived from its instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterState {
    /// Every instance is running.
    Up,
    /// Every instance is stopped.
    Stopped,
    /// No instance left.
    Terminated,
    /// Anything else: some running, some not, or in transition.
    Partial,
}

impl ClusterState {
    /// Summarizes the instances of one cluster (terminated ones count as absent).
    pub fn of(instances: &[InstanceInfo]) -> Self {
        let live: Vec<InstanceState> = instances
            .iter()
            .map(|instance| instance.state)
            .filter(|state| *state != InstanceState::Terminated)
            .collect();
        if live.is_empty() {
            Self::Terminated
        } else if live.iter().all(|state| *state == InstanceState::Running) {
            Self::Up
        } else if live.iter().all(|state| *state == InstanceState::Stopped) {
            Self::Stopped
        } else {
            Self::Partial
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names() {
        for good in ["a", "my-cluster", "c1", "x-2-y"] {
            assert!(ClusterName::new(good).is_ok(), "{good}");
        }
        let too_long = "a".repeat(ClusterName::MAX_LEN + 1);
        for bad in ["", "1abc", "-a", "a-", "A", "a_b", "a.b", too_long.as_str()] {
            assert!(ClusterName::new(bad).is_err(), "{bad}");
        }
        let parsed: Result<ClusterName, _> = serde_json::from_str("\"Bad\"");
        assert!(parsed.is_err());
    }

    fn instance(state: InstanceState) -> InstanceInfo {
        InstanceInfo {
            id: "i".into(),
            cluster: ClusterName::new("c").unwrap(),
            node_idx: 0,
            zone: "z".into(),
            instance_type: "t".into(),
            state,
            private_address: None,
            public_address: None,
            ssh_host_key: None,
        }
    }

    #[test]
    fn cluster_state_summary() {
        use InstanceState::*;
        let check = |states: &[InstanceState], expect: ClusterState| {
            let instances: Vec<_> = states.iter().map(|s| instance(*s)).collect();
            assert_eq!(ClusterState::of(&instances), expect, "{states:?}");
        };
        check(&[], ClusterState::Terminated);
        check(&[Terminated], ClusterState::Terminated);
        check(&[Running, Running], ClusterState::Up);
        check(&[Running, Terminated], ClusterState::Up);
        check(&[Stopped, Stopped], ClusterState::Stopped);
        check(&[Running, Stopped], ClusterState::Partial);
        check(&[Pending], ClusterState::Partial);
    }

    #[test]
    fn states_are_snake_case() {
        let json = serde_json::to_string(&InstanceState::Terminating).unwrap();
        assert_eq!(json, "\"terminating\"");
        let json = serde_json::to_string(&ClusterState::Partial).unwrap();
        assert_eq!(json, "\"partial\"");
    }
}

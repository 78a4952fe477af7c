//! Failover against a fake cloud: a small real implementation of `Provider` whose zones have a
//! capacity. The cheapest zone is full, so the launch must block it, plan again, and land in the
//! next zone, leaving nothing behind in the first.

use aloft_ops::Outcome;
use aloft_ops::launch::{LaunchContext, launch_saga, launch_with_failover, provisioning_saga};
use aloft_provision::{
    Capabilities, ClusterName, CreateRequest, InstanceInfo, InstanceState, Operation, PortRange,
    Provider, ProvisionError, Scope,
};
use aloft_store::Store;
use aloft_types::{Infra, Task};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A cloud with one region and per-zone room for instances.
#[derive(Debug)]
struct FakeCloud {
    capacity: Mutex<BTreeMap<String, u32>>,
    /// Regions this account cannot use (bootstrap says `Unavailable`).
    unavailable: Mutex<Vec<String>>,
    instances: Mutex<Vec<InstanceInfo>>,
    creates: Mutex<Vec<String>>,
    /// The machine images create requests asked for (the task's, the catalog's default).
    images: Mutex<Vec<(Option<String>, Option<String>)>>,
}

impl FakeCloud {
    fn new(capacity: &[(&str, u32)]) -> FakeCloud {
        FakeCloud {
            capacity: Mutex::new(
                capacity
                    .iter()
                    .map(|(zone, n)| (zone.to_string(), *n))
                    .collect(),
            ),
            unavailable: Mutex::new(Vec::new()),
            instances: Mutex::new(Vec::new()),
            creates: Mutex::new(Vec::new()),
            images: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Provider for FakeCloud {
    fn id(&self) -> &str {
        "fake"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            spot: false,
            stop_start: false,
            stop_spot: false,
            multi_node: true,
            open_ports: false,
        }
    }

    async fn bootstrap(&self, region: &str) -> Result<(), ProvisionError> {
        if self.unavailable.lock().unwrap().iter().any(|r| r == region) {
            return Err(ProvisionError::Unavailable {
                operation: Operation::Bootstrap,
                scope: Scope::Region(region.to_owned()),
                detail: "no default VPC".to_owned(),
                source: None,
            });
        }
        Ok(())
    }

    async fn create_instances(
        &self,
        request: &CreateRequest,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        let zone = request.zone.clone().unwrap_or_default();
        self.creates.lock().unwrap().push(zone.clone());
        self.images
            .lock()
            .unwrap()
            .push((request.image_id.clone(), request.default_image_id.clone()));
        let mut capacity = self.capacity.lock().unwrap();
        let room = capacity.get(&zone).copied().unwrap_or(0);
        if room < request.count {
            return Err(ProvisionError::Capacity {
                operation: Operation::CreateInstances,
                scope: Scope::Zone(zone),
                detail: format!("room for {room}, asked for {}", request.count),
                source: None,
            });
        }
        capacity.insert(zone.clone(), room - request.count);
        let made: Vec<InstanceInfo> = (0..request.count)
            .map(|idx| InstanceInfo {
                id: format!("i-{zone}-{idx}"),
                cluster: request.cluster.clone(),
                node_idx: request.first_node_idx + idx,
                zone: zone.clone(),
                instance_type: request.instance_type.clone(),
                state: InstanceState::Running,
                private_address: None,
                public_address: None,
                ssh_host_key: None,
            })
            .collect();
        self.instances.lock().unwrap().extend(made.clone());
        Ok(made)
    }

    async fn query(
        &self,
        _region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        Ok(self
            .instances
            .lock()
            .unwrap()
            .iter()
            .filter(|i| &i.cluster == cluster)
            .cloned()
            .collect())
    }

    async fn stop(&self, _region: &str, _cluster: &ClusterName) -> Result<(), ProvisionError> {
        Ok(())
    }

    async fn start(
        &self,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        self.query(region, cluster).await
    }

    async fn terminate(&self, _region: &str, cluster: &ClusterName) -> Result<(), ProvisionError> {
        self.instances
            .lock()
            .unwrap()
            .retain(|i| &i.cluster != cluster);
        Ok(())
    }

    async fn terminate_nodes(
        &self,
        _region: &str,
        cluster: &ClusterName,
        nodes: &[u32],
    ) -> Result<(), ProvisionError> {
        self.instances
            .lock()
            .unwrap()
            .retain(|i| &i.cluster != cluster || !nodes.contains(&i.node_idx));
        Ok(())
    }

    async fn open_ports(
        &self,
        _: &str,
        _: &ClusterName,
        _: &[PortRange],
    ) -> Result<(), ProvisionError> {
        Ok(())
    }

    async fn close_ports(
        &self,
        _: &str,
        _: &ClusterName,
        _: &[PortRange],
    ) -> Result<(), ProvisionError> {
        Ok(())
    }
}

fn context(cloud: &Arc<FakeCloud>, zone: &str, nodes: u32) -> LaunchContext {
    LaunchContext {
        provider: cloud.clone(),
        cluster: ClusterName::new("fo").unwrap(),
        region: "r1".to_owned(),
        zone: Some(zone.to_owned()),
        instance_type: "t.small".to_owned(),
        num_nodes: nodes,
        use_spot: false,
        ports: Vec::new(),
        pre_existing: Vec::new(),
        task: Task::new("fo"),
        base_dir: PathBuf::new(),
        ssh_user: "root".to_owned(),
        ssh_key: PathBuf::new(),
        ssh_state_dir: PathBuf::new(),
        agent_binary: None,
        image_id: None,
        default_image_id: None,
        disk_size_gb: None,
        progress: Arc::new(|_: &str| {}),
    }
}

/// Plans like the optimizer would over zones in price order: the cheapest one not blocked.
fn planner(
    cloud: Arc<FakeCloud>,
    zones: &'static [&'static str],
    nodes: u32,
) -> impl FnMut(&[Infra]) -> Result<LaunchContext, String> {
    move |blocked: &[Infra]| {
        zones
            .iter()
            .find(|zone| !blocked.iter().any(|b| b.zone.as_deref() == Some(**zone)))
            .map(|zone| context(&cloud, zone, nodes))
            .ok_or_else(|| "every zone is blocked".to_owned())
    }
}

async fn store(tag: &str) -> (Store, PathBuf) {
    let dir = std::env::temp_dir().join(format!("aloft-failover-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Store::open(&dir.join("state.db")).await.unwrap(), dir)
}

#[tokio::test]
async fn a_full_zone_is_blocked_and_the_next_best_is_used() {
    let (store, dir) = store("next").await;
    let cloud = Arc::new(FakeCloud::new(&[
        ("z-cheap", 0),
        ("z-next", 4),
        ("z-dear", 4),
    ]));
    let result = launch_with_failover(
        &provisioning_saga(),
        &store,
        planner(cloud.clone(), &["z-cheap", "z-next", "z-dear"], 2),
    )
    .await
    .unwrap();
    assert!(
        matches!(result.outcome, Outcome::Succeeded { .. }),
        "{:?}",
        result.outcome
    );
    assert_eq!(
        result.blocked,
        vec![Infra::parse("fake/r1/z-cheap").unwrap()]
    );
    assert_eq!(result.context.unwrap().zone.as_deref(), Some("z-next"));
    assert_eq!(*cloud.creates.lock().unwrap(), ["z-cheap", "z-next"]);
    let zones: Vec<String> = cloud
        .instances
        .lock()
        .unwrap()
        .iter()
        .map(|i| i.zone.clone())
        .collect();
    assert_eq!(zones, ["z-next", "z-next"]);
    // Each attempt is its own recorded operation: the first was unwound, the second succeeded.
    assert!(store.operation_list_unfinished().await.unwrap().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_container_image_is_never_asked_of_the_provider_as_a_machine_image() {
    let (store, dir) = store("container-image").await;
    let cloud = Arc::new(FakeCloud::new(&[("z-a", 2)]));
    let plan = |image: &'static str| {
        let cloud = cloud.clone();
        move |_: &[Infra]| {
            Ok(LaunchContext {
                image_id: Some(image.to_owned()),
                default_image_id: Some("ami-default".to_owned()),
                ..context(&cloud, "z-a", 1)
            })
        }
    };
    for image in [
        "docker:nvcr.io/nvidia/pytorch:24.01-py3",
        "ami-0123456789abcdef0",
    ] {
        let result = launch_with_failover(&provisioning_saga(), &store, plan(image))
            .await
            .unwrap();
        assert!(
            matches!(result.outcome, Outcome::Succeeded { .. }),
            "{:?}",
            result.outcome
        );
        cloud.instances.lock().unwrap().clear();
    }
    // The container image leaves the machine image to the defaults; a machine image is passed.
    assert_eq!(
        *cloud.images.lock().unwrap(),
        [
            (None, Some("ami-default".to_owned())),
            (
                Some("ami-0123456789abcdef0".to_owned()),
                Some("ami-default".to_owned())
            )
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn when_every_zone_is_full_the_error_says_what_was_tried() {
    let (store, dir) = store("none").await;
    let cloud = Arc::new(FakeCloud::new(&[("z-a", 1), ("z-b", 0)]));
    let err = launch_with_failover(
        &provisioning_saga(),
        &store,
        planner(cloud.clone(), &["z-a", "z-b"], 2),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no placement left to try (blocked after failures: fake/r1/z-a, fake/r1/z-b): every zone is blocked"
    );
    assert!(
        cloud.instances.lock().unwrap().is_empty(),
        "nothing left behind"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A running instance of cluster `fo` in zone `z`, as one made by an earlier launch.
fn instance(node_idx: u32, state: InstanceState) -> InstanceInfo {
    InstanceInfo {
        id: format!("i-old-{node_idx}"),
        cluster: ClusterName::new("fo").unwrap(),
        node_idx,
        zone: "z".to_owned(),
        instance_type: "t.small".to_owned(),
        state,
        private_address: None,
        public_address: None,
        ssh_host_key: None,
    }
}

#[tokio::test]
async fn a_region_that_fails_to_bootstrap_is_blocked_and_the_next_is_tried() {
    let (store, dir) = store("bootstrap").await;
    let cloud = Arc::new(FakeCloud::new(&[("z", 4)]));
    cloud.unavailable.lock().unwrap().push("r-novpc".to_owned());
    let regions = ["r-novpc", "r-ok"];
    let planner = {
        let cloud = cloud.clone();
        move |blocked: &[Infra]| {
            regions
                .iter()
                .find(|region| {
                    !blocked
                        .iter()
                        .any(|b| b.region.as_deref() == Some(**region))
                })
                .map(|region| LaunchContext {
                    region: (*region).to_owned(),
                    ..context(&cloud, "z", 1)
                })
                .ok_or_else(|| "every region is blocked".to_owned())
        }
    };
    let result = launch_with_failover(&provisioning_saga(), &store, planner)
        .await
        .unwrap();
    assert!(
        matches!(result.outcome, Outcome::Succeeded { .. }),
        "{:?}",
        result.outcome
    );
    assert_eq!(result.blocked, vec![Infra::parse("fake/r-novpc").unwrap()]);
    assert_eq!(result.context.unwrap().region, "r-ok");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn undoing_a_relaunch_removes_only_the_nodes_it_made() {
    // Node 0 was there before; this launch adds node 1, then fails after creating it (no host
    // key to connect with). The unwind removes node 1 and keeps node 0.
    let (store, dir) = store("relaunch").await;
    let cloud = Arc::new(FakeCloud::new(&[("z", 4)]));
    cloud
        .instances
        .lock()
        .unwrap()
        .push(instance(0, InstanceState::Running));
    let relaunch = LaunchContext {
        pre_existing: vec![0],
        ..context(&cloud, "z", 2)
    };
    let outcome = launch_saga()
        .start(
            &store,
            "fo",
            &serde_json::to_value(relaunch.params()).unwrap(),
            &relaunch,
        )
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Unwound { .. }), "{outcome:?}");
    let left: Vec<(String, u32)> = cloud
        .instances
        .lock()
        .unwrap()
        .iter()
        .map(|i| (i.id.clone(), i.node_idx))
        .collect();
    assert_eq!(
        left,
        [("i-old-0".to_owned(), 0)],
        "node 0 survives the unwind"
    );
    // Only node 1 was asked for.
    assert_eq!(*cloud.creates.lock().unwrap(), ["z"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_node_that_is_not_running_is_replaced_not_adopted() {
    // A half-made or preempted node 1 of a 2-node cluster: it is terminated and made anew;
    // the running node 0 is kept.
    let (store, dir) = store("replace").await;
    let cloud = Arc::new(FakeCloud::new(&[("z", 4)]));
    cloud.instances.lock().unwrap().extend([
        instance(0, InstanceState::Running),
        instance(1, InstanceState::Terminated),
    ]);
    let repair = LaunchContext {
        pre_existing: vec![0],
        ..context(&cloud, "z", 2)
    };
    let outcome = provisioning_saga()
        .start(
            &store,
            "fo",
            &serde_json::to_value(repair.params()).unwrap(),
            &repair,
        )
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Succeeded { .. }), "{outcome:?}");
    let nodes: Vec<(String, u32, InstanceState)> = cloud
        .instances
        .lock()
        .unwrap()
        .iter()
        .map(|i| (i.id.clone(), i.node_idx, i.state))
        .collect();
    assert_eq!(
        nodes,
        [
            ("i-old-0".to_owned(), 0, InstanceState::Running),
            ("i-z-0".to_owned(), 1, InstanceState::Running)
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

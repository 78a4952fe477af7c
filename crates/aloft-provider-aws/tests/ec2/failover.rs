//! Failover on the adapter's error classes, against moto answering as EC2 does when a zone is
//! out of capacity or a region's vCPU quota is used up.
//!
//! The loop below is failover as the launch operation does it, reduced to the provider calls:
//! try the plan's placements in order, and on an error skip what its `failover_scope` names.
//! The classes come from the adapter's classification of moto's real error responses (injected
//! by `moto_launcher.py`); nothing here looks at messages.

use std::collections::HashSet;

use aloft_provider_aws::AwsCloud;
use aloft_provision::{ClusterName, CreateRequest, InstanceInfo, Provider, ProvisionError, Scope};

use crate::harness::Moto;

/// Where a launch ended, and the errors that moved it on.
struct Outcome {
    placed: Option<(String, String, Vec<InstanceInfo>)>,
    skipped: Vec<ProvisionError>,
}

async fn launch_with_failover(
    cloud: &AwsCloud,
    cluster: &ClusterName,
    instance_type: &str,
    plan: &[(&str, &str)],
) -> Outcome {
    let mut blocked: HashSet<Scope> = HashSet::new();
    let mut skipped = Vec::new();
    for (region, zone) in plan {
        if blocked.contains(&Scope::Cloud)
            || blocked.contains(&Scope::Region(region.to_string()))
            || blocked.contains(&Scope::Zone(zone.to_string()))
        {
            continue;
        }
        cloud.bootstrap(region).await.expect("bootstrap");
        let request = CreateRequest {
            cluster: cluster.clone(),
            region: region.to_string(),
            zone: Some(zone.to_string()),
            instance_type: instance_type.into(),
            count: 2,
            first_node_idx: 0,
            use_spot: false,
            image_id: None,
            default_image_id: None,
            disk_size_gb: None,
        };
        match cloud.create_instances(&request).await {
            Ok(instances) => {
                return Outcome {
                    placed: Some((region.to_string(), zone.to_string(), instances)),
                    skipped,
                };
            }
            Err(err) => {
                // Undo whatever the failed attempt made, as the launch saga's unwind does.
                cloud.terminate(region, cluster).await.expect("cleanup");
                let scope = err
                    .failover_scope()
                    .unwrap_or_else(|| panic!("not a failover error: {err:?}"));
                blocked.insert(scope);
                skipped.push(err);
            }
        }
    }
    Outcome {
        placed: None,
        skipped,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_moves_to_the_next_zone() {
    // g5.xlarge is out of capacity in us-east-1a only; t3.medium is fine everywhere.
    let moto = Moto::start_with(&[("ALOFT_MOTO_ICE", "g5.xlarge@us-east-1a")]);
    let cloud = moto.cloud().await;
    let name = ClusterName::new("gpu").unwrap();
    let plan = [
        ("us-east-1", "us-east-1a"),
        ("us-east-1", "us-east-1b"),
        ("us-west-2", "us-west-2a"),
    ];
    let outcome = launch_with_failover(&cloud, &name, "g5.xlarge", &plan).await;
    assert_eq!(outcome.skipped.len(), 1);
    let err = &outcome.skipped[0];
    assert!(matches!(err, ProvisionError::Capacity { .. }), "{err:?}");
    assert_eq!(err.failover_scope(), Some(Scope::Zone("us-east-1a".into())));
    let (region, zone, instances) = outcome.placed.expect("placed");
    assert_eq!(
        (region.as_str(), zone.as_str()),
        ("us-east-1", "us-east-1b")
    );
    assert_eq!(instances.len(), 2);
    assert!(instances.iter().all(|i| i.zone == "us-east-1b"));
    // Nothing is left behind in the full zone.
    let everything = cloud.clusters_in_region("us-east-1").await.unwrap();
    assert!(everything[&name].iter().all(|i| i.zone == "us-east-1b"));

    // The ICE applies to the type only: another type in the full zone works.
    let other = ClusterName::new("cpu").unwrap();
    let outcome = launch_with_failover(&cloud, &other, "t3.medium", &plan).await;
    assert!(outcome.skipped.is_empty());
    assert_eq!(outcome.placed.unwrap().1, "us-east-1a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_skips_the_whole_region() {
    let moto = Moto::start_with(&[("ALOFT_MOTO_VCPU_LIMIT", "us-east-2")]);
    let cloud = moto.cloud().await;
    let name = ClusterName::new("big").unwrap();
    let plan = [
        ("us-east-2", "us-east-2a"),
        ("us-east-2", "us-east-2b"),
        ("us-west-2", "us-west-2b"),
    ];
    let outcome = launch_with_failover(&cloud, &name, "m6i.2xlarge", &plan).await;
    // One error, not two: us-east-2b was skipped without asking.
    assert_eq!(outcome.skipped.len(), 1);
    let err = &outcome.skipped[0];
    assert!(matches!(err, ProvisionError::Quota { .. }), "{err:?}");
    assert_eq!(
        err.failover_scope(),
        Some(Scope::Region("us-east-2".into()))
    );
    let (region, zone, _) = outcome.placed.expect("placed");
    assert_eq!(
        (region.as_str(), zone.as_str()),
        ("us-west-2", "us-west-2b")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_zone_full_means_no_placement() {
    let moto = Moto::start_with(&[("ALOFT_MOTO_ICE", "g5.xlarge")]);
    let cloud = moto.cloud().await;
    let name = ClusterName::new("nowhere").unwrap();
    let plan = [("us-east-1", "us-east-1a"), ("us-west-2", "us-west-2a")];
    let outcome = launch_with_failover(&cloud, &name, "g5.xlarge", &plan).await;
    assert!(outcome.placed.is_none());
    let scopes: Vec<_> = outcome.skipped.iter().map(|e| e.failover_scope()).collect();
    assert_eq!(
        scopes,
        [
            Some(Scope::Zone("us-east-1a".into())),
            Some(Scope::Zone("us-west-2a".into()))
        ]
    );
    assert!(
        cloud
            .clusters_in_region("us-east-1")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_failing_halfway_leaves_only_what_terminate_removes() {
    // The first node gets in, the second finds the zone full.
    let moto = Moto::start_with(&[
        ("ALOFT_MOTO_ICE", "g5.xlarge@us-east-1a"),
        ("ALOFT_MOTO_ICE_AFTER", "1"),
    ]);
    let cloud = moto.cloud().await;
    let name = ClusterName::new("half").unwrap();
    let request = CreateRequest {
        cluster: name.clone(),
        region: "us-east-1".into(),
        zone: Some("us-east-1a".into()),
        instance_type: "g5.xlarge".into(),
        count: 2,
        first_node_idx: 0,
        use_spot: false,
        image_id: None,
        default_image_id: None,
        disk_size_gb: None,
    };
    let err = cloud.create_instances(&request).await.unwrap_err();
    assert_eq!(err.failover_scope(), Some(Scope::Zone("us-east-1a".into())));
    // What was made is findable by its tags...
    let left = cloud.query("us-east-1", &name).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].node_idx, 0);
    // ...and terminate removes it all.
    cloud.terminate("us-east-1", &name).await.unwrap();
    assert!(cloud.query("us-east-1", &name).await.unwrap().is_empty());
}

/// A request for a whole region (the catalog has no zones for it): the adapter itself moves from
/// a full zone to the next, and only a region with no room anywhere is a region-wide shortage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_planned_zone_the_adapter_tries_each_zone() {
    let zones = [
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
        "us-east-1d",
        "us-east-1e",
        "us-east-1f",
    ];
    let full: Vec<String> = zones
        .iter()
        .filter(|zone| **zone != "us-east-1d")
        .map(|zone| format!("t3.micro@{zone}"))
        .collect();
    // The second node fails in the first zones tried, so what the first node left must go.
    let moto = Moto::start_with(&[
        ("ALOFT_MOTO_ICE", &full.join(",")),
        ("ALOFT_MOTO_ICE_AFTER", "1"),
    ]);
    let cloud = moto.cloud().await;
    let cluster = ClusterName::new("anyzone").unwrap();
    let request = CreateRequest {
        cluster: cluster.clone(),
        region: "us-east-1".into(),
        zone: None,
        instance_type: "t3.micro".into(),
        count: 2,
        first_node_idx: 0,
        use_spot: false,
        image_id: None,
        default_image_id: None,
        disk_size_gb: None,
    };
    let nodes = cloud.create_instances(&request).await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(
        nodes.iter().all(|node| node.zone == "us-east-1d"),
        "{nodes:?}"
    );
    let live = cloud.query("us-east-1", &cluster).await.unwrap();
    let elsewhere: Vec<_> = live
        .iter()
        .filter(|node| {
            node.zone != "us-east-1d"
                && node.state != aloft_provision::InstanceState::Terminating
                && node.state != aloft_provision::InstanceState::Terminated
        })
        .collect();
    assert!(elsewhere.is_empty(), "left behind: {elsewhere:?}");
    cloud.terminate("us-east-1", &cluster).await.unwrap();

    // Every zone full: the region is out.
    let all: Vec<String> = zones
        .iter()
        .map(|zone| format!("t3.micro@{zone}"))
        .collect();
    let moto = Moto::start_with(&[("ALOFT_MOTO_ICE", &all.join(","))]);
    let cloud = moto.cloud().await;
    let err = cloud.create_instances(&request).await.unwrap_err();
    assert_eq!(
        err.failover_scope(),
        Some(Scope::Region("us-east-1".into())),
        "{err}"
    );
    assert!(
        cloud
            .query("us-east-1", &cluster)
            .await
            .unwrap()
            .iter()
            .all(|node| matches!(
                node.state,
                aloft_provision::InstanceState::Terminating
                    | aloft_provision::InstanceState::Terminated
            )),
    );
}

//! The application layer against a real store: recovery touches only operations whose owner is
//! gone, and neither recovery nor a status refresh fails on what it cannot reach now.

use aloft_control::recovery::{Recovered, recover_abandoned};
use aloft_store::{OperationKind, OperationState, Store};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

struct Home(PathBuf);

impl Home {
    fn new(tag: &str) -> Home {
        let dir = std::env::temp_dir().join(format!("aloft-recovery-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Home(dir)
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn quiet() -> aloft_control::Progress {
    Arc::new(|_: &str| {})
}

/// An owner on this machine whose process has exited.
fn gone() -> String {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    format!("pid:{pid}:1@{}", boot.trim())
}

#[tokio::test]
async fn an_abandoned_launch_on_a_cloud_this_build_cannot_reach_is_reported_not_fatal() {
    // A launch on a cloud this aloft cannot act on (killed during bootstrap, say) must not wedge
    // every later command: it is named and left for a build or user that can undo it.
    let home = Home::new("unreachable");
    let store = Store::open(&home.0.join("state.db")).await.unwrap();
    let params = json!({"cloud": "nowhere", "region": "r1", "zone": null,
        "instance_type": "t", "num_nodes": 1, "use_spot": false});
    let operation = store
        .operation_insert(OperationKind::Launch, "stuck", &gone(), &params)
        .await
        .unwrap();
    let notes = recover_abandoned(&home.0, &store, None, &quiet()).await;
    let [
        Recovered::Left {
            cluster, reason, ..
        },
    ] = notes.as_slice()
    else {
        panic!("{notes:?}")
    };
    assert_eq!(cluster, "stuck");
    assert!(reason.contains("nowhere"), "{reason}");
    let unfinished = store.operation_list_unfinished().await.unwrap();
    assert_eq!(unfinished.len(), 1, "left for later");
    assert_eq!(unfinished[0].id, operation.id);
}

#[tokio::test]
async fn an_operation_whose_owner_is_alive_is_left_alone() {
    let home = Home::new("alive");
    let store = Store::open(&home.0.join("state.db")).await.unwrap();
    let me = aloft_ops::owner::this_process();
    store
        .operation_insert(
            OperationKind::Launch,
            "busy",
            &me,
            &json!({"cloud": "nowhere"}),
        )
        .await
        .unwrap();
    // An owner elsewhere whose lease is fresh is alive too.
    let elsewhere = store
        .operation_insert(
            OperationKind::Launch,
            "remote",
            "server:another-machine",
            &json!(null),
        )
        .await
        .unwrap();
    assert!(
        store
            .operation_heartbeat(&elsewhere.id, "server:another-machine")
            .await
            .unwrap()
    );
    let notes = recover_abandoned(&home.0, &store, None, &quiet()).await;
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(store.operation_list_unfinished().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_old_launch_cut_short_before_it_made_anything_is_closed() {
    // Recorded before owners and params were, with no step done: nothing to undo.
    let home = Home::new("legacy");
    let store = Store::open(&home.0.join("state.db")).await.unwrap();
    let operation = store
        .operation_insert(OperationKind::Launch, "old", &gone(), &json!(null))
        .await
        .unwrap();
    let notes = recover_abandoned(&home.0, &store, None, &quiet()).await;
    assert_eq!(
        notes,
        [Recovered::Undone {
            operation: operation.id.clone(),
            cluster: "old".to_owned()
        }]
    );
    let closed = store.operation_fetch(&operation.id).await.unwrap().unwrap();
    assert_eq!(closed.state, OperationState::Unwound);
    assert_eq!(
        closed.owner.as_deref(),
        Some(aloft_ops::owner::this_process().as_str()),
        "claimed before it was closed"
    );
}

#[test]
fn a_launch_plans_over_the_imported_offers_of_the_enabled_clouds() {
    // `--catalog` must reach a real launch, not only a dry run.
    let mut imported = aloft_catalog::Catalog::bundled();
    imported.retain_clouds(&["aws".to_owned()]);
    let aws_types = imported.instance_types.len();
    assert!(aws_types > 0);
    let catalog =
        aloft_control::registry::launch_catalog(imported.clone(), None, &["aws".to_owned()]);
    assert_eq!(catalog.instance_types.len(), aws_types);
    let none = aloft_control::registry::launch_catalog(imported, None, &[]);
    assert!(
        none.instance_types.is_empty(),
        "no enabled cloud, no offers"
    );
}

#[tokio::test]
async fn a_cluster_whose_cloud_cannot_be_asked_is_reported_and_the_others_still_refresh() {
    let home = Home::new("refresh");
    let store = Store::open(&home.0.join("state.db")).await.unwrap();
    let record = aloft_store::Cluster {
        name: "far".to_owned(),
        status: aloft_store::ClusterStatus::Up,
        cloud: "nowhere".to_owned(),
        region: "r1".to_owned(),
        zone: None,
        instance_type: "t".to_owned(),
        num_nodes: 1,
        spot: false,
        hourly_price: 1.0,
        autostop_minutes: None,
        autostop_down: false,
        resources: json!({}),
        generation: 0,
        created_at: 0,
        updated_at: 0,
    };
    store.cluster_insert(&record).await.unwrap();
    let clusters = store.cluster_list().await.unwrap();
    let mut providers = aloft_control::status::Providers::new();
    let (rows, findings) =
        aloft_control::status::refresh(&home.0, &store, clusters, &mut providers).await;
    assert_eq!(rows.len(), 1, "the record is kept");
    assert_eq!(rows[0].1, None, "nothing is known of it now");
    let [aloft_control::status::Finding::Unreachable { cluster, reason }] = findings.as_slice()
    else {
        panic!("{findings:?}")
    };
    assert_eq!(cluster, "far");
    assert!(reason.contains("nowhere"), "{reason}");
}

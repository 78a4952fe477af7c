//! Recovery of operations whose owner is gone.
//!
//! An aloft command that was killed (or a machine that went off) leaves its operation `running`
//! or `unwinding` in the store. The next command looks at every unfinished operation: one whose
//! owner is alive (another command still at work) is left alone; one whose owner is gone is
//! claimed (so two recovering commands never both act on it) and undone with what was recorded
//! with it: its parameters (cloud, region, the nodes that existed before it) and its steps.
//! Recovery never fails the caller's command: what cannot be recovered now (the local cloud needs
//! root, a cloud cannot be reached) is reported and left for a later command.

use crate::clusters::base_context;
use crate::{Progress, unix_now};
use aloft_ops::launch::{LaunchParams, launch_saga};
use aloft_ops::owner;
use aloft_provision::ClusterName;
use aloft_store::{ClusterStatus, Operation, OperationKind, OperationState, Store};
use std::path::Path;

/// What recovery did with one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// Undone: what it made is removed.
    Undone { operation: String, cluster: String },
    /// Left as it is, with why (it could not be undone now; a later command tries again).
    Left {
        operation: String,
        cluster: String,
        reason: String,
    },
}

/// Undoes every unfinished operation whose owner is gone (only those on `cluster`, if given).
/// Operations owned by a live process are skipped. Never fails: problems come back as
/// [`Recovered::Left`].
pub async fn recover_abandoned(
    home: &Path,
    store: &Store,
    cluster: Option<&str>,
    progress: &Progress,
) -> Vec<Recovered> {
    let now = unix_now();
    undo_where(home, store, cluster.unwrap_or("*"), progress, |operation| {
        cluster.is_none_or(|name| name == operation.cluster)
            && !owner::is_alive(operation.owner.as_deref(), operation.heartbeat_at, now)
    })
    .await
}

/// Undoes this process's own unfinished operations on `cluster`: a signal cut them short, and
/// the process undoes them before it exits.
pub async fn undo_own_operations(
    home: &Path,
    store: &Store,
    cluster: &str,
    progress: &Progress,
) -> Vec<Recovered> {
    let me = owner::this_process();
    undo_where(home, store, cluster, progress, |operation| {
        operation.cluster == cluster && operation.owner.as_deref() == Some(me.as_str())
    })
    .await
}

/// Claims and undoes each unfinished launch `wanted` picks; `scope` names the clusters looked
/// at, for a failure to list them.
async fn undo_where(
    home: &Path,
    store: &Store,
    scope: &str,
    progress: &Progress,
    wanted: impl Fn(&Operation) -> bool,
) -> Vec<Recovered> {
    let unfinished = match store.operation_list_unfinished().await {
        Ok(unfinished) => unfinished,
        Err(err) => {
            return vec![Recovered::Left {
                operation: "*".to_owned(),
                cluster: scope.to_owned(),
                reason: format!("{:#}", anyhow::Error::new(err)),
            }];
        }
    };
    let mut results = Vec::new();
    for operation in unfinished {
        if operation.kind != OperationKind::Launch || !wanted(&operation) {
            continue;
        }
        let (id, name) = (operation.id.clone(), operation.cluster.clone());
        match recover_one(home, store, operation, progress).await {
            Ok(true) => results.push(Recovered::Undone {
                operation: id,
                cluster: name,
            }),
            // Someone else claimed it first.
            Ok(false) => {}
            Err(err) => results.push(Recovered::Left {
                operation: id,
                cluster: name,
                reason: format!("{err:#}"),
            }),
        }
    }
    results
}

/// Claims and undoes one abandoned launch; false if another process claimed it first.
async fn recover_one(
    home: &Path,
    store: &Store,
    operation: Operation,
    progress: &Progress,
) -> anyhow::Result<bool> {
    let me = owner::this_process();
    if !store
        .operation_claim(&operation.id, operation.owner.as_deref(), &me)
        .await?
    {
        return Ok(false);
    }
    let Some(params) = params_of(&operation) else {
        // Recorded before parameters were, and cut short before its bootstrap step: nothing
        // was made.
        store
            .operation_set_state(
                Some(&me),
                &operation.id,
                OperationState::Unwound,
                Some("interrupted before it made anything"),
            )
            .await?;
        return Ok(true);
    };
    progress(&format!(
        "Found an interrupted launch of `{}` ({}, its process is gone); undoing what it made",
        operation.cluster, operation.id
    ));
    let cluster = ClusterName::new(operation.cluster.clone())?;
    let cloud = crate::registry::access(home, &params.cloud).await?;
    let mut context = base_context(&cloud, cluster, &params.region, home, progress.clone());
    context.zone = params.zone.clone();
    context.instance_type = params.instance_type.clone();
    context.num_nodes = params.num_nodes;
    context.use_spot = params.use_spot;
    context.ports = params.ports.clone();
    context.pre_existing = params.pre_existing.clone();
    let name = operation.cluster.clone();
    let outcome = launch_saga()
        .unwind_interrupted(
            store,
            // Ours now: its records are written, and its lease renewed, as this process's.
            Operation {
                owner: Some(me),
                ..operation
            },
            "interrupted (its process is gone)",
            &context,
        )
        .await?;
    if let aloft_ops::Outcome::Failed { error, .. } = outcome {
        anyhow::bail!("undoing it failed: {error}");
    }
    // A cluster recorded by the launch but never brought up is forgotten; one that existed
    // before (a relaunch) keeps its record.
    if let Some(record) = store.cluster_fetch(&name).await?
        && record.status == ClusterStatus::Init
        && params.pre_existing.is_empty()
    {
        store.cluster_delete(&name).await?;
    }
    Ok(true)
}

/// The launch's parameters: recorded with it, or, for operations recorded before they were,
/// the cloud and region its bootstrap step recorded.
fn params_of(operation: &Operation) -> Option<LaunchParams> {
    if let Ok(params) = serde_json::from_value::<LaunchParams>(operation.params.clone()) {
        return Some(params);
    }
    let bootstrap = operation
        .steps
        .iter()
        .find(|step| step.step == "bootstrap")?;
    Some(LaunchParams {
        cloud: bootstrap.output["cloud"].as_str()?.to_owned(),
        region: bootstrap.output["region"].as_str()?.to_owned(),
        zone: None,
        instance_type: String::new(),
        num_nodes: 0,
        use_spot: false,
        ports: Vec::new(),
        pre_existing: Vec::new(),
    })
}

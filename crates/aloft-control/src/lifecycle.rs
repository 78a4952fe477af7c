//! Stopping, starting and tearing down a recorded cluster: the use cases behind `aloft stop`,
//! `aloft start` and `aloft down`, without printing. The server runs each as a request.

use crate::clusters::{ClusterHandle, open_cluster};
use crate::launch::{LaunchRequest, bring_up, check_not_busy, check_stoppable};
use crate::recovery::{Recovered, recover_abandoned};
use crate::status::{Providers, TornDown, tear_down};
use crate::{Progress, registry};
use aloft_catalog::Catalog;
use aloft_store::{Cluster, ClusterStatus, Store};
use aloft_types::Task;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Undoes what interrupted commands left on `cluster` (their owners gone) before acting on it,
/// saying what was done. Never fails.
pub async fn recover_first(home: &Path, store: &Store, cluster: &str, progress: &Progress) {
    for note in recover_abandoned(home, store, Some(cluster), progress).await {
        progress(&match note {
            Recovered::Undone { operation, cluster } => {
                format!("Undid the interrupted launch of `{cluster}` ({operation}).")
            }
            Recovered::Left {
                operation,
                cluster,
                reason,
            } => format!(
                "warning: could not undo the interrupted launch of `{cluster}` ({operation}) now: {reason}"
            ),
        });
    }
}

/// Stops a cluster's instances, keeping their disks, and records it stopped. A cluster another
/// command is launching, or on spot instances its cloud cannot stop, is refused.
pub async fn stop(home: &Path, store: &Store, name: &str, progress: &Progress) -> Result<Cluster> {
    recover_first(home, store, name, progress).await;
    let ClusterHandle {
        provider,
        record,
        context,
    } = open_cluster(
        home,
        store,
        name,
        Task::new(name),
        PathBuf::new(),
        progress.clone(),
    )
    .await?;
    check_not_busy(store, name).await?;
    check_stoppable(name, &record.cloud, record.spot, provider.as_ref())?;
    progress(&format!(
        "Stopping `{name}` on {} ({}).",
        record.cloud, record.region
    ));
    provider.stop(&context.region, &context.cluster).await?;
    let mut record = record;
    record.status = ClusterStatus::Stopped;
    Ok(store.cluster_update(&record).await?)
}

/// Starts a stopped cluster again: a launch on the recorded cluster with no task, so stopped
/// nodes start (disks kept), lost ones are made anew, and the agent comes back with its queue.
pub async fn start(home: &Path, store: &Store, name: &str, progress: &Progress) -> Result<Cluster> {
    recover_first(home, store, name, progress).await;
    let task = Task::new(name);
    let ClusterHandle { context, .. } = open_cluster(
        home,
        store,
        name,
        task.clone(),
        PathBuf::new(),
        progress.clone(),
    )
    .await?;
    check_not_busy(store, name).await?;
    let (catalog, clouds) = registry::launchable(home, Catalog::bundled()).await?;
    let request = LaunchRequest {
        task,
        cluster: context.cluster.clone(),
        base_dir: PathBuf::new(),
        options: aloft_optimizer::Options::default(),
        catalog: &catalog,
        clouds: &clouds,
        retry_until_up: false,
        must_stop: false,
    };
    Ok(bring_up(home, store, request, progress).await?.record)
}

/// Tears a cluster down (a recorded one where its record says; one with no record wherever the
/// clouds have instances tagged with it) and forgets it.
pub async fn down(
    home: &Path,
    store: &Store,
    name: &str,
    providers: &mut Providers,
    progress: &Progress,
) -> Result<Vec<TornDown>> {
    recover_first(home, store, name, progress).await;
    progress(&format!("Terminating `{name}`."));
    let torn = tear_down(home, store, name, providers).await?;
    for torn in &torn {
        if torn.orphan {
            progress(&format!(
                "No cluster `{name}` was recorded; terminated its instances on {} ({}).",
                torn.cloud, torn.region
            ));
        }
    }
    Ok(torn)
}

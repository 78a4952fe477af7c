//! What the clouds say of the recorded clusters, reconciled into the records; instances the
//! clouds have that no record claims (orphans); and tearing clusters down.
//!
//! These are the convergent parts of the lifecycle: today `aloft status --refresh` and
//! `aloft down` run them when asked; with the API server they become background tasks that take
//! no input (activated by a timer and by the server), returning the same reports.

use crate::registry;
use aloft_provision::{ClusterName, ClusterState, InstanceState, Provider, ProvisionError};
use aloft_store::{Cluster, ClusterStatus, Store};
use anyhow::{Result, bail};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Providers by cloud name, made once per command (or activation) and shared.
pub type Providers = HashMap<String, Arc<dyn Provider>>;

/// A recorded cluster as its cloud sees it now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Live {
    /// `up`, `stopped`, `degraded` (some nodes lost), `terminated`, ... (`ClusterState`'s names).
    pub state: String,
    /// Nodes running.
    pub running: usize,
}

/// Something a refresh or a sweep found worth saying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The cluster tore itself down (autostop with `--down`): its record is forgotten.
    TornDownByAutostop { cluster: String },
    /// The cluster's cloud could not be asked: its record is left as it was.
    Unreachable { cluster: String, reason: String },
    /// A cloud could not be searched for orphans.
    NotSwept { cloud: String, reason: String },
    /// Instances tagged with a cluster no record claims on that cloud.
    Orphan {
        cluster: String,
        cloud: String,
        region: String,
    },
}

/// The provider for `cloud`, made once and kept in `providers`.
async fn provider_for(
    home: &Path,
    providers: &mut Providers,
    cloud: &str,
) -> Result<Arc<dyn Provider>> {
    if let Some(provider) = providers.get(cloud) {
        return Ok(provider.clone());
    }
    let provider = registry::access(home, cloud).await?.provider;
    providers.insert(cloud.to_owned(), provider.clone());
    Ok(provider)
}

/// Asks the clouds for each recorded cluster's instances and reconciles the records: a cluster
/// that lost nodes is `degraded` (and `up` again once it has them all), one its agent stopped is
/// `stopped`, one that tore itself down is forgotten. Returns the clusters still recorded with
/// what the cloud says of each (`None` where it could not be asked), and the findings.
pub async fn refresh(
    home: &Path,
    store: &Store,
    clusters: Vec<Cluster>,
    providers: &mut Providers,
) -> (Vec<(Cluster, Option<Live>)>, Vec<Finding>) {
    let mut rows = Vec::new();
    let mut findings = Vec::new();
    for cluster in clusters {
        match refresh_one(home, store, cluster.clone(), providers).await {
            Ok(Some((cluster, live))) => rows.push((cluster, Some(live))),
            Ok(None) => findings.push(Finding::TornDownByAutostop {
                cluster: cluster.name,
            }),
            Err(err) => {
                findings.push(Finding::Unreachable {
                    cluster: cluster.name.clone(),
                    reason: format!("{err:#}"),
                });
                rows.push((cluster, None));
            }
        }
    }
    (rows, findings)
}

/// One cluster reconciled; `None` when it tore itself down and was forgotten.
async fn refresh_one(
    home: &Path,
    store: &Store,
    mut cluster: Cluster,
    providers: &mut Providers,
) -> Result<Option<(Cluster, Live)>> {
    let name = ClusterName::new(cluster.name.clone())?;
    let provider = provider_for(home, providers, &cluster.cloud).await?;
    let instances = provider.query(&cluster.region, &name).await?;
    let running = instances
        .iter()
        .filter(|instance| instance.state == InstanceState::Running)
        .count();
    let state = ClusterState::of(&instances);
    // A cluster that lost nodes (a preempted spot node, say) is degraded, even where the
    // provider's summary still says up.
    let lost_nodes = running > 0 && running < cluster.num_nodes as usize;
    let summary = if lost_nodes {
        "degraded".to_owned()
    } else {
        snake(&state)
    };
    let next = match cluster.status {
        ClusterStatus::Up if lost_nodes => Some(ClusterStatus::Degraded),
        ClusterStatus::Degraded if running == cluster.num_nodes as usize => Some(ClusterStatus::Up),
        // Stopped or torn down by its own autostop since this machine last looked.
        ClusterStatus::Up | ClusterStatus::Degraded if state == ClusterState::Stopped => {
            Some(ClusterStatus::Stopped)
        }
        ClusterStatus::Up | ClusterStatus::Degraded
            if state == ClusterState::Terminated && cluster.autostop_down =>
        {
            store.cluster_delete(&cluster.name).await?;
            return Ok(None);
        }
        _ => None,
    };
    if let Some(status) = next {
        cluster.status = status;
        cluster = store.cluster_update(&cluster).await?;
    }
    Ok(Some((
        cluster,
        Live {
            state: summary,
            running,
        },
    )))
}

/// A cluster found on a cloud by its tag.
#[allow(missing_debug_implementations)]
pub struct Found {
    pub cloud: String,
    pub region: String,
    pub cluster: ClusterName,
    pub provider: Arc<dyn Provider>,
}

/// Every cluster with instances on the clouds this machine can act on (the local cloud where it
/// can run, the clouds `aloft check` enabled), in the regions where each provider made
/// instances. A cloud that cannot be asked is a [`Finding::NotSwept`]. Providers already made
/// are reused, and those made here are added.
pub async fn sweep(home: &Path, providers: &mut Providers) -> (Vec<Found>, Vec<Finding>) {
    let mut clouds: Vec<(String, Arc<dyn Provider>)> = Vec::new();
    let mut findings = Vec::new();
    for name in std::iter::once("local".to_owned()).chain(registry::enabled_clouds(home)) {
        if let Some(provider) = providers.get(&name) {
            clouds.push((name, provider.clone()));
            continue;
        }
        let provider = if name == "local" {
            // Not root: the local cloud cannot be asked (and has nothing of ours to find).
            match registry::local_provider(home) {
                Ok(local) => local as Arc<dyn Provider>,
                Err(_) => continue,
            }
        } else {
            match registry::access(home, &name).await {
                Ok(access) => access.provider,
                Err(err) => {
                    findings.push(Finding::NotSwept {
                        cloud: name,
                        reason: format!("{err:#}"),
                    });
                    continue;
                }
            }
        };
        providers.insert(name.clone(), provider.clone());
        clouds.push((name, provider));
    }
    let mut found = Vec::new();
    for (cloud, provider) in clouds {
        let swept: Result<Vec<Found>, ProvisionError> = async {
            let mut found = Vec::new();
            for region in provider.regions_in_use().await? {
                for cluster in provider.list_clusters(&region).await? {
                    found.push(Found {
                        cloud: cloud.clone(),
                        region: region.clone(),
                        cluster,
                        provider: provider.clone(),
                    });
                }
            }
            Ok(found)
        }
        .await;
        match swept {
            Ok(mut swept) => found.append(&mut swept),
            Err(err) => findings.push(Finding::NotSwept {
                cloud,
                reason: format!("{:#}", anyhow::Error::new(err)),
            }),
        }
    }
    (found, findings)
}

/// The orphans among what [`sweep`] finds: clusters no record claims on that cloud.
pub async fn orphans(home: &Path, recorded: &[Cluster], providers: &mut Providers) -> Vec<Finding> {
    let (found, mut findings) = sweep(home, providers).await;
    for found in found {
        let claimed = recorded
            .iter()
            .any(|cluster| cluster.name == found.cluster.as_str() && cluster.cloud == found.cloud);
        if !claimed {
            findings.push(Finding::Orphan {
                cluster: found.cluster.as_str().to_owned(),
                cloud: found.cloud,
                region: found.region,
            });
        }
    }
    findings
}

/// Where a teardown removed instances.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TornDown {
    pub cluster: String,
    pub cloud: String,
    pub region: String,
    /// No record claimed it: its instances were found by tag.
    pub orphan: bool,
}

/// Tears the cluster `name` down: a recorded one where its record says, then forgets it; one
/// with no record wherever the clouds have instances tagged with it. An operation in progress
/// on it keeps it (see [`crate::launch::check_not_busy`]).
pub async fn tear_down(
    home: &Path,
    store: &Store,
    name: &str,
    providers: &mut Providers,
) -> Result<Vec<TornDown>> {
    let cluster =
        ClusterName::new(name.to_owned()).map_err(|err| anyhow::anyhow!("`{name}`: {err}"))?;
    crate::launch::check_not_busy(store, name).await?;
    if let Some(record) = store.cluster_fetch(name).await? {
        let provider = provider_for(home, providers, &record.cloud).await?;
        provider.terminate(&record.region, &cluster).await?;
        store.cluster_delete(name).await?;
        return Ok(vec![TornDown {
            cluster: name.to_owned(),
            cloud: record.cloud,
            region: record.region,
            orphan: false,
        }]);
    }
    let (found, _) = sweep(home, providers).await;
    let found: Vec<Found> = found
        .into_iter()
        .filter(|found| found.cluster == cluster)
        .collect();
    if found.is_empty() {
        bail!(
            "no cluster `{name}` is recorded, and no cloud aloft can reach has instances tagged \
             with it (see `aloft status --refresh`)"
        );
    }
    let mut torn = Vec::new();
    for found in found {
        found.provider.terminate(&found.region, &cluster).await?;
        torn.push(TornDown {
            cluster: name.to_owned(),
            cloud: found.cloud,
            region: found.region,
            orphan: true,
        });
    }
    Ok(torn)
}

/// An enum's snake_case name, as serde writes it.
fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

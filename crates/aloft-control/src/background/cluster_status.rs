//! Asks the clouds for every recorded cluster and reconciles the records: a preempted node
//! makes its cluster `degraded`, an autostopped one is `stopped`, one that tore itself down is
//! forgotten. What each cloud said is kept for `status` to show.

use super::BackgroundTask;
use crate::status::{Finding, Live, Providers, refresh};
use aloft_store::Store;
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// What the clouds said of each cluster at the last refresh, by name.
pub type LiveByCluster = Arc<Mutex<HashMap<String, Live>>>;

#[derive(Debug)]
pub struct ClusterStatus {
    pub home: PathBuf,
    pub store: Store,
    pub live: LiveByCluster,
}

impl BackgroundTask for ClusterStatus {
    fn activate(&mut self) -> Pin<Box<dyn Future<Output = serde_json::Value> + Send + '_>> {
        Box::pin(async move {
            let clusters = match self.store.cluster_list().await {
                Ok(clusters) => clusters,
                Err(err) => return json!({"error": err.to_string()}),
            };
            let mut providers = Providers::new();
            let (rows, findings) = refresh(&self.home, &self.store, clusters, &mut providers).await;
            let mut seen = HashMap::new();
            for (cluster, live) in rows {
                if let Some(live) = live {
                    seen.insert(cluster.name, live);
                }
            }
            let refreshed = seen.len();
            *self.live.lock().expect("live states") = seen;
            json!({"refreshed": refreshed, "findings": findings_json(&findings)})
        })
    }
}

/// Findings as JSON objects (`kind` and the finding's fields).
pub fn findings_json(findings: &[Finding]) -> Vec<serde_json::Value> {
    findings
        .iter()
        .map(|finding| match finding {
            Finding::TornDownByAutostop { cluster } => {
                json!({"kind": "torn_down_by_autostop", "cluster": cluster})
            }
            Finding::Unreachable { cluster, reason } => {
                json!({"kind": "unreachable", "cluster": cluster, "reason": reason})
            }
            Finding::NotSwept { cloud, reason } => {
                json!({"kind": "not_swept", "cloud": cloud, "reason": reason})
            }
            Finding::Orphan {
                cluster,
                cloud,
                region,
            } => json!({"kind": "orphan", "cluster": cluster, "cloud": cloud, "region": region}),
        })
        .collect()
}

//! Looks on every cloud aloft can reach for instances tagged with a cluster no record claims
//! (left by an interrupted run, or by a state database moved aside). It names them and leaves
//! them: removing what aloft may not have made is for the user (`aloft down NAME`).

use super::BackgroundTask;
use super::cluster_status::findings_json;
use crate::status::{Providers, orphans};
use aloft_store::Store;
use serde_json::json;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

#[derive(Debug)]
pub struct OrphanSweep {
    pub home: PathBuf,
    pub store: Store,
}

impl BackgroundTask for OrphanSweep {
    fn activate(&mut self) -> Pin<Box<dyn Future<Output = serde_json::Value> + Send + '_>> {
        Box::pin(async move {
            let recorded = match self.store.cluster_list().await {
                Ok(clusters) => clusters,
                Err(err) => return json!({"error": err.to_string()}),
            };
            let mut providers = Providers::new();
            let findings = orphans(&self.home, &recorded, &mut providers).await;
            json!({"findings": findings_json(&findings)})
        })
    }
}

//! Undoes operations whose owner is gone (a command or a server killed mid-launch), as every
//! command did before acting; in the server it runs at start-up and on a timer.

use super::BackgroundTask;
use crate::Progress;
use crate::recovery::{Recovered, recover_abandoned};
use aloft_store::Store;
use serde_json::json;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

#[derive(Debug)]
pub struct SagaRecovery {
    pub home: PathBuf,
    pub store: Store,
}

impl BackgroundTask for SagaRecovery {
    fn activate(&mut self) -> Pin<Box<dyn Future<Output = serde_json::Value> + Send + '_>> {
        Box::pin(async move {
            let quiet: Progress = Arc::new(|_: &str| {});
            let notes = recover_abandoned(&self.home, &self.store, None, &quiet).await;
            let mut undone = Vec::new();
            let mut left = Vec::new();
            for note in notes {
                match note {
                    Recovered::Undone { operation, cluster } => {
                        undone.push(json!({"operation": operation, "cluster": cluster}));
                    }
                    Recovered::Left {
                        operation,
                        cluster,
                        reason,
                    } => left.push(
                        json!({"operation": operation, "cluster": cluster, "reason": reason}),
                    ),
                }
            }
            json!({"undone": undone, "left": left})
        })
    }
}

//! Undoes operations whose owner is gone (a command or a server killed mid-launch), as every
//! command did before acting, and ends the requests whose server is gone (killed, or on another
//! machine whose lease ran out) as failed; in the server it runs at start-up and on a timer.

use super::BackgroundTask;
use crate::Progress;
use crate::recovery::{Recovered, recover_abandoned};
use crate::requests::Requests;
use aloft_store::Store;
use serde_json::json;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

/// How many undone operations the status remembers.
const REMEMBERED: usize = 100;

#[derive(Debug)]
pub struct SagaRecovery {
    pub home: PathBuf,
    pub store: Store,
    pub requests: Arc<Requests>,
    /// What this server undid since it started (newest last, the last [`REMEMBERED`]): a
    /// command that started the server tells its user what was found left over.
    pub undone_since_start: Vec<serde_json::Value>,
}

impl SagaRecovery {
    pub fn new(home: PathBuf, store: Store, requests: Arc<Requests>) -> SagaRecovery {
        SagaRecovery {
            home,
            store,
            requests,
            undone_since_start: Vec::new(),
        }
    }
}

impl BackgroundTask for SagaRecovery {
    fn activate(&mut self) -> Pin<Box<dyn Future<Output = serde_json::Value> + Send + '_>> {
        Box::pin(async move {
            // The request first: its operation is then found abandoned too.
            let requests_failed = match self.requests.fail_abandoned().await {
                Ok(ids) => json!(ids),
                Err(err) => json!({"error": format!("{err:#}")}),
            };
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
            self.undone_since_start.extend(undone.iter().cloned());
            let excess = self.undone_since_start.len().saturating_sub(REMEMBERED);
            self.undone_since_start.drain(..excess);
            json!({
                "undone": undone,
                "left": left,
                "undone_since_start": self.undone_since_start,
                "requests_failed": requests_failed,
            })
        })
    }
}

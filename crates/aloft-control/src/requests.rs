//! Requests: long work run in the server for a client (stop, start, down; launch to come),
//! recorded in the store before it starts, with every line of its progress, so a client can
//! follow it, leave and come back, and a restarted server knows what was cut short.

use crate::metrics::Histograms;
use crate::{Progress, recovery};
use aloft_ops::owner;
use aloft_store::{Request, RequestState, Store};
use anyhow::Result;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tracing::Instrument as _;

/// The work of one request: given where to say its progress, it produces the request's result.
pub type Work = Pin<Box<dyn Future<Output = Result<serde_json::Value>> + Send>>;

/// The requests this server runs, and a signal that any request changed (a line said, a state
/// reached) for those who follow one.
#[derive(Debug)]
pub struct Requests {
    home: PathBuf,
    store: Store,
    /// This server's owner string (see `aloft_ops::owner`).
    owner: String,
    running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    changed: watch::Sender<u64>,
    /// How long requests took, by kind and the state they ended in (since the server started).
    pub durations: Histograms,
}

impl Requests {
    pub fn new(home: PathBuf, store: Store) -> Arc<Requests> {
        Arc::new(Requests {
            home,
            store,
            owner: owner::this_process(),
            running: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
            durations: Histograms::new(
                "aloft_request_duration_seconds",
                "How long requests took from submission to their end, by kind and end state.",
                &["kind", "state"],
            ),
        })
    }

    /// A receiver that changes whenever a request does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Renews the lease on this server's unfinished requests every [`owner::HEARTBEAT`], while
    /// the returned task runs: a server on another machine sharing the database judges them by
    /// it.
    pub fn keep_alive(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut timer = tokio::time::interval(owner::HEARTBEAT);
            loop {
                timer.tick().await;
                if let Err(err) = this
                    .store
                    .request_heartbeat(&this.owner, crate::unix_now())
                    .await
                {
                    tracing::warn!("renewing the requests' lease: {err}");
                }
            }
        })
    }

    /// How many requests are running now.
    pub fn running(&self) -> usize {
        self.running.lock().expect("requests lock").len()
    }

    fn bump(&self) {
        self.changed.send_modify(|count| *count += 1);
    }

    /// Records a request and starts its work in the background; returns it, pending.
    pub async fn submit(
        self: &Arc<Self>,
        kind: &str,
        cluster: Option<&str>,
        params: serde_json::Value,
        work: impl FnOnce(Progress) -> Work + Send + 'static,
    ) -> Result<Request> {
        let request = self
            .store
            .request_insert(kind, cluster, &params, &self.owner)
            .await?;
        let id = request.id.clone();
        let (lines, mut said) = mpsc::unbounded_channel::<String>();
        let progress: Progress = Arc::new(move |line: &str| {
            let _ = lines.send(line.to_owned());
        });
        // One writer per request keeps its lines in the order they were said.
        let writer = {
            let (this, id) = (self.clone(), id.clone());
            tokio::spawn(async move {
                while let Some(line) = said.recv().await {
                    let _ = this.store.request_event_append(&id, &line).await;
                    this.bump();
                }
            })
        };
        let this = self.clone();
        let span = tracing::info_span!("request", id = %id, kind);
        let (kind, submitted) = (kind.to_owned(), std::time::Instant::now());
        // Held until the work is registered, so it cannot end (and unregister) before that.
        let guard = self.running.lock().expect("requests lock");
        let task = tokio::spawn({
            let id = id.clone();
            async move {
                tracing::info!("started");
                let _ = this
                    .store
                    .request_set_state(&id, RequestState::Running, None, None)
                    .await;
                this.bump();
                let outcome = work(progress).await;
                // Every line said before the end is stored before the end is.
                let _ = writer.await;
                let _ = match &outcome {
                    Ok(result) => {
                        this.store
                            .request_set_state(&id, RequestState::Succeeded, Some(result), None)
                            .await
                    }
                    Err(err) => {
                        this.store
                            .request_set_state(
                                &id,
                                RequestState::Failed,
                                None,
                                Some(&format!("{err:#}")),
                            )
                            .await
                    }
                };
                let state = if outcome.is_ok() {
                    "succeeded"
                } else {
                    "failed"
                };
                let took = submitted.elapsed();
                this.durations.observe(&[&kind, state], took);
                match &outcome {
                    Ok(_) => tracing::info!(seconds = took.as_secs_f64(), "succeeded"),
                    Err(err) => tracing::warn!(seconds = took.as_secs_f64(), "failed: {err:#}"),
                }
                this.running.lock().expect("requests lock").remove(&id);
                this.bump();
            }
            .instrument(span)
        });
        let mut running = guard;
        if !task.is_finished() {
            running.insert(id, task.abort_handle());
        }
        drop(running);
        Ok(request)
    }

    /// Cancels a request: its work is stopped where it is, what its operations made is undone
    /// (as after a Ctrl-C), and it ends `cancelled`. Returns false when it had already ended.
    pub async fn cancel(&self, id: &str) -> Result<bool> {
        let Some(request) = self.store.request_fetch(id).await? else {
            return Err(aloft_store::StoreError::RequestNotFound { id: id.to_owned() }.into());
        };
        if request.state.is_finished() {
            return Ok(false);
        }
        let handle = self.running.lock().expect("requests lock").remove(id);
        if let Some(handle) = handle {
            handle.abort();
        }
        let cancelled = self
            .store
            .request_set_state(id, RequestState::Cancelled, None, Some("cancelled"))
            .await?;
        self.bump();
        if cancelled && let Some(cluster) = &request.cluster {
            // The work's provider tasks stop at their next await point; give them a moment
            // before undoing by what was recorded (see the CLI's signal handling).
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let quiet: Progress = Arc::new(|_: &str| {});
            recovery::undo_own_operations(&self.home, &self.store, cluster, &quiet).await;
        }
        Ok(cancelled)
    }

    /// Ends, as failed, every unfinished request whose server is gone (a restart, a crash):
    /// its work stopped with that server. The operations underneath are recovered by saga
    /// recovery. Returns the ids ended.
    pub async fn fail_abandoned(&self) -> Result<Vec<String>> {
        let now = crate::unix_now();
        let mut ended = Vec::new();
        for request in self.store.request_list_unfinished().await? {
            if owner::is_alive(request.owner.as_deref(), request.heartbeat_at, now) {
                continue;
            }
            if self
                .store
                .request_set_state(
                    &request.id,
                    RequestState::Failed,
                    None,
                    Some("the server running it stopped before it ended; what it left is undone by recovery"),
                )
                .await?
            {
                ended.push(request.id);
            }
        }
        if !ended.is_empty() {
            self.bump();
        }
        Ok(ended)
    }
}

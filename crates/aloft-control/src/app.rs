//! The application as a server holds it: the store, the requests it runs, and its background
//! tasks, behind the calls its routes make. Knows no HTTP: errors say what kind of refusal
//! they are ([`AppError`]) and the server maps that to a status code in one place.

use crate::background::cluster_status::{ClusterStatus, LiveByCluster};
use crate::background::orphan_sweep::OrphanSweep;
use crate::background::saga_recovery::SagaRecovery;
use crate::background::{Driver, TaskStatus};
use crate::requests::Requests;
use crate::status::{Live, Providers};
use crate::{Progress, jobs, lifecycle, logs};
use aloft_store::{Cluster, Request, RequestEvent, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why a call was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No such cluster or request.
    #[error("{0}")]
    NotFound(String),
    /// The thing is busy, or in a state that forbids the call.
    #[error("{0}")]
    Conflict(String),
    /// The call itself is malformed.
    #[error("{0}")]
    Invalid(String),
    /// Anything else: the server's fault or the world's.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<aloft_store::StoreError> for AppError {
    fn from(err: aloft_store::StoreError) -> AppError {
        match err {
            aloft_store::StoreError::RequestNotFound { .. }
            | aloft_store::StoreError::ClusterNotFound { .. } => {
                AppError::NotFound(err.to_string())
            }
            other => AppError::Internal(other.into()),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// A cluster that is not up is a conflict (409), not the server's failure.
fn not_running_is_conflict(err: anyhow::Error) -> AppError {
    match err.downcast::<jobs::NotRunning>() {
        Ok(not_running) => AppError::Conflict(not_running.0),
        Err(err) => AppError::Internal(err),
    }
}

/// How often each background task runs by itself.
#[derive(Debug, Clone, Copy)]
pub struct Periods {
    pub saga_recovery: Duration,
    pub cluster_status: Duration,
    pub orphan_sweep: Duration,
}

impl Default for Periods {
    fn default() -> Periods {
        Periods {
            saga_recovery: Duration::from_secs(30),
            cluster_status: Duration::from_secs(60),
            orphan_sweep: Duration::from_secs(300),
        }
    }
}

/// The running application.
#[derive(Debug)]
pub struct App {
    home: PathBuf,
    store: Store,
    requests: Arc<Requests>,
    live: LiveByCluster,
    background: Driver,
    /// Renews the lease on this server's requests.
    keep_alive: tokio::task::AbortHandle,
    /// The cluster records as last read, with the database's data version then: reads answer
    /// from it while that version holds (SQLite), so many clients asking at once cost one read.
    cluster_model: std::sync::RwLock<Option<(i64, Arc<Vec<Cluster>>)>>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.keep_alive.abort();
    }
}

impl App {
    /// Starts the application on `store`: ends the requests a previous server left unfinished
    /// (their work stopped with it) and starts the background tasks, which recover what it
    /// left at once.
    pub async fn start(home: PathBuf, store: Store, periods: Periods) -> anyhow::Result<App> {
        let requests = Requests::new(home.clone(), store.clone());
        requests.fail_abandoned().await?;
        let keep_alive = requests.keep_alive().abort_handle();
        let live = LiveByCluster::default();
        let mut background = Driver::default();
        background.start(
            "saga_recovery",
            "undo operations whose owner (a command or a server) is gone",
            periods.saga_recovery,
            SagaRecovery::new(home.clone(), store.clone(), requests.clone()),
        );
        background.start(
            "cluster_status",
            "ask the clouds for every recorded cluster and reconcile the records",
            periods.cluster_status,
            ClusterStatus {
                home: home.clone(),
                store: store.clone(),
                live: live.clone(),
            },
        );
        background.start(
            "orphan_sweep",
            "look for instances of clusters no record claims",
            periods.orphan_sweep,
            OrphanSweep {
                home: home.clone(),
                store: store.clone(),
            },
        );
        Ok(App {
            home,
            store,
            requests,
            live,
            background,
            keep_alive,
            cluster_model: std::sync::RwLock::new(None),
        })
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The recorded clusters (only those named, if any), each with what its cloud said at the
    /// last refresh.
    pub async fn clusters(&self, only: &[String]) -> AppResult<Vec<(Cluster, Option<Live>)>> {
        let clusters = self.cluster_records().await?;
        let live = self.live.lock().expect("live states");
        Ok(clusters
            .iter()
            .filter(|cluster| only.is_empty() || only.contains(&cluster.name))
            .map(|cluster| (cluster.clone(), live.get(&cluster.name).cloned()))
            .collect())
    }

    /// The recorded clusters: from the read model while the database is as it was when the
    /// model was read (its data version, asked first, so a write in between only makes the
    /// next call read again); read anew otherwise, and always on PostgreSQL.
    async fn cluster_records(&self) -> AppResult<Arc<Vec<Cluster>>> {
        let version = self.store.data_version().await?;
        if let Some(version) = version
            && let Some((seen, clusters)) = &*self.cluster_model.read().expect("cluster model")
            && *seen == version
        {
            return Ok(clusters.clone());
        }
        let clusters = Arc::new(self.store.cluster_list().await?);
        if let Some(version) = version {
            *self.cluster_model.write().expect("cluster model") = Some((version, clusters.clone()));
        }
        Ok(clusters)
    }

    async fn recorded(&self, name: &str) -> AppResult<Cluster> {
        self.store
            .cluster_fetch(name)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no cluster named `{name}`")))
    }

    async fn check_not_busy(&self, name: &str) -> AppResult<()> {
        crate::launch::check_not_busy(&self.store, name)
            .await
            .map_err(|err| AppError::Conflict(format!("{err:#}")))
    }

    /// Stops a cluster (a request).
    pub async fn stop(&self, name: &str) -> AppResult<Request> {
        self.recorded(name).await?;
        self.check_not_busy(name).await?;
        let (home, store, cluster) = (self.home.clone(), self.store.clone(), name.to_owned());
        let params = json!({"cluster": name});
        Ok(self
            .requests
            .submit("stop", Some(name), params, move |progress: Progress| {
                Box::pin(async move {
                    let record = lifecycle::stop(&home, &store, &cluster, &progress).await?;
                    progress(&format!(
                        "Stopped `{cluster}` (disks kept; `aloft start {cluster}` brings it back)."
                    ));
                    Ok(json!({"cluster": record.name, "status": "stopped"}))
                })
            })
            .await?)
    }

    /// Starts a stopped cluster (a request).
    pub async fn start_cluster(&self, name: &str) -> AppResult<Request> {
        self.recorded(name).await?;
        self.check_not_busy(name).await?;
        let (home, store, cluster) = (self.home.clone(), self.store.clone(), name.to_owned());
        let params = json!({"cluster": name});
        Ok(self
            .requests
            .submit("start", Some(name), params, move |progress: Progress| {
                Box::pin(async move {
                    let record = lifecycle::start(&home, &store, &cluster, &progress).await?;
                    progress(&format!("Started `{cluster}`."));
                    Ok(json!({"cluster": record.name, "status": "up"}))
                })
            })
            .await?)
    }

    /// Tears a cluster down (a request). One with no record is looked for on the clouds by its
    /// tag, so an orphan can be removed by name.
    /// Tears a cluster down (a request), copying its jobs' output first unless `skip_logs`.
    pub async fn down(&self, name: &str, skip_logs: bool) -> AppResult<Request> {
        aloft_provision::ClusterName::new(name.to_owned())
            .map_err(|err| AppError::Invalid(format!("`{name}`: {err}")))?;
        self.check_not_busy(name).await?;
        let (home, store, cluster) = (self.home.clone(), self.store.clone(), name.to_owned());
        let params = json!({"cluster": name});
        Ok(self
            .requests
            .submit("down", Some(name), params, move |progress: Progress| {
                Box::pin(async move {
                    // Its jobs' output outlives it: copied here first, when its head answers.
                    let live = store.cluster_fetch(&cluster).await?.is_some_and(|record| {
                        matches!(
                            record.status,
                            aloft_store::ClusterStatus::Up | aloft_store::ClusterStatus::Degraded
                        )
                    });
                    if live
                        && !skip_logs
                        && let Err(err) = logs::save_before_teardown(&home, &store, &cluster).await
                    {
                        progress(&format!(
                            "warning: could not copy the jobs' output of `{cluster}` before \
                             tearing it down: {err:#}"
                        ));
                    }
                    let mut providers = Providers::new();
                    let torn =
                        lifecycle::down(&home, &store, &cluster, &mut providers, &progress).await?;
                    progress(&format!("Terminated `{cluster}`."));
                    Ok(json!({"terminated": [cluster], "where": torn}))
                })
            })
            .await?)
    }

    /// Launches a task (a request): its cluster brought up, its job queued, its autostop set;
    /// the request's result is the [`crate::launch::TaskLaunched`]. Nothing of the task is
    /// stored with the request but its cluster and name (its secrets travel in memory only).
    pub async fn launch(&self, launch: crate::launch::TaskLaunch) -> AppResult<Request> {
        let name = launch.cluster.as_str().to_owned();
        self.check_not_busy(&name).await?;
        let (home, store) = (self.home.clone(), self.store.clone());
        let params = json!({"cluster": name, "task": launch.task.name});
        Ok(self
            .requests
            .submit("launch", Some(&name), params, move |progress: Progress| {
                Box::pin(async move {
                    let launched =
                        crate::launch::launch_task(&home, &store, launch, &progress).await?;
                    Ok(serde_json::to_value(launched)?)
                })
            })
            .await?)
    }

    pub async fn request(&self, id: &str) -> AppResult<Request> {
        self.store
            .request_fetch(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no request `{id}`")))
    }

    /// The newest `limit` requests, newest first.
    pub async fn requests(&self, limit: i64) -> AppResult<Vec<Request>> {
        Ok(self.store.request_list(limit).await?)
    }

    /// A request's progress lines numbered `from` on.
    pub async fn request_events(&self, id: &str, from: i64) -> AppResult<Vec<RequestEvent>> {
        self.request(id).await?;
        Ok(self.store.request_events(id, from).await?)
    }

    /// Changes whenever any request does (a line said, a state reached).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.requests.subscribe()
    }

    /// Cancels a request; false when it had already ended.
    pub async fn cancel(&self, id: &str) -> AppResult<bool> {
        self.request(id).await?;
        Ok(self.requests.cancel(id).await?)
    }

    /// A cluster's jobs, from its head node's agent.
    /// Where job `job` of cluster `name` (`None`: its latest) is read from: its head node
    /// while it is up, else the copy kept here (not with `follow`).
    pub async fn log_source(
        &self,
        name: &str,
        job: Option<i64>,
        follow: bool,
    ) -> AppResult<logs::Source> {
        aloft_provision::ClusterName::new(name.to_owned())
            .map_err(|err| AppError::Invalid(format!("`{name}`: {err}")))?;
        let known = self.store.cluster_fetch(name).await?.is_some();
        match logs::source(&self.home, &self.store, name, job, follow).await {
            Ok(source) => Ok(source),
            Err(err) if !known => Err(AppError::NotFound(format!("{err:#}"))),
            Err(err) => Err(not_running_is_conflict(err)),
        }
    }

    /// Streams a job's log from `source` to `sink` (its first item names the job); returns
    /// the job's end (`None`: a kept copy of a job that had not ended).
    pub async fn stream_logs(
        &self,
        source: logs::Source,
        job: Option<i64>,
        follow: bool,
        sink: &mut (dyn FnMut(logs::LogItem<'_>) -> anyhow::Result<()> + Send),
    ) -> anyhow::Result<Option<logs::LogsEnd>> {
        match source {
            logs::Source::Live { client, copies, .. } => {
                logs::follow_agent(&client, Some(&copies), job, follow, sink)
                    .await
                    .map(Some)
            }
            logs::Source::Kept { dir, job, .. } => logs::read_kept(&dir, job, sink),
        }
    }

    pub async fn jobs(&self, name: &str) -> AppResult<Vec<aloft_store::Job>> {
        self.recorded(name).await?;
        jobs::queue(&self.home, &self.store, name)
            .await
            .map_err(not_running_is_conflict)
    }

    /// Cancels a cluster's jobs (those named, or every unfinished one with `all`); with
    /// neither, cancels nothing.
    pub async fn cancel_jobs(
        &self,
        name: &str,
        ids: &[i64],
        all: bool,
    ) -> AppResult<Vec<aloft_store::Job>> {
        self.recorded(name).await?;
        if ids.is_empty() && !all {
            // Nothing named: nothing cancelled (the CLI asks its user to name jobs or --all).
            return Ok(Vec::new());
        }
        jobs::cancel(&self.home, &self.store, name, ids, all)
            .await
            .map_err(not_running_is_conflict)
    }

    /// Sets a cluster's autostop on its head node's agent (and records it): stop, or tear
    /// down with `down`, after `idle_minutes` idle (`None`: off).
    pub async fn autostop(
        &self,
        name: &str,
        idle_minutes: Option<u32>,
        down: bool,
    ) -> AppResult<()> {
        self.recorded(name).await?;
        let setting = aloft_agent::Autostop { idle_minutes, down };
        jobs::autostop(&self.home, &self.store, name, &setting)
            .await
            .map_err(not_running_is_conflict)
    }

    /// Where the open ports of the recorded clusters (only those named, if any) are reached.
    pub async fn endpoints(&self, only: &[String]) -> AppResult<Vec<jobs::Endpoint>> {
        Ok(jobs::endpoints(&self.home, &self.store, only).await?)
    }

    /// Whether any request is unfinished (a server that stops when idle waits for them).
    pub async fn busy(&self) -> bool {
        self.store
            .request_list_unfinished()
            .await
            .map_or(true, |unfinished| !unfinished.is_empty())
    }

    /// The application's figures in Prometheus' text format: clusters by cloud and status, the
    /// dollars per hour of every cluster not stopped, requests (running now, and how long the
    /// finished ones took), and the background tasks' activations and last duration.
    pub async fn render_metrics(&self, out: &mut String) -> AppResult<()> {
        use crate::metrics::{header, sample};
        use std::collections::BTreeMap;
        let mut counted: BTreeMap<(String, String), usize> = BTreeMap::new();
        let mut cost: BTreeMap<String, f64> = BTreeMap::new();
        for cluster in self.store.cluster_list().await? {
            let status = serde_json::to_value(cluster.status)
                .ok()
                .and_then(|status| status.as_str().map(str::to_owned))
                .unwrap_or_default();
            *counted.entry((cluster.cloud.clone(), status)).or_default() += 1;
            let hourly = cost.entry(cluster.cloud.clone()).or_default();
            if cluster.status != aloft_store::ClusterStatus::Stopped {
                *hourly += cluster.hourly_price * f64::from(cluster.num_nodes);
            }
        }
        header(
            out,
            "aloft_clusters",
            "Recorded clusters by cloud and status.",
            "gauge",
        );
        for ((cloud, status), count) in &counted {
            sample(
                out,
                "aloft_clusters",
                &["cloud", "status"],
                &[cloud, status],
                *count as f64,
            );
        }
        header(
            out,
            "aloft_clusters_cost_dollars_per_hour",
            "The catalog price per hour of every recorded cluster not stopped, by cloud.",
            "gauge",
        );
        for (cloud, dollars) in &cost {
            sample(
                out,
                "aloft_clusters_cost_dollars_per_hour",
                &["cloud"],
                &[cloud],
                *dollars,
            );
        }
        header(
            out,
            "aloft_requests_running",
            "Requests running in this server.",
            "gauge",
        );
        sample(
            out,
            "aloft_requests_running",
            &[],
            &[],
            self.requests.running() as f64,
        );
        self.requests.durations.render(out);
        let tasks = self.background();
        header(
            out,
            "aloft_background_task_activations_total",
            "Activations of each background task since the server started.",
            "counter",
        );
        for task in &tasks {
            let value = task.activations as f64;
            sample(
                out,
                "aloft_background_task_activations_total",
                &["task"],
                &[task.name],
                value,
            );
        }
        header(
            out,
            "aloft_background_task_last_duration_seconds",
            "How long each background task's last activation took.",
            "gauge",
        );
        for task in &tasks {
            if let Some(took) = task.last_duration {
                let name = "aloft_background_task_last_duration_seconds";
                sample(out, name, &["task"], &[task.name], took.as_secs_f64());
            }
        }
        Ok(())
    }

    pub fn background(&self) -> Vec<TaskStatus> {
        self.background.statuses()
    }

    /// Activates the background tasks (those named, or all) and waits for them.
    pub async fn activate(&self, only: Option<&[String]>) -> AppResult<Vec<TaskStatus>> {
        if let Some(names) = only {
            let known: Vec<&str> = self.background().iter().map(|task| task.name).collect();
            if let Some(unknown) = names.iter().find(|name| !known.contains(&name.as_str())) {
                return Err(AppError::Invalid(format!(
                    "no background task `{unknown}`; the tasks are {}",
                    known.join(", ")
                )));
            }
        }
        Ok(self.background.activate_and_wait(only).await)
    }
}

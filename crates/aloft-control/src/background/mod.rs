//! Background tasks: convergent work the server runs on its own, so the world is seen and
//! repaired without anyone typing a command (omicron's design: each task is activated by a
//! timer and on demand, takes no input, and reports what its last activation found).
//!
//! - [`saga_recovery`]: undo operations whose owner is gone (a killed command or server).
//! - [`cluster_status`]: ask the clouds for every recorded cluster and reconcile the records (a
//!   preempted or autostopped cluster is seen without anyone asking).
//! - [`orphan_sweep`]: instances the clouds have for clusters no record claims.
//!
//! Activations of one task never overlap; an activation asked for while one runs is run after
//! it (never merged into it), so "activate and wait" always sees the world after the ask.

pub mod cluster_status;
pub mod orphan_sweep;
pub mod saga_recovery;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tracing::Instrument as _;

/// A task's activation: looks at the world, converges it, and says what it found as JSON.
pub trait BackgroundTask: Send + 'static {
    fn activate(&mut self) -> Pin<Box<dyn Future<Output = serde_json::Value> + Send + '_>>;
}

/// What a task has done since the server started.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskStatus {
    pub name: &'static str,
    pub description: &'static str,
    pub period: Duration,
    pub activations: u64,
    pub running: bool,
    /// Unix seconds.
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    /// How long the last activation took.
    pub last_duration: Option<Duration>,
    pub last_status: serde_json::Value,
}

#[derive(Debug)]
struct Handle {
    status: Arc<Mutex<TaskStatus>>,
    activate: Arc<Notify>,
    /// Counts finished activations.
    finished: watch::Receiver<u64>,
}

/// The running background tasks.
#[derive(Debug, Default)]
pub struct Driver {
    tasks: Vec<Handle>,
}

impl Driver {
    /// Starts `task` on its own loop: activated at once, then every `period` and whenever
    /// asked.
    pub fn start(
        &mut self,
        name: &'static str,
        description: &'static str,
        period: Duration,
        mut task: impl BackgroundTask,
    ) {
        let status = Arc::new(Mutex::new(TaskStatus {
            name,
            description,
            period,
            activations: 0,
            running: false,
            last_started_at: None,
            last_finished_at: None,
            last_duration: None,
            last_status: serde_json::Value::Null,
        }));
        let activate = Arc::new(Notify::new());
        let (done, finished) = watch::channel(0u64);
        tokio::spawn({
            let (status, activate) = (status.clone(), activate.clone());
            async move {
                let mut timer = tokio::time::interval(period);
                timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = timer.tick() => {}
                        () = activate.notified() => {}
                    }
                    {
                        let mut status = status.lock().expect("task status");
                        status.running = true;
                        status.last_started_at = Some(crate::unix_now());
                    }
                    let started = std::time::Instant::now();
                    let found = task
                        .activate()
                        .instrument(tracing::info_span!("background", task = name))
                        .await;
                    let count = {
                        let mut status = status.lock().expect("task status");
                        status.running = false;
                        status.activations += 1;
                        status.last_finished_at = Some(crate::unix_now());
                        status.last_duration = Some(started.elapsed());
                        status.last_status = found;
                        status.activations
                    };
                    if done.send(count).is_err() {
                        return;
                    }
                }
            }
        });
        self.tasks.push(Handle {
            status,
            activate,
            finished,
        });
    }

    /// Every task's status, in the order they were started.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        self.tasks
            .iter()
            .map(|task| task.status.lock().expect("task status").clone())
            .collect()
    }

    /// Activates every task (or those named) and waits until each has run an activation that
    /// started after this call; returns their statuses then.
    pub async fn activate_and_wait(&self, only: Option<&[String]>) -> Vec<TaskStatus> {
        let mut waits = Vec::new();
        for task in &self.tasks {
            let (name, activations, running) = {
                let status = task.status.lock().expect("task status");
                (status.name, status.activations, status.running)
            };
            if only.is_some_and(|names| !names.iter().any(|wanted| wanted == name)) {
                continue;
            }
            // One running now started before the ask: wait for the one after it.
            let target = activations + if running { 2 } else { 1 };
            task.activate.notify_one();
            waits.push((task.finished.clone(), target));
        }
        for (mut finished, target) in waits {
            let _ = finished.wait_for(|count| *count >= target).await;
        }
        self.statuses()
            .into_iter()
            .filter(|status| only.is_none_or(|names| names.iter().any(|n| n == status.name)))
            .collect()
    }
}

//! What the store keeps. States are stored as their snake_case names.

use serde::{Deserialize, Serialize};

/// Where a cluster is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterStatus {
    /// Being launched (or relaunched); not usable yet.
    Init,
    Up,
    Stopped,
    /// Some nodes are gone (e.g. a spot node was preempted).
    Degraded,
    /// Being torn down.
    Terminating,
}

/// A cluster: the nodes of one launch, in one place, of one instance type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub status: ClusterStatus,
    pub cloud: String,
    pub region: String,
    pub zone: Option<String>,
    pub instance_type: String,
    pub num_nodes: u32,
    pub spot: bool,
    /// $/h for one node.
    pub hourly_price: f64,
    pub autostop_minutes: Option<u32>,
    /// Autostop tears the cluster down instead of stopping it.
    pub autostop_down: bool,
    /// The task's resources as JSON (what to relaunch with).
    pub resources: serde_json::Value,
    /// Bumped on every update; updates name the generation they read (optimistic concurrency).
    pub generation: i64,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which multi-step operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Launch,
    Stop,
    Start,
    Down,
}

/// Where an operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Steps are being taken; if no aloft process is running it, it was cut short.
    Running,
    /// Its steps are being undone, last first.
    Unwinding,
    Succeeded,
    /// Failed and fully undone.
    Unwound,
    /// Failed and could not be undone (needs the reconciler or a human).
    Failed,
}

impl OperationState {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            OperationState::Succeeded | OperationState::Unwound | OperationState::Failed
        )
    }
}

/// One recorded step of an operation and what it produced (instance ids, addresses, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub seq: u32,
    pub step: String,
    pub output: serde_json::Value,
    pub recorded_at: i64,
}

/// A multi-step operation and the steps it has completed, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    pub kind: OperationKind,
    pub cluster: String,
    pub state: OperationState,
    pub error: Option<String>,
    pub steps: Vec<StepRecord>,
    /// Who runs it (a process, or a server): only its owner may carry it on while the owner is
    /// alive. `None` on operations recorded before owners were (their owner is long gone).
    pub owner: Option<String>,
    /// When the owner last said it is still at work (unix seconds): a lease, for owners whose
    /// liveness cannot be asked directly (another machine).
    pub heartbeat_at: Option<i64>,
    /// What the operation was asked to do (cloud, region, plan ...), recorded with it, so
    /// whoever recovers it needs nothing else. `Null` on operations recorded before params were.
    pub params: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a job is. Pending → setting_up → running → succeeded | failed; setting_up →
/// failed_setup when its setup fails; cancelled from any unfinished state. A finished job never
/// changes state again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    SettingUp,
    Running,
    Succeeded,
    Failed,
    /// Its `setup` failed on some node, so `run` never started.
    FailedSetup,
    Cancelled,
}

impl JobState {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::FailedSetup | JobState::Cancelled
        )
    }
}

/// A job in a cluster's queue (kept by the head-node agent in its own database).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// 1, 2, 3, ... in submission order, per database.
    pub id: i64,
    pub name: Option<String>,
    pub state: JobState,
    /// What to run (the task, node addresses, ...), as the agent wants it.
    pub spec: serde_json::Value,
    pub submitted_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Per node rank, the exit code of the last phase that ran.
    pub exit_codes: Option<serde_json::Value>,
    /// The process running the job, to cancel it.
    pub runner_pid: Option<i64>,
}

/// `Up` → `"up"`, through serde so the stored names are the JSON names.
pub(crate) fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

pub(crate) fn enum_from_name<T: for<'de> Deserialize<'de>>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_failure_is_its_own_finished_state() {
        assert_eq!(enum_name(&JobState::FailedSetup), "failed_setup");
        assert_eq!(
            enum_from_name::<JobState>("failed_setup"),
            Some(JobState::FailedSetup)
        );
        assert!(JobState::FailedSetup.is_finished());
    }
}

/// Where a request is. Pending → running → succeeded | failed | cancelled; a finished request
/// never changes again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RequestState {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RequestState::Succeeded | RequestState::Failed | RequestState::Cancelled
        )
    }
}

/// Long work a client asked the server for, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    /// `launch`, `stop`, `start`, `down`, ... (the control plane's names).
    pub kind: String,
    /// The cluster it acts on, if one.
    pub cluster: Option<String>,
    pub state: RequestState,
    /// What was asked, as the control plane recorded it.
    pub params: serde_json::Value,
    /// What it produced, once succeeded.
    pub result: Option<serde_json::Value>,
    /// Why it failed, once failed or cancelled.
    pub error: Option<String>,
    /// The server running it (see `Operation::owner`).
    pub owner: Option<String>,
    /// When its server last said it still runs it (unix seconds): how a server on another
    /// machine is judged alive.
    pub heartbeat_at: Option<i64>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// A line of a request's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEvent {
    /// From 0, in the order the lines were said.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    pub line: String,
}

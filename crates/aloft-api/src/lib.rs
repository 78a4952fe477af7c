//! The types of aloft's HTTP API, shared by the server, the typed client and the CLI.
//!
//! These are views made for users, converted by hand from the control plane's records at the
//! server's edge (rust-analyzer's rule: the crate that speaks the protocol owns its serializable
//! counterparts). Fields are added, never renamed or removed; `docs/openapi.json` is generated
//! from them and a test checks it is current.
//!
//! Routes live under [`PREFIX`]. Long work (stop, start, down, and launch to come) is a
//! *request*: the route answers `202 Accepted` with an [`Accepted`] at once, and the request's
//! progress is read as [`RequestEvent`]s (a stream of server-sent events) until it ends.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where every route lives.
pub const PREFIX: &str = "/api/v1";

/// The header the server's token goes in, as `Bearer <token>`.
pub const AUTHORIZATION: &str = "authorization";

/// `GET /api/v1/health`: the server answers (no token needed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers.
    pub status: String,
    /// The server's version (aloft's).
    pub version: String,
    /// The server's process id, so a local client can tell whose server it reached.
    pub pid: u32,
}

/// Where a cluster is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterStatus {
    /// Being launched (or relaunched); not usable yet.
    Init,
    Up,
    Stopped,
    /// Some nodes are gone (a preempted spot node, say).
    Degraded,
    /// Being torn down.
    Terminating,
}

/// A cluster as `aloft status` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
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
    /// Minutes idle before the cluster stops itself (or is torn down, with `autostop_down`).
    pub autostop_minutes: Option<u32>,
    pub autostop_down: bool,
    /// The ports its task opened (`resources.ports`), as written (`8080`, `9000-9010`).
    pub ports: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// What the cloud said of it at the last refresh (`up`, `stopped`, `degraded`, ...);
    /// absent until a refresh asked.
    pub live_state: Option<String>,
    /// Nodes running at the last refresh.
    pub running_nodes: Option<u32>,
}

/// Where a request is. Pending → running → succeeded | failed | cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

/// `202 Accepted`: the work was recorded and runs in the server; follow it by its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub request_id: String,
}

/// Long work a client asked for, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Request {
    pub id: String,
    /// `stop`, `start`, `down`, ...
    pub kind: String,
    /// The cluster it acts on, if one.
    pub cluster: Option<String>,
    pub state: RequestState,
    /// Unix seconds.
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// What it produced, once succeeded (the kind's own result document).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
}

/// A line of a request's progress. On the events route each is one server-sent event whose
/// `id` is `seq` and whose `data` is this object as JSON; the stream ends with an event named
/// `end` whose data is the finished [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RequestEvent {
    /// From 0, in the order the lines were said.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    pub line: String,
}

/// `POST /api/v1/clusters/{name}/down`'s body (all fields may be left out).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DownBody {
    /// Skip copying the jobs' output off the head node first.
    #[serde(default)]
    pub skip_logs: bool,
}

/// `POST /api/v1/launch`'s body: one task, where to run it, and what to set on its cluster.
/// The client reads and checks the task file (`--env`/`--secret` merged, variables filled) and
/// sends the task in aloft's task model; its secrets' values travel in this body only, and are
/// never stored, logged or answered.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchBody {
    /// The cluster: made if there is none of that name; reused if up, started if stopped,
    /// repaired if it lost nodes (the task must fit it).
    #[schema(pattern = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")]
    pub cluster: String,
    /// The task, as aloft's task model (`aloft_types::Task`) writes it in JSON.
    #[schema(value_type = Object)]
    pub task: serde_json::Value,
    /// The task's secrets' values by name (the task model writes them as `"<redacted>"`).
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, String>,
    /// The directory the task's relative paths (workdir, file mounts) start from, on the
    /// server's machine.
    pub base_dir: String,
    /// How a new cluster is planned.
    #[serde(default)]
    pub plan: PlanOptions,
    /// When no placement is left, wait and try again until one works.
    #[serde(default)]
    pub retry_until_up: bool,
    /// Stop the cluster (with `down`: tear it down) after this many idle minutes, decided on the
    /// cluster itself.
    #[serde(default, deserialize_with = "whole::option_u32")]
    pub idle_minutes: Option<u32>,
    /// With `idle_minutes` or `detach`: tear down instead of stopping.
    #[serde(default)]
    pub down: bool,
    /// The client will not follow the job: with `down`, the cluster tears itself down once the
    /// job is over.
    #[serde(default)]
    pub detach: bool,
}

/// Never shows the secrets' values.
impl std::fmt::Debug for LaunchBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchBody")
            .field("cluster", &self.cluster)
            .field("task", &self.task)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("base_dir", &self.base_dir)
            .field("plan", &self.plan)
            .field("retry_until_up", &self.retry_until_up)
            .field("idle_minutes", &self.idle_minutes)
            .field("down", &self.down)
            .field("detach", &self.detach)
            .finish()
    }
}

/// What the plan of a new cluster minimizes, and its limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanOptions {
    #[serde(default)]
    pub objective: Objective,
    /// Never more per hour for the task (all its nodes), in $.
    pub max_hourly_price: Option<f64>,
    /// Never a run estimated to cost more, in $.
    pub budget: Option<f64>,
    /// Never a run estimated to emit more, in grams of CO2.
    pub max_carbon_g: Option<f64>,
    /// Places not to use: `aws`, `aws/us-east-1`, `gcp/us-central1/us-central1-a`.
    #[serde(default)]
    pub blocked: Vec<String>,
    /// Runtime assumed for a task that gives no `estimated_runtime`, in hours.
    #[serde(default = "one_hour")]
    pub default_runtime_hours: f64,
    /// Search at most this long for the best plan, in seconds (absent: until proven optimal).
    #[serde(default)]
    pub deadline_seconds: Option<f64>,
    /// A SkyPilot-format catalog directory (on the server's machine) whose clouds replace the
    /// bundled ones.
    #[serde(default)]
    pub catalog: Option<String>,
    /// What importing that catalog does with outlying prices: `keep`, `drop` or `warn`.
    #[serde(default)]
    pub catalog_outliers: Option<String>,
    /// A CSV of hourly carbon intensity (on the server's machine) over the catalog's own.
    #[serde(default)]
    pub carbon_intensity: Option<String>,
    /// When the run starts, in Unix seconds: carbon is counted at the hourly intensity over the
    /// hours each task runs. Absent: at each region's annual average.
    #[serde(default)]
    pub start_time: Option<i64>,
    /// Plan within this slack of the best plan on one measure (overrides the tasks' own
    /// `carbon_slack`/`cost_slack`).
    #[serde(default)]
    pub slack: Option<PlanSlack>,
}

/// A slack: the plan is held within `percent` of the best plan on `measure`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanSlack {
    pub measure: SlackMeasure,
    /// `10.0` is 10 %; 0 or more.
    pub percent: f64,
}

/// What a slack is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlackMeasure {
    /// The cheapest (or fastest) plan within the slack of the lowest carbon.
    Carbon,
    /// The lowest-carbon (or fastest) plan within the slack of the lowest cost.
    Cost,
}

fn one_hour() -> f64 {
    1.0
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions {
            objective: Objective::Cost,
            max_hourly_price: None,
            budget: None,
            max_carbon_g: None,
            blocked: Vec::new(),
            default_runtime_hours: one_hour(),
            deadline_seconds: Some(5.0),
            catalog: None,
            catalog_outliers: None,
            carbon_intensity: None,
            start_time: None,
            slack: None,
        }
    }
}

/// What a plan minimizes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    #[default]
    Cost,
    /// The DAG's finish time.
    Time,
    /// Estimated grams of CO2 (ties broken by cost).
    Carbon,
}

/// A launch request's result: the cluster up and the task's job queued on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Launched {
    pub cluster: String,
    pub job_id: i64,
    /// How many nodes the job runs on.
    pub nodes: u32,
    /// Where a new cluster was planned (absent for a recorded cluster: it stays where it is).
    #[schema(value_type = Option<Object>)]
    pub placement: Option<serde_json::Value>,
    /// `created`, `reused`, `started`, or `{"repaired": {"nodes": [..]}}`.
    #[schema(value_type = Object)]
    pub launched: serde_json::Value,
    /// The autostop set on the cluster, if any.
    pub autostop: Option<Autostop>,
}

/// A background task of the server: convergent work activated by a timer and on demand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BackgroundTask {
    /// `saga_recovery`, `cluster_status`, `orphan_sweep`.
    pub name: String,
    pub description: String,
    /// Seconds between activations by the timer.
    pub period_seconds: u64,
    /// Activations finished since the server started.
    pub activations: u64,
    /// Unix seconds, when the last activation started and finished.
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    /// What the last activation found (the task's own document).
    #[schema(value_type = Object)]
    pub last_status: serde_json::Value,
}

/// `POST /api/v1/background/activate`'s answer: the tasks after the activation they ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Activated {
    pub tasks: Vec<BackgroundTask>,
}

/// What went wrong, for every refused or failed route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body or a parameter is malformed or of the wrong shape (400/422).
    BadRequest,
    /// No token, or a wrong one (401).
    Unauthorized,
    /// No such cluster, request or route (404).
    NotFound,
    /// The thing is busy or in a state that forbids it (409).
    Conflict,
    /// The server failed; its log says more (500).
    Internal,
    /// The server is stopping (its state database was moved aside or replaced, say); ask a
    /// new one (503).
    Unavailable,
}

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    /// For the user: what went wrong and, where it helps, what to do.
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// Where a job is in a cluster's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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

/// A job in a cluster's queue, as its head node's agent keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// 1, 2, 3, ... in submission order.
    pub id: i64,
    pub name: Option<String>,
    pub state: JobState,
    /// Unix seconds.
    pub submitted_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// Per node rank, the exit code of the last phase that ran (`{"0": 0, "1": 143}`), or
    /// `{"error": "why"}` when the job failed without one.
    #[schema(value_type = Option<Object>)]
    pub exit_codes: Option<serde_json::Value>,
}

impl JobState {
    /// Whether the job is over (it changes no more).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::FailedSetup | JobState::Cancelled
        )
    }
}

/// Which of a node's streams a piece of output came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutStream {
    Stdout,
    Stderr,
}

/// One event of a job's log (`GET /api/v1/clusters/{name}/logs`: one JSON object per line).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LogEvent {
    /// The first event: which job, and on how many nodes.
    Job { job_id: i64, nodes: u32 },
    /// What a node printed, as it came: not cut into lines (bytes that are not UTF-8 are
    /// replaced).
    Output {
        rank: u32,
        stream: OutStream,
        text: String,
    },
    /// A word from the server, e.g. that the log is the copy kept since the cluster stopped.
    Notice { message: String },
    /// The last event: the job's state (ended, when followed) and its exit codes as in
    /// [`Job::exit_codes`].
    End {
        job_id: i64,
        state: JobState,
        #[schema(value_type = Option<Object>)]
        exit_codes: Option<serde_json::Value>,
    },
    /// The stream broke after it had begun (its cluster went away, say); what came before
    /// stands.
    Error { message: String },
}

/// `POST /api/v1/clusters/{name}/jobs/cancel`'s body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelJobsBody {
    /// The jobs to cancel.
    #[serde(default, deserialize_with = "whole::vec_i64")]
    pub jobs: Vec<i64>,
    /// Every unfinished job instead.
    #[serde(default)]
    pub all: bool,
}

/// A cluster's autostop: the body of `POST /api/v1/clusters/{name}/autostop` and its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Autostop {
    /// Stop (or tear down) after this many minutes without a queued or running job; absent or
    /// null: autostop off.
    #[serde(default, deserialize_with = "whole::option_u32")]
    pub idle_minutes: Option<u32>,
    /// Tear the cluster down instead of stopping it.
    #[serde(default)]
    pub down: bool,
}

/// A port a cluster's task opened, and the address that reaches it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    pub cluster: String,
    /// `8080`, or a range `9000-9010`.
    pub port: String,
    /// `ADDRESS:PORT`.
    pub endpoint: String,
}

/// Integers as JSON Schema's `integer` allows them: also written with a zero fraction (`3.0`),
/// and, in a query string, as text (`?limit=3`, `?limit=3.0`); `3.5` is refused.
pub mod whole {
    use serde::Deserializer;
    use serde::de::{Error, SeqAccess, Visitor};
    use std::fmt;

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = i64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_i64<E: Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }
        fn visit_u64<E: Error>(self, value: u64) -> Result<i64, E> {
            i64::try_from(value).map_err(|_| E::custom(format!("{value} is too large")))
        }
        fn visit_f64<E: Error>(self, value: f64) -> Result<i64, E> {
            if value.fract() == 0.0 && value.abs() < 9.0e15 {
                Ok(value as i64)
            } else {
                Err(E::custom(format!("{value} is not a whole number")))
            }
        }
        fn visit_str<E: Error>(self, value: &str) -> Result<i64, E> {
            match value.parse::<i64>() {
                Ok(number) => Ok(number),
                Err(_) => match value.parse::<f64>() {
                    Ok(number) if number.is_finite() => self.visit_f64(number),
                    _ => Err(E::custom(format!("`{value}` is not a whole number"))),
                },
            }
        }
    }

    fn one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        deserializer.deserialize_any(Whole)
    }

    struct Optional;

    impl<'de> Visitor<'de> for Optional {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a whole number or null")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            one(d).map(Some)
        }
        fn visit_i64<E: Error>(self, value: i64) -> Result<Self::Value, E> {
            Whole.visit_i64(value).map(Some)
        }
        fn visit_u64<E: Error>(self, value: u64) -> Result<Self::Value, E> {
            Whole.visit_u64(value).map(Some)
        }
        fn visit_f64<E: Error>(self, value: f64) -> Result<Self::Value, E> {
            Whole.visit_f64(value).map(Some)
        }
        fn visit_str<E: Error>(self, value: &str) -> Result<Self::Value, E> {
            Whole.visit_str(value).map(Some)
        }
    }

    /// An optional whole number.
    pub fn option_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_option(Optional)
    }

    /// An optional whole number from 0 to `u32::MAX`.
    pub fn option_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        option_i64(d)?
            .map(|value| {
                u32::try_from(value).map_err(|_| {
                    D::Error::custom(format!("{value} is out of range (0 to {})", u32::MAX))
                })
            })
            .transpose()
    }

    /// A list of whole numbers.
    pub fn vec_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
        struct List;
        impl<'de> Visitor<'de> for List {
            type Value = Vec<i64>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of whole numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<i64>, A::Error> {
                struct Item(i64);
                impl<'de> serde::Deserialize<'de> for Item {
                    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Item, D::Error> {
                        one(d).map(Item)
                    }
                }
                let mut items = Vec::new();
                while let Some(Item(value)) = seq.next_element()? {
                    items.push(value);
                }
                Ok(items)
            }
        }
        d.deserialize_seq(List)
    }
}

/// Where a local server keeps what its clients on this machine read: under
/// `$ALOFT_HOME/server/`, private to the user (0700; files 0600).
pub mod local {
    use serde::{Deserialize, Serialize};
    use std::path::{Path, PathBuf};

    pub fn dir(home: &Path) -> PathBuf {
        home.join("server")
    }

    /// The token every route but health and the OpenAPI document asks for.
    pub fn token_path(home: &Path) -> PathBuf {
        dir(home).join("token")
    }

    /// The running server's [`ServerInfo`], written once it listens, removed when it stops.
    pub fn info_path(home: &Path) -> PathBuf {
        dir(home).join("api.json")
    }

    /// Held (an exclusive lock) by the one server of this home while it runs.
    pub fn lock_path(home: &Path) -> PathBuf {
        dir(home).join("server.lock")
    }

    /// Taken by a client while it starts a server, so two clients never start two.
    pub fn start_lock_path(home: &Path) -> PathBuf {
        dir(home).join("start.lock")
    }

    /// A server started in the background writes its log here.
    pub fn log_path(home: &Path) -> PathBuf {
        dir(home).join("server.log")
    }

    /// The server elsewhere `aloft api login` chose for this home's commands ([`Remote`]).
    pub fn remote_path(home: &Path) -> PathBuf {
        dir(home).join("remote.json")
    }

    /// A server this home's commands use instead of their own, and its token (the file is
    /// private: 0600).
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Remote {
        pub url: String,
        pub token: String,
    }

    /// Writes a file under a home's server directory readable by its owner only (0600, in a
    /// 0700 directory made if missing), whole or not at all: a reader sees the old file or the
    /// new one, never half of it (a temporary file of this process, synced and renamed).
    pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let temp = path.with_extension(format!("partial-{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    }

    /// Where a local server listens, and who it is.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ServerInfo {
        /// `http://127.0.0.1:PORT`.
        pub url: String,
        pub pid: u32,
        pub version: String,
        /// Unix seconds.
        pub started_at: i64,
    }
}

//! The task spec: what a user asks aloft to run, as parsed from SkyPilot-compatible YAML.
//!
//! A file holds one task, a DAG (`tasks:` with `depends_on`), or a SkyPilot pipeline (several
//! YAML documents separated by `---`, run as a chain). All three become a [`Dag`].
//!
//! Resource alternatives (`any_of`, `ordered`, and accelerator lists/sets) are expanded at parse
//! time into a flat list of [`Resources`] options, so the optimizer sees one shape.

use crate::infra::Infra;
use crate::quantity::{Amount, Duration, Size};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod fields;
mod parse;
mod resources;
mod substitute;
mod task;
mod yaml;

pub use parse::{SpecError, SpecErrors, parse_dag, parse_dag_with_warnings};
pub use yaml::MAX_SOURCE_BYTES;

/// Index of a task in [`Dag::tasks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskIdx(pub usize);

/// A set of tasks and the data dependencies between them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dag {
    pub name: Option<String>,
    pub tasks: Vec<Task>,
    /// `(parent, child)`: the child starts after the parent and reads its outputs.
    pub edges: Vec<(TaskIdx, TaskIdx)>,
    /// Set for SkyPilot's job group (a header document with `execution: parallel`): the tasks
    /// have no edges and run at once, as one unit.
    pub job_group: Option<JobGroup>,
}

/// SkyPilot's job group header: which tasks drive the group's life, and how long the others
/// get to finish once those are done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobGroup {
    /// Task names whose end ends the group; empty means every task is primary.
    pub primary_tasks: Vec<String>,
    pub termination_delay: Option<TerminationDelay>,
}

/// How long auxiliary tasks of a job group run on after the primary ones finish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TerminationDelay {
    /// For tasks not named in `per_task` (`termination_delay: 30s`, or its `default:`).
    pub default: Option<Duration>,
    pub per_task: BTreeMap<String, Duration>,
}

/// SkyPilot's `pool:` section: the task describes the workers of a pool that jobs are sent to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    pub workers: Option<u32>,
    pub min_workers: Option<u32>,
    pub max_workers: Option<u32>,
}

impl Dag {
    /// A DAG of one task.
    pub fn single(task: Task) -> Dag {
        Dag {
            name: task.name.clone(),
            tasks: vec![task],
            edges: Vec::new(),
            job_group: None,
        }
    }

    pub fn parents(&self, child: TaskIdx) -> impl Iterator<Item = TaskIdx> + '_ {
        self.edges
            .iter()
            .filter(move |(_, c)| *c == child)
            .map(|(p, _)| *p)
    }

    /// Every task, each after all its parents; among tasks free to go, the earlier in the file
    /// first (so a pipeline runs in the order written). Edges that form a cycle are refused by
    /// the parser; should one reach here, the tasks on it come last, in file order.
    pub fn topological_order(&self) -> Vec<TaskIdx> {
        let mut waiting: Vec<usize> = vec![0; self.tasks.len()];
        for (_, child) in &self.edges {
            waiting[child.0] += 1;
        }
        let mut ready: std::collections::BTreeSet<usize> = (0..self.tasks.len())
            .filter(|&idx| waiting[idx] == 0)
            .collect();
        let mut order = Vec::with_capacity(self.tasks.len());
        while let Some(idx) = ready.pop_first() {
            order.push(TaskIdx(idx));
            for (parent, child) in &self.edges {
                if parent.0 == idx {
                    waiting[child.0] -= 1;
                    if waiting[child.0] == 0 {
                        ready.insert(child.0);
                    }
                }
            }
        }
        if order.len() < self.tasks.len() {
            let placed: std::collections::BTreeSet<TaskIdx> = order.iter().copied().collect();
            order.extend(
                (0..self.tasks.len())
                    .map(TaskIdx)
                    .filter(|idx| !placed.contains(idx)),
            );
        }
        order
    }

    /// The display name of a task: its `name`, or `task-N`.
    pub fn task_name(&self, idx: TaskIdx) -> String {
        self.tasks[idx.0]
            .name
            .clone()
            .unwrap_or_else(|| format!("task-{}", idx.0))
    }
}

/// A task's secrets: names to values (`None`: to be supplied at launch). Read and change them as
/// the map they deref to; their values never show in `Debug` or in what is serialized (written
/// as `"<redacted>"`), so a task printed or stored by mistake carries no secret.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secrets(pub BTreeMap<String, Option<String>>);

/// What a secret's value is shown as.
pub const REDACTED: &str = "<redacted>";

impl Secrets {
    fn redacted(&self) -> BTreeMap<&str, Option<&'static str>> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_ref().map(|_| REDACTED)))
            .collect()
    }
}

impl std::ops::Deref for Secrets {
    type Target = BTreeMap<String, Option<String>>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Secrets {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

impl Serialize for Secrets {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.redacted().serialize(serializer)
    }
}

/// One task: where it may run (`resources`), what it runs, and what data it reads and writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub name: Option<String>,
    pub workdir: Option<String>,
    pub num_nodes: u32,
    /// Environment variables. `None` is SkyPilot's `null` placeholder: the value must be
    /// supplied at launch.
    pub envs: BTreeMap<String, Option<String>>,
    /// Like `envs`, but never shown in logs or stored in plain text.
    pub secrets: Secrets,
    pub file_mounts: BTreeMap<String, FileMount>,
    pub setup: Option<String>,
    pub run: Option<String>,
    pub resources: ResourceChoice,
    /// How long the task runs when an option gives no estimate of its own. `None`: unknown
    /// (the optimizer assumes a default and says so).
    pub estimated_runtime: Option<Duration>,
    /// Data the task reads, with where it lives.
    pub inputs: Vec<DataInput>,
    /// Data the task writes; stored where the task runs and read by its dependents.
    pub outputs: Option<DataOutput>,
    /// SkyPilot's `service` section (SkyServe), kept as written: aloft does not serve yet, but
    /// fills its variables like SkyPilot so an unset one is caught.
    pub service: Option<SpecValue>,
    /// SkyPilot's task `volumes` (mount path to volume), kept as written, like `service`.
    pub volumes: Option<SpecValue>,
    /// SkyPilot's `pool:`: this task sets up a pool's workers (aloft does not run pools yet).
    pub pool: Option<Pool>,
    /// aloft's `carbon_slack: 10%`: plan among the plans emitting at most this many percent
    /// more than the lowest-carbon plan (the cheapest of them, or under `--optimize time` the
    /// fastest). For the whole plan: every task that gives it must give the same.
    #[serde(default)]
    pub carbon_slack: Option<f64>,
    /// aloft's `cost_slack: 10%`: plan among the plans costing at most this many percent more
    /// than the cheapest plan (the lowest-carbon of them, or under `--optimize time` the
    /// fastest). For the whole plan, like `carbon_slack`.
    #[serde(default)]
    pub cost_slack: Option<f64>,
}

impl Task {
    /// A task with default resources and nothing to run; a convenient base for tests.
    pub fn new(name: impl Into<String>) -> Task {
        Task {
            name: Some(name.into()),
            workdir: None,
            num_nodes: 1,
            envs: BTreeMap::new(),
            secrets: Secrets::default(),
            file_mounts: BTreeMap::new(),
            setup: None,
            run: None,
            resources: ResourceChoice::single(Resources::default()),
            estimated_runtime: None,
            inputs: Vec::new(),
            outputs: None,
            service: None,
            volumes: None,
            pool: None,
            carbon_slack: None,
            cost_slack: None,
        }
    }
}

/// A part of the spec kept as the user wrote it, for sections aloft does not interpret yet.
/// Scalars keep their text (`2` is `Text("2")`); mappings keep their order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SpecValue {
    Null,
    Text(String),
    List(Vec<SpecValue>),
    Map(Vec<(String, SpecValue)>),
}

/// Why a task's launch-time values do not add up: a placeholder left unset, or a variable used
/// in a file mount, `workdir`, `service` or `volumes` that nothing sets. Names only, never
/// values (they may be secrets).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskValuesError {
    #[error(transparent)]
    Missing(#[from] MissingValues),
    #[error(
        "{}{field} uses ${variable}, which is set in neither `envs` nor `secrets` (pass --env {variable}=VALUE)",
        in_task(.task.as_deref())
    )]
    UnsetVariable {
        task: Option<String>,
        /// Where the variable is used, such as `file_mounts./data.name`.
        field: String,
        variable: String,
    },
    #[error(
        "{}{field}: `{written}` does not name a store once filled in; expected one of {}",
        in_task(.task.as_deref()),
        substitute::STORES.join(", ")
    )]
    NotAStore {
        task: Option<String>,
        field: String,
        /// The field as written in the spec (with its variables, never their values).
        written: String,
    },
    #[error(
        "{}{field}: `{written}` does not name a mount mode once filled in; expected one of {}",
        in_task(.task.as_deref()),
        substitute::MOUNT_MODES.join(", ")
    )]
    NotAMode {
        task: Option<String>,
        field: String,
        written: String,
    },
}

/// `task `x`: ` for a named task (in a DAG the field alone would not say which task).
fn in_task(task: Option<&str>) -> String {
    task.map_or_else(String::new, |name| format!("task `{name}`: "))
}

/// Values a task needs at launch and was not given: SkyPilot's `null` placeholders in `envs`
/// and `secrets` left unset by `--env`/`--secret`. Names only, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", missing_text(.task.as_deref(), .envs, .secrets))]
pub struct MissingValues {
    pub task: Option<String>,
    /// `envs` entries still null.
    pub envs: Vec<String>,
    /// `secrets` entries still null.
    pub secrets: Vec<String>,
}

fn missing_text(task: Option<&str>, envs: &[String], secrets: &[String]) -> String {
    let mut wants = Vec::new();
    if !envs.is_empty() {
        wants.push(format!(
            "a value for {} (pass --env NAME=VALUE)",
            envs.join(", ")
        ));
    }
    if !secrets.is_empty() {
        wants.push(format!(
            "the secret {} (pass --secret NAME=VALUE, or --secret NAME with NAME set in the \
             environment)",
            secrets.join(", ")
        ));
    }
    let who = task.map_or_else(|| "the task".to_owned(), |name| format!("task `{name}`"));
    format!("{who} needs {}", wants.join(" and "))
}

impl Task {
    /// The task with launch-time values merged over its spec's (`--env`, `--secret`: a name
    /// given there wins, as in SkyPilot), and checked: every `null` placeholder left in `envs`
    /// or `secrets` is named in the error. Then `$VAR`/`${VAR}` in file mounts, `workdir`,
    /// `service` and `volumes` are filled from those values, as SkyPilot does; a variable
    /// nothing sets is an error naming it. Pure; the caller resolves `--secret NAME` from its
    /// environment first. A dry run and a launch both go through here.
    pub fn with_overrides(
        &self,
        envs: &[(String, String)],
        secrets: &[(String, String)],
    ) -> Result<Task, TaskValuesError> {
        let mut task = self.clone();
        for (name, value) in envs {
            task.envs.insert(name.clone(), Some(value.clone()));
        }
        for (name, value) in secrets {
            task.secrets.insert(name.clone(), Some(value.clone()));
        }
        let unset = |map: &BTreeMap<String, Option<String>>| -> Vec<String> {
            map.iter()
                .filter(|(_, value)| value.is_none())
                .map(|(name, _)| name.clone())
                .collect()
        };
        let (missing_envs, missing_secrets) = (unset(&task.envs), unset(&task.secrets));
        if !missing_envs.is_empty() || !missing_secrets.is_empty() {
            return Err(TaskValuesError::Missing(MissingValues {
                task: task.name.clone(),
                envs: missing_envs,
                secrets: missing_secrets,
            }));
        }
        substitute::fill_task(
            &task,
            &substitute::Values {
                envs: &task.envs,
                secrets: &task.secrets,
            },
        )
    }
}

/// The resource options of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceChoice {
    /// At least one option. Each is a complete set of requirements.
    pub options: Vec<Resources>,
    /// `true` for `ordered`: the options are a preference order and the optimizer takes the
    /// first one that is feasible. `false` for a single option or `any_of`: the best one wins.
    pub ordered: bool,
}

impl ResourceChoice {
    pub fn single(resources: Resources) -> ResourceChoice {
        ResourceChoice {
            options: vec![resources],
            ordered: false,
        }
    }
}

/// One complete set of resource requirements.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Where the task must run; empty means anywhere.
    pub infra: Infra,
    pub instance_type: Option<String>,
    pub cpus: Option<Amount>,
    /// Memory in GiB.
    pub memory: Option<Amount>,
    pub accelerator: Option<Accelerator>,
    pub use_spot: bool,
    /// Disk size in GiB.
    pub disk_size: Option<u32>,
    pub ports: Vec<PortRange>,
    pub image_id: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// How long the task runs on this option (overrides the task's estimate).
    pub estimated_runtime: Option<Duration>,
}

/// An accelerator requirement: `V100:4` is name `V100`, count 4.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accelerator {
    pub name: String,
    /// Usually whole; fractional counts (e.g. `0.5`) are allowed as in SkyPilot.
    pub count: f64,
}

/// A TCP port or an inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// What is mounted at a path on the nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FileMount {
    /// A local path or a bucket URI copied to the nodes.
    Copy { source: String },
    /// A bucket, SkyPilot's storage form (`name`, `source`, `store`, `mode`).
    Storage {
        name: Option<String>,
        /// `source`: none, one, or SkyPilot's list of local paths uploaded into one bucket.
        sources: Vec<String>,
        /// Lowercase (`s3`, `gcs`, ...), once any variable in it is filled in.
        store: Option<String>,
        /// Uppercase (`MOUNT`, `COPY`, `MOUNT_CACHED`), likewise.
        mode: Option<String>,
    },
}

/// Data a task reads: where it lives and how much of it there is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInput {
    /// `s3://bucket/path`, `gs://...`, `https://account.blob.core.windows.net/...`, or a local path.
    pub path: String,
    /// Where the data lives (from the URI scheme, or given explicitly).
    pub infra: Infra,
    pub size: Size,
}

/// Data a task writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataOutput {
    pub path: Option<String>,
    pub size: Size,
}

#[cfg(test)]
mod override_tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn launch_values_fill_placeholders_and_override_the_spec() {
        let mut task = Task::new("train");
        task.envs.insert("MODEL".into(), Some("small".into()));
        task.envs.insert("DATA".into(), None);
        task.secrets.insert("HF_TOKEN".into(), None);
        task.secrets
            .insert("WANDB_KEY".into(), Some("from-yaml".into()));
        let merged = task
            .with_overrides(
                &pairs(&[("DATA", "s3://x"), ("MODEL", "big")]),
                &pairs(&[("HF_TOKEN", "hf-1")]),
            )
            .unwrap();
        assert_eq!(merged.envs["MODEL"].as_deref(), Some("big"));
        assert_eq!(merged.envs["DATA"].as_deref(), Some("s3://x"));
        assert_eq!(merged.secrets["HF_TOKEN"].as_deref(), Some("hf-1"));
        assert_eq!(merged.secrets["WANDB_KEY"].as_deref(), Some("from-yaml"));
    }

    #[test]
    fn a_required_secret_left_unset_is_named_without_any_value() {
        let mut task = Task::new("train");
        task.envs.insert("DATA".into(), None);
        task.secrets.insert("HF_TOKEN".into(), None);
        task.secrets
            .insert("OTHER".into(), Some("hidden-value".into()));
        let TaskValuesError::Missing(missing) = task.with_overrides(&[], &[]).unwrap_err() else {
            panic!("expected missing values");
        };
        assert_eq!(missing.envs, ["DATA"]);
        assert_eq!(missing.secrets, ["HF_TOKEN"]);
        let text = missing.to_string();
        assert!(
            text.starts_with("task `train` needs a value for DATA"),
            "{text}"
        );
        assert!(text.contains("the secret HF_TOKEN"), "{text}");
        assert!(!text.contains("hidden-value"));
    }
}

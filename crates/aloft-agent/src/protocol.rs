//! What the client and the agent exchange. Requests go as JSON on the standard input of an
//! `aloft agent` command (never on its command line, which every user of the node can read:
//! a job's secrets travel in it), answers come back as JSON on stdout (log streams as one JSON
//! object per line), so nothing depends on the text either side prints for people.

use aloft_store::JobState;
use serde::{Deserialize, Serialize};

/// The agent's directory under the login user's home on the head node.
pub const AGENT_DIR: &str = ".aloft-agent";

/// Where the client puts the `aloft` binary on the head node, relative to the login home.
pub const AGENT_BIN: &str = ".aloft-agent/bin/aloft";

/// The cluster as the agent needs to know it: which nodes to run on and how to reach them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub cluster: String,
    /// The user the agent logs in as on the workers.
    pub ssh_user: String,
    /// Every node, head (rank 0) first.
    pub nodes: Vec<NodeInfo>,
    /// How a node powers itself off, from the cluster's provider; `None`: it can't, and
    /// autostop is refused.
    pub power_off: Option<PowerOff>,
}

/// A node of the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub rank: u32,
    /// Its private address: what the other nodes (and the agent) reach it at.
    pub address: String,
    /// Its SSH host key (`ssh-ed25519 AAAA...`), pinned by the agent as by the client.
    pub host_key: String,
}

/// Shell commands that make a node stop, or terminate, itself: what autostop runs on every
/// worker, then on the head, the way a VM runs `poweroff`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerOff {
    pub stop: String,
    pub terminate: String,
}

/// A job to queue: a task's commands and environment.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: Option<String>,
    pub setup: Option<String>,
    pub run: Option<String>,
    pub envs: Vec<(String, String)>,
    /// Secret variables: like `envs` in the job's environment, but the agent keeps them out of
    /// its job table and logs (see [`crate::head`]), and `Debug` shows only their names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<(String, String)>,
    /// Set by the agent, never by the client: the private file holding the secrets until the
    /// job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_file: Option<String>,
    /// Where the commands run on each node (the synced workdir); `None`: the login home.
    pub cwd: Option<String>,
    /// How many nodes the job runs on (the first ones); at most the cluster's size.
    pub num_nodes: u32,
    /// The cluster's cloud and region, where the client knows them (`SKYPILOT_CLUSTER_INFO`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The cluster's container image, which the job's commands run in (`image_id:
    /// docker:<image>` of the option the cluster was launched with); `None`: on the nodes
    /// themselves. See [`crate::container`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSpec>,
}

/// The container a job runs in: its image, and the node paths the job needs at the same place
/// in it (bind-mounted when the container is made, copied in when it was made without them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The image, as the engine names it (`nvcr.io/nvidia/pytorch:24.01-py3`), without the
    /// `docker:` prefix.
    pub image: String,
    /// Absolute paths on the node (the workdir, file mount destinations) the job sees at the
    /// same path inside the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<String>,
}

impl std::fmt::Debug for JobSpec {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret_names: Vec<&str> = self.secrets.iter().map(|(name, _)| name.as_str()).collect();
        formatter
            .debug_struct("JobSpec")
            .field("name", &self.name)
            .field("setup", &self.setup)
            .field("run", &self.run)
            .field("envs", &self.envs)
            .field("secrets", &secret_names)
            .field("secrets_file", &self.secrets_file)
            .field("cwd", &self.cwd)
            .field("num_nodes", &self.num_nodes)
            .field("cloud", &self.cloud)
            .field("region", &self.region)
            .field("container", &self.container)
            .finish()
    }
}

/// The cluster's autostop setting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autostop {
    /// Stop after this many idle minutes; `None`: never.
    pub idle_minutes: Option<u32>,
    /// Tear the cluster down instead of stopping it.
    pub down: bool,
}

/// Which stream of a node a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutStream {
    Stdout,
    Stderr,
}

/// One line of a job's log stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LogEvent {
    /// A line a node printed.
    Line {
        rank: u32,
        stream: OutStream,
        line: String,
    },
    /// The job is over (the last event of a followed stream), or, without `--follow`, where it
    /// stands now.
    End {
        state: JobState,
        /// Non-zero exit codes by node rank.
        exit_codes: Option<serde_json::Value>,
    },
}

/// What `aloft agent status` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The daemon's process id, if it runs.
    pub daemon_pid: Option<u32>,
    /// Its resident memory, in KiB.
    pub daemon_rss_kib: Option<u64>,
    pub autostop: Autostop,
    /// Seconds since the cluster last did anything (a job ended, autostop was set, the agent
    /// started); `None` while a job is queued or running.
    pub idle_seconds: Option<i64>,
}

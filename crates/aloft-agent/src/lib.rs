//! The head-node agent, and the client that drives it.
//!
//! A cluster keeps its own job queue, as a VM on a real cloud would: the `aloft` binary is
//! copied to the head node, and `aloft agent ...` there keeps the jobs in its own SQLite database
//! (the store's job table), runs them one after another with a daemon, keeps their logs per job
//! and node, cancels them, and stops or tears down the cluster when it has been idle long enough.
//! The user's machine may be off meanwhile: nothing the cluster needs to run its queue or to
//! power itself off lives on the client.
//!
//! - [`protocol`]: what client and agent exchange (JSON over an SSH command line and stdout).
//! - [`head`]: the agent's side, run on the head node by `aloft agent ...`.
//! - [`client`]: the user's side, over the head node's SSH transport.
//! - [`runner`]: a gang run of one job over the nodes' transports (`setup` everywhere, then
//!   `run` everywhere at once), with every node's processes in a session of their own, so a
//!   cancel reaches all of them.
//! - [`container`]: the cluster's container on each node (`image_id: docker:...`), which its
//!   jobs' commands run in.

pub mod client;
pub mod container;
pub mod head;
pub mod logs;
pub mod protocol;
pub mod runner;

pub use client::{AgentClient, AgentError, LogItem, LogsEnd};
pub use protocol::{Autostop, ClusterInfo, ContainerSpec, JobSpec, LogEvent, NodeInfo, PowerOff};

//! aloft's state store: the clusters a user has, and the multi-step operations (launch, stop,
//! down) whose every step is recorded before the next one starts, so that an operation cut short
//! (aloft killed, machine off) is found and finished or undone by the next aloft command.
//!
//! One code path for every backend: sqlx's `Any` driver, with portable SQL (`$1` placeholders,
//! TEXT and BIGINT columns, no booleans, no upserts). Two real databases: SQLite
//! (`~/.aloft/state.db`, one user's machine) and PostgreSQL (`postgres://` URLs, a shared
//! deployment); the tests run whole against both. Methods are named resource first
//! (`cluster_insert`, `operation_record_step`), as STYLE.md asks.

mod migrations;
mod records;
mod requests;
mod store;

pub use records::{
    Cluster, ClusterStatus, Job, JobState, Operation, OperationKind, OperationState, Request,
    RequestEvent, RequestState, StepRecord,
};
pub use store::{Store, StoreError};

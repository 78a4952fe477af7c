//! aloft's state store: the clusters a user has, and the multi-step operations (launch, stop,
//! down) whose every step is recorded before the next one starts, so that an operation cut short
//! (aloft killed, machine off) is found and finished or undone by the next aloft command.
//!
//! One code path for every backend: sqlx's `Any` driver, with portable SQL (`$1` placeholders,
//! TEXT and BIGINT columns). Today the backend is SQLite (`~/.aloft/state.db`); PostgreSQL for
//! shared deployments is a feature away. Methods are named resource first (`cluster_insert`,
//! `operation_record_step`), as STYLE.md asks.

mod migrations;
mod records;
mod requests;
mod store;

pub use records::{
    Cluster, ClusterStatus, Job, JobState, Operation, OperationKind, OperationState, Request,
    RequestEvent, RequestState, StepRecord,
};
pub use store::{Store, StoreError};

//! The vocabulary every other aloft crate speaks: the task spec (what a user asks for), the
//! quantities in it, and where things live in the sky.
//!
//! This crate is pure data plus the YAML front end that produces it. It does no IO: callers read
//! files and hand the text (with its file name, for error messages) to [`spec::parse_dag`].

pub mod infra;
pub mod quantity;
pub mod spec;
pub mod suggest;

pub use infra::Infra;
pub use quantity::{Amount, Duration, Size};
pub use spec::{
    Accelerator, Dag, DataInput, DataOutput, FileMount, ResourceChoice, Resources, SpecError,
    SpecErrors, Task, TaskIdx, parse_dag, parse_dag_with_warnings,
};

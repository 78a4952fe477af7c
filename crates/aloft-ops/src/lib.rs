//! Multi-step operations as sagas (STYLE.md §4).
//!
//! An operation (a launch: bootstrap, create instances, connect, install the agent, open ports,
//! sync) is a list of [`Step`]s. It is recorded with its parameters (what recovery needs to act
//! on it) and its owner (see [`owner`]). Before a step runs, a `begin:<step>` marker is
//! recorded; its output is recorded before the next step starts. If a step fails, the steps
//! begun are undone, last first, and the operation ends `unwound` (or `failed` if an undo fails
//! too: then `aloft status` shows it and a human must look). If aloft dies in the middle, the
//! operation stays `running` (or `unwinding`) in the store with an owner that is gone, and
//! [`Saga::resume`] carries it on (or [`Saga::unwind_interrupted`] undoes it) from where the
//! records stop. A step that had begun when its process died is undone without an output: its
//! undo must find what it made from the operation's parameters (instances by their tag).
//!
//! Steps must be **idempotent**: after a crash between a step's work and its record, the step
//! runs again. (Creating instances, for example, first looks for instances already tagged with
//! the operation's cluster.) While an owner runs an operation it renews a lease
//! ([`owner::HEARTBEAT`]), so an owner on another machine is not taken for gone.

pub mod launch;
pub mod owner;

use aloft_store::{Operation, OperationKind, OperationState, StepRecord, Store, StoreError};
use async_trait::async_trait;

/// Why a step failed, as the step saw it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    /// A place the failure rules out (a zone without capacity, a region over quota, a cloud
    /// that refuses our credentials): failover blocks it and plans again.
    pub blocked: Option<aloft_types::Infra>,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> StepError {
        StepError {
            message: message.into(),
            blocked: None,
        }
    }

    /// A failure that rules out `place`.
    pub fn blocking(message: impl Into<String>, place: aloft_types::Infra) -> StepError {
        StepError {
            message: message.into(),
            blocked: Some(place),
        }
    }
}

/// What earlier steps of this operation produced, by step name.
#[derive(Debug, Clone, Copy)]
pub struct Done<'a> {
    steps: &'a [StepRecord],
}

impl<'a> Done<'a> {
    /// The recorded output of the step called `name`, if it ran.
    pub fn output(&self, name: &str) -> Option<&'a serde_json::Value> {
        self.steps
            .iter()
            .rev()
            .find(|step| step.step == name)
            .map(|step| &step.output)
    }
}

/// One step of an operation, run with a context `C` (providers, transports, the plan ...).
#[async_trait]
pub trait Step<C: Sync>: Send + Sync {
    /// Stable name, stored with the step's output (renaming breaks recovery of old records).
    fn name(&self) -> &'static str;

    /// Does the step's work and returns what later steps (and `undo`) need to know. Must be
    /// idempotent: it may run again after a crash.
    async fn run(&self, context: &C, done: Done<'_>) -> Result<serde_json::Value, StepError>;

    /// Undoes the step, given what `run` returned; `None` when the step had begun but its
    /// process died before recording an output (undo whatever it may have made). Must be
    /// idempotent too.
    async fn undo(&self, context: &C, output: Option<&serde_json::Value>) -> Result<(), StepError>;
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded {
        operation: String,
    },
    /// A step failed; everything done before it was undone.
    Unwound {
        operation: String,
        step: String,
        error: String,
        /// The place the failure rules out, if it rules one out (see [`StepError::blocked`]).
        blocked: Option<aloft_types::Infra>,
    },
    /// A step failed and undoing failed too: something may be left behind.
    Failed {
        operation: String,
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("recording operation state")]
    Store(#[from] StoreError),
    #[error("operation `{id}` is a {found:?} operation, not a {expected:?} one")]
    WrongKind {
        id: String,
        expected: OperationKind,
        found: OperationKind,
    },
    #[error("operation `{id}` recorded step `{step}`, which this version of aloft does not know")]
    UnknownStep { id: String, step: String },
    #[error(
        "operation `{id}` recorded step `{step}` where this version of aloft has `{expected}` (recorded by another version?)"
    )]
    StepOutOfOrder {
        id: String,
        step: String,
        expected: String,
    },
    /// The lease could not be renewed for so long that another owner may judge this one gone
    /// and take the operation over: the work stopped rather than race it.
    #[error(
        "operation `{id}` stopped: its lease could not be renewed for {seconds} s, so another \
         server may take it over"
    )]
    LeaseLost {
        id: String,
        seconds: u64,
        #[source]
        source: StoreError,
    },
}

/// An operation's steps, in order.
pub struct Saga<C: Sync> {
    pub kind: OperationKind,
    steps: Vec<Box<dyn Step<C>>>,
}

impl<C: Sync> std::fmt::Debug for Saga<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.steps.iter().map(|step| step.name()).collect();
        f.debug_struct("Saga")
            .field("kind", &self.kind)
            .field("steps", &names)
            .finish()
    }
}

impl<C: Sync> Saga<C> {
    pub fn new(kind: OperationKind, steps: Vec<Box<dyn Step<C>>>) -> Saga<C> {
        Saga { kind, steps }
    }

    /// Records a new operation on `cluster`, owned by this process, with `params` (what
    /// whoever recovers it will need), and runs it.
    pub async fn start(
        &self,
        store: &Store,
        cluster: &str,
        params: &serde_json::Value,
        context: &C,
    ) -> Result<Outcome, OpsError> {
        let operation = self.record(store, cluster, params).await?;
        self.resume(store, operation, context).await
    }

    /// Records a new operation on `cluster`, owned by this process, without running it (its id
    /// is then known before anything is made: [`Saga::resume`] runs it).
    pub async fn record(
        &self,
        store: &Store,
        cluster: &str,
        params: &serde_json::Value,
    ) -> Result<Operation, OpsError> {
        Ok(store
            .operation_insert(self.kind, cluster, &owner::this_process(), params)
            .await?)
    }

    /// Undoes an operation its owner left (cut short by a signal, or by its process dying): what
    /// it made is removed, as if its next step had failed.
    pub async fn unwind_interrupted(
        &self,
        store: &Store,
        operation: Operation,
        reason: &str,
        context: &C,
    ) -> Result<Outcome, OpsError> {
        if operation.state == OperationState::Running {
            store
                .operation_set_state(
                    operation.owner.as_deref(),
                    &operation.id,
                    OperationState::Unwinding,
                    Some(reason),
                )
                .await?;
        }
        let operation = Operation {
            state: OperationState::Unwinding,
            error: Some(reason.to_owned()),
            ..operation
        };
        self.resume(store, operation, context).await
    }

    /// Carries on an operation from its records: a running one from its first unrecorded step,
    /// an unwinding one from its last recorded step backwards. A finished one is reported as is.
    pub async fn resume(
        &self,
        store: &Store,
        operation: Operation,
        context: &C,
    ) -> Result<Outcome, OpsError> {
        if operation.kind != self.kind {
            return Err(OpsError::WrongKind {
                id: operation.id,
                expected: self.kind,
                found: operation.kind,
            });
        }
        for record in &operation.steps {
            let name = record
                .step
                .strip_prefix(UNDONE)
                .or_else(|| record.step.strip_prefix(BEGIN))
                .unwrap_or(&record.step);
            if !self.steps.iter().any(|step| step.name() == name) {
                return Err(OpsError::UnknownStep {
                    id: operation.id.clone(),
                    step: record.step.clone(),
                });
            }
        }
        let id = operation.id.clone();
        let error = operation.error.clone().unwrap_or_default();
        let work = async {
            match operation.state {
                OperationState::Succeeded => Ok(Outcome::Succeeded { operation: id }),
                OperationState::Unwound => Ok(Outcome::Unwound {
                    operation: id,
                    step: String::new(),
                    error,
                    blocked: None,
                }),
                OperationState::Failed => Ok(Outcome::Failed {
                    operation: id,
                    error,
                }),
                OperationState::Unwinding => {
                    self.unwind(
                        store,
                        operation.clone(),
                        String::new(),
                        error,
                        None,
                        context,
                    )
                    .await
                }
                OperationState::Running => {
                    self.run_forward(store, operation.clone(), context).await
                }
            }
        };
        // The owner's lease, renewed while the work goes on. The work stops (where it is, as
        // after a signal, and without undoing: that is the new owner's to do) once another
        // owner took the operation over, or once the lease could not be renewed for so long
        // that others may judge this owner gone.
        let heartbeat = async {
            let Some(owner) = operation.owner.clone() else {
                return std::future::pending().await;
            };
            let mut renewed = std::time::Instant::now();
            loop {
                tokio::time::sleep(owner::HEARTBEAT).await;
                match store.operation_heartbeat(&operation.id, &owner).await {
                    Ok(true) => renewed = std::time::Instant::now(),
                    Ok(false) => {
                        return match store.operation_fetch(&operation.id).await {
                            Ok(Some(now)) => OpsError::Store(StoreError::OperationTakenOver {
                                id: operation.id.clone(),
                                owner: now.owner.unwrap_or_else(|| "nobody".to_owned()),
                            }),
                            Ok(None) => OpsError::Store(StoreError::OperationNotFound {
                                id: operation.id.clone(),
                            }),
                            Err(err) => OpsError::Store(err),
                        };
                    }
                    Err(err) if renewed.elapsed() >= owner::SELF_FENCE => {
                        return OpsError::LeaseLost {
                            id: operation.id.clone(),
                            seconds: renewed.elapsed().as_secs(),
                            source: err,
                        };
                    }
                    Err(err) => {
                        tracing::warn!(operation = %operation.id, "renewing the lease failed: {err}");
                    }
                }
            }
        };
        tokio::select! {
            outcome = work => outcome,
            stopped = heartbeat => Err(stopped),
        }
    }

    async fn run_forward(
        &self,
        store: &Store,
        operation: Operation,
        context: &C,
    ) -> Result<Outcome, OpsError> {
        // Carry on after the last step that finished; the records must be this saga's steps in
        // its order (a version that inserted a step must not misread older records).
        let mut records: Vec<StepRecord> = operation
            .steps
            .iter()
            .filter(|record| !record.step.contains(':'))
            .cloned()
            .collect();
        for (record, step) in records.iter().zip(&self.steps) {
            if record.step != step.name() {
                return Err(OpsError::StepOutOfOrder {
                    id: operation.id.clone(),
                    step: record.step.clone(),
                    expected: step.name().to_owned(),
                });
            }
        }
        let mut all_records = operation.steps.clone();
        for step in self.steps.iter().skip(records.len()) {
            let begin = store
                .operation_record_step(
                    operation.owner.as_deref(),
                    &operation.id,
                    &format!("{BEGIN}{}", step.name()),
                    &serde_json::Value::Null,
                )
                .await?;
            all_records.push(begin);
            match step.run(context, Done { steps: &records }).await {
                Ok(output) => {
                    let record = store
                        .operation_record_step(
                            operation.owner.as_deref(),
                            &operation.id,
                            step.name(),
                            &output,
                        )
                        .await?;
                    records.push(record.clone());
                    all_records.push(record);
                }
                Err(err) => {
                    let error = format!("{}: {err}", step.name());
                    store
                        .operation_set_state(
                            operation.owner.as_deref(),
                            &operation.id,
                            OperationState::Unwinding,
                            Some(&error),
                        )
                        .await?;
                    let operation = Operation {
                        steps: all_records,
                        ..operation
                    };
                    return self
                        .unwind(
                            store,
                            operation,
                            step.name().to_owned(),
                            error,
                            err.blocked,
                            context,
                        )
                        .await;
                }
            }
        }
        store
            .operation_set_state(
                operation.owner.as_deref(),
                &operation.id,
                OperationState::Succeeded,
                None,
            )
            .await?;
        Ok(Outcome::Succeeded {
            operation: operation.id,
        })
    }

    /// Undoes the recorded steps, last first. Each undone step's record is kept (the history),
    /// and an `undone:<step>` record marks it, so a resumed unwind skips what is already undone.
    async fn unwind(
        &self,
        store: &Store,
        operation: Operation,
        failed_step: String,
        error: String,
        blocked: Option<aloft_types::Infra>,
        context: &C,
    ) -> Result<Outcome, OpsError> {
        let undone: Vec<&str> = operation
            .steps
            .iter()
            .filter_map(|record| record.step.strip_prefix(UNDONE))
            .collect();
        // Each step begun and not yet undone, last first, with its output if it recorded one.
        let mut to_undo: Vec<(&str, Option<&serde_json::Value>)> = Vec::new();
        for record in &operation.steps {
            if let Some(name) = record.step.strip_prefix(BEGIN) {
                to_undo.push((name, None));
            } else if !record.step.contains(':')
                && let Some(begun) = to_undo
                    .iter_mut()
                    .rev()
                    .find(|(name, output)| *name == record.step.as_str() && output.is_none())
            {
                begun.1 = Some(&record.output);
            } else if !record.step.contains(':') {
                // Recorded before `begin:` markers were.
                to_undo.push((record.step.as_str(), Some(&record.output)));
            }
        }
        to_undo.retain(|(name, _)| !undone.contains(name));
        for (name, output) in to_undo.into_iter().rev() {
            let Some(step) = self.steps.iter().find(|step| step.name() == name) else {
                return Err(OpsError::UnknownStep {
                    id: operation.id.clone(),
                    step: name.to_owned(),
                });
            };
            if let Err(undo_error) = step.undo(context, output).await {
                let error = format!("{error}; then undoing {name} failed: {undo_error}");
                store
                    .operation_set_state(
                        operation.owner.as_deref(),
                        &operation.id,
                        OperationState::Failed,
                        Some(&error),
                    )
                    .await?;
                return Ok(Outcome::Failed {
                    operation: operation.id,
                    error,
                });
            }
            let marker = format!("{UNDONE}{name}");
            store
                .operation_record_step(
                    operation.owner.as_deref(),
                    &operation.id,
                    &marker,
                    &serde_json::Value::Null,
                )
                .await?;
        }
        store
            .operation_set_state(
                operation.owner.as_deref(),
                &operation.id,
                OperationState::Unwound,
                Some(&error),
            )
            .await?;
        Ok(Outcome::Unwound {
            operation: operation.id,
            step: failed_step,
            error,
            blocked,
        })
    }
}

/// Prefix of the records that mark a step as undone.
const UNDONE: &str = "undone:";

/// Prefix of the records that mark a step as begun (recorded before it runs).
const BEGIN: &str = "begin:";

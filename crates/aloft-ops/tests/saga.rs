//! The saga engine against a real store: success, unwinding, failed undo, and recovery after
//! the process is cut off mid-step, forwards and while unwinding.

use aloft_ops::{Done, Outcome, Saga, Step, StepError};
use aloft_store::{OperationKind, OperationState, Store};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

static NEXT: AtomicUsize = AtomicUsize::new(0);

struct TempDb(PathBuf);

impl TempDb {
    fn new() -> TempDb {
        let idx = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("aloft-ops-{}-{idx}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the steps did, and how the test wants them to misbehave.
#[derive(Default)]
struct World {
    log: Mutex<Vec<String>>,
    fail_run: Option<&'static str>,
    fail_undo: Option<&'static str>,
    /// A step that waits here forever (until the test drops the operation: a "crash").
    hang_run: Option<&'static str>,
    hang_undo: Option<&'static str>,
    reached: Notify,
}

impl World {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

struct TestStep(&'static str);

#[async_trait]
impl Step<Arc<World>> for TestStep {
    fn name(&self) -> &'static str {
        self.0
    }

    async fn run(&self, world: &Arc<World>, done: Done<'_>) -> Result<Value, StepError> {
        world.log.lock().unwrap().push(format!("run {}", self.0));
        if world.hang_run == Some(self.0) {
            world.reached.notify_one();
            std::future::pending::<()>().await;
        }
        if world.fail_run == Some(self.0) {
            return Err(StepError::new("no capacity"));
        }
        // Each step sees what the one before it produced.
        let before = done.output("create").cloned().unwrap_or(Value::Null);
        Ok(json!({"step": self.0, "saw_create": before}))
    }

    async fn undo(&self, world: &Arc<World>, output: Option<&Value>) -> Result<(), StepError> {
        match output {
            Some(output) => {
                assert_eq!(output["step"], self.0, "undo gets its own step's output");
                world.log.lock().unwrap().push(format!("undo {}", self.0));
            }
            // Begun, never recorded: it failed, or its process died during it.
            None => world
                .log
                .lock()
                .unwrap()
                .push(format!("undo begun {}", self.0)),
        }
        if world.hang_undo == Some(self.0) {
            world.reached.notify_one();
            std::future::pending::<()>().await;
        }
        if world.fail_undo == Some(self.0) {
            return Err(StepError::new("terminate refused"));
        }
        Ok(())
    }
}

fn saga() -> Saga<Arc<World>> {
    Saga::new(
        OperationKind::Launch,
        vec![
            Box::new(TestStep("plan")),
            Box::new(TestStep("create")),
            Box::new(TestStep("connect")),
            Box::new(TestStep("run")),
        ],
    )
}

async fn store(db: &TempDb) -> Store {
    Store::open(&db.0.join("state.db")).await.unwrap()
}

#[tokio::test]
async fn steps_run_in_order_and_see_earlier_outputs() {
    let db = TempDb::new();
    let store = store(&db).await;
    let world = Arc::new(World::default());
    let outcome = saga()
        .start(&store, "c", &json!(null), &world)
        .await
        .unwrap();
    let Outcome::Succeeded { operation } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        world.log(),
        ["run plan", "run create", "run connect", "run run"]
    );
    let stored = store.operation_fetch(&operation).await.unwrap().unwrap();
    assert_eq!(stored.state, OperationState::Succeeded);
    let recorded: Vec<&str> = stored.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(
        recorded,
        [
            "begin:plan",
            "plan",
            "begin:create",
            "create",
            "begin:connect",
            "connect",
            "begin:run",
            "run"
        ],
        "each step is marked begun before it runs"
    );
    assert_eq!(stored.steps[5].output["saw_create"]["step"], "create");
}

#[tokio::test]
async fn a_failing_step_unwinds_what_was_done_last_first() {
    let db = TempDb::new();
    let store = store(&db).await;
    let world = Arc::new(World {
        fail_run: Some("connect"),
        ..World::default()
    });
    let outcome = saga()
        .start(&store, "c", &json!(null), &world)
        .await
        .unwrap();
    let Outcome::Unwound {
        operation,
        step,
        error,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (step.as_str(), error.as_str()),
        ("connect", "connect: no capacity")
    );
    assert_eq!(
        world.log(),
        [
            "run plan",
            "run create",
            "run connect",
            // The failing step is undone too: it may have made something before failing.
            "undo begun connect",
            "undo create",
            "undo plan"
        ]
    );
    let stored = store.operation_fetch(&operation).await.unwrap().unwrap();
    assert_eq!(stored.state, OperationState::Unwound);
    assert_eq!(stored.error.as_deref(), Some("connect: no capacity"));
}

#[tokio::test]
async fn an_undo_that_fails_leaves_the_operation_failed_and_says_so() {
    let db = TempDb::new();
    let store = store(&db).await;
    let world = Arc::new(World {
        fail_run: Some("run"),
        fail_undo: Some("create"),
        ..World::default()
    });
    let outcome = saga()
        .start(&store, "c", &json!(null), &world)
        .await
        .unwrap();
    let Outcome::Failed { operation, error } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        error,
        "run: no capacity; then undoing create failed: terminate refused"
    );
    assert_eq!(
        world.log(),
        [
            "run plan",
            "run create",
            "run connect",
            "run run",
            "undo begun run",
            "undo connect",
            "undo create"
        ]
    );
    assert_eq!(
        store
            .operation_fetch(&operation)
            .await
            .unwrap()
            .unwrap()
            .state,
        OperationState::Failed
    );
    assert!(store.operation_list_unfinished().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crash_mid_step_is_resumed_from_the_records() {
    let db = TempDb::new();
    let store = store(&db).await;
    let world = Arc::new(World {
        hang_run: Some("connect"),
        ..World::default()
    });
    // The first process: cut off while `connect` runs.
    let first = {
        let (store, world) = (store.clone(), world.clone());
        tokio::spawn(async move { saga().start(&store, "c", &json!(null), &world).await })
    };
    world.reached.notified().await;
    first.abort();
    let _ = first.await;
    // The next aloft command finds the operation where the records stop.
    let unfinished = store.operation_list_unfinished().await.unwrap();
    assert_eq!(unfinished.len(), 1);
    let recorded: Vec<&str> = unfinished[0]
        .steps
        .iter()
        .map(|s| s.step.as_str())
        .collect();
    assert_eq!(
        recorded,
        [
            "begin:plan",
            "plan",
            "begin:create",
            "create",
            "begin:connect"
        ]
    );
    let world_after = Arc::new(World::default());
    let outcome = saga()
        .resume(&store, unfinished[0].clone(), &world_after)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Succeeded { .. }), "{outcome:?}");
    // Recorded steps are not run again; the interrupted one is (steps are idempotent).
    assert_eq!(world_after.log(), ["run connect", "run run"]);
    assert!(store.operation_list_unfinished().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_crash_while_unwinding_resumes_the_unwinding_without_undoing_twice() {
    let db = TempDb::new();
    let store = store(&db).await;
    let world = Arc::new(World {
        fail_run: Some("run"),
        hang_undo: Some("create"),
        ..World::default()
    });
    let first = {
        let (store, world) = (store.clone(), world.clone());
        tokio::spawn(async move { saga().start(&store, "c", &json!(null), &world).await })
    };
    world.reached.notified().await;
    first.abort();
    let _ = first.await;
    assert_eq!(
        world.log(),
        [
            "run plan",
            "run create",
            "run connect",
            "run run",
            "undo begun run",
            "undo connect",
            "undo create"
        ]
    );
    let unfinished = store.operation_list_unfinished().await.unwrap();
    assert_eq!(unfinished[0].state, OperationState::Unwinding);
    let world_after = Arc::new(World::default());
    let outcome = saga()
        .resume(&store, unfinished[0].clone(), &world_after)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Unwound { .. }), "{outcome:?}");
    // `connect` was undone and recorded before the crash; `create` was cut off and runs again.
    assert_eq!(world_after.log(), ["undo create", "undo plan"]);
    let stored = store
        .operation_fetch(&unfinished[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.error.as_deref(), Some("run: no capacity"));
}

#[tokio::test]
async fn records_from_another_saga_are_refused() {
    let db = TempDb::new();
    let store = store(&db).await;
    let operation = store
        .operation_insert(OperationKind::Down, "c", "o", &json!(null))
        .await
        .unwrap();
    let world = Arc::new(World::default());
    let err = saga().resume(&store, operation, &world).await.unwrap_err();
    assert!(err.to_string().contains("not a Launch one"), "{err}");
    let operation = store
        .operation_insert(OperationKind::Launch, "c", "o", &json!(null))
        .await
        .unwrap();
    store
        .operation_record_step(None, &operation.id, "teleport", &json!(null))
        .await
        .unwrap();
    let operation = store.operation_fetch(&operation.id).await.unwrap().unwrap();
    let err = saga().resume(&store, operation, &world).await.unwrap_err();
    assert!(err.to_string().contains("`teleport`"), "{err}");
    assert!(world.log().is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_step_cut_short_before_recording_is_undone_without_an_output() {
    // The process dies while `create` runs (it may have made instances), before recording
    // anything: undoing the operation must still undo `create`, not only what was recorded.
    let db = TempDb::new();
    let store = store(&db).await;
    let world = Arc::new(World {
        hang_run: Some("create"),
        ..World::default()
    });
    let first = {
        let (store, world) = (store.clone(), world.clone());
        tokio::spawn(async move { saga().start(&store, "c", &json!(null), &world).await })
    };
    world.reached.notified().await;
    first.abort();
    let _ = first.await;
    let unfinished = store.operation_list_unfinished().await.unwrap();
    let world_after = Arc::new(World::default());
    let outcome = saga()
        .unwind_interrupted(&store, unfinished[0].clone(), "interrupted", &world_after)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Unwound { .. }), "{outcome:?}");
    assert_eq!(world_after.log(), ["undo begun create", "undo plan"]);
    assert!(store.operation_list_unfinished().await.unwrap().is_empty());
}

#[tokio::test]
async fn records_out_of_this_sagas_order_are_refused() {
    let db = TempDb::new();
    let store = store(&db).await;
    let operation = store
        .operation_insert(OperationKind::Launch, "c", "o", &json!(null))
        .await
        .unwrap();
    // `create` recorded first: a version with another order wrote it.
    store
        .operation_record_step(None, &operation.id, "create", &json!({"step": "create"}))
        .await
        .unwrap();
    let operation = store.operation_fetch(&operation.id).await.unwrap().unwrap();
    let world = Arc::new(World::default());
    let err = saga().resume(&store, operation, &world).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("where this version of aloft has `plan`"),
        "{err}"
    );
    assert!(world.log().is_empty(), "nothing ran");
}

#[tokio::test]
async fn an_owner_whose_operation_was_taken_over_stops_and_leaves_it_to_the_new_owner() {
    let db = TempDb::new();
    let store = store(&db).await;
    let world = Arc::new(World {
        hang_run: Some("connect"),
        ..World::default()
    });
    let first = {
        let (store, world) = (store.clone(), world.clone());
        tokio::spawn(async move { saga().start(&store, "c", &json!(null), &world).await })
    };
    world.reached.notified().await;
    // Judged gone (say, its lease ran out while it was paused), it is taken over elsewhere.
    let operation = store.operation_list_unfinished().await.unwrap().remove(0);
    assert!(
        store
            .operation_claim(
                &operation.id,
                operation.owner.as_deref(),
                "pid:1:1@elsewhere"
            )
            .await
            .unwrap()
    );
    // At its next heartbeat the first owner stops where it is: no further step, no undo.
    let stopped = tokio::time::timeout(aloft_ops::owner::LEASE, first)
        .await
        .expect("the first owner stops within a lease")
        .unwrap();
    assert!(
        matches!(
            stopped,
            Err(aloft_ops::OpsError::Store(aloft_store::StoreError::OperationTakenOver { ref owner, .. }))
                if owner == "pid:1:1@elsewhere"
        ),
        "{stopped:?}"
    );
    assert_eq!(world.log(), ["run plan", "run create", "run connect"]);
    let left = store.operation_fetch(&operation.id).await.unwrap().unwrap();
    assert_eq!(left.state, OperationState::Running);
    assert_eq!(left.owner.as_deref(), Some("pid:1:1@elsewhere"));
    assert_eq!(left.steps.len(), 5, "{:?}", left.steps);
}

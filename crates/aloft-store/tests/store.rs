//! The store against real databases, a fresh one per test: every test that is not about SQLite's
//! file runs on SQLite and on PostgreSQL (`sqlite::name`, `postgres::name`; see `common`).

mod common;

use aloft_store::{Cluster, ClusterStatus, OperationKind, OperationState, Store, StoreError};
use common::{Backend, TestDb};
use serde_json::json;

fn cluster(name: &str) -> Cluster {
    Cluster {
        name: name.to_owned(),
        status: ClusterStatus::Init,
        cloud: "local".to_owned(),
        region: "local-1".to_owned(),
        zone: Some("local-1a".to_owned()),
        instance_type: "local.small".to_owned(),
        num_nodes: 4,
        spot: true,
        hourly_price: 0.1 + 0.2, // not exactly representable in decimal: must round-trip anyway
        autostop_minutes: Some(10),
        autostop_down: false,
        resources: json!({"cpus": "2+", "accelerators": null}),
        generation: 0,
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
    }
}

both_databases! {
    async fn migrations_apply_once_and_survive_reopening(db: TestDb) {
        let store = db.open().await;
        assert_eq!(store.schema_version().await.unwrap(), 5);
        store.cluster_insert(&cluster("a")).await.unwrap();
        drop(store);
        let store = db.open().await;
        assert_eq!(store.schema_version().await.unwrap(), 5);
        assert_eq!(
            store.cluster_list().await.unwrap().len(),
            1,
            "data kept across reopening"
        );
    }

    async fn the_data_version_moves_with_every_commit_and_only_then(db: TestDb) {
        let store = db.open().await;
        let first = store.data_version().await.unwrap();
        if db.backend() == Backend::Postgres {
            assert_eq!(first, None, "PostgreSQL has no data version");
            return;
        }
        let first = first.expect("SQLite has one");
        assert_eq!(store.data_version().await.unwrap(), Some(first), "no commit, no change");
        // A commit through this store's own pool counts...
        store.cluster_insert(&cluster("a")).await.unwrap();
        let second = store.data_version().await.unwrap().unwrap();
        assert_ne!(second, first);
        // ... and so does one by another process (another store on the same file).
        let other = db.open().await;
        other.cluster_delete("a").await.unwrap();
        assert_ne!(store.data_version().await.unwrap().unwrap(), second);
    }

    async fn clusters_round_trip_exactly(db: TestDb) {
        let store = db.open().await;
        let original = cluster("train");
        store.cluster_insert(&original).await.unwrap();
        let mut bare = cluster("bare");
        bare.zone = None;
        bare.autostop_minutes = None;
        store.cluster_insert(&bare).await.unwrap();
        assert_eq!(
            store.cluster_fetch("train").await.unwrap(),
            Some(original.clone())
        );
        assert_eq!(store.cluster_fetch("bare").await.unwrap(), Some(bare));
        assert_eq!(store.cluster_fetch("nope").await.unwrap(), None);
        let names: Vec<String> = store
            .cluster_list()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["bare", "train"]);
        match store.cluster_insert(&original).await {
            Err(StoreError::ClusterExists { name }) => assert_eq!(name, "train"),
            other => panic!("expected ClusterExists, got {other:?}"),
        }
        assert!(store.cluster_delete("train").await.unwrap());
        assert!(!store.cluster_delete("train").await.unwrap());
    }

    async fn updates_from_a_stale_read_are_refused(db: TestDb) {
        let store = db.open().await;
        store.cluster_insert(&cluster("c")).await.unwrap();
        let read_by_a = store.cluster_fetch("c").await.unwrap().unwrap();
        let read_by_b = read_by_a.clone();
        let mut up = read_by_a.clone();
        up.status = ClusterStatus::Up;
        let written = store.cluster_update(&up).await.unwrap();
        assert_eq!(written.generation, read_by_a.generation + 1);
        let mut stopped = read_by_b;
        stopped.status = ClusterStatus::Stopped;
        match store.cluster_update(&stopped).await {
            Err(StoreError::StaleGeneration {
                expected, found, ..
            }) => {
                assert_eq!((expected, found), (0, 1));
            }
            other => panic!("expected StaleGeneration, got {other:?}"),
        }
        assert_eq!(
            store.cluster_fetch("c").await.unwrap().unwrap().status,
            ClusterStatus::Up
        );
        let mut ghost = cluster("ghost");
        ghost.generation = 0;
        assert!(matches!(
            store.cluster_update(&ghost).await,
            Err(StoreError::ClusterNotFound { .. })
        ));
    }

    async fn an_owner_that_lost_its_operation_can_no_longer_write_to_it(db: TestDb) {
        let store = db.open().await;
        let launch = store
            .operation_insert(OperationKind::Launch, "c", "owner-a", &json!(null))
            .await
            .unwrap();
        store
            .operation_record_step(Some("owner-a"), &launch.id, "begin:plan", &json!(null))
            .await
            .unwrap();
        // Judged gone, A is taken over by B; A, still running after all, is refused.
        assert!(
            store
                .operation_claim(&launch.id, Some("owner-a"), "owner-b")
                .await
                .unwrap()
        );
        assert!(matches!(
            store
                .operation_record_step(Some("owner-a"), &launch.id, "plan", &json!(1))
                .await,
            Err(StoreError::OperationTakenOver { ref owner, .. }) if owner == "owner-b"
        ));
        assert!(matches!(
            store
                .operation_set_state(Some("owner-a"), &launch.id, OperationState::Succeeded, None)
                .await,
            Err(StoreError::OperationTakenOver { .. })
        ));
        assert!(
            !store
                .operation_heartbeat(&launch.id, "owner-a")
                .await
                .unwrap()
        );
        let found = store.operation_fetch(&launch.id).await.unwrap().unwrap();
        assert_eq!(found.state, OperationState::Running);
        assert_eq!(found.steps.len(), 1, "{:?}", found.steps);
        // B writes as the owner it is.
        store
            .operation_record_step(Some("owner-b"), &launch.id, "undone:plan", &json!(null))
            .await
            .unwrap();
        store
            .operation_set_state(Some("owner-b"), &launch.id, OperationState::Unwound, None)
            .await
            .unwrap();
    }

    async fn operations_keep_their_steps_in_order_across_a_crash(db: TestDb) {
        let store = db.open().await;
        let launch = store
            .operation_insert(
                OperationKind::Launch,
                "c",
                "test-owner",
                &json!({"cloud": "local"}),
            )
            .await
            .unwrap();
        let down = store
            .operation_insert(OperationKind::Down, "d", "test-owner", &json!(null))
            .await
            .unwrap();
        store
            .operation_record_step(None, &launch.id, "plan", &json!({"zone": "local-1a"}))
            .await
            .unwrap();
        store
            .operation_record_step(None, &launch.id,
                "create_instances",
                &json!({"ids": ["i-1", "i-2"]}),
            )
            .await
            .unwrap();
        store
            .operation_set_state(None, &down.id, OperationState::Succeeded, None)
            .await
            .unwrap();
        // "Crash": the process goes away between steps; a new one opens the same file.
        drop(store);
        let store = db.open().await;
        let unfinished = store.operation_list_unfinished().await.unwrap();
        assert_eq!(unfinished.len(), 1);
        let found = &unfinished[0];
        assert_eq!(
            (found.id.as_str(), found.kind, found.state),
            (
                launch.id.as_str(),
                OperationKind::Launch,
                OperationState::Running
            )
        );
        let steps: Vec<(u32, &str)> = found
            .steps
            .iter()
            .map(|s| (s.seq, s.step.as_str()))
            .collect();
        assert_eq!(steps, [(0, "plan"), (1, "create_instances")]);
        assert_eq!(found.steps[1].output, json!({"ids": ["i-1", "i-2"]}));
        store
            .operation_set_state(None, &launch.id, OperationState::Unwinding, Some("capacity"))
            .await
            .unwrap();
        assert_eq!(
            store.operation_list_unfinished().await.unwrap().len(),
            1,
            "unwinding is unfinished"
        );
        store
            .operation_set_state(None, &launch.id, OperationState::Unwound, Some("capacity"))
            .await
            .unwrap();
        assert!(store.operation_list_unfinished().await.unwrap().is_empty());
        let finished = store.operation_fetch(&launch.id).await.unwrap().unwrap();
        assert_eq!(finished.error.as_deref(), Some("capacity"));
        assert!(matches!(
            store
                .operation_record_step(None, "op-missing", "x", &json!(null))
                .await,
            Err(StoreError::OperationNotFound { .. })
        ));
    }

    async fn two_handles_on_one_database_write_without_locking_errors(db: TestDb) {
        let first = db.open().await;
        let second = db.open().await;
        let operation = first
            .operation_insert(
                OperationKind::Launch,
                "c",
                "test-owner",
                &json!({"cloud": "local"}),
            )
            .await
            .unwrap();
        let writes = (0..20).map(|idx| {
            let store = if idx % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let id = operation.id.clone();
            tokio::spawn(async move {
                store
                    .operation_record_step(None, &id, &format!("s{idx}"), &json!(idx))
                    .await
            })
        });
        for write in writes {
            write.await.unwrap().unwrap();
        }
        let steps = first
            .operation_fetch(&operation.id)
            .await
            .unwrap()
            .unwrap()
            .steps;
        let seqs: Vec<u32> = steps.iter().map(|s| s.seq).collect();
        assert_eq!(
            seqs,
            (0..20).collect::<Vec<u32>>(),
            "every step got its own number"
        );
    }

    async fn jobs_queue_in_order_and_finished_jobs_stay_finished(db: TestDb) {
        use aloft_store::JobState;
        let store = db.open().await;
        let first = store
            .job_insert(Some("train"), &json!({"run": "echo 1"}))
            .await
            .unwrap();
        let second = store
            .job_insert(None, &json!({"run": "echo 2"}))
            .await
            .unwrap();
        assert_eq!((first.id, second.id), (1, 2));
        assert_eq!(store.job_next_pending().await.unwrap().unwrap().id, 1);

        let running = store
            .job_set_state(1, JobState::SettingUp, None)
            .await
            .unwrap();
        let started = running.started_at.expect("setting up stamps the start");
        let running = store
            .job_set_state(1, JobState::Running, None)
            .await
            .unwrap();
        assert_eq!(
            running.started_at,
            Some(started),
            "the start is stamped once"
        );
        assert_eq!(store.job_next_pending().await.unwrap().unwrap().id, 2);
        let done = store
            .job_set_state(1, JobState::Failed, Some(&json!({"0": 3})))
            .await
            .unwrap();
        assert!(done.ended_at.is_some());
        store.job_set_runner(2, 4242).await.unwrap();

        // Finished is final: another state is refused, cancelling is a no-op.
        match store.job_set_state(1, JobState::Running, None).await {
            Err(StoreError::JobFinished { id, state }) => {
                assert_eq!((id, state.as_str()), (1, "failed"))
            }
            other => panic!("expected JobFinished, got {other:?}"),
        }
        assert_eq!(
            store
                .job_set_state(1, JobState::Cancelled, None)
                .await
                .unwrap()
                .state,
            JobState::Failed
        );
        store
            .job_set_state(2, JobState::Cancelled, None)
            .await
            .unwrap();
        assert!(store.job_next_pending().await.unwrap().is_none());

        // All of it survives reopening.
        drop(store);
        let store = db.open().await;
        let jobs = store.job_list().await.unwrap();
        let summary: Vec<(i64, JobState)> = jobs.iter().map(|job| (job.id, job.state)).collect();
        assert_eq!(summary, [(1, JobState::Failed), (2, JobState::Cancelled)]);
        assert_eq!(jobs[0].exit_codes, Some(json!({"0": 3})));
        assert_eq!(jobs[0].name.as_deref(), Some("train"));
        assert_eq!(jobs[1].runner_pid, Some(4242));
        assert!(matches!(
            store.job_set_state(9, JobState::Running, None).await,
            Err(StoreError::JobNotFound { id: 9 })
        ));
    }

    async fn eight_concurrent_writers_never_see_database_is_locked(db: TestDb) {
        // Eight handles on one database, as eight aloft commands run at once: each reads, then
        // writes in one transaction (steps, jobs), or writes outright. None may fail on the lock
        // (SQLite), and no two may take the same step number or job id (PostgreSQL, where only
        // the advisory lock keeps the transactions apart).
        let first = db.open().await;
        let operation = first
            .operation_insert(OperationKind::Launch, "c", "owner-0", &json!(null))
            .await
            .unwrap();
        let mut writers = Vec::new();
        for writer in 0..8 {
            let target = db.target();
            let id = operation.id.clone();
            writers.push(tokio::spawn(async move {
                let store = target.open().await?;
                for round in 0..25 {
                    store
                        .operation_record_step(None, &id, &format!("w{writer}-{round}"), &json!(round))
                        .await?;
                    store
                        .job_insert(Some("j"), &json!({"round": round}))
                        .await?;
                    store.operation_heartbeat(&id, "owner-0").await?;
                }
                Ok::<(), StoreError>(())
            }));
        }
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        let steps = first
            .operation_fetch(&operation.id)
            .await
            .unwrap()
            .unwrap()
            .steps;
        assert_eq!(steps.len(), 8 * 25);
        assert_eq!(first.job_list().await.unwrap().len(), 8 * 25);
    }

    async fn operations_keep_their_owner_and_params_and_are_claimed_once(db: TestDb) {
        let store = db.open().await;
        let params = json!({"cloud": "aws", "region": "us-east-1"});
        let operation = store
            .operation_insert(OperationKind::Launch, "c", "pid:1:2@boot", &params)
            .await
            .unwrap();
        let read = store.operation_fetch(&operation.id).await.unwrap().unwrap();
        assert_eq!(read.owner.as_deref(), Some("pid:1:2@boot"));
        assert_eq!(read.params, params);
        assert!(read.heartbeat_at.is_some());
        assert!(
            store
                .operation_heartbeat(&operation.id, "pid:1:2@boot")
                .await
                .unwrap()
        );
        assert!(
            !store
                .operation_heartbeat(&operation.id, "someone-else")
                .await
                .unwrap()
        );
        // Two recoverers race: one takes it.
        let first = store
            .operation_claim(&operation.id, Some("pid:1:2@boot"), "recoverer-a")
            .await
            .unwrap();
        let second = store
            .operation_claim(&operation.id, Some("pid:1:2@boot"), "recoverer-b")
            .await
            .unwrap();
        assert!(first && !second);
        let read = store.operation_fetch(&operation.id).await.unwrap().unwrap();
        assert_eq!(read.owner.as_deref(), Some("recoverer-a"));
        // The old owner's lease is gone with it.
        assert!(
            !store
                .operation_heartbeat(&operation.id, "pid:1:2@boot")
                .await
                .unwrap()
        );
    }

    async fn eight_concurrent_cluster_updaters_all_land(db: TestDb) {
        // Eight processes update one cluster record, each reading it and writing it back; a
        // writer that read a generation someone else has since replaced is refused and reads
        // again. Every update lands once: none lost, none refused for any other reason.
        let first = db.open().await;
        first.cluster_insert(&cluster("shared")).await.unwrap();
        let mut updaters = Vec::new();
        for updater in 0..8u32 {
            let target = db.target();
            updaters.push(tokio::spawn(async move {
                let store = target.open().await?;
                let mut stale_reads = 0;
                for _ in 0..10 {
                    loop {
                        let mut read = store.cluster_fetch("shared").await?.unwrap();
                        read.num_nodes += 1;
                        read.region = format!("updated-by-{updater}");
                        match store.cluster_update(&read).await {
                            Ok(_) => break,
                            Err(StoreError::StaleGeneration { .. }) => stale_reads += 1,
                            Err(err) => return Err(err),
                        }
                    }
                }
                Ok::<u32, StoreError>(stale_reads)
            }));
        }
        for updater in updaters {
            updater.await.unwrap().unwrap();
        }
        let shared = first.cluster_fetch("shared").await.unwrap().unwrap();
        assert_eq!(shared.generation, 8 * 10);
        assert_eq!(shared.num_nodes, cluster("shared").num_nodes + 8 * 10);
    }

    async fn stores_opening_a_new_database_at_once_all_migrate(db: TestDb) {
        // Several processes start at once on a database nobody has opened yet: each applies
        // what is missing under the write lock, or finds it applied.
        let target = db.target();
        let opening: Vec<_> = (0..4)
            .map(|_| {
                let target = target.clone();
                tokio::spawn(async move { target.open().await })
            })
            .collect();
        for store in opening {
            let store = store.await.unwrap().unwrap();
            assert_eq!(store.schema_version().await.unwrap(), 5);
        }
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let db = TestDb::sqlite();
    std::fs::write(
        db.path(),
        "this is not sqlite, it is a shopping list\n".repeat(100),
    )
    .unwrap();
    let err = Store::open(&db.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("state.db is not a SQLite database"),
        "{message}"
    );
    // Nothing was overwritten.
    assert!(
        std::fs::read_to_string(db.path())
            .unwrap()
            .starts_with("this is not sqlite")
    );
}

#[tokio::test]
async fn a_truncated_database_is_named_damaged_at_once() {
    let db = TestDb::sqlite();
    let store = Store::open(&db.path()).await.unwrap();
    for idx in 0..200 {
        store
            .cluster_insert(&cluster(&format!("c{idx}")))
            .await
            .unwrap();
    }
    // Closing folds the write-ahead log into the file; then the file is cut short.
    store.close().await;
    let bytes = std::fs::read(db.path()).unwrap();
    assert!(
        bytes.len() > 16_384,
        "the database spans pages: {}",
        bytes.len()
    );
    std::fs::write(db.path(), &bytes[..bytes.len() / 2]).unwrap();
    let err = Store::open(&db.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::Malformed { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("is damaged") && message.contains("move it aside"),
        "{message}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_state_database_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::sqlite();
    let path = db.path().with_file_name("home").join("state.db");
    let _store = Store::open(&path).await.unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[tokio::test]
async fn a_postgres_connection_error_never_shows_the_password() {
    use std::str::FromStr;
    let Some(db) = TestDb::new(
        Backend::Postgres,
        "a_postgres_connection_error_never_shows_the_password",
    )
    .await
    else {
        return;
    };
    let common::Target::Postgres(url) = db.target() else {
        unreachable!()
    };
    let server = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap();
    // The test server trusts loopback, so the password is ignored; the missing database fails.
    let with_password = format!(
        "postgres://{}:pw-s3cret-pw@{}:{}/aloft_no_such_database",
        server.get_username(),
        server.get_host(),
        server.get_port()
    );
    let err = Store::connect(&with_password).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let shown = format!("{err} {err:?} {}", chain(&err));
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("aloft_no_such_database"), "{shown}");
}

/// An error with its causes, as `{:#}` would show them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut shown = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        shown.push_str(": ");
        shown.push_str(&cause.to_string());
        source = cause.source();
    }
    shown
}

/// Fifty launches at once on two cores kept SQLite's write lock busy for more than the ten
/// seconds writers used to wait (`cargo xtask bench-launch`: 4 of 50 failed with "database is
/// locked"). A writer now waits its turn for a minute.
#[tokio::test]
async fn a_write_waits_its_turn_behind_a_lock_held_for_over_ten_seconds() {
    use sqlx::Connection;
    let db = TestDb::sqlite();
    let store = Store::open(&db.path()).await.unwrap();
    let operation = store
        .operation_insert(OperationKind::Launch, "c", "test-owner", &json!(null))
        .await
        .unwrap();
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", db.path().display());
    let mut holder = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let released = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(12)).await;
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    });
    store
        .operation_record_step(None, &operation.id, "plan", &json!(1))
        .await
        .unwrap();
    store.cluster_insert(&cluster("waited")).await.unwrap();
    released.await.unwrap();
}

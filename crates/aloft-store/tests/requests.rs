//! Requests and their progress lines, against a fresh database per test, on SQLite and on
//! PostgreSQL (`sqlite::name`, `postgres::name`; see `common`).

mod common;

use aloft_store::RequestState;
use serde_json::json;

both_databases! {
    async fn a_request_is_recorded_pending_and_read_back_whole(db: TestDb) {
        let store = db.open().await;
        let params = json!({"cluster": "c1", "down": true});
        let request = store
            .request_insert("stop", Some("c1"), &params, "server-1")
            .await
            .unwrap();
        assert_eq!(request.state, RequestState::Pending);
        let read = store.request_fetch(&request.id).await.unwrap().unwrap();
        assert_eq!(read, request);
        assert_eq!(
            store.request_list_unfinished().await.unwrap(),
            vec![request]
        );
    }

    async fn request_ids_are_unique_when_made_at_once(db: TestDb) {
        let store = db.open().await;
        let mut ids = std::collections::HashSet::new();
        for _ in 0..50 {
            let request = store
                .request_insert("down", None, &json!({}), "s")
                .await
                .unwrap();
            assert!(ids.insert(request.id));
        }
    }

    async fn a_finished_request_never_changes_again(db: TestDb) {
        let store = db.open().await;
        let id = store
            .request_insert("down", Some("c"), &json!({}), "s")
            .await
            .unwrap()
            .id;
        assert!(
            store
                .request_set_state(&id, RequestState::Running, None, None)
                .await
                .unwrap()
        );
        let result = json!({"terminated": ["c"]});
        assert!(
            store
                .request_set_state(&id, RequestState::Succeeded, Some(&result), None)
                .await
                .unwrap()
        );
        // A cancel that arrives after the end loses, and says so.
        assert!(
            !store
                .request_set_state(&id, RequestState::Cancelled, None, Some("cancelled"))
                .await
                .unwrap()
        );
        let read = store.request_fetch(&id).await.unwrap().unwrap();
        assert_eq!(read.state, RequestState::Succeeded);
        assert_eq!(read.result, Some(result));
        assert!(read.finished_at.is_some());
        assert!(store.request_list_unfinished().await.unwrap().is_empty());
    }

    async fn setting_the_state_of_an_unknown_request_names_it(db: TestDb) {
        let store = db.open().await;
        let err = store
            .request_set_state("req-nope", RequestState::Running, None, None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("req-nope"), "{err}");
    }

    async fn progress_lines_are_numbered_in_order_and_read_from_any_point(db: TestDb) {
        let store = db.open().await;
        let id = store
            .request_insert("launch", Some("c"), &json!({}), "s")
            .await
            .unwrap()
            .id;
        for line in ["one", "two", "three"] {
            store.request_event_append(&id, line).await.unwrap();
        }
        let all: Vec<String> = store
            .request_events(&id, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.line)
            .collect();
        assert_eq!(all, ["one", "two", "three"]);
        let rest = store.request_events(&id, 2).await.unwrap();
        assert_eq!((rest[0].seq, rest[0].line.as_str()), (2, "three"));
        assert!(store.request_events(&id, 3).await.unwrap().is_empty());
    }

    async fn progress_lines_appended_concurrently_are_all_kept(db: TestDb) {
        let store = db.open().await;
        let id = store
            .request_insert("launch", None, &json!({}), "s")
            .await
            .unwrap()
            .id;
        let mut tasks = Vec::new();
        for n in 0..20 {
            let (store, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                store.request_event_append(&id, &format!("line {n}")).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let seqs: Vec<i64> = store
            .request_events(&id, 0)
            .await
            .unwrap()
            .iter()
            .map(|event| event.seq)
            .collect();
        assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    }

    async fn the_newest_requests_are_listed_first(db: TestDb) {
        let store = db.open().await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(
                store
                    .request_insert("stop", None, &json!({}), "s")
                    .await
                    .unwrap()
                    .id,
            );
        }
        let listed: Vec<String> = store
            .request_list(2)
            .await
            .unwrap()
            .into_iter()
            .map(|request| request.id)
            .collect();
        assert_eq!(listed, [ids[2].clone(), ids[1].clone()]);
    }

    async fn a_heartbeat_renews_only_its_owners_unfinished_requests(db: TestDb) {
        let store = db.open().await;
        let mine = store
            .request_insert("stop", None, &json!({}), "server-a")
            .await
            .unwrap();
        let done = store
            .request_insert("stop", None, &json!({}), "server-a")
            .await
            .unwrap();
        store
            .request_set_state(&done.id, RequestState::Failed, None, Some("x"))
            .await
            .unwrap();
        let theirs = store
            .request_insert("stop", None, &json!({}), "server-b")
            .await
            .unwrap();
        assert_eq!(mine.heartbeat_at, Some(mine.created_at));
        let later = mine.created_at + 7;
        assert_eq!(store.request_heartbeat("server-a", later).await.unwrap(), 1);
        let read = |id: String| {
            let store = store.clone();
            async move { store.request_fetch(&id).await.unwrap().unwrap() }
        };
        assert_eq!(read(mine.id.clone()).await.heartbeat_at, Some(later));
        assert_eq!(read(done.id.clone()).await.heartbeat_at, done.heartbeat_at);
        assert_eq!(read(theirs.id.clone()).await.heartbeat_at, theirs.heartbeat_at);
    }
}

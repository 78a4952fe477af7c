//! The API in process (`app()` driven by `oneshot`), and once for real on a loopback port
//! through the typed client. Each test has its own aloft home and state database.

use aloft_control::app::{App, Periods};
use aloft_server::{State, app};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tower::ServiceExt;

const TOKEN: &str = "0123456789abcdef0123456789abcdef-test-token";

/// A home of its own (removed on drop) and the application started on it, with background
/// tasks that run only when activated (their timers are an hour).
struct Server {
    home: PathBuf,
    app: Arc<App>,
}

impl Server {
    async fn new() -> Server {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let home = std::env::temp_dir().join(format!(
            "aloft-server-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&home).unwrap();
        let store = aloft_control::open_store(&home).await.unwrap();
        Server::on(home, store).await
    }

    async fn on(home: PathBuf, store: aloft_store::Store) -> Server {
        let hour = Duration::from_secs(3600);
        let periods = Periods {
            saga_recovery: hour,
            cluster_status: hour,
            orphan_sweep: hour,
        };
        let app = Arc::new(App::start(home.clone(), store, periods).await.unwrap());
        Server { home, app }
    }

    async fn store(&self) -> aloft_store::Store {
        aloft_control::open_store(&self.home).await.unwrap()
    }

    /// Calls a route; `token` `None` sends none. Returns the status and the body as JSON.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        let response = app(State::new(self.app.clone(), TOKEN))
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, Some(TOKEN)).await
    }

    async fn post(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body), Some(TOKEN)).await
    }

    /// Waits for a request to end and returns it.
    async fn finished(&self, id: &str) -> Value {
        for _ in 0..200 {
            let (_, request) = self.get(&format!("/api/v1/requests/{id}")).await;
            if !matches!(request["state"].as_str(), Some("pending" | "running")) {
                return request;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("request {id} did not end");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn cluster(name: &str) -> aloft_store::Cluster {
    aloft_store::Cluster {
        name: name.to_owned(),
        status: aloft_store::ClusterStatus::Up,
        cloud: "local".to_owned(),
        region: "local-1".to_owned(),
        zone: Some("local-1a".to_owned()),
        instance_type: "local.small".to_owned(),
        num_nodes: 2,
        spot: false,
        hourly_price: 0.25,
        autostop_minutes: Some(10),
        autostop_down: true,
        resources: json!({"ports": [{"first": 8080, "last": 8080}, {"first": 9000, "last": 9010}]}),
        generation: 0,
        created_at: 0,
        updated_at: 0,
    }
}

#[tokio::test]
async fn health_and_the_openapi_document_need_no_token() {
    let server = Server::new().await;
    let (status, health) = server.call(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["pid"], std::process::id());
    let (status, document) = server
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["paths"]["/api/v1/clusters"].is_object());
}

/// Every route the OpenAPI document lists with a security requirement refuses a request with
/// no token and one with a wrong token: a new route without the guard fails here.
#[tokio::test]
async fn every_guarded_route_refuses_a_missing_or_wrong_token() {
    let server = Server::new().await;
    let document: Value = serde_json::from_str(&aloft_server::openapi_json()).unwrap();
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let path = path.replace("{name}", "c1").replace("{id}", "req-1");
            let method: Method = method.to_uppercase().parse().unwrap();
            let guarded = operation.get("security").is_some();
            for token in [None, Some("wrong-token")] {
                let (status, body) = server.call(method.clone(), &path, Some("{}"), token).await;
                if guarded {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    assert_eq!(body["code"], "unauthorized", "{method} {path}");
                    checked += 1;
                } else {
                    assert_eq!(status, StatusCode::OK, "{method} {path} is open");
                }
            }
        }
    }
    assert!(checked >= 18, "only {checked} checks");
}

#[tokio::test]
async fn clusters_are_listed_as_views_not_records() {
    let server = Server::new().await;
    let store = server.store().await;
    store.cluster_insert(&cluster("c1")).await.unwrap();
    store.cluster_insert(&cluster("c2")).await.unwrap();
    let (status, clusters) = server.get("/api/v1/clusters").await;
    assert_eq!(status, StatusCode::OK);
    let clusters = clusters.as_array().unwrap();
    assert_eq!(clusters.len(), 2);
    let c1 = &clusters[0];
    assert_eq!(c1["name"], "c1");
    assert_eq!(c1["status"], "up");
    assert_eq!(c1["ports"], json!(["8080", "9000-9010"]));
    assert_eq!(c1["live_state"], Value::Null);
    // Store internals stay inside.
    assert!(
        c1.get("generation").is_none() && c1.get("resources").is_none(),
        "{c1}"
    );
    let (_, only) = server.get("/api/v1/clusters?names=c2").await;
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["name"], "c2");
}

#[tokio::test]
async fn the_cluster_list_shows_at_once_what_another_process_wrote() {
    let server = Server::new().await;
    let (_, before) = server.get("/api/v1/clusters").await;
    assert_eq!(before, json!([]));
    let (_, again) = server.get("/api/v1/clusters").await;
    assert_eq!(again, json!([]));
    // Another process (a CLI launching in-process) records a cluster, then removes it.
    let other = server.store().await;
    other.cluster_insert(&cluster("c1")).await.unwrap();
    let (_, after) = server.get("/api/v1/clusters").await;
    assert_eq!(after[0]["name"], "c1", "{after}");
    other.cluster_delete("c1").await.unwrap();
    let (_, gone) = server.get("/api/v1/clusters").await;
    assert_eq!(gone, json!([]));
}

#[tokio::test]
async fn stopping_or_starting_an_unknown_cluster_is_404_naming_it() {
    let server = Server::new().await;
    for verb in ["stop", "start"] {
        let (status, body) = server
            .post(&format!("/api/v1/clusters/nope/{verb}"), "")
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{verb}");
        assert_eq!(body["code"], "not_found");
        assert!(
            body["message"].as_str().unwrap().contains("`nope`"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_400_naming_the_field() {
    let server = Server::new().await;
    let (status, body) = server
        .post("/api/v1/clusters/c1/down", r#"{"skip_logz": true}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "bad_request");
    assert!(
        body["message"].as_str().unwrap().contains("skip_logz"),
        "{body}"
    );
    let (status, body) = server
        .post("/api/v1/clusters/c1/down", r#"{"skip_logs": "yes"}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server.post("/api/v1/background/activate", "[1,").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server.get("/api/v1/requests?limit=many").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("limit"),
        "{body}"
    );
}

#[tokio::test]
async fn an_invalid_cluster_name_is_refused_before_any_work() {
    let server = Server::new().await;
    let (status, body) = server.post("/api/v1/clusters/Bad_Name!/down", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, requests) = server.get("/api/v1/requests").await;
    assert_eq!(requests, json!([]));
}

#[tokio::test]
async fn an_unknown_route_or_request_is_a_json_404() {
    let server = Server::new().await;
    let (status, body) = server.get("/api/v2/anything").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    let (status, body) = server.get("/api/v1/requests/req-none").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["message"].as_str().unwrap().contains("req-none"));
}

#[tokio::test]
async fn stop_on_a_cluster_being_launched_is_409() {
    let server = Server::new().await;
    let store = server.store().await;
    store.cluster_insert(&cluster("busy")).await.unwrap();
    // A launch owned by this (live) process.
    store
        .operation_insert(
            aloft_store::OperationKind::Launch,
            "busy",
            &aloft_ops_owner(),
            &json!({}),
        )
        .await
        .unwrap();
    let (status, body) = server.post("/api/v1/clusters/busy/stop", "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("being launched"),
        "{body}"
    );
}

/// This process as an operation owner (`aloft_ops::owner::this_process`), written out so the
/// test needs no dependency on the saga crate: pid, start ticks, boot id.
fn aloft_ops_owner() -> String {
    let pid = std::process::id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_owned();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    format!("pid:{pid}:{start}@{}", boot.trim())
}

#[tokio::test]
async fn requests_left_unfinished_by_a_server_that_is_gone_are_failed_at_start() {
    let server = Server::new().await;
    let store = server.store().await;
    // A server on another machine (or before a reboot) whose lease ran out a minute ago.
    let gone = store
        .request_insert("stop", Some("c1"), &json!({}), "pid:1:0@another-boot")
        .await
        .unwrap();
    store
        .request_heartbeat("pid:1:0@another-boot", gone.created_at - 60)
        .await
        .unwrap();
    let ours = store
        .request_insert("stop", Some("c2"), &json!({}), &aloft_ops_owner())
        .await
        .unwrap();
    let home = server.home.clone();
    let restarted = Server::on(home, store.clone()).await;
    let (_, request) = restarted
        .get(&format!("/api/v1/requests/{}", gone.id))
        .await;
    assert_eq!(request["state"], "failed");
    assert!(
        request["error"].as_str().unwrap().contains("server"),
        "{request}"
    );
    // One whose server is alive (this process) is left to it.
    let (_, request) = restarted
        .get(&format!("/api/v1/requests/{}", ours.id))
        .await;
    assert_eq!(request["state"], "pending");
    std::mem::forget(restarted); // shares the home with `server`, which removes it
}

#[tokio::test]
async fn a_request_of_a_server_elsewhere_is_left_while_its_lease_lasts_and_failed_after() {
    // Each server's recovery runs at start and whenever asked; an ask made before the start's
    // activation began can leave one more activation to come. Asking twice settles that, so
    // only the activations the test asks for find what it sets up.
    async fn settle(server: &Server) {
        for _ in 0..2 {
            server
                .post(
                    "/api/v1/background/activate",
                    r#"{"tasks": ["saga_recovery"]}"#,
                )
                .await;
        }
    }
    let server = Server::new().await;
    settle(&server).await;
    let store = server.store().await;
    let elsewhere = "pid:7:7@a-machine-sharing-the-database";
    let request = store
        .request_insert("down", Some("c1"), &json!({}), elsewhere)
        .await
        .unwrap();
    let path = format!("/api/v1/requests/{}", request.id);
    async fn state(server: &Server, path: &str) -> Value {
        server.get(path).await.1["state"].clone()
    }
    // Its lease is fresh: neither a server starting on the database nor recovery touches it.
    let other = Server::on(server.home.clone(), store.clone()).await;
    assert_eq!(state(&other, &path).await, "pending");
    other
        .post(
            "/api/v1/background/activate",
            r#"{"tasks": ["saga_recovery"]}"#,
        )
        .await;
    assert_eq!(state(&other, &path).await, "pending");
    // Its server stops renewing it: once the lease has run out, recovery ends it.
    store
        .request_heartbeat(elsewhere, request.created_at - 60)
        .await
        .unwrap();
    let (_, activated) = other
        .post(
            "/api/v1/background/activate",
            r#"{"tasks": ["saga_recovery"]}"#,
        )
        .await;
    // Ended by this activation, or by the first server's own recovery: either way, failed.
    assert_eq!(state(&other, &path).await, "failed", "{activated}");
    let (_, ended) = other.get(&path).await;
    assert!(
        ended["error"].as_str().unwrap().contains("server"),
        "{ended}"
    );
    std::mem::forget(other); // shares the home with `server`, which removes it
}

#[tokio::test]
async fn activating_the_background_tasks_runs_each_and_reports_what_it_found() {
    let server = Server::new().await;
    let (_, before) = server.get("/api/v1/background").await;
    let names: Vec<&str> = before
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["saga_recovery", "cluster_status", "orphan_sweep"]);
    let counts: Vec<u64> = before
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["activations"].as_u64().unwrap())
        .collect();
    let (status, after) = server.post("/api/v1/background/activate", "").await;
    assert_eq!(status, StatusCode::OK, "{after}");
    for (task, before) in after["tasks"].as_array().unwrap().iter().zip(counts) {
        assert!(
            task["activations"].as_u64().unwrap() > before,
            "{task} ran again"
        );
        assert!(task["last_status"].is_object(), "{task}");
    }
    let (status, one) = server
        .post(
            "/api/v1/background/activate",
            r#"{"tasks": ["saga_recovery"]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["tasks"].as_array().unwrap().len(), 1);
    let (status, body) = server
        .post("/api/v1/background/activate", r#"{"tasks": ["nope"]}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().contains("saga_recovery"),
        "{body}"
    );
}

#[tokio::test]
async fn a_finished_request_is_left_as_it_ended_by_a_cancel() {
    let server = Server::new().await;
    let (status, accepted) = server.post("/api/v1/clusters/ghost/down", "").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = accepted["request_id"].as_str().unwrap().to_owned();
    let ended = server.finished(&id).await;
    let (status, after) = server
        .post(&format!("/api/v1/requests/{id}/cancel"), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after["state"], ended["state"]);
}

/// The real deal: a server on a loopback port, the typed client, a request followed to its
/// end as server-sent events.
#[tokio::test]
async fn a_request_is_followed_to_its_end_through_the_client() {
    let server = Server::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = app(State::new(server.app.clone(), TOKEN));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = aloft_client::Client::new(&url, TOKEN);
    assert_eq!(client.health().await.unwrap().status, "ok");
    // No cluster `ghost` is recorded and no cloud has it: the request fails, saying so.
    let accepted = client
        .down("ghost", &aloft_api::DownBody::default())
        .await
        .unwrap();
    let mut lines = Vec::new();
    let ended = client
        .follow(&accepted.request_id, 0, |event| {
            lines.push(event.line.clone())
        })
        .await
        .unwrap();
    assert_eq!(ended.state, aloft_api::RequestState::Failed, "{ended:?}");
    assert!(
        ended.error.as_deref().unwrap().contains("ghost"),
        "{ended:?}"
    );
    assert_eq!(lines, ["Terminating `ghost`."]);
    // Followed again from the start, the same lines come back.
    let mut again = Vec::new();
    client
        .follow(&accepted.request_id, 0, |event| {
            again.push(event.line.clone())
        })
        .await
        .unwrap();
    assert_eq!(again, lines);
    // A wrong token is refused with the API's error.
    let wrong = aloft_client::Client::new(&url, "nope");
    let err = wrong.clusters(&[]).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(aloft_api::ErrorCode::Unauthorized),
        "{err}"
    );
}

/// Calls a route of `state`'s router and returns the status and the body as text.
async fn call_text(state: &State, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::builder().method(Method::GET).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn metrics_need_the_token_and_count_routes_by_pattern_clusters_and_their_cost() {
    let server = Server::new().await;
    let store = server.store().await;
    store.cluster_insert(&cluster("web")).await.unwrap();
    let mut idle = cluster("idle");
    idle.status = aloft_store::ClusterStatus::Stopped;
    store.cluster_insert(&idle).await.unwrap();
    let state = State::new(server.app.clone(), TOKEN);
    for _ in 0..2 {
        assert_eq!(
            call_text(&state, "/api/v1/clusters", Some(TOKEN)).await.0,
            StatusCode::OK
        );
    }
    let missing = call_text(&state, "/api/v1/requests/req-nope", Some(TOKEN)).await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
    assert_eq!(
        call_text(&state, "/metrics", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (status, text) = call_text(&state, "/metrics", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    for expected in [
        "aloft_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/clusters\",status=\"200\"} 2\n",
        // The route's pattern, never the id: one series for every request looked up.
        "aloft_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/requests/{id}\",status=\"404\"} 1\n",
        "aloft_http_request_duration_seconds_count{method=\"GET\",route=\"/metrics\",status=\"401\"} 1\n",
        "aloft_clusters{cloud=\"local\",status=\"up\"} 1\n",
        "aloft_clusters{cloud=\"local\",status=\"stopped\"} 1\n",
        // Two nodes at $0.25/h; the stopped cluster costs nothing per hour.
        "aloft_clusters_cost_dollars_per_hour{cloud=\"local\"} 0.5\n",
        "aloft_requests_running 0\n",
        "# TYPE process_resident_memory_bytes gauge\n",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    // Every sample line is `name{labels} number` or `name number`.
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(series.ends_with('}') || !series.contains('{'), "{line}");
        assert!(!series.contains("{}"), "{line}");
    }
}

#[tokio::test]
async fn the_documented_background_task_names_are_the_servers_tasks() {
    let server = Server::new().await;
    let (_, tasks) = server.get("/api/v1/background").await;
    let mut running: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["name"].as_str().unwrap())
        .collect();
    let document: Value = serde_json::from_str(&aloft_server::openapi_json()).unwrap();
    let mut documented: Vec<&str> = document["components"]["schemas"]["TaskName"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    running.sort_unstable();
    documented.sort_unstable();
    assert_eq!(running, documented);
}

#[tokio::test]
async fn out_of_range_query_values_are_refused_naming_the_parameter() {
    let server = Server::new().await;
    let (status, body) = server.get("/api/v1/requests?limit=3.0").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server.get("/api/v1/requests?limit=3.5").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("limit"),
        "{body}"
    );
    for path in ["/api/v1/requests?limit=0", "/api/v1/requests?limit=1001"] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("`limit`"),
            "{body}"
        );
    }
    let store = server.store().await;
    let request = store
        .request_insert("stop", Some("a"), &json!({}), "test")
        .await
        .unwrap();
    let (status, body) = server
        .get(&format!("/api/v1/requests/{}/events?from=-1", request.id))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`from`"),
        "{body}"
    );
}

#[tokio::test]
async fn an_empty_or_null_body_reads_as_no_fields() {
    let server = Server::new().await;
    for body in ["", "null", " \n"] {
        let (status, answer) = server.post("/api/v1/background/activate", body).await;
        assert_eq!(status, StatusCode::OK, "{body:?}: {answer}");
    }
}

#[tokio::test]
async fn jobs_of_an_unknown_or_stopped_cluster_are_404_or_409_and_a_malformed_cancel_is_400() {
    let server = Server::new().await;
    let (status, body) = server.get("/api/v1/clusters/nope/jobs").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let store = server.store().await;
    let mut stopped = cluster("resting");
    stopped.status = aloft_store::ClusterStatus::Stopped;
    store.cluster_insert(&stopped).await.unwrap();
    let (status, body) = server.get("/api/v1/clusters/resting/jobs").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("aloft start resting"),
        "{body}"
    );
    // Nothing named: nothing to cancel, and the cluster is not asked.
    let (status, body) = server
        .post("/api/v1/clusters/resting/jobs/cancel", "{}")
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    // A job id may be written as JSON Schema's integers may (`3.0`), never with a fraction.
    let (status, body) = server
        .post("/api/v1/clusters/resting/jobs/cancel", r#"{"jobs": [3.0]}"#)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = server
        .post("/api/v1/clusters/resting/jobs/cancel", r#"{"jobs": [3.5]}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("jobs[0]"),
        "{body}"
    );
    let (status, body) = server
        .post("/api/v1/clusters/resting/jobs/cancel", r#"{"jobs": "1"}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("jobs"), "{body}");
}

#[tokio::test]
async fn endpoints_list_only_clusters_whose_task_opened_ports() {
    let server = Server::new().await;
    let (status, body) = server.get("/api/v1/endpoints").await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let (status, body) = server.get("/api/v1/endpoints?names=a,b").await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let (status, _) = server.get("/api/v1/endpoints?cluster=a").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn autostop_needs_a_recorded_cluster_that_is_up_and_a_body_of_the_right_shape() {
    let server = Server::new().await;
    let (status, body) = server
        .post("/api/v1/clusters/nope/autostop", r#"{"idle_minutes": 5}"#)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let store = server.store().await;
    let mut stopped = cluster("resting");
    stopped.status = aloft_store::ClusterStatus::Stopped;
    store.cluster_insert(&stopped).await.unwrap();
    let (status, body) = server
        .post(
            "/api/v1/clusters/resting/autostop",
            r#"{"idle_minutes": 5}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // A whole number may be written `5.0`, as JSON Schema's integers may.
    let (status, body) = server
        .post(
            "/api/v1/clusters/resting/autostop",
            r#"{"idle_minutes": 5.0}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    for (wrong, field) in [
        (r#"{"idle_minutes": 5.5}"#, "idle_minutes"),
        (r#"{"idle_minutes": -1}"#, "idle_minutes"),
        (r#"{"idle_minutes": 5, "down": "yes"}"#, "down"),
        (r#"{"idle": 5}"#, "idle"),
    ] {
        let (status, body) = server
            .post("/api/v1/clusters/resting/autostop", wrong)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}: {body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    // The record is as it was.
    let record = store.cluster_fetch("resting").await.unwrap().unwrap();
    assert_eq!(record.autostop_minutes, stopped.autostop_minutes);
}

#[tokio::test]
async fn logs_of_an_unknown_cluster_are_404_of_a_stopped_one_without_a_copy_409_and_job_0_is_400() {
    let server = Server::new().await;
    let (status, body) = server.get("/api/v1/clusters/nope/logs").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let store = server.store().await;
    let mut stopped = cluster("resting");
    stopped.status = aloft_store::ClusterStatus::Stopped;
    store.cluster_insert(&stopped).await.unwrap();
    let (status, body) = server.get("/api/v1/clusters/resting/logs").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("no copy of its logs is kept"), "{body}");
    let (status, body) = server
        .get("/api/v1/clusters/resting/logs?follow=true")
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("aloft start resting"),
        "{body}"
    );
    let (status, body) = server.get("/api/v1/clusters/resting/logs?job=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = server
        .get("/api/v1/clusters/resting/logs?follow=maybe")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_launch_body_that_is_not_a_task_or_plan_is_400_naming_the_field() {
    let server = Server::new().await;
    let body = |task: Value, plan: Value| {
        json!({"cluster": "c1", "task": task, "base_dir": "/tmp", "plan": plan}).to_string()
    };
    let (status, answer) = server
        .post("/api/v1/launch", &body(json!({}), json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().starts_with("task: "),
        "{answer}"
    );
    let (status, answer) = server
        .post(
            "/api/v1/launch",
            &json!({"cluster": "Not A Name", "task": {}, "base_dir": "/tmp"}).to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("cluster"),
        "{answer}"
    );
    let (status, answer) = server
        .post(
            "/api/v1/launch",
            &json!({"cluster": "c1", "task": {}, "base_dir": "/tmp", "secrets": {"TOKEN": 7}})
                .to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("secrets"),
        "{answer}"
    );
    // Nothing was recorded by the refused launches.
    let (_, requests) = server.get("/api/v1/requests").await;
    assert_eq!(requests, json!([]));
}

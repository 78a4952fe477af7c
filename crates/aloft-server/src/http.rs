//! The routes: thin handlers that call the application and convert what comes back.

use crate::error::HttpError;
use crate::extract::{Body, Query};
use crate::{State, views};
use aloft_api::{
    Accepted, Activated, ApiError, Autostop, BackgroundTask, CancelJobsBody, Cluster, DownBody,
    Endpoint, Health, Job, LaunchBody, LogEvent, Request,
};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;

type Answer<T> = Result<Json<T>, HttpError>;

/// The server answers.
#[utoipa::path(get, path = "/api/v1/health", tag = "meta",
    responses((status = 200, description = "The server is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
    })
}

/// The `names` filter of the routes that list clusters or what is on them.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ClustersQuery {
    /// Only these clusters, comma-separated (default: all).
    names: Option<String>,
}

/// The recorded clusters, each with what its cloud said at the last refresh.
#[utoipa::path(get, path = "/api/v1/clusters", tag = "clusters", params(ClustersQuery),
    security(("token" = [])),
    responses((status = 200, body = Vec<Cluster>), (status = 400, body = ApiError)))]
pub async fn clusters(
    state: axum::extract::State<State>,
    Query(query): Query<ClustersQuery>,
) -> Answer<Vec<Cluster>> {
    let names = names_list(query.names.as_deref());
    let rows = state.app.clusters(&names).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(record, live)| views::cluster(record, live))
            .collect(),
    ))
}

fn names_list(names: Option<&str>) -> Vec<String> {
    names
        .map(|names| {
            names
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A cluster's jobs, from its head node's agent (oldest first).
#[utoipa::path(get, path = "/api/v1/clusters/{name}/jobs", tag = "jobs",
    params(("name" = String, Path, description = "The cluster", pattern = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")),
    security(("token" = [])),
    responses((status = 200, body = Vec<Job>), (status = 404, body = ApiError),
        (status = 409, description = "The cluster is not up", body = ApiError)))]
pub async fn jobs(
    state: axum::extract::State<State>,
    Path(name): Path<String>,
) -> Answer<Vec<Job>> {
    let jobs = state.app.jobs(&name).await?;
    Ok(Json(jobs.into_iter().map(views::job).collect()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    /// The job (default: the cluster's latest).
    #[param(minimum = 1)]
    #[serde(default, deserialize_with = "aloft_api::whole::option_i64")]
    job: Option<i64>,
    /// Keep streaming until the job ends (the cluster must be up).
    #[serde(default)]
    follow: Option<bool>,
}

/// How much of a log stream may wait for a client that reads slowly before the stream is
/// ended (the log stays on the cluster, and its copy here is whole).
const LOG_BACKLOG: usize = 64 << 20;

/// A job's log, node by node: from the cluster's head node while it is up (a copy is kept
/// here as it streams), else the copy kept here. One JSON object per line ([`LogEvent`]):
/// `job` first, then `output`, and `end` last, or `error` if the stream broke.
#[utoipa::path(get, path = "/api/v1/clusters/{name}/logs", tag = "jobs",
    params(("name" = String, Path, description = "The cluster", pattern = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"),
        LogsQuery),
    security(("token" = [])),
    responses((status = 200, content_type = "application/x-ndjson", body = LogEvent),
        (status = 400, body = ApiError), (status = 404, body = ApiError),
        (status = 409, description = "The cluster is not up and no copy of the log is kept (or `follow` was asked)", body = ApiError)))]
pub async fn logs(
    state: axum::extract::State<State>,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<axum::response::Response, HttpError> {
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    if query.job.is_some_and(|job| job < 1) {
        return Err(HttpError::bad_request(
            "the query: `job` is a job id, 1 or more".to_owned(),
        ));
    }
    let follow = query.follow.unwrap_or(false);
    let source = state.app.log_source(&name, query.job, follow).await?;
    let (nodes, notice) = match &source {
        aloft_control::logs::Source::Live { nodes, .. } => (*nodes, None),
        aloft_control::logs::Source::Kept { nodes, why, .. } => (
            *nodes,
            Some(format!("{why}; showing the copy kept by the server")),
        ),
    };
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<axum::body::Bytes>();
    let backlog = std::sync::Arc::new(AtomicUsize::new(0));
    let send = {
        let backlog = backlog.clone();
        move |event: &LogEvent| -> anyhow::Result<()> {
            let mut line = serde_json::to_vec(event)?;
            line.push(b'\n');
            if backlog.fetch_add(line.len(), Ordering::Relaxed) > LOG_BACKLOG {
                anyhow::bail!("the client reads too slowly; `aloft logs` again reads on");
            }
            sender
                .send(line.into())
                .map_err(|_| anyhow::anyhow!("the client went away"))
        }
    };
    let app = state.app.clone();
    tokio::spawn(async move {
        let mut sink = |item: aloft_control::logs::LogItem<'_>| {
            let event = views::log_item(item, nodes);
            if let (LogEvent::Job { .. }, Some(message)) = (&event, &notice) {
                send(&event)?;
                return send(&LogEvent::Notice {
                    message: message.clone(),
                });
            }
            send(&event)
        };
        let ended = app.stream_logs(source, query.job, follow, &mut sink).await;
        let last = match ended {
            Ok(Some(end)) => views::log_end(end),
            Ok(None) => return,
            Err(err) => LogEvent::Error {
                message: format!("{err:#}"),
            },
        };
        let _ = send(&last);
    });
    let body =
        futures_util::stream::unfold((receiver, backlog), |(mut receiver, backlog)| async move {
            let line = receiver.recv().await?;
            backlog.fetch_sub(line.len(), std::sync::atomic::Ordering::Relaxed);
            Some((Ok::<_, Infallible>(line), (receiver, backlog)))
        });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// Cancels a cluster's jobs (those named, or every unfinished one); answers with those it
/// cancelled (none when the body names none).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/jobs/cancel", tag = "jobs",
    params(("name" = String, Path, description = "The cluster", pattern = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")),
    request_body = Option<CancelJobsBody>, security(("token" = [])),
    responses((status = 200, body = Vec<Job>), (status = 400, body = ApiError),
        (status = 404, body = ApiError),
        (status = 409, description = "The cluster is not up", body = ApiError)))]
pub async fn cancel_jobs(
    state: axum::extract::State<State>,
    Path(name): Path<String>,
    Body(body): Body<CancelJobsBody>,
) -> Answer<Vec<Job>> {
    let jobs = state.app.cancel_jobs(&name, &body.jobs, body.all).await?;
    Ok(Json(jobs.into_iter().map(views::job).collect()))
}

/// Sets a cluster's autostop on its head node's agent, which stops (or tears down) the cluster
/// by itself once idle, with this machine off; answers with the setting.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/autostop", tag = "jobs",
    params(("name" = String, Path, description = "The cluster", pattern = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")),
    request_body = Option<Autostop>, security(("token" = [])),
    responses((status = 200, body = Autostop), (status = 400, body = ApiError),
        (status = 404, body = ApiError),
        (status = 409, description = "The cluster is not up, or cannot stop", body = ApiError)))]
pub async fn autostop(
    state: axum::extract::State<State>,
    Path(name): Path<String>,
    Body(body): Body<Autostop>,
) -> Answer<Autostop> {
    let down = body.down && body.idle_minutes.is_some();
    state.app.autostop(&name, body.idle_minutes, down).await?;
    Ok(Json(Autostop {
        idle_minutes: body.idle_minutes,
        down,
    }))
}

/// Where the ports the clusters' tasks opened are reached (asks each cluster's cloud).
#[utoipa::path(get, path = "/api/v1/endpoints", tag = "clusters", params(ClustersQuery),
    security(("token" = [])),
    responses((status = 200, body = Vec<Endpoint>), (status = 400, body = ApiError)))]
pub async fn endpoints(
    state: axum::extract::State<State>,
    Query(query): Query<ClustersQuery>,
) -> Answer<Vec<Endpoint>> {
    let names = names_list(query.names.as_deref());
    let found = state.app.endpoints(&names).await?;
    Ok(Json(found.into_iter().map(views::endpoint).collect()))
}

fn accepted(request: aloft_store::Request) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            request_id: request.id,
        }),
    )
}

/// Stops a cluster's instances, keeping their disks (a request).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/stop", tag = "clusters",
    params(("name" = String, Path, description = "The cluster", pattern = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")), security(("token" = [])),
    responses((status = 202, body = Accepted), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
pub async fn stop(
    state: axum::extract::State<State>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), HttpError> {
    Ok(accepted(state.app.stop(&name).await?))
}

/// Starts a stopped cluster again (a request).
#[utoipa::path(post, path = "/api/v1/clusters/{name}/start", tag = "clusters",
    params(("name" = String, Path, description = "The cluster", pattern = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")), security(("token" = [])),
    responses((status = 202, body = Accepted), (status = 404, body = ApiError),
        (status = 409, body = ApiError)))]
pub async fn start(
    state: axum::extract::State<State>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), HttpError> {
    Ok(accepted(state.app.start_cluster(&name).await?))
}

/// Tears a cluster down and forgets it (a request); one with no record is looked for on the
/// clouds by its tag.
#[utoipa::path(post, path = "/api/v1/clusters/{name}/down", tag = "clusters",
    params(("name" = String, Path, description = "The cluster", pattern = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")), request_body = Option<DownBody>,
    security(("token" = [])),
    responses((status = 202, body = Accepted), (status = 400, body = ApiError),
        (status = 409, body = ApiError)))]
pub async fn down(
    state: axum::extract::State<State>,
    Path(name): Path<String>,
    Body(body): Body<DownBody>,
) -> Result<(StatusCode, Json<Accepted>), HttpError> {
    Ok(accepted(state.app.down(&name, body.skip_logs).await?))
}

/// Launches a task (a request): plans a new cluster (or reuses, starts or repairs a recorded
/// one), brings it up with failover, queues the task as a job and sets the cluster's autostop.
/// The request's result is a [`Launched`]; the job's output is at
/// `GET /api/v1/clusters/{name}/logs`.
#[utoipa::path(post, path = "/api/v1/launch", tag = "clusters",
    request_body = LaunchBody, security(("token" = [])),
    responses((status = 202, body = Accepted), (status = 400, body = ApiError),
        (status = 409, body = ApiError)))]
pub async fn launch(
    state: axum::extract::State<State>,
    Body(body): Body<LaunchBody>,
) -> Result<(StatusCode, Json<Accepted>), HttpError> {
    let launch = views::task_launch(body).map_err(HttpError::bad_request)?;
    Ok(accepted(state.app.launch(launch).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    /// How many (newest first; default 50).
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "aloft_api::whole::option_u32")]
    limit: Option<u32>,
}

/// The newest requests, newest first.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(RequestsQuery),
    security(("token" = [])),
    responses((status = 200, body = Vec<Request>), (status = 400, body = ApiError)))]
pub async fn requests(
    state: axum::extract::State<State>,
    Query(query): Query<RequestsQuery>,
) -> Answer<Vec<Request>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(HttpError::bad_request(format!(
            "the query: `limit` is {limit}; ask for 1 to 1000"
        )));
    }
    let rows = state.app.requests(i64::from(limit)).await?;
    Ok(Json(rows.into_iter().map(views::request).collect()))
}

/// One request.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "The request")), security(("token" = [])),
    responses((status = 200, body = Request), (status = 404, body = ApiError)))]
pub async fn request(
    state: axum::extract::State<State>,
    Path(id): Path<String>,
) -> Answer<Request> {
    Ok(Json(views::request(state.app.request(&id).await?)))
}

/// Cancels a request: its work stops, what it made is undone, and it ends `cancelled` (a
/// request that had ended is answered as it is).
#[utoipa::path(post, path = "/api/v1/requests/{id}/cancel", tag = "requests",
    params(("id" = String, Path, description = "The request")), security(("token" = [])),
    responses((status = 200, body = Request), (status = 404, body = ApiError)))]
pub async fn cancel(state: axum::extract::State<State>, Path(id): Path<String>) -> Answer<Request> {
    state.app.cancel(&id).await?;
    Ok(Json(views::request(state.app.request(&id).await?)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// The first line to send (its `seq`; default 0).
    #[param(minimum = 0)]
    #[serde(default, deserialize_with = "aloft_api::whole::option_i64")]
    from: Option<i64>,
}

/// One server-sent event of the events route (documentation only: the route writes them with
/// axum's `Event`).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ProgressEvent {
    /// `end` for the last event; absent for a line of progress.
    event: Option<String>,
    /// For a line, its `seq` + 1: where to go on from (`?from=`).
    id: Option<String>,
    /// JSON: a `RequestEvent` for a line; the finished `Request` for `end`.
    data: String,
}

/// A request's progress as server-sent events: one per line (`data` is a `RequestEvent`),
/// then one named `end` whose data is the finished `Request`.
#[utoipa::path(get, path = "/api/v1/requests/{id}/events", tag = "requests",
    params(("id" = String, Path, description = "The request"), EventsQuery),
    security(("token" = [])),
    responses((status = 200, content_type = "text/event-stream", body = ProgressEvent),
        (status = 404, body = ApiError)))]
pub async fn events(
    state: axum::extract::State<State>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    state.app.request(&id).await?;
    let from = query.from.unwrap_or(0);
    if from < 0 {
        return Err(HttpError::bad_request(format!(
            "the query: `from` is {from}; a line's `seq` is 0 or more"
        )));
    }
    let app = state.app.clone();
    let changed = app.subscribe();
    let stream = futures_util::stream::unfold(
        (app, changed, id, from, Vec::<Event>::new(), false),
        |(app, mut changed, id, mut next, mut queued, ended)| async move {
            loop {
                if let Some(event) = queued.pop() {
                    return Some((Ok(event), (app, changed, id, next, queued, ended)));
                }
                if ended {
                    return None;
                }
                // Mark what is seen before reading, so a change after the read wakes us.
                changed.borrow_and_update();
                let request = app.request(&id).await.ok()?;
                let lines = app.request_events(&id, next).await.ok()?;
                let mut batch = Vec::new();
                for line in lines {
                    next = line.seq + 1;
                    let data = serde_json::to_string(&views::event(line)).ok()?;
                    batch.push(Event::default().id(next.to_string()).data(data));
                }
                let finished = request.state.is_finished();
                if finished {
                    let data = serde_json::to_string(&views::request(request)).ok()?;
                    batch.push(Event::default().event("end").data(data));
                }
                if !batch.is_empty() {
                    batch.reverse();
                    queued = batch;
                    return queued
                        .pop()
                        .map(|event| (Ok(event), (app, changed, id, next, queued, finished)));
                }
                // Another server sharing the database changes nothing here: look again soon.
                let _ = tokio::time::timeout(Duration::from_secs(1), changed.changed()).await;
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The background tasks and what each found last.
#[utoipa::path(get, path = "/api/v1/background", tag = "background", security(("token" = [])),
    responses((status = 200, body = Vec<BackgroundTask>)))]
pub async fn background(state: axum::extract::State<State>) -> Json<Vec<BackgroundTask>> {
    Json(
        state
            .app
            .background()
            .into_iter()
            .map(views::task)
            .collect(),
    )
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    /// The tasks to activate (default: all).
    #[serde(default)]
    #[schema(value_type = Option<Vec<TaskName>>)]
    tasks: Option<Vec<String>>,
}

/// A background task's name (documentation only: the names `GET /background` lists).
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum TaskName {
    SagaRecovery,
    ClusterStatus,
    OrphanSweep,
}

/// Activates the background tasks (those named, or all) and answers once each has run.
#[utoipa::path(post, path = "/api/v1/background/activate", tag = "background",
    request_body = Option<ActivateBody>, security(("token" = [])),
    responses((status = 200, body = Activated), (status = 400, body = ApiError)))]
pub async fn activate(
    state: axum::extract::State<State>,
    Body(body): Body<ActivateBody>,
) -> Answer<Activated> {
    let tasks = state.app.activate(body.tasks.as_deref()).await?;
    Ok(Json(Activated {
        tasks: tasks.into_iter().map(views::task).collect(),
    }))
}

/// The server's figures for Prometheus (text format 0.0.4): HTTP latency by route and status,
/// clusters by cloud and status and what they cost per hour, requests, background tasks, and
/// the process's memory. Scrape it with the token (`authorization: credentials_file`).
#[utoipa::path(get, path = "/metrics", tag = "meta", security(("token" = [])),
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(
    state: axum::extract::State<State>,
) -> Result<impl axum::response::IntoResponse, HttpError> {
    let mut out = String::new();
    state.app.render_metrics(&mut out).await?;
    state.http.render(&mut out);
    crate::process_metrics(&mut out);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}

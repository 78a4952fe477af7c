//! aloft's control plane server: the HTTP API over the application layer ([`aloft_control`]),
//! the requests it runs, and its background tasks.
//!
//! [`app`] builds the router (shared by [`run`] and the tests); [`run`] serves it on loopback
//! for one aloft home, with a token only the home's owner can read. Until users and roles
//! land, the server binds to loopback only and that token is the whole of access control.

mod error;
mod extract;
mod http;
mod openapi;
mod views;

pub use openapi::openapi_json;

use aloft_api::local;
use aloft_control::app::{App, Periods};
use aloft_control::metrics::Histograms;
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// What every handler gets.
#[derive(Debug, Clone)]
pub struct State {
    pub app: Arc<App>,
    token: Arc<str>,
    /// When a route was last called (unix seconds), for a server that stops when idle.
    last_call: Arc<AtomicI64>,
    /// The state database's identity when the server opened it (device, inode); `None` when
    /// not watched.
    state_file: Option<(u64, u64)>,
    /// Asks the server to stop.
    stop: Arc<tokio::sync::Notify>,
    /// How long routes took to answer, by method, route and status.
    http: Arc<Histograms>,
}

impl State {
    pub fn new(app: Arc<App>, token: &str) -> State {
        std::sync::LazyLock::force(&STARTED_AT);
        State {
            app,
            token: token.into(),
            last_call: Arc::new(AtomicI64::new(unix_now())),
            state_file: None,
            stop: Arc::new(tokio::sync::Notify::new()),
            http: Arc::new(Histograms::new(
                "aloft_http_request_duration_seconds",
                "How long the server took to answer, by method, route and status (an event \
                 stream counts until it ends).",
                &["method", "route", "status"],
            )),
        }
    }

    /// Watches the state database's identity: once the file was moved aside or replaced, the
    /// server answers 503 and stops, so the next command meets a server on the new file.
    fn watching_state_file(mut self) -> State {
        self.state_file = file_identity(&self.app.home().join("state.db"));
        self
    }
}

fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// The routes. Health and the OpenAPI document are open; everything else needs the token.
pub fn app(state: State) -> Router {
    let guarded = Router::new()
        .route("/clusters", get(http::clusters))
        .route("/clusters/{name}/stop", post(http::stop))
        .route("/clusters/{name}/start", post(http::start))
        .route("/clusters/{name}/down", post(http::down))
        .route("/launch", post(http::launch))
        .route("/clusters/{name}/jobs", get(http::jobs))
        .route("/clusters/{name}/logs", get(http::logs))
        .route("/clusters/{name}/jobs/cancel", post(http::cancel_jobs))
        .route("/clusters/{name}/autostop", post(http::autostop))
        .route("/endpoints", get(http::endpoints))
        .route("/requests", get(http::requests))
        .route("/requests/{id}", get(http::request))
        .route("/requests/{id}/cancel", post(http::cancel))
        .route("/requests/{id}/events", get(http::events))
        .route("/background", get(http::background))
        .route("/background/activate", post(http::activate))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe));
    let open = Router::new()
        .route("/health", get(http::health))
        .route("/openapi.json", get(openapi::document))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe));
    // Where Prometheus looks by default, beside the API rather than in it.
    let metrics = Router::new()
        .route("/metrics", get(http::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe));
    Router::new()
        .nest(aloft_api::PREFIX, guarded.merge(open))
        .merge(metrics)
        .fallback(|| async {
            error::HttpError::not_found("no such route; the API lives under /api/v1")
        })
        .layer(axum::middleware::from_fn(log_requests))
        .with_state(state)
}

/// Lets a request through only with `Authorization: Bearer <the token>`, and only while the
/// state database is the one the server opened.
async fn authorize(
    axum::extract::State(state): axum::extract::State<State>,
    request: Request,
    next: Next,
) -> Response {
    state.last_call.store(unix_now(), Ordering::Relaxed);
    if let Some(opened) = state.state_file
        && file_identity(&state.app.home().join("state.db")) != Some(opened)
    {
        tracing::warn!("the state database was moved aside or replaced; stopping");
        state.stop.notify_one();
        return error::HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            aloft_api::ErrorCode::Unavailable,
            "the server's state database was moved aside or replaced; the server is stopping \
             (a command starts a new one)",
        )
        .into_response();
    }
    let given = request
        .headers()
        .get(aloft_api::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        Some(token) if same(token.as_bytes(), state.token.as_bytes()) => next.run(request).await,
        _ => error::HttpError::new(
            StatusCode::UNAUTHORIZED,
            aloft_api::ErrorCode::Unauthorized,
            "a valid token is needed (`Authorization: Bearer <token>`)",
        )
        .into_response(),
    }
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Records how long a matched route took, by its pattern (`/api/v1/requests/{id}`, never the
/// path itself: ids would make a series each).
async fn observe(
    axum::extract::State(state): axum::extract::State<State>,
    route: axum::extract::MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    state.http.observe(
        &[method.as_str(), route.as_str(), &status],
        started.elapsed(),
    );
    response
}

/// The process's resident memory and start time, as Prometheus' client libraries name them.
fn process_metrics(out: &mut String) {
    use aloft_control::metrics::{header, sample};
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let resident_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        });
    if let Some(kib) = resident_kib {
        let name = "process_resident_memory_bytes";
        header(out, name, "Resident memory size in bytes.", "gauge");
        sample(out, name, &[], &[], kib * 1024.0);
    }
    let name = "process_start_time_seconds";
    header(
        out,
        name,
        "Start time of the process since the epoch, in seconds.",
        "gauge",
    );
    sample(out, name, &[], &[], *STARTED_AT as f64);
}

/// When this process started serving (unix seconds).
static STARTED_AT: std::sync::LazyLock<i64> = std::sync::LazyLock::new(unix_now);

/// One log line per request: method, path (never the query or headers), status, latency.
async fn log_requests(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        millis = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// How to run a server.
#[derive(Debug, Clone)]
pub struct Options {
    pub home: PathBuf,
    /// 0 lets the system choose.
    pub port: u16,
    pub periods: Periods,
    /// Stop after this long with no route called and no request running (servers a command
    /// started by itself); `None` runs until stopped.
    pub idle_exit: Option<std::time::Duration>,
    /// The state database's URL (PostgreSQL); `None`: `$ALOFT_DB`, else `$home/state.db`.
    pub db: Option<String>,
}

/// Serves the API for `options.home` on loopback until SIGINT or SIGTERM, or until its
/// `api.json` is removed or names another server (its home was removed or taken over).
pub async fn run(options: Options) -> anyhow::Result<()> {
    use anyhow::Context;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ALOFT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let home = options.home.clone();
    aloft_control::make_home_private(&home)?;
    private_dir(&local::dir(&home))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(local::lock_path(&home))
        .context("opening the server's lock file")?;
    if lock.try_lock().is_err() {
        let running = std::fs::read_to_string(local::info_path(&home))
            .ok()
            .and_then(|text| serde_json::from_str::<local::ServerInfo>(&text).ok())
            .map(|info| format!(" (pid {}, {})", info.pid, info.url))
            .unwrap_or_default();
        anyhow::bail!(
            "an aloft server already runs for {}{running}; `aloft api stop` stops it",
            home.display()
        );
    }
    let token = token(&home)?;
    let db =
        (options.db.clone()).or_else(|| std::env::var("ALOFT_DB").ok().filter(|db| !db.is_empty()));
    let store = aloft_control::open_store_with(&home, db.as_deref()).await?;
    let application = Arc::new(App::start(home.clone(), store, options.periods).await?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", options.port))?;
    let address = listener.local_addr()?;
    let info = local::ServerInfo {
        url: format!("http://{address}"),
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64),
    };
    local::write_private(&local::info_path(&home), &serde_json::to_vec_pretty(&info)?)?;
    tracing::info!(url = %info.url, home = %home.display(), "aloft server listening");
    let state = State::new(application, &token);
    // A file moved aside under the server is a thing of SQLite homes only.
    let state = if db.is_none() {
        state.watching_state_file()
    } else {
        state
    };
    let router = app(state.clone());
    let stopped = stop_signal(home.clone(), info.clone(), state, options.idle_exit);
    axum::serve(listener, router)
        .with_graceful_shutdown(stopped)
        .await?;
    // Leave no info naming a server that is gone (unless another took the home over).
    if read_info(&home).is_some_and(|current| current == info) {
        let _ = std::fs::remove_file(local::info_path(&home));
    }
    tracing::info!("aloft server stopped");
    drop(lock);
    Ok(())
}

fn read_info(home: &std::path::Path) -> Option<local::ServerInfo> {
    let text = std::fs::read_to_string(local::info_path(home)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Resolves on SIGINT or SIGTERM; once this server's `api.json` is gone or replaced (its home
/// was removed, or another server took it over); when the state database was replaced; or
/// after `idle_exit` with no route called and no request running.
async fn stop_signal(
    home: PathBuf,
    info: local::ServerInfo,
    state: State,
    idle_exit: Option<std::time::Duration>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    let watchdog = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            if read_info(&home).is_none_or(|current| current != info) {
                tracing::warn!("this server's api.json is gone or replaced; stopping");
                return;
            }
            if let Some(idle) = idle_exit {
                let quiet_for = unix_now() - state.last_call.load(Ordering::Relaxed);
                if quiet_for >= idle.as_secs() as i64 && !state.app.busy().await {
                    tracing::info!(seconds = quiet_for, "idle; stopping");
                    return;
                }
            }
        }
    };
    tokio::select! {
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        () = watchdog => {}
        () = state.stop.notified() => {}
    }
}

/// The home's token: read if one was made before (clients keep working across restarts),
/// else made from 32 random bytes and written private.
fn token(home: &std::path::Path) -> anyhow::Result<String> {
    let path = local::token_path(home);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim();
        if text.len() >= 32 {
            return Ok(text.to_owned());
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("making a token: {err}"))?;
    let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    local::write_private(&path, token.as_bytes())?;
    Ok(token)
}

fn private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

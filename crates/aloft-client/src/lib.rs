//! A typed client of aloft's HTTP API.
//!
//! Each route is a method that returns the API's own types ([`aloft_api`]); an error answer
//! comes back as [`ClientError::Api`] with the server's status and message. Long work returns
//! an [`Accepted`] at once, and [`Client::follow`] reads the request's progress lines (a stream
//! of server-sent events) until it ends, returning how it ended.

use aloft_api::{
    Accepted, Activated, ApiError, BackgroundTask, Cluster, DownBody, ErrorCode, Health, PREFIX,
    Request, RequestEvent,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

/// Why a call did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{error} (HTTP {status})")]
    Api { status: u16, error: ApiError },
    /// The server could not be reached.
    #[error("cannot reach the aloft server at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server answered something this client cannot read (another version?).
    #[error("unexpected answer from the aloft server ({what}): {detail}")]
    Protocol { what: String, detail: String },
}

impl ClientError {
    /// The API's error code, for an error answer.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A connection to one server, with its token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    /// A client of the server at `url` (`http://127.0.0.1:PORT`), sending `token`.
    pub fn new(url: &str, token: &str) -> Client {
        Client {
            base: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let uri = format!("{}{PREFIX}{path}", self.base);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(&uri)
            .header("authorization", format!("Bearer {}", self.token));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|err| ClientError::Protocol {
                what: uri.clone(),
                detail: err.to_string(),
            })?;
        self.http
            .request(request)
            .await
            .map_err(|err| ClientError::Connect {
                url: self.base.clone(),
                reason: error_chain(&err),
            })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let response = self.send(method, path, body).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|err| ClientError::Connect {
                url: self.base.clone(),
                reason: error_chain(&err),
            })?
            .to_bytes();
        decode(path, status, &bytes)
    }

    pub async fn health(&self) -> Result<Health> {
        self.call(Method::GET, "/health", None).await
    }

    /// The recorded clusters (only those named, if any).
    pub async fn clusters(&self, names: &[String]) -> Result<Vec<Cluster>> {
        let path = if names.is_empty() {
            "/clusters".to_owned()
        } else {
            format!("/clusters?names={}", percent_encode(&names.join(",")))
        };
        self.call(Method::GET, &path, None).await
    }

    pub async fn stop(&self, cluster: &str) -> Result<Accepted> {
        let path = format!("/clusters/{}/stop", percent_encode(cluster));
        self.call(Method::POST, &path, None).await
    }

    pub async fn start(&self, cluster: &str) -> Result<Accepted> {
        let path = format!("/clusters/{}/start", percent_encode(cluster));
        self.call(Method::POST, &path, None).await
    }

    pub async fn down(&self, cluster: &str, body: &DownBody) -> Result<Accepted> {
        let path = format!("/clusters/{}/down", percent_encode(cluster));
        self.call(Method::POST, &path, Some(to_json(body)?)).await
    }

    /// Launches a task (see [`aloft_api::LaunchBody`]); the request's result is an
    /// [`aloft_api::Launched`].
    pub async fn launch(&self, body: &aloft_api::LaunchBody) -> Result<Accepted> {
        self.call(Method::POST, "/launch", Some(to_json(body)?))
            .await
    }

    /// A cluster's jobs, from its head node's agent.
    pub async fn jobs(&self, cluster: &str) -> Result<Vec<aloft_api::Job>> {
        let path = format!("/clusters/{}/jobs", percent_encode(cluster));
        self.call(Method::GET, &path, None).await
    }

    /// Streams a job's log (`job: None`: the cluster's latest; with `follow`, until it ends),
    /// giving each event to `on_event` as it comes; returns once the stream is over. The
    /// stream's last event says how it ended (`end`, or `error`).
    pub async fn logs(
        &self,
        cluster: &str,
        job: Option<i64>,
        follow: bool,
        mut on_event: impl FnMut(aloft_api::LogEvent),
    ) -> Result<()> {
        let mut path = format!("/clusters/{}/logs?follow={follow}", percent_encode(cluster));
        if let Some(job) = job {
            path.push_str(&format!("&job={job}"));
        }
        let response = self.send(Method::GET, &path, None).await?;
        let status = response.status();
        let mut body = response.into_body();
        let broken = |err: hyper::Error| ClientError::Connect {
            url: self.base.clone(),
            reason: error_chain(&err),
        };
        if status != StatusCode::OK {
            let bytes = body.collect().await.map_err(broken)?.to_bytes();
            return decode(&path, status, &bytes);
        }
        let mut pending: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(broken)?.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            let mut start = 0;
            while let Some(end) = pending[start..].iter().position(|&byte| byte == b'\n') {
                on_event(parse(&path, &pending[start..start + end])?);
                start += end + 1;
            }
            pending.drain(..start);
        }
        Ok(())
    }

    /// Cancels a cluster's jobs; returns those cancelled.
    pub async fn cancel_jobs(
        &self,
        cluster: &str,
        body: &aloft_api::CancelJobsBody,
    ) -> Result<Vec<aloft_api::Job>> {
        let path = format!("/clusters/{}/jobs/cancel", percent_encode(cluster));
        self.call(Method::POST, &path, Some(to_json(body)?)).await
    }

    /// Sets a cluster's autostop; returns the setting.
    pub async fn autostop(
        &self,
        cluster: &str,
        setting: &aloft_api::Autostop,
    ) -> Result<aloft_api::Autostop> {
        let path = format!("/clusters/{}/autostop", percent_encode(cluster));
        self.call(Method::POST, &path, Some(to_json(setting)?))
            .await
    }

    /// Where the clusters' open ports are reached (only those named, if any).
    pub async fn endpoints(&self, names: &[String]) -> Result<Vec<aloft_api::Endpoint>> {
        let path = if names.is_empty() {
            "/endpoints".to_owned()
        } else {
            format!("/endpoints?names={}", percent_encode(&names.join(",")))
        };
        self.call(Method::GET, &path, None).await
    }

    pub async fn request(&self, id: &str) -> Result<Request> {
        self.call(
            Method::GET,
            &format!("/requests/{}", percent_encode(id)),
            None,
        )
        .await
    }

    /// The newest `limit` requests, newest first.
    pub async fn requests(&self, limit: u32) -> Result<Vec<Request>> {
        self.call(Method::GET, &format!("/requests?limit={limit}"), None)
            .await
    }

    /// Cancels a request; returns it as it stands after.
    pub async fn cancel(&self, id: &str) -> Result<Request> {
        let path = format!("/requests/{}/cancel", percent_encode(id));
        self.call(Method::POST, &path, None).await
    }

    pub async fn background(&self) -> Result<Vec<BackgroundTask>> {
        self.call(Method::GET, "/background", None).await
    }

    /// Activates the background tasks (those named, or all) and waits for them to run.
    pub async fn activate(&self, tasks: Option<&[String]>) -> Result<Activated> {
        let body = serde_json::json!({ "tasks": tasks });
        self.call(Method::POST, "/background/activate", Some(to_json(&body)?))
            .await
    }

    /// Reads a request's progress lines numbered `from` on, giving each to `on_line` as it
    /// comes, until the request ends; returns the finished request.
    pub async fn follow(
        &self,
        id: &str,
        from: i64,
        mut on_line: impl FnMut(&RequestEvent),
    ) -> Result<Request> {
        let path = format!("/requests/{}/events?from={from}", percent_encode(id));
        let response = self.send(Method::GET, &path, None).await?;
        let status = response.status();
        let mut body = response.into_body();
        if status != StatusCode::OK {
            let bytes = body
                .collect()
                .await
                .map_err(|err| ClientError::Connect {
                    url: self.base.clone(),
                    reason: error_chain(&err),
                })?
                .to_bytes();
            return decode(&path, status, &bytes);
        }
        let mut pending = String::new();
        let mut events = SseParser::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| ClientError::Connect {
                url: self.base.clone(),
                reason: error_chain(&err),
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.push_str(&String::from_utf8_lossy(&data));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                let Some((name, data)) = events.line(line.trim_end_matches(['\n', '\r'])) else {
                    continue;
                };
                match name.as_str() {
                    "end" => return parse(&path, data.as_bytes()),
                    _ => on_line(&parse::<RequestEvent>(&path, data.as_bytes())?),
                }
            }
        }
        Err(ClientError::Connect {
            url: self.base.clone(),
            reason: "the server closed the stream before the request ended".to_owned(),
        })
    }
}

/// Server-sent events, line by line: `event:` names the next event, `data:` lines make it,
/// and a blank line dispatches it.
#[derive(Debug, Default)]
struct SseParser {
    name: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Takes one line; returns `(event name, data)` when it ends an event.
    fn line(&mut self, line: &str) -> Option<(String, String)> {
        if line.is_empty() {
            if self.data.is_empty() {
                self.name = None;
                return None;
            }
            let name = self.name.take().unwrap_or_else(|| "message".to_owned());
            return Some((name, std::mem::take(&mut self.data).join("\n")));
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => self.data.push(value.to_owned()),
            _ => {}
        }
        None
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|err| ClientError::Protocol {
        what: "a request body".to_owned(),
        detail: err.to_string(),
    })
}

fn parse<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|err| ClientError::Protocol {
        what: what.to_owned(),
        detail: err.to_string(),
    })
}

fn decode<T: DeserializeOwned>(what: &str, status: StatusCode, bytes: &[u8]) -> Result<T> {
    if status.is_success() {
        return parse(what, bytes);
    }
    match serde_json::from_slice::<ApiError>(bytes) {
        Ok(error) => Err(ClientError::Api {
            status: status.as_u16(),
            error,
        }),
        Err(_) => Err(ClientError::Protocol {
            what: what.to_owned(),
            detail: format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ),
        }),
    }
}

/// Percent-encodes what is not unreserved in a URL path segment or query value.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An error with its sources, `outer: inner: ...`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_are_split_by_blank_lines_and_named() {
        let mut parser = SseParser::default();
        let mut got = Vec::new();
        for line in [
            ": keep-alive",
            "",
            "id: 0",
            "data: {\"a\":1}",
            "",
            "event: end",
            "data: x",
            "data: y",
            "",
        ] {
            if let Some(event) = parser.line(line) {
                got.push(event);
            }
        }
        assert_eq!(
            got,
            [
                ("message".to_owned(), "{\"a\":1}".to_owned()),
                ("end".to_owned(), "x\ny".to_owned())
            ]
        );
    }

    #[test]
    fn names_with_odd_characters_are_percent_encoded() {
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(percent_encode("ok-1.2_~"), "ok-1.2_~");
    }
}

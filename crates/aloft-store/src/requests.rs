//! Requests: the long work a client asked the server for (launch, stop, start, down ...), kept
//! with the lines of progress it printed, so a client can follow it, leave, and come back, and
//! a restarted server knows what was cut short.

use crate::records::{Request, RequestEvent, RequestState, enum_name};
use crate::store::{Store, StoreError, now, parse_enum, parse_json, query_error};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A new request id: unique across processes (time and pid) and within one (a counter).
fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("req-{nanos:x}-{:x}-{count:x}", std::process::id())
}

impl Store {
    /// Records a new request, pending, owned by `owner` (the server that will run it).
    pub async fn request_insert(
        &self,
        kind: &str,
        cluster: Option<&str>,
        params: &serde_json::Value,
        owner: &str,
    ) -> Result<Request, StoreError> {
        let id = new_id();
        let created_at = now();
        sqlx::query(
            "INSERT INTO requests (id, kind, cluster, state, params, result, error, owner, \
             heartbeat_at, created_at, updated_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7, $7, $7, NULL)",
        )
        .bind(&id)
        .bind(kind)
        .bind(cluster.map(str::to_owned))
        .bind(enum_name(&RequestState::Pending))
        .bind(params.to_string())
        .bind(owner)
        .bind(created_at)
        .execute(&self.pool)
        .await
        .map_err(query_error("recording a request"))?;
        Ok(Request {
            id,
            kind: kind.to_owned(),
            cluster: cluster.map(str::to_owned),
            state: RequestState::Pending,
            params: params.clone(),
            result: None,
            error: None,
            owner: Some(owner.to_owned()),
            heartbeat_at: Some(created_at),
            created_at,
            finished_at: None,
        })
    }

    /// Renews the lease of every unfinished request `owner` runs, as of `at` (unix seconds; a
    /// server does this every few seconds with the time now); returns how many.
    pub async fn request_heartbeat(&self, owner: &str, at: i64) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE requests SET heartbeat_at = $1 WHERE owner = $2 AND state IN ($3, $4)",
        )
        .bind(at)
        .bind(owner)
        .bind(enum_name(&RequestState::Pending))
        .bind(enum_name(&RequestState::Running))
        .execute(&self.pool)
        .await
        .map_err(query_error("renewing requests' lease"))?;
        Ok(result.rows_affected())
    }

    /// Moves an unfinished request to `state` (with its result or error when it finishes).
    /// Returns false, changing nothing, when the request had already finished: a finished
    /// request never changes again (a cancel racing the end of the work loses quietly).
    pub async fn request_set_state(
        &self,
        id: &str,
        state: RequestState,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let at = now();
        let finished_at = state.is_finished().then_some(at);
        let updated = sqlx::query(
            "UPDATE requests SET state = $1, result = $2, error = $3, updated_at = $4, \
             finished_at = $5 WHERE id = $6 AND state IN ($7, $8)",
        )
        .bind(enum_name(&state))
        .bind(result.map(serde_json::Value::to_string))
        .bind(error.map(str::to_owned))
        .bind(at)
        .bind(finished_at)
        .bind(id)
        .bind(enum_name(&RequestState::Pending))
        .bind(enum_name(&RequestState::Running))
        .execute(&self.pool)
        .await
        .map_err(query_error("updating a request"))?;
        if updated.rows_affected() == 1 {
            return Ok(true);
        }
        match self.request_fetch(id).await? {
            Some(_) => Ok(false),
            None => Err(StoreError::RequestNotFound { id: id.to_owned() }),
        }
    }

    /// Appends a line of progress to a request; lines are numbered from 0 in the order given.
    pub async fn request_event_append(&self, id: &str, line: &str) -> Result<i64, StoreError> {
        let mut transaction = self
            .begin_write()
            .await
            .map_err(query_error("recording a request's progress"))?;
        let row = sqlx::query(
            "SELECT COALESCE(MAX(seq) + 1, 0) AS next FROM request_events WHERE request_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *transaction)
        .await
        .map_err(query_error("recording a request's progress"))?;
        let seq: i64 = row
            .try_get("next")
            .map_err(query_error("recording a request's progress"))?;
        sqlx::query(
            "INSERT INTO request_events (request_id, seq, at, line) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(seq)
        .bind(now())
        .bind(line)
        .execute(&mut *transaction)
        .await
        .map_err(query_error("recording a request's progress"))?;
        transaction
            .commit()
            .await
            .map_err(query_error("recording a request's progress"))?;
        Ok(seq)
    }

    /// A request's lines numbered `from` on, in order.
    pub async fn request_events(
        &self,
        id: &str,
        from: i64,
    ) -> Result<Vec<RequestEvent>, StoreError> {
        let read = query_error("reading a request's progress");
        let rows = sqlx::query(
            "SELECT seq, at, line FROM request_events WHERE request_id = $1 AND seq >= $2 \
             ORDER BY seq",
        )
        .bind(id)
        .bind(from)
        .fetch_all(&self.pool)
        .await
        .map_err(read)?;
        rows.iter()
            .map(|row| {
                let read = query_error("reading a request's progress");
                Ok(RequestEvent {
                    seq: row.try_get("seq").map_err(read)?,
                    at: row
                        .try_get("at")
                        .map_err(query_error("reading a request's progress"))?,
                    line: row
                        .try_get("line")
                        .map_err(query_error("reading a request's progress"))?,
                })
            })
            .collect()
    }

    pub async fn request_fetch(&self, id: &str) -> Result<Option<Request>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("reading a request"))?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// The newest `limit` requests, newest first.
    pub async fn request_list(&self, limit: i64) -> Result<Vec<Request>, StoreError> {
        let rows = sqlx::query("SELECT * FROM requests ORDER BY created_at DESC, id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("listing requests"))?;
        rows.iter().map(request_from_row).collect()
    }

    /// Requests not finished (pending or running), oldest first.
    pub async fn request_list_unfinished(&self) -> Result<Vec<Request>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM requests WHERE state IN ($1, $2) ORDER BY created_at, id")
                .bind(enum_name(&RequestState::Pending))
                .bind(enum_name(&RequestState::Running))
                .fetch_all(&self.pool)
                .await
                .map_err(query_error("listing requests"))?;
        rows.iter().map(request_from_row).collect()
    }
}

fn request_from_row(row: &AnyRow) -> Result<Request, StoreError> {
    let read = |source| StoreError::Query {
        operation: "reading a request",
        source,
    };
    let state: String = row.try_get("state").map_err(read)?;
    let params: String = row.try_get("params").map_err(read)?;
    let result: Option<String> = row.try_get("result").map_err(read)?;
    Ok(Request {
        id: row.try_get("id").map_err(read)?,
        kind: row.try_get("kind").map_err(read)?,
        cluster: row.try_get("cluster").map_err(read)?,
        state: parse_enum("request state", &state)?,
        params: parse_json("request parameters", &params)?,
        result: result
            .as_deref()
            .map(|text| parse_json("request result", text))
            .transpose()?,
        error: row.try_get("error").map_err(read)?,
        owner: row.try_get("owner").map_err(read)?,
        heartbeat_at: row.try_get("heartbeat_at").map_err(read)?,
        created_at: row.try_get("created_at").map_err(read)?,
        finished_at: row.try_get("finished_at").map_err(read)?,
    })
}

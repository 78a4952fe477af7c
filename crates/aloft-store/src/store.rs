//! The store: a connection pool, migrations, and the record methods.

use crate::migrations::MIGRATIONS;
use crate::records::{
    Cluster, ClusterStatus, Job, JobState, Operation, OperationKind, OperationState, StepRecord,
    enum_from_name, enum_name,
};
use sqlx::Any;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{AnyPool, Executor, Row};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `url` names the database without its password (a PostgreSQL URL is described, not
    /// copied).
    #[error("opening the state database {url}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{path} is not a SQLite database; move it aside (aloft will start a new one) or point aloft at the right file"
    )]
    NotADatabase { path: std::path::PathBuf },
    #[error("the state database must be a sqlite: or postgres:// URL, not a `{scheme}` one")]
    UnsupportedUrl { scheme: String },
    #[error("applying migration {version} ({name}) to the state database")]
    Migrate {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("state database: {operation} failed")]
    Query {
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{path} is damaged (not a whole SQLite database); move it aside (`mv {path} {path}.broken`): aloft then starts a new one, and `aloft status --refresh` names the clusters still running as orphans, which `aloft down` removes"
    )]
    Malformed {
        path: std::path::PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("a cluster named `{name}` already exists")]
    ClusterExists { name: String },
    #[error("no cluster named `{name}`")]
    ClusterNotFound { name: String },
    #[error(
        "cluster `{name}` changed since it was read (generation {expected}, now {found}); read it again"
    )]
    StaleGeneration {
        name: String,
        expected: i64,
        found: i64,
    },
    #[error("no operation `{id}`")]
    OperationNotFound { id: String },
    /// A write by an owner that no longer owns the operation: it was judged gone and another
    /// took the operation over (see `operation_claim`), which now finishes or undoes it.
    #[error("operation `{id}` was taken over by {owner}; it is theirs to finish or undo")]
    OperationTakenOver { id: String, owner: String },
    #[error("no request {id}")]
    RequestNotFound { id: String },
    #[error("no job {id}")]
    JobNotFound { id: i64 },
    #[error("job {id} is already {state}; a finished job does not change")]
    JobFinished { id: i64, state: String },
    #[error("the state database holds an unreadable {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

/// aloft's state, in SQLite or PostgreSQL through one code path.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// SQLite: a connection kept apart to ask [`Store::data_version`] (taken from the pool on
    /// first use, and held).
    watcher: Arc<tokio::sync::Mutex<Option<PoolConnection<Any>>>>,
}

/// The database behind a store; only connecting and [`Store::begin_write`] tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::UnsupportedUrl {
                scheme: scheme.to_owned(),
            }),
        }
    }
}

/// The key of the advisory lock that serializes writers on PostgreSQL, as `BEGIN IMMEDIATE`
/// does on SQLite: "aloft" in ASCII. Advisory locks are per database, so two aloft databases on
/// one server do not wait for each other.
const POSTGRES_WRITE_LOCK: i64 = 0x61_6c_6f_66_74;

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

pub(crate) fn query_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { operation, source }
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to date.
    /// A new database and its directory are private to the user (0600, 0700): it holds what
    /// clusters exist and what operations were asked for.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent()
            && !parent.exists()
        {
            let _ = private_dir(parent);
        }
        // Say at once that a file is not a database, rather than after the pool's retries; and
        // never write to such a file.
        match std::fs::File::open(path) {
            Ok(mut file) => {
                use std::io::Read;
                let mut header = [0u8; 16];
                let read = file.read(&mut header).unwrap_or(0);
                if read > 0 && (read < header.len() || &header != b"SQLite format 3\0") {
                    return Err(StoreError::NotADatabase {
                        path: path.to_path_buf(),
                    });
                }
            }
            Err(_) => {
                // SQLite gives its -wal and -shm files the database file's mode.
                use std::os::unix::fs::OpenOptionsExt;
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path);
            }
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        check_whole(&url, path).await?;
        Store::connect(&url).await
    }

    /// Connects to a database URL (`sqlite:` or `postgres://`) and brings its schema up to
    /// date. Errors name a PostgreSQL URL without its password.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let sqlite = backend == Backend::Sqlite;
        let open_error = |source| StoreError::Open {
            url: describe_url(url),
            source,
        };
        let pool = AnyPoolOptions::new()
            // SQLite: four for the work, and one the data-version watcher keeps.
            .max_connections(if sqlite { 5 } else { 8 })
            // A SQLite connection is a file this process opened: no need to ping it before
            // each use (a round trip to its worker thread, as costly as the query itself).
            .test_before_acquire(!sqlite)
            // Longer than SQLite's busy timeout: a connection may wait that long for the write
            // lock, and the pool's other users wait for it rather than fail first.
            .acquire_timeout(std::time::Duration::from_secs(75))
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if sqlite {
                        // Several aloft processes (CLI, agent, server) share one file: wait for
                        // a lock instead of failing, and let readers go on while one writes.
                        // A minute: fifty launches at once on two cores kept the lock busy for
                        // more than ten seconds (each commit waits for its fsync).
                        connection.execute("PRAGMA busy_timeout = 60000").await?;
                        connection.execute("PRAGMA journal_mode = WAL").await?;
                        connection.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(open_error)?;
        let store = Store {
            pool,
            backend,
            watcher: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A number that changes whenever another connection commits (SQLite's `PRAGMA
    /// data_version`, asked on a connection this store keeps for it, so every commit through
    /// the pool or by another process counts): a read model that saw version `v` is current
    /// while the version is still `v`. `None` on PostgreSQL, which has no such counter (a read
    /// model there must read again).
    pub async fn data_version(&self) -> Result<Option<i64>, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let mut watcher = self.watcher.lock().await;
        if watcher.is_none() {
            *watcher = Some(
                self.pool
                    .acquire()
                    .await
                    .map_err(query_error("asking the data version"))?,
            );
        }
        let connection = watcher.as_mut().expect("just set");
        let row = sqlx::query("PRAGMA data_version")
            .fetch_one(&mut **connection)
            .await
            .map_err(query_error("asking the data version"))?;
        Ok(Some(
            row.try_get::<i64, _>(0)
                .map_err(query_error("asking the data version"))?,
        ))
    }

    /// Applies every migration not applied yet, each in its own transaction.
    async fn migrate(&self) -> Result<(), StoreError> {
        // Under the write lock too: on PostgreSQL two `CREATE TABLE IF NOT EXISTS` racing on a
        // new database can both find no table, and the loser fails on a unique index of the
        // catalog (pg_type) instead of skipping.
        let table_error = |source| StoreError::Migrate {
            version: 0,
            name: "migrations table",
            source,
        };
        let mut transaction = self.begin_write().await.map_err(table_error)?;
        transaction
            .execute(
                "CREATE TABLE IF NOT EXISTS aloft_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await
            .map_err(table_error)?;
        transaction.commit().await.map_err(table_error)?;
        for &(version, name, sql) in MIGRATIONS {
            let migrate_error = |source| StoreError::Migrate {
                version,
                name,
                source,
            };
            // Several processes may open a new database at once: each migration is applied by
            // whoever takes the write lock first, and skipped by the others.
            let mut transaction = self.begin_write().await.map_err(migrate_error)?;
            let row =
                sqlx::query("SELECT COUNT(*) AS applied FROM aloft_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(migrate_error)?;
            if row.try_get::<i64, _>("applied").map_err(migrate_error)? > 0 {
                continue;
            }
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                transaction
                    .execute(statement)
                    .await
                    .map_err(migrate_error)?;
            }
            sqlx::query(
                "INSERT INTO aloft_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(version)
            .bind(name)
            .bind(now())
            .execute(&mut *transaction)
            .await
            .map_err(migrate_error)?;
            transaction.commit().await.map_err(migrate_error)?;
        }
        Ok(())
    }

    /// A transaction that holds the write lock from its first statement, so transactions that
    /// read and then write (the next step number, the next job id) never interleave. SQLite's
    /// default `BEGIN` takes the lock at the first write, and a transaction that read before
    /// that write fails at once with "database is locked" when another process wrote in between
    /// (the busy timeout does not apply to that upgrade); `BEGIN IMMEDIATE` waits for the lock
    /// instead. PostgreSQL has no database-wide write lock: a transaction-scoped advisory lock
    /// taken first plays its part, and is let go at commit or rollback. Read committed (asked
    /// for, whatever the server's default) makes each statement after the lock see what the
    /// previous holder committed.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => {
                let mut transaction = self
                    .pool
                    .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(POSTGRES_WRITE_LOCK)
                    .execute(&mut *transaction)
                    .await?;
                Ok(transaction)
            }
        }
    }

    /// Closes every connection, folding SQLite's write-ahead log into the database file.
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// The newest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM aloft_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(query_error("reading the schema version"))?;
        row.try_get::<i64, _>("version")
            .map_err(query_error("reading the schema version"))
    }

    pub async fn cluster_insert(&self, cluster: &Cluster) -> Result<(), StoreError> {
        if self.cluster_fetch(&cluster.name).await?.is_some() {
            return Err(StoreError::ClusterExists {
                name: cluster.name.clone(),
            });
        }
        sqlx::query(
            "INSERT INTO clusters (name, status, cloud, region, zone, instance_type, num_nodes, \
             spot, hourly_price, autostop_minutes, autostop_down, resources, generation, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&cluster.name)
        .bind(enum_name(&cluster.status))
        .bind(&cluster.cloud)
        .bind(&cluster.region)
        .bind(cluster.zone.clone())
        .bind(&cluster.instance_type)
        .bind(i64::from(cluster.num_nodes))
        .bind(i64::from(cluster.spot))
        .bind(cluster.hourly_price.to_string())
        .bind(cluster.autostop_minutes.map(i64::from))
        .bind(i64::from(cluster.autostop_down))
        .bind(cluster.resources.to_string())
        .bind(cluster.generation)
        .bind(cluster.created_at)
        .bind(cluster.updated_at)
        .execute(&self.pool)
        .await
        .map_err(query_error("inserting a cluster"))?;
        Ok(())
    }

    pub async fn cluster_fetch(&self, name: &str) -> Result<Option<Cluster>, StoreError> {
        let row = sqlx::query("SELECT * FROM clusters WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("reading a cluster"))?;
        row.map(|row| cluster_from_row(&row)).transpose()
    }

    /// Every cluster, by name.
    pub async fn cluster_list(&self) -> Result<Vec<Cluster>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clusters ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("listing clusters"))?;
        rows.iter().map(cluster_from_row).collect()
    }

    /// Writes `cluster` if nobody changed it since it was read (its `generation` is the stored
    /// one); returns it with the new generation.
    pub async fn cluster_update(&self, cluster: &Cluster) -> Result<Cluster, StoreError> {
        let mut updated = cluster.clone();
        updated.generation += 1;
        updated.updated_at = now();
        let result = sqlx::query(
            "UPDATE clusters SET status = $1, cloud = $2, region = $3, zone = $4, \
             instance_type = $5, num_nodes = $6, spot = $7, hourly_price = $8, \
             autostop_minutes = $9, autostop_down = $10, resources = $11, generation = $12, \
             updated_at = $13 WHERE name = $14 AND generation = $15",
        )
        .bind(enum_name(&updated.status))
        .bind(&updated.cloud)
        .bind(&updated.region)
        .bind(updated.zone.clone())
        .bind(&updated.instance_type)
        .bind(i64::from(updated.num_nodes))
        .bind(i64::from(updated.spot))
        .bind(updated.hourly_price.to_string())
        .bind(updated.autostop_minutes.map(i64::from))
        .bind(i64::from(updated.autostop_down))
        .bind(updated.resources.to_string())
        .bind(updated.generation)
        .bind(updated.updated_at)
        .bind(&updated.name)
        .bind(cluster.generation)
        .execute(&self.pool)
        .await
        .map_err(query_error("updating a cluster"))?;
        if result.rows_affected() == 1 {
            return Ok(updated);
        }
        match self.cluster_fetch(&cluster.name).await? {
            None => Err(StoreError::ClusterNotFound {
                name: cluster.name.clone(),
            }),
            Some(current) => Err(StoreError::StaleGeneration {
                name: cluster.name.clone(),
                expected: cluster.generation,
                found: current.generation,
            }),
        }
    }

    /// Removes a cluster's record; false if there was none.
    pub async fn cluster_delete(&self, name: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM clusters WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(query_error("deleting a cluster"))?;
        Ok(result.rows_affected() > 0)
    }

    /// Starts recording an operation on `cluster`, owned by `owner` (see [`Operation::owner`]),
    /// with the parameters whoever recovers it will need.
    pub async fn operation_insert(
        &self,
        kind: OperationKind,
        cluster: &str,
        owner: &str,
        params: &serde_json::Value,
    ) -> Result<Operation, StoreError> {
        let created_at = now();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!("op-{nanos:x}-{:x}", std::process::id());
        sqlx::query(
            "INSERT INTO operations (id, kind, cluster, state, error, owner, heartbeat_at, \
             params, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $6, $6)",
        )
        .bind(&id)
        .bind(enum_name(&kind))
        .bind(cluster)
        .bind(enum_name(&OperationState::Running))
        .bind(owner)
        .bind(created_at)
        .bind(params.to_string())
        .execute(&self.pool)
        .await
        .map_err(query_error("inserting an operation"))?;
        Ok(Operation {
            id,
            kind,
            cluster: cluster.to_owned(),
            state: OperationState::Running,
            error: None,
            steps: Vec::new(),
            owner: Some(owner.to_owned()),
            heartbeat_at: Some(created_at),
            params: params.clone(),
            created_at,
            updated_at: created_at,
        })
    }

    /// Renews the owner's lease on an operation; false when `owner` no longer owns it (someone
    /// took it over, judging the owner gone).
    pub async fn operation_heartbeat(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE operations SET heartbeat_at = $1 WHERE id = $2 AND owner = $3")
                .bind(now())
                .bind(id)
                .bind(owner)
                .execute(&self.pool)
                .await
                .map_err(query_error("renewing an operation's lease"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Takes an operation over from `previous` (its recorded owner, judged gone; `None` for an
    /// operation recorded without one): true if this call took it, false if someone else did
    /// first. Two processes recovering at once never both carry it on.
    pub async fn operation_claim(
        &self,
        id: &str,
        previous: Option<&str>,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let sql = if previous.is_some() {
            "UPDATE operations SET owner = $1, heartbeat_at = $2 WHERE id = $3 AND owner = $4"
        } else {
            "UPDATE operations SET owner = $1, heartbeat_at = $2 WHERE id = $3 AND owner IS NULL"
        };
        let mut query = sqlx::query(sql).bind(owner).bind(now()).bind(id);
        if let Some(previous) = previous {
            query = query.bind(previous);
        }
        let result = query
            .execute(&self.pool)
            .await
            .map_err(query_error("taking an operation over"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Records that `step` finished with `output`, before the next step starts. Steps are
    /// numbered in the order they are recorded. With `owner`, the write is fenced: it is
    /// refused ([`StoreError::OperationTakenOver`]) unless `owner` still owns the operation.
    pub async fn operation_record_step(
        &self,
        owner: Option<&str>,
        id: &str,
        step: &str,
        output: &serde_json::Value,
    ) -> Result<StepRecord, StoreError> {
        let recorded_at = now();
        let mut transaction = self
            .begin_write()
            .await
            .map_err(query_error("recording a step"))?;
        let sql = match owner {
            None => "UPDATE operations SET updated_at = $1 WHERE id = $2",
            Some(_) => "UPDATE operations SET updated_at = $1 WHERE id = $2 AND owner = $3",
        };
        let mut update = sqlx::query(sql).bind(recorded_at).bind(id);
        if let Some(owner) = owner {
            update = update.bind(owner);
        }
        let exists = update
            .execute(&mut *transaction)
            .await
            .map_err(query_error("recording a step"))?;
        if exists.rows_affected() == 0 {
            drop(transaction);
            return Err(self.why_not_written(id).await);
        }
        let row = sqlx::query(
            "SELECT COALESCE(MAX(seq) + 1, 0) AS next FROM operation_steps WHERE operation_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *transaction)
        .await
        .map_err(query_error("recording a step"))?;
        let seq: i64 = row
            .try_get("next")
            .map_err(query_error("recording a step"))?;
        sqlx::query(
            "INSERT INTO operation_steps (operation_id, seq, step, output, recorded_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(seq)
        .bind(step)
        .bind(output.to_string())
        .bind(recorded_at)
        .execute(&mut *transaction)
        .await
        .map_err(query_error("recording a step"))?;
        transaction
            .commit()
            .await
            .map_err(query_error("recording a step"))?;
        Ok(StepRecord {
            seq: seq as u32,
            step: step.to_owned(),
            output: output.clone(),
            recorded_at,
        })
    }

    /// Moves an operation to `state`; with `owner`, fenced as [`Store::operation_record_step`].
    pub async fn operation_set_state(
        &self,
        owner: Option<&str>,
        id: &str,
        state: OperationState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = match owner {
            None => "UPDATE operations SET state = $1, error = $2, updated_at = $3 WHERE id = $4",
            Some(_) => {
                "UPDATE operations SET state = $1, error = $2, updated_at = $3 WHERE id = $4 \
                 AND owner = $5"
            }
        };
        let mut update = sqlx::query(sql)
            .bind(enum_name(&state))
            .bind(error.map(str::to_owned))
            .bind(now())
            .bind(id);
        if let Some(owner) = owner {
            update = update.bind(owner);
        }
        let result = update
            .execute(&self.pool)
            .await
            .map_err(query_error("updating an operation"))?;
        if result.rows_affected() == 0 {
            return Err(self.why_not_written(id).await);
        }
        Ok(())
    }

    /// Why a fenced write to operation `id` changed nothing: it is gone, or another owns it.
    async fn why_not_written(&self, id: &str) -> StoreError {
        match self.operation_fetch(id).await {
            Ok(Some(operation)) => StoreError::OperationTakenOver {
                id: id.to_owned(),
                owner: operation.owner.unwrap_or_else(|| "nobody".to_owned()),
            },
            Ok(None) => StoreError::OperationNotFound { id: id.to_owned() },
            Err(err) => err,
        }
    }

    pub async fn operation_fetch(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        let row = sqlx::query("SELECT * FROM operations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("reading an operation"))?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(self.operation_from_row(&row).await?)),
        }
    }

    /// Operations still running or unwinding: after a crash, the ones to finish or undo.
    pub async fn operation_list_unfinished(&self) -> Result<Vec<Operation>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM operations WHERE state IN ($1, $2) ORDER BY created_at, id")
                .bind(enum_name(&OperationState::Running))
                .bind(enum_name(&OperationState::Unwinding))
                .fetch_all(&self.pool)
                .await
                .map_err(query_error("listing operations"))?;
        let mut operations = Vec::with_capacity(rows.len());
        for row in &rows {
            operations.push(self.operation_from_row(row).await?);
        }
        Ok(operations)
    }

    /// Queues a job; ids count up from 1 in submission order.
    pub async fn job_insert(
        &self,
        name: Option<&str>,
        spec: &serde_json::Value,
    ) -> Result<Job, StoreError> {
        let mut transaction = self
            .begin_write()
            .await
            .map_err(query_error("queueing a job"))?;
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 AS next FROM jobs")
            .fetch_one(&mut *transaction)
            .await
            .map_err(query_error("queueing a job"))?;
        let id: i64 = row.try_get("next").map_err(query_error("queueing a job"))?;
        let submitted_at = now();
        sqlx::query(
            "INSERT INTO jobs (id, name, state, spec, submitted_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(name.map(str::to_owned))
        .bind(enum_name(&JobState::Pending))
        .bind(spec.to_string())
        .bind(submitted_at)
        .execute(&mut *transaction)
        .await
        .map_err(query_error("queueing a job"))?;
        transaction
            .commit()
            .await
            .map_err(query_error("queueing a job"))?;
        Ok(Job {
            id,
            name: name.map(str::to_owned),
            state: JobState::Pending,
            spec: spec.clone(),
            submitted_at,
            started_at: None,
            ended_at: None,
            exit_codes: None,
            runner_pid: None,
        })
    }

    pub async fn job_fetch(&self, id: i64) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("reading a job"))?;
        row.map(|row| job_from_row(&row)).transpose()
    }

    /// Every job, oldest first.
    pub async fn job_list(&self) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query("SELECT * FROM jobs ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(query_error("listing jobs"))?;
        rows.iter().map(job_from_row).collect()
    }

    /// The oldest job still pending: the next to run.
    pub async fn job_next_pending(&self) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE state = $1 ORDER BY id LIMIT 1")
            .bind(enum_name(&JobState::Pending))
            .fetch_optional(&self.pool)
            .await
            .map_err(query_error("reading the job queue"))?;
        row.map(|row| job_from_row(&row)).transpose()
    }

    /// Moves a job to `state` (stamping start and end times), recording exit codes if given.
    /// A finished job does not change: that is an error, except cancelling it, which is a no-op.
    pub async fn job_set_state(
        &self,
        id: i64,
        state: JobState,
        exit_codes: Option<&serde_json::Value>,
    ) -> Result<Job, StoreError> {
        let Some(job) = self.job_fetch(id).await? else {
            return Err(StoreError::JobNotFound { id });
        };
        if job.state.is_finished() {
            if state == JobState::Cancelled {
                return Ok(job);
            }
            return Err(StoreError::JobFinished {
                id,
                state: enum_name(&job.state),
            });
        }
        let stamp = now();
        let started_at = match state {
            JobState::SettingUp | JobState::Running => job.started_at.or(Some(stamp)),
            _ => job.started_at,
        };
        let ended_at = state.is_finished().then_some(stamp);
        let exit_codes = exit_codes.cloned().or(job.exit_codes.clone());
        // Only an unfinished job is updated, so two writers cannot both finish it.
        let result = sqlx::query(
            "UPDATE jobs SET state = $1, started_at = $2, ended_at = $3, exit_codes = $4 \
             WHERE id = $5 AND state = $6",
        )
        .bind(enum_name(&state))
        .bind(started_at)
        .bind(ended_at)
        .bind(exit_codes.as_ref().map(ToString::to_string))
        .bind(id)
        .bind(enum_name(&job.state))
        .execute(&self.pool)
        .await
        .map_err(query_error("updating a job"))?;
        if result.rows_affected() == 0 {
            // Someone else moved it in between; report what it is now.
            return self
                .job_fetch(id)
                .await?
                .ok_or(StoreError::JobNotFound { id });
        }
        Ok(Job {
            state,
            started_at,
            ended_at,
            exit_codes,
            ..job
        })
    }

    /// Records the process running a job (to cancel it).
    pub async fn job_set_runner(&self, id: i64, pid: i64) -> Result<(), StoreError> {
        let result = sqlx::query("UPDATE jobs SET runner_pid = $1 WHERE id = $2")
            .bind(pid)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_error("updating a job"))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::JobNotFound { id });
        }
        Ok(())
    }

    async fn operation_from_row(&self, row: &AnyRow) -> Result<Operation, StoreError> {
        let read = query_error("reading an operation");
        let id: String = row.try_get("id").map_err(read)?;
        let steps = sqlx::query(
            "SELECT seq, step, output, recorded_at FROM operation_steps \
             WHERE operation_id = $1 ORDER BY seq",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_error("reading operation steps"))?
        .iter()
        .map(|step| {
            let read = |source| StoreError::Query {
                operation: "reading operation steps",
                source,
            };
            let output: String = step.try_get("output").map_err(read)?;
            Ok(StepRecord {
                seq: step.try_get::<i64, _>("seq").map_err(read)? as u32,
                step: step.try_get("step").map_err(read)?,
                output: parse_json("step output", &output)?,
                recorded_at: step.try_get("recorded_at").map_err(read)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        let read = |source| StoreError::Query {
            operation: "reading an operation",
            source,
        };
        let kind: String = row.try_get("kind").map_err(read)?;
        let state: String = row.try_get("state").map_err(read)?;
        let params: Option<String> = row.try_get("params").map_err(read)?;
        Ok(Operation {
            kind: parse_enum("operation kind", &kind)?,
            cluster: row.try_get("cluster").map_err(read)?,
            state: parse_enum("operation state", &state)?,
            error: row.try_get("error").map_err(read)?,
            steps,
            owner: row.try_get("owner").map_err(read)?,
            heartbeat_at: row.try_get("heartbeat_at").map_err(read)?,
            params: params
                .map(|text| parse_json("operation params", &text))
                .transpose()?
                .unwrap_or_default(),
            created_at: row.try_get("created_at").map_err(read)?,
            updated_at: row.try_get("updated_at").map_err(read)?,
            id,
        })
    }
}

/// A directory only the user can read (0700), created with its parents.
fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Says at once that a database file is damaged (truncated, say), before a pool would retry
/// opening it until its timeout and then say only "pool timed out".
async fn check_whole(url: &str, path: &Path) -> Result<(), StoreError> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let malformed = |source| StoreError::Malformed {
        path: path.to_path_buf(),
        source,
    };
    let mut connection =
        sqlx::AnyConnection::connect(url)
            .await
            .map_err(|source| StoreError::Open {
                url: describe_url(url),
                source,
            })?;
    let verdict = sqlx::query("PRAGMA quick_check")
        .fetch_one(&mut connection)
        .await
        .map_err(malformed)?;
    let verdict: String = verdict.try_get(0).map_err(malformed)?;
    let _ = connection.close().await;
    if verdict != "ok" {
        return Err(malformed(sqlx::Error::Protocol(verdict)));
    }
    Ok(())
}

/// A database URL fit for a message: a SQLite URL as it is (a path), a PostgreSQL one as the
/// user, host, port and database it names, never its password (in the user part or a
/// `password=` parameter). The URL is parsed rather than cut, so a password with an unescaped
/// `@`, `/` or `?` cannot slip through.
pub(crate) fn describe_url(url: &str) -> String {
    use std::str::FromStr;
    if url.starts_with("sqlite:") {
        return url.to_owned();
    }
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    if !matches!(scheme, "postgres" | "postgresql") {
        return format!("(a `{scheme}` URL)");
    }
    // A second `@` is an unescaped one in the password: the parse would take the password's
    // tail for the host or database, and print it.
    if url.matches('@').count() > 1 {
        return "(a postgres:// URL with more than one `@`; write `@` in a password as %40)"
            .to_owned();
    }
    match sqlx::postgres::PgConnectOptions::from_str(url) {
        Ok(options) => {
            let place = match options.get_socket() {
                Some(socket) => format!("{}:{}", socket.display(), options.get_port()),
                None => format!("{}:{}", options.get_host(), options.get_port()),
            };
            format!(
                "postgres://{}@{place}/{}",
                options.get_username(),
                options.get_database().unwrap_or("")
            )
        }
        Err(_) => "(a postgres:// URL that does not parse)".to_owned(),
    }
}

pub(crate) fn parse_enum<T: for<'de> serde::Deserialize<'de>>(
    what: &'static str,
    name: &str,
) -> Result<T, StoreError> {
    enum_from_name(name).ok_or_else(|| StoreError::Corrupt {
        what,
        detail: format!("`{name}`"),
    })
}

pub(crate) fn parse_json(what: &'static str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|err| StoreError::Corrupt {
        what,
        detail: err.to_string(),
    })
}

fn job_from_row(row: &AnyRow) -> Result<Job, StoreError> {
    let read = |source| StoreError::Query {
        operation: "reading a job",
        source,
    };
    let state: String = row.try_get("state").map_err(read)?;
    let spec: String = row.try_get("spec").map_err(read)?;
    let exit_codes: Option<String> = row.try_get("exit_codes").map_err(read)?;
    Ok(Job {
        id: row.try_get("id").map_err(read)?,
        name: row.try_get("name").map_err(read)?,
        state: parse_enum("job state", &state)?,
        spec: parse_json("job spec", &spec)?,
        submitted_at: row.try_get("submitted_at").map_err(read)?,
        started_at: row.try_get("started_at").map_err(read)?,
        ended_at: row.try_get("ended_at").map_err(read)?,
        exit_codes: exit_codes
            .map(|text| parse_json("job exit codes", &text))
            .transpose()?,
        runner_pid: row.try_get("runner_pid").map_err(read)?,
    })
}

fn cluster_from_row(row: &AnyRow) -> Result<Cluster, StoreError> {
    let read = |source| StoreError::Query {
        operation: "reading a cluster",
        source,
    };
    let status: String = row.try_get("status").map_err(read)?;
    let price: String = row.try_get("hourly_price").map_err(read)?;
    let resources: String = row.try_get("resources").map_err(read)?;
    let status: ClusterStatus = parse_enum("cluster status", &status)?;
    Ok(Cluster {
        name: row.try_get("name").map_err(read)?,
        status,
        cloud: row.try_get("cloud").map_err(read)?,
        region: row.try_get("region").map_err(read)?,
        zone: row.try_get("zone").map_err(read)?,
        instance_type: row.try_get("instance_type").map_err(read)?,
        num_nodes: row.try_get::<i64, _>("num_nodes").map_err(read)? as u32,
        spot: row.try_get::<i64, _>("spot").map_err(read)? != 0,
        hourly_price: price.parse().map_err(|_| StoreError::Corrupt {
            what: "cluster price",
            detail: format!("`{price}`"),
        })?,
        autostop_minutes: row
            .try_get::<Option<i64>, _>("autostop_minutes")
            .map_err(read)?
            .map(|minutes| minutes as u32),
        autostop_down: row.try_get::<i64, _>("autostop_down").map_err(read)? != 0,
        resources: parse_json("cluster resources", &resources)?,
        generation: row.try_get("generation").map_err(read)?,
        created_at: row.try_get("created_at").map_err(read)?,
        updated_at: row.try_get("updated_at").map_err(read)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_described_without_its_password() {
        for url in [
            "postgres://aloft:s3cret@db.example:6543/state",
            "postgresql://aloft:s3cret@db.example:6543/state?sslmode=disable",
            "postgres://aloft@db.example:6543/state?password=s3cret",
            // Unescaped `@`, `/` and `?` in the password: parsed, never cut by hand.
            "postgres://aloft:s3@cr/et@db.example:6543/state",
            "postgres://aloft:s3/cr@et@db.example:6543/state",
            "postgres://aloft:s3/cret@db.example:6543/state",
            "postgres://aloft:s3?cret@db.example:6543/state",
            "postgres://aloft:s3cret@db.example:notaport/state",
        ] {
            let described = describe_url(url);
            for part in ["s3", "cr", "et"] {
                assert!(!described.contains(part), "{url} -> {described}");
            }
        }
        assert_eq!(
            describe_url("postgres://aloft:s3cret@db.example:6543/state"),
            "postgres://aloft@db.example:6543/state"
        );
        assert_eq!(
            describe_url("sqlite:///home/me/.aloft/state.db?mode=rwc"),
            "sqlite:///home/me/.aloft/state.db?mode=rwc"
        );
    }

    #[test]
    fn only_sqlite_and_postgres_urls_are_taken() {
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        match Backend::of_url("mysql://root:s3cret@h/db") {
            Err(err @ StoreError::UnsupportedUrl { .. }) => {
                let message = err.to_string();
                assert!(message.contains("`mysql`"), "{message}");
                assert!(!message.contains("s3cret"), "{message}");
            }
            other => panic!("expected UnsupportedUrl, got {other:?}"),
        }
    }
}

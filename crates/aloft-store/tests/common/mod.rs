//! A fresh database for each test, on either real backend, so one suite covers both (STYLE.md
//! §2, "one conformance suite run against both real databases").
//!
//! - SQLite: a file in a new temporary directory, removed on drop.
//! - PostgreSQL: a database of its own on the server `ALOFT_TEST_POSTGRES_URL` names (the user
//!   must be allowed to CREATE DATABASE; `.ci/run` starts such a server), named after the
//!   process, a counter and the clock, and dropped on drop, also when the test failed. Without
//!   the variable the PostgreSQL half says SKIPPED on stderr and passes, except under CI (`CI`
//!   set), where it fails.
//!
//! [`both_databases!`] turns each `async fn name(db: TestDb)` into `sqlite::name` and
//! `postgres::name`.

#![allow(dead_code)] // Each test file uses a part.

use aloft_store::{Store, StoreError};
use sqlx::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub const POSTGRES_URL_VAR: &str = "ALOFT_TEST_POSTGRES_URL";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's database is: cloned into tasks that open stores of their own.
#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Target {
    /// A new store on the test's database, as another aloft process would open it.
    pub async fn open(&self) -> Result<Store, StoreError> {
        match self {
            Target::Sqlite(path) => Store::open(path).await,
            Target::Postgres(url) => Store::connect(url).await,
        }
    }
}

/// A test's database, removed (SQLite) or dropped (PostgreSQL) on drop.
#[derive(Debug)]
pub struct TestDb {
    target: Target,
    /// SQLite: the directory holding the file.
    dir: Option<PathBuf>,
    /// PostgreSQL: the server's URL and the database's name.
    postgres: Option<(String, String)>,
}

/// A name no other test, run or process uses: pid, counter, and the clock's nanoseconds.
fn unique_suffix() -> String {
    let idx = NEXT.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("{}_{idx}_{nanos:x}", std::process::id())
}

impl TestDb {
    /// A fresh database on `backend`; `None` when PostgreSQL is not configured here (said on
    /// stderr).
    pub async fn new(backend: Backend, test: &str) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite()),
            Backend::Postgres => TestDb::postgres(test).await,
        }
    }

    /// A database file in a fresh directory (not created yet: `Store::open` creates it).
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("aloft-store-{}", unique_suffix()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDb {
            target: Target::Sqlite(dir.join("state.db")),
            dir: Some(dir),
            postgres: None,
        }
    }

    async fn postgres(test: &str) -> Option<TestDb> {
        let Some(server) = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .filter(|url| !url.is_empty())
        else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{POSTGRES_URL_VAR} is not set: under CI the PostgreSQL half of the store's \
                     tests must run (.ci/run starts a PostgreSQL server and sets it)"
                );
            }
            // Written to stderr itself: the test harness keeps `eprintln!` of a passing test.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {POSTGRES_URL_VAR} is not set (postgres::{test})"
            );
            return None;
        };
        let name = format!("aloft_test_{}", unique_suffix());
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .unwrap_or_else(|err| panic!("connecting to {POSTGRES_URL_VAR}: {err}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|err| panic!("creating database {name}: {err}"));
        let _ = admin.close().await;
        Some(TestDb {
            target: Target::Postgres(with_database(&server, &name)),
            dir: None,
            postgres: Some((server, name)),
        })
    }

    pub fn target(&self) -> Target {
        self.target.clone()
    }

    pub fn backend(&self) -> Backend {
        match self.target {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite file (SQLite-only tests).
    pub fn path(&self) -> PathBuf {
        match &self.target {
            Target::Sqlite(path) => path.clone(),
            Target::Postgres(_) => panic!("a PostgreSQL test database has no file"),
        }
    }

    /// A new store on this database.
    pub async fn open(&self) -> Store {
        self.target.open().await.unwrap()
    }
}

/// `server` (`postgres://user@host:port/db?params`) naming database `name` instead.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let authority_start = base.find("://").map_or(0, |idx| idx + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |idx| authority_start + idx);
    let mut url = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((server, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime (and while unwinding when the test failed),
            // which cannot be blocked on: a thread with a runtime of its own drops the database,
            // FORCE ending the connections the test's stores still hold.
            let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let mut admin = sqlx::PgConnection::connect(&server).await?;
                    sqlx::query(sqlx::AssertSqlSafe(statement))
                        .execute(&mut admin)
                        .await?;
                    admin.close().await?;
                    Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
                })
            })
            .join();
            if let Ok(Err(err)) = dropped {
                eprintln!("dropping test database {name}: {err}");
            }
        }
    }
}

/// Turns each `async fn name(db: TestDb) { ... }` into two tests, `sqlite::name` and
/// `postgres::name`, each given a fresh database of its kind.
#[macro_export]
macro_rules! both_databases {
    ($(async fn $name:ident($db:ident: TestDb) $body:block)*) => {
        $(async fn $name($db: $crate::common::TestDb) $body)*

        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = $crate::common::TestDb::new(
                        $crate::common::Backend::Sqlite,
                        stringify!($name),
                    )
                    .await
                    .unwrap();
                    super::$name(db).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = $crate::common::TestDb::new(
                        $crate::common::Backend::Postgres,
                        stringify!($name),
                    )
                    .await
                    {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

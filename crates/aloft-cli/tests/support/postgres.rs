//! A PostgreSQL database of a test's own, on the server `ALOFT_TEST_POSTGRES_URL` names (which
//! `.ci/run` starts): created for the test and dropped afterwards (with `psql`, from the
//! postgresql-client package).

use std::process::{Command, Output};

pub struct Database {
    admin_url: String,
    name: String,
    /// The database's own URL (no password: the test server trusts loopback).
    pub url: String,
}

impl Database {
    /// A new database `aloft_<tag>_<pid>`; `None`, with a visible note, when no test server is
    /// configured (and a failure in CI, which must run these tests).
    pub fn create(tag: &str) -> Option<Database> {
        let Some(admin_url) = std::env::var("ALOFT_TEST_POSTGRES_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL tests: ALOFT_TEST_POSTGRES_URL is not set (.ci/run \
                 starts PostgreSQL)"
            );
            eprintln!("SKIPPED: ALOFT_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("aloft_{tag}_{}", std::process::id());
        let (base, _) = admin_url.rsplit_once('/').expect("a URL with a database");
        let database = Database {
            url: format!("{base}/{name}"),
            admin_url: admin_url.clone(),
            name,
        };
        let _ = database.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            database.name
        ));
        let created = database.psql(&format!("CREATE DATABASE {}", database.name));
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        Some(database)
    }

    fn psql(&self, sql: &str) -> Output {
        Command::new("psql")
            .args([&self.admin_url, "-qX", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql (postgresql-client) runs")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

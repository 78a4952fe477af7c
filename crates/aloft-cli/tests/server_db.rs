//! `aloft server --db`: the control plane on a PostgreSQL database (a real one: the server
//! `ALOFT_TEST_POSTGRES_URL` names, which `.ci/run` starts; a database of its own per run,
//! dropped afterwards), and a URL with a password refused before it is used.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn aloft(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(args)
        .env("ALOFT_HOME", home)
        .env_remove("ALOFT_DB")
        .env_remove("ALOFT_API_URL")
        .output()
        .unwrap()
}

fn scratch(tag: &str) -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("server-db-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    home
}

#[test]
fn a_database_url_with_a_password_is_refused_and_never_echoed() {
    let home = scratch("password");
    for url in [
        "postgres://aloft:hunter2-secret@127.0.0.1:1/aloft",
        "postgres://aloft@127.0.0.1:1/aloft?password=hunter2-secret",
    ] {
        let output = aloft(&home, &["server", "--db", url]);
        let err = text(&output.stderr);
        assert!(!output.status.success(), "{err}");
        assert!(err.contains("PGPASSWORD"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
    assert!(!home.join("server/api.json").exists());
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn a_server_on_postgres_keeps_its_state_there_and_commands_read_it_through_the_server() {
    let Some(database) = support::postgres::Database::create("server_db") else {
        return;
    };
    let home = scratch("postgres");

    // A cluster recorded in the database (stopped: nothing behind it on any cloud).
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = aloft_store::Store::connect(&database.url).await.unwrap();
        store
            .cluster_insert(&support::served::stopped_cluster("on-pg"))
            .await
            .unwrap();
        store.close().await;
    });

    let prefix = format!("sdb{}", std::process::id());
    let server = support::served::Served::start(
        &home,
        &["--db", &database.url],
        &[("ALOFT_LOCAL_PREFIX", &prefix)],
    );

    let status = aloft(&home, &["status", "-o", "json"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let clusters: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(clusters[0]["name"], "on-pg", "{clusters}");
    assert_eq!(clusters[0]["status"], "stopped", "{clusters}");
    // Nothing went to a SQLite file in the home.
    assert!(!home.join("state.db").exists());
    let stop = aloft(&home, &["api", "stop"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    drop(server);
    let _ = std::fs::remove_dir_all(&home);
}

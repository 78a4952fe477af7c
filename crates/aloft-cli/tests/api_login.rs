//! `aloft api login URL`: one home's commands sent to another home's server (as through an SSH
//! tunnel), with its token given on standard input, never on a command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod support;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(tag: &str) -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("api-login-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    home
}

/// `aloft ARGS` in `home`, with `input` on standard input.
fn aloft(home: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(args)
        .env("ALOFT_HOME", home)
        .env_remove("ALOFT_API_URL")
        .env_remove("ALOFT_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A server on its own home with one recorded (stopped) cluster; its homes removed on drop.
struct Served {
    served: support::served::Served,
    client_home: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.served.kill();
        let _ = std::fs::remove_dir_all(&self.served.home);
        let _ = std::fs::remove_dir_all(&self.client_home);
    }
}

impl Served {
    /// `tag` keeps each test's homes apart.
    fn start(tag: &str) -> Served {
        let home = scratch(&format!("{tag}-server"));
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let store = aloft_store::Store::open(&home.join("state.db"))
                .await
                .unwrap();
            store
                .cluster_insert(&support::served::stopped_cluster("theirs"))
                .await
                .unwrap();
            store.close().await;
        });
        let prefix = format!("lg{}", std::process::id());
        Served {
            served: support::served::Served::start(&home, &[], &[("ALOFT_LOCAL_PREFIX", &prefix)]),
            client_home: scratch(&format!("{tag}-client")),
        }
    }

    fn url(&self) -> String {
        self.served.url()
    }

    fn token(&self) -> String {
        self.served.token()
    }
}

#[test]
fn a_home_logged_in_to_another_server_reads_its_clusters_and_logs_out_again() {
    let served = Served::start("in");
    let (url, token) = (served.url(), served.token());
    let home = &served.client_home;

    let login = aloft(home, &["api", "login", &url], &format!("{token}\n"));
    let said = format!("{}{}", text(&login.stdout), text(&login.stderr));
    assert!(login.status.success(), "{said}");
    assert!(!said.contains(&token), "{said}");
    let remote = home.join("server/remote.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&remote).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let status = aloft(home, &["status", "-o", "json"], "");
    assert!(status.status.success(), "{}", text(&status.stderr));
    let clusters: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(clusters[0]["name"], "theirs", "{clusters}");
    // No server of its own was started for the client's home.
    assert!(!home.join("server/api.json").exists());
    let info = aloft(home, &["api", "info"], "");
    assert!(text(&info.stdout).contains(&url), "{}", text(&info.stdout));
    assert!(!text(&info.stdout).contains(&token));

    let logout = aloft(home, &["api", "logout"], "");
    assert!(logout.status.success(), "{}", text(&logout.stderr));
    assert!(!remote.exists());
}

#[test]
fn a_wrong_token_or_a_server_off_this_machine_is_refused_and_nothing_is_kept() {
    let served = Served::start("refused");
    let url = served.url();
    let home = &served.client_home;
    let wrong = aloft(home, &["api", "login", &url], "not-the-token\n");
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("refused the token"),
        "{}",
        text(&wrong.stderr)
    );
    assert!(!text(&wrong.stderr).contains("not-the-token"));

    let elsewhere = aloft(home, &["api", "login", "http://203.0.113.7:8000"], "x\n");
    assert!(!elsewhere.status.success());
    assert!(
        text(&elsewhere.stderr).contains("SSH tunnel"),
        "{}",
        text(&elsewhere.stderr)
    );
    assert!(!home.join("server/remote.json").exists());
}

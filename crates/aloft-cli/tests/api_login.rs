//! `aloft api login URL`: one home's commands sent to another home's server (as through an SSH
//! tunnel), with its token given on standard input, never on a command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// A server on its own home with one recorded (stopped) cluster; ended by its pid on drop.
struct Served {
    home: PathBuf,
    client_home: PathBuf,
    server: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.home);
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
                .cluster_insert(&aloft_store::Cluster {
                    name: "theirs".to_owned(),
                    status: aloft_store::ClusterStatus::Stopped,
                    cloud: "local".to_owned(),
                    region: "local".to_owned(),
                    zone: Some("local-a".to_owned()),
                    instance_type: "local.small".to_owned(),
                    num_nodes: 1,
                    spot: false,
                    hourly_price: 0.01,
                    autostop_minutes: None,
                    autostop_down: false,
                    resources: serde_json::json!({}),
                    generation: 0,
                    created_at: 0,
                    updated_at: 0,
                })
                .await
                .unwrap();
            store.close().await;
        });
        let server = Command::new(env!("CARGO_BIN_EXE_aloft"))
            .args(["server", "--port", "0"])
            .env("ALOFT_HOME", &home)
            .env("ALOFT_LOCAL_PREFIX", format!("lg{}", std::process::id()))
            .env_remove("ALOFT_DB")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let served = Served {
            home,
            client_home: scratch(&format!("{tag}-client")),
            server,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !served.home.join("server/api.json").exists() {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        served
    }

    fn url(&self) -> String {
        let info: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.home.join("server/api.json")).unwrap(),
        )
        .unwrap();
        info["url"].as_str().unwrap().to_owned()
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.home.join("server/token"))
            .unwrap()
            .trim()
            .to_owned()
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

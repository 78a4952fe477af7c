//! Job logs on the local cloud, end to end (root; elsewhere a note and a pass): the output of a
//! detached job is still there after its cluster tore itself down, and `aloft logs` exits with
//! the job's exit code. Own ALOFT_HOME, prefix, bridge and subnet; `aloft local cleanup` runs
//! afterwards even when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

struct Cloud {
    home: PathBuf,
    prefix: String,
    bridge: String,
    subnet: String,
}

impl Cloud {
    fn new(tag: u32) -> Option<Cloud> {
        if !is_root() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the local cloud tests as root"
            );
            eprintln!("note: not root; skipping the local cloud logs test");
            return None;
        }
        let pid = std::process::id();
        let prefix = format!("l{}{tag}", pid % 100_000);
        let slot = 24_576 + (pid % 4_000) * 2 + tag;
        let cloud = Cloud {
            home: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("home-{prefix}")),
            bridge: format!("{prefix}br"),
            subnet: format!("10.{}.{}.0/24", slot >> 8, slot & 0xff),
            prefix,
        };
        let _ = std::fs::remove_dir_all(&cloud.home);
        std::fs::create_dir_all(&cloud.home).unwrap();
        Some(cloud)
    }

    fn aloft(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_aloft"))
            .args(args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .env("ALOFT_HOME", &self.home)
            .env("ALOFT_LOCAL_PREFIX", &self.prefix)
            .env("ALOFT_LOCAL_BRIDGE", &self.bridge)
            .env("ALOFT_LOCAL_SUBNET", &self.subnet)
            .output()
            .expect("aloft runs")
    }

    fn spec(&self, name: &str, yaml: &str) -> String {
        let path = self.home.join(name);
        std::fs::write(&path, yaml).unwrap();
        path.display().to_string()
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.aloft(&["local", "cleanup"]);
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_detached_job_s_output_outlives_the_cluster_that_tore_itself_down() {
    let Some(cloud) = Cloud::new(1) else { return };
    let spec = cloud.spec(
        "job.yaml",
        "resources:\n  cpus: 2+\nrun: |\n  echo first; sleep 1; echo second >&2; exit 3\n",
    );
    let launched = cloud.aloft(&["launch", &spec, "-c", "gone", "-i", "0", "--down", "-d"]);
    assert!(launched.status.success(), "{}", text(&launched.stderr));
    let start = Instant::now();
    loop {
        let status = cloud.aloft(&["status", "--refresh", "-o", "json"]);
        let clusters: serde_json::Value =
            serde_json::from_slice(&status.stdout).unwrap_or_default();
        if clusters.as_array().is_some_and(|all| all.is_empty()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the cluster did not tear itself down: {clusters}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs = cloud.aloft(&["logs", "gone"]);
    assert_eq!(text(&logs.stdout), "first\n", "{}", text(&logs.stderr));
    assert!(
        text(&logs.stderr).contains("second"),
        "{}",
        text(&logs.stderr)
    );
    assert_eq!(logs.status.code(), Some(3), "{}", text(&logs.stderr));
    let json = cloud.aloft(&["logs", "gone", "1", "-o", "json"]);
    let events: Vec<serde_json::Value> = text(&json.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[2]["exit_codes"], serde_json::json!({"0": 3}));
    assert_eq!(json.status.code(), Some(3));
}

//! The head-node agent (`aloft agent ...`) driven as the client drives it, on this machine: a
//! one-node "cluster" whose head is here, so the queue, the daemon, logs, cancel and autostop
//! are tested without root or namespaces. (The same agent on real local-cloud nodes, reached
//! over SSH, is tested in `local_cloud.rs`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// An agent directory of its own; kills the daemon it started when dropped.
struct Head {
    dir: PathBuf,
}

impl Head {
    fn new(tag: &str) -> Head {
        let dir = std::env::temp_dir().join(format!("aloft-agent-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Head { dir }
    }

    fn agent(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_aloft"))
            .arg("agent")
            .args(args)
            .env("ALOFT_AGENT_DIR", &self.dir)
            .output()
            .expect("aloft runs")
    }

    /// `aloft agent ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.agent(args);
        assert!(
            output.status.success(),
            "aloft agent {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Sets up a one-node cluster whose power-off commands write to `powered-off`.
    fn setup(&self) {
        let off = self.dir.join("powered-off");
        let info = serde_json::json!({
            "cluster": "here",
            "ssh_user": "root",
            "nodes": [{"rank": 0, "address": "127.0.0.1", "host_key": ""}],
            "power_off": {
                "stop": format!("echo stop > {}", off.display()),
                "terminate": format!("echo terminate > {}", off.display()),
            },
        });
        self.ok(&["setup", &info.to_string()]);
    }

    fn submit(&self, name: &str, run: &str) -> i64 {
        let job = serde_json::json!({
            "name": name, "setup": null, "run": run,
            "envs": [["GREETING", "hi there"]], "cwd": null, "num_nodes": 1,
        });
        self.json(&["submit", &job.to_string()])["job_id"]
            .as_i64()
            .unwrap()
    }

    fn state(&self, job: i64) -> String {
        let queue = self.json(&["queue"]);
        queue
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["id"] == job)
            .map(|entry| entry["state"].as_str().unwrap().to_owned())
            .unwrap()
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn daemon_pid(&self) -> Option<u32> {
        self.json(&["status"])["daemon_pid"]
            .as_u64()
            .map(|pid| pid as u32)
    }
}

impl Drop for Head {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("daemon.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn events(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn jobs_run_in_order_with_their_environment_and_logs_end_with_the_state() {
    let head = Head::new("order");
    head.setup();
    let first = head.submit("first", "echo \"$GREETING from $ALOFT_NODE_RANK/$SKYPILOT_NUM_NODES\"; sleep 0.3; echo oops >&2; exit 4");
    let second = head.submit("second", "echo second");
    assert_eq!((first, second), (1, 2));

    let followed = events(&head.ok(&["logs", "1", "--follow"]));
    assert_eq!(
        followed,
        [
            serde_json::json!({"event": "line", "rank": 0, "stream": "stdout", "line": "hi there from 0/1"}),
            serde_json::json!({"event": "line", "rank": 0, "stream": "stderr", "line": "oops"}),
            serde_json::json!({"event": "end", "state": "failed", "exit_codes": {"0": 4}}),
        ]
    );
    // The latest job by default; the second ran after the first, not beside it.
    let latest = events(&head.ok(&["logs", "--follow"]));
    assert_eq!(latest.last().unwrap()["state"], "succeeded");
    let queue = head.json(&["queue"]);
    let jobs = queue.as_array().unwrap();
    assert!(jobs[1]["started_at"].as_i64() >= jobs[0]["ended_at"].as_i64());
    // Per-node text logs are kept beside the event stream.
    let text = std::fs::read_to_string(head.dir.join("logs/1/node-0.log")).unwrap();
    assert_eq!(text, "hi there from 0/1\noops\n");
}

#[test]
fn cancel_ends_the_whole_process_tree_and_a_queued_job_never_starts() {
    let head = Head::new("cancel");
    head.setup();
    let marker = head.dir.join("should-not-exist");
    // A child in the background, as real jobs have (a data loader, say).
    let running = head.submit(
        "sleeper",
        &format!(
            "(sleep 4; touch {m}-child) & echo started; sleep 4; touch {m}",
            m = marker.display()
        ),
    );
    let queued = head.submit("queued", &format!("touch {}-queued", marker.display()));
    head.wait_for("the job to start", || {
        head.ok(&["logs", &running.to_string()]).contains("started")
    });
    let cancelled = head.json(&["cancel", "--all"]);
    let states: Vec<&str> = cancelled
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["cancelled", "cancelled"]);
    std::thread::sleep(Duration::from_millis(4500));
    for suffix in ["", "-child", "-queued"] {
        let path = format!("{}{suffix}", marker.display());
        assert!(
            !Path::new(&path).exists(),
            "{path} was written after the cancel"
        );
    }
    assert_eq!(head.state(queued), "cancelled");
    // Cancelling a finished job changes nothing; an unknown one is an error that says so.
    assert_eq!(head.json(&["cancel", "1"])[0]["state"], "cancelled");
    let unknown = head.agent(&["cancel", "42"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no job 42"));
}

#[test]
fn autostop_powers_the_node_off_once_idle_and_not_while_a_job_runs() {
    let head = Head::new("autostop");
    head.setup();
    let off = head.dir.join("powered-off");
    let job = head.submit("busy", "sleep 1.5");
    head.ok(&["autostop", r#"{"idle_minutes": 0, "down": true}"#]);
    std::thread::sleep(Duration::from_millis(700));
    assert!(!off.exists(), "powered off while a job ran");
    head.wait_for("the power-off", || off.exists());
    assert_eq!(head.state(job), "succeeded");
    assert_eq!(std::fs::read_to_string(&off).unwrap().trim(), "terminate");
    // The daemon ends with the node.
    head.wait_for("the daemon to end", || head.daemon_pid().is_none());
}

#[test]
fn autostop_waits_for_the_idle_minutes() {
    let head = Head::new("idle");
    head.setup();
    head.ok(&["autostop", r#"{"idle_minutes": 10, "down": false}"#]);
    let status = head.json(&["status"]);
    assert_eq!(status["autostop"]["idle_minutes"], 10);
    assert!(status["idle_seconds"].as_i64().unwrap() < 60);
    assert!(status["daemon_rss_kib"].as_u64().unwrap() > 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!head.dir.join("powered-off").exists());
    // Cleared, it stays cleared.
    head.ok(&["autostop", r#"{"idle_minutes": null, "down": false}"#]);
    assert_eq!(
        head.json(&["status"])["autostop"]["idle_minutes"],
        serde_json::Value::Null
    );
}

#[test]
fn a_job_the_daemon_was_running_when_it_died_is_failed_not_left_running() {
    let head = Head::new("restart");
    head.setup();
    let job = head.submit("long", "echo started; sleep 30");
    head.wait_for("the job to start", || {
        head.ok(&["logs", &job.to_string()]).contains("started")
    });
    let pid = head.daemon_pid().expect("the daemon runs");
    assert!(
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    head.wait_for("the daemon to be gone", || head.daemon_pid().is_none());
    // The next command starts a daemon again, which settles the orphaned job.
    let next = head.submit("next", "echo after");
    let end = events(&head.ok(&["logs", &next.to_string(), "--follow"]));
    assert_eq!(end.last().unwrap()["state"], "succeeded");
    assert_eq!(head.state(job), "failed");
    let _ = Command::new("pkill").args(["-f", "sleep 30"]).status();
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let head = Head::new("bad");
    // Before setup, a job has nowhere to run.
    let early = head.agent(&[
        "submit",
        r#"{"name":null,"setup":null,"run":"true","envs":[],"cwd":null,"num_nodes":1}"#,
    ]);
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("not been set up"));
    head.setup();
    let broken = head.agent(&["submit", "{not json"]);
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stderr).contains("the job is not valid JSON"));
    let shape = head.agent(&["autostop", r#"{"idle_minutes": "soon"}"#]);
    assert!(!shape.status.success());
    assert!(String::from_utf8_lossy(&shape.stderr).contains("autostop setting"));
    // Nothing was queued by the refused requests.
    assert_eq!(head.json(&["queue"]), serde_json::json!([]));
}

//! The head-node agent (`aloft agent ...`) driven as the client drives it, on this machine: a
//! one-node "cluster" whose head is here, so the queue, the daemon, logs, cancel and autostop
//! are tested without root or namespaces. (The same agent on real local-cloud nodes, reached
//! over SSH, is tested in `local_cloud.rs`.)

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An agent directory of its own; kills the supervisor and daemon it started when dropped.
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
        self.agent_with_input(args, "")
    }

    /// `aloft agent ARGS` with `input` on its stdin (where requests go).
    fn agent_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aloft"))
            .arg("agent")
            .args(args)
            .env("ALOFT_AGENT_DIR", &self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aloft runs");
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        child.wait_with_output().expect("aloft runs")
    }

    /// `aloft agent ARGS` with `input` on stdin, which must succeed; its stdout.
    fn ok_with_input(&self, args: &[&str], input: &str) -> String {
        let output = self.agent_with_input(args, input);
        assert!(
            output.status.success(),
            "aloft agent {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
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
        self.ok_with_input(&["setup"], &info.to_string());
    }

    fn submit(&self, name: &str, run: &str) -> i64 {
        let job = serde_json::json!({
            "name": name, "setup": null, "run": run,
            "envs": [["GREETING", "hi there"]], "cwd": null, "num_nodes": 1,
        });
        self.submit_json(&job)
    }

    fn submit_json(&self, job: &serde_json::Value) -> i64 {
        let answer = self.ok_with_input(&["submit"], &job.to_string());
        serde_json::from_str::<serde_json::Value>(&answer).unwrap()["job_id"]
            .as_i64()
            .unwrap()
    }

    fn job(&self, job: i64) -> serde_json::Value {
        self.json(&["queue"])
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["id"] == job)
            .cloned()
            .unwrap()
    }

    fn pid_in(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
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
                "timed out waiting for {what}; the daemon's log:\n{}\nqueue: {}",
                std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default(),
                String::from_utf8_lossy(&self.agent(&["queue"]).stdout)
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
        // The supervisor first, or it would start the daemon again.
        for name in ["supervisor.pid", "daemon.pid"] {
            if let Some(pid) = self.pid_in(name) {
                kill(pid, "TERM");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `signal` to process `pid` (one this test started, by its pid: never by pattern).
fn kill(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether process `pid` lives (and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim()
            .starts_with('Z')
    })
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
    head.ok_with_input(&["autostop"], r#"{"idle_minutes": 0, "down": true}"#);
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
    head.ok_with_input(&["autostop"], r#"{"idle_minutes": 10, "down": false}"#);
    let status = head.json(&["status"]);
    assert_eq!(status["autostop"]["idle_minutes"], 10);
    assert!(status["idle_seconds"].as_i64().unwrap() < 60);
    assert!(status["daemon_rss_kib"].as_u64().unwrap() > 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!head.dir.join("powered-off").exists());
    // Cleared, it stays cleared.
    head.ok_with_input(&["autostop"], r#"{"idle_minutes": null, "down": false}"#);
    assert_eq!(
        head.json(&["status"])["autostop"]["idle_minutes"],
        serde_json::Value::Null
    );
}

#[test]
fn a_job_whose_daemon_was_killed_fails_with_that_reason_and_the_next_job_runs() {
    let head = Head::new("restart");
    head.setup();
    let job_pid = head.dir.join("job.pid");
    let job = head.submit(
        "long",
        &format!(
            "echo $$ > {}; echo started; exec sleep 30",
            job_pid.display()
        ),
    );
    head.wait_for("the job to start", || {
        head.ok(&["logs", &job.to_string()]).contains("started")
    });
    let sleeper = head.pid_in("job.pid").expect("the job recorded its pid");
    let daemon = head.daemon_pid().expect("the daemon runs");
    assert!(kill(daemon, "KILL"));
    // Nobody asks: the supervisor starts a daemon again, which ends the job's processes and
    // says why the job failed.
    head.wait_for("the lost job to be settled", || {
        std::fs::read_to_string(head.dir.join("daemon.pid"))
            .is_ok_and(|pid| pid.trim() != daemon.to_string())
            && head.job(job)["state"] == "failed"
    });
    assert_eq!(
        head.job(job)["exit_codes"]["error"],
        format!("the agent daemon died while the job ran (pid {daemon})")
    );
    head.wait_for("the lost job's process to end", || !alive(sleeper));
    let next = head.submit("next", "echo after");
    let end = events(&head.ok(&["logs", &next.to_string(), "--follow"]));
    assert_eq!(end.last().unwrap()["state"], "succeeded");
}

#[test]
fn a_killed_supervisor_and_daemon_are_restarted_by_the_next_command() {
    let head = Head::new("ensure");
    head.setup();
    let job = head.submit("long", "echo started; exec sleep 30");
    head.wait_for("the job to start", || {
        head.ok(&["logs", &job.to_string()]).contains("started")
    });
    let supervisor = head.pid_in("supervisor.pid").expect("a supervisor runs");
    assert!(kill(supervisor, "KILL"));
    let daemon = head.daemon_pid().expect("the daemon runs");
    assert!(kill(daemon, "KILL"));
    head.wait_for("the daemon to be gone", || !alive(daemon));
    // `queue` (as any command) starts them again; the job is settled, not left running.
    head.wait_for("the lost job to be settled", || {
        head.job(job)["state"] == "failed"
    });
    assert!(head.daemon_pid().is_some_and(|pid| pid != daemon));
}

#[test]
fn a_failing_setup_is_failed_setup_and_its_run_never_starts() {
    let head = Head::new("setup-fails");
    head.setup();
    let marker = head.dir.join("ran");
    let job = head.submit_json(&serde_json::json!({
        "name": "bad-setup", "setup": "echo preparing; exit 2",
        "run": format!("touch {}", marker.display()),
        "envs": [], "cwd": null, "num_nodes": 1,
    }));
    let end = events(&head.ok(&["logs", &job.to_string(), "--follow"]));
    assert_eq!(
        end.last().unwrap(),
        &serde_json::json!({"event": "end", "state": "failed_setup", "exit_codes": {"0": 2}})
    );
    assert!(!marker.exists());
}

#[test]
fn secrets_reach_the_job_but_no_command_line_log_or_file_and_the_agent_files_are_private() {
    let head = Head::new("secrets");
    head.setup();
    let secret = "s3cr3t-7d1e94b2-value";
    let seen = head.dir.join("seen");
    let job = head.submit_json(&serde_json::json!({
        "name": "secretive", "setup": null,
        "run": format!(
            // The script itself must not hold the secret: it is in the job table.
            "[ \"${{API_TOKEN%-value}}\" = s3cr3t-7d1e94b2 ] && touch {seen}; echo started; sleep 1",
            seen = seen.display()
        ),
        "envs": [], "secrets": [["API_TOKEN", secret]], "cwd": null, "num_nodes": 1,
    }));
    head.wait_for("the job to start", || {
        head.ok(&["logs", &job.to_string()]).contains("started")
    });
    let ps = Command::new("ps")
        .args(["-eww", "-o", "args"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains(secret),
        "a command line shows the secret"
    );
    let end = events(&head.ok(&["logs", &job.to_string(), "--follow"]));
    assert_eq!(end.last().unwrap()["state"], "succeeded");
    assert!(seen.exists(), "the job did not get its secret");
    // The `seen` marker is the test's own; everything else is the agent's.
    std::fs::remove_file(&seen).unwrap();
    let mut stack = vec![head.dir.clone()];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let mode = meta.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{} holds the secret",
                path.display()
            );
        }
    }
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let head = Head::new("bad");
    // Before setup, a job has nowhere to run.
    let early = head.agent_with_input(
        &["submit"],
        r#"{"name":null,"setup":null,"run":"true","envs":[],"cwd":null,"num_nodes":1}"#,
    );
    assert!(!early.status.success());
    assert!(String::from_utf8_lossy(&early.stderr).contains("not been set up"));
    head.setup();
    let broken = head.agent_with_input(&["submit"], "{not json");
    assert!(!broken.status.success());
    assert!(String::from_utf8_lossy(&broken.stderr).contains("the job is not valid JSON"));
    let shape = head.agent_with_input(&["autostop"], r#"{"idle_minutes": "soon"}"#);
    assert!(!shape.status.success());
    assert!(String::from_utf8_lossy(&shape.stderr).contains("autostop setting"));
    // Nothing was queued by the refused requests.
    assert_eq!(head.json(&["queue"]), serde_json::json!([]));
}

//! A job's logs on the head node, through `aloft agent logs` on this machine (no root): what
//! they cost on disk, the framed stream the client reads, and followers that end with their
//! reader. (The client's side over SSH is measured by `cargo xtask bench-logs`.)

use aloft_agent::logs::{Frame, FrameDecoder};
use aloft_agent::protocol::OutStream;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An agent directory of its own. Dropped, it cancels its jobs (which ends their processes)
/// and ends the daemon it started, by pid.
struct Head {
    dir: PathBuf,
}

impl Head {
    fn new(tag: &str) -> Head {
        let dir = std::env::temp_dir().join(format!("aloft-logs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let head = Head { dir };
        let info = serde_json::json!({
            "cluster": "here",
            "ssh_user": "root",
            "nodes": [{"rank": 0, "address": "127.0.0.1", "host_key": ""}],
            "power_off": null,
        });
        head.ok_with_input(&["setup"], &info.to_string());
        head
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aloft"));
        // HOME too: the runner keeps each job's session id under `$HOME/.aloft-agent/run`, keyed
        // by job id, so tests sharing a HOME would cancel each other's job 1.
        command
            .arg("agent")
            .args(args)
            .env("ALOFT_AGENT_DIR", &self.dir)
            .env("HOME", &self.dir);
        command
    }

    fn agent(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("aloft runs")
    }

    /// `aloft agent ARGS` with a request on stdin (where requests go), which must succeed.
    fn ok_with_input(&self, args: &[&str], input: &str) -> Vec<u8> {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("aloft runs");
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        let output = child.wait_with_output().expect("aloft runs");
        assert!(
            output.status.success(),
            "aloft agent {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let output = self.agent(args);
        assert!(
            output.status.success(),
            "aloft agent {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    fn submit(&self, run: &str) -> i64 {
        let job = serde_json::json!({
            "name": null, "setup": null, "run": run, "envs": [], "cwd": null, "num_nodes": 1,
        });
        let answer: serde_json::Value =
            serde_json::from_slice(&self.ok_with_input(&["submit"], &job.to_string())).unwrap();
        answer["job_id"].as_i64().unwrap()
    }

    /// Follows a job to its end; the JSON events.
    fn follow_json(&self, job: i64) -> Vec<serde_json::Value> {
        String::from_utf8(self.ok(&["logs", &job.to_string(), "--follow"]))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
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
}

impl Drop for Head {
    fn drop(&mut self) {
        let _ = self.agent(&["cancel", "--all"]);
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("daemon.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process this test started, killed (by its pid) and reaped when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` to exit, for at most 20 s; whether it did.
fn exits(child: &mut Child) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_job_s_logs_on_the_head_take_about_the_size_of_its_output() {
    let head = Head::new("size");
    // 2 MB of 46-byte lines (the last one cut short), and one line on stderr.
    let job = head.submit(
        "yes 'a line of job output, about fifty bytes long.' | head -c 2000000; echo done >&2",
    );
    let events = head.follow_json(job);
    let size =
        std::fs::metadata(head.dir.join(format!("logs/{job}/node-0.log"))).map(|meta| meta.len());
    assert_eq!(
        events.len(),
        2_000_000 / 46 + 1 + 1 + 1,
        "lines, the tail, done, end; the last: {:?}; the log: {size:?}; now: {}",
        events.last(),
        head.follow_json(job).len()
    );
    for event in &events[..events.len() - 1] {
        let line = event["line"].as_str().unwrap();
        assert!(
            line == "done" || "a line of job output, about fifty bytes long.".starts_with(line),
            "{line}"
        );
    }
    assert_eq!(events.last().unwrap()["state"], "succeeded");
    let on_stderr: Vec<_> = events
        .iter()
        .filter(|event| event["stream"] == "stderr")
        .collect();
    assert_eq!(on_stderr.len(), 1);
    assert_eq!(on_stderr[0]["line"], "done");
    let on_disk: u64 = std::fs::read_dir(head.dir.join("logs").join(job.to_string()))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    let printed = 2_000_000 + "done\n".len() as u64;
    assert!(
        on_disk <= printed + 64,
        "{on_disk} bytes on disk for {printed} bytes of output"
    );
}

#[test]
fn a_job_s_log_files_are_readable_by_their_owner_only() {
    let head = Head::new("private");
    let job = head.submit("echo secret-ish output");
    head.follow_json(job);
    let dir = head.dir.join("logs").join(job.to_string());
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode(&dir) & 0o777, 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("node-")
        {
            assert_eq!(
                mode(&path) & 0o077,
                0,
                "{} is readable by others",
                path.display()
            );
        }
    }
}

#[test]
fn the_framed_stream_carries_the_job_its_output_by_stream_and_its_end() {
    let head = Head::new("framed");
    // A byte that is not UTF-8 (the transport hands out text lines, so it arrives as U+FFFD),
    // stderr between stdout, and a last line without a newline.
    let job = head.submit("printf 'caf\\xe9\\n'; echo warn >&2; printf 'tail'; exit 3");
    let wire = head.ok(&["logs", &job.to_string(), "--follow", "--framed"]);
    let mut decoder = FrameDecoder::default();
    let (mut ids, mut stdout, mut stderr, mut ends) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    decoder
        .push(&wire, &mut |frame| match frame {
            Frame::Job(id) => ids.push(id),
            Frame::Output(piece) => {
                assert_eq!(piece.rank, 0);
                match piece.stream {
                    OutStream::Stdout => stdout.extend_from_slice(piece.bytes),
                    OutStream::Stderr => stderr.extend_from_slice(piece.bytes),
                }
            }
            Frame::End(end) => ends.push(serde_json::to_string(&end).unwrap()),
        })
        .unwrap();
    assert!(!decoder.has_partial());
    assert_eq!(ids, [job]);
    assert_eq!(String::from_utf8(stdout).unwrap(), "caf\u{fffd}\ntail\n");
    assert_eq!(String::from_utf8(stderr).unwrap(), "warn\n");
    assert_eq!(
        ends,
        [r#"{"event":"end","state":"failed","exit_codes":{"0":3}}"#]
    );
}

/// Starts `aloft agent logs JOB --follow` (with `extra` arguments), reads its first bytes,
/// then closes its stdout, as a dead SSH session does.
fn follower_whose_reader_goes_away(head: &Head, job: i64, extra: &[&str]) -> Started {
    let job = job.to_string();
    let mut args = vec!["logs", job.as_str(), "--follow"];
    args.extend_from_slice(extra);
    let mut follower = Started(
        head.command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = follower.0.stdout.take().unwrap();
    let mut first = [0u8; 1];
    assert_eq!(stdout.read(&mut first).unwrap(), 1, "the follower printed");
    drop(stdout);
    follower
}

#[test]
fn a_follower_of_a_silent_job_ends_when_its_reader_goes_away() {
    let head = Head::new("silent");
    let job = head.submit("echo started; sleep 120");
    head.wait_for("the job to start", || {
        String::from_utf8_lossy(&head.ok(&["logs", &job.to_string()])).contains("started")
    });
    for extra in [&[][..], &["--framed"][..]] {
        let mut follower = follower_whose_reader_goes_away(&head, job, extra);
        assert!(
            exits(&mut follower.0),
            "the follower ({extra:?}) still runs with nobody reading"
        );
    }
}

#[test]
fn a_follower_of_a_chatty_job_ends_when_its_reader_goes_away() {
    let head = Head::new("chatty");
    let job = head.submit("while :; do echo tick; sleep 0.01; done");
    let mut follower = follower_whose_reader_goes_away(&head, job, &[]);
    assert!(
        exits(&mut follower.0),
        "the follower still runs with nobody reading"
    );
}

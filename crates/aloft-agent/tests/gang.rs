//! Gang runs over real local processes: every rank is a `LocalTransport` node (bash on this
//! machine, each rank with a run directory of its own, as separate machines would have), so a
//! failing rank, a lost head and a setup failure are tested without root.

mod support;

use aloft_agent::JobSpec;
use aloft_agent::runner::{GangJob, JobOutcome, Liveness, Node, Phase, run_gang};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use support::collecting;

/// A directory of its own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("aloft-gang-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn local_nodes(count: u32) -> Vec<Node> {
    support::local_nodes(count, |_| "127.0.0.1".to_owned())
}

fn job<'a>(
    scratch: &Scratch,
    spec: &'a JobSpec,
    secrets: &'a [(String, String)],
    nodes: u32,
) -> GangJob<'a> {
    support::gang_job(&scratch.0, "gang", spec, secrets, nodes, None)
}

/// Waits (boundedly) for `done`, failing with `what` if it never happens.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test]
async fn a_failing_rank_ends_the_job_on_every_node() {
    let scratch = Scratch::new("fail-fast");
    let marker = scratch.path("rank0-finished");
    let spec = JobSpec {
        run: Some(format!(
            "if [ \"$SKYPILOT_NODE_RANK\" = 1 ]; then sleep 0.5; exit 3; fi; sleep 5; touch {}",
            marker.display()
        )),
        num_nodes: 2,
        ..JobSpec::default()
    };
    let nodes = local_nodes(2);
    let (sink, _) = collecting();
    let outcome = run_gang(
        &nodes,
        &job(&scratch, &spec, &[], 2),
        &AtomicBool::new(false),
        &|_| {},
        sink,
    )
    .await
    .unwrap();
    // Only the rank that failed by itself is listed; rank 0 was ended because of it.
    assert_eq!(
        outcome,
        JobOutcome::Failed {
            phase: Phase::Run,
            exits: vec![(1, 3)]
        }
    );
    // The run returned before rank 0's sleep ended, and rank 0 never gets to its marker.
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !marker.exists(),
        "rank 0 ran to its end after rank 1 failed"
    );
}

#[tokio::test]
async fn a_failing_setup_is_reported_as_a_setup_failure_and_run_never_starts() {
    let scratch = Scratch::new("setup");
    let marker = scratch.path("ran");
    let spec = JobSpec {
        setup: Some("[ \"$SKYPILOT_NODE_RANK\" = 0 ] || exit 5".to_owned()),
        run: Some(format!("touch {}", marker.display())),
        num_nodes: 2,
        ..JobSpec::default()
    };
    let nodes = local_nodes(2);
    let (sink, _) = collecting();
    let outcome = run_gang(
        &nodes,
        &job(&scratch, &spec, &[], 2),
        &AtomicBool::new(false),
        &|_| {},
        sink,
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        JobOutcome::Failed {
            phase: Phase::Setup,
            exits: vec![(1, 5)]
        }
    );
    assert!(!marker.exists());
}

#[tokio::test]
async fn a_node_ends_its_ranks_when_the_heads_heartbeats_stop() {
    let scratch = Scratch::new("heartbeat");
    let pid_file = scratch.path("job-pid");
    let spec = JobSpec {
        run: Some(format!("echo $$ > {}; exec sleep 300", pid_file.display())),
        num_nodes: 1,
        ..JobSpec::default()
    };
    let nodes = local_nodes(1);
    let (sink, _) = collecting();
    let mut gang_job = job(&scratch, &spec, &[], 1);
    // One heartbeat at the start and none after: the head is as good as gone.
    gang_job.liveness = Liveness {
        heartbeat_every: Duration::from_secs(3_600),
        head_timeout_secs: 2,
    };
    let outcome = run_gang(&nodes, &gang_job, &AtomicBool::new(false), &|_| {}, sink)
        .await
        .unwrap();
    // The node's watcher ended the job (TERM) although the shell that ran it still waited.
    assert_eq!(
        outcome,
        JobOutcome::Failed {
            phase: Phase::Run,
            exits: vec![(0, 143)]
        }
    );
    let pid = read_pid(&pid_file).expect("the job recorded its pid");
    assert!(!alive(pid));
}

#[test]
fn a_nodes_ranks_end_when_the_process_that_ran_them_is_gone() {
    let scratch = Scratch::new("orphan");
    let pid_file = scratch.path("job-pid");
    let spec = JobSpec {
        run: Some(format!(
            "sleep 300 & echo $! > {}; wait",
            pid_file.display()
        )),
        num_nodes: 1,
        ..JobSpec::default()
    };
    let nodes = local_nodes(1);
    let (sink, _) = collecting();
    let gang_job = job(&scratch, &spec, &[], 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The runner is dropped mid-job, as a head whose daemon died would drop it: the shell
    // that ran the job goes with it, and the job's session must follow, children included.
    runtime.block_on(async {
        let cancelled = AtomicBool::new(false);
        let gang = run_gang(&nodes, &gang_job, &cancelled, &|_| {}, sink);
        let started = async {
            while read_pid(&pid_file).is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            _ = gang => panic!("the job ended by itself"),
            () = started => {}
        }
    });
    drop(runtime);
    let child = read_pid(&pid_file).unwrap();
    wait_for("the job's child to be ended", || !alive(child));
}

#[tokio::test]
async fn secrets_reach_the_job_environment_but_no_command_line() {
    let scratch = Scratch::new("secrets");
    let seen = scratch.path("seen");
    let spec = JobSpec {
        run: Some(format!(
            "echo \"$API_TOKEN\" > {}; echo \"$SKYPILOT_TASK_ID\"; echo \"$SKYPILOT_CLUSTER_INFO\"; sleep 2",
            seen.display()
        )),
        num_nodes: 1,
        ..JobSpec::default()
    };
    let secret_value = "tok-5f1c2a9e-not-in-argv";
    let secrets = vec![("API_TOKEN".to_owned(), secret_value.to_owned())];
    let nodes = local_nodes(1);
    let (sink, lines) = collecting();
    let gang_job = job(&scratch, &spec, &secrets, 1);
    let cancelled = AtomicBool::new(false);
    let gang = run_gang(&nodes, &gang_job, &cancelled, &|_| {}, sink);
    let watch = async {
        while !seen.exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ps = tokio::process::Command::new("ps")
            .args(["-eww", "-o", "args"])
            .output()
            .await
            .unwrap();
        String::from_utf8_lossy(&ps.stdout).into_owned()
    };
    let (outcome, ps) = tokio::join!(gang, watch);
    assert_eq!(outcome.unwrap(), JobOutcome::Succeeded);
    assert!(
        !ps.contains(secret_value),
        "a command line shows the secret"
    );
    assert_eq!(std::fs::read_to_string(&seen).unwrap().trim(), secret_value);
    let lines: Vec<String> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| l.clone())
        .collect();
    assert_eq!(
        lines,
        [
            "sky-1970-01-01-00-00-00-000000_gang_7",
            r#"{"cluster_name":"gang"}"#
        ]
    );
}

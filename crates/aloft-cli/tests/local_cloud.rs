//! `aloft launch` end to end on the local cloud: real namespaces, real sshd, the real binary.
//! Needs root (CI runs as root and .ci/run installs the tools); elsewhere these tests print a
//! note and pass. Each test uses its own ALOFT_HOME, name prefix, bridge and subnet, and a guard
//! runs `aloft local cleanup` afterwards, even when the test fails.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use support::{Cloud, Family, text};

/// This file's clouds: prefixes `e…`, subnets from 10.64.0.0/24 on.
const FAMILY: Family = Family {
    letter: 'e',
    slot_base: 16_384,
    pid_span: 250,
    needs_podman: false,
    what: "local cloud end-to-end tests",
};

/// A private local cloud for one test (see `support`).
fn new_cloud(tag: u32) -> Option<Cloud> {
    Cloud::new(FAMILY, tag)
}

/// Like `new_cloud`, with ALOFT_HOME under /root (root's home), where it is by default: the
/// instance's state then lives under the very /root an instance mounts its own home over.
fn new_cloud_in_root_home(tag: u32) -> Option<Cloud> {
    let mut cloud = Cloud::new(FAMILY, tag)?;
    let _ = std::fs::remove_dir_all(&cloud.home);
    cloud.home = PathBuf::from(format!("/root/.aloft-e2e-{}", cloud.prefix));
    let _ = std::fs::remove_dir_all(&cloud.home);
    Some(cloud)
}

#[test]
fn hello_runs_on_one_node_and_down_removes_everything() {
    let Some(cloud) = new_cloud(0) else { return };
    let output = cloud.aloft(&["launch", "examples/hello.yaml", "-c", "hello", "--down"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "running setup on hello-0\nhello from hello-0\n"
    );
    assert!(text(&output.stderr).contains("Job 1 on `hello` succeeded."));
    assert!(
        cloud.namespaces().is_empty(),
        "left behind: {:?}",
        cloud.namespaces()
    );
    let status = cloud.aloft(&["status", "-o", "json"]);
    assert_eq!(text(&status.stdout).trim(), "[]");
}

#[test]
fn four_nodes_know_their_rank_and_every_address() {
    let Some(cloud) = new_cloud(1) else { return };
    std::fs::create_dir_all(cloud.home.join("wd")).unwrap();
    std::fs::write(cloud.home.join("wd/token.txt"), "synced\n").unwrap();
    let spec = cloud.spec(
        "four.yaml",
        "num_nodes: 4\nworkdir: wd\nresources:\n  cpus: 2+\nrun: |\n  \
         echo \"rank=$SKYPILOT_NODE_RANK n=$SKYPILOT_NUM_NODES host=$(hostname) \
         ips=$(echo $SKYPILOT_NODE_IPS | tr ' ' ,) me=$(hostname -I | tr -d ' ') $(cat token.txt)\"\n",
    );
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "four"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 4, "{stdout}");
    let ips: Vec<String> = lines
        .iter()
        .map(|line| {
            line.split(" me=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    for (rank, line) in lines.iter().enumerate() {
        let tag = if rank == 0 {
            "(head)".to_owned()
        } else {
            format!("(worker{rank})")
        };
        assert!(
            line.starts_with(&format!("{tag} rank={rank} n=4 host=four-{rank} ")),
            "{line}"
        );
        // Every node is told every address, head first, in rank order.
        assert!(line.contains(&format!("ips={}", ips.join(","))), "{line}");
        assert!(line.ends_with(" synced"), "{line}");
    }
    let status = cloud.aloft(&["status", "--refresh"]);
    let (stdout, stderr) = (text(&status.stdout), text(&status.stderr));
    let row = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("four"))
        .unwrap_or_default();
    let columns: Vec<&str> = row.split_whitespace().collect();
    // NAME INFRA INSTANCE NODES STATUS LIVE AUTOSTOP $/h: recorded up, and up as the cloud sees it.
    assert_eq!(
        columns.get(4..6),
        Some(&["up", "up"][..]),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let down = cloud.aloft(&["down", "four"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty());
}

#[test]
fn a_failing_job_fails_the_command_and_says_where() {
    let Some(cloud) = new_cloud(2) else { return };
    let spec = cloud.spec(
        "fail.yaml",
        "resources:\n  cpus: 2+\nrun: echo before; exit 3\n",
    );
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "fails", "--down"]);
    // The job's exit code is the command's.
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(text(&output.stdout), "before\n");
    assert!(
        text(&output.stderr).contains("Job 1 on `fails` failed: node 0: exit 3"),
        "{}",
        text(&output.stderr)
    );
    assert!(cloud.namespaces().is_empty());
}

/// The launch runs in the server the command started; the server is killed as soon as it
/// says it is creating instances, and the next command's server undoes what it left.
#[test]
fn a_server_killed_mid_launch_is_undone_by_the_next_server() {
    let Some(cloud) = new_cloud(3) else { return };
    let spec = cloud.spec(
        "eight.yaml",
        "num_nodes: 8\nresources:\n  cpus: 2+\nrun: echo never\n",
    );
    // Kill the server as soon as the command says it is creating instances.
    let (mut child, seen, rest) = launch_until(
        &cloud,
        &["launch", spec.to_str().unwrap(), "-c", "killed"],
        "Creating",
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cloud.home.join("server/api.json")).unwrap())
            .unwrap();
    let server = info["pid"].as_u64().unwrap().to_string();
    let _ = Command::new("kill").args(["-9", &server]).status();
    let failed = !child.wait().unwrap().success();
    let rest = rest.join().unwrap();
    assert!(failed, "{seen}{rest}");
    assert!(seen.contains("Creating 8"), "{seen}");
    // The next command finds the unfinished launch and undoes it: nothing is leaked.
    let output = cloud.aloft(&["down", "nothing-here"]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("Found an interrupted launch of `killed`"),
        "{stderr}"
    );
    assert!(
        cloud.namespaces().is_empty(),
        "leaked: {:?}",
        cloud.namespaces()
    );
    let status = cloud.aloft(&["status", "-o", "json"]);
    assert_eq!(text(&status.stdout).trim(), "[]");
    // Launching the name again works: nothing half-made is taken over.
    let hello = cloud.spec("hello.yaml", "run: echo again\n");
    let again = cloud.aloft(&["launch", hello.to_str().unwrap(), "-c", "killed", "--down"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), "again\n");
}

#[test]
fn failover_moves_on_when_the_cheapest_zone_has_no_capacity() {
    let Some(cloud) = new_cloud(4) else { return };
    // The fault control in the home's local.yaml, which the server reads at every launch.
    let full_zones = |zones: &str| {
        std::fs::write(
            cloud.home.join("local.yaml"),
            format!("full_zones: [{zones}]\n"),
        )
        .unwrap();
    };
    full_zones("local-a");
    let output = cloud
        .command(&["launch", "examples/hello.yaml", "-c", "fo", "--down"])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("insufficient capacity in zone local-a"),
        "{stderr}"
    );
    assert!(
        stderr.contains("trying the next best placement without local/local/local-a"),
        "{stderr}"
    );
    assert!(stderr.contains("in local/local/local-b"), "{stderr}");
    assert_eq!(
        text(&output.stdout),
        "running setup on fo-0\nhello from fo-0\n"
    );
    assert!(cloud.namespaces().is_empty());

    // With every zone full there is nothing left to try, and the error says what was tried.
    full_zones("local-a, local-b");
    let output = cloud
        .command(&["launch", "examples/hello.yaml", "-c", "fo2", "--down"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("no placement left to try (blocked after failures: local/local/local-a, local/local/local-b)"),
        "{}",
        text(&output.stderr)
    );
    assert!(cloud.namespaces().is_empty());
}

/// Whether a TCP connection to `address:port` is accepted within two seconds (a bounded wait:
/// a closed port on the local cloud drops packets, as a cloud security group does).
fn accepts(address: &str, port: u16) -> bool {
    let target: std::net::SocketAddr = format!("{address}:{port}").parse().unwrap();
    std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(2)).is_ok()
}

#[test]
fn ports_stop_start_exec_and_ssh_on_a_kept_cluster() {
    let Some(cloud) = new_cloud(5) else { return };
    let write = cloud.spec(
        "write.yaml",
        "resources:\n  cpus: 2+\n  ports: 8080\nrun: |\n  echo kept > ~/marker\n  \
         (setsid python3 -m http.server 8080 >/dev/null 2>&1 &)\n  \
         (setsid python3 -m http.server 8081 >/dev/null 2>&1 &)\n  \
         for port in 8080 8081; do for i in $(seq 1 200); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done; done\n  \
         hostname -I\n",
    );
    let output = cloud.aloft(&["launch", write.to_str().unwrap(), "-c", "kept"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let address = text(&output.stdout).trim().to_owned();
    assert!(
        text(&output.stderr).contains("Opening ports 8080"),
        "{}",
        text(&output.stderr)
    );
    // The task's port is open; another port that is listening is not (it times out).
    assert!(accepts(&address, 8080), "8080 should be open on {address}");
    assert!(
        !accepts(&address, 8081),
        "8081 should be closed on {address}"
    );
    // status --endpoints says where the open port is reached.
    let endpoints = cloud.aloft(&["status", "--endpoints", "kept"]);
    assert!(endpoints.status.success(), "{}", text(&endpoints.stderr));
    assert!(
        text(&endpoints.stdout).contains(&format!("{address}:8080")),
        "{}",
        text(&endpoints.stdout)
    );

    // Stop keeps the disk; start brings the node back; exec runs on it.
    let stop = cloud.aloft(&["stop", "kept"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    let status = text(&cloud.aloft(&["status", "-o", "json"]).stdout);
    assert!(status.contains("\"status\": \"stopped\""), "{status}");
    assert!(!accepts(&address, 22), "a stopped node does not answer");
    let start = cloud.aloft(&["start", "kept"]);
    assert!(start.status.success(), "{}", text(&start.stderr));
    let read = cloud.spec("read.yaml", "run: cat ~/marker\n");
    let output = cloud.aloft(&["exec", "kept", read.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "kept\n");
    let output = cloud.aloft(&["ssh", "kept", "--", "hostname"]);
    assert_eq!(text(&output.stdout), "kept-0\n", "{}", text(&output.stderr));

    // Down removes the instance and its disk.
    let down = cloud.aloft(&["down", "kept"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty());
    let output = cloud.aloft(&["exec", "kept", read.to_str().unwrap()]);
    assert!(
        text(&output.stderr).contains("no cluster named `kept`"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_preempted_node_shows_up_in_status() {
    let Some(cloud) = new_cloud(6) else { return };
    let spec = cloud.spec(
        "two.yaml",
        "num_nodes: 2\nresources:\n  cpus: 2+\nrun: hostname\n",
    );
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "spot"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let status = text(&cloud.aloft(&["status", "--refresh", "-o", "json"]).stdout);
    assert!(status.contains("\"live_state\": \"up\""), "{status}");

    let preempt = cloud.aloft(&["local", "preempt", "spot", "1"]);
    assert!(preempt.status.success(), "{}", text(&preempt.stderr));
    let output = cloud.aloft(&["status", "--refresh"]);
    let table = text(&output.stdout);
    let row = table
        .lines()
        .find(|line| line.trim_start().starts_with("spot"))
        .unwrap_or_default();
    assert!(row.contains("degraded (1/2 nodes)"), "{table}");
    let json = text(&cloud.aloft(&["status", "-o", "json"]).stdout);
    assert!(
        json.contains("\"status\": \"degraded\""),
        "the record says so too: {json}"
    );

    let down = cloud.aloft(&["down", "spot"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty());
}

#[test]
fn jobs_are_queued_and_their_logs_kept_per_node() {
    let Some(cloud) = new_cloud(7) else { return };
    let first = cloud.spec("first.yaml", "name: first\nnum_nodes: 2\nresources:\n  cpus: 2+\nrun: echo \"line from rank $SKYPILOT_NODE_RANK\"\n");
    let output = cloud.aloft(&["launch", first.to_str().unwrap(), "-c", "jobs"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let second = cloud.spec(
        "second.yaml",
        "name: second\nrun: echo about to fail; exit 7\n",
    );
    let output = cloud.aloft(&["exec", "jobs", second.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(7));

    let queue = text(&cloud.aloft(&["queue", "jobs", "-o", "json"]).stdout);
    let jobs: serde_json::Value = serde_json::from_str(&queue).unwrap();
    let summary: Vec<(i64, &str, &str)> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["id"].as_i64().unwrap(),
                job["name"].as_str().unwrap(),
                job["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(1, "first", "succeeded"), (2, "second", "failed")]
    );
    // The second task asks for one node: it runs on the head only.
    assert_eq!(jobs[1]["exit_codes"], serde_json::json!({"0": 7}));

    // The latest job's logs by default; an earlier one by id, tagged by node (lines of
    // different nodes come in any order).
    assert_eq!(
        text(&cloud.aloft(&["logs", "jobs"]).stdout),
        "(head) about to fail\n"
    );
    let sorted = |output: Output| {
        let mut lines: Vec<String> = text(&output.stdout).lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    let expected = ["(head) line from rank 0", "(worker1) line from rank 1"];
    assert_eq!(sorted(cloud.aloft(&["logs", "jobs", "1"])), expected);
    let missing = cloud.aloft(&["logs", "jobs", "9"]);
    assert!(
        text(&missing.stderr).contains("no job 9 in this cluster's queue"),
        "{}",
        text(&missing.stderr)
    );
    assert!(cloud.aloft(&["down", "jobs"]).status.success());
    // With the cluster gone, the copy kept on this machine is shown.
    let kept = cloud.aloft(&["logs", "jobs", "1"]);
    assert!(kept.status.success(), "{}", text(&kept.stderr));
    assert_eq!(sorted(kept), expected);
}

#[test]
fn detached_jobs_are_followed_cancelled_and_their_processes_end_on_every_node() {
    let Some(cloud) = new_cloud(10) else { return };
    let spec = cloud.spec(
        "long.yaml",
        "name: long\nnum_nodes: 2\nresources:\n  cpus: 2+\nrun: |\n  echo \"up on $ALOFT_NODE_RANK\"\n  sleep 300 &\n  sleep 300\n",
    );
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "det", "-d"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "",
        "a detached launch prints no job output"
    );
    assert!(text(&output.stderr).contains("Job 1 queued on `det`"));
    let queued = cloud.spec("queued.yaml", "name: queued\nrun: echo never\n");
    assert!(
        cloud
            .aloft(&["exec", "det", queued.to_str().unwrap(), "-d"])
            .status
            .success()
    );

    // Both nodes have started; the second job waits behind the first.
    let start = std::time::Instant::now();
    while text(&cloud.aloft(&["logs", "det", "1"]).stdout)
        .lines()
        .count()
        < 2
    {
        assert!(start.elapsed().as_secs() < 20, "the job did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let queue = text(&cloud.aloft(&["queue", "det", "-o", "json"]).stdout);
    let jobs: serde_json::Value = serde_json::from_str(&queue).unwrap();
    assert_eq!(jobs[0]["state"], "running");
    assert_eq!(jobs[1]["state"], "pending");

    // `logs -f` follows until the job ends: here, until it is cancelled from elsewhere.
    let follower = cloud
        .command(&["logs", "-f", "det", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let cancel = cloud.aloft(&["cancel", "det", "--all", "-o", "json"]);
    assert!(cancel.status.success(), "{}", text(&cancel.stderr));
    let cancelled: serde_json::Value = serde_json::from_str(&text(&cancel.stdout)).unwrap();
    assert_eq!(cancelled[0]["state"], "cancelled");
    assert_eq!(cancelled[1]["state"], "cancelled");
    let followed = follower.wait_with_output().unwrap();
    assert_eq!(
        followed.status.code(),
        Some(1),
        "a cancelled job's follow fails"
    );
    assert!(text(&followed.stderr).contains("Job 1 on `det` cancelled"));

    // Nothing the job started is left on either node.
    for node in ["0", "1"] {
        let left = cloud.aloft(&[
            "ssh",
            "det",
            node,
            "--",
            "pgrep -c -f 'slee[p] 300' || true",
        ]);
        assert_eq!(
            text(&left.stdout).trim(),
            "0",
            "node {node} still runs the job"
        );
    }
    assert!(cloud.aloft(&["down", "det"]).status.success());
}

#[test]
fn a_pipeline_runs_task_by_task_and_stops_at_the_first_failure() {
    let Some(cloud) = new_cloud(11) else { return };
    let spec = cloud.spec(
        "pipe.yaml",
        "name: fetch\nresources:\n  cpus: 2+\nrun: echo \"fetch on $(hostname)\"\n---\n\
         name: train\nnum_nodes: 2\nresources:\n  cpus: 2+\nrun: echo \"train $ALOFT_NODE_RANK\"\n---\n\
         name: broken\nresources:\n  cpus: 2+\nrun: exit 5\n---\n\
         name: never\nrun: echo never\n",
    );
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "pipe"]);
    // The failing task's exit code is the command's.
    assert_eq!(output.status.code(), Some(5), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "fetch on pipe-0-0");
    let mut train: Vec<&str> = lines[1..].to_vec();
    train.sort_unstable();
    assert_eq!(train, ["(head) train 0", "(worker1) train 1"]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("Job 1 on `pipe-2` failed: node 0: exit 5"),
        "{stderr}"
    );
    assert!(stderr.contains("Stopped after task 3 of 4"), "{stderr}");
    // Tasks that succeeded had their clusters torn down; the failed one is kept for a look.
    let status = text(&cloud.aloft(&["status", "-o", "json"]).stdout);
    let clusters: serde_json::Value = serde_json::from_str(&status).unwrap();
    let names: Vec<&str> = clusters
        .as_array()
        .unwrap()
        .iter()
        .map(|cluster| cluster["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pipe-2"]);
    assert!(cloud.aloft(&["down", "pipe-2"]).status.success());
    assert!(cloud.namespaces().is_empty(), "{:?}", cloud.namespaces());
}

/// Polls `aloft status --refresh -o json` until `done` says so (or fails after 30 s).
fn wait_for_status(cloud: &Cloud, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let output = cloud.aloft(&["status", "--refresh", "-o", "json"]);
        let clusters: serde_json::Value =
            serde_json::from_str(&text(&output.stdout)).unwrap_or_default();
        if done(&clusters) {
            return;
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "timed out waiting for {what}: {clusters}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn autostop_stops_or_tears_down_the_cluster_from_the_cluster_itself() {
    let Some(cloud) = new_cloud(12) else { return };
    let spec = cloud.spec(
        "job.yaml",
        "num_nodes: 2\nresources:\n  cpus: 2+\nrun: echo \"kept $ALOFT_NODE_RANK\" > ~/marker; sleep 1\n",
    );
    // Detached: this machine is out of the loop once the job is queued.
    let kept = cloud.aloft(&[
        "launch",
        spec.to_str().unwrap(),
        "-c",
        "nap",
        "-i",
        "0",
        "-d",
    ]);
    assert!(kept.status.success(), "{}", text(&kept.stderr));
    let gone = cloud.aloft(&[
        "launch",
        spec.to_str().unwrap(),
        "-c",
        "bye",
        "-i",
        "0",
        "--down",
        "-d",
    ]);
    assert!(gone.status.success(), "{}", text(&gone.stderr));

    let status_of = |clusters: &serde_json::Value, name: &str| {
        clusters
            .as_array()
            .and_then(|all| all.iter().find(|cluster| cluster["name"] == name))
            .map(|cluster| cluster["status"].as_str().unwrap_or_default().to_owned())
    };
    wait_for_status(&cloud, "`nap` to stop and `bye` to go", |clusters| {
        status_of(clusters, "nap").as_deref() == Some("stopped")
            && status_of(clusters, "bye").is_none()
    });
    // Stopped only after its job ran to the end; its disks were kept.
    let started = cloud.aloft(&["start", "nap"]);
    assert!(started.status.success(), "{}", text(&started.stderr));
    let marker = cloud.aloft(&["ssh", "nap", "1", "--", "cat marker"]);
    assert_eq!(text(&marker.stdout), "kept 1\n");
    let queue = text(&cloud.aloft(&["queue", "nap", "-o", "json"]).stdout);
    let jobs: serde_json::Value = serde_json::from_str(&queue).unwrap();
    assert_eq!(jobs[0]["state"], "succeeded");
    // The setting survives the restart: idle again, it stops again.
    wait_for_status(&cloud, "`nap` to stop again", |clusters| {
        status_of(clusters, "nap").as_deref() == Some("stopped")
    });
    // down --all asks first; without a terminal, only with --yes.
    let refused = cloud
        .command(&["down", "--all"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("pass --yes"),
        "{}",
        text(&refused.stderr)
    );
    let all = cloud.aloft(&["down", "--all", "--yes"]);
    assert!(all.status.success(), "{}", text(&all.stderr));
    assert!(cloud.namespaces().is_empty(), "{:?}", cloud.namespaces());
}

#[test]
fn instances_aloft_has_forgotten_are_found_by_refresh_and_removed_by_down() {
    let Some(cloud) = new_cloud(13) else { return };
    let kept = cloud.aloft(&["launch", "examples/hello.yaml", "-c", "lost"]);
    assert!(kept.status.success(), "{}", text(&kept.stderr));
    // The state is lost (a wiped home, a crash before the record was written).
    std::fs::remove_file(cloud.home.join("state.db")).unwrap();
    let status = cloud.aloft(&["status", "--refresh"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert!(
        text(&status.stderr).contains("Instances of `lost` are on local (local)"),
        "{}",
        text(&status.stderr)
    );
    assert!(cloud.aloft(&["down", "lost"]).status.success());
    assert!(cloud.namespaces().is_empty(), "{:?}", cloud.namespaces());
    let quiet = cloud.aloft(&["status", "--refresh"]);
    assert!(!text(&quiet.stderr).contains("Instances of"));
}

#[test]
fn the_local_cloud_offers_what_its_config_file_says() {
    let Some(cloud) = new_cloud(8) else { return };
    std::fs::create_dir_all(&cloud.home).unwrap();
    std::fs::write(
        cloud.home.join("local.yaml"),
        "zones: [east-1, east-2]\ninstance_types:\n  - {name: tiny, vcpus: 2, memory_gib: 2, price: 0.001}\n  \
         - {name: huge, vcpus: 64, memory_gib: 256, price: 1.0}\n",
    )
    .unwrap();
    let output = cloud.aloft(&["launch", "examples/hello.yaml", "-c", "cfg", "--down"]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 x tiny in local/local/east-1"),
        "{stderr}"
    );
    assert!(cloud.namespaces().is_empty());
}

#[test]
fn regression_state_under_root_home_boots() {
    // With the default ALOFT_HOME (~/.aloft as root), an instance's init used to mount its own
    // home over /root first and then fail to find its /tmp source under the hidden /root.
    let Some(cloud) = new_cloud_in_root_home(9) else {
        return;
    };
    let output = cloud.aloft(&["launch", "examples/hello.yaml", "-c", "roothome", "--down"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "running setup on roothome-0\nhello from roothome-0\n"
    );
}

/// Spawns `aloft launch` and returns it once it has printed a line starting with `marker`
/// (what it printed so far comes back with it).
fn launch_until(
    cloud: &Cloud,
    args: &[&str],
    marker: &str,
) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    run_until(cloud.command(args), marker)
}

/// Starts `command` and reads its stderr until a line starts with `marker`; returns the child,
/// what it printed so far, and the rest of its stderr (drained in the background).
fn run_until(
    mut command: Command,
    marker: &str,
) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.starts_with(marker) {
            break;
        }
    }
    // The rest of stderr is drained in the background, so the child never blocks on it.
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    (child, seen, rest)
}

#[test]
fn launch_on_a_stopped_cluster_starts_it_and_keeps_its_disk() {
    let Some(cloud) = new_cloud(14) else { return };
    let write = cloud.spec(
        "write.yaml",
        "resources:\n  cpus: 2+\nrun: echo kept > ~/marker && echo wrote\n",
    );
    let read = cloud.spec("read.yaml", "resources:\n  cpus: 2+\nrun: cat ~/marker\n");
    let output = cloud.aloft(&["launch", write.to_str().unwrap(), "-c", "keepme"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stop = cloud.aloft(&["stop", "keepme"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    // launch -c on the stopped cluster: started, its disk kept, the task run.
    let output = cloud.aloft(&["launch", read.to_str().unwrap(), "-c", "keepme"]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(text(&output.stdout), "kept\n", "{stderr}");
    assert!(stderr.contains("Starting `keepme` (stopped)"), "{stderr}");
    assert!(!stderr.contains("Terminating"), "{stderr}");
    // On the cluster now up: reused as it is.
    let output = cloud.aloft(&["launch", read.to_str().unwrap(), "-c", "keepme"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("Reusing `keepme` (up)"));
    assert_eq!(cloud.namespaces().len(), 1);
    // A task that does not fit is refused, and the cluster is left as it was.
    let three = cloud.spec("three.yaml", "num_nodes: 3\nrun: hostname\n");
    let output = cloud.aloft(&["launch", three.to_str().unwrap(), "-c", "keepme"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("the task needs 3 node(s); cluster `keepme` has 1"),
        "{}",
        text(&output.stderr)
    );
    // exec refuses the same task, and one whose required env was not supplied.
    let output = cloud.aloft(&["exec", "keepme", three.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("the task needs 3 node(s)"),
        "{}",
        text(&output.stderr)
    );
    let needs = cloud.spec("needs.yaml", "envs:\n  TOKEN: null\nrun: echo $TOKEN\n");
    let output = cloud.aloft(&["exec", "keepme", needs.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("needs a value for TOKEN"),
        "{}",
        text(&output.stderr)
    );
    let output = cloud.aloft(&["exec", "keepme", read.to_str().unwrap()]);
    assert_eq!(text(&output.stdout), "kept\n", "{}", text(&output.stderr));
    // `autostop -i -1` turns autostop off (SkyPilot's habit), as --cancel does.
    let on = cloud.aloft(&["autostop", "keepme", "-i", "30"]);
    assert!(on.status.success(), "{}", text(&on.stderr));
    let off = cloud.aloft(&["autostop", "keepme", "-i", "-1"]);
    assert!(off.status.success(), "{}", text(&off.stderr));
    assert!(text(&off.stderr).contains("Autostop is off for `keepme`."));
    let status = text(&cloud.aloft(&["status", "-o", "json"]).stdout);
    assert!(status.contains("\"autostop_minutes\": null"), "{status}");
    // `down` copies every job's output first: with this machine's copies gone, it still has
    // them afterwards.
    std::fs::remove_dir_all(cloud.home.join("logs")).unwrap();
    let down = cloud.aloft(&["down", "keepme"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty());
    let logs = cloud.aloft(&["logs", "keepme", "1"]);
    assert_eq!(text(&logs.stdout), "wrote\n", "{}", text(&logs.stderr));
}

#[test]
fn launch_on_a_degraded_cluster_makes_the_lost_node_anew_and_keeps_the_head() {
    let Some(cloud) = new_cloud(15) else { return };
    let spec = cloud.spec(
        "two.yaml",
        "num_nodes: 2\nresources:\n  cpus: 2+\n\
         run: |\n  [ $SKYPILOT_NODE_RANK = 0 ] && echo head >> ~/head-marker\n  \
         echo rank $SKYPILOT_NODE_RANK\n",
    );
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "repair"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let preempt = cloud.aloft(&["local", "preempt", "repair", "1"]);
    assert!(preempt.status.success(), "{}", text(&preempt.stderr));
    // Reads work on the degraded cluster: its head is alive.
    let status = text(&cloud.aloft(&["status", "--refresh", "-o", "json"]).stdout);
    assert!(status.contains("\"status\": \"degraded\""), "{status}");
    let queue = cloud.aloft(&["queue", "repair"]);
    assert!(queue.status.success(), "{}", text(&queue.stderr));
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "repair"]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("lost node(s) 1; making them anew"),
        "{stderr}"
    );
    let mut lines: Vec<String> = text(&output.stdout).lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(lines, ["(head) rank 0", "(worker1) rank 1"], "{stderr}");
    // The head is the same machine: its disk has both runs' markers.
    let marker = cloud.aloft(&["ssh", "repair", "0", "--", "cat", "~/head-marker"]);
    assert_eq!(text(&marker.stdout), "head\nhead\n");
    let status = text(&cloud.aloft(&["status", "--refresh", "-o", "json"]).stdout);
    assert!(status.contains("\"running_nodes\": 2"), "{status}");
    let down = cloud.aloft(&["down", "repair"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty());
}

#[test]
fn a_second_command_never_undoes_a_launch_still_in_progress() {
    let Some(cloud) = new_cloud(16) else { return };
    let spec = cloud.spec(
        "two.yaml",
        "num_nodes: 2\nresources:\n  cpus: 2+\nrun: echo done\n",
    );
    let (child, seen, _rest) = launch_until(
        &cloud,
        &["launch", spec.to_str().unwrap(), "-c", "busy"],
        "Creating",
    );
    assert!(seen.contains("Creating 2"), "{seen}");
    // Other commands run meanwhile, each of which recovers what it judges abandoned.
    for args in [
        &["status"][..],
        &["down", "nothing-here"][..],
        &["queue", "busy"][..],
    ] {
        let output = cloud.aloft(args);
        assert!(
            !text(&output.stderr).contains("interrupted launch of `busy`"),
            "{args:?} took the launch for abandoned: {}",
            text(&output.stderr)
        );
    }
    // A second launch of the same cluster waits its turn: it is refused, nothing is undone.
    let second = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "busy"]);
    assert!(!second.status.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the launch went on to the end");
    assert_eq!(text(&output.stdout).lines().count(), 2);
    let down = cloud.aloft(&["down", "busy"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty());
}

#[test]
fn a_signal_while_provisioning_undoes_the_launch_and_says_so() {
    let Some(cloud) = new_cloud(17) else { return };
    let spec = cloud.spec(
        "three.yaml",
        "num_nodes: 3\nresources:\n  cpus: 2+\nrun: echo never\n",
    );
    let (child, _, rest) = launch_until(
        &cloud,
        &["launch", spec.to_str().unwrap(), "-c", "sigint"],
        "Creating",
    );
    let interrupt = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let said = rest.join().unwrap();
    assert!(
        said.contains("Interrupted (SIGINT) while bringing `sigint` up: undoing"),
        "{said}"
    );
    assert!(
        cloud.namespaces().is_empty(),
        "left behind: {:?}",
        cloud.namespaces()
    );
    let status = cloud.aloft(&["status", "-o", "json"]);
    assert_eq!(text(&status.stdout).trim(), "[]");
    // The next launch of the name is not confused by anything left.
    let hello = cloud.spec("hello.yaml", "run: echo hello\n");
    let output = cloud.aloft(&["launch", hello.to_str().unwrap(), "-c", "sigint", "--down"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "hello\n");
}

#[test]
fn launches_started_a_quarter_second_apart_all_succeed() {
    // Each launch recovers what it judges abandoned when it starts: none may take another's
    // launch in progress for abandoned, and none may fail on the store while others write.
    let Some(cloud) = new_cloud(18) else { return };
    let spec = cloud.spec(
        "two.yaml",
        "num_nodes: 2\nresources:\n  cpus: 2+\nrun: echo ok\n",
    );
    let mut children = Vec::new();
    for idx in 0..4 {
        let name = format!("par{idx}");
        children.push(
            cloud
                .command(&["launch", spec.to_str().unwrap(), "-c", &name, "--down"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
        // Reads in between, as a user checking on them would.
        let status = cloud.aloft(&["status"]);
        assert!(status.status.success(), "{}", text(&status.stderr));
    }
    for (idx, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "launch {idx} failed: {}",
            text(&output.stderr)
        );
        assert_eq!(text(&output.stdout).lines().count(), 2, "launch {idx}");
    }
    assert!(
        cloud.namespaces().is_empty(),
        "left behind: {:?}",
        cloud.namespaces()
    );
}

#[test]
fn a_signal_while_the_job_runs_with_down_tears_the_cluster_down_and_says_so() {
    let Some(cloud) = new_cloud(19) else { return };
    let spec = cloud.spec(
        "long.yaml",
        "resources:\n  cpus: 2+\nrun: |\n  echo started\n  sleep 300\n",
    );
    let (child, _, rest) = launch_until(
        &cloud,
        &["launch", spec.to_str().unwrap(), "-c", "sigdown", "--down"],
        "Job 1 queued",
    );
    let mut child = child;
    // Wait for the job's first line, so the signal comes while it runs.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "started\n");
    let interrupt = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let status = child.wait().unwrap();
    assert!(!status.success());
    let said = rest.join().unwrap();
    assert!(
        said.contains("Interrupted (SIGTERM): tearing `sigdown` down (--down)"),
        "{said}"
    );
    assert!(
        cloud.namespaces().is_empty(),
        "left behind: {:?}",
        cloud.namespaces()
    );
    let status = cloud.aloft(&["status", "-o", "json"]);
    assert_eq!(text(&status.stdout).trim(), "[]");
}

#[test]
fn one_failing_rank_ends_the_gang_on_every_node_and_the_job_sees_its_secret_and_ids() {
    let Some(cloud) = new_cloud(20) else { return };
    let spec = cloud.spec(
        "gang.yaml",
        "num_nodes: 2\nresources:\n  cpus: 2+\nsecrets:\n  TOKEN: null\nrun: |\n  \
         if [ $SKYPILOT_NODE_RANK = 1 ]; then\n    \
         echo \"token has ${#TOKEN} chars; task ${SKYPILOT_TASK_ID:+set}; info $(echo \"$SKYPILOT_CLUSTER_INFO\" | grep -c gang)\"\n    \
         exit 3\n  fi\n  \
         sleep 100\n  echo finished-sleeping\n",
    );
    let output = cloud
        .command(&[
            "launch",
            spec.to_str().unwrap(),
            "-c",
            "gang",
            "--secret",
            "TOKEN",
        ])
        .env("TOKEN", "s3cr3t-value")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    // Rank 1's failure is the job's, and it ended rank 0 (which never got past its sleep).
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(!stdout.contains("finished-sleeping"), "{stdout}");
    assert!(
        stdout.contains("(worker1) token has 12 chars; task set; info 1"),
        "{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"));
    // The launch went through the server: the secret is in none of its state or its log.
    for file in ["state.db", "state.db-wal", "server/server.log"] {
        let bytes = std::fs::read(cloud.home.join(file)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("s3cr3t"),
            "the secret is in {file}"
        );
    }
    // Nothing of the job is left on the head.
    let ps = cloud.aloft(&["ssh", "gang", "0", "--", "ps", "-eo", "args"]);
    let processes = text(&ps.stdout);
    assert!(!processes.contains("sleep 100"), "{processes}");
    assert!(!processes.contains("s3cr3t"), "{processes}");
    let down = cloud.aloft(&["down", "gang"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty());
}

/// The server a command started is killed (SIGKILL) while it starts a stopped cluster for
/// that command: the command says the server went away; the next command's server ends the
/// request as failed, and the cluster is still there, whole, to be used or torn down.
#[test]
fn a_server_killed_mid_start_leaves_the_cluster_to_the_next_server() {
    let Some(cloud) = new_cloud(21) else { return };
    let spec = cloud.spec(
        "four.yaml",
        "num_nodes: 4\nresources:\n  cpus: 2+\nrun: echo up on $SKYPILOT_NODE_RANK\n",
    );
    let launch = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "srvk"]);
    assert!(launch.status.success(), "{}", text(&launch.stderr));
    let stop = cloud.aloft(&["stop", "srvk"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cloud.home.join("server/api.json")).unwrap())
            .unwrap();
    let server_pid = info["pid"].as_u64().unwrap().to_string();

    let (mut start, seen, rest) = launch_until(&cloud, &["start", "srvk"], "Starting `srvk`");
    // The server this test's commands started, by the pid it wrote.
    let _ = Command::new("kill").args(["-9", &server_pid]).status();
    let started = start.wait().unwrap();
    let rest = rest.join().unwrap();
    assert!(seen.contains("Starting `srvk`"), "{seen}{rest}");
    assert!(!started.success(), "{seen}{rest}");

    // The next command starts a new server; the request the killed one ran ends as failed,
    // and the cluster's four nodes are all there is (nothing made twice, nothing lost).
    let status = cloud.aloft(&["status", "--refresh", "-o", "json"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let requests = cloud.aloft(&["api", "status", "-o", "json"]);
    let requests: serde_json::Value = serde_json::from_slice(&requests.stdout).unwrap();
    let start_request = requests
        .as_array()
        .unwrap()
        .iter()
        .find(|request| request["kind"] == "start")
        .cloned()
        .unwrap();
    assert_eq!(start_request["state"], "failed", "{requests}");
    assert_eq!(cloud.namespaces().len(), 4, "{:?}", cloud.namespaces());
    // It can be used again, and torn down whole.
    let again = cloud.aloft(&["start", "srvk"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let exec = cloud.aloft(&["exec", "srvk", spec.to_str().unwrap()]);
    assert!(exec.status.success(), "{}", text(&exec.stderr));
    assert!(
        text(&exec.stdout).contains("up on 3"),
        "{}",
        text(&exec.stdout)
    );
    let down = cloud.aloft(&["down", "srvk"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty(), "{:?}", cloud.namespaces());
}

/// Two servers on one PostgreSQL database (two homes, as two machines of a team would be): both
/// see the same clusters; the survivor leaves a live server's request alone, and once that
/// server is killed in the middle of a `start`, it ends the request as failed, recovers the
/// operation, and can use and tear down the cluster whole.
#[test]
fn two_servers_share_a_postgres_database_and_the_survivor_takes_over_a_killed_ones_work() {
    let Some(cloud) = new_cloud(22) else { return };
    let Some(database) = support::postgres::Database::create("twin_servers") else {
        return;
    };
    let on_db = |home: &std::path::Path, args: &[&str]| {
        cloud
            .command(args)
            .env("ALOFT_HOME", home)
            .env("ALOFT_DB", &database.url)
            .output()
            .expect("aloft runs")
    };
    let (home_a, home_b) = (cloud.home.clone(), cloud.home.join("b"));
    let spec = cloud.spec(
        "four.yaml",
        "num_nodes: 4\nresources:\n  cpus: 2+\nrun: echo up on $SKYPILOT_NODE_RANK\n",
    );
    let launch = on_db(&home_a, &["launch", spec.to_str().unwrap(), "-c", "twin"]);
    assert!(launch.status.success(), "{}", text(&launch.stderr));
    let stop = on_db(&home_a, &["stop", "twin"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home_a.join("server/api.json")).unwrap())
            .unwrap();
    let server_a = info["pid"].as_u64().unwrap().to_string();

    // Server B, on its own home and the same database and cloud. Servers sharing a database
    // share what is not in it yet, the clusters' SSH keys and the local cloud's instance
    // disks, as a team's servers would on a shared volume (docs/api.md).
    std::fs::create_dir_all(&home_b).unwrap();
    for shared in ["ssh", "local"] {
        std::os::unix::fs::symlink(home_a.join(shared), home_b.join(shared)).unwrap();
    }
    let server_b = support::served::Served::start(
        &home_b,
        &["--db", &database.url],
        &[
            ("ALOFT_LOCAL_PREFIX", &cloud.prefix),
            ("ALOFT_LOCAL_BRIDGE", &cloud.bridge),
            ("ALOFT_LOCAL_SUBNET", &cloud.subnet),
        ],
    );
    let seen_by_b = on_db(&home_b, &["status", "-o", "json"]);
    assert!(seen_by_b.status.success(), "{}", text(&seen_by_b.stderr));
    let clusters: serde_json::Value = serde_json::from_slice(&seen_by_b.stdout).unwrap();
    assert_eq!(clusters[0]["name"], "twin", "{clusters}");
    assert_eq!(clusters[0]["status"], "stopped", "{clusters}");

    let client_b = aloft_client::Client::new(&server_b.url(), &server_b.token());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let recover_on_b = || {
        runtime
            .block_on(client_b.activate(Some(&["saga_recovery".to_owned()])))
            .unwrap();
        runtime.block_on(client_b.requests(50)).unwrap()
    };
    let start_request = |requests: &[aloft_api::Request]| {
        requests
            .iter()
            .find(|request| request.kind == "start")
            .cloned()
            .expect("the start request is shared")
    };

    let mut command = cloud.command(&["start", "twin"]);
    command.env("ALOFT_DB", &database.url);
    let (mut start, seen, rest) = run_until(command, "Starting `twin`");
    // B's recovery runs while A works: A's request is A's.
    let requests = recover_on_b();
    let running = start_request(&requests);
    assert!(
        !running.state.is_finished(),
        "server B ended a live server's request: {running:?}"
    );
    let _ = Command::new("kill").args(["-9", &server_a]).status();
    let started = start.wait().unwrap();
    let rest = rest.join().unwrap();
    assert!(seen.contains("Starting `twin`"), "{seen}{rest}");
    assert!(!started.success(), "{seen}{rest}");

    // With A gone, B's recovery ends its request and recovers its operation; the cluster's
    // four nodes are all there is.
    let requests = recover_on_b();
    let failed = start_request(&requests);
    assert_eq!(failed.state, aloft_api::RequestState::Failed, "{failed:?}");
    let status = on_db(&home_b, &["status", "--refresh", "-o", "json"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    assert_eq!(cloud.namespaces().len(), 4, "{:?}", cloud.namespaces());
    let again = on_db(&home_b, &["start", "twin"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let exec = on_db(&home_b, &["exec", "twin", spec.to_str().unwrap()]);
    assert!(exec.status.success(), "{}", text(&exec.stderr));
    assert!(
        text(&exec.stdout).contains("up on 3"),
        "{}",
        text(&exec.stdout)
    );
    let down = on_db(&home_b, &["down", "twin"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty(), "{:?}", cloud.namespaces());
    assert!(!server_b.log().contains("panicked"), "{}", server_b.log());
}

//! Job logs on the local cloud, end to end (root; elsewhere a note and a pass): the output of a
//! detached job is still there after its cluster tore itself down, and `aloft logs` exits with
//! the job's exit code. Own ALOFT_HOME, prefix, bridge and subnet; `aloft local cleanup` runs
//! afterwards even when the test fails.

mod support;

use std::time::{Duration, Instant};
use support::{Cloud, Family, text};

/// This file's clouds: prefixes `l…`, subnets from 10.96.0.0/24 on.
const FAMILY: Family = Family {
    letter: 'l',
    slot_base: 24_576,
    pid_span: 250,
    needs_podman: false,
    what: "local cloud logs test",
};

#[test]
fn a_detached_job_s_output_outlives_the_cluster_that_tore_itself_down() {
    let Some(cloud) = Cloud::new(FAMILY, 1) else {
        return;
    };
    let spec = cloud.spec(
        "job.yaml",
        "resources:\n  cpus: 2+\nrun: |\n  echo first; sleep 1; echo second >&2; exit 3\n",
    );
    let spec = spec.display().to_string();
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

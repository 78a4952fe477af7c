//! Job groups end to end on the local cloud: every task on a cluster of its own, all up at once,
//! reaching each other by SkyPilot's names and variables; the auxiliary tasks cancelled after
//! their delay once the primary ones end; and what a failed launch made undone. Needs root
//! (see `support`); each test has its own cloud, cleaned up even when it fails.

mod support;

use support::{Cloud, Family, text};

/// This file's clouds: prefixes `j…`, subnets from 10.219.52.0/24 on.
const FAMILY: Family = Family {
    letter: 'j',
    slot_base: 56_100,
    pid_span: 250,
    needs_podman: false,
    what: "job group end-to-end tests",
};

/// A server (auxiliary) and a client (primary) that fetches a page from it, by the server's
/// host name and by its address variable. `/usr/bin/python3`: an instance's /root is its own,
/// so a Python under /root is not there.
const GROUP: &str = "---
name: web
execution: parallel
primary_tasks: [client]
termination_delay: 3s
---
name: server
resources:
  cpus: 1+
run: |
  mkdir -p /tmp/site
  echo \"page of $(hostname)\" > /tmp/site/index.html
  cd /tmp/site
  exec /usr/bin/python3 -m http.server 8080
---
name: client
resources:
  cpus: 1+
run: |
  fetch() {
    /usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())' \"$1\"
  }
  for attempt in $(seq 1 60); do
    if by_name=$(fetch \"http://server-0.${SKYPILOT_JOBGROUP_NAME}:8080/\"); then break; fi
    sleep 1
  done
  echo \"by name: $by_name\"
  echo \"by address: $(fetch \"http://${SKYPILOT_JOBGROUP_HOST_SERVER}:8080/\")\"
  echo \"group: $SKYPILOT_JOBGROUP_NAME, client at $ALOFT_JOBGROUP_IPS_CLIENT\"
";

#[test]
fn a_client_reaches_its_server_by_name_and_the_server_is_cancelled_after_the_delay() {
    let Some(cloud) = Cloud::new(FAMILY, 0) else {
        return;
    };
    let spec = cloud.spec("group.yaml", GROUP);
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "web", "--down"]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // The server's page names its host (`web-server-0`), reached from another cluster.
    assert!(
        stdout.contains("[client] by name: page of web-server-0\n"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("[client] by address: page of web-server-0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[client] group: web, client at 10."),
        "{stdout}"
    );
    // The server's log lines are tagged with its task (http.server logs each request).
    assert!(stderr.contains("[server] "), "{stderr}");
    assert!(
        stderr.contains("Job group `web`: 2 tasks at once, on local/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[server] The primary tasks have ended; cancelling it in 3s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[server] job 1 on `web-server`: cancelled (auxiliary)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[client] job 1 on `web-client`: succeeded"),
        "{stderr}"
    );
    assert!(stderr.contains("Tearing down `web-server`"), "{stderr}");
    assert!(stderr.contains("Tearing down `web-client`"), "{stderr}");
    assert!(
        cloud.namespaces().is_empty(),
        "left behind: {:?}",
        cloud.namespaces()
    );
    let status = cloud.aloft(&["status", "-o", "json"]);
    assert_eq!(text(&status.stdout).trim(), "[]");
    // The host's own /etc/hosts never gets the group's names.
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(!hosts.contains("aloft-jobgroup:web"), "{hosts}");
}

#[test]
fn a_group_that_cannot_come_up_undoes_what_it_made_and_keeps_what_it_did_not() {
    let Some(cloud) = Cloud::new(FAMILY, 1) else {
        return;
    };
    // A cluster of the group's name made before: one node.
    let before = cloud.aloft(&["launch", "examples/hello.yaml", "-c", "grp-server"]);
    assert!(before.status.success(), "{}", text(&before.stderr));
    // The group's server wants two nodes, which the recorded cluster does not have.
    let spec = cloud.spec(
        "group.yaml",
        "---\nname: grp\nexecution: parallel\n---\nname: server\nnum_nodes: 2\n\
         resources:\n  cpus: 1+\nrun: sleep 600\n---\nname: client\nresources:\n  cpus: 1+\n\
         run: sleep 600\n",
    );
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-c", "grp", "--down"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("task `server` (cluster `grp-server`)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("what this launch made was undone"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Keeping `grp-server`") || !stderr.contains("Tearing down `grp-server`"),
        "{stderr}"
    );
    // The cluster made before is still there and up; the client's is gone.
    let status = cloud.aloft(&["status", "-o", "json"]);
    let listed = text(&status.stdout);
    assert!(listed.contains("\"grp-server\""), "{listed}");
    assert!(!listed.contains("\"grp-client\""), "{listed}");
    let namespaces = cloud.namespaces();
    assert_eq!(namespaces.len(), 1, "{namespaces:?}");
    let down = cloud.aloft(&["down", "grp-server"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty(), "{:?}", cloud.namespaces());
}

#[test]
fn a_job_group_cannot_be_detached_yet() {
    let Some(cloud) = Cloud::new(FAMILY, 2) else {
        return;
    };
    let spec = cloud.spec("group.yaml", GROUP);
    let output = cloud.aloft(&["launch", spec.to_str().unwrap(), "-d"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("not supported yet: detaching a job group (-d)"),
        "{}",
        text(&output.stderr)
    );
    assert!(cloud.namespaces().is_empty());
}

//! Tasks with `image_id: docker:<image>` end to end on the local cloud, with a real container
//! engine (rootful Podman, which .ci/run installs): real namespaces, real sshd, the real binary.
//! No registry is reachable here, so the test makes its image itself, a tiny root file system
//! from this machine's bash and coreutils with a marker only the image has, and imports it on
//! every node under the name the task uses (each instance has its own image store, as a VM
//! would). Needs root; elsewhere the test prints a note and passes. A guard runs `aloft local
//! cleanup` afterwards, even when the test fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Cloud, Family, text};

/// This file's clouds: prefixes `k…`, subnets from 10.156.64.0/24 on.
const FAMILY: Family = Family {
    letter: 'k',
    slot_base: 40_000,
    pid_span: 250,
    needs_podman: true,
    what: "container end-to-end test",
};

/// A root file system tarball with bash, a few tools, their libraries, and an
/// `/etc/os-release` and marker file found only in the image.
fn tiny_image_tarball(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for tool in [
        "bash", "sh", "cat", "echo", "pwd", "sleep", "hostname", "ls",
    ] {
        let found = Command::new("bash")
            .args(["-c", &format!("type -P {tool}")])
            .output()
            .unwrap();
        let path = text(&found.stdout).trim().to_owned();
        assert!(!path.is_empty(), "{tool} is not installed on this machine");
        let copied = Command::new("cp")
            .args(["-L", &path])
            .arg(root.join("bin").join(tool))
            .status()
            .unwrap();
        assert!(copied.success());
        let libraries = Command::new("ldd").arg(&path).output().unwrap();
        for library in text(&libraries.stdout)
            .split_whitespace()
            .filter(|word| word.starts_with('/'))
        {
            let target = root.join(library.trim_start_matches('/'));
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            if !target.exists() {
                let copied = Command::new("cp")
                    .args(["-L", library])
                    .arg(&target)
                    .status()
                    .unwrap();
                assert!(copied.success());
            }
        }
    }
    std::fs::write(
        root.join("etc/os-release"),
        "ID=aloft-tiny\nPRETTY_NAME=\"aloft tiny test image\"\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/only-in-the-image"), "image-marker\n").unwrap();
    let tarball = dir.join("rootfs.tar");
    let packed = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(packed.success());
    tarball
}

/// Runs `command` on node `node` of `cluster`; its stdout.
fn on_node(cloud: &Cloud, cluster: &str, node: &str, command: &str) -> String {
    let output = cloud.aloft(&["ssh", cluster, node, "--", command]);
    assert!(
        output.status.success(),
        "{command} on node {node}: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Processes on this machine whose command line names `what`.
fn host_processes_naming(what: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(what))
        .count()
}

#[test]
fn a_cluster_with_an_image_runs_every_job_in_one_container_per_node_for_its_life() {
    let Some(cloud) = Cloud::new(FAMILY, 0) else {
        return;
    };
    let image = format!("localhost/aloft-tiny-{}:1", cloud.prefix);
    let tarball = tiny_image_tarball(&cloud.home);
    // A cluster name of this run's own: its containers' names are looked for on this machine.
    let cluster = format!("box{}", cloud.prefix);
    let cluster = cluster.as_str();
    // The cluster is launched with the image and nothing to run, so no container is started
    // yet; the image is then put on each of its nodes, as a machine image with the container
    // image preloaded would have it.
    let bare = cloud.spec(
        "bare.yaml",
        &format!("num_nodes: 2\nresources:\n  image_id: docker:{image}\n"),
    );
    let output = cloud.aloft(&["launch", bare.to_str().unwrap(), "-c", cluster]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for node in ["0", "1"] {
        assert_eq!(
            on_node(&cloud, cluster, node, "podman ps -a -q | wc -l").trim(),
            "0"
        );
        let import = format!(
            "podman import -q {} {image} >/dev/null && podman image exists {image}",
            tarball.display()
        );
        on_node(&cloud, cluster, node, &import);
    }
    // Each instance has an image store of its own: the host's never saw the image.
    let on_host = Command::new("podman")
        .args(["image", "exists", &image])
        .status()
        .unwrap();
    assert!(!on_host.success(), "{image} reached the host's image store");

    // The first job with commands starts the containers; setup leaves a file in them.
    std::fs::create_dir_all(cloud.home.join("wd")).unwrap();
    std::fs::write(cloud.home.join("wd/token.txt"), "synced\n").unwrap();
    let spec = cloud.spec(
        "boxed.yaml",
        &format!(
            "num_nodes: 2\nworkdir: wd\nresources:\n  image_id: docker:{image}\n\
             envs:\n  GREETING: hello\nsecrets:\n  API_TOKEN: null\n\
             setup: |\n  echo \"set up in $(cat /etc/only-in-the-image)\" > /tmp/setup-was-here\n\
             run: |\n  . /etc/os-release\n  \
             echo \"rank=$SKYPILOT_NODE_RANK n=$SKYPILOT_NUM_NODES os=$ID $(cat /tmp/setup-was-here) \
             pwd=$(pwd) $(cat token.txt) greeting=$GREETING token=$API_TOKEN \
             ips=${{SKYPILOT_NODE_IPS//$'\\n'/,}}\"\n"
        ),
    );
    let output = cloud.aloft(&[
        "launch",
        spec.to_str().unwrap(),
        "-c",
        cluster,
        "--secret",
        "API_TOKEN=tok-123",
    ]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "stdout: {stdout}\nstderr: {stderr}");
    let ips = lines[0]
        .split(" ips=")
        .nth(1)
        .expect("the line names the addresses")
        .to_owned();
    assert_eq!(ips.split(',').count(), 2, "{ips}");
    for (rank, line) in lines.iter().enumerate() {
        let tag = if rank == 0 {
            "(head)".to_owned()
        } else {
            format!("(worker{rank})")
        };
        // The image's os-release and marker, what setup left in the container's /tmp, the
        // synced workdir at SkyPilot's path, the task's variables and secret, and every node's
        // address: all seen from inside the container.
        assert_eq!(
            *line,
            format!(
                "{tag} rank={rank} n=2 os=aloft-tiny set up in image-marker \
                 pwd=/root/sky_workdir synced greeting=hello token=tok-123 ips={ips}"
            ),
            "stdout: {stdout}\nstderr: {stderr}"
        );
    }
    // The containers stay, one per node, named after the cluster and the node.
    let containers = |cluster: &str| -> Vec<String> {
        ["0", "1"]
            .iter()
            .map(|node| {
                on_node(&cloud, cluster, node, "podman ps --format '{{.Names}}'")
                    .trim()
                    .to_owned()
            })
            .collect()
    };
    let names = vec![
        format!("aloft-{cluster}-node0"),
        format!("aloft-{cluster}-node1"),
    ];
    assert_eq!(containers(cluster), names);

    // `aloft exec` of a task that names no image runs in the same containers: it sees the
    // image and what the launch's setup left there.
    let plain = cloud.spec(
        "plain.yaml",
        "num_nodes: 2\nrun: |\n  . /etc/os-release\n  \
         echo \"rank=$SKYPILOT_NODE_RANK os=$ID $(cat /tmp/setup-was-here)\"\n",
    );
    let expect_plain = |output: std::process::Output| {
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(
            output.status.success(),
            "stdout: {stdout}\nstderr: {stderr}"
        );
        let mut lines: Vec<&str> = stdout.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "(head) rank=0 os=aloft-tiny set up in image-marker",
                "(worker1) rank=1 os=aloft-tiny set up in image-marker"
            ],
            "stderr: {stderr}"
        );
    };
    expect_plain(cloud.aloft(&["exec", cluster, plain.to_str().unwrap()]));

    // A task that names another image is refused, saying which the cluster runs.
    let other = cloud.spec(
        "other.yaml",
        "resources:\n  image_id: docker:localhost/another:2\nrun: echo never\n",
    );
    let output = cloud.aloft(&["exec", cluster, other.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains(&format!("runs every job in its container of {image}")),
        "{}",
        text(&output.stderr)
    );

    // A cancelled job's processes in the containers end; the containers stay.
    let long = cloud.spec(
        "long.yaml",
        "num_nodes: 2\nrun: |\n  echo started\n  sleep 3001 &\n  sleep 3002\n",
    );
    let output = cloud.aloft(&["exec", cluster, long.to_str().unwrap(), "-d"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let sleeping = |node: &str| -> usize {
        on_node(&cloud, cluster, node, "ps -eo args")
            .lines()
            .filter(|args| args.starts_with("sleep 300"))
            .count()
    };
    let start = std::time::Instant::now();
    while sleeping("0") + sleeping("1") < 4 {
        assert!(start.elapsed().as_secs() < 30, "the job did not start");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let cancel = cloud.aloft(&["cancel", cluster, "--all"]);
    assert!(cancel.status.success(), "{}", text(&cancel.stderr));
    assert_eq!((sleeping("0"), sleeping("1")), (0, 0));
    assert_eq!(containers(cluster), names);

    // Stopped and started (the nodes restart): the next job starts the containers again, with
    // what setup left in them, as SkyPilot does.
    for verb in ["stop", "start"] {
        let output = cloud.aloft(&[verb, cluster]);
        assert!(output.status.success(), "{verb}: {}", text(&output.stderr));
    }
    expect_plain(cloud.aloft(&["exec", cluster, plain.to_str().unwrap()]));
    assert_eq!(containers(cluster), names);

    // Torn down: nothing of the containers is left on this machine.
    let conmons = host_processes_naming(&names[0]);
    assert!(conmons > 0, "the container's processes name it on the host");
    let down = cloud.aloft(&["down", cluster, "-y"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty());
    assert_eq!(host_processes_naming(&format!("aloft-{cluster}-node")), 0);
}

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

#[test]
fn a_docker_image_task_runs_setup_and_run_inside_the_container_on_every_node() {
    let Some(cloud) = Cloud::new(FAMILY, 0) else {
        return;
    };
    let image = format!("localhost/aloft-tiny-{}:1", cloud.prefix);
    let tarball = tiny_image_tarball(&cloud.home);
    // A plain cluster first: the image is then put on each of its nodes, as a machine image
    // with the container image preloaded would have it.
    let plain = cloud.home.join("plain.yaml");
    std::fs::write(&plain, "num_nodes: 2\nrun: \"true\"\n").unwrap();
    let output = cloud.aloft(&["launch", plain.to_str().unwrap(), "-c", "boxed"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for node in ["0", "1"] {
        let import = format!(
            "podman import -q {} {image} >/dev/null && podman image exists {image}",
            tarball.display()
        );
        let output = cloud.aloft(&["ssh", "boxed", node, "--", &import]);
        assert!(
            output.status.success(),
            "importing on node {node}: {}",
            text(&output.stderr)
        );
    }
    // Each instance has an image store of its own: the host's never saw the image.
    let on_host = Command::new("podman")
        .args(["image", "exists", &image])
        .status()
        .unwrap();
    assert!(!on_host.success(), "{image} reached the host's image store");
    std::fs::create_dir_all(cloud.home.join("wd")).unwrap();
    std::fs::write(cloud.home.join("wd/token.txt"), "synced\n").unwrap();
    let spec = cloud.home.join("boxed.yaml");
    std::fs::write(
        &spec,
        format!(
            "num_nodes: 2\nworkdir: wd\nresources:\n  image_id: docker:{image}\n\
             envs:\n  GREETING: hello\nsecrets:\n  API_TOKEN: null\n\
             setup: |\n  echo \"set up in $(cat /etc/only-in-the-image)\" > /tmp/setup-was-here\n\
             run: |\n  . /etc/os-release\n  \
             echo \"rank=$SKYPILOT_NODE_RANK n=$SKYPILOT_NUM_NODES os=$ID $(cat /tmp/setup-was-here) \
             pwd=$(pwd) $(cat token.txt) greeting=$GREETING token=$API_TOKEN \
             ips=${{SKYPILOT_NODE_IPS//$'\\n'/,}}\"\n"
        ),
    )
    .unwrap();
    let output = cloud.aloft(&[
        "launch",
        spec.to_str().unwrap(),
        "-c",
        "boxed",
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
    // The job's containers are gone from both nodes once it is over.
    for node in ["0", "1"] {
        let output = cloud.aloft(&["ssh", "boxed", node, "--", "podman ps -a -q | wc -l"]);
        assert_eq!(text(&output.stdout).trim(), "0", "node {node}");
    }
    let down = cloud.aloft(&["down", "boxed", "-y"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(cloud.namespaces().is_empty());
}

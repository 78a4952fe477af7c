//! Jobs with a container image, run by the gang runner over real local processes, against a
//! small fake engine: a bash script that speaks the part of Docker's CLI the runner uses
//! (`--version`, `login`, `image inspect`, `pull`, `container inspect`, `run -d`, `start`,
//! `cp`, `exec`, `rm -f`), keeps its containers as directories (running or not), runs `exec`'d
//! commands on this machine in a session of their own (not the client's, as a real engine's
//! are not), with only the variables named by `-e` (so a variable the runner forgot to pass is
//! missing, as in a real container), and records every command line it was given and what
//! `login` read on stdin. So what the runner asks of an engine is checked
//! without root; the local cloud's test runs a real one.

mod support;

use aloft_agent::runner::{GangJob, JobOutcome, Node, Phase, kill_job_everywhere, run_gang};
use aloft_agent::{ContainerSpec, JobSpec};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::collecting;

/// The fake engine. `$FAKE` is its state directory: `calls.log` (one command line per call,
/// arguments separated by spaces), `login.stdin` (what login read), `images` (one name per
/// line), `containers/<name>/` (`image`, `mounts`, `pids`, and `running` while it runs).
const FAKE_ENGINE: &str = r#"#!/bin/bash
FAKE="$(dirname "$0")/state"
mkdir -p "$FAKE/containers"
echo "$*" >> "$FAKE/calls.log"
case "$1" in
  --version) echo "Fake engine version 1.0 (speaks docker)"; exit 0 ;;
  login)
    cat > "$FAKE/login.stdin"
    echo "login $3 ${5:-}" >> "$FAKE/logins"
    exit 0 ;;
  image)
    grep -qxF "$3" "$FAKE/images" 2>/dev/null; exit ;;
  pull)
    echo "fake: no registry reachable for $2" >&2; exit 1 ;;
  container)
    name="${@: -1}"
    [ -d "$FAKE/containers/$name" ] || { echo "fake: no such container $name" >&2; exit 125; }
    if [ -e "$FAKE/containers/$name/running" ]; then echo true; else echo false; fi
    exit 0 ;;
  start)
    [ -d "$FAKE/containers/$2" ] || { echo "fake: no such container $2" >&2; exit 125; }
    touch "$FAKE/containers/$2/running"; echo "$2" ;;
  cp)
    name="${3%%:*}"
    [ -e "$FAKE/containers/$name/running" ] || { echo "fake: $name is not running" >&2; exit 125; }
    tar -tf - >> "$FAKE/containers/$name/copied" ;;
  rm)
    name="${@: -1}"
    if [ -d "$FAKE/containers/$name" ]; then
      for pid in $(cat "$FAKE/containers/$name/pids" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
      rm -rf "$FAKE/containers/$name"
    fi
    exit 0 ;;
  run)
    shift
    mounts=()
    while [ $# -gt 0 ]; do
      case "$1" in
        -d) shift ;;
        --name) name="$2"; shift 2 ;;
        -v) mounts+=("$2"); shift 2 ;;
        --entrypoint) shift 2; image="$1"; break ;;
        *) shift ;;
      esac
    done
    grep -qxF "$image" "$FAKE/images" 2>/dev/null || { echo "fake: no image $image" >&2; exit 125; }
    [ -d "$FAKE/containers/$name" ] && { echo "fake: the name $name is in use" >&2; exit 125; }
    mkdir -p "$FAKE/containers/$name"
    echo "$image" > "$FAKE/containers/$name/image"
    printf '%s\n' "${mounts[@]}" > "$FAKE/containers/$name/mounts"
    touch "$FAKE/containers/$name/running"
    echo "$name" ;;
  exec)
    shift
    vars=()
    workdir=/
    while [ $# -gt 0 ]; do
      case "$1" in
        -i) shift ;;
        -e) if [ -n "${!2+set}" ]; then vars+=("$2=${!2}"); fi; shift 2 ;;
        -w) workdir="$2"; shift 2 ;;
        *) break ;;
      esac
    done
    name="$1"; shift
    [ -e "$FAKE/containers/$name/running" ] || { echo "fake: $name is not running" >&2; exit 125; }
    cd "$workdir" || exit 126
    # As with a real engine, what runs in the container is no child of this client: ending the
    # client leaves it running.
    setsid env -i PATH=/usr/bin:/bin "FAKE_CONTAINER=$name" "${vars[@]}" "$@" &
    echo $! >> "$FAKE/containers/$name/pids"
    wait $! ;;
  *) echo "fake: unknown command $1" >&2; exit 125 ;;
esac
"#;

/// A scratch directory with the fake engine in it, removed on drop; and a cluster name of its
/// own (the fake's containers share this machine's `/tmp`, where jobs keep their group ids).
struct Fake {
    dir: PathBuf,
    cluster: String,
}

impl Fake {
    fn new(tag: &str) -> Fake {
        let dir =
            std::env::temp_dir().join(format!("aloft-container-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let engine = dir.join("engine");
        std::fs::write(&engine, FAKE_ENGINE).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&engine, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fake {
            dir,
            cluster: format!("boxed-{tag}-{}", std::process::id()),
        }
    }

    fn engine(&self) -> String {
        self.dir.join("engine").display().to_string()
    }

    fn add_image(&self, image: &str) {
        std::fs::write(self.dir.join("state/images"), format!("{image}\n")).unwrap();
    }

    fn state(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("state").join(name)).unwrap_or_default()
    }

    /// The cluster's container on the node of rank `rank`.
    fn container(&self, rank: u32) -> String {
        format!("aloft-{}-node{rank}", self.cluster)
    }

    fn containers(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("state/containers"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// How many times the engine was asked `what` (a command line's start).
    fn calls(&self, what: &str) -> usize {
        self.state("calls.log")
            .lines()
            .filter(|line| line.starts_with(what))
            .count()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        // What a failed test left running in the fake's containers.
        for name in self.containers() {
            let _ = std::process::Command::new(self.engine())
                .args(["rm", "-f", &name])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn local_nodes(count: u32) -> Vec<Node> {
    support::local_nodes(count, |rank| format!("127.0.0.{}", rank + 1))
}

fn job<'a>(
    fake: &'a Fake,
    spec: &'a JobSpec,
    secrets: &'a [(String, String)],
    nodes: u32,
) -> GangJob<'a> {
    support::gang_job(
        &fake.dir,
        &fake.cluster,
        spec,
        secrets,
        nodes,
        Some(fake.engine()),
    )
}

fn in_image(image: &str, run: &str, num_nodes: u32) -> JobSpec {
    JobSpec {
        run: Some(run.to_owned()),
        num_nodes,
        container: Some(ContainerSpec {
            image: image.to_owned(),
            mounts: Vec::new(),
        }),
        ..JobSpec::default()
    }
}

async fn run(fake: &Fake, spec: &JobSpec, id: i64, nodes: u32) -> (JobOutcome, Vec<(u32, String)>) {
    let (sink, lines) = collecting();
    let mut gang = job(fake, spec, &[], nodes);
    gang.id = id;
    let outcome = run_gang(
        &local_nodes(nodes),
        &gang,
        &AtomicBool::new(false),
        &|_| {},
        sink,
    )
    .await
    .unwrap();
    let lines = lines.lock().unwrap().clone();
    (outcome, lines)
}

/// Whether a process runs (a zombie does not count).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

async fn read_pid(path: &std::path::Path) -> u32 {
    for _ in 0..100 {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never named a process", path.display());
}

#[tokio::test]
async fn setup_and_run_execute_in_the_clusters_container_with_rank_workdir_and_secrets() {
    let fake = Fake::new("runs");
    fake.add_image("registry.example/team/trainer:1");
    let workdir = fake.path("workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    let workdir = workdir.display().to_string();
    let spec = JobSpec {
        setup: Some("echo \"setup in $FAKE_CONTAINER\"".to_owned()),
        run: Some(
            "echo \"run in $FAKE_CONTAINER rank=$SKYPILOT_NODE_RANK n=$SKYPILOT_NUM_NODES \
             ips=$(echo $SKYPILOT_NODE_IPS) pwd=$(pwd) greeting=$GREETING token=$API_TOKEN \
             host_only=${HOST_ONLY:-unset}\""
                .to_owned(),
        ),
        envs: vec![("GREETING".to_owned(), "hello there".to_owned())],
        cwd: Some(workdir.clone()),
        num_nodes: 2,
        container: Some(ContainerSpec {
            image: "registry.example/team/trainer:1".to_owned(),
            mounts: vec![workdir.clone()],
        }),
        ..JobSpec::default()
    };
    let secrets = vec![("API_TOKEN".to_owned(), "s3cr3t-value".to_owned())];
    let (sink, lines) = collecting();
    let outcome = run_gang(
        &local_nodes(2),
        &job(&fake, &spec, &secrets, 2),
        &AtomicBool::new(false),
        &|_| {},
        sink,
    )
    .await
    .unwrap();
    let lines = lines.lock().unwrap().clone();
    assert_eq!(outcome, JobOutcome::Succeeded, "{lines:?}");
    for rank in 0..2u32 {
        let name = fake.container(rank);
        let printed: Vec<&str> = lines
            .iter()
            .filter(|(from, _)| *from == rank)
            .map(|(_, line)| line.as_str())
            .collect();
        assert_eq!(
            printed,
            [
                format!("setup in {name}"),
                format!(
                    "run in {name} rank={rank} n=2 ips=127.0.0.1 127.0.0.2 pwd={workdir} \
                     greeting=hello there token=s3cr3t-value host_only=unset"
                )
            ],
            "{lines:?}"
        );
    }
    let calls = fake.state("calls.log");
    // The image was there: nothing was pulled. The workdir was mounted at its own path, the
    // container shares the node's network, and no value (the secret least of all) was ever
    // on an engine's command line.
    assert!(!calls.contains("pull"), "{calls}");
    assert!(
        calls.contains(&format!("-v {workdir}:{workdir}")),
        "{calls}"
    );
    assert!(calls.contains("--network host"), "{calls}");
    assert!(calls.contains("-e API_TOKEN"), "{calls}");
    assert!(!calls.contains("s3cr3t-value"), "{calls}");
    assert!(!calls.contains("hello there"), "{calls}");
    // The containers stay for the cluster's next job.
    assert_eq!(fake.containers(), [fake.container(0), fake.container(1)]);
}

#[tokio::test]
async fn the_next_job_runs_in_the_same_container_without_starting_another() {
    let fake = Fake::new("reuse");
    fake.add_image("img:1");
    let (outcome, lines) = run(
        &fake,
        &in_image("img:1", "echo first in $FAKE_CONTAINER", 2),
        1,
        2,
    )
    .await;
    assert_eq!(outcome, JobOutcome::Succeeded, "{lines:?}");
    let (outcome, lines) = run(
        &fake,
        &in_image("img:1", "echo second in $FAKE_CONTAINER", 2),
        2,
        2,
    )
    .await;
    assert_eq!(outcome, JobOutcome::Succeeded, "{lines:?}");
    assert!(
        lines.contains(&(1, format!("second in {}", fake.container(1)))),
        "{lines:?}"
    );
    // One container per node, made once, looked at by each job.
    assert_eq!(fake.calls("run "), 2, "{}", fake.state("calls.log"));
    assert_eq!(fake.calls("container inspect"), 4);
    assert_eq!(fake.containers(), [fake.container(0), fake.container(1)]);
}

#[tokio::test]
async fn a_stopped_container_is_started_again_and_a_gone_one_made_anew() {
    let fake = Fake::new("restart");
    fake.add_image("img:1");
    let spec = in_image("img:1", "echo in $FAKE_CONTAINER", 1);
    let (outcome, _) = run(&fake, &spec, 1, 1).await;
    assert_eq!(outcome, JobOutcome::Succeeded);
    // The node restarted: the engine has the container, stopped.
    let name = fake.container(0);
    std::fs::remove_file(fake.path(&format!("state/containers/{name}/running"))).unwrap();
    let (outcome, lines) = run(&fake, &spec, 2, 1).await;
    assert_eq!(outcome, JobOutcome::Succeeded, "{lines:?}");
    assert!(
        lines.contains(&(
            0,
            "aloft: starting the cluster's container again on ".to_owned() + &hostname()
        )),
        "{lines:?}"
    );
    assert_eq!(fake.calls(&format!("start {name}")), 1);
    assert_eq!(fake.calls("run "), 1);
    // Someone removed it: it is made anew from the image.
    std::fs::remove_dir_all(fake.path(&format!("state/containers/{name}"))).unwrap();
    let (outcome, lines) = run(&fake, &spec, 3, 1).await;
    assert_eq!(outcome, JobOutcome::Succeeded, "{lines:?}");
    assert_eq!(fake.calls("run "), 2);
    assert_eq!(fake.containers(), [name]);
}

fn hostname() -> String {
    let out = std::process::Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn a_mount_the_container_was_made_without_is_copied_in_when_a_job_needs_it() {
    let fake = Fake::new("mounts");
    fake.add_image("img:1");
    let workdir = fake.path("workdir");
    let data = fake.path("data");
    std::fs::create_dir_all(&workdir).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("shard-0"), "rows\n").unwrap();
    let (workdir, data) = (workdir.display().to_string(), data.display().to_string());
    let mut spec = in_image("img:1", "true", 1);
    spec.container.as_mut().unwrap().mounts = vec![workdir.clone()];
    let (outcome, _) = run(&fake, &spec, 1, 1).await;
    assert_eq!(outcome, JobOutcome::Succeeded);
    spec.container.as_mut().unwrap().mounts = vec![workdir.clone(), data.clone()];
    let (outcome, lines) = run(&fake, &spec, 2, 1).await;
    assert_eq!(outcome, JobOutcome::Succeeded, "{lines:?}");
    let copied = fake.state(&format!("containers/{}/copied", fake.container(0)));
    let relative = data.trim_start_matches('/');
    assert!(
        copied
            .lines()
            .any(|entry| entry == format!("{relative}/shard-0")),
        "{copied}"
    );
    // The workdir, bind-mounted from the start, is never copied.
    assert!(!copied.contains("workdir"), "{copied}");
}

#[tokio::test]
async fn a_job_naming_another_image_than_the_running_container_fails_setup_saying_so() {
    let fake = Fake::new("other");
    std::fs::write(fake.path("state/images"), "img:1\nimg:2\n").unwrap();
    let (outcome, _) = run(&fake, &in_image("img:1", "true", 1), 1, 1).await;
    assert_eq!(outcome, JobOutcome::Succeeded);
    let (outcome, lines) = run(&fake, &in_image("img:2", "echo never", 1), 2, 1).await;
    assert_eq!(
        outcome,
        JobOutcome::Failed {
            phase: Phase::Setup,
            exits: vec![(0, 125)]
        },
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|(_, line)| line.ends_with("runs img:1, not img:2")),
        "{lines:?}"
    );
    assert_eq!(fake.calls("run "), 1);
}

#[tokio::test]
async fn a_private_registry_password_reaches_login_on_stdin_and_never_a_command_line() {
    let fake = Fake::new("login");
    fake.add_image("registry.example/private/image:2");
    let spec = JobSpec {
        run: Some("echo ran in $FAKE_CONTAINER".to_owned()),
        envs: vec![
            ("SKYPILOT_DOCKER_USERNAME".to_owned(), "robot".to_owned()),
            (
                "SKYPILOT_DOCKER_SERVER".to_owned(),
                "registry.example".to_owned(),
            ),
        ],
        num_nodes: 1,
        container: Some(ContainerSpec {
            image: "registry.example/private/image:2".to_owned(),
            mounts: Vec::new(),
        }),
        ..JobSpec::default()
    };
    let secrets = vec![(
        "SKYPILOT_DOCKER_PASSWORD".to_owned(),
        "hunter2-registry".to_owned(),
    )];
    let (sink, lines) = collecting();
    let outcome = run_gang(
        &local_nodes(1),
        &job(&fake, &spec, &secrets, 1),
        &AtomicBool::new(false),
        &|_| {},
        sink,
    )
    .await
    .unwrap();
    let lines = lines.lock().unwrap().clone();
    assert_eq!(outcome, JobOutcome::Succeeded, "{lines:?}");
    assert_eq!(fake.state("login.stdin"), "hunter2-registry");
    assert_eq!(fake.state("logins"), "login robot registry.example\n");
    let calls = fake.state("calls.log");
    assert!(!calls.contains("hunter2"), "{calls}");
    // The login happened before the image was looked at.
    let login_at = calls.find("login").unwrap();
    let inspect_at = calls.find("image inspect").unwrap();
    assert!(login_at < inspect_at, "{calls}");
}

#[tokio::test]
async fn a_missing_image_that_cannot_be_pulled_is_a_setup_failure_that_says_so() {
    let fake = Fake::new("missing");
    let (outcome, lines) = run(
        &fake,
        &in_image("registry.example/absent:0", "echo never", 2),
        7,
        2,
    )
    .await;
    let JobOutcome::Failed { phase, exits } = &outcome else {
        panic!("{outcome:?} {lines:?}");
    };
    assert_eq!(*phase, Phase::Setup);
    assert!(exits.iter().all(|(_, code)| *code == 125), "{exits:?}");
    assert!(
        lines
            .iter()
            .any(|(_, line)| line == "aloft: pulling registry.example/absent:0 failed"),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|(_, line)| line == "never"), "{lines:?}");
    assert_eq!(fake.containers(), Vec::<String>::new());
}

#[tokio::test]
async fn a_failing_rank_ends_the_job_in_the_container_on_every_node_and_keeps_the_containers() {
    let fake = Fake::new("fail");
    fake.add_image("img:1");
    let marker = fake.path("rank0-finished");
    let spec = in_image(
        "img:1",
        &format!(
            "if [ \"$SKYPILOT_NODE_RANK\" = 1 ]; then exit 3; fi; sleep 5; echo done > {}",
            marker.display()
        ),
        2,
    );
    let (outcome, _) = run(&fake, &spec, 7, 2).await;
    assert_eq!(
        outcome,
        JobOutcome::Failed {
            phase: Phase::Run,
            exits: vec![(1, 3)]
        }
    );
    assert_eq!(fake.containers(), [fake.container(0), fake.container(1)]);
    // Rank 0's command, which ran in its container, was ended; the container was not.
    std::thread::sleep(Duration::from_secs(6));
    assert!(!marker.exists());
}

#[tokio::test]
async fn a_cancelled_job_leaves_nothing_running_in_the_container_but_the_container() {
    let fake = Fake::new("cancel");
    fake.add_image("img:1");
    let pid_file = fake.path("child.pid");
    // The job's own process, and a child it started in the background.
    let spec = in_image(
        "img:1",
        &format!("sleep 300 & echo $! > {}; wait", pid_file.display()),
        1,
    );
    let nodes = local_nodes(1);
    let gang = job(&fake, &spec, &[], 1);
    let cancelled = AtomicBool::new(false);
    let (sink, _) = collecting();
    let running = run_gang(&nodes, &gang, &cancelled, &|_| {}, sink);
    tokio::pin!(running);
    let child = tokio::select! {
        outcome = &mut running => panic!("the job ended by itself: {outcome:?}"),
        child = read_pid(&pid_file) => child,
    };
    assert!(alive(child));
    // As the head's daemon does: kills again and again until the job is over, and drops the
    // kill under way then.
    cancelled.store(true, Ordering::SeqCst);
    let killing = async {
        loop {
            kill_job_everywhere(&nodes, &gang).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let outcome = tokio::select! {
        outcome = &mut running => outcome,
        () = killing => unreachable!("the kills loop until the job ends"),
    };
    assert_eq!(outcome.unwrap(), JobOutcome::Cancelled);
    // Once the job is over, nothing it started runs in the container.
    let ended = !alive(child);
    if !ended {
        let _ = std::process::Command::new("kill")
            .arg(child.to_string())
            .status();
    }
    assert!(
        ended,
        "the job's background child {child} outlived the cancel"
    );
    assert_eq!(fake.containers(), [fake.container(0)]);
}

//! Jobs with a container image, run by the gang runner over real local processes, against a
//! small fake engine: a bash script that speaks the part of Docker's CLI the runner uses
//! (`--version`, `login`, `image inspect`, `pull`, `run -d`, `exec`, `rm -f`), keeps its
//! containers as directories, runs `exec`'d commands on this machine with only the variables
//! named by `-e` (so a variable the runner forgot to pass is missing, as in a real container),
//! and records every command line it was given and what `login` read on stdin. So what the
//! runner asks of an engine is checked without root; the local cloud's test runs a real one.

mod support;

use aloft_agent::runner::{GangJob, JobOutcome, Node, Phase, run_gang};
use aloft_agent::{ContainerSpec, JobSpec};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use support::collecting;

/// The fake engine. `$FAKE` is its state directory: `calls.log` (one command line per call,
/// arguments separated by spaces), `login.stdin` (what login read), `images` (one name per
/// line), `containers/<name>/` (`image`, `mounts`, `pids`).
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
    mkdir -p "$FAKE/containers/$name"
    echo "$image" > "$FAKE/containers/$name/image"
    printf '%s\n' "${mounts[@]}" > "$FAKE/containers/$name/mounts"
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
    [ -d "$FAKE/containers/$name" ] || { echo "fake: no container $name" >&2; exit 125; }
    echo $$ >> "$FAKE/containers/$name/pids"
    cd "$workdir" || exit 126
    exec env -i PATH=/usr/bin:/bin "FAKE_CONTAINER=$name" "${vars[@]}" "$@" ;;
  *) echo "fake: unknown command $1" >&2; exit 125 ;;
esac
"#;

/// A scratch directory with the fake engine in it, removed on drop.
struct Fake {
    dir: PathBuf,
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
        Fake { dir }
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

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn local_nodes(count: u32) -> Vec<Node> {
    support::local_nodes(count, |rank| format!("127.0.0.{}", rank + 1))
}

fn job<'a>(
    fake: &Fake,
    spec: &'a JobSpec,
    secrets: &'a [(String, String)],
    nodes: u32,
) -> GangJob<'a> {
    support::gang_job(
        &fake.dir,
        "boxed",
        spec,
        secrets,
        nodes,
        Some(fake.engine()),
    )
}

#[tokio::test]
async fn setup_and_run_execute_in_the_jobs_container_with_rank_workdir_and_secrets() {
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
        let name = format!("aloft-boxed-job7-rank{rank}");
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
    // Both containers are gone once the job is over, and so are the files naming them.
    assert_eq!(fake.containers(), Vec::<String>::new());
    for rank in 0..2 {
        assert!(!fake.path(&format!("run-{rank}/job-7.container")).exists());
    }
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
    let spec = JobSpec {
        run: Some("echo never".to_owned()),
        num_nodes: 2,
        container: Some(ContainerSpec {
            image: "registry.example/absent:0".to_owned(),
            mounts: Vec::new(),
        }),
        ..JobSpec::default()
    };
    let (sink, lines) = collecting();
    let outcome = run_gang(
        &local_nodes(2),
        &job(&fake, &spec, &[], 2),
        &AtomicBool::new(false),
        &|_| {},
        sink,
    )
    .await
    .unwrap();
    let lines = lines.lock().unwrap().clone();
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
async fn a_failing_rank_removes_the_jobs_container_from_every_node() {
    let fake = Fake::new("fail");
    fake.add_image("img:1");
    let marker = fake.path("rank0-finished");
    let spec = JobSpec {
        run: Some(format!(
            "if [ \"$SKYPILOT_NODE_RANK\" = 1 ]; then exit 3; fi; sleep 5; echo done > {}",
            marker.display()
        )),
        num_nodes: 2,
        container: Some(ContainerSpec {
            image: "img:1".to_owned(),
            mounts: Vec::new(),
        }),
        ..JobSpec::default()
    };
    let (sink, _) = collecting();
    let outcome = run_gang(
        &local_nodes(2),
        &job(&fake, &spec, &[], 2),
        &AtomicBool::new(false),
        &|_| {},
        sink,
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        JobOutcome::Failed {
            phase: Phase::Run,
            exits: vec![(1, 3)]
        }
    );
    assert_eq!(fake.containers(), Vec::<String>::new());
    // Rank 0's command, which ran in its container, was ended with it.
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert!(!marker.exists());
}

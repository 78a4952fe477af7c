//! SkyPilot users' task files, unchanged, through the real `aloft launch --dryrun`.
//!
//! `tests/skypilot/` holds task files written the way SkyPilot's documentation and examples
//! write them (LLM serving, GPU training, multi-node, buckets, variables, services, job groups,
//! pools, docker images, `any_of`/`ordered`, ...). Every file must parse unchanged, and every
//! task whose clouds and accelerators the bundled catalog knows must get a plan. The others
//! must fail with a clear "no offering" message naming what is missing (see
//! [`AWAITING_CATALOG`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A directory of this test process's own, for homes, caches and scratch specs.
fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("aloft-corpus-test-{}", std::process::id()))
}

/// Runs `aloft` with a private cache and home and no ambient catalog, so no test here can
/// touch a user's state.
fn aloft(args: &[&str]) -> Output {
    let scratch = scratch();
    Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(args)
        .current_dir(workspace())
        .env("ALOFT_CACHE_DIR", scratch.join("cache"))
        .env("ALOFT_HOME", scratch.join("home"))
        .env("ALOFT_LOCAL_PREFIX", "corpustest")
        .env("ALOFT_LOCAL_BRIDGE", "corpustestbr")
        .env("ALOFT_LOCAL_SUBNET", "10.251.78.0/24")
        .env_remove("ALOFT_CATALOG")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("ALOFT_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .expect("aloft runs")
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/skypilot")
}

/// Files whose accelerators the bundled catalog does not offer where they ask, with what the
/// "no offering" message must name. Empty since the catalog gained A10G, L4, H100, ... on AWS:
/// every file of the corpus plans; a file added for an accelerator the catalog lacks goes here.
const AWAITING_CATALOG: &[(&str, &str)] = &[];

/// Launch-time values a file asks for with `null` placeholders, passed as a user would.
const LAUNCH_VALUES: &[(&str, &[&str])] = &[
    ("vllm-serve.yaml", &["--secret", "HF_TOKEN=hf-test-token"]),
    (
        "secrets-and-envs.yaml",
        &[
            "--secret",
            "WANDB_API_KEY=wandb-test-key",
            "--env",
            "RUN_NAME=first",
        ],
    ),
];

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_spec(name: &str, yaml: &str) -> PathBuf {
    let dir = scratch();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn a_dry_run_fills_variables_as_the_launch_does_and_names_one_left_unset() {
    let spec = write_spec(
        "bucket-from-env.yaml",
        "envs:\n  BUCKET: null\nfile_mounts:\n  /data:\n    name: $BUCKET\n    store: $STORE\n\
         resources:\n  cpus: 2+\nrun: ls /data\n",
    );
    let spec = spec.to_str().unwrap();
    // A placeholder left null is the launch's to refuse; the dry run plans and warns.
    let unset = aloft(&["launch", "--dryrun", spec]);
    assert!(unset.status.success(), "{}", stderr(&unset));
    assert!(
        stderr(&unset).contains("warning:")
            && stderr(&unset).contains("needs a value for BUCKET (pass --env NAME=VALUE)"),
        "{}",
        stderr(&unset)
    );
    let no_store = aloft(&["launch", "--dryrun", spec, "--env", "BUCKET=my-bucket"]);
    assert_eq!(no_store.status.code(), Some(1), "{}", stderr(&no_store));
    assert!(
        stderr(&no_store).contains(
            "file_mounts./data.store uses $STORE, which is set in neither `envs` nor `secrets`"
        ),
        "{}",
        stderr(&no_store)
    );
    let bad_store = aloft(&[
        "launch",
        "--dryrun",
        spec,
        "--env",
        "BUCKET=b",
        "--secret",
        "STORE=s4-hidden",
    ]);
    assert_eq!(bad_store.status.code(), Some(1), "{}", stderr(&bad_store));
    assert!(
        stderr(&bad_store).contains("file_mounts./data.store: `$STORE` does not name a store"),
        "{}",
        stderr(&bad_store)
    );
    assert!(!stderr(&bad_store).contains("s4-hidden"));
    let planned = aloft(&[
        "launch", "--dryrun", spec, "--env", "BUCKET=b", "--env", "STORE=s3",
    ]);
    assert!(planned.status.success(), "{}", stderr(&planned));
    assert!(stdout(&planned).contains("Optimizing for cost"));
}

const JOB_GROUP: &str = "---
name: train-eval
execution: parallel
primary_tasks: [trainer]
termination_delay: 30s
---
name: trainer
resources:
  cpus: 8+
run: python train.py
---
name: evaluator
resources:
  cpus: 4+
run: python evaluate.py
";

#[test]
fn detaching_a_job_group_says_it_is_not_supported_yet() {
    // Launching one runs it (tests/job_groups_local_cloud.rs); detaching it is refused before
    // anything is made.
    let spec = write_spec("job-group.yaml", JOB_GROUP);
    let output = aloft(&["launch", "-d", spec.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("not supported yet: detaching a job group (-d)"),
        "{text}"
    );
    assert!(!text.contains("unknown field"), "{text}");
}

#[test]
fn a_dry_run_plans_a_job_group_as_tasks_that_run_at_once() {
    let spec = write_spec("job-group-dry.yaml", JOB_GROUP);
    let output = aloft(&["launch", "--dryrun", spec.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("Plan for `train-eval` (2 tasks"), "{text}");
    assert!(
        text.contains("job group: the tasks run at once, in one region"),
        "{text}"
    );
    assert!(!text.contains("Data moved between tasks"), "{text}");
}

#[test]
fn launching_a_pool_says_it_is_not_supported_yet() {
    let spec = write_spec(
        "pool.yaml",
        "pool:\n  workers: 3\nresources:\n  cpus: 4+\nsetup: echo ready\n",
    );
    let output = aloft(&["launch", spec.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not supported yet: pools (`pool:`"),
        "{}",
        stderr(&output)
    );
    let planned = aloft(&["launch", "--dryrun", spec.to_str().unwrap()]);
    assert!(planned.status.success(), "{}", stderr(&planned));
}

#[test]
fn every_skypilot_task_file_parses_unchanged_and_plans_where_the_catalog_offers_it() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the corpus has {} files", files.len());
    let mut planned = 0;
    for path in &files {
        let file = path.file_name().unwrap().to_str().unwrap();
        let mut args = vec![
            "launch",
            "--dryrun",
            path.to_str().unwrap(),
            "--alternatives",
            "0",
        ];
        if let Some((_, values)) = LAUNCH_VALUES.iter().find(|(name, _)| *name == file) {
            args.extend_from_slice(values);
        }
        let output = aloft(&args);
        let (out, err) = (stdout(&output), stderr(&output));
        // Parsing unchanged: no spec error, whatever the plan.
        assert!(
            !err.contains("unknown field") && !err.contains(": expected "),
            "{file} does not parse: {err}"
        );
        assert!(
            !err.contains("test-token") && !err.contains("test-key"),
            "{file}: {err}"
        );
        match AWAITING_CATALOG.iter().find(|(name, _)| *name == file) {
            Some((_, message)) => {
                assert_eq!(output.status.code(), Some(1), "{file}: {out}{err}");
                assert!(
                    err.contains("no plan for") && err.contains(message),
                    "{file}: {err}"
                );
            }
            None => {
                assert!(output.status.success(), "{file} gets no plan: {err}");
                assert!(
                    out.contains('✔') && out.contains("Optimizing for cost"),
                    "{file}: {out}"
                );
                planned += 1;
            }
        }
    }
    assert_eq!(planned + AWAITING_CATALOG.len(), files.len());
}

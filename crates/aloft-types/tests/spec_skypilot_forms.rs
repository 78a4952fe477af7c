//! SkyPilot task files that real users write, in the forms aloft once refused or silently
//! misread: each test is named after the behaviour it pins down.

use aloft_types::{Accelerator, Dag, FileMount, Resources, SpecError, parse_dag_with_warnings};

/// Removes the first (empty) line and the common indentation, so cases can be written inline.
fn dedent(source: &str) -> String {
    let source = source.strip_prefix('\n').unwrap_or(source);
    let indent = source
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    source
        .lines()
        .map(|line| line.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Parses a spec that must give no errors, with its warnings.
#[track_caller]
fn parse(source: &str) -> (Dag, Vec<SpecError>) {
    match parse_dag_with_warnings(&dedent(source), "task.yaml") {
        Ok(parsed) => parsed,
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

/// Parses a spec that must give neither errors nor warnings.
#[track_caller]
fn quiet(source: &str) -> Dag {
    let (dag, warnings) = parse(source);
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    dag
}

/// The error text of a spec that must be refused.
#[track_caller]
fn refused(source: &str) -> String {
    match parse_dag_with_warnings(&dedent(source), "task.yaml") {
        Ok((dag, _)) => panic!("expected errors, parsed {dag:#?}"),
        Err(errors) => errors.to_string(),
    }
}

fn options(dag: &Dag) -> &[Resources] {
    &dag.tasks[0].resources.options
}

fn gpu(name: &str, count: f64) -> Option<Accelerator> {
    Some(Accelerator {
        name: name.to_owned(),
        count,
    })
}

#[test]
fn an_accelerator_set_with_counts_gives_one_option_per_accelerator() {
    // `{L4:1, A10G:1}` is YAML for a mapping whose keys are `L4:1` and `A10G:1` (no space after
    // the colon), each with no value: SkyPilot's unordered set of alternatives with counts.
    let dag = quiet(
        "
        resources:
          accelerators: {L4:1, A10G:1, A100:8}
        ",
    );
    let found: Vec<_> = options(&dag)
        .iter()
        .map(|r| r.accelerator.clone())
        .collect();
    assert_eq!(
        found,
        vec![gpu("L4", 1.0), gpu("A10G", 1.0), gpu("A100", 8.0)]
    );
}

#[test]
fn an_accelerator_key_with_a_count_and_a_value_is_an_error_naming_both() {
    let text = refused(
        "
        resources:
          accelerators: {L4:1: 2}
        ",
    );
    assert!(
        text.starts_with("task.yaml:2:18: resources.accelerators.L4:1:"),
        "{text}"
    );
    assert!(text.contains("count"), "{text}");
}

#[test]
fn gpus_is_read_as_accelerators_as_skypilot_does() {
    let dag = quiet(
        "
        resources:
          gpus: H100:8
        ",
    );
    assert_eq!(options(&dag)[0].accelerator, gpu("H100", 8.0));
    let dag = quiet(
        "
        resources:
          any_of:
            - gpus: {H100:1, H200:1}
        ",
    );
    let found: Vec<_> = options(&dag)
        .iter()
        .map(|r| r.accelerator.clone())
        .collect();
    assert_eq!(found, vec![gpu("H100", 1.0), gpu("H200", 1.0)]);
}

#[test]
fn gpus_and_accelerators_together_are_an_error_saying_they_are_one_field() {
    let text = refused(
        "
        resources:
          accelerators: V100
          gpus: A100
        ",
    );
    assert_eq!(
        text,
        "task.yaml:3:3: resources.gpus: `gpus` is another name for `accelerators`; give only one of them"
    );
}

#[test]
fn newer_skypilot_resource_fields_are_warnings_not_errors() {
    let (_, warnings) = parse(
        "
        resources:
          max_hourly_cost: 10.0
          local_disk: nvme
          priority_class: high
          ephemeral_storage: 100
        ",
    );
    let paths: Vec<_> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "resources.max_hourly_cost",
            "resources.local_disk",
            "resources.priority_class",
            "resources.ephemeral_storage"
        ]
    );
}

#[test]
fn a_docker_image_id_is_kept_whole() {
    let dag = quiet(
        "
        resources:
          image_id: docker:vllm/vllm-openai:v0.6.4
        ",
    );
    assert_eq!(
        options(&dag)[0].image_id.as_deref(),
        Some("docker:vllm/vllm-openai:v0.6.4")
    );
}

#[test]
fn a_wildcard_region_leaves_the_place_to_the_zone_or_region_given() {
    for (text, cloud, region, zone, shown) in [
        (
            "gcp/*/us-central1-a",
            Some("gcp"),
            None,
            Some("us-central1-a"),
            "gcp/*/us-central1-a",
        ),
        ("*/us-east-1", None, Some("us-east-1"), None, "*/us-east-1"),
        (
            "*/*/us-east-1a",
            None,
            None,
            Some("us-east-1a"),
            "*/*/us-east-1a",
        ),
        ("aws/*", Some("aws"), None, None, "aws"),
    ] {
        let dag = quiet(&format!("resources:\n  infra: '{text}'\n"));
        let infra = &options(&dag)[0].infra;
        assert_eq!(infra.cloud.as_deref(), cloud, "{text}");
        assert_eq!(infra.region.as_deref(), region, "{text}");
        assert_eq!(infra.zone.as_deref(), zone, "{text}");
        assert_eq!(infra.to_string(), shown);
    }
}

#[test]
fn the_older_location_keys_take_a_zone_without_its_region() {
    let dag = quiet(
        "
        resources:
          cloud: gcp
          zone: us-central1-a
        ",
    );
    assert_eq!(options(&dag)[0].infra.to_string(), "gcp/*/us-central1-a");
    let dag = quiet(
        "
        resources:
          region: us-east-1
        ",
    );
    assert_eq!(options(&dag)[0].infra.to_string(), "*/us-east-1");
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn a_list_of_sources_is_one_storage_mount_with_every_source() {
    let dag = quiet(
        "
        file_mounts:
          /inputs:
            name: my-inputs
            source: [~/data/a, ~/data/b]
            store: gcs
            mode: COPY
        ",
    );
    let FileMount::Storage { name, sources, .. } = &dag.tasks[0].file_mounts["/inputs"] else {
        panic!("expected a storage mount");
    };
    assert_eq!(name.as_deref(), Some("my-inputs"));
    assert_eq!(sources, &["~/data/a", "~/data/b"]);
}

const MOUNTS_WITH_VARIABLES: &str = "
    envs:
      MY_BUCKET: skypilot-temp
      MY_LOCAL_PATH: tmp-workdir
      MODEL_SIZE: 13b
      STORE: gcs
    file_mounts:
      /mydir:
        name: ${MY_BUCKET}
        store: $STORE
        mode: MOUNT
      /another-dir:
        name: $MY_BUCKET-2
        source: ['~/${MY_LOCAL_PATH}']
      /checkpoint/${MODEL_SIZE}: ~/${MY_LOCAL_PATH}
    workdir: ~/code/$MODEL_SIZE
    run: echo $MY_BUCKET
    ";

#[test]
fn variables_in_file_mounts_and_workdir_are_filled_from_envs_and_launch_values() {
    let dag = quiet(MOUNTS_WITH_VARIABLES);
    let task = dag.tasks[0]
        .with_overrides(&pairs(&[("MODEL_SIZE", "70b")]), &[])
        .unwrap();
    assert_eq!(
        task.file_mounts["/mydir"],
        FileMount::Storage {
            name: Some("skypilot-temp".into()),
            sources: Vec::new(),
            store: Some("gcs".into()),
            mode: Some("MOUNT".into()),
        }
    );
    let FileMount::Storage { name, sources, .. } = &task.file_mounts["/another-dir"] else {
        panic!("expected a storage mount");
    };
    assert_eq!(name.as_deref(), Some("skypilot-temp-2"));
    assert_eq!(sources, &["~/tmp-workdir"]);
    assert_eq!(
        task.file_mounts["/checkpoint/70b"],
        FileMount::Copy {
            source: "~/tmp-workdir".into()
        }
    );
    assert_eq!(task.workdir.as_deref(), Some("~/code/70b"));
    // `run` is a shell script: its variables are the shell's, left as written.
    assert_eq!(task.run.as_deref(), Some("echo $MY_BUCKET"));
}

#[test]
fn a_variable_nobody_set_is_an_error_naming_it_and_the_field() {
    let dag = quiet(
        "
        file_mounts:
          /data:
            name: $BUCKET_NAME
        ",
    );
    let error = dag.tasks[0].with_overrides(&[], &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "file_mounts./data.name uses $BUCKET_NAME, which is set in neither `envs` nor `secrets` (pass --env BUCKET_NAME=VALUE)"
    );
    let task = dag.tasks[0]
        .with_overrides(&pairs(&[("BUCKET_NAME", "b1")]), &[])
        .unwrap();
    assert!(matches!(
        &task.file_mounts["/data"],
        FileMount::Storage { name: Some(name), .. } if name == "b1"
    ));
}

#[test]
fn a_secret_filled_into_a_file_mount_never_appears_in_an_error() {
    let dag = quiet(
        "
        secrets:
          STORE_KIND: null
        file_mounts:
          /data:
            name: bucket
            store: ${STORE_KIND}
        ",
    );
    let error = dag.tasks[0]
        .with_overrides(&[], &pairs(&[("STORE_KIND", "hunter2-secret")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("file_mounts./data.store"), "{error}");
    assert!(error.contains("${STORE_KIND}"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn variables_in_service_and_volumes_are_filled_too() {
    let (dag, _warnings) = parse(
        "
        envs:
          MODEL_NAME: meta-llama/Llama-3.1-8B
          VOLUME: ckpt
        service:
          readiness_probe:
            path: /v1/chat/completions
            post_data:
              model: $MODEL_NAME
          replicas: 2
        volumes:
          /checkpoints: ${VOLUME}-vol
        ",
    );
    let task = dag.tasks[0].with_overrides(&[], &[]).unwrap();
    let service = format!("{:?}", task.service);
    assert!(service.contains("meta-llama/Llama-3.1-8B"), "{service}");
    assert!(!service.contains("$MODEL_NAME"), "{service}");
    let volumes = format!("{:?}", task.volumes);
    assert!(volumes.contains("ckpt-vol"), "{volumes}");
    let unset = quiet_task("service:\n  replicas: 1\n  readiness_probe: /health/$PROBE\n")
        .with_overrides(&[], &[])
        .unwrap_err()
        .to_string();
    assert!(
        unset.starts_with("service.readiness_probe uses $PROBE"),
        "{unset}"
    );
}

fn quiet_task(source: &str) -> aloft_types::Task {
    let (dag, _) = parse(source);
    dag.tasks.into_iter().next().unwrap()
}

const JOB_GROUP: &str = "
    ---
    name: train-with-services
    execution: parallel
    primary_tasks: [trainer]
    termination_delay:
      default: 30s
      replay-buffer: 1m
    ---
    name: trainer
    resources:
      accelerators: A100:1
    run: python train.py
    ---
    name: replay-buffer
    resources:
      cpus: 4+
    run: python replay_buffer.py
    ";

#[test]
fn a_job_group_is_a_dag_whose_tasks_run_at_once() {
    let dag = quiet(JOB_GROUP);
    assert_eq!(dag.name.as_deref(), Some("train-with-services"));
    assert_eq!(dag.tasks.len(), 2);
    assert!(dag.edges.is_empty(), "{:?}", dag.edges);
    let group = dag.job_group.as_ref().expect("a job group");
    assert_eq!(group.primary_tasks, ["trainer"]);
    let delay = group.termination_delay.as_ref().unwrap();
    assert_eq!(delay.default.unwrap().seconds, 30.0);
    assert_eq!(delay.per_task["replay-buffer"].seconds, 60.0);
}

#[test]
fn a_serial_header_is_a_pipeline() {
    let dag = quiet(
        "
        name: chain
        execution: serial
        ---
        name: a
        ---
        name: b
        ",
    );
    assert!(dag.job_group.is_none());
    assert_eq!(dag.edges.len(), 1);
}

#[test]
fn a_job_group_header_naming_an_unknown_primary_task_is_an_error_with_a_suggestion() {
    let text = refused(
        "
        name: g
        execution: parallel
        primary_tasks: [trainr]
        ---
        name: trainer
        ---
        name: server
        ",
    );
    assert_eq!(
        text,
        "task.yaml:3:17: primary_tasks[0]: unknown task `trainr`; did you mean `trainer`?"
    );
    let text = refused(
        "
        name: g
        execution: sideways
        ---
        name: a
        ",
    );
    assert_eq!(
        text,
        "task.yaml:2:12: execution: expected `parallel` (a job group) or `serial` (a pipeline), found `sideways`"
    );
}

#[test]
fn a_job_group_header_may_say_placement_same_infra_and_nothing_else() {
    let dag = quiet(
        "
        name: g
        execution: parallel
        placement: SAME_INFRA
        ---
        name: a
        ---
        name: b
        ",
    );
    assert!(dag.job_group.is_some());
    assert_eq!(dag.tasks.len(), 2);
    let text = refused(
        "
        name: g
        execution: parallel
        placement: SPREAD
        ---
        name: a
        ",
    );
    assert_eq!(
        text,
        "task.yaml:3:12: placement: expected `SAME_INFRA` (a job group's tasks run in one region), found `SPREAD`"
    );
}

#[test]
fn job_group_fields_in_a_task_say_where_they_belong() {
    let text = refused("execution: parallel\nrun: echo\n");
    assert!(
        text.starts_with("task.yaml:1:1: execution: `execution` belongs to a job group's header"),
        "{text}"
    );
}

#[test]
fn a_pool_section_is_read_into_the_task() {
    let dag = quiet(
        "
        pool:
          workers: 3
        resources:
          accelerators: {H100:1, H200:1}
        setup: echo ready
        ",
    );
    let pool = dag.tasks[0].pool.as_ref().expect("a pool");
    assert_eq!(pool.workers, Some(3));
    assert_eq!(dag.tasks[0].resources.options.len(), 2);
    let text = refused("pool:\n  workers: -1\n");
    assert_eq!(
        text,
        "task.yaml:2:12: pool.workers: expected a whole number of workers (0 or more), found `-1`"
    );
}

#[test]
fn a_task_printed_or_serialized_never_shows_a_secret_value() {
    let dag = aloft_types::spec::parse_dag(
        "secrets:\n  HF_TOKEN: hf-very-secret\n  LATER: null\nrun: echo hi\n",
        "task.yaml",
    )
    .unwrap();
    let task = &dag.tasks[0];
    assert_eq!(
        task.secrets.get("HF_TOKEN"),
        Some(&Some("hf-very-secret".to_owned())),
        "the value is there to use"
    );
    let debug = format!("{task:?} {dag:?}");
    assert!(!debug.contains("hf-very-secret"), "{debug}");
    assert!(
        debug.contains("HF_TOKEN") && debug.contains("<redacted>"),
        "{debug}"
    );
    let json = serde_json::to_string(task).unwrap();
    assert!(!json.contains("hf-very-secret"), "{json}");
    assert!(json.contains(r#""LATER":null"#), "{json}");
}

#[test]
fn a_variable_where_nothing_fills_it_is_warned_about_never_silently_kept() {
    let (dag, warnings) = aloft_types::spec::parse_dag_with_warnings(
        "name: train\nenvs:\n  IMAGE: x\nresources:\n  image_id: docker:$IMAGE\n\
         run: echo $IMAGE\nsetup: echo ${IMAGE}\n",
        "task.yaml",
    )
    .unwrap();
    assert_eq!(
        dag.tasks[0].resources.options[0].image_id.as_deref(),
        Some("docker:$IMAGE"),
        "used as written"
    );
    let texts: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].contains("resources.image_id") && texts[0].contains("not filled here"),
        "{texts:?}"
    );
}

//! Every accepted form of the task spec, each checked against the `Dag` it produces.

use aloft_types::spec::PortRange;
use aloft_types::{
    Accelerator, Amount, Dag, DataInput, DataOutput, Duration, FileMount, Infra, Resources, Size,
    Task, TaskIdx, parse_dag_with_warnings,
};

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

/// Parses a spec that must give no errors and no warnings.
fn dag(source: &str) -> Dag {
    match parse_dag_with_warnings(&dedent(source), "task.yaml") {
        Ok((dag, warnings)) => {
            assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
            dag
        }
        Err(errors) => panic!("unexpected errors:\n{errors}"),
    }
}

fn task(source: &str) -> Task {
    let dag = dag(source);
    assert_eq!(dag.tasks.len(), 1, "expected one task");
    assert!(dag.edges.is_empty());
    dag.tasks.into_iter().next().unwrap()
}

/// The single resource option of a one-task spec with `resources:` given as `body`.
fn resources(body: &str) -> Resources {
    let options = options(body);
    assert_eq!(options.len(), 1, "expected one option: {options:#?}");
    options.into_iter().next().unwrap()
}

fn options(body: &str) -> Vec<Resources> {
    let body = dedent(body);
    let indented: String = body.lines().map(|line| format!("  {line}\n")).collect();
    let task = task(&format!("resources:\n{indented}"));
    assert!(!task.resources.options.is_empty());
    task.resources.options
}

fn infra(text: &str) -> Infra {
    Infra::parse(text).unwrap()
}

fn gpu(name: &str, count: f64) -> Option<Accelerator> {
    Some(Accelerator {
        name: name.to_owned(),
        count,
    })
}

fn hours(hours: f64) -> Option<Duration> {
    Some(Duration::from_hours(hours))
}

#[test]
fn task_fields() {
    let task = task(
        r#"
        name: train
        workdir: ~/project
        num_nodes: 4
        setup: pip install -r requirements.txt
        run: |
          python train.py
          echo done
        estimated_runtime: 6h
        "#,
    );
    assert_eq!(task.name.as_deref(), Some("train"));
    assert_eq!(task.workdir.as_deref(), Some("~/project"));
    assert_eq!(task.num_nodes, 4);
    assert_eq!(
        task.setup.as_deref(),
        Some("pip install -r requirements.txt")
    );
    assert_eq!(task.run.as_deref(), Some("python train.py\necho done\n"));
    assert_eq!(task.estimated_runtime, hours(6.0));
    assert_eq!(task.resources.options, vec![Resources::default()]);
    assert!(!task.resources.ordered);
}

#[test]
fn defaults() {
    let task = task("run: echo hi");
    assert_eq!(task.name, None);
    assert_eq!(task.num_nodes, 1);
    assert!(task.envs.is_empty() && task.file_mounts.is_empty() && task.inputs.is_empty());
    assert_eq!(task.outputs, None);
    assert_eq!(task.estimated_runtime, None);
    let dag = dag("run: echo hi");
    assert_eq!(dag.name, None);
    // Null fields are the same as absent ones.
    let task = self::task("name: x\nresources:\nsetup:\nrun: ~\nenvs:\nnum_nodes:\n");
    assert_eq!((task.setup, task.run, task.num_nodes), (None, None, 1));
}

#[test]
fn slack_forms() {
    let task = task("carbon_slack: 10%");
    assert_eq!((task.carbon_slack, task.cost_slack), (Some(10.0), None));
    let task = self::task("cost_slack: 2.5 %");
    assert_eq!((task.carbon_slack, task.cost_slack), (None, Some(2.5)));
    let task = self::task("cost_slack: 0\ncarbon_slack:");
    assert_eq!((task.carbon_slack, task.cost_slack), (None, Some(0.0)));
}

#[test]
fn estimated_runtime_forms() {
    let check = |text: &str, expected: f64| {
        let task = task(&format!("estimated_runtime: {text}"));
        assert_eq!(
            task.estimated_runtime.map(|d| d.seconds),
            Some(expected),
            "{text}"
        );
    };
    check("6h", 6.0 * 3600.0);
    check("2", 2.0 * 3600.0);
    check("1.5", 1.5 * 3600.0);
    check("30m", 1800.0);
    check("90s", 90.0);
    check("2d", 2.0 * 86400.0);
    check("\"45 min\"", 45.0 * 60.0);
}

#[test]
fn envs_and_secrets_are_stringified() {
    let task = task(
        r#"
        envs:
          MODEL: llama
          EPOCHS: 10
          LR: 0.001
          DEBUG: true
          EMPTY: ""
          QUOTED: "null"
          HF_TOKEN: null
          OTHER:
          _UNDERSCORE_OK: ~
        secrets:
          API_KEY: null
          PASSWORD: hunter2
        "#,
    );
    let env = |name: &str| task.envs.get(name).cloned();
    assert_eq!(env("MODEL"), Some(Some("llama".to_owned())));
    assert_eq!(env("EPOCHS"), Some(Some("10".to_owned())));
    assert_eq!(env("LR"), Some(Some("0.001".to_owned())));
    assert_eq!(env("DEBUG"), Some(Some("true".to_owned())));
    assert_eq!(env("EMPTY"), Some(Some(String::new())));
    assert_eq!(env("QUOTED"), Some(Some("null".to_owned())));
    assert_eq!(env("HF_TOKEN"), Some(None));
    assert_eq!(env("OTHER"), Some(None));
    assert_eq!(env("_UNDERSCORE_OK"), Some(None));
    assert_eq!(task.envs.len(), 9);
    assert_eq!(task.secrets.get("API_KEY"), Some(&None));
    assert_eq!(
        task.secrets.get("PASSWORD"),
        Some(&Some("hunter2".to_owned()))
    );
}

#[test]
fn file_mounts() {
    let task = task(
        r#"
        file_mounts:
          /data: ~/datasets
          /bucket: s3://my-bucket/path
          /checkpoints:
            name: my-ckpts
            store: S3
            mode: mount
          /cached:
            source: gs://other
            mode: MOUNT_CACHED
          /named-only:
            name: scratch
        "#,
    );
    let mount = |path: &str| task.file_mounts.get(path).cloned().unwrap();
    assert_eq!(
        mount("/data"),
        FileMount::Copy {
            source: "~/datasets".to_owned()
        }
    );
    assert_eq!(
        mount("/bucket"),
        FileMount::Copy {
            source: "s3://my-bucket/path".to_owned()
        }
    );
    assert_eq!(
        mount("/checkpoints"),
        FileMount::Storage {
            name: Some("my-ckpts".to_owned()),
            sources: Vec::new(),
            store: Some("s3".to_owned()),
            mode: Some("MOUNT".to_owned()),
        }
    );
    assert_eq!(
        mount("/cached"),
        FileMount::Storage {
            name: None,
            sources: vec!["gs://other".to_owned()],
            store: None,
            mode: Some("MOUNT_CACHED".to_owned()),
        }
    );
    assert!(matches!(
        mount("/named-only"),
        FileMount::Storage { name: Some(_), .. }
    ));
}

#[test]
fn infra_forms() {
    let check = |body: &str, expected: &str| {
        assert_eq!(
            resources(body).infra,
            Infra::parse(expected).unwrap(),
            "{body}"
        );
    };
    check("infra: aws", "aws");
    check("infra: AWS", "aws");
    check("infra: aws/us-east-1", "aws/us-east-1");
    check(
        "infra: gcp/us-central1/us-central1-a",
        "gcp/us-central1/us-central1-a",
    );
    check("infra: local", "local");
    check("infra: local/my-pool", "local/my-pool");
    check("infra: kubernetes", "kubernetes");
    check("infra: k8s", "kubernetes");
    check("infra: '*'", "*");
    check("infra: aws/*", "aws");
    check("cloud: aws", "aws");
    check("cloud: GCP\nregion: us-central1", "gcp/us-central1");
    check(
        "cloud: aws\nregion: us-east-1\nzone: us-east-1a",
        "aws/us-east-1/us-east-1a",
    );
    check("cloud: aws\nregion: null", "aws");
}

#[test]
fn scalar_resource_fields() {
    let r = resources(
        r#"
        instance_type: p3.2xlarge
        use_spot: true
        disk_size: 256
        image_id: ami-0123456789
        labels:
          team: ml
          cost-center: 42
        estimated_runtime: 3h
        "#,
    );
    assert_eq!(r.instance_type.as_deref(), Some("p3.2xlarge"));
    assert!(r.use_spot);
    assert_eq!(r.disk_size, Some(256));
    assert_eq!(r.image_id.as_deref(), Some("ami-0123456789"));
    assert_eq!(r.labels.get("team").map(String::as_str), Some("ml"));
    assert_eq!(r.labels.get("cost-center").map(String::as_str), Some("42"));
    assert_eq!(r.estimated_runtime, hours(3.0));
    assert!(resources("use_spot: yes").use_spot);
    assert!(!resources("use_spot: false").use_spot);
    assert_eq!(resources("disk_size: 256GB").disk_size, Some(256));
    assert_eq!(resources("disk_size: 1TB").disk_size, Some(1024));
}

#[test]
fn cpus_and_memory() {
    let cpus = |text: &str| resources(&format!("cpus: {text}")).cpus.unwrap();
    assert_eq!(cpus("8"), Amount::exactly(8.0));
    assert_eq!(cpus("8.5"), Amount::exactly(8.5));
    assert_eq!(cpus("8+"), Amount::at_least(8.0));
    assert_eq!(cpus("\"8+\""), Amount::at_least(8.0));
    assert_eq!(cpus("0.5"), Amount::exactly(0.5));
    let memory = |text: &str| resources(&format!("memory: {text}")).memory.unwrap();
    assert_eq!(memory("32"), Amount::exactly(32.0));
    assert_eq!(memory("32+"), Amount::at_least(32.0));
    assert_eq!(memory("32GB"), Amount::exactly(32.0));
    assert_eq!(memory("32GB+"), Amount::at_least(32.0));
    assert_eq!(memory("\"64 GiB+\""), Amount::at_least(64.0));
    assert_eq!(memory("1TB"), Amount::exactly(1024.0));
    assert_eq!(memory("512MB"), Amount::exactly(0.5));
}

#[test]
fn accelerator_forms() {
    let check = |body: &str, expected: Vec<Option<Accelerator>>| {
        let found: Vec<_> = options(body).into_iter().map(|r| r.accelerator).collect();
        assert_eq!(found, expected, "{body}");
    };
    check("accelerators: V100", vec![gpu("V100", 1.0)]);
    check("accelerators: V100:4", vec![gpu("V100", 4.0)]);
    check("accelerators: A100-80GB:8", vec![gpu("A100-80GB", 8.0)]);
    check("accelerators: V100:0.5", vec![gpu("V100", 0.5)]);
    check("accelerators: {V100: 4}", vec![gpu("V100", 4.0)]);
    check("accelerators:\n  V100: 2", vec![gpu("V100", 2.0)]);
    check(
        "accelerators: [V100, A100:2]",
        vec![gpu("V100", 1.0), gpu("A100", 2.0)],
    );
    check(
        "accelerators: [{V100: 2}, L4]",
        vec![gpu("V100", 2.0), gpu("L4", 1.0)],
    );
    check(
        "accelerators: {V100, A100}",
        vec![gpu("V100", 1.0), gpu("A100", 1.0)],
    );
    check(
        "accelerators: {V100: 1, A100: 2}",
        vec![gpu("V100", 1.0), gpu("A100", 2.0)],
    );
    check(
        "accelerators:\n  - H100:8\n  - A100:8",
        vec![gpu("H100", 8.0), gpu("A100", 8.0)],
    );
    check("accelerators: null", vec![None]);
    check("cpus: 4", vec![None]);
}

#[test]
fn accelerator_alternatives_share_the_other_fields() {
    let found = options("accelerators: [V100, A100]\ncpus: 8+\nuse_spot: true");
    assert_eq!(found.len(), 2);
    for option in &found {
        assert_eq!(option.cpus, Some(Amount::at_least(8.0)));
        assert!(option.use_spot);
    }
}

#[test]
fn ports() {
    let check = |body: &str, expected: &[(u16, u16)]| {
        let found: Vec<(u16, u16)> = resources(body)
            .ports
            .iter()
            .map(|p| (p.first, p.last))
            .collect();
        assert_eq!(found, expected, "{body}");
    };
    check("ports: 8080", &[(8080, 8080)]);
    check("ports: \"8080\"", &[(8080, 8080)]);
    check("ports: 8080-8090", &[(8080, 8090)]);
    check(
        "ports: [22, \"9000-9010\", 443]",
        &[(22, 22), (9000, 9010), (443, 443)],
    );
    assert_eq!(
        resources("ports: 1").ports,
        vec![PortRange { first: 1, last: 1 }]
    );
}

#[test]
fn per_region_image_id_expands_into_regions() {
    let found = options(
        r#"
        infra: aws
        image_id:
          us-east-1: ami-east
          us-west-2: ami-west
        "#,
    );
    let pairs: Vec<(String, Option<String>)> = found
        .iter()
        .map(|r| (r.infra.to_string(), r.image_id.clone()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("aws/us-east-1".to_owned(), Some("ami-east".to_owned())),
            ("aws/us-west-2".to_owned(), Some("ami-west".to_owned())),
        ]
    );
    // A region given elsewhere picks its image.
    let r = resources(
        "cloud: aws\nregion: us-west-2\nimage_id: {us-east-1: ami-east, us-west-2: ami-west}",
    );
    assert_eq!(r.image_id.as_deref(), Some("ami-west"));
    assert_eq!(r.infra, infra("aws/us-west-2"));
}

#[test]
fn any_of_merges_over_the_outer_fields() {
    let found = options(
        r#"
        cpus: 8+
        use_spot: true
        infra: aws
        any_of:
          - accelerators: V100:1
          - accelerators: A100:1
            use_spot: false
          - infra: gcp/us-central1
            cpus: 32+
            estimated_runtime: 12h
        "#,
    );
    assert_eq!(found.len(), 3);
    let [v100, a100, cpu] = &found[..] else {
        unreachable!()
    };
    assert_eq!(v100.accelerator, gpu("V100", 1.0));
    assert_eq!(v100.cpus, Some(Amount::at_least(8.0)));
    assert!(v100.use_spot);
    assert_eq!(v100.infra, infra("aws"));
    assert_eq!(a100.accelerator, gpu("A100", 1.0));
    assert!(!a100.use_spot);
    assert_eq!(cpu.accelerator, None);
    assert_eq!(cpu.cpus, Some(Amount::at_least(32.0)));
    assert_eq!(cpu.infra, infra("gcp/us-central1"));
    assert_eq!(cpu.estimated_runtime, hours(12.0));
    assert_eq!(v100.estimated_runtime, None);
}

#[test]
fn any_of_infra_replaces_outer_cloud_region() {
    let found =
        options("cloud: aws\nregion: us-east-1\nany_of:\n  - infra: gcp\n  - zone: us-east-1b");
    let infras: Vec<String> = found.iter().map(|r| r.infra.to_string()).collect();
    assert_eq!(infras, ["gcp", "aws/us-east-1/us-east-1b"]);
}

#[test]
fn ordered_keeps_the_order_and_says_so() {
    let dag = dag(r#"
        resources:
          ordered:
            - infra: aws/us-east-1
              accelerators: A100:8
            - infra: gcp
              accelerators: [H100:8, A100:8]
        "#);
    let choice = &dag.tasks[0].resources;
    assert!(choice.ordered);
    let found: Vec<(String, Option<Accelerator>)> = choice
        .options
        .iter()
        .map(|r| (r.infra.to_string(), r.accelerator.clone()))
        .collect();
    assert_eq!(
        found,
        [
            ("aws/us-east-1".to_owned(), gpu("A100", 8.0)),
            ("gcp".to_owned(), gpu("H100", 8.0)),
            ("gcp".to_owned(), gpu("A100", 8.0)),
        ]
    );
}

#[test]
fn any_of_cross_accelerator_alternatives() {
    let found = options(
        r#"
        any_of:
          - infra: aws
            accelerators: {V100: 1, T4: 1}
          - infra: gcp
          - infra: azure
            accelerators: [A100, H100, L4]
        "#,
    );
    let names: Vec<String> = found
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r.infra,
                r.accelerator.as_ref().map_or("-", |a| a.name.as_str())
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "aws:V100",
            "aws:T4",
            "gcp:-",
            "azure:A100",
            "azure:H100",
            "azure:L4"
        ]
    );
}

fn input(path: &str, infra_text: &str, gigabytes: f64) -> DataInput {
    DataInput {
        path: path.to_owned(),
        infra: Infra::parse(infra_text).unwrap(),
        size: Size::from_gigabytes(gigabytes),
    }
}

#[test]
fn inputs_forms() {
    let task = task(
        r#"
        inputs:
          - path: s3://bucket/train
            size: 100GB
          - path: gs://bucket/val
            size: 1.5TB
          - path: https://acct.blob.core.windows.net/container/x
            size: 10
          - path: az://container/y
            size: 1GB
          - path: r2://bucket/z
            size: 2GB
          - path: ~/local/data
            size: 500MB
          - path: s3://bucket/pinned
            size: 3GB
            infra: aws/us-west-2
          - s3://bucket/short: 7
        "#,
    );
    assert_eq!(
        task.inputs,
        vec![
            input("s3://bucket/train", "aws", 100.0),
            input("gs://bucket/val", "gcp", 1500.0),
            input(
                "https://acct.blob.core.windows.net/container/x",
                "azure",
                10.0
            ),
            input("az://container/y", "azure", 1.0),
            input("r2://bucket/z", "cloudflare", 2.0),
            input("~/local/data", "*", 0.5),
            input("s3://bucket/pinned", "aws/us-west-2", 3.0),
            input("s3://bucket/short", "aws", 7.0),
        ]
    );
}

#[test]
fn inputs_mapping_forms() {
    // SkyPilot's form: URIs to sizes in GB.
    let task = task("inputs:\n  s3://a/x: 100\n  gs://b/y: 2TB\n");
    assert_eq!(
        task.inputs,
        vec![
            input("s3://a/x", "aws", 100.0),
            input("gs://b/y", "gcp", 2000.0)
        ]
    );
    // One long-form mapping without a list.
    let task = self::task("inputs: {path: s3://a/x, size: 5GB, infra: aws/eu-west-1}");
    assert_eq!(task.inputs, vec![input("s3://a/x", "aws/eu-west-1", 5.0)]);
}

#[test]
fn outputs_forms() {
    let check = |text: &str, path: Option<&str>, gigabytes: f64| {
        let task = task(&format!("outputs: {text}"));
        let expected = DataOutput {
            path: path.map(str::to_owned),
            size: Size::from_gigabytes(gigabytes),
        };
        assert_eq!(task.outputs, Some(expected), "{text}");
    };
    check("50GB", None, 50.0);
    check("50", None, 50.0);
    check("100MB", None, 0.1);
    check("{size: 5GB}", None, 5.0);
    check(
        "{path: s3://out/ckpt, size: 50GB}",
        Some("s3://out/ckpt"),
        50.0,
    );
    check("{gs://out/model: 20}", Some("gs://out/model"), 20.0);
    assert_eq!(task("outputs: null").outputs, None);
}

#[test]
fn dag_with_depends_on() {
    let dag = dag(r#"
        name: diamond
        tasks:
          - name: prep
            run: echo prep
          - name: left
            depends_on: prep
          - name: right
            depends_on: [prep]
          - name: join
            depends_on:
              - left
              - right
              - left
        "#);
    assert_eq!(dag.name.as_deref(), Some("diamond"));
    let names: Vec<_> = dag.tasks.iter().map(|t| t.name.clone().unwrap()).collect();
    assert_eq!(names, ["prep", "left", "right", "join"]);
    assert_eq!(
        dag.edges,
        [
            (TaskIdx(0), TaskIdx(1)),
            (TaskIdx(0), TaskIdx(2)),
            (TaskIdx(1), TaskIdx(3)),
            (TaskIdx(2), TaskIdx(3))
        ]
    );
    let parents: Vec<TaskIdx> = dag.parents(TaskIdx(3)).collect();
    assert_eq!(parents, [TaskIdx(1), TaskIdx(2)]);
}

#[test]
fn dag_without_name_and_edges() {
    let dag = dag("tasks:\n  - name: a\n  - name: b\n");
    assert_eq!(dag.name, None);
    assert_eq!(dag.tasks.len(), 2);
    assert!(dag.edges.is_empty());
}

#[test]
fn pipeline_with_header() {
    let dag = dag(r#"
        name: pipe
        ---
        name: one
        run: echo 1
        ---
        name: two
        run: echo 2
        ---
        name: three
        resources:
          accelerators: V100
        "#);
    assert_eq!(dag.name.as_deref(), Some("pipe"));
    assert_eq!(dag.tasks.len(), 3);
    assert_eq!(
        dag.edges,
        [(TaskIdx(0), TaskIdx(1)), (TaskIdx(1), TaskIdx(2))]
    );
    assert_eq!(
        dag.tasks[2].resources.options[0].accelerator,
        gpu("V100", 1.0)
    );
}

#[test]
fn pipeline_without_header_and_trailing_separator() {
    let dag = dag("run: echo 1\n---\nrun: echo 2\n---\n");
    assert_eq!(dag.name, None);
    assert_eq!(dag.tasks.len(), 2);
    assert_eq!(dag.edges, [(TaskIdx(0), TaskIdx(1))]);
    // A leading `---` and a single document is just a task.
    let dag = self::dag("---\nname: solo\nrun: echo\n");
    assert_eq!(dag.name.as_deref(), Some("solo"));
    assert_eq!(dag.tasks.len(), 1);
}

#[test]
fn name_only_document_is_a_task() {
    let dag = dag("name: lonely");
    assert_eq!(dag.name.as_deref(), Some("lonely"));
    assert_eq!(dag.tasks[0].name.as_deref(), Some("lonely"));
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let dag = dag(r#"
        tasks:
          - &base
            name: a
            resources: &gpu
              accelerators: V100
            run: echo
          - <<: *base
            name: b
            resources:
              <<: *gpu
              cpus: 4
        "#);
    let b = &dag.tasks[1];
    assert_eq!(b.name.as_deref(), Some("b"));
    assert_eq!(b.run.as_deref(), Some("echo"));
    assert_eq!(b.resources.options[0].accelerator, gpu("V100", 1.0));
    assert_eq!(b.resources.options[0].cpus, Some(Amount::exactly(4.0)));
}

#[test]
fn skypilot_gpu_training_task() {
    // The shape of SkyPilot's own examples (huggingface glue), unchanged.
    let task = task(
        r#"
        # Fine-tune BERT on GLUE.
        name: huggingface

        resources:
          accelerators: V100:4
          disk_size: 512

        workdir: .

        file_mounts:
          /datasets-storage:
            name: sky-dataset
            source: ~/datasets
            store: s3
            mode: MOUNT
          /dataset-demo: ~/datasets

        envs:
          MY_BUCKET: skypilot-temp-gcs-test
          MODEL_SIZE: 13b
          HF_TOKEN: null

        setup: |
          set -e
          git clone https://github.com/huggingface/transformers/ || true
          cd transformers
          pip3 install .

        run: |
          set -e
          cd transformers/examples/pytorch/text-classification
          python run_glue.py \
            --model_name_or_path bert-base-cased \
            --do_train --max_seq_length 128 \
            --output_dir /tmp/mrpc/
        "#,
    );
    assert_eq!(task.name.as_deref(), Some("huggingface"));
    assert_eq!(task.resources.options[0].accelerator, gpu("V100", 4.0));
    assert_eq!(task.resources.options[0].disk_size, Some(512));
    assert_eq!(task.file_mounts.len(), 2);
    assert_eq!(task.envs.get("HF_TOKEN"), Some(&None));
    assert!(
        task.run
            .unwrap()
            .contains("--do_train --max_seq_length 128 \\\n")
    );
}

#[test]
fn skypilot_fields_aloft_ignores_are_warnings() {
    let source = dedent(
        r#"
        name: svc
        resources:
          accelerators: L4
          disk_tier: best
          autostop: 10m
          _cluster_config_overrides: {}
        service:
          readiness_probe: /health
          replicas: 2
        config:
          kubernetes: {}
        volumes:
          /mnt/vol: my-volume
        file_mounts:
          /ckpt:
            name: bucket
            persistent: false
        workdir:
          url: https://github.com/org/repo
          ref: main
        inputs:
          - path: hf://datasets/x
            size: 1GB
          - path: s3://bucket/y
            size: 1GB
            infra: gcp
        run: serve
        "#,
    );
    let (dag, warnings) = parse_dag_with_warnings(&source, "svc.yaml").unwrap();
    let rendered: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        [
            "svc.yaml:4:3: resources.disk_tier: accepted but not used yet",
            "svc.yaml:5:3: resources.autostop: accepted but not used yet",
            "svc.yaml:6:3: resources._cluster_config_overrides: accepted but not used yet",
            "svc.yaml:7:1: service: accepted but not used yet",
            "svc.yaml:10:1: config: accepted but not used yet",
            "svc.yaml:12:1: volumes: accepted but not used yet",
            "svc.yaml:17:5: file_mounts./ckpt.persistent: accepted but not used yet",
            "svc.yaml:19:3: workdir: the git form of `workdir` is accepted but not used yet",
            "svc.yaml:22:11: inputs[0].path: cannot tell which cloud `hf://datasets/x` is in; add `infra:` to say",
            "svc.yaml:26:12: inputs[1].infra: `s3://bucket/y` looks like aws storage, but `infra` says gcp",
        ]
    );
    let task = &dag.tasks[0];
    assert_eq!(task.workdir, None);
    assert_eq!(task.inputs[0].infra, Infra::any());
    assert_eq!(task.inputs[1].infra, infra("gcp"));
}

#[test]
fn examples_parse() {
    let examples = [
        ("hello.yaml", include_str!("../../../examples/hello.yaml")),
        (
            "train-gpu.yaml",
            include_str!("../../../examples/train-gpu.yaml"),
        ),
        (
            "pipeline.yaml",
            include_str!("../../../examples/pipeline.yaml"),
        ),
        ("dag.yaml", include_str!("../../../examples/dag.yaml")),
    ];
    for (file, source) in examples {
        match parse_dag_with_warnings(source, file) {
            Ok((_, warnings)) => assert!(warnings.is_empty(), "{file}: {warnings:?}"),
            Err(errors) => panic!("{errors}"),
        }
    }
    let parse = |source| parse_dag_with_warnings(source, "x").unwrap().0;

    let hello = parse(examples[0].1);
    assert_eq!(hello.name.as_deref(), Some("hello"));
    assert_eq!(
        hello.tasks[0].resources.options[0].cpus,
        Some(Amount::at_least(2.0))
    );

    let train = parse(examples[1].1);
    let task = &train.tasks[0];
    let runtimes: Vec<_> = task
        .resources
        .options
        .iter()
        .map(|r| r.estimated_runtime)
        .collect();
    assert_eq!(runtimes, [hours(12.0), hours(2.0), hours(1.0)]);
    assert!(task.resources.options.iter().all(|r| r.use_spot));
    assert_eq!(
        task.inputs,
        vec![input(
            "s3://aloft-example-data/imagenet-subset",
            "aws/us-east-1",
            50.0
        )]
    );
    assert_eq!(
        task.outputs.as_ref().map(|o| o.size),
        Some(Size::from_gigabytes(5.0))
    );

    let pipeline = parse(examples[2].1);
    assert_eq!(pipeline.name.as_deref(), Some("pipeline"));
    let names: Vec<_> = pipeline
        .tasks
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    assert_eq!(names, ["preprocess", "train", "eval"]);
    assert_eq!(
        pipeline.edges,
        [(TaskIdx(0), TaskIdx(1)), (TaskIdx(1), TaskIdx(2))]
    );

    let diamond = parse(examples[3].1);
    assert_eq!(diamond.tasks.len(), 4);
    assert_eq!(
        diamond.edges,
        [
            (TaskIdx(0), TaskIdx(1)),
            (TaskIdx(0), TaskIdx(2)),
            (TaskIdx(1), TaskIdx(3)),
            (TaskIdx(2), TaskIdx(3))
        ]
    );
    assert!(diamond.tasks.iter().all(|t| t.outputs.is_some()));
}

#[test]
fn tasks_run_after_their_parents_and_otherwise_in_file_order() {
    // `report` is written first but needs both others; `fetch` needs nothing.
    let dag = dag(r#"
        tasks:
          - name: report
            depends_on: [train, fetch]
          - name: train
            depends_on: fetch
          - name: fetch
          - name: lint
        "#);
    let order: Vec<String> = dag
        .topological_order()
        .into_iter()
        .map(|idx| dag.task_name(idx))
        .collect();
    // Whenever several are free to go, the one written first goes.
    assert_eq!(order, ["fetch", "train", "report", "lint"]);
}

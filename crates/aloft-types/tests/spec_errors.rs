//! Every kind of spec error, checked by its exact rendered message (file:line:col: path: what).

use aloft_types::{SpecError, parse_dag, parse_dag_with_warnings};

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

/// Parses `source` (dedented) as `task.yaml` and compares every error, one per line.
#[track_caller]
fn check(source: &str, expected: &str) {
    check_raw(&dedent(source), expected);
}

/// Like `check`, without dedenting.
#[track_caller]
fn check_raw(source: &str, expected: &str) {
    match parse_dag(source, "task.yaml") {
        Ok(dag) => panic!("expected errors, parsed {dag:#?}"),
        Err(errors) => {
            let expected = dedent(expected);
            assert_eq!(
                errors.to_string(),
                expected.trim_end(),
                "\n--- source ---\n{source}"
            );
        }
    }
}

#[test]
fn unknown_fields() {
    check(
        "
        name: x
        resources:
          acelerators: V100
        ",
        "task.yaml:3:3: resources.acelerators: unknown field; did you mean `accelerators`?",
    );
    check(
        "nmae: x",
        "task.yaml:1:1: nmae: unknown field; did you mean `name`?",
    );
    check(
        "num-nodes: 2",
        "task.yaml:1:1: num-nodes: unknown field; did you mean `num_nodes`?",
    );
    check(
        "env: {A: b}",
        "task.yaml:1:1: env: unknown field; did you mean `envs`?",
    );
    check(
        "resources:\n  accel: V100",
        "task.yaml:2:3: resources.accel: unknown field; did you mean `accelerators`?",
    );
    check(
        "resources:\n  disk_teir: best",
        "task.yaml:2:3: resources.disk_teir: unknown field; did you mean `disk_tier`?",
    );
    check(
        "colour: blue",
        "task.yaml:1:1: colour: unknown field; expected one of `name`, `workdir`, `num_nodes`, `envs`, \
         `secrets`, `file_mounts`, `setup`, `run`, `resources`, `estimated_runtime`, `inputs`, \
         `outputs`, `depends_on`, `pool`, `carbon_slack`, `cost_slack`",
    );
    check(
        "inputs:\n  - path: s3://x\n    size: 1\n    region: us-east-1",
        "task.yaml:4:5: inputs[0].region: unknown field; expected one of `path`, `size`, `infra`",
    );
    check(
        "outputs: {path: s3://x, size: 1, sise: 2}",
        "task.yaml:1:34: outputs.sise: unknown field; did you mean `size`?",
    );
    check(
        "file_mounts:\n  /x:\n    name: b\n    sorce: ~/d",
        "task.yaml:4:5: file_mounts./x.sorce: unknown field; did you mean `source`?",
    );
}

#[test]
fn misplaced_fields() {
    check(
        "accelerators: V100\ncpus: 4",
        "
        task.yaml:1:1: accelerators: `accelerators` is a resource field; move it under `resources:`
        task.yaml:2:1: cpus: `cpus` is a resource field; move it under `resources:`
        ",
    );
    check(
        "resources:\n  run: echo",
        "task.yaml:2:3: resources.run: `run` is a task field; move it out of `resources`",
    );
    check(
        "resources:\n  any_of:\n    - any_of: []",
        "task.yaml:3:7: resources.any_of[0].any_of: `any_of` cannot be nested inside another `any_of` or `ordered` entry",
    );
    check(
        "name: d\nrun: echo\ntasks:\n  - name: a",
        "task.yaml:2:1: run: `run` belongs to a task; move it into an entry of `tasks:`",
    );
}

#[test]
fn num_nodes() {
    check(
        "name: x\n\nnum_nodes: -2",
        "task.yaml:3:12: num_nodes: expected a positive integer, found `-2`",
    );
    check(
        "num_nodes: 0",
        "task.yaml:1:12: num_nodes: expected a positive integer, found `0`",
    );
    check(
        "num_nodes: 1.5",
        "task.yaml:1:12: num_nodes: expected a positive integer, found `1.5`",
    );
    check(
        "num_nodes: [1]",
        "task.yaml:1:12: num_nodes: expected a positive integer, found a list",
    );
    check(
        "num_nodes: 99999999999",
        "task.yaml:1:12: num_nodes: expected a positive integer, found `99999999999`",
    );
}

#[test]
fn slack_must_be_a_percentage() {
    check(
        "carbon_slack: -5%",
        "task.yaml:1:15: carbon_slack: expected a percentage such as `10%`, 0 or more, found `-5%`",
    );
    check(
        "cost_slack: lots",
        "task.yaml:1:13: cost_slack: expected a percentage such as `10%`, 0 or more, found `lots`",
    );
}

#[test]
fn yaml_syntax_errors() {
    check(
        "name: x\nresources:\n  cpus: [4\nrun: echo",
        "task.yaml:4:4: YAML syntax error: illegal placement of ':' indicator",
    );
    check(
        "a: b: c",
        "task.yaml:1:5: YAML syntax error: mapping values are not allowed in this context",
    );
    check(
        "name: \"unterminated",
        "task.yaml:1:7: YAML syntax error: while scanning a quoted scalar, found unexpected end of stream",
    );
    check_raw(
        "name: x\nresources:\n\tcpus: 4\n",
        "task.yaml:3:2: YAML syntax error: tabs disallowed within this context (block indentation)",
    );
    check(
        "name: x\n  run: 4",
        "task.yaml:2:6: YAML syntax error: mapping values are not allowed in this context",
    );
    check(
        "run: *nowhere",
        "task.yaml:1:6: YAML syntax error: while parsing node, found unknown anchor",
    );
}

#[test]
fn duplicate_keys() {
    check(
        "name: a\nrun: echo\nname: b",
        "task.yaml:3:1: duplicate key `name`; it is first given on line 1",
    );
    check(
        "envs:\n  A: 1\n  A: 2",
        "task.yaml:3:3: duplicate key `A`; it is first given on line 2",
    );
    check(
        "? [a]\n: b",
        "task.yaml:1:3: mapping keys must be strings, found a list",
    );
}

#[test]
fn empty_and_non_mapping_files() {
    let empty = "task.yaml: the file holds no task; expected a mapping of task fields such as `resources` and `run`";
    check_raw("", empty);
    check_raw("# just a comment\n\n   # another\n", empty);
    check_raw("---\n---\n", empty);
    check_raw("~", empty);
    check(
        "- name: a\n- name: b",
        "task.yaml:1:1: expected a mapping of task fields (`name`, `resources`, `run`, ...), found a list",
    );
    check(
        "just a string",
        "task.yaml:1:1: expected a mapping of task fields (`name`, `resources`, `run`, ...), found `just a string`",
    );
    check(
        "name: p\n---\n- x\n",
        "task.yaml:3:1: expected a mapping of task fields (`name`, `resources`, `run`, ...), found a list",
    );
}

#[test]
fn location_errors() {
    check(
        "resources:\n  infra: aws\n  region: us-east-1",
        "task.yaml:3:3: resources.region: `region` cannot be combined with `infra`; write the location as one `infra: cloud/region/zone`",
    );
    // A zone without its region, or a region without its cloud, is SkyPilot's wildcard form
    // and accepted (tests/spec_skypilot_forms.rs).
    check(
        "resources:\n  infra: gpc/us-central1",
        "task.yaml:2:10: resources.infra: unknown cloud `gpc`; did you mean `gcp`?",
    );
    check(
        "resources:\n  cloud: amazon",
        "task.yaml:2:10: resources.cloud: unknown cloud `amazon`; expected one of `aws`, `gcp`, `azure`, `kubernetes`, `local`, `lambda`, `runpod`, `oci`, `ibm`, `scp`, `vsphere`, `cudo`, `fluidstack`, `paperspace`, `do`, `nebius`, `vast`, `hyperbolic`, `ssh`, `seeweb`, `primeintellect`",
    );
    check(
        "resources:\n  infra: aws/us-east-1/us-east-1a/extra",
        "task.yaml:2:10: resources.infra: infra has 4 parts; expected at most `cloud/region/zone`, found `aws/us-east-1/us-east-1a/extra`",
    );
    check(
        "resources:\n  infra: [aws, gcp]",
        "task.yaml:2:10: resources.infra: expected a location such as `aws`, `aws/us-east-1` or `*`, found a list",
    );
}

#[test]
fn resource_value_errors() {
    check(
        r#"
        resources:
          cpus: eight
          memory: lots
          accelerators: V100:zero
          use_spot: maybe
          disk_size: -5
          ports: [80, "90-80", 70000]
          instance_type: [a]
          labels: {team: [a]}
          estimated_runtime: 3 weeks
        "#,
        "
        task.yaml:2:9: resources.cpus: expected a number of CPUs such as `8`, or `8+` for at least 8, found `eight`
        task.yaml:3:11: resources.memory: expected an amount of memory in GiB such as `32`, `32GB`, or `32+` for at least 32, found `lots`
        task.yaml:4:17: resources.accelerators: expected an accelerator such as `V100`, `V100:4` or `{V100: 4}`, or a list or set of them, found `V100:zero`
        task.yaml:5:13: resources.use_spot: expected `true` or `false`, found `maybe`
        task.yaml:6:14: resources.disk_size: expected a whole number of GiB such as `256` or `256GB`, found `-5`
        task.yaml:7:15: resources.ports[1]: expected a port (1-65535) or a range such as `8080-8090`, found `90-80`
        task.yaml:7:24: resources.ports[2]: expected a port (1-65535) or a range such as `8080-8090`, found `70000`
        task.yaml:8:18: resources.instance_type: expected a string, found a list
        task.yaml:9:18: resources.labels.team: expected a string, found a list
        task.yaml:10:22: resources.estimated_runtime: expected a positive duration such as `6h`, `30m` or `2d` (a bare number is hours), found `3 weeks`
        ",
    );
    check(
        "resources:\n  cpus: 0",
        "task.yaml:2:9: resources.cpus: expected a number of CPUs such as `8`, or `8+` for at least 8, found `0`",
    );
    check(
        "resources:\n  accelerators: {V100: -1}",
        "task.yaml:2:24: resources.accelerators.V100: expected a positive accelerator count such as `1`, `8` or `0.5`, found `-1`",
    );
    check(
        "resources:\n  accelerators: []",
        "task.yaml:2:17: resources.accelerators: expected an accelerator such as `V100`, `V100:4` or `{V100: 4}`, or a list or set of them, found a list",
    );
    check(
        "resources:\n  accelerators: [V100, [A100]]",
        "task.yaml:2:24: resources.accelerators[1]: expected an accelerator such as `V100` or `A100:2`, found a list",
    );
    check(
        "resources: [cpus]",
        "task.yaml:1:12: resources: expected a mapping of resource requirements, found a list",
    );
}

#[test]
fn image_id_errors() {
    check(
        "resources:\n  image_id: {us-east-1: ami-1}",
        "task.yaml:2:13: resources.image_id: an `image_id` per region needs a cloud; add `infra: <cloud>`",
    );
    check(
        "resources:\n  infra: aws/eu-west-1\n  image_id: {us-east-1: ami-1}",
        "task.yaml:3:13: resources.image_id: no image is given for region `eu-west-1`, where the task must run",
    );
}

#[test]
fn any_of_and_ordered_errors() {
    check(
        "resources:\n  any_of: [{cpus: 2}]\n  ordered: [{cpus: 4}]",
        "task.yaml:3:3: resources.ordered: `any_of` and `ordered` cannot be used together; pick one",
    );
    check(
        "resources:\n  any_of: {cpus: 2}",
        "task.yaml:2:11: resources.any_of: expected a non-empty list of resource mappings, found a mapping",
    );
    check(
        "resources:\n  ordered: []",
        "task.yaml:2:12: resources.ordered: expected a non-empty list of resource mappings, found a list",
    );
    check(
        "resources:\n  any_of:\n    - cpus: 2\n    - V100",
        "task.yaml:4:7: resources.any_of[1]: expected a mapping of resource requirements, found `V100`",
    );
    check(
        r#"
        resources:
          any_of:
            - cpus: 4
            - cpus: four
            - accelerators: V100:1
              cpus: 4+
        "#,
        "task.yaml:4:13: resources.any_of[1].cpus: expected a number of CPUs such as `8`, or `8+` for at least 8, found `four`",
    );
}

#[test]
fn outer_field_errors_are_reported_once() {
    check(
        "resources:\n  memory: heaps\n  any_of:\n    - cpus: 2\n    - cpus: 4\n    - cpus: 8",
        "task.yaml:2:11: resources.memory: expected an amount of memory in GiB such as `32`, `32GB`, or `32+` for at least 32, found `heaps`",
    );
}

#[test]
fn task_value_errors() {
    check(
        r#"
        name: [x]
        workdir: 7
        envs:
          1BAD: x
          GOOD: [a, b]
        secrets: token
        file_mounts:
          /a:
          /b: [x]
        setup: {a: b}
        estimated_runtime: soon
        "#,
        "
        task.yaml:1:7: name: expected a string, found a list
        task.yaml:4:3: envs.1BAD: expected a variable name of letters, digits and `_`, not starting with a digit
        task.yaml:5:9: envs.GOOD: expected a string, number or boolean (or null to require it at launch), found a list
        task.yaml:6:10: secrets: expected a mapping of variable names to values, found `token`
        task.yaml:8:5: file_mounts./a: expected a local path, a bucket URI, or a storage mapping (`name`, `source`, `store`, `mode`), found nothing (null)
        task.yaml:9:7: file_mounts./b: expected a local path, a bucket URI, or a storage mapping (`name`, `source`, `store`, `mode`), found a list
        task.yaml:10:8: setup: expected a shell command (use `|` for several lines), found a mapping
        task.yaml:11:20: estimated_runtime: expected a positive duration such as `6h`, `30m` or `2d` (a bare number is hours), found `soon`
        ",
    );
}

#[test]
fn storage_mount_errors() {
    check(
        r#"
        file_mounts:
          /a:
            name: b
            mode: mnt
          /c:
            source: []
          /d:
            store: s4
            name: d
          /e:
            mode: COPY
        "#,
        "
        task.yaml:4:11: file_mounts./a.mode: unknown mode `mnt`; expected one of `MOUNT`, `COPY`, `MOUNT_CACHED`
        task.yaml:6:13: file_mounts./c.source: expected a path or bucket URI, or a non-empty list of paths, found a list
        task.yaml:8:12: file_mounts./d.store: unknown store `s4`; did you mean `s3`?
        task.yaml:11:5: file_mounts./e: a storage mount needs a `name` or a `source`
        ",
    );
    check(
        "file_mounts:\n  /a: {name: b, mode: MOUNTED}",
        "task.yaml:2:23: file_mounts./a.mode: unknown mode `MOUNTED`; did you mean `MOUNT`?",
    );
}

#[test]
fn data_errors() {
    check(
        r#"
        inputs:
          - path: s3://bucket/x
          - size: 10GB
          - path: gs://b/y
            size: huge
          - path: s3://b/z
            size: 1GB
            infra: aws/a/b/c
          - just-a-string
        "#,
        "
        task.yaml:2:5: inputs[0]: missing `size`; give the size of the data, such as `100GB`
        task.yaml:3:5: inputs[1]: missing `path`; give where the data lives, such as `s3://bucket/data`
        task.yaml:5:11: inputs[2].size: expected a size such as `100GB`, `1.5TB` or `500MB` (a bare number is GB), found `huge`
        task.yaml:8:12: inputs[3].infra: infra has 4 parts; expected at most `cloud/region/zone`, found `aws/a/b/c`
        task.yaml:9:5: inputs[4]: expected a mapping such as `{path: s3://bucket/data, size: 100GB}`, found `just-a-string`
        ",
    );
    check(
        "inputs:\n  s3://bucket/x:",
        "task.yaml:2:3: inputs.s3://bucket/x: missing size; give the size of the data, such as `100GB`",
    );
    check(
        "inputs: s3://x",
        "task.yaml:1:9: inputs: expected a list of `{path, size}` mappings, or a mapping of URIs to sizes, found `s3://x`",
    );
    check(
        "outputs: {s3://a: 1, s3://b: 2}",
        "task.yaml:1:10: outputs: a task has one output, found 2; expected a size or `{path, size}`",
    );
    check(
        "outputs: {path: s3://a}",
        "task.yaml:1:10: outputs: missing `size`; give the size of the data, such as `50GB`",
    );
    check(
        "outputs: lots",
        "task.yaml:1:10: outputs: expected a size such as `100GB`, `1.5TB` or `500MB` (a bare number is GB), found `lots`",
    );
    check(
        "outputs: [1GB]",
        "task.yaml:1:10: outputs: expected a size such as `50GB`, or `{path: ..., size: ...}`, found a list",
    );
    check(
        "outputs:\n  s3://a:",
        "task.yaml:2:3: outputs.s3://a: missing size; give the size of the data, such as `50GB`",
    );
}

#[test]
fn dag_errors() {
    check(
        r#"
        tasks:
          - name: a
          - run: echo
          - name: a
          - name: c
            depends_on: [b, aa, c]
          - name: d
            depends_on: zzz
          - 42
        "#,
        "
        task.yaml:3:5: tasks[1]: every task in a DAG needs a `name`, so that `depends_on` can refer to it
        task.yaml:4:11: tasks[2].name: duplicate task name `a`; it is first used on line 2
        task.yaml:6:18: tasks[3].depends_on[0]: unknown task `b`; did you mean `a`?
        task.yaml:6:21: tasks[3].depends_on[1]: unknown task `aa`; did you mean `a`?
        task.yaml:6:25: tasks[3].depends_on[2]: task `c` depends on itself
        task.yaml:8:17: tasks[4].depends_on: unknown task `zzz`; the tasks are `a`, `c`, `d`
        task.yaml:9:5: tasks[5]: expected a mapping of task fields (`name`, `resources`, `run`, ...), found `42`
        ",
    );
    check(
        r#"
        name: loop
        tasks:
          - name: a
            depends_on: c
          - name: b
            depends_on: a
          - name: c
            depends_on: [b]
          - name: d
            depends_on: [a]
        "#,
        "task.yaml:6:17: tasks[1].depends_on: dependency cycle: a -> c -> b -> a (each task depends on the next)",
    );
    check(
        "tasks:\n  - name: a\n    depends_on: b\n  - name: b\n    depends_on: a",
        "task.yaml:5:17: tasks[1].depends_on: dependency cycle: a -> b -> a (each task depends on the next)",
    );
    check(
        "tasks: []",
        "task.yaml:1:8: tasks: expected a non-empty list of tasks, found a list",
    );
    check(
        "tasks: {a: 1}",
        "task.yaml:1:8: tasks: expected a non-empty list of tasks, found a mapping",
    );
    check(
        "name: x\ntask:\n  - name: a\ntasks:\n  - name: b",
        "task.yaml:2:1: task: unknown field; did you mean `tasks`?",
    );
    check(
        "tasks:\n  - name: a\n    depends_on: [[b]]",
        "task.yaml:3:18: tasks[0].depends_on[0]: expected a task name, found a list",
    );
}

#[test]
fn depends_on_outside_a_dag() {
    check(
        "name: a\ndepends_on: b",
        "task.yaml:2:1: depends_on: `depends_on` is only allowed for tasks in a `tasks:` list (pipeline documents run in order)",
    );
    check(
        "name: p\n---\nname: a\n---\ntasks: []",
        "task.yaml:5:1: tasks: a `tasks:` DAG must be the only document in its file; pipeline documents are tasks",
    );
}

#[test]
fn errors_from_several_pipeline_documents_are_all_reported() {
    check(
        "name: p\n---\nname: a\nnum_nodes: 0\n---\nname: b\nresources:\n  cpus: x",
        "
        task.yaml:4:12: num_nodes: expected a positive integer, found `0`
        task.yaml:8:9: resources.cpus: expected a number of CPUs such as `8`, or `8+` for at least 8, found `x`
        ",
    );
}

#[test]
fn unsupported_tags() {
    check(
        "name: !custom x",
        "task.yaml:1:7: unsupported YAML tag `!custom`; only the standard `!!` tags are",
    );
}

#[test]
fn hostile_input_is_refused() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (name, previous) in ["b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g"])
    {
        let refs = vec![format!("*{previous}"); 10].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let errors = parse_dag(&bomb, "bomb.yaml").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "bomb.yaml:5:32: the file expands to more than 100000 values (are aliases nested?)"
    );

    let deep: String = (0..80)
        .map(|depth| format!("{}k{depth}:\n", "  ".repeat(depth)))
        .collect();
    let errors = parse_dag(&deep, "deep.yaml").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "deep.yaml:65:129: lists and mappings nest deeper than 64 levels"
    );

    let huge = "#".repeat(5 << 20);
    let errors = parse_dag(&huge, "huge.yaml").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "huge.yaml: the file is 5242880 bytes; specs larger than 4194304 bytes are not accepted"
    );
}

#[test]
fn error_fields() {
    let errors = parse_dag("resources:\n  cpus: many", "dir/t.yaml").unwrap_err();
    assert_eq!(
        errors.0,
        [SpecError {
            file: "dir/t.yaml".to_owned(),
            line: Some(2),
            column: Some(9),
            path: "resources.cpus".to_owned(),
            message: "expected a number of CPUs such as `8`, or `8+` for at least 8, found `many`"
                .to_owned(),
        }]
    );
    // Warnings do not survive errors, and errors are never empty.
    assert!(parse_dag_with_warnings("resources:\n  disk_tier: x\n  cpus: y", "t").is_err());
}

#[test]
fn long_values_are_abbreviated_in_messages() {
    let long = "x".repeat(100);
    check_raw(
        &format!("num_nodes: {long}"),
        &format!(
            "task.yaml:1:12: num_nodes: expected a positive integer, found `{}…`",
            "x".repeat(40)
        ),
    );
    check_raw(
        "num_nodes: |\n  first line\n  second line\n",
        "task.yaml:2:3: num_nodes: expected a positive integer, found `first line…`",
    );
}

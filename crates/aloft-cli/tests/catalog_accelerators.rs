//! Black-box tests of the accelerators people ask for (issue 10): `aloft catalog gpus` lists
//! them on the clouds that sell them, and dry-runs of tasks naming them plan, all on the catalog
//! compiled into the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!(
        "aloft-catalog-accelerators-test-{}",
        std::process::id()
    ))
}

/// Runs `aloft` with a private cache and home and no ambient catalog, so only the bundled
/// catalog is seen and no user state is touched.
fn aloft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(args)
        .current_dir(workspace())
        .env("ALOFT_CACHE_DIR", scratch().join("cache"))
        .env("ALOFT_HOME", scratch().join("home"))
        .env("ALOFT_LOCAL_PREFIX", "cattest")
        .env("ALOFT_LOCAL_BRIDGE", "cattestbr")
        .env("ALOFT_LOCAL_SUBNET", "10.251.78.0/24")
        .env_remove("ALOFT_CATALOG")
        .output()
        .expect("aloft runs")
}

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

/// `(cloud, instance type)` of each row of `aloft catalog gpus NAME -o json`.
fn gpu_rows(name: &str) -> Vec<(String, String)> {
    let output = aloft(&["catalog", "gpus", name, "-o", "json"]);
    assert!(output.status.success(), "{name}: {}", stderr(&output));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["cloud"].as_str().unwrap().to_owned(),
                row["instance_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn catalog_gpus_h100_lists_aws_gcp_and_azure_types() {
    let rows = gpu_rows("H100");
    for (cloud, instance_type) in [
        ("aws", "p5.4xlarge"),
        ("aws", "p5.48xlarge"),
        ("gcp", "a3-highgpu-1g"),
        ("gcp", "a3-highgpu-8g"),
        ("azure", "Standard_NC40ads_H100_v5"),
        ("azure", "Standard_ND96isr_H100_v5"),
    ] {
        assert!(
            rows.contains(&(cloud.to_owned(), instance_type.to_owned())),
            "{cloud} {instance_type} missing from {rows:?}"
        );
    }
    // The table view shows them too.
    let table = stdout(&aloft(&["catalog", "gpus", "H100"]));
    for instance_type in ["p5.48xlarge", "a3-highgpu-8g", "Standard_ND96isr_H100_v5"] {
        assert!(table.contains(instance_type), "{instance_type}: {table}");
    }
}

#[test]
fn catalog_gpus_lists_each_new_accelerator_on_its_clouds() {
    for (name, clouds) in [
        ("H200", &["aws", "azure", "gcp"][..]),
        ("A100-80GB", &["aws", "azure", "gcp"]),
        ("L4", &["aws", "gcp"]),
        ("L40S", &["aws"]),
        ("MI300X", &["azure"]),
        ("Inferentia2", &["aws"]),
        ("Trainium", &["aws"]),
        ("tpu-v5e-8", &["gcp"]),
    ] {
        let mut seen: Vec<String> = gpu_rows(name).into_iter().map(|(cloud, _)| cloud).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, clouds, "{name}");
    }
}

/// The chosen row's `(cloud, instance type, accelerator)` of a dry-run, from its JSON plan.
fn chosen(spec_name: &str, yaml: &str) -> (String, String, String) {
    let spec = write_spec(spec_name, yaml);
    let output = aloft(&["launch", "--dryrun", "-o", "json", spec.to_str().unwrap()]);
    assert!(output.status.success(), "{spec_name}: {}", stderr(&output));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let task = &plan["best"]["tasks"][0];
    (
        task["cloud"].as_str().unwrap().to_owned(),
        task["instance_type"].as_str().unwrap().to_owned(),
        task["accelerator"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[test]
fn tasks_asking_for_alternatives_among_the_new_accelerators_plan() {
    // The list form: either accelerator will do; the cheapest offer wins.
    let (_, _, accelerator) = chosen(
        "l4-or-a10g.yaml",
        "name: infer\nresources:\n  accelerators: [L4:1, A10G:1]\nrun: echo hi\n",
    );
    assert!(
        ["L4", "A10G"].contains(&accelerator.as_str()),
        "{accelerator}"
    );
    // The same with `any_of`, on accelerators only one cloud sells.
    let (cloud, instance_type, accelerator) = chosen(
        "a10g-or-l40s.yaml",
        "name: infer\nresources:\n  any_of:\n    - accelerators: A10G:1\n    - accelerators: L40S:1\nrun: echo hi\n",
    );
    assert_eq!(cloud, "aws");
    assert!(
        ["A10G", "L40S"].contains(&accelerator.as_str()),
        "{instance_type} {accelerator}"
    );
    // And each single-cloud accelerator lands on its cloud.
    for (accelerators, cloud) in [
        ("MI300X:8", "azure"),
        ("Inferentia2:1", "aws"),
        ("Trainium:16", "aws"),
        ("[H100:8, H200:8]", ""),
    ] {
        let (planned_on, instance_type, _) = chosen(
            "one.yaml",
            &format!("name: one\nresources:\n  accelerators: {accelerators}\nrun: echo hi\n"),
        );
        assert!(
            cloud.is_empty() || planned_on == cloud,
            "{accelerators}: {planned_on} {instance_type}"
        );
    }
}

#[test]
fn a_task_asking_for_tpu_v5e_8_plans_on_gcp() {
    for spelling in ["tpu-v5e-8", "tpu-v5litepod-8"] {
        let spec = write_spec(
            &format!("{spelling}.yaml"),
            &format!("name: tpu\nresources:\n  accelerators: {spelling}\nrun: echo hi\n"),
        );
        let output = aloft(&["launch", "--dryrun", spec.to_str().unwrap()]);
        assert!(output.status.success(), "{spelling}: {}", stderr(&output));
        let text = stdout(&output);
        let chosen = text
            .lines()
            .find(|line| line.contains('✔'))
            .unwrap_or_else(|| panic!("{spelling}: no chosen row in {text}"));
        assert!(
            chosen.trim_start().starts_with("gcp (") && chosen.contains("tpu-v5litepod-8"),
            "{spelling}: {chosen}"
        );
    }
}

#[test]
fn a_multi_host_tpu_slice_is_refused_with_the_reason() {
    let spec = write_spec(
        "tpu-pod.yaml",
        "name: pod\nresources:\n  accelerators: tpu-v5e-16\nrun: echo hi\n",
    );
    let output = aloft(&["launch", "--dryrun", spec.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("single-host TPU slices"),
        "{}",
        stderr(&output)
    );
    let listing = aloft(&["catalog", "gpus", "tpu-v4-32"]);
    assert!(!listing.status.success());
    assert!(
        stderr(&listing).contains("single-host TPU slices"),
        "{}",
        stderr(&listing)
    );
}

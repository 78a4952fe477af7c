//! Black-box tests of the price check (issue 11 part 4): `--catalog-outliers keep|drop|warn`
//! (and `ALOFT_CATALOG_OUTLIERS`) beside `--catalog`, and `aloft catalog --check`, on the
//! catalog crate's fixture with one planted outlier (`Standard_F8ams_v6` on demand at
//! $0.0898/h in newzealandnorth, line 4, where its other regions ask $0.462 to $0.882).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn outlier_catalog() -> PathBuf {
    workspace().join("crates/aloft-catalog/tests/fixtures/outliers")
}

/// A directory of one's own for one run of `aloft` (its home, cache and task file), removed
/// when dropped: tests run in parallel, and one rewriting a shared task file once let another
/// read it while it was still empty.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "aloft-catalog-check-test-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `aloft` with a private cache and home and no ambient catalog or policy; `env` adds
/// variables.
fn aloft_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let scratch = Scratch::new();
    Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(args)
        .current_dir(workspace())
        .env("ALOFT_CACHE_DIR", scratch.0.join("cache"))
        .env("ALOFT_HOME", scratch.0.join("home"))
        .env_remove("ALOFT_CATALOG")
        .env_remove("ALOFT_CATALOG_OUTLIERS")
        .envs(env.iter().copied())
        .output()
        .expect("aloft runs")
}

fn aloft(args: &[&str]) -> Output {
    aloft_with_env(args, &[])
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A task for 8 vCPUs and 64 GiB on Azure, where the fixture's types compete, written in
/// `scratch`.
fn azure_task(scratch: &Scratch) -> PathBuf {
    let path = scratch.0.join("azure-8-64.yaml");
    std::fs::write(
        &path,
        "name: outliers\nresources:\n  infra: azure\n  cpus: 8\n  memory: 64\nrun: echo hi\n",
    )
    .unwrap();
    path
}

/// `(region, instance type, hourly price)` the dry-run chose, and its stderr.
fn planned(extra: &[&str], env: &[(&str, &str)]) -> ((String, String, f64), String) {
    let scratch = Scratch::new();
    let task = azure_task(&scratch);
    let catalog = outlier_catalog();
    let mut args = vec![
        "launch",
        "--dryrun",
        task.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    let output = aloft_with_env(&args, env);
    assert!(output.status.success(), "{}", stderr(&output));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON plan");
    let task = &plan["best"]["tasks"][0];
    (
        (
            task["region"].as_str().unwrap().to_owned(),
            task["instance_type"].as_str().unwrap().to_owned(),
            task["hourly_price"].as_f64().unwrap(),
        ),
        stderr(&output),
    )
}

#[test]
fn by_default_the_outlier_is_planned_on_but_warned_about_with_file_and_line() {
    let ((region, instance_type, price), stderr) = planned(&[], &[]);
    assert_eq!(
        (region.as_str(), instance_type.as_str(), price),
        ("newzealandnorth", "Standard_F8ams_v6", 0.0898)
    );
    let warning = stderr
        .lines()
        .find(|line| line.contains("price outlier kept"))
        .unwrap_or_else(|| panic!("no outlier warning in {stderr}"));
    assert!(
        warning.starts_with("warning: ")
            && warning.contains("outliers/azure/vms.csv:4: ")
            && warning.contains("Standard_F8ams_v6 in newzealandnorth"),
        "{warning}"
    );
    assert!(
        stderr.contains("aloft catalog --check") && stderr.contains("--catalog-outliers"),
        "the warning says how to see them all and how to decide: {stderr}"
    );
}

#[test]
fn catalog_outliers_drop_moves_the_plan_to_a_genuine_price() {
    let ((region, instance_type, price), stderr) = planned(&["--catalog-outliers", "drop"], &[]);
    assert_eq!(
        (region.as_str(), instance_type.as_str(), price),
        ("centralindia", "Standard_F8ams_v6", 0.462)
    );
    assert!(!stderr.contains("price outlier kept"), "{stderr}");
    assert!(stderr.contains("dropped 1 price(s)"), "{stderr}");
    // The environment variable says the same.
    let (from_env, _) = planned(&[], &[("ALOFT_CATALOG_OUTLIERS", "drop")]);
    assert_eq!(from_env.0, "centralindia");
}

#[test]
fn catalog_outliers_keep_plans_on_the_outlier_silently() {
    let ((region, _, _), stderr) = planned(&[], &[("ALOFT_CATALOG_OUTLIERS", "keep")]);
    assert_eq!(region, "newzealandnorth");
    assert!(!stderr.contains("outlier"), "{stderr}");
    // The flag overrides the environment.
    let ((region, _, _), _) = planned(
        &["--catalog-outliers", "drop"],
        &[("ALOFT_CATALOG_OUTLIERS", "keep")],
    );
    assert_eq!(region, "centralindia");
}

#[test]
fn an_unknown_outlier_policy_is_refused_naming_the_choices() {
    let output = aloft(&["catalog", "--catalog-outliers", "ignore"]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("ignore") && text.contains("keep, drop or warn"),
        "{text}"
    );
}

#[test]
fn catalog_check_lists_each_flagged_row_with_file_line_price_median_and_ratio() {
    let catalog = outlier_catalog();
    let output = aloft(&["catalog", "--check", "--catalog", catalog.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("ROW") && lines[0].contains("MEDIAN $/h") && lines[0].contains("RATIO"),
        "{text}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert!(row[0].ends_with("outliers/azure/vms.csv:4"), "{text}");
    assert_eq!(
        &row[1..],
        [
            "azure",
            "Standard_F8ams_v6",
            "-",
            "newzealandnorth",
            "on-demand",
            "$0.0898",
            "$0.7160",
            "0.13x",
            "5",
            "kept"
        ],
        "{text}"
    );
    assert!(
        text.contains("1 price flagged (more than 4x from its instance type's median"),
        "{text}"
    );
    // The table replaces the warnings: they are not repeated on stderr.
    assert!(
        !stderr(&output).contains("price outlier kept"),
        "{}",
        stderr(&output)
    );

    let dropped = aloft(&[
        "catalog",
        "--check",
        "--catalog",
        catalog.to_str().unwrap(),
        "--catalog-outliers",
        "drop",
    ]);
    assert!(
        stdout(&dropped)
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("dropped")
    );
}

#[test]
fn catalog_check_json_has_one_object_per_flagged_row() {
    let catalog = outlier_catalog();
    let output = aloft(&[
        "catalog",
        "--check",
        "--catalog",
        catalog.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert!(
        row["file"]
            .as_str()
            .unwrap()
            .ends_with("outliers/azure/vms.csv")
    );
    assert_eq!(row["line"], 4);
    assert_eq!(row["cloud"], "azure");
    assert_eq!(row["instance_type"], "Standard_F8ams_v6");
    assert_eq!(row["region"], "newzealandnorth");
    assert_eq!(row["zone"], serde_json::Value::Null);
    assert_eq!(row["kind"], "on_demand");
    assert_eq!(row["price"], 0.0898);
    assert_eq!(row["median"], 0.716);
    assert!((row["ratio"].as_f64().unwrap() - 0.0898 / 0.716).abs() < 1e-12);
    assert_eq!(row["n_regions"], 5);
    assert_eq!(row["dropped"], false);
}

#[test]
fn catalog_check_needs_an_imported_catalog() {
    let output = aloft(&["catalog", "--check"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--catalog"), "{}", stderr(&output));
    let catalog = outlier_catalog();
    let output = aloft(&[
        "catalog",
        "--check",
        "--cpus",
        "8",
        "--catalog",
        catalog.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--cpus"), "{}", stderr(&output));
}

//! Black-box tests of the `aloft` binary: run it as a user would and check what it prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalog")
}

/// Runs `aloft` with a private cache and home, local-cloud names of its own, and no ambient
/// catalog, so no test here can touch a user's state or the default local cloud.
fn aloft(args: &[&str]) -> Output {
    let scratch = std::env::temp_dir().join(format!("aloft-cli-test-{}", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(args)
        .current_dir(workspace())
        .env("ALOFT_CACHE_DIR", scratch.join("cache"))
        .env("ALOFT_HOME", scratch.join("home"))
        .env("ALOFT_LOCAL_PREFIX", "clitest")
        .env("ALOFT_LOCAL_BRIDGE", "clitestbr")
        .env("ALOFT_LOCAL_SUBNET", "10.251.77.0/24")
        .env_remove("ALOFT_CATALOG")
        .env_remove("ALOFT_CARBON_INTENSITY")
        // Plans at the annual carbon averages unless a test gives `--start-time`: "now" would
        // make the gCO2 figures depend on the hour the tests run.
        .env("ALOFT_START_TIME", "annual")
        // Never let the AWS SDK look for credentials beyond loopback (instance metadata).
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("ALOFT_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "not-a-key")
        .env("AWS_SECRET_ACCESS_KEY", "not-a-secret")
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
    let dir = std::env::temp_dir().join(format!("aloft-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn version_help_and_completions() {
    let version = aloft(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        stdout(&version).trim(),
        format!("aloft {}", env!("CARGO_PKG_VERSION"))
    );
    let help = aloft(&["--help"]);
    assert!(stdout(&help).contains("aloft launch --dryrun examples/hello.yaml"));
    let completions = aloft(&["completions", "bash"]);
    assert!(completions.status.success());
    assert!(stdout(&completions).contains("complete -F"));
}

#[test]
fn every_example_plans_on_the_bundled_catalog() {
    for example in ["hello", "train-gpu", "pipeline", "dag"] {
        let path = format!("examples/{example}.yaml");
        let output = aloft(&["launch", "--dryrun", &path]);
        assert!(output.status.success(), "{example}: {}", stderr(&output));
        let text = stdout(&output);
        assert!(
            text.contains("CHOSEN") && text.contains('✔'),
            "{example}: {text}"
        );
        assert!(text.contains("Optimizing for cost"), "{example}: {text}");
    }
}

#[test]
fn the_plan_table_on_a_fixed_catalog() {
    let spec = write_spec(
        "snapshot.yaml",
        "name: snap\nresources:\n  cpus: 8+\n  memory: 32+\nrun: echo hi\n",
    );
    let catalog = fixture_catalog();
    let output = aloft(&[
        "launch",
        "--dryrun",
        spec.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "--alternatives",
        "2",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let expected = "\
Considered resources for `snap` (1 node, runtime 1h (assumed)):
 INFRA                INSTANCE         vCPUs  Mem(GB)  GPUS  SPOT  $/h     EST. COST  gCO2  CHOSEN
 aws (us-east-1a)     m6i.2xlarge      8      32       -     -     0.3840  $0.38      10    ✔
 azure (eastus)       Standard_D8s_v5  8      32       -     -     0.3840  $0.38      10
 gcp (us-central1-a)  n2-standard-8    8      32       -     -     0.3885  $0.39      11

Optimizing for cost: estimated total $0.38 (egress $0.00), finish time 1h, machine time 1h, 10 gCO2.
Next-best plans:
  2. $0.38 1h: azure (eastus) Standard_D8s_v5
  3. $0.39 1h: gcp (us-central1-a) n2-standard-8
";
    assert_eq!(stdout(&output), expected);
}

#[test]
fn the_carbon_objective_and_limit_on_a_fixed_catalog() {
    let spec = write_spec(
        "carbon.yaml",
        "name: snap\nresources:\n  cpus: 8+\n  memory: 32+\nrun: echo hi\n",
    );
    let catalog = fixture_catalog();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "launch",
            "--dryrun",
            spec.to_str().unwrap(),
            "--catalog",
            catalog.to_str().unwrap(),
            "--optimize",
            "carbon",
        ];
        args.extend_from_slice(extra);
        aloft(&args)
    };
    // us-west-2 (hydro) beats the cheaper Virginia places on carbon.
    let output = run(&["--alternatives", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains(" aws (us-west-2a)     m6i.2xlarge      8      32       -     -     0.4280  $0.43      5     ✔"),
        "{text}"
    );
    assert!(
        text.contains("Optimizing for carbon: estimated total $0.43"),
        "{text}"
    );
    assert!(text.contains("  2. $0.38 1h 10 gCO2: "), "{text}");
    // A limit between the best and the next-best: the best stays, the alternative goes.
    let output = run(&["--alternatives", "1", "--max-carbon", "8"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stdout(&output).contains("Next-best plans"),
        "{}",
        stdout(&output)
    );
    // Below the best: refused, naming the limit and the lowest achievable.
    let output = run(&["--max-carbon", "3"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("the lowest-carbon plan emits 5 gCO2, over the limit of 3 g"),
        "{}",
        stderr(&output)
    );
    // Under the cost objective too: the cheaper Virginia places emit 10 g, over the limit.
    let output = aloft(&[
        "launch",
        "--dryrun",
        spec.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "--max-carbon",
        "8",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Optimizing for cost: estimated total $0.43"),
        "{}",
        stdout(&output)
    );
    // The JSON carries the figures per plan and per task.
    let output = run(&["-o", "json"]);
    let document: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("valid JSON");
    let best = &document["best"];
    assert_eq!(best["objective"], "carbon");
    let carbon = best["carbon_g"].as_f64().unwrap();
    assert!((4.5..5.5).contains(&carbon), "{carbon}");
    assert!(best["energy_kwh"].as_f64().unwrap() > 0.0);
    assert_eq!(best["carbon_estimated"], false);
    let task = &best["tasks"][0];
    assert_eq!(task["carbon_g"].as_f64().unwrap(), carbon);
    assert!(task["carbon_g_per_kwh"].as_f64().unwrap() > 0.0);
}

#[test]
fn json_plans_follow_the_documented_schema() {
    let output = aloft(&[
        "launch",
        "--dryrun",
        "examples/dag.yaml",
        "-o",
        "json",
        "--optimize",
        "time",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let document: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("valid JSON");
    assert_eq!(document["schema_version"], 1);
    let best = &document["best"];
    assert_eq!(best["objective"], "time");
    let tasks = best["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    for task in tasks {
        for field in [
            "cloud",
            "region",
            "instance_type",
            "hourly_price",
            "estimated_runtime_seconds",
            "estimated_cost",
            "spot",
        ] {
            assert!(!task[field].is_null(), "task lacks {field}: {task}");
        }
    }
    let compute: f64 = tasks
        .iter()
        .map(|t| t["estimated_cost"].as_f64().unwrap())
        .sum();
    let edges: f64 = best["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cost"].as_f64().unwrap())
        .sum();
    let total = best["total_cost"].as_f64().unwrap();
    assert!(
        (compute + edges - total).abs() < 1e-6,
        "totals add up: {compute} + {edges} vs {total}"
    );
    assert_eq!(
        best["edges"].as_array().unwrap().len(),
        4,
        "the diamond has four edges"
    );
    assert!(document["stats"]["candidates"].as_u64().unwrap() > 0);
    // The diamond's two middle tasks run at the same time: it finishes before the sum.
    let finish = best["finish_seconds"].as_f64().unwrap();
    assert!(finish > 0.0 && finish < best["total_seconds"].as_f64().unwrap());
    assert!(best["machine_hours"].as_f64().unwrap() > 0.0);
    assert_eq!(document["optimality"]["proven_optimal"], true);
    assert_eq!(document["optimality"]["gap"], 0.0);
}

#[test]
fn a_bad_spec_names_file_line_and_field() {
    let spec = write_spec(
        "bad.yaml",
        "name: x\nresources:\n  acelerators: V100:4\nrun: echo\n",
    );
    let output = aloft(&["launch", "--dryrun", spec.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let expected = format!(
        "{}:3:3: resources.acelerators: unknown field; did you mean `accelerators`?",
        spec.display()
    );
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
}

#[test]
fn infeasible_requests_say_which_constraint() {
    let spec = write_spec("many-gpus.yaml", "resources:\n  accelerators: V100:64\n");
    let output = aloft(&["launch", "--dryrun", spec.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no instance type in the catalog has accelerators V100:64"),
        "{}",
        stderr(&output)
    );

    let spec = write_spec("cap.yaml", "resources:\n  cpus: 8+\n");
    let output = aloft(&[
        "launch",
        "--dryrun",
        spec.to_str().unwrap(),
        "--max-hourly-price",
        "0.01",
    ]);
    assert!(
        stderr(&output).contains("over the price cap of $0.0100/h"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn blocking_moves_the_plan_and_bad_flags_are_reported() {
    let spec = write_spec("block.yaml", "resources:\n  cpus: 8+\n  memory: 32+\n");
    let catalog = fixture_catalog();
    let args = |extra: &[&str]| {
        let mut all = vec![
            "launch",
            "--dryrun",
            spec.to_str().unwrap(),
            "-o",
            "json",
            "--catalog",
            catalog.to_str().unwrap(),
        ];
        all.extend_from_slice(extra);
        aloft(&all)
    };
    let chosen = |output: &Output| -> String {
        let document: serde_json::Value = serde_json::from_str(&stdout(output)).unwrap();
        let task = &document["best"]["tasks"][0];
        format!(
            "{}/{}",
            task["cloud"].as_str().unwrap(),
            task["region"].as_str().unwrap()
        )
    };
    assert_eq!(chosen(&args(&[])), "aws/us-east-1");
    assert_eq!(chosen(&args(&["--block", "aws"])), "azure/eastus");
    assert_eq!(
        chosen(&args(&["--block", "aws", "--block", "azure"])),
        "gcp/us-central1"
    );
    let bad = args(&["--block", "aws/us-east-1/us-east-1a/x"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("--block `aws/us-east-1/us-east-1a/x`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn money_flags_reject_what_is_not_money() {
    for bad in ["nan", "inf", "ten"] {
        let output = aloft(&["launch", "--dryrun", "examples/hello.yaml", "--budget", bad]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&output).contains("expected an amount of dollars"),
            "{}",
            stderr(&output)
        );
    }
    let output = aloft(&[
        "launch",
        "--dryrun",
        "examples/hello.yaml",
        "--max-hourly-price=-1",
    ]);
    assert!(
        stderr(&output).contains("expected an amount of dollars"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let output = aloft(&["launch", "--dryrun", "no/such/task.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot read task file no/such/task.yaml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_pipeline_cannot_be_detached_and_says_why() {
    let output = aloft(&["launch", "-d", "examples/pipeline.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("a DAG or pipeline cannot be detached yet")
            && stderr(&output).contains("(3 tasks)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_bad_local_cloud_config_names_the_file_and_place() {
    let home = std::env::temp_dir()
        .join(format!("aloft-cli-test-{}", std::process::id()))
        .join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("local.yaml"),
        "zones: [a]
instance_typez: []
",
    )
    .unwrap();
    // The launch asks the home's server, which the command starts: stopped afterwards, even
    // if an assertion fails.
    struct StopServer;
    impl Drop for StopServer {
        fn drop(&mut self) {
            let _ = aloft(&["api", "stop"]);
        }
    }
    let _stop = StopServer;
    let output = aloft(&["launch", "examples/hello.yaml"]);
    let _ = std::fs::remove_file(home.join("local.yaml"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr(&output);
    assert!(
        stderr.contains("local.yaml") && stderr.contains("instance_typez"),
        "{stderr}"
    );
    assert!(stderr.contains("line 2"), "{stderr}");
}

#[test]
fn check_says_per_cloud_whether_it_is_usable_and_why_not() {
    let output = aloft(&["check", "-o", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let checks: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let clouds: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["cloud"].as_str().unwrap())
        .collect();
    assert_eq!(clouds, ["local", "aws"]);
    let aws = &checks[1];
    // No AWS here: the endpoint is a closed loopback port.
    assert_eq!(aws["usable"], false);
    let reason = aws["reason"].as_str().unwrap();
    #[cfg(not(feature = "aws"))]
    assert!(reason.contains("--features aws"), "{reason}");
    #[cfg(feature = "aws")]
    assert!(!reason.is_empty());
}

#[test]
fn a_task_file_that_never_ends_is_refused_without_filling_memory() {
    // /dev/zero never ends: aloft reads one byte past the largest spec it accepts, then stops.
    let output = aloft(&["launch", "--dryrun", "/dev/zero"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let stderr = stderr(&output);
    assert!(stderr.contains("/dev/zero"), "{stderr}");
}

#[test]
fn a_closed_stderr_never_panics() {
    // Its own home: the command must not touch the user's.
    let home = std::env::temp_dir().join(format!("aloft-closed-{}", std::process::id()));
    let status = Command::new("bash")
        .args([
            "-c",
            "exec 2>&-; \"$0\" launch --dryrun no-such-task.yaml",
            env!("CARGO_BIN_EXE_aloft"),
        ])
        .current_dir(workspace())
        .env("ALOFT_HOME", &home)
        .status()
        .unwrap();
    let _ = std::fs::remove_dir_all(&home);
    assert_eq!(status.code(), Some(1), "an error exit, not a panic (101)");
}

#[test]
fn a_local_cloud_config_that_is_not_utf8_is_an_error_not_ignored() {
    let home = std::env::temp_dir()
        .join(format!("aloft-cli-test-{}", std::process::id()))
        .join("home");
    std::fs::create_dir_all(&home).unwrap();
    // Another test writes local.yaml in the same home: use a file of our own name via a
    // private home.
    let private = home.with_file_name("home-utf8");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::write(private.join("local.yaml"), b"zones: [\xff\xfe]\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(["launch", "examples/hello.yaml"])
        .current_dir(workspace())
        .env("ALOFT_HOME", &private)
        .env("ALOFT_LOCAL_PREFIX", "clitestu")
        .env("ALOFT_LOCAL_BRIDGE", "clitestubr")
        .env("ALOFT_LOCAL_SUBNET", "10.251.78.0/24")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&private);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    if is_root() {
        assert!(stderr.contains("local.yaml"), "{stderr}");
    } else {
        eprintln!("note: not root; the local cloud is not asked for its config here");
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

#[test]
fn aloft_home_and_its_state_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = std::env::temp_dir().join(format!("aloft-cli-private-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    // A home made by someone else's umask, readable by all.
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(["status"])
        .env("ALOFT_HOME", &home)
        .output()
        .unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let (home_mode, db_mode) = (mode(&home), mode(&home.join("state.db")));
    let _ = std::fs::remove_dir_all(&home);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(home_mode, 0o700);
    assert_eq!(db_mode, 0o600);
}

#[test]
fn a_reader_that_stops_early_never_makes_aloft_panic() {
    // `aloft ... | head`: the output must outgrow the pipe's buffer for the write to fail.
    let catalog = workspace().join("../shared/catalogs/skypilot-v8");
    if !catalog.exists() {
        eprintln!("note: no shared SkyPilot catalog here; skipping the broken-pipe test");
        return;
    }
    let scratch = std::env::temp_dir().join(format!("aloft-pipe-{}", std::process::id()));
    let output = Command::new("bash")
        .args([
            "-c",
            "\"$0\" catalog --catalog \"$1\" -o json | head -c 10 >/dev/null; \
             echo \"status ${PIPESTATUS[0]}\"",
            env!("CARGO_BIN_EXE_aloft"),
            catalog.to_str().unwrap(),
        ])
        .current_dir(workspace())
        .env("ALOFT_CACHE_DIR", scratch.join("cache"))
        .env("ALOFT_HOME", scratch.join("home"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    let said = stdout(&output);
    assert_eq!(said.trim(), "status 0", "{}", stderr(&output));
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}

#[test]
fn carbon_by_the_hour_follows_the_start_time_and_a_carbon_intensity_file() {
    let spec = write_spec(
        "hourly.yaml",
        "name: snap\nresources:\n  cpus: 8+\n  memory: 32+\nrun: echo hi\n",
    );
    // Oregon dirty from 12:00 to 18:00 UTC, clean otherwise; Virginia as bundled.
    let mut rows = String::from("# a test profile\ncloud,region,hour,carbon_g_per_kwh\n");
    for hour in 0..24 {
        let grams = if (12..18).contains(&hour) { 900 } else { 20 };
        rows.push_str(&format!("aws,us-west-2,{hour},{grams}\n"));
    }
    let carbon = write_spec("hourly-carbon.csv", &rows);
    let catalog = fixture_catalog();
    let run = |start: &str, extra: &[&str]| {
        let mut args = vec![
            "launch",
            "--dryrun",
            spec.to_str().unwrap(),
            "--catalog",
            catalog.to_str().unwrap(),
            "--optimize",
            "carbon",
            "--carbon-intensity",
            carbon.to_str().unwrap(),
            "--start-time",
            start,
        ];
        args.extend_from_slice(extra);
        aloft(&args)
    };
    let night = run("2026-12-08T02:00Z", &[]);
    assert!(night.status.success(), "{}", stderr(&night));
    let text = stdout(&night);
    assert!(text.contains(" aws (us-west-2a) "), "{text}");
    assert!(text.contains("✔"), "{text}");
    assert!(
        text.contains("gCO2 counted by the hour from 2026-12-08T02:00:00Z"),
        "{text}"
    );
    let afternoon = run("2026-12-08T13:00Z", &["-o", "json"]);
    assert!(afternoon.status.success(), "{}", stderr(&afternoon));
    let document: serde_json::Value = serde_json::from_str(&stdout(&afternoon)).unwrap();
    let best = &document["best"];
    assert_eq!(best["start_time"], "2026-12-08T13:00:00Z");
    assert_eq!(best["tasks"][0]["region"], "us-east-1");
    assert_eq!(best["tasks"][0]["start_offset_seconds"], 0.0);
    // `annual`: no hourly figures, Oregon at its annual average wins again.
    let annual = run("annual", &["-o", "json"]);
    let document: serde_json::Value = serde_json::from_str(&stdout(&annual)).unwrap();
    assert_eq!(document["best"]["tasks"][0]["region"], "us-west-2");
    assert!(document["best"]["start_time"].is_null());
    // A bad start time and a bad file say what is wrong, and where.
    let bad = run("2026-12-08T13:00", &[]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains(
            "--start-time `2026-12-08T13:00`: not a UTC time (end it with Z or +00:00); expected \
             now, annual, or a UTC time such as 2026-12-08T13:00Z"
        ),
        "{}",
        stderr(&bad)
    );
    std::fs::write(
        &carbon,
        "cloud,region,hour,carbon_g_per_kwh\naws,us-west-2,7,lots\n",
    )
    .unwrap();
    let bad = run("now", &[]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains(&format!(
            "{}:2: carbon_g_per_kwh is `lots`, not a number of grams per kWh, 0 or more",
            carbon.display()
        )),
        "{}",
        stderr(&bad)
    );
}

/// Regression: `--max-carbon 0.001` was reported as "over the limit of 0 g".
#[test]
fn a_small_carbon_limit_is_reported_as_given() {
    let spec = write_spec(
        "tiny-limit.yaml",
        "name: snap\nresources:\n  cpus: 8+\n  memory: 32+\nrun: echo hi\n",
    );
    let output = aloft(&[
        "launch",
        "--dryrun",
        spec.to_str().unwrap(),
        "--catalog",
        fixture_catalog().to_str().unwrap(),
        "--max-carbon",
        "0.001",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("over the limit of 0.001 g; raise --max-carbon"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn slack_from_the_task_and_the_flags() {
    // Oregon: $0.428 and ~4.7 g; Virginia: $0.384 and ~9.7 g (annual averages).
    let spec = write_spec(
        "slack.yaml",
        "name: snap\ncarbon_slack: 0%\nresources:\n  cpus: 8+\n  memory: 32+\nrun: echo hi\n",
    );
    let catalog = fixture_catalog();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "launch",
            "--dryrun",
            spec.to_str().unwrap(),
            "--catalog",
            catalog.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        aloft(&args)
    };
    let output = run(&[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(" aws (us-west-2a) "), "{text}");
    assert!(
        text.contains("Within 0% of the lowest carbon (4.7 gCO2): held to 4.7 gCO2."),
        "{text}"
    );
    // The flag overrides the task: 150 % more carbon lets Virginia in.
    let output = run(&["--carbon-slack", "150%", "-o", "json"]);
    let document: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(document["best"]["tasks"][0]["region"], "us-east-1");
    assert_eq!(document["slack"]["measure"], "carbon");
    assert_eq!(document["slack"]["percent"], 150.0);
    // The reverse: the lowest carbon within 10 % of the cheapest is Virginia, within 12 % Oregon.
    let output = run(&["--cost-slack", "10"]);
    let text = stdout(&output);
    assert!(text.contains(" aws (us-east-1"), "{text}");
    assert!(text.contains("Optimizing for carbon"), "{text}");
    assert!(
        text.contains("Within 10% of the cheapest plan ($0.3840): held to $0.4224."),
        "{text}"
    );
    let output = run(&["--cost-slack", "12 %"]);
    assert!(
        stdout(&output).contains(" aws (us-west-2a) "),
        "{}",
        stdout(&output)
    );
    let output = run(&["--cost-slack=-3%"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("`-3%` is not a percentage such as 10%, 0 or more"),
        "{}",
        stderr(&output)
    );
}

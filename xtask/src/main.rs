//! Developer tasks. `cargo xtask bench [--catalog DIR] [--runs N]` prints the figures recorded in
//! docs/benchmarks.md: whole-process dry-runs of the release binary, and the optimizer alone on
//! chains and random DAGs over a SkyPilot-format catalog.

use aloft_catalog::Catalog;
use aloft_optimizer::synthetic::{self, Rng, Shape};
use aloft_optimizer::{Objective, Options};
use aloft_types::{
    Accelerator, Amount, DataInput, DataOutput, Duration, Infra, ResourceChoice, Resources, Size,
    Task,
};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let mut catalog_dir = root.join("../shared/catalogs/skypilot-v8");
    let mut runs = 9usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--catalog" => catalog_dir = PathBuf::from(args.next().context("--catalog DIR")?),
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            other => bail!(
                "unknown argument `{other}`; usage: cargo xtask bench [--catalog DIR] [--runs N]"
            ),
        }
    }
    match task.as_str() {
        "bench" => bench(&root, &catalog_dir, runs),
        "probe" => probe(&catalog_dir, runs),
        "bench-launch" => bench_launch(&root, runs),
        _ => bail!("usage: cargo xtask bench|probe|bench-launch [--catalog DIR] [--runs N]"),
    }
}

fn bench(root: &Path, catalog_dir: &Path, runs: usize) -> Result<()> {
    if !catalog_dir.exists() {
        bail!(
            "no catalog at {}; pass --catalog DIR (a SkyPilot v8 catalog)",
            catalog_dir.display()
        );
    }
    println!("catalog: {}", catalog_dir.display());
    println!("runs per figure: {runs} (median reported)\n");
    dryrun_bench(root, catalog_dir, runs)?;
    optimizer_bench(catalog_dir, runs)?;
    Ok(())
}

/// Whole-process `aloft launch --dryrun`, from process start to plan printed.
fn dryrun_bench(root: &Path, catalog_dir: &Path, runs: usize) -> Result<()> {
    let binary = build_release(root)?;
    let scratch = std::env::temp_dir().join(format!("aloft-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let cache = scratch.join("cache");
    let specs = [
        (
            "cpus 8+, memory 32+",
            "name: cpu\nresources:\n  cpus: 8+\n  memory: 32+\nrun: echo hi\n",
        ),
        (
            "V100:1",
            "name: gpu\nresources:\n  accelerators: V100:1\nrun: echo hi\n",
        ),
        (
            "spot, cpus 8+",
            "name: spot\nresources:\n  cpus: 8+\n  use_spot: true\nrun: echo hi\n",
        ),
    ];
    println!("## Single-task dry-run, whole process (release binary)\n");
    println!("| spec | cold cache (ms) | warm median (ms) | warm min (ms) |");
    println!("|---|---|---|---|");
    for (label, yaml) in specs {
        let spec = scratch.join(format!("{}.yaml", label.replace([' ', ',', ':', '+'], "_")));
        std::fs::write(&spec, yaml)?;
        let run_once = || -> Result<f64> {
            let started = Instant::now();
            let output = Command::new(&binary)
                .args(["launch", "--dryrun", "--alternatives", "0"])
                .arg(&spec)
                .arg("--catalog")
                .arg(catalog_dir)
                .env("ALOFT_CACHE_DIR", &cache)
                .output()?;
            let elapsed = started.elapsed().as_secs_f64() * 1e3;
            if !output.status.success() {
                bail!(
                    "dry-run failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            Ok(elapsed)
        };
        let _ = std::fs::remove_dir_all(&cache);
        let cold = run_once()?;
        let mut warm: Vec<f64> = (0..runs).map(|_| run_once()).collect::<Result<_>>()?;
        warm.sort_by(f64::total_cmp);
        println!(
            "| {label} | {cold:.1} | {:.1} | {:.1} |",
            median(&warm),
            warm[0]
        );
    }
    println!();
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// The optimizer alone (catalog already loaded) on chains and random DAGs.
fn optimizer_bench(catalog_dir: &Path, runs: usize) -> Result<()> {
    let started = Instant::now();
    let (imported, _warnings) = Catalog::load_dir_cached(catalog_dir)?;
    let mut catalog = Catalog::bundled();
    catalog.merge(imported);
    println!(
        "## Optimizer alone\n\ncatalog: {} offerings, {} instance types, {} regions (loaded in {:.0} ms)\n",
        catalog.offerings.len(),
        catalog.instance_types.len(),
        catalog.regions.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "| workload | objective | median (ms) | max (ms) | candidates | after pruning | B&B nodes |"
    );
    println!("|---|---|---|---|---|---|---|");
    let workloads: Vec<(String, usize, Shape)> = vec![
        ("chain of 1".to_owned(), 1, Shape::Chain),
        ("chain of 5".to_owned(), 5, Shape::Chain),
        ("chain of 20".to_owned(), 20, Shape::Chain),
        ("chain of 100".to_owned(), 100, Shape::Chain),
        (
            "random DAG of 10".to_owned(),
            10,
            Shape::Sparse { max_parents: 3 },
        ),
        (
            "random DAG of 50".to_owned(),
            50,
            Shape::Sparse { max_parents: 3 },
        ),
        (
            "random DAG of 200".to_owned(),
            200,
            Shape::Sparse { max_parents: 3 },
        ),
    ];
    for (label, tasks, shape) in workloads {
        for objective in [Objective::Cost, Objective::Time] {
            let mut times = Vec::new();
            let mut stats = None;
            for seed in 0..runs as u64 {
                let mut rng = Rng::new(seed);
                let dag = synthetic::dag(&mut rng, tasks, shape, bench_task);
                let options = Options {
                    objective,
                    ..Options::default()
                };
                let started = Instant::now();
                let solution = aloft_optimizer::optimize(&dag, &catalog, &options)?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
                stats.get_or_insert(solution.stats);
            }
            let stats = stats.unwrap_or_default();
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            println!(
                "| {label} | {objective:?} | {:.2} | {:.2} | {} | {} | {} |",
                median(&sorted),
                sorted[sorted.len() - 1],
                stats.candidates,
                stats.after_pruning,
                stats.search_nodes
            );
        }
    }
    println!(
        "\n(one DAG per seed: each run is a different random DAG; max is the slowest of them)"
    );
    Ok(())
}

/// The local cloud, whole process (needs root): launch of 1 and 16 nodes until the job's first
/// output line, and `aloft status` with 100 recorded clusters.
fn bench_launch(root: &Path, runs: usize) -> Result<()> {
    let binary = build_release(root)?;
    let home = std::env::temp_dir().join(format!("aloft-bench-launch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let aloft = |args: &[&str]| {
        let mut command = Command::new(&binary);
        command
            .args(args)
            .env("ALOFT_HOME", &home)
            .env("ALOFT_LOCAL_PREFIX", "bench")
            .env("ALOFT_LOCAL_BRIDGE", "benchbr")
            .env("ALOFT_LOCAL_SUBNET", "10.77.99.0/24");
        command
    };
    println!("## Local cloud, whole process (release binary, root)\n");
    println!("| workload | median (ms) | min (ms) | max (ms) |");
    println!("|---|---|---|---|");
    for nodes in [1u32, 16] {
        let spec = home.join(format!("n{nodes}.yaml"));
        std::fs::write(
            &spec,
            format!("num_nodes: {nodes}\nresources:\n  cpus: 2+\nrun: echo hi from $(hostname)\n"),
        )?;
        let mut times = Vec::new();
        for run in 0..runs {
            let started = Instant::now();
            let mut child = aloft(&[
                "launch",
                spec.to_str().unwrap_or_default(),
                "-c",
                &format!("b{nodes}-{run}"),
                "--down",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
            let stdout = child.stdout.take().context("stdout")?;
            let mut first = None;
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                line?;
                first.get_or_insert(started.elapsed().as_secs_f64() * 1e3);
            }
            if !child.wait()?.success() {
                bail!("launch of {nodes} nodes failed");
            }
            times.push(first.context("the job printed nothing")?);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| launch {nodes} node(s), command to first output line | {:.0} | {:.0} | {:.0} |",
            median(&times),
            times[0],
            times[times.len() - 1]
        );
    }
    // The agent on a kept cluster: a job on a warm cluster (submit to first line), and the
    // daemon's memory once it has run jobs.
    let spec = home.join("n1.yaml");
    let keep = aloft(&["launch", spec.to_str().unwrap_or_default(), "-c", "bagent"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if !keep.success() {
        bail!("launching the cluster for the agent figures failed");
    }
    let mut times = Vec::new();
    for _ in 0..runs.max(3) {
        let started = Instant::now();
        let mut child = aloft(&["exec", "bagent", spec.to_str().unwrap_or_default()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut first = None;
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            line?;
            first.get_or_insert(started.elapsed().as_secs_f64() * 1e3);
        }
        child.wait()?;
        times.push(first.context("the job printed nothing")?);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "| `aloft exec` on a warm cluster, command to first output line | {:.0} | {:.0} | {:.0} |",
        median(&times),
        times[0],
        times[times.len() - 1]
    );
    let status = aloft(&["ssh", "bagent", "--", ".aloft-agent/bin/aloft agent status"]).output()?;
    let status: serde_json::Value =
        serde_json::from_slice(&status.stdout).context("reading the agent's status")?;
    let _ = aloft(&["down", "bagent"]).output();
    println!(
        "\nAgent daemon on the head node after {} jobs: {} KiB resident.\n",
        times.len(),
        status["daemon_rss_kib"]
    );
    println!("| workload | median (ms) | min (ms) | max (ms) |");
    println!("|---|---|---|---|");
    // `aloft status` with 100 clusters recorded (no refresh: what the user waits for).
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = aloft_store::Store::open(&home.join("state.db")).await?;
        for idx in 0..100 {
            store
                .cluster_insert(&aloft_store::Cluster {
                    name: format!("c{idx:03}"),
                    status: aloft_store::ClusterStatus::Up,
                    cloud: "local".to_owned(),
                    region: "local".to_owned(),
                    zone: Some("local-a".to_owned()),
                    instance_type: "local.small".to_owned(),
                    num_nodes: 1 + idx % 4,
                    spot: false,
                    hourly_price: 0.01,
                    autostop_minutes: None,
                    autostop_down: false,
                    resources: serde_json::json!({}),
                    generation: 0,
                    created_at: 0,
                    updated_at: 0,
                })
                .await?;
        }
        anyhow::Ok(())
    })?;
    let mut times = Vec::new();
    for _ in 0..runs.max(5) {
        let started = Instant::now();
        let output = aloft(&["status"]).output()?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        if !output.status.success() {
            bail!("status failed");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "| `aloft status`, 100 clusters | {:.1} | {:.1} | {:.1} |",
        median(&times),
        times[0],
        times[times.len() - 1]
    );
    let _ = aloft(&["local", "cleanup"]).output();
    let _ = std::fs::remove_dir_all(&home);
    Ok(())
}

/// One line per seed for random DAGs of 10, 50 and 200 tasks: where the time goes.
fn probe(catalog_dir: &Path, runs: usize) -> Result<()> {
    let (imported, _warnings) = Catalog::load_dir_cached(catalog_dir)?;
    let mut catalog = Catalog::bundled();
    catalog.merge(imported);
    for tasks in std::env::var("PROBE_TASKS")
        .ok()
        .and_then(|t| t.parse().ok())
        .map_or(vec![10, 50, 200], |t| vec![t])
    {
        for objective in [Objective::Cost, Objective::Time] {
            for seed in 0..runs as u64 {
                let mut rng = Rng::new(seed);
                let dag = synthetic::dag(
                    &mut rng,
                    tasks,
                    Shape::Sparse { max_parents: 3 },
                    bench_task,
                );
                let alternatives = std::env::var("PROBE_ALTERNATIVES")
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let options = Options {
                    objective,
                    alternatives,
                    ..Options::default()
                };
                let started = Instant::now();
                let solution = aloft_optimizer::optimize(&dag, &catalog, &options)?;
                let stats = solution.stats;
                println!(
                    "{tasks} tasks {objective:?} seed {seed}: {:.1} ms (solve {} us), candidates {} -> {}, components {} (trees {}, searched {}), nodes {}",
                    started.elapsed().as_secs_f64() * 1e3,
                    stats.solve_micros,
                    stats.candidates,
                    stats.after_pruning,
                    stats.components,
                    stats.tree_components,
                    stats.search_components,
                    stats.search_nodes
                );
            }
        }
    }
    Ok(())
}

/// A task drawn from a realistic mix: CPU jobs, single-GPU jobs and CPU-or-GPU choices, with
/// runtimes, outputs of 1-500 GB and, for some, an input in a bucket.
fn bench_task(rng: &mut Rng, task_idx: usize) -> Task {
    let mut task = Task::new(format!("t{task_idx}"));
    let hours =
        |rng: &mut Rng, low: f64, high: f64| Some(Duration::from_hours(rng.float(low, high)));
    let cpu = |rng: &mut Rng| Resources {
        cpus: Some(Amount::at_least([4.0, 8.0, 16.0, 32.0][rng.below(4)])),
        memory: Some(Amount::at_least([16.0, 32.0, 64.0][rng.below(3)])),
        use_spot: rng.chance(0.3),
        estimated_runtime: hours(rng, 1.0, 10.0),
        ..Resources::default()
    };
    let gpu = |rng: &mut Rng| Resources {
        accelerator: Some(Accelerator {
            name: ["V100", "A100", "T4", "L4"][rng.below(4)].to_owned(),
            count: 1.0,
        }),
        use_spot: rng.chance(0.3),
        estimated_runtime: hours(rng, 0.5, 3.0),
        ..Resources::default()
    };
    task.resources = match rng.below(3) {
        0 => ResourceChoice::single(cpu(rng)),
        1 => ResourceChoice::single(gpu(rng)),
        _ => ResourceChoice {
            options: vec![cpu(rng), gpu(rng)],
            ordered: false,
        },
    };
    if rng.chance(0.2) {
        let (path, infra) = [
            ("s3://bench/data", "aws/us-east-1"),
            ("gs://bench/data", "gcp/us-central1"),
            ("https://bench.blob.core.windows.net/data", "azure/eastus"),
        ][rng.below(3)];
        task.inputs.push(DataInput {
            path: path.to_owned(),
            infra: Infra::parse(infra).expect("valid infra"),
            size: Size::from_gigabytes(rng.float(10.0, 500.0)),
        });
    }
    task.outputs = Some(DataOutput {
        path: None,
        size: Size::from_gigabytes(rng.float(1.0, 500.0)),
    });
    task
}

/// Builds the release `aloft` binary and returns its path.
fn build_release(root: &Path) -> Result<PathBuf> {
    let status = Command::new("cargo")
        .args(["build", "--quiet", "--release", "-p", "aloft-cli"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("building the release binary failed");
    }
    Ok(root.join("target/release/aloft"))
}

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

//! Developer tasks. `cargo xtask bench [--catalog DIR] [--runs N]` prints the figures recorded in
//! docs/benchmarks.md: whole-process dry-runs of the release binary, and the optimizer alone on
//! chains and random DAGs over a SkyPilot-format catalog, then on the hard families
//! (`bench-optimizer` runs the optimizer's part alone, `bench-hard` the hard families alone:
//! `HARD_SIZES`, `HARD_FAMILIES` and `HARD_LIMIT_S` narrow them), and the carbon objective with
//! its limits (also alone: `cargo xtask bench-carbon`). `cargo xtask bench-launch` and
//! `cargo xtask bench-logs` (root) measure launches and job logs on the local cloud.

use aloft_catalog::Catalog;
use aloft_optimizer::synthetic::{self, Rng, Shape};
use aloft_optimizer::{Objective, Options, Slack, SlackMeasure};
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
        "bench-carbon" => carbon_bench(&catalog_dir, runs),
        "bench-hard" => hard_bench(&catalog_dir),
        "bench-optimizer" => {
            optimizer_bench(&catalog_dir, runs).and_then(|()| hard_bench(&catalog_dir))
        }
        "bench-launch" => bench_launch(&root, runs),
        "bench-logs" => bench_logs(&root, runs),
        "bench-server" => bench_server(&root, runs),
        _ => bail!(
            "usage: cargo xtask bench|bench-optimizer|bench-hard|bench-carbon|probe|bench-launch|\
             bench-logs|bench-server [--catalog DIR] [--runs N]"
        ),
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
    hard_bench(catalog_dir)?;
    carbon_bench(catalog_dir, runs)?;
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

/// The carbon objective and the limits and trades around it, on the optimizer's workloads: by
/// the annual averages and by the hour (the bundled typical days, from a fixed start), the
/// slacks both ways, and a budget with a carbon cap under the time objective. Each solve has a
/// deadline (10 s, or `CARBON_DEADLINE_S`), so the table always ends; "proven" counts the
/// seeds proven optimal.
fn carbon_bench(catalog_dir: &Path, runs: usize) -> Result<()> {
    let (imported, _warnings) = Catalog::load_dir_cached(catalog_dir)?;
    let mut catalog = Catalog::bundled();
    catalog.merge(imported);
    // 2026-12-08T13:00Z: the bundled typical days are evening in Asia, morning in the US.
    let start = aloft_catalog::parse_utc("2026-12-08T13:00Z").expect("a valid time");
    // CARBON_DEADLINE_S: the deadline of each solve, in seconds (default 10).
    let deadline_secs: u64 = std::env::var("CARBON_DEADLINE_S")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .unwrap_or(10);
    let deadline = Some(std::time::Duration::from_secs(deadline_secs));
    println!("\n## The carbon objective and its limits\n");
    println!("| workload | variant | median (ms) | max (ms) | proven | worst gap |");
    println!("|---|---|---|---|---|---|");
    let workloads: Vec<(&str, usize, Shape)> = vec![
        ("chain of 20", 20, Shape::Chain),
        ("chain of 100", 100, Shape::Chain),
        ("random DAG of 10", 10, Shape::Sparse { max_parents: 3 }),
        ("random DAG of 50", 50, Shape::Sparse { max_parents: 3 }),
    ];
    let slack = |measure, percent| Some(Slack { measure, percent });
    let variants: [(&str, Options); 5] = [
        (
            "carbon, annual averages",
            Options {
                objective: Objective::Carbon,
                ..Options::default()
            },
        ),
        (
            "carbon, by the hour",
            Options {
                objective: Objective::Carbon,
                start_time: Some(start),
                ..Options::default()
            },
        ),
        (
            "cost, carbon_slack 10 %",
            Options {
                slack: slack(SlackMeasure::Carbon, 10.0),
                ..Options::default()
            },
        ),
        (
            "carbon, cost_slack 10 %",
            Options {
                objective: Objective::Carbon,
                slack: slack(SlackMeasure::Cost, 10.0),
                ..Options::default()
            },
        ),
        (
            "time, budget and cap 1.2x the least",
            Options {
                objective: Objective::Time,
                ..Options::default()
            },
        ),
    ];
    for (label, tasks, shape) in workloads {
        for (variant, base) in &variants {
            let mut times = Vec::new();
            let (mut proven, mut worst_gap) = (0, 0.0f64);
            for seed in 0..runs as u64 {
                let mut rng = Rng::new(seed);
                let dag = synthetic::dag(&mut rng, tasks, shape, bench_task);
                let mut options = Options {
                    deadline,
                    ..base.clone()
                };
                if variant.starts_with("time, budget") {
                    // Limits at 1.2x the least cost and the least carbon (not timed).
                    let least = |objective| -> Result<(f64, f64)> {
                        let best = aloft_optimizer::optimize(
                            &dag,
                            &catalog,
                            &Options {
                                objective,
                                deadline,
                                ..Options::default()
                            },
                        )?
                        .best;
                        Ok((best.total_cost, best.carbon_g))
                    };
                    options.budget = Some(least(Objective::Cost)?.0 * 1.2);
                    options.max_carbon_g = Some(least(Objective::Carbon)?.1 * 1.2);
                }
                let started = Instant::now();
                let result = aloft_optimizer::optimize(&dag, &catalog, &options);
                times.push(started.elapsed().as_secs_f64() * 1e3);
                match result {
                    Ok(solution) => {
                        proven += usize::from(solution.optimality.proven_optimal);
                        worst_gap = worst_gap.max(solution.optimality.gap);
                    }
                    Err(err) => eprintln!("{label} {variant} seed {seed}: {err}"),
                }
            }
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            println!(
                "| {label} | {variant} | {:.1} | {:.1} | {proven}/{runs} | {:.2} % |",
                median(&sorted),
                sorted[sorted.len() - 1],
                worst_gap * 100.0
            );
        }
    }
    println!(
        "\n(one DAG per seed; a {deadline_secs} s deadline per solve; proven: seeds whose plan was \
         proven optimal)"
    );
    Ok(())
}

/// The hard families (`synthetic::HardFamily`) at 100, 200 and 1,000 tasks, seed 0: the time to a
/// proven optimum (or none within `HARD_LIMIT_S`, default 30 s), and the gap at 2 s and at the
/// CLI's default deadline of 5 s. `HARD_SIZES=100,200` and `HARD_FAMILIES=0,2` narrow it down.
fn hard_bench(catalog_dir: &Path) -> Result<()> {
    let (imported, _warnings) = Catalog::load_dir_cached(catalog_dir)?;
    let mut catalog = Catalog::bundled();
    catalog.merge(imported);
    let limit_s: u64 = std::env::var("HARD_LIMIT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let list = |name: &str, default: Vec<usize>| -> Vec<usize> {
        std::env::var(name).ok().map_or(default, |text| {
            text.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
    };
    let sizes = list("HARD_SIZES", vec![100, 200, 1000]);
    let families = list("HARD_FAMILIES", vec![0, 1, 2]);
    println!("## Hard families (cost objective, seed 0)\n");
    println!(
        "| family | tasks | edges | candidates → after pruning | to proven optimal (s) | gap at 2 s (took) | gap at 5 s (took) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for family_idx in families {
        let Some(&family) = synthetic::HardFamily::ALL.get(family_idx) else {
            bail!("HARD_FAMILIES: no family {family_idx}");
        };
        for &tasks in &sizes {
            let dag = family.dag(tasks, 0);
            let run = |deadline_s: u64| -> Result<(f64, aloft_optimizer::Solution)> {
                let options = Options {
                    deadline: Some(std::time::Duration::from_secs(deadline_s)),
                    ..Options::default()
                };
                let started = Instant::now();
                let solution = aloft_optimizer::optimize(&dag, &catalog, &options)?;
                Ok((started.elapsed().as_secs_f64(), solution))
            };
            let gap = |solution: &aloft_optimizer::Solution| {
                if solution.optimality.proven_optimal {
                    "0 (optimal)".to_owned()
                } else {
                    format!("{:.3} %", solution.optimality.gap * 100.0)
                }
            };
            let (elapsed, exact) = run(limit_s)?;
            let to_optimal = if exact.optimality.proven_optimal {
                format!("{elapsed:.2}")
            } else {
                format!(
                    "not within {limit_s} s (gap {:.3} %)",
                    exact.optimality.gap * 100.0
                )
            };
            let (took_2, at_2) = run(2)?;
            let (took_5, at_5) = run(5)?;
            println!(
                "| {} | {tasks} | {} | {} → {} | {to_optimal} | {} ({took_2:.2} s) | {} ({took_5:.2} s) |",
                family.label(),
                dag.edges.len(),
                exact.stats.candidates,
                exact.stats.after_pruning,
                gap(&at_2),
                gap(&at_5),
            );
        }
    }
    println!("\n(times are `optimize` alone, catalog loaded; the deadline bounds the search)");
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
    concurrent_launches(&aloft, &home, 50)?;
    println!("| workload | median (ms) | min (ms) | max (ms) |");
    println!("|---|---|---|---|");
    // `aloft status` with 100 clusters recorded (no refresh: what the user waits for).
    record_clusters(&home, 100)?;
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

/// `count` launches of a one-node cluster started at once (`aloft launch -c cN --down`, each
/// its own process on one state database): how long all took, each one's time, and whether
/// every one succeeded and left nothing behind.
fn concurrent_launches(
    aloft: &dyn Fn(&[&str]) -> Command,
    home: &Path,
    count: usize,
) -> Result<()> {
    let spec = home.join("n1.yaml");
    let started = Instant::now();
    let children = (0..count)
        .map(|idx| {
            aloft(&[
                "launch",
                spec.to_str().unwrap_or_default(),
                "-c",
                &format!("cc{idx}"),
                "--down",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map(|child| (Instant::now(), child))
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    // Each is waited for in its own thread, so each one's time is its own.
    let waiters: Vec<_> = children
        .into_iter()
        .map(|(begun, child)| {
            std::thread::spawn(move || {
                let output = child.wait_with_output();
                (begun.elapsed().as_secs_f64(), output)
            })
        })
        .collect();
    let mut times = Vec::new();
    let mut failures = Vec::new();
    for waiter in waiters {
        let (took, output) = waiter
            .join()
            .map_err(|_| anyhow::anyhow!("a waiter panicked"))?;
        let output = output?;
        if output.status.success() {
            times.push(took);
        } else {
            failures.push(String::from_utf8_lossy(&output.stderr).into_owned());
        }
    }
    let wall = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let left = aloft(&["status", "-o", "json"]).output()?;
    let left: serde_json::Value = serde_json::from_slice(&left.stdout).unwrap_or_default();
    println!("\n{count} launches at once (1 node each, `--down`):\n");
    println!("| figure | value |");
    println!("|---|---|");
    println!("| all done (s) | {wall:.1} |");
    if !times.is_empty() {
        println!(
            "| one launch, median / p90 / max (s) | {:.1} / {:.1} / {:.1} |",
            median(&times),
            times[(times.len() * 9 / 10).min(times.len() - 1)],
            times[times.len() - 1]
        );
    }
    println!("| failed | {} of {count} |", failures.len());
    println!(
        "| clusters left recorded | {} |\n",
        left.as_array().map_or(0, Vec::len)
    );
    if let Some(first) = failures.first() {
        println!("First failure:\n\n```\n{}\n```\n", first.trim());
    }
    Ok(())
}

/// 100 clusters recorded as up in `home`'s store (nothing behind them on any cloud).
fn record_clusters(home: &Path, count: u32) -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = aloft_store::Store::open(&home.join("state.db")).await?;
        for idx in 0..count {
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
        store.close().await;
        anyhow::Ok(())
    })
}

/// The control plane (no root needed): `aloft status` through the server on 100 clusters, the
/// CLI's own start, read routes under 200 concurrent clients, and the server's memory idle
/// and with 1,000 finished requests recorded.
fn bench_server(root: &Path, runs: usize) -> Result<()> {
    let binary = build_release(root)?;
    let home = std::env::temp_dir().join(format!("aloft-bench-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let aloft = |args: &[&str]| {
        let mut command = Command::new(&binary);
        command
            .args(args)
            .env("ALOFT_HOME", &home)
            .env("ALOFT_LOCAL_PREFIX", "bsrv")
            .env("ALOFT_LOCAL_BRIDGE", "bsrvbr")
            .env_remove("ALOFT_API_URL");
        command
    };
    let result = bench_server_on(&home, &aloft, runs);
    let _ = aloft(&["api", "stop"]).output();
    let _ = aloft(&["local", "cleanup", "--yes"]).output();
    let _ = std::fs::remove_dir_all(&home);
    result
}

fn bench_server_on(home: &Path, aloft: &dyn Fn(&[&str]) -> Command, runs: usize) -> Result<()> {
    let timed = |args: &[&str]| -> Result<f64> {
        let started = Instant::now();
        let output = aloft(args).output()?;
        let took = started.elapsed().as_secs_f64() * 1e3;
        if !output.status.success() {
            bail!(
                "aloft {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(took)
    };
    let runs = runs.max(5);
    let row = |what: &str, mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        println!(
            "| {what} | {:.1} | {:.1} | {:.1} |",
            median(&times),
            times[0],
            times[times.len() - 1]
        );
    };
    println!("## Control plane, whole process (release binary)\n");
    println!("| workload | median (ms) | min (ms) | max (ms) |");
    println!("|---|---|---|---|");
    let version: Vec<f64> = (0..runs)
        .map(|_| timed(&["--version"]))
        .collect::<Result<_>>()?;
    row("`aloft --version` (the CLI's own start)", version);
    record_clusters(home, 100)?;
    let first = timed(&["status"])?;
    row(
        "`aloft status`, 100 clusters, starting the server",
        vec![first],
    );
    let warm: Vec<f64> = (0..runs)
        .map(|_| timed(&["status"]))
        .collect::<Result<_>>()?;
    row("`aloft status`, 100 clusters, server running", warm);

    let info: aloft_api::local::ServerInfo =
        serde_json::from_str(&std::fs::read_to_string(aloft_api::local::info_path(home))?)?;
    let token = std::fs::read_to_string(aloft_api::local::token_path(home))?;
    let client = aloft_client::Client::new(&info.url, token.trim());
    let runtime = tokio::runtime::Runtime::new()?;
    let rss_mib =
        || proc_sample(info.pid).map_or(f64::NAN, |sample| sample.rss_kib as f64 / 1024.0);
    println!(
        "\nServer idle, after those commands: {:.1} MiB RSS\n",
        rss_mib()
    );

    // 200 clients at once, each on a connection of its own, alternating two read routes.
    let (clients, calls) = (200usize, 25usize);
    let read_started = Instant::now();
    let (mut latencies, errors) = runtime.block_on(async {
        let mut tasks = Vec::new();
        for idx in 0..clients {
            let client = aloft_client::Client::new(&info.url, token.trim());
            tasks.push(tokio::spawn(async move {
                let mut times = Vec::with_capacity(calls);
                let mut errors = 0usize;
                for call in 0..calls {
                    let started = Instant::now();
                    let ok = if (idx + call) % 2 == 0 {
                        client.clusters(&[]).await.is_ok()
                    } else {
                        client.requests(50).await.is_ok()
                    };
                    times.push(started.elapsed().as_secs_f64() * 1e3);
                    errors += usize::from(!ok);
                }
                (times, errors)
            }));
        }
        let (mut all, mut errors) = (Vec::new(), 0);
        for task in tasks {
            let (times, failed) = task.await?;
            all.extend(times);
            errors += failed;
        }
        anyhow::Ok((all, errors))
    })?;
    let read_seconds = read_started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies[latencies.len() * 99 / 100];
    println!(
        "Read routes (`GET /clusters` of 100, `GET /requests?limit=50`), {clients} concurrent \
         clients x {calls} calls: p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms, {errors} errors, \
         {:.0} calls/s; server {:.1} MiB RSS after\n",
        median(&latencies),
        latencies[latencies.len() - 1],
        latencies.len() as f64 / read_seconds,
        rss_mib()
    );
    // The same reads one at a time: what a single client waits for.
    let mut single = runtime.block_on(async {
        let mut times = Vec::new();
        for call in 0..200 {
            let started = Instant::now();
            if call % 2 == 0 {
                client.clusters(&[]).await?;
            } else {
                client.requests(50).await?;
            }
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        anyhow::Ok(times)
    })?;
    single.sort_by(f64::total_cmp);
    println!(
        "The same reads from one client: p50 {:.2} ms, p99 {:.2} ms\n",
        median(&single),
        single[single.len() * 99 / 100]
    );

    // 1,000 requests run to their end: `down` of names nothing is recorded or running under
    // (each looks on the clouds, finds nothing and fails). Never stop or start the recorded
    // clusters here: starting one with nothing behind it brings its nodes up for real.
    let started = Instant::now();
    let ended = runtime.block_on(async {
        let mut ended = 0usize;
        for round in 0..10 {
            let mut ids = Vec::new();
            for idx in 0..100 {
                let name = format!("gone-{round}-{idx:03}");
                let body = aloft_api::DownBody { skip_logs: true };
                if let Ok(accepted) = client.down(&name, &body).await {
                    ids.push(accepted.request_id);
                }
            }
            for id in ids {
                for _ in 0..600 {
                    let request = client.request(&id).await?;
                    if request.state.is_finished() {
                        ended += 1;
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
        anyhow::Ok(ended)
    })?;
    println!(
        "{ended} requests submitted and ended in {:.1} s; server {:.1} MiB RSS after",
        started.elapsed().as_secs_f64(),
        rss_mib()
    );
    Ok(())
}

/// CPU time (user + system) and resident memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    cpu_seconds: f64,
    rss_kib: u64,
    peak_rss_kib: u64,
}

fn proc_sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_seconds: ticks / 100.0,
        rss_kib: kib("VmRSS:"),
        peak_rss_kib: kib("VmHWM:"),
    })
}

/// Processes whose command line has every one of `words` as an argument.
fn pids_with_args(words: &[&str]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let args: Vec<&[u8]> = cmdline.split(|&byte| byte == 0).collect();
                words.iter().all(|word| args.contains(&word.as_bytes()))
            })
        })
        .collect()
}

/// The local cloud (needs root): a job printing 50 MB, followed with `aloft exec` from this
/// machine over SSH: throughput end to end, the CPU and memory of the follower on the head
/// (`aloft agent logs --follow`), of the client and of the agent's daemon (which writes the
/// log), and the log's size on disk. Then reading the finished job again with `aloft logs`.
fn bench_logs(root: &Path, runs: usize) -> Result<()> {
    const BYTES: u64 = 50_000_000;
    let binary = build_release(root)?;
    let home = std::env::temp_dir().join(format!("aloft-bench-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home)?;
    let aloft = |args: &[&str]| {
        let mut command = Command::new(&binary);
        command
            .args(args)
            .env("ALOFT_HOME", &home)
            .env("ALOFT_LOCAL_PREFIX", "blogs")
            .env("ALOFT_LOCAL_BRIDGE", "blogsbr")
            .env("ALOFT_LOCAL_SUBNET", "10.77.98.0/24");
        command
    };
    let hello = home.join("hello.yaml");
    std::fs::write(&hello, "resources:\n  cpus: 2+\nrun: echo up\n")?;
    let big = home.join("big.yaml");
    // 80-byte lines, as a training loop's progress lines might be.
    std::fs::write(
        &big,
        format!(
            "run: yes 'step 000123 loss 0.123456 lr 0.000300 tokens/s 123456 elapsed 00:12:34.5678' | head -c {BYTES}\n"
        ),
    )?;
    let up = aloft(&["launch", hello.to_str().unwrap_or_default(), "-c", "blogs"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    if !up.success() {
        bail!("launching the cluster for the log figures failed");
    }
    let result = bench_logs_on(&aloft, &big, BYTES, runs);
    let _ = aloft(&["down", "blogs"]).output();
    let _ = aloft(&["local", "cleanup"]).output();
    let _ = std::fs::remove_dir_all(&home);
    result
}

fn bench_logs_on(
    aloft: &dyn Fn(&[&str]) -> Command,
    big: &Path,
    bytes: u64,
    runs: usize,
) -> Result<()> {
    println!("## Job logs on the local cloud (release binary, root)\n");
    println!(
        "A job printing {} MB in 80-byte lines, followed by `aloft exec` over SSH.\n",
        bytes / 1_000_000
    );
    println!(
        "| run | MB/s end to end | follower CPU (% of a core) | follower peak RSS (MB) | client CPU (%) | client peak RSS (MB) | daemon CPU (%) | on disk (MB) | `aloft logs` again (MB/s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for run in 0..runs.max(1) {
        // The daemon of this cluster: its pid inside the instance, matched to ours by NSpid.
        let status =
            aloft(&["ssh", "blogs", "--", ".aloft-agent/bin/aloft agent status"]).output()?;
        let status: serde_json::Value =
            serde_json::from_slice(&status.stdout).context("reading the agent's status")?;
        let inner = status["daemon_pid"].as_u64().unwrap_or(0).to_string();
        let daemon: Vec<u32> = pids_with_args(&["agent", "daemon"])
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|text| {
                    text.lines()
                        .find_map(|line| line.strip_prefix("NSpid:"))
                        .and_then(|pids| pids.split_whitespace().last())
                        == Some(inner.as_str())
                })
            })
            .collect();
        let daemon_before: Vec<(u32, f64)> = daemon
            .iter()
            .filter_map(|pid| Some((*pid, proc_sample(*pid)?.cpu_seconds)))
            .collect();
        let started = Instant::now();
        let mut child = aloft(&["exec", "blogs", big.to_str().unwrap_or_default()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let client_pid = child.id();
        let mut stdout = child.stdout.take().context("stdout")?;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Samples the follower on the head (its own process in the instance's namespaces,
        // visible here) and the client until the stream ends; the last sample of each counts.
        let sampler = {
            let done = done.clone();
            std::thread::spawn(move || {
                let (mut follower, mut client) = (None::<ProcSample>, None::<ProcSample>);
                let mut follower_pid = None;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    if follower_pid.is_none() {
                        follower_pid =
                            pids_with_args(&["agent", "logs", "--framed", "--follow"]).pop();
                    }
                    if let Some(sample) = follower_pid.and_then(proc_sample) {
                        follower = Some(sample);
                    }
                    if let Some(sample) = proc_sample(client_pid) {
                        client = Some(sample);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                (follower, client)
            })
        };
        let mut buffer = vec![0u8; 1 << 16];
        let mut received = 0u64;
        loop {
            let read = std::io::Read::read(&mut stdout, &mut buffer)?;
            if read == 0 {
                break;
            }
            received += read as u64;
        }
        let elapsed = started.elapsed().as_secs_f64();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let (follower, client) = sampler.join().map_err(|_| anyhow::anyhow!("sampler"))?;
        if !child.wait()?.success() {
            bail!("the job failed");
        }
        // The last line, cut short by `head -c`, gains a newline: the transport passes lines.
        if received != bytes && received != bytes + 1 {
            bail!("{received} bytes arrived of {bytes}");
        }
        let daemon_cpu: f64 = daemon_before
            .iter()
            .filter_map(|(pid, before)| Some(proc_sample(*pid)?.cpu_seconds - before))
            .sum();
        let job = run + 2;
        let du = aloft(&[
            "ssh",
            "blogs",
            "--",
            &format!("du -sb .aloft-agent/logs/{job}"),
        ])
        .output()?;
        let on_disk: f64 = String::from_utf8_lossy(&du.stdout)
            .split_whitespace()
            .next()
            .and_then(|size| size.parse().ok())
            .unwrap_or(f64::NAN);
        let again = Instant::now();
        let reread = aloft(&["logs", "blogs", &job.to_string()]).output()?;
        let again = again.elapsed().as_secs_f64();
        if reread.stdout.len() as u64 != received {
            bail!(
                "aloft logs printed {} bytes of {bytes}",
                reread.stdout.len()
            );
        }
        let mb = bytes as f64 / 1e6;
        let percent = |sample: Option<ProcSample>| {
            sample.map_or("?".to_owned(), |sample| {
                format!("{:.0}", 100.0 * sample.cpu_seconds / elapsed)
            })
        };
        let peak = |sample: Option<ProcSample>| {
            sample.map_or("?".to_owned(), |sample| {
                format!(
                    "{:.1}",
                    sample.peak_rss_kib.max(sample.rss_kib) as f64 / 1024.0
                )
            })
        };
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} |",
            run + 1,
            mb / elapsed,
            percent(follower),
            peak(follower),
            percent(client),
            peak(client),
            100.0 * daemon_cpu / elapsed,
            on_disk / 1e6,
            mb / again,
        );
    }
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
                let deadline = std::env::var("PROBE_DEADLINE_MS")
                    .ok()
                    .and_then(|ms| ms.parse().ok())
                    .map(std::time::Duration::from_millis);
                let options = Options {
                    objective,
                    alternatives,
                    deadline,
                    ..Options::default()
                };
                let started = Instant::now();
                let solution = aloft_optimizer::optimize(&dag, &catalog, &options)?;
                let stats = solution.stats;
                println!(
                    "{tasks} tasks {objective:?} seed {seed}: {:.1} ms (solve {} us), candidates {} -> {}, components {} (trees {}, searched {}), nodes {}, optimal {}, gap {:.3} %",
                    started.elapsed().as_secs_f64() * 1e3,
                    stats.solve_micros,
                    stats.candidates,
                    stats.after_pruning,
                    stats.components,
                    stats.tree_components,
                    stats.search_components,
                    stats.search_nodes,
                    solution.optimality.proven_optimal,
                    solution.optimality.gap * 100.0
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

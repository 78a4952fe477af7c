//! Small, hand-checked planning scenarios on a tiny catalog: each states a situation and the
//! placement (or the error) a careful human would pick.

use aloft_catalog::{
    Catalog, Cloud, CloudId, InstanceType, InstanceTypeId, Offering, Region, RegionId, Zone, ZoneId,
};
use aloft_optimizer::{Objective, Options, PlanError, Slack, SlackMeasure, Solution, optimize};
use aloft_types::{
    Accelerator, Amount, Dag, DataInput, DataOutput, Duration, Infra, ResourceChoice, Resources,
    Size, Task, TaskIdx,
};

/// Two clouds. `east` has regions e1 (zones e1a, e1b) and e2 (zone e2a); `west` has region w1
/// without zones. A CPU type `cpu8` (8 vCPU, 32 GiB) everywhere and a GPU type `gpu1` (1×V100)
/// in e2 and w1. Prices (on demand / spot), $/h:
///   cpu8: e1a 1.00/0.30, e1b 0.90/-, e2a 0.80/0.25, w1 0.85/0.20
///   gpu1: e2a 3.00/1.00, w1 2.50/-
fn tiny_catalog() -> Catalog {
    let clouds = vec![
        Cloud {
            name: "east".into(),
            internet_egress_per_gb: 0.10,
            inter_region_egress_per_gb: 0.02,
        },
        Cloud {
            name: "west".into(),
            internet_egress_per_gb: 0.12,
            inter_region_egress_per_gb: 0.03,
        },
    ];
    let region = |cloud: u16, name: &str| Region {
        cloud: CloudId(cloud),
        name: name.into(),
        carbon_g_per_kwh: Some(300.0),
        carbon_hourly: None,
    };
    let regions = vec![region(0, "e1"), region(0, "e2"), region(1, "w1")];
    let zones = vec![
        Zone {
            region: RegionId(0),
            name: "e1a".into(),
        },
        Zone {
            region: RegionId(0),
            name: "e1b".into(),
        },
        Zone {
            region: RegionId(1),
            name: "e2a".into(),
        },
    ];
    let instance_type = |cloud: u16, name: &str, accelerator: Option<&str>| InstanceType {
        cloud: CloudId(cloud),
        name: name.into(),
        vcpus: 8.0,
        memory_gib: 32.0,
        accelerator: accelerator.map(|name| (name.to_owned(), 1.0)),
        arch: None,
    };
    let instance_types = vec![
        instance_type(0, "cpu8", None),
        instance_type(1, "cpu8", None),
        instance_type(0, "gpu1", Some("V100")),
        instance_type(1, "gpu1", Some("V100")),
    ];
    let offer = |ty: u32, region: u32, zone: Option<u32>, price: f64, spot: Option<f64>| Offering {
        instance_type: InstanceTypeId(ty),
        region: RegionId(region),
        zone: zone.map(ZoneId),
        price: Some(price),
        spot_price: spot,
    };
    let offerings = vec![
        offer(0, 0, Some(0), 1.00, Some(0.30)),
        offer(0, 0, Some(1), 0.90, None),
        offer(0, 1, Some(2), 0.80, Some(0.25)),
        offer(1, 2, None, 0.85, Some(0.20)),
        offer(2, 1, Some(2), 3.00, Some(1.00)),
        offer(3, 2, None, 2.50, None),
    ];
    Catalog {
        clouds,
        regions,
        zones,
        instance_types,
        offerings,
        images: Vec::new(),
    }
}

fn cpu() -> Resources {
    Resources {
        cpus: Some(Amount::at_least(8.0)),
        ..Resources::default()
    }
}

fn gpu() -> Resources {
    Resources {
        accelerator: Some(Accelerator {
            name: "V100".into(),
            count: 1.0,
        }),
        ..Resources::default()
    }
}

fn task(name: &str, resources: Resources) -> Task {
    let mut task = Task::new(name);
    task.resources = ResourceChoice::single(resources);
    task
}

fn plan(dag: &Dag, options: &Options) -> Solution {
    optimize(dag, &tiny_catalog(), options).unwrap_or_else(|err| panic!("no plan: {err}"))
}

/// `cloud/region/zone` of each task in the best plan.
fn places(solution: &Solution) -> Vec<String> {
    solution
        .best
        .tasks
        .iter()
        .map(|p| match &p.zone {
            Some(zone) => format!("{}/{}/{zone} {}", p.cloud, p.region, p.instance_type),
            None => format!("{}/{} {}", p.cloud, p.region, p.instance_type),
        })
        .collect()
}

fn check(dag: &Dag, options: &Options, expected: &[&str]) {
    assert_eq!(places(&plan(dag, options)), expected);
}

fn error(dag: &Dag, options: &Options) -> String {
    match optimize(dag, &tiny_catalog(), options) {
        Ok(solution) => panic!("expected no plan, got {:?}", places(&solution)),
        Err(err) => err.to_string(),
    }
}

#[test]
fn a_single_task_takes_the_cheapest_zone() {
    let dag = Dag::single(task("a", cpu()));
    check(&dag, &Options::default(), &["east/e2/e2a cpu8"]);
    let solution = plan(&dag, &Options::default());
    assert!(solution.best.tasks[0].runtime_assumed);
    assert!(
        (solution.best.total_cost - 0.80).abs() < 1e-9,
        "1h assumed at $0.80/h"
    );
}

#[test]
fn spot_uses_spot_prices_and_skips_places_without_them() {
    let dag = Dag::single(task(
        "a",
        Resources {
            use_spot: true,
            ..cpu()
        },
    ));
    check(&dag, &Options::default(), &["west/w1 cpu8"]);
}

#[test]
fn nodes_and_runtime_scale_the_cost() {
    let mut one = task("a", cpu());
    one.num_nodes = 4;
    one.estimated_runtime = Some(Duration::from_hours(3.0));
    let solution = plan(&Dag::single(one), &Options::default());
    assert!((solution.best.total_cost - 0.80 * 4.0 * 3.0).abs() < 1e-9);
    assert!((solution.best.tasks[0].cluster_hourly_price - 3.2).abs() < 1e-9);
}

#[test]
fn input_data_pulls_a_task_to_its_region_when_egress_outweighs_the_price_gap() {
    let mut reader = task("read", cpu());
    reader.inputs.push(DataInput {
        path: "s3://b/x".into(),
        infra: Infra::parse("east/e1").unwrap(),
        size: Size::from_gigabytes(100.0),
    });
    // e2a is $0.10/h cheaper than e1b, but 100 GB from e1 to e2 costs $2.
    check(
        &Dag::single(reader.clone()),
        &Options::default(),
        &["east/e1/e1b cpu8"],
    );
    // With little data the cheaper region wins again.
    reader.inputs[0].size = Size::from_gigabytes(1.0);
    check(
        &Dag::single(reader),
        &Options::default(),
        &["east/e2/e2a cpu8"],
    );
}

#[test]
fn egress_between_tasks_keeps_a_chain_together() {
    // The producer is pinned to the east cloud (cheapest there: e2a). The GPU task can only run
    // in e2 or w1, and w1 is $0.50/h cheaper; but 500 GB from east to west costs $50, so the
    // GPU task stays in e2 with its input.
    let east = Resources {
        infra: Infra::parse("east").unwrap(),
        ..cpu()
    };
    let mut producer = task("prep", east);
    producer.outputs = Some(DataOutput {
        path: None,
        size: Size::from_gigabytes(500.0),
    });
    let consumer = task("train", gpu());
    let dag = Dag {
        name: Some("chain".into()),
        tasks: vec![producer.clone(), consumer.clone()],
        edges: vec![(TaskIdx(0), TaskIdx(1))],
        job_group: None,
    };
    check(
        &dag,
        &Options::default(),
        &["east/e2/e2a cpu8", "east/e2/e2a gpu1"],
    );
    // Without data on the edge, each task goes to its own cheapest place.
    producer.outputs = None;
    let dag = Dag {
        tasks: vec![producer, consumer],
        ..dag
    };
    check(
        &dag,
        &Options::default(),
        &["east/e2/e2a cpu8", "west/w1 gpu1"],
    );
}

#[test]
fn time_objective_takes_the_faster_option_of_any_of() {
    let mut both = task("train", cpu());
    both.resources = ResourceChoice {
        options: vec![
            Resources {
                estimated_runtime: Some(Duration::from_hours(10.0)),
                ..cpu()
            },
            Resources {
                estimated_runtime: Some(Duration::from_hours(1.0)),
                ..gpu()
            },
        ],
        ordered: false,
    };
    let dag = Dag::single(both);
    // Cost: CPU 10h × 0.80 = $8 vs GPU 1h × 2.50 = $2.50 → GPU is cheaper too.
    check(&dag, &Options::default(), &["west/w1 gpu1"]);
    let time = Options {
        objective: Objective::Time,
        ..Options::default()
    };
    check(&dag, &time, &["west/w1 gpu1"]);
    // Make the CPU option cheap but slow: cost picks CPU, time picks GPU.
    let mut slow_cheap = dag.clone();
    slow_cheap.tasks[0].resources.options[0].estimated_runtime = Some(Duration::from_hours(2.0));
    check(&slow_cheap, &Options::default(), &["east/e2/e2a cpu8"]);
    check(&slow_cheap, &time, &["west/w1 gpu1"]);
}

#[test]
fn ordered_takes_the_first_feasible_option_even_when_a_later_one_is_cheaper() {
    let mut preferring = task("t", gpu());
    preferring.resources = ResourceChoice {
        options: vec![gpu(), cpu()],
        ordered: true,
    };
    check(
        &Dag::single(preferring.clone()),
        &Options::default(),
        &["west/w1 gpu1"],
    );
    // With the GPU's every place blocked, the next option is used.
    let blocked = Options {
        blocked: vec![
            Infra::parse("west").unwrap(),
            Infra::parse("east/e2").unwrap(),
        ],
        ..Options::default()
    };
    check(&Dag::single(preferring), &blocked, &["east/e1/e1b cpu8"]);
}

#[test]
fn blocking_a_zone_region_or_cloud_moves_to_the_next_best() {
    let dag = Dag::single(task("a", cpu()));
    let block = |list: &[&str]| Options {
        blocked: list
            .iter()
            .map(|text| Infra::parse(text).unwrap())
            .collect(),
        ..Options::default()
    };
    check(&dag, &block(&["east/e2/e2a"]), &["west/w1 cpu8"]);
    check(&dag, &block(&["east/e2", "west"]), &["east/e1/e1b cpu8"]);
    check(&dag, &block(&["east"]), &["west/w1 cpu8"]);
    assert!(error(&dag, &block(&["east", "west"])).contains("is blocked"));
}

#[test]
fn pinned_infra_is_respected() {
    let pinned = |infra: &str| {
        Dag::single(task(
            "a",
            Resources {
                infra: Infra::parse(infra).unwrap(),
                ..cpu()
            },
        ))
    };
    check(
        &pinned("east/e1"),
        &Options::default(),
        &["east/e1/e1b cpu8"],
    );
    check(
        &pinned("east/e1/e1a"),
        &Options::default(),
        &["east/e1/e1a cpu8"],
    );
    check(&pinned("west"), &Options::default(), &["west/w1 cpu8"]);
}

#[test]
fn infeasible_plans_name_the_constraint() {
    let opts = Options::default();
    let many_gpus = Resources {
        accelerator: Some(Accelerator {
            name: "V100".into(),
            count: 8.0,
        }),
        ..gpu()
    };
    assert_eq!(
        error(&Dag::single(task("big", many_gpus)), &opts),
        "task `big`: no instance type in the catalog has accelerators V100:8"
    );
    let gpu_in_e1 = Resources {
        infra: Infra::parse("east/e1").unwrap(),
        ..gpu()
    };
    assert_eq!(
        error(&Dag::single(task("g", gpu_in_e1)), &opts),
        "task `g`: accelerators V100:1 is not offered in region e1 (it is in: e2)"
    );
    let spot_gpu_west = Resources {
        infra: Infra::parse("west").unwrap(),
        use_spot: true,
        ..gpu()
    };
    assert_eq!(
        error(&Dag::single(task("s", spot_gpu_west)), &opts),
        "task `s`: accelerators V100:1 has no spot offer in west"
    );
    let capped = Options {
        max_hourly_price: Some(0.5),
        ..Options::default()
    };
    assert_eq!(
        error(&Dag::single(task("c", cpu())), &capped),
        "task `c`: the cheapest on-demand offer for 8+ vCPUs costs $0.8000/h, over the price cap of $0.5000/h"
    );
    let typo = Resources {
        instance_type: Some("cpu9".into()),
        ..Resources::default()
    };
    assert_eq!(
        error(&Dag::single(task("t", typo)), &opts),
        "task `t`: instance type `cpu9` is not in the catalog; did you mean `cpu8`?"
    );
}

#[test]
fn a_price_cap_counts_every_node() {
    let mut wide = task("wide", cpu());
    wide.num_nodes = 2;
    // 2 nodes × $0.80 = $1.60/h; a $1.75 cap leaves e2a ($1.60) and w1 ($1.70).
    let capped = Options {
        max_hourly_price: Some(1.75),
        ..Options::default()
    };
    check(&Dag::single(wide.clone()), &capped, &["east/e2/e2a cpu8"]);
    let tight = Options {
        max_hourly_price: Some(1.5),
        ..Options::default()
    };
    assert!(matches!(
        optimize(&Dag::single(wide), &tiny_catalog(), &tight),
        Err(PlanError::Infeasible { .. })
    ));
}

#[test]
fn alternatives_are_ranked_and_distinct() {
    let dag = Dag::single(task("a", cpu()));
    let options = Options {
        alternatives: 10,
        ..Options::default()
    };
    let solution = plan(&dag, &options);
    let costs: Vec<f64> = std::iter::once(&solution.best)
        .chain(&solution.alternatives)
        .map(|plan| plan.total_cost)
        .collect();
    // Four zones offer cpu8: e2a 0.80, w1 0.85, e1b 0.90, e1a 1.00. Alternatives differ in
    // region (or instance), so e1a, a dearer zone of e1, is not one.
    assert_eq!(costs, vec![0.80, 0.85, 0.90]);
    // `considered` lists the chosen place, then the best on the other cloud.
    let considered: Vec<&str> = solution.considered[0]
        .iter()
        .map(|p| p.cloud.as_str())
        .collect();
    assert_eq!(considered, vec!["east", "west"]);
}

#[test]
fn the_time_objective_is_the_dags_finish_time_not_the_sum_of_its_tasks() {
    // `prepare` (1h) feeds two branches that run at the same time: `long` (CPU 5h or GPU 4h)
    // and `short` (CPU 2h or GPU 1h). The DAG finishes when `long` does, so the fastest plan
    // puts `long` on the GPU (finish 5h) and leaves `short` on the cheaper CPU: a GPU there
    // would save an hour of task time but not a minute of the run.
    let choice = |name: &str, cpu_hours: f64, gpu_hours: f64| {
        let mut task = Task::new(name);
        task.resources = ResourceChoice {
            options: vec![
                Resources {
                    estimated_runtime: Some(Duration::from_hours(cpu_hours)),
                    ..cpu()
                },
                Resources {
                    estimated_runtime: Some(Duration::from_hours(gpu_hours)),
                    ..gpu()
                },
            ],
            ordered: false,
        };
        task
    };
    let mut prepare = task("prepare", cpu());
    prepare.estimated_runtime = Some(Duration::from_hours(1.0));
    let dag = Dag {
        name: Some("fork".into()),
        tasks: vec![prepare, choice("long", 5.0, 4.0), choice("short", 2.0, 1.0)],
        edges: vec![(TaskIdx(0), TaskIdx(1)), (TaskIdx(0), TaskIdx(2))],
        job_group: None,
    };
    let time = Options {
        objective: Objective::Time,
        ..Options::default()
    };
    check(
        &dag,
        &time,
        &["east/e2/e2a cpu8", "west/w1 gpu1", "east/e2/e2a cpu8"],
    );
    let solution = plan(&dag, &time);
    assert_eq!(solution.best.finish_seconds, 5.0 * 3600.0);
    // Machine-hours: 1 + 4 + 2 node-hours.
    assert_eq!(solution.best.machine_hours, 7.0);
}

/// The tiny catalog with grid intensities: e1 300, e2 unknown, w1 100 gCO2/kWh. `cpu8` (8 vCPUs,
/// 32 GiB) draws (8 × 2.12 + 32 × 0.392) W × PUE 1.135 = 33.487 W, so an hour emits 10.05 g in
/// e1, 3.35 g in w1 and, at the assumed world average of 475 g/kWh, 15.91 g in e2.
fn carbon_catalog() -> Catalog {
    let mut catalog = tiny_catalog();
    catalog.regions[0].carbon_g_per_kwh = Some(300.0);
    catalog.regions[1].carbon_g_per_kwh = None;
    catalog.regions[2].carbon_g_per_kwh = Some(100.0);
    catalog
}

fn carbon_plan(options: &Options) -> Result<Solution, PlanError> {
    optimize(&Dag::single(task("c", cpu())), &carbon_catalog(), options)
}

#[test]
fn the_carbon_objective_picks_the_cleaner_grid_at_a_similar_price() {
    let cheapest = carbon_plan(&Options::default()).unwrap();
    assert_eq!(places(&cheapest), ["east/e2/e2a cpu8"]);
    let placement = &cheapest.best.tasks[0];
    assert!(placement.carbon_estimated && cheapest.best.carbon_estimated);
    assert_eq!(placement.carbon_g_per_kwh, 475.0);
    assert!((placement.carbon_g - 15.906).abs() < 0.01, "{placement:?}");
    let carbon = Options {
        objective: Objective::Carbon,
        alternatives: 2,
        ..Options::default()
    };
    let cleanest = carbon_plan(&carbon).unwrap();
    assert_eq!(places(&cleanest), ["west/w1 cpu8"]);
    let best = &cleanest.best;
    assert_eq!(best.objective, Objective::Carbon);
    assert!((best.energy_kwh - 0.033487).abs() < 1e-5, "{best:?}");
    assert!((best.carbon_g - 3.3487).abs() < 1e-3, "{best:?}");
    assert!(!best.carbon_estimated);
    assert!((best.total_cost - 0.85).abs() < 1e-9);
    // Next best by carbon: e1 (e1b, the cheaper zone at the same intensity), then e2.
    let next: Vec<f64> = cleanest.alternatives.iter().map(|p| p.total_cost).collect();
    assert_eq!(next, vec![0.90, 0.80]);
}

#[test]
fn carbon_limits_filter_and_refuse() {
    // Under the cost objective a cap of 5 g leaves only w1.
    let capped = Options {
        max_carbon_g: Some(5.0),
        ..Options::default()
    };
    assert_eq!(places(&carbon_plan(&capped).unwrap()), ["west/w1 cpu8"]);
    // Under the time objective too (every place is as fast: carbon breaks the tie).
    let capped_time = Options {
        objective: Objective::Time,
        ..capped.clone()
    };
    assert_eq!(
        places(&carbon_plan(&capped_time).unwrap()),
        ["west/w1 cpu8"]
    );
    // Nothing emits 2 g or less: the error names the limit and the least achievable.
    for objective in [Objective::Cost, Objective::Time, Objective::Carbon] {
        let tight = Options {
            objective,
            max_carbon_g: Some(2.0),
            ..Options::default()
        };
        let err = carbon_plan(&tight).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the lowest-carbon plan emits 3 gCO2, over the limit of 2 g; \
             raise --max-carbon or relax the resources",
            "{objective:?}"
        );
    }
    // A budget under the carbon objective: the cleanest plan within $0.84 is e2a.
    let budgeted = Options {
        objective: Objective::Carbon,
        budget: Some(0.84),
        ..Options::default()
    };
    assert_eq!(
        places(&carbon_plan(&budgeted).unwrap()),
        ["east/e2/e2a cpu8"]
    );
    // A budget and a cap under cost: the cheapest within 11 g is w1 at $0.85, over $0.84
    // (e2a, at $0.80, emits 15.9 g).
    let both = Options {
        budget: Some(0.84),
        max_carbon_g: Some(11.0),
        ..Options::default()
    };
    assert_eq!(
        carbon_plan(&both).unwrap_err().to_string(),
        "the cheapest plan within the carbon limit of 11 g costs $0.85, over the budget of \
         $0.84; raise --budget or --max-carbon"
    );
    let enough = Options {
        budget: Some(0.85),
        ..both.clone()
    };
    assert_eq!(places(&carbon_plan(&enough).unwrap()), ["west/w1 cpu8"]);
    let under_time = Options {
        objective: Objective::Time,
        budget: Some(10.0),
        max_carbon_g: Some(10.0),
        ..Options::default()
    };
    // Both under the time objective: every place is as fast, w1 fits both ($0.85, 3.35 g).
    assert_eq!(places(&carbon_plan(&under_time).unwrap()), ["west/w1 cpu8"]);
    // The cap leaves w1 and e1 (10 g); a budget of $0.84 leaves neither.
    let neither = Options {
        budget: Some(0.84),
        max_carbon_g: Some(11.0),
        ..under_time.clone()
    };
    assert_eq!(
        carbon_plan(&neither).unwrap_err().to_string(),
        "the cheapest plan within the carbon limit of 11 g costs $0.85, over the budget of \
         $0.84; raise --budget or --max-carbon"
    );
    let no_cap = Options {
        max_carbon_g: Some(2.0),
        ..under_time
    };
    assert_eq!(
        carbon_plan(&no_cap).unwrap_err().to_string(),
        "the lowest-carbon plan emits 3 gCO2, over the limit of 2 g; raise --max-carbon or \
         relax the resources"
    );
}

/// The carbon catalog with w1's grid dirty from 12:00 to 18:00 UTC (900 g) and clean otherwise
/// (100 g); e1 stays at 300 g.
fn hourly_carbon_catalog() -> Catalog {
    let mut catalog = carbon_catalog();
    let day = (0..24)
        .map(|hour| {
            if (12..18).contains(&hour) {
                900.0
            } else {
                100.0
            }
        })
        .collect();
    catalog.regions[2].carbon_hourly = Some(aloft_catalog::CarbonProfile {
        typical_day: day,
        hours: Vec::new(),
    });
    catalog
}

#[test]
fn carbon_by_the_hour_moves_a_task_with_the_start_time() {
    let at = |time: &str| Options {
        objective: Objective::Carbon,
        start_time: Some(aloft_catalog::parse_utc(time).unwrap()),
        ..Options::default()
    };
    let catalog = hourly_carbon_catalog();
    let single = Dag::single(task("c", cpu()));
    // At night w1 is the cleanest; at 13:00 its 900 g lose to e1's 300 g.
    let night = optimize(&single, &catalog, &at("2026-12-08T02:00Z")).unwrap();
    assert_eq!(places(&night), ["west/w1 cpu8"]);
    assert_eq!(night.best.tasks[0].carbon_g_per_kwh, 100.0);
    assert_eq!(
        night.best.start_time.as_deref(),
        Some("2026-12-08T02:00:00Z")
    );
    let afternoon = optimize(&single, &catalog, &at("2026-12-08T13:00Z")).unwrap();
    assert_eq!(places(&afternoon), ["east/e1/e1b cpu8"]);
    // Half an hour at 100 g then half at 900 g: 500 g, still worse than e1.
    let half = optimize(&single, &catalog, &at("2026-12-08T11:30Z")).unwrap();
    assert_eq!(places(&half), ["east/e1/e1b cpu8"]);
    let considered = &half.considered[0];
    assert!(
        considered
            .iter()
            .any(|p| p.region == "w1" && p.carbon_g_per_kwh == 500.0)
    );
    // A chain starting at 11:00: `a` runs 11-12 (w1 clean), `b` after it 12-13 (w1 dirty).
    let chain = Dag {
        name: Some("chain".into()),
        tasks: vec![task("a", cpu()), task("b", cpu())],
        edges: vec![(TaskIdx(0), TaskIdx(1))],
        job_group: None,
    };
    let solution = optimize(&chain, &catalog, &at("2026-12-08T11:00Z")).unwrap();
    assert_eq!(places(&solution), ["west/w1 cpu8", "east/e1/e1b cpu8"]);
    let offsets: Vec<f64> = solution
        .best
        .tasks
        .iter()
        .map(|p| p.start_offset_seconds)
        .collect();
    assert_eq!(offsets, [0.0, 3600.0]);
    // Without a start time: the annual averages (w1 at 100 g everywhere).
    let annual = optimize(
        &chain,
        &catalog,
        &Options {
            objective: Objective::Carbon,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(places(&annual), ["west/w1 cpu8", "west/w1 cpu8"]);
    assert_eq!(annual.best.start_time, None);
}

/// Regression: a small limit was printed rounded to whole grams or cents ("over the limit of
/// 0 g"), and the least achievable figure could print as equal to it.
#[test]
fn limits_are_printed_with_the_precision_they_were_given() {
    let tiny = Options {
        max_carbon_g: Some(0.001),
        ..Options::default()
    };
    assert_eq!(
        carbon_plan(&tiny).unwrap_err().to_string(),
        "the lowest-carbon plan emits 3 gCO2, over the limit of 0.001 g; raise --max-carbon or \
         relax the resources"
    );
    let close = Options {
        max_carbon_g: Some(3.2),
        ..Options::default()
    };
    assert_eq!(
        carbon_plan(&close).unwrap_err().to_string(),
        "the lowest-carbon plan emits 3.3 gCO2, over the limit of 3.2 g; raise --max-carbon or \
         relax the resources"
    );
    let cents = Options {
        budget: Some(0.001),
        ..Options::default()
    };
    assert_eq!(
        carbon_plan(&cents).unwrap_err().to_string(),
        "the cheapest plan costs $0.80, over the budget of $0.001; raise --budget or relax the \
         resources"
    );
    let close = Options {
        budget: Some(0.799),
        ..Options::default()
    };
    assert_eq!(
        carbon_plan(&close).unwrap_err().to_string(),
        "the cheapest plan costs $0.80, over the budget of $0.799; raise --budget or relax the \
         resources"
    );
    let both = Options {
        budget: Some(0.845),
        max_carbon_g: Some(10.5),
        ..Options::default()
    };
    assert_eq!(
        carbon_plan(&both).unwrap_err().to_string(),
        "the cheapest plan within the carbon limit of 10.5 g costs $0.85, over the budget of \
         $0.845; raise --budget or --max-carbon"
    );
}

/// On the carbon catalog: e2a $0.80 and ~15.9 g, w1 $0.85 and 3.35 g, e1b $0.90 and 10 g.
#[test]
fn slack_trades_cost_and_carbon_from_the_task_fields() {
    let with = |carbon_slack: Option<f64>, cost_slack: Option<f64>| {
        let mut task = task("c", cpu());
        task.carbon_slack = carbon_slack;
        task.cost_slack = cost_slack;
        optimize(&Dag::single(task), &carbon_catalog(), &Options::default())
    };
    // The lowest carbon is w1's 3.35 g: with no slack, the cheapest plan that low is w1.
    let exact = with(Some(0.0), None).unwrap();
    assert_eq!(places(&exact), ["west/w1 cpu8"]);
    let bound = exact.slack.as_ref().unwrap();
    assert_eq!(bound.measure, SlackMeasure::Carbon);
    assert!((bound.reference - 3.3487).abs() < 1e-3, "{bound:?}");
    // The limit is the reference in whole milligrams, as the search counts it.
    assert!((bound.limit - 3.349).abs() < 1e-9, "{bound:?}");
    // 400 % more carbon (16.7 g) lets the cheapest plan in.
    assert_eq!(
        places(&with(Some(400.0), None).unwrap()),
        ["east/e2/e2a cpu8"]
    );
    // The reverse: the lowest carbon within 5 % of the cheapest ($0.84) is e2a; within 10 %
    // ($0.88), w1.
    let five = with(None, Some(5.0)).unwrap();
    assert_eq!(places(&five), ["east/e2/e2a cpu8"]);
    assert_eq!(five.best.objective, Objective::Carbon);
    assert!((five.slack.as_ref().unwrap().limit - 0.84).abs() < 1e-9);
    assert_eq!(places(&with(None, Some(10.0)).unwrap()), ["west/w1 cpu8"]);
    // Options override the tasks.
    let mut task = task("c", cpu());
    task.carbon_slack = Some(0.0);
    let overridden = Options {
        slack: Some(Slack {
            measure: SlackMeasure::Carbon,
            percent: 400.0,
        }),
        ..Options::default()
    };
    let solution = optimize(&Dag::single(task.clone()), &carbon_catalog(), &overridden).unwrap();
    assert_eq!(places(&solution), ["east/e2/e2a cpu8"]);
    // Tasks that disagree are refused, naming both.
    let mut other = self::task("d", cpu());
    other.cost_slack = Some(5.0);
    let dag = Dag {
        name: None,
        tasks: vec![task, other],
        edges: Vec::new(),
        job_group: None,
    };
    assert_eq!(
        optimize(&dag, &carbon_catalog(), &Options::default())
            .unwrap_err()
            .to_string(),
        "task `c` asks for carbon_slack 0% and task `d` for cost_slack 5%; the slack is for the \
         whole plan: give one, the same in every task"
    );
}

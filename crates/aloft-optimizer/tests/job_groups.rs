//! Job groups are planned in one region of one cloud (their tasks must reach each other), even
//! where splitting them would be cheaper, and the plan is still the exact optimum among the
//! plans that keep them together.

use aloft_catalog::{
    Catalog, Cloud, CloudId, InstanceType, InstanceTypeId, Offering, Region, RegionId, Zone, ZoneId,
};
use aloft_optimizer::{Objective, Options, PlanError, Solution, optimize, optimize_group};
use aloft_types::spec::JobGroup;
use aloft_types::{Accelerator, Amount, Dag, Infra, ResourceChoice, Resources, Task};

/// Two clouds, `east` (regions e1 with zones e1a, e1b; e2 with zone e2a) and `west` (region w1,
/// no zones), a CPU type everywhere and a GPU type where `gpu_prices` says (one price per
/// region: e1, e2, w1; `None`: not offered there). CPU prices per zone come from `cpu_prices`
/// (e1a, e1b, e2a, w1).
fn catalog(cpu_prices: [f64; 4], gpu_prices: [Option<f64>; 3]) -> Catalog {
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
    let zone = |region: u32, name: &str| Zone {
        region: RegionId(region),
        name: name.into(),
    };
    let instance_type = |cloud: u16, name: &str, gpu: bool| InstanceType {
        cloud: CloudId(cloud),
        name: name.into(),
        vcpus: 8.0,
        memory_gib: 32.0,
        accelerator: gpu.then(|| ("V100".to_owned(), 1.0)),
        arch: None,
    };
    let offer = |ty: u32, region: u32, zone: Option<u32>, price: f64| Offering {
        instance_type: InstanceTypeId(ty),
        region: RegionId(region),
        zone: zone.map(ZoneId),
        price: Some(price),
        spot_price: None,
    };
    let mut offerings = vec![
        offer(0, 0, Some(0), cpu_prices[0]),
        offer(0, 0, Some(1), cpu_prices[1]),
        offer(0, 1, Some(2), cpu_prices[2]),
        offer(1, 2, None, cpu_prices[3]),
    ];
    // The GPU type in each region's first zone (east) or the region (west).
    let gpu_places = [(2, 0, Some(0)), (2, 1, Some(2)), (3, 2, None)];
    for ((ty, region, zone), price) in gpu_places.into_iter().zip(gpu_prices) {
        if let Some(price) = price {
            offerings.push(offer(ty, region, zone, price));
        }
    }
    Catalog {
        clouds,
        regions: vec![region(0, "e1"), region(0, "e2"), region(1, "w1")],
        zones: vec![zone(0, "e1a"), zone(0, "e1b"), zone(1, "e2a")],
        instance_types: vec![
            instance_type(0, "cpu8", false),
            instance_type(1, "cpu8", false),
            instance_type(0, "gpu1", true),
            instance_type(1, "gpu1", true),
        ],
        offerings,
        images: Vec::new(),
    }
}

fn task(name: &str, gpu: bool) -> Task {
    let mut task = Task::new(name);
    task.resources = ResourceChoice::single(Resources {
        cpus: (!gpu).then(|| Amount::at_least(8.0)),
        accelerator: gpu.then(|| Accelerator {
            name: "V100".into(),
            count: 1.0,
        }),
        ..Resources::default()
    });
    task
}

fn group(tasks: Vec<Task>) -> Dag {
    Dag {
        name: Some("g".into()),
        tasks,
        edges: Vec::new(),
        job_group: Some(JobGroup {
            primary_tasks: Vec::new(),
            termination_delay: None,
        }),
    }
}

/// `cloud/region` of each task in the best plan.
fn regions(solution: &Solution) -> Vec<String> {
    solution
        .best
        .tasks
        .iter()
        .map(|placement| format!("{}/{}", placement.cloud, placement.region))
        .collect()
}

#[test]
fn a_job_group_is_never_split_even_where_splitting_is_cheaper() {
    // CPU is cheapest in e2 ($0.80), the GPU in w1 ($2.50): split, $3.30. Together: e2 costs
    // 0.80 + 3.00 = $3.80, w1 0.85 + 2.50 = $3.35, e1 has no GPU.
    let catalog = catalog([1.00, 0.90, 0.80, 0.85], [None, Some(3.00), Some(2.50)]);
    let dag = group(vec![task("server", false), task("trainer", true)]);
    let split = optimize(&dag, &catalog, &Options::default()).unwrap();
    assert_eq!(regions(&split), ["east/e2", "west/w1"]);
    assert!((split.best.total_cost - 3.30).abs() < 1e-9);

    let together = optimize_group(&dag, &catalog, &Options::default()).unwrap();
    assert_eq!(regions(&together), ["west/w1", "west/w1"]);
    assert!((together.best.total_cost - 3.35).abs() < 1e-9);
    assert!(together.optimality.proven_optimal);
}

#[test]
fn the_next_best_plans_of_a_group_keep_it_together_too() {
    let catalog = catalog(
        [1.00, 0.90, 0.80, 0.85],
        [Some(4.00), Some(3.00), Some(2.50)],
    );
    let dag = group(vec![task("server", false), task("trainer", true)]);
    let options = Options {
        alternatives: 5,
        ..Options::default()
    };
    let solution = optimize_group(&dag, &catalog, &options).unwrap();
    assert_eq!(regions(&solution), ["west/w1", "west/w1"]);
    assert!(!solution.alternatives.is_empty());
    let mut last = solution.best.total_cost;
    for plan in &solution.alternatives {
        let first = (&plan.tasks[0].cloud, &plan.tasks[0].region);
        assert!(
            plan.tasks
                .iter()
                .all(|placement| (&placement.cloud, &placement.region) == first),
            "an alternative splits the group: {plan:?}"
        );
        assert!(plan.total_cost >= last - 1e-9, "alternatives are ranked");
        last = plan.total_cost;
    }
    // The best of e2 (0.80 + 3.00) comes before the best of e1 (0.90 + 4.00).
    assert_eq!(solution.alternatives[0].tasks[0].region, "e2");
}

#[test]
fn a_task_pinned_to_a_region_takes_the_whole_group_there() {
    let catalog = catalog([1.00, 0.90, 0.80, 0.85], [None, Some(3.00), Some(2.50)]);
    let mut server = task("server", false);
    server.resources.options[0].infra = Infra::parse("east").unwrap();
    let dag = group(vec![server, task("trainer", true)]);
    let solution = optimize_group(&dag, &catalog, &Options::default()).unwrap();
    assert_eq!(regions(&solution), ["east/e2", "east/e2"]);
}

#[test]
fn a_group_no_region_can_hold_is_refused_with_the_reason() {
    // The GPU is only in w1, and the server is pinned to east.
    let catalog = catalog([1.00, 0.90, 0.80, 0.85], [None, None, Some(2.50)]);
    let mut server = task("server", false);
    server.resources.options[0].infra = Infra::parse("east").unwrap();
    let dag = group(vec![server, task("trainer", true)]);
    assert!(optimize(&dag, &catalog, &Options::default()).is_ok());
    let err = optimize_group(&dag, &catalog, &Options::default()).unwrap_err();
    assert_eq!(err, PlanError::GroupSplit);
    assert!(err.to_string().contains("no single region"), "{err}");
    // A task that cannot run anywhere is named as for any DAG.
    let mut nowhere = task("nowhere", true);
    nowhere.resources.options[0].infra = Infra::parse("east/e1").unwrap();
    let err = optimize_group(&group(vec![nowhere]), &catalog, &Options::default()).unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
}

/// A small deterministic generator (xorshift), so the cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn price(&mut self) -> f64 {
        // $0.50 to $4.00 in cents.
        f64::from(50 + (self.next() % 351) as u32) / 100.0
    }
}

#[test]
fn the_group_plan_is_the_cheapest_plan_that_keeps_the_group_in_one_region() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..200 {
        let cpu = [rng.price(), rng.price(), rng.price(), rng.price()];
        let gpu = [0, 1, 2].map(|_| (!rng.next().is_multiple_of(4)).then(|| rng.price()));
        let catalog = catalog(cpu, gpu);
        let count = 1 + (rng.next() % 3) as usize;
        let tasks: Vec<Task> = (0..count)
            .map(|idx| task(&format!("t{idx}"), rng.next().is_multiple_of(2)))
            .collect();
        let kinds: Vec<bool> = tasks
            .iter()
            .map(|task| task.resources.options[0].accelerator.is_some())
            .collect();
        // Brute force: per region, each task on its cheapest offer there.
        let cheapest_cpu = [cpu[0].min(cpu[1]), cpu[2], cpu[3]];
        let brute = (0..3)
            .filter_map(|region| {
                kinds
                    .iter()
                    .map(|&is_gpu| {
                        if is_gpu {
                            gpu[region]
                        } else {
                            Some(cheapest_cpu[region])
                        }
                    })
                    .sum::<Option<f64>>()
            })
            .fold(None, |best: Option<f64>, cost| {
                Some(best.map_or(cost, |best| best.min(cost)))
            });
        let dag = group(tasks);
        match (brute, optimize_group(&dag, &catalog, &Options::default())) {
            (Some(cost), Ok(solution)) => {
                assert!(
                    (solution.best.total_cost - cost).abs() < 1e-6,
                    "case {case}: planned ${} but ${cost} keeps the group together",
                    solution.best.total_cost
                );
                let first = &solution.best.tasks[0].region;
                assert!(
                    solution
                        .best
                        .tasks
                        .iter()
                        .all(|placement| &placement.region == first),
                    "case {case}: split"
                );
            }
            (None, Err(_)) => {}
            (brute, planned) => panic!("case {case}: brute force {brute:?}, planned {planned:?}"),
        }
    }
}

#[test]
fn under_the_time_objective_a_group_still_stays_together() {
    let catalog = catalog([1.00, 0.90, 0.80, 0.85], [None, Some(3.00), Some(2.50)]);
    let dag = group(vec![task("server", false), task("trainer", true)]);
    let options = Options {
        objective: Objective::Time,
        ..Options::default()
    };
    let solution = optimize_group(&dag, &catalog, &options).unwrap();
    let first = &solution.best.tasks[0].region;
    assert!(solution.best.tasks.iter().all(|p| &p.region == first));
    // Equal runtimes everywhere: the cost breaks the tie (w1, $3.35).
    assert_eq!(regions(&solution), ["west/w1", "west/w1"]);
}

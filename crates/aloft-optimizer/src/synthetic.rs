//! Synthetic workloads for tests and benchmarks: a small deterministic PRNG and DAG shapes.
//!
//! Kept in the library (not behind `cfg(test)`) so the benchmark harness and the exactness
//! tests draw from the same generator.

use aloft_types::{Dag, Task, TaskIdx};

/// SplitMix64: small, fast, and the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }

    /// Uniform in `[low, high)`.
    pub fn float(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, probability: f64) -> bool {
        self.float(0.0, 1.0) < probability
    }
}

/// How tasks depend on each other.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// Each task depends on the one before it.
    Chain,
    /// Each task depends on each earlier task with this probability.
    Dense { edge_probability: f64 },
    /// Each task after the first depends on 1 to `max_parents` random earlier tasks.
    Sparse { max_parents: usize },
}

/// A DAG of `tasks` tasks made by `make_task` (given the task index), wired as `shape` says.
pub fn dag(
    rng: &mut Rng,
    tasks: usize,
    shape: Shape,
    mut make_task: impl FnMut(&mut Rng, usize) -> Task,
) -> Dag {
    let mut dag = Dag {
        name: Some("synthetic".to_owned()),
        tasks: Vec::new(),
        edges: Vec::new(),
        job_group: None,
    };
    for task_idx in 0..tasks {
        dag.tasks.push(make_task(rng, task_idx));
        match shape {
            Shape::Chain if task_idx > 0 => {
                dag.edges.push((TaskIdx(task_idx - 1), TaskIdx(task_idx)))
            }
            Shape::Chain => {}
            Shape::Dense { edge_probability } => {
                for parent in 0..task_idx {
                    if rng.chance(edge_probability) {
                        dag.edges.push((TaskIdx(parent), TaskIdx(task_idx)));
                    }
                }
            }
            Shape::Sparse { max_parents } if task_idx > 0 => {
                let parents = 1 + rng.below(max_parents.min(task_idx));
                let mut chosen: Vec<usize> = Vec::new();
                while chosen.len() < parents {
                    let parent = rng.below(task_idx);
                    if !chosen.contains(&parent) {
                        chosen.push(parent);
                    }
                }
                chosen.sort_unstable();
                dag.edges.extend(
                    chosen
                        .into_iter()
                        .map(|parent| (TaskIdx(parent), TaskIdx(task_idx))),
                );
            }
            Shape::Sparse { .. } => {}
        }
    }
    dag
}

/// Input families that are hard for the exact solver (issue 11): the benchmark measures them at
/// several sizes, and the tests draw small ones to check the bound against brute force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HardFamily {
    /// Tasks each allowed in two of three regions of one cloud (GCP `us-central1`, `us-east1`,
    /// `europe-west4`), 1-3 parents each, and heavy outputs: every edge wants its two tasks in
    /// one region, but neighbours often share no allowed region, so the pulls conflict
    /// (frustrated cycles, where the LP relaxation is not tight).
    FrustratedRegions,
    /// The same two-of-three-regions tasks in a dense DAG: 4-8 parents each.
    Dense,
    /// Tasks with four to six resource options, each pinned to its own region (of eight, over
    /// AWS, GCP and Azure), CPU or GPU, with heavy outputs and 1-3 parents.
    ManyOptions,
}

impl HardFamily {
    pub const ALL: [HardFamily; 3] = [
        HardFamily::FrustratedRegions,
        HardFamily::Dense,
        HardFamily::ManyOptions,
    ];

    pub fn label(self) -> &'static str {
        match self {
            HardFamily::FrustratedRegions => "two of three regions",
            HardFamily::Dense => "two of three regions, dense",
            HardFamily::ManyOptions => "4-6 pinned options",
        }
    }

    /// A DAG of this family with `tasks` tasks, the same for the same seed.
    pub fn dag(self, tasks: usize, seed: u64) -> Dag {
        let mut rng = Rng::new(seed ^ 0x005e_ed0f_4a2d);
        match self {
            HardFamily::FrustratedRegions => dag(
                &mut rng,
                tasks,
                Shape::Sparse { max_parents: 3 },
                two_of_three_regions,
            ),
            HardFamily::Dense => {
                let mut made = dag(
                    &mut rng,
                    tasks,
                    Shape::Sparse { max_parents: 4 },
                    two_of_three_regions,
                );
                // Sparse draws 1 to 4 parents; add up to 4 more per task (4-8 in all where
                // enough earlier tasks exist).
                let mut extra = Vec::new();
                for child in 1..tasks {
                    for _ in 0..4 {
                        let parent = rng.below(child);
                        let edge = (aloft_types::TaskIdx(parent), aloft_types::TaskIdx(child));
                        if !made.edges.contains(&edge) && !extra.contains(&edge) {
                            extra.push(edge);
                        }
                    }
                }
                made.edges.extend(extra);
                made
            }
            HardFamily::ManyOptions => dag(
                &mut rng,
                tasks,
                Shape::Sparse { max_parents: 3 },
                many_pinned_options,
            ),
        }
    }
}

const THREE_REGIONS: [&str; 3] = ["gcp/us-central1", "gcp/us-east1", "gcp/europe-west4"];

/// Every region the hard families pin tasks to (`cloud/region`).
pub const HARD_FAMILY_REGIONS: [&str; 8] = [
    "aws/us-east-1",
    "aws/us-west-2",
    "aws/eu-west-1",
    "gcp/us-central1",
    "gcp/us-east1",
    "gcp/europe-west4",
    "azure/eastus",
    "azure/westeurope",
];

/// A CPU option pinned to `region`: at least `cpus` vCPUs, running `hours`.
fn cpu_in(region: &str, cpus: f64, hours: f64) -> aloft_types::Resources {
    aloft_types::Resources {
        infra: aloft_types::Infra::parse(region).expect("a valid region"),
        cpus: Some(aloft_types::Amount::at_least(cpus)),
        estimated_runtime: Some(aloft_types::Duration::from_hours(hours)),
        ..aloft_types::Resources::default()
    }
}

fn with_output(rng: &mut Rng, mut task: Task, low_gb: f64, high_gb: f64) -> Task {
    task.outputs = Some(aloft_types::DataOutput {
        path: None,
        size: aloft_types::Size::from_gigabytes(rng.float(low_gb, high_gb)),
    });
    task
}

fn two_of_three_regions(rng: &mut Rng, task_idx: usize) -> Task {
    let left_out = rng.below(3);
    let hours = rng.float(1.0, 6.0);
    let cpus = [4.0, 8.0, 16.0][rng.below(3)];
    let options = THREE_REGIONS
        .iter()
        .enumerate()
        .filter(|&(idx, _)| idx != left_out)
        .map(|(_, region)| cpu_in(region, cpus, hours))
        .collect();
    let mut task = Task::new(format!("t{task_idx}"));
    task.resources = aloft_types::ResourceChoice {
        options,
        ordered: false,
    };
    with_output(rng, task, 20.0, 400.0)
}

fn many_pinned_options(rng: &mut Rng, task_idx: usize) -> Task {
    let count = 4 + rng.below(3);
    let mut regions: Vec<usize> = Vec::new();
    while regions.len() < count {
        let region = rng.below(HARD_FAMILY_REGIONS.len());
        if !regions.contains(&region) {
            regions.push(region);
        }
    }
    let options = regions
        .into_iter()
        .map(|region| {
            let cpus = [4.0, 8.0, 16.0][rng.below(3)];
            let mut option = cpu_in(HARD_FAMILY_REGIONS[region], cpus, rng.float(1.0, 6.0));
            if rng.chance(0.3) {
                option.cpus = None;
                option.memory = None;
                option.accelerator = Some(aloft_types::Accelerator {
                    name: ["T4", "L4", "V100"][rng.below(3)].to_owned(),
                    count: 1.0,
                });
                option.estimated_runtime =
                    Some(aloft_types::Duration::from_hours(rng.float(0.5, 2.0)));
            }
            option
        })
        .collect();
    let mut task = Task::new(format!("t{task_idx}"));
    task.resources = aloft_types::ResourceChoice {
        options,
        ordered: false,
    };
    with_output(rng, task, 20.0, 400.0)
}

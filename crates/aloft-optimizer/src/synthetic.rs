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

//! The best plan and the next-best ones, by Lawler's partitioning (as in Murty's k-best
//! assignments): after taking the best plan of a subspace, split what is left of that subspace
//! into disjoint parts, the i-th one keeping the first i-1 tasks where that plan put them and
//! forbidding the i-th task's placement. The best plan of each part goes on a heap; the heap's
//! minimum is the next plan overall. Each part is solved exactly by [`solve`].

use crate::plan::SolveStats;
use crate::problem::Problem;
use crate::score::Score;
use crate::solve::{Domains, solve};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Up to `count` best plans, best first, with the statistics of the first solve.
pub(crate) fn k_best(
    problem: &Problem<'_>,
    count: usize,
) -> (Vec<(Score, Vec<usize>)>, SolveStats) {
    let mut stats = SolveStats::default();
    let full: Domains = problem
        .candidates
        .iter()
        .map(|candidates| (0..candidates.len()).collect())
        .collect();
    let mut ranked = Vec::new();
    let Some((score, assignment)) = solve(problem, full.clone(), &mut stats) else {
        return (ranked, stats);
    };
    let mut heap = BinaryHeap::new();
    let mut sequence = 0u64;
    heap.push(Reverse((score, sequence, assignment, full)));
    while let Some(Reverse((score, _, assignment, domains))) = heap.pop() {
        ranked.push((score, assignment.clone()));
        if ranked.len() >= count {
            break;
        }
        let mut scratch = SolveStats::default();
        for task in 0..assignment.len() {
            let mut part = domains.clone();
            for (earlier, domain) in part.iter_mut().enumerate().take(task) {
                *domain = vec![assignment[earlier]];
            }
            part[task].retain(|&candidate| candidate != assignment[task]);
            if part[task].is_empty() {
                continue;
            }
            if let Some((part_score, part_assignment)) = solve(problem, part.clone(), &mut scratch)
            {
                sequence += 1;
                heap.push(Reverse((part_score, sequence, part_assignment, part)));
            }
        }
    }
    (ranked, stats)
}

//! The best plan and the next-best ones, by Lawler's partitioning (as in Murty's k-best
//! assignments): after taking the best plan of a subspace, split what is left of that subspace
//! into disjoint parts, the i-th one keeping the first i-1 tasks where that plan put them and
//! forbidding the i-th task's placement. The best plan of each part goes on a heap; the heap's
//! minimum is the next plan overall. Each part is solved exactly by [`solve`].
//!
//! Under the time objective with both a carbon cap and a budget, the budget is on neither
//! measure of the score (`Problem::budget_filter`); the finish-time search bounds it (see
//! `makespan`), and each ranked plan is checked against it as well, so a plan over it is never
//! listed.

use crate::limits::Limits;
use crate::plan::SolveStats;
use crate::problem::Problem;
use crate::score::Score;
use crate::solve::{Domains, Solved, solve};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Up to `count` best plans, best first, with the statistics of the first solve and the lower
/// bound it proved. When `limits` run out, the list stops at what is known to be in order (the
/// first plan is then the best found, not necessarily the optimum: compare with the bound).
pub(crate) fn k_best(
    problem: &Problem<'_>,
    count: usize,
    limits: &mut Limits,
) -> (Vec<(Score, Vec<usize>)>, SolveStats, i64) {
    let mut stats = SolveStats::default();
    let full: Domains = problem
        .candidates
        .iter()
        .map(|candidates| (0..candidates.len()).collect())
        .collect();
    let mut ranked = Vec::new();
    let Some(Solved {
        score,
        assignment,
        lower_bound,
    }) = solve(problem, full.clone(), &mut stats, limits)
    else {
        return (ranked, stats, i64::MAX);
    };
    let mut heap = BinaryHeap::new();
    let mut sequence = 0u64;
    heap.push(Reverse((score, sequence, assignment, full)));
    while let Some(Reverse((score, _, assignment, domains))) = heap.pop() {
        // A budget on neither measure of the score (see `Problem::budget_filter`): the search
        // bounds it; this check keeps any plan over it out of the list all the same.
        if problem.fits_budget_filter(&assignment) {
            ranked.push((score, assignment.clone()));
        }
        if ranked.len() >= count || limits.stopped {
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
            if let Some(solved) = solve(problem, part.clone(), &mut scratch, limits) {
                if limits.stopped {
                    // This part's plan may not be its best: nothing after it is ranked.
                    return (ranked, stats, lower_bound);
                }
                sequence += 1;
                heap.push(Reverse((solved.score, sequence, solved.assignment, part)));
            }
        }
    }
    (ranked, stats, lower_bound)
}

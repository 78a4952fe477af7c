//! Exactness: the solver against brute force on many small random problems.

use crate::kbest::k_best;
use crate::limits::Limits;
use crate::problem::Problem;
use crate::score::Objective;
use crate::testing::{Rng, all_scores, random_catalog, random_dag};
use crate::{Options, PlanError, optimize};

fn search_space(problem: &Problem<'_>) -> f64 {
    problem.candidates.iter().map(|c| c.len() as f64).product()
}

/// Runs `check` on random problems small enough to enumerate: the solver's problem, and the
/// same one with a candidate per location *and resource option* (no collapse), for brute force.
fn for_random_problems(
    seed: u64,
    count: usize,
    check: impl FnMut(&Problem<'_>, &Problem<'_>, &str),
) {
    for_random_problems_under(seed, count, None, check);
}

/// As [`for_random_problems`], under one objective (`None`: cost or time at random).
fn for_random_problems_under(
    seed: u64,
    count: usize,
    only: Option<Objective>,
    mut check: impl FnMut(&Problem<'_>, &Problem<'_>, &str),
) {
    let mut rng = Rng::new(seed);
    let mut checked = 0;
    while checked < count {
        let clouds = 1 + rng.below(3);
        let regions = 1 + rng.below(2);
        let zones = rng.below(3);
        let catalog = random_catalog(&mut rng, clouds, regions, zones);
        let tasks = 1 + rng.below(6);
        let density = [0.2, 0.5, 0.9][rng.below(3)];
        let dag = random_dag(&mut rng, &catalog, tasks, density);
        let random = if rng.chance(0.5) {
            Objective::Cost
        } else {
            Objective::Time
        };
        let objective = only.unwrap_or(random);
        let options = Options {
            objective,
            ..Options::default()
        };
        let Ok(problem) = Problem::build(&dag, &catalog, &options) else {
            continue;
        };
        let plain = Problem::build_with(&dag, &catalog, &options, false).unwrap();
        if search_space(&plain) > 50_000.0 {
            continue;
        }
        let label = format!(
            "case {checked}: {tasks} tasks, {} edges, {objective:?}",
            dag.edges.len()
        );
        check(&problem, &plain, &label);
        checked += 1;
    }
}

#[test]
fn matches_brute_force_on_random_dags() {
    for_random_problems(1, 400, |problem, plain, label| {
        let brute = all_scores(plain)
            .into_iter()
            .map(|(score, _)| score)
            .min()
            .unwrap();
        let (ranked, _, _) = k_best(problem, 1, &mut Limits::unlimited());
        let (score, assignment) = &ranked[0];
        assert_eq!(*score, brute, "{label}");
        assert_eq!(
            problem.score_of(assignment),
            *score,
            "{label}: reported score is the plan's"
        );
    });
}

#[test]
fn matches_brute_force_on_random_dags_under_the_carbon_objective() {
    for_random_problems_under(11, 300, Some(Objective::Carbon), |problem, plain, label| {
        let brute = all_scores(plain)
            .into_iter()
            .map(|(score, _)| score)
            .min()
            .unwrap();
        let (ranked, _, _) = k_best(problem, 1, &mut Limits::unlimited());
        assert_eq!(ranked[0].0, brute, "{label}");
        assert_eq!(problem.score_of(&ranked[0].1), ranked[0].0, "{label}");
    });
}

#[test]
fn k_best_matches_the_sorted_enumeration_under_the_carbon_objective() {
    for_random_problems_under(12, 100, Some(Objective::Carbon), k_best_check);
}

#[test]
fn k_best_matches_the_sorted_enumeration() {
    for_random_problems(2, 150, k_best_check);
}

fn k_best_check(problem: &Problem<'_>, _plain: &Problem<'_>, label: &str) {
    {
        let mut all: Vec<_> = all_scores(problem)
            .into_iter()
            .map(|(score, _)| score)
            .collect();
        all.sort();
        let (ranked, _, _) = k_best(problem, 6, &mut Limits::unlimited());
        let scores: Vec<_> = ranked.iter().map(|(score, _)| *score).collect();
        assert_eq!(scores, all[..scores.len()], "{label}");
        assert_eq!(scores.len(), all.len().min(6), "{label}");
        let mut distinct: Vec<_> = ranked
            .iter()
            .map(|(_, assignment)| assignment.clone())
            .collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            ranked.len(),
            "{label}: alternatives are distinct plans"
        );
    }
}

#[test]
fn budgets_are_exact_under_the_time_objective() {
    budgets_are_exact(3, Objective::Time);
}

#[test]
fn budgets_are_exact_under_the_carbon_objective() {
    budgets_are_exact(13, Objective::Carbon);
}

fn budgets_are_exact(seed: u64, objective: Objective) {
    let mut rng = Rng::new(seed);
    let mut checked = 0;
    while checked < 200 {
        let zones = rng.below(3);
        let catalog = random_catalog(&mut rng, 2, 2, zones);
        let tasks = 1 + rng.below(5);
        let dag = random_dag(&mut rng, &catalog, tasks, 0.5);
        let plain = Options {
            objective,
            ..Options::default()
        };
        let Ok(problem) = Problem::build_with(&dag, &catalog, &plain, false) else {
            continue;
        };
        if search_space(&problem) > 20_000.0 {
            continue;
        }
        let all = all_scores(&problem);
        let costs: Vec<i64> = all.iter().map(|(score, _)| score.cost(objective)).collect();
        let (low, high) = (*costs.iter().min().unwrap(), *costs.iter().max().unwrap());
        // A budget somewhere between the cheapest and the dearest plan.
        let budget_micro = low + ((high - low) as f64 * rng.float(0.0, 1.0)) as i64;
        let budgeted = Options {
            budget: Some(budget_micro as f64 / 1e6),
            ..plain.clone()
        };
        let problem = Problem::build(&dag, &catalog, &budgeted).unwrap();
        let expected = all
            .iter()
            .filter(|(score, _)| score.cost(objective) <= problem.budget.unwrap())
            .map(|(score, _)| *score)
            .min();
        let got = k_best(&problem, 1, &mut Limits::unlimited())
            .0
            .first()
            .map(|(score, _)| *score);
        assert_eq!(got, expected, "case {checked}");
        checked += 1;
    }
}

#[test]
fn over_budget_says_what_the_cheapest_plan_costs() {
    let mut rng = Rng::new(4);
    let catalog = random_catalog(&mut rng, 2, 2, 2);
    let dag = random_dag(&mut rng, &catalog, 4, 0.5);
    let cheapest = optimize(&dag, &catalog, &Options::default())
        .unwrap()
        .best
        .total_cost;
    let options = Options {
        budget: Some(cheapest * 0.5),
        ..Options::default()
    };
    match optimize(&dag, &catalog, &options) {
        Err(PlanError::OverBudget {
            budget,
            cheapest: reported,
        }) => {
            assert!((reported - cheapest).abs() < 1e-6);
            assert!((budget - cheapest * 0.5).abs() < 1e-9);
        }
        other => panic!("expected OverBudget, got {other:?}"),
    }
    let options = Options {
        budget: Some(cheapest + 0.01),
        ..Options::default()
    };
    assert!(optimize(&dag, &catalog, &options).is_ok());
}

#[test]
fn larger_random_dags_agree_with_brute_force_when_domains_are_small() {
    // Many tasks, few places: exercises branch and bound on dense graphs.
    let mut rng = Rng::new(5);
    for case in 0..60 {
        let catalog = random_catalog(&mut rng, 2, 1, 2);
        let tasks = 7 + rng.below(3);
        let dag = random_dag(&mut rng, &catalog, tasks, 0.6);
        let options = Options {
            objective: if case % 2 == 0 {
                Objective::Cost
            } else {
                Objective::Time
            },
            ..Options::default()
        };
        let Ok(problem) = Problem::build(&dag, &catalog, &options) else {
            continue;
        };
        let plain = Problem::build_with(&dag, &catalog, &options, false).unwrap();
        if search_space(&plain) > 300_000.0 {
            continue;
        }
        let brute = all_scores(&plain)
            .into_iter()
            .map(|(score, _)| score)
            .min()
            .unwrap();
        assert_eq!(
            k_best(&problem, 1, &mut Limits::unlimited()).0[0].0,
            brute,
            "case {case}"
        );
    }
}

#[test]
fn a_search_cut_short_returns_a_plan_and_a_bound_that_bracket_the_optimum() {
    // A deterministic deadline (a node limit) on problems whose optimum brute force knows: the
    // plan returned is a real plan no better than the optimum, the bound is no better than the
    // optimum either, and a plan is called optimal only when the bound proves it.
    let mut rng = Rng::new(6);
    let (mut cut, mut checked) = (0, 0);
    for case in 0..200 {
        let catalog = random_catalog(&mut rng, 2, 2, 2);
        let tasks = 5 + rng.below(4);
        let dag = random_dag(&mut rng, &catalog, tasks, 0.6);
        let objective = if case % 2 == 0 {
            Objective::Cost
        } else {
            Objective::Time
        };
        let options = Options {
            objective,
            ..Options::default()
        };
        let Ok(problem) = Problem::build(&dag, &catalog, &options) else {
            continue;
        };
        let plain = Problem::build_with(&dag, &catalog, &options, false).unwrap();
        if search_space(&plain) > 200_000.0 {
            continue;
        }
        let optimum = all_scores(&plain)
            .into_iter()
            .map(|(score, _)| score)
            .min()
            .unwrap();
        let node_limit = 1 + rng.below(4) as u64;
        let mut limits = Limits::new(None, Some(node_limit), None, 1.0);
        let (ranked, _, lower_bound) = k_best(&problem, 1, &mut limits);
        let (score, assignment) = &ranked[0];
        let label = format!("case {case}: {tasks} tasks, {objective:?}, limit {node_limit}");
        assert_eq!(problem.score_of(assignment), *score, "{label}");
        assert!(*score >= optimum, "{label}: a plan beats the optimum?");
        assert!(
            lower_bound <= optimum.primary,
            "{label}: bound over the optimum"
        );
        if lower_bound >= score.primary {
            assert_eq!(score.primary, optimum.primary, "{label}: called optimal");
        }
        cut += usize::from(limits.stopped);
        checked += 1;
        // The same through `optimize`: the gap is (plan - bound) / plan.
        let limited = Options {
            search_node_limit: Some(node_limit),
            ..options.clone()
        };
        let solution = optimize(&dag, &catalog, &limited).unwrap();
        let optimality = &solution.optimality;
        let value = match objective {
            Objective::Cost => solution.best.total_cost,
            Objective::Time => solution.best.finish_seconds,
            Objective::Carbon => solution.best.carbon_g,
        };
        // Reported figures add unrounded terms; the solver's, terms rounded to µ$ or ms.
        assert!(optimality.lower_bound <= value + 0.01, "{label}");
        if optimality.proven_optimal || optimality.gap == 0.0 {
            assert_eq!(optimality.gap, 0.0, "{label}");
            assert!(value - optimality.lower_bound < 0.01, "{label}");
        } else {
            let expected = (value - optimality.lower_bound) / value;
            assert!((optimality.gap - expected).abs() < 1e-4, "{label}");
            assert!(solution.alternatives.is_empty(), "{label}");
        }
    }
    assert!(checked >= 60, "enough problems: {checked}");
    assert!(cut >= 10, "the limit cut enough searches short: {cut}");
}

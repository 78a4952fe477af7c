//! Exactness: the solver against brute force on many small random problems.

use crate::kbest::k_best;
use crate::problem::Problem;
use crate::score::Objective;
use crate::testing::{Rng, all_scores, random_catalog, random_dag};
use crate::{Options, PlanError, optimize};

fn search_space(problem: &Problem<'_>) -> f64 {
    problem.candidates.iter().map(|c| c.len() as f64).product()
}

/// Runs `check` on random problems small enough to enumerate.
fn for_random_problems(seed: u64, count: usize, mut check: impl FnMut(&Problem<'_>, &str)) {
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
        let objective = if rng.chance(0.5) {
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
        if search_space(&problem) > 50_000.0 {
            continue;
        }
        let label = format!(
            "case {checked}: {tasks} tasks, {} edges, {objective:?}",
            dag.edges.len()
        );
        check(&problem, &label);
        checked += 1;
    }
}

#[test]
fn matches_brute_force_on_random_dags() {
    for_random_problems(1, 400, |problem, label| {
        let brute = all_scores(problem)
            .into_iter()
            .map(|(score, _)| score)
            .min()
            .unwrap();
        let (ranked, _) = k_best(problem, 1);
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
fn k_best_matches_the_sorted_enumeration() {
    for_random_problems(2, 150, |problem, label| {
        let mut all: Vec<_> = all_scores(problem)
            .into_iter()
            .map(|(score, _)| score)
            .collect();
        all.sort();
        let (ranked, _) = k_best(problem, 6);
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
    });
}

#[test]
fn budgets_are_exact_under_the_time_objective() {
    let mut rng = Rng::new(3);
    let mut checked = 0;
    while checked < 200 {
        let zones = rng.below(3);
        let catalog = random_catalog(&mut rng, 2, 2, zones);
        let tasks = 1 + rng.below(5);
        let dag = random_dag(&mut rng, &catalog, tasks, 0.5);
        let plain = Options {
            objective: Objective::Time,
            ..Options::default()
        };
        let Ok(problem) = Problem::build(&dag, &catalog, &plain) else {
            continue;
        };
        if search_space(&problem) > 20_000.0 {
            continue;
        }
        let all = all_scores(&problem);
        let costs: Vec<i64> = all
            .iter()
            .map(|(score, _)| score.cost(Objective::Time))
            .collect();
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
            .filter(|(score, _)| score.cost(Objective::Time) <= problem.budget.unwrap())
            .map(|(score, _)| *score)
            .min();
        let got = k_best(&problem, 1).0.first().map(|(score, _)| *score);
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
    for case in 0..40 {
        let catalog = random_catalog(&mut rng, 2, 1, 2);
        let tasks = 7 + rng.below(3);
        let dag = random_dag(&mut rng, &catalog, tasks, 0.6);
        let options = Options {
            objective: Objective::Cost,
            ..Options::default()
        };
        let Ok(problem) = Problem::build(&dag, &catalog, &options) else {
            continue;
        };
        if search_space(&problem) > 300_000.0 {
            continue;
        }
        let brute = all_scores(&problem)
            .into_iter()
            .map(|(score, _)| score)
            .min()
            .unwrap();
        assert_eq!(k_best(&problem, 1).0[0].0, brute, "case {case}");
    }
}

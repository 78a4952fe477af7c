//! Exactness: the solver against brute force on many small random problems.

use crate::kbest::k_best;
use crate::limits::Limits;
use crate::problem::Problem;
use crate::score::Objective;
use crate::testing::{Rng, add_big_cpu, add_hourly_carbon, all_scores, random_catalog, random_dag};
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

/// Carbon by the hour: the solver against brute force, and every task's figure against a
/// minute-by-minute sum over the hours it runs, from start offsets computed here by recursion.
#[test]
fn carbon_by_the_hour_matches_brute_force_and_a_minute_by_minute_sum() {
    let mut rng = Rng::new(21);
    let (mut checked, mut hourly) = (0, 0);
    while checked < 150 {
        let (clouds, regions, zones) = (1 + rng.below(3), 1 + rng.below(2), rng.below(3));
        let mut catalog = random_catalog(&mut rng, clouds, regions, zones);
        // Start on and off the hour, across a day boundary now and then.
        let start = 1_796_734_800 + rng.below(48 * 4) as i64 * 900;
        add_hourly_carbon(&mut rng, &mut catalog, start);
        let tasks = 1 + rng.below(5);
        let density = [0.2, 0.5, 0.9][rng.below(3)];
        let dag = random_dag(&mut rng, &catalog, tasks, density);
        let objective = [Objective::Carbon, Objective::Cost][rng.below(2)];
        let options = Options {
            objective,
            start_time: Some(start),
            ..Options::default()
        };
        let Ok(problem) = Problem::build(&dag, &catalog, &options) else {
            continue;
        };
        let plain = Problem::build_with(&dag, &catalog, &options, false).unwrap();
        if search_space(&plain) > 20_000.0 {
            continue;
        }
        let label = format!("case {checked}: {tasks} tasks, {objective:?}, start {start}");
        let brute = all_scores(&plain)
            .into_iter()
            .map(|(score, _)| score)
            .min()
            .unwrap();
        let (ranked, _, _) = k_best(&problem, 1, &mut Limits::unlimited());
        assert_eq!(ranked[0].0, brute, "{label}");
        let plan = problem.plan(&ranked[0].1);
        assert_eq!(
            plan.start_time.as_deref(),
            Some(aloft_catalog::format_utc(start).as_str())
        );
        // Start offsets by recursion: after the longest chain of ancestors' shortest runtimes.
        fn offset(dag: &aloft_types::Dag, task: usize, shortest: &[f64]) -> f64 {
            dag.edges
                .iter()
                .filter(|(_, child)| child.0 == task)
                .map(|(parent, _)| offset(dag, parent.0, shortest) + shortest[parent.0])
                .fold(0.0, f64::max)
        }
        let shortest: Vec<f64> = dag
            .tasks
            .iter()
            .map(|task| {
                task.resources
                    .options
                    .iter()
                    .map(|option| option.estimated_runtime.unwrap().seconds)
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        for placement in &plan.tasks {
            let task_start = offset(&dag, placement.task_index, &shortest);
            assert_eq!(placement.start_offset_seconds, task_start, "{label}");
            let cloud = catalog.find_cloud(&placement.cloud).unwrap();
            let region = catalog.find_region(cloud, &placement.region).unwrap();
            let minutes = (placement.estimated_runtime_seconds / 60.0).round() as i64;
            let first_minute = (start as f64 + task_start) as i64 / 60;
            let (mut sum, mut unknown) = (0.0, false);
            for minute in first_minute..first_minute + minutes {
                match catalog.carbon_at(region, minute.div_euclid(60)) {
                    Some(value) => sum += value,
                    None => {
                        sum += crate::carbon::UNKNOWN_INTENSITY_G_PER_KWH;
                        unknown = true;
                    }
                }
            }
            let expected = sum / minutes as f64;
            assert!(
                (placement.carbon_g_per_kwh - expected).abs() <= 1e-9 * expected.max(1.0),
                "{label}: task {} {} vs {expected}",
                placement.task_index,
                placement.carbon_g_per_kwh
            );
            assert_eq!(placement.carbon_estimated, unknown, "{label}");
            let annual = catalog.region(region).carbon_g_per_kwh;
            if annual.unwrap_or(crate::carbon::UNKNOWN_INTENSITY_G_PER_KWH) != expected {
                hourly += 1;
            }
            let grams = placement.energy_kwh * placement.carbon_g_per_kwh;
            assert!((placement.carbon_g - grams).abs() < 1e-6, "{label}");
        }
        checked += 1;
    }
    assert!(
        hourly > 100,
        "only {hourly} placements were counted by the hour"
    );
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

/// `carbon_slack` and `cost_slack` against enumeration: the best on the slack's measure, then
/// the best (on the objective, or the other measure where the objective is the slack's own)
/// among the plans within the slack of it.
#[test]
fn slack_is_exact() {
    use crate::{Slack, SlackMeasure};
    let mut rng = Rng::new(31);
    let (mut checked, mut binding) = (0, 0);
    while checked < 240 {
        let zones = rng.below(3);
        let mut catalog = random_catalog(&mut rng, 2, 2, zones);
        add_big_cpu(&mut rng, &mut catalog);
        let tasks = 1 + rng.below(5);
        let dag = random_dag(&mut rng, &catalog, tasks, 0.5);
        let measure = [SlackMeasure::Carbon, SlackMeasure::Cost][rng.below(2)];
        let objective = [Objective::Cost, Objective::Carbon, Objective::Time][rng.below(3)];
        let percent = [0.0, 1.0, 5.0, 20.0, 100.0][rng.below(5)];
        // The enumerated problem scores (objective, slack measure) or, where they coincide,
        // (slack measure, the traded one): the goal `optimize` solves under.
        let solved = match (measure, objective) {
            (SlackMeasure::Carbon, Objective::Carbon) => Objective::Cost,
            (SlackMeasure::Cost, Objective::Cost) => Objective::Carbon,
            _ => objective,
        };
        let unlimited = Options {
            objective: solved,
            budget: (measure == SlackMeasure::Cost).then_some(1e12),
            max_carbon_g: (measure == SlackMeasure::Carbon).then_some(1e12),
            ..Options::default()
        };
        let Ok(plain) = Problem::build_with(&dag, &catalog, &unlimited, false) else {
            continue;
        };
        if search_space(&plain) > 20_000.0 {
            continue;
        }
        let all = all_scores(&plain);
        let measured = |score: &crate::score::Score| match (measure, solved) {
            (SlackMeasure::Cost, Objective::Cost) | (SlackMeasure::Carbon, Objective::Carbon) => {
                score.primary
            }
            _ => score.secondary,
        };
        let reference = all.iter().map(|(score, _)| measured(score)).min().unwrap();
        let limit = (reference as f64 * (1.0 + percent / 100.0)).floor() as i64;
        let expected = all
            .iter()
            .filter(|(score, _)| measured(score) <= limit)
            .map(|(score, _)| *score)
            .min()
            .unwrap();
        if all.iter().map(|(score, _)| *score).min() != Some(expected) {
            binding += 1;
        }
        let options = Options {
            objective,
            slack: Some(Slack { measure, percent }),
            ..Options::default()
        };
        let label = format!("{measure:?} {percent}% under {objective:?}, case {checked}");
        let solution =
            optimize(&dag, &catalog, &options).unwrap_or_else(|err| panic!("{label}: {err}"));
        let best = &solution.best;
        assert_eq!(best.objective, solved, "{label}");
        // The plan's figures add unrounded terms; the enumeration's, rounded ones.
        let slop = (best.tasks.len() + best.edges.len()) as f64;
        let (primary, secondary) = match (solved, measure) {
            (Objective::Cost, _) => (best.total_cost * 1e6, best.carbon_g * 1e3),
            (Objective::Carbon, _) => (best.carbon_g * 1e3, best.total_cost * 1e6),
            (Objective::Time, SlackMeasure::Carbon) => {
                (best.finish_seconds * 1e3, best.carbon_g * 1e3)
            }
            (Objective::Time, SlackMeasure::Cost) => {
                (best.finish_seconds * 1e3, best.total_cost * 1e6)
            }
        };
        assert!(
            (primary - expected.primary as f64).abs() <= slop,
            "{label}: {primary} vs {expected:?}"
        );
        assert!(
            (secondary - expected.secondary as f64).abs() <= slop,
            "{label}: {secondary} vs {expected:?}"
        );
        let bound = solution.slack.as_ref().expect("slack reported");
        assert_eq!(
            (bound.measure, bound.percent),
            (measure, percent),
            "{label}"
        );
        let unit = match measure {
            SlackMeasure::Carbon => 1e3,
            SlackMeasure::Cost => 1e6,
        };
        assert!(
            (bound.reference * unit - reference as f64).abs() <= slop,
            "{label}"
        );
        assert_eq!((bound.limit * unit).round() as i64, limit, "{label}");
        assert!(bound.reference_proven);
        checked += 1;
    }
    assert!(binding > 60, "the slack bound only {binding} cases");
}

#[test]
fn budgets_are_exact_under_the_time_objective() {
    limits_are_exact(3, Objective::Time, true, false);
}

#[test]
fn budgets_are_exact_under_the_carbon_objective() {
    limits_are_exact(13, Objective::Carbon, true, false);
}

#[test]
fn carbon_limits_are_exact_under_every_objective() {
    limits_are_exact(14, Objective::Cost, false, true);
    limits_are_exact(15, Objective::Time, false, true);
    limits_are_exact(16, Objective::Carbon, false, true);
}

#[test]
fn a_budget_and_a_carbon_limit_together_are_exact() {
    limits_are_exact(17, Objective::Cost, true, true);
    limits_are_exact(18, Objective::Carbon, true, true);
    limits_are_exact(19, Objective::Time, true, true);
}

/// Against enumeration of every plan over every offering (a catalog where a bigger CPU type,
/// drawing more power, is sometimes cheaper): the best plan within a budget and/or a carbon
/// limit, each somewhere between the least and the most any plan needs, as `optimize` finds it
/// (the search bounds the limit on the second measure; a limit on the objective is checked on
/// the optimum).
fn limits_are_exact(seed: u64, objective: Objective, budget: bool, carbon: bool) {
    let mut rng = Rng::new(seed);
    let mut checked = 0;
    // Under time with both limits: cases where the budget, checked plan by plan, changed the
    // plan (the ranking had to go past the plans over budget).
    let mut budget_moved_the_plan = 0;
    while checked < 120 {
        let zones = rng.below(3);
        let mut catalog = random_catalog(&mut rng, 2, 2, zones);
        add_big_cpu(&mut rng, &mut catalog);
        let tasks = 1 + rng.below(5);
        let dag = random_dag(&mut rng, &catalog, tasks, 0.5);
        // Limits no plan reaches, so that the enumerated problem scores the same measures.
        let unlimited = Options {
            objective,
            budget: budget.then_some(1e12),
            max_carbon_g: carbon.then_some(1e12),
            ..Options::default()
        };
        let Ok(plain) = Problem::build_with(&dag, &catalog, &unlimited, false) else {
            continue;
        };
        if search_space(&plain) > 20_000.0 {
            continue;
        }
        let all = all_scores(&plain);
        // Each score holds both limited measures (see `Goal`), but for a budget with a carbon
        // cap under the time objective: (time, carbon), the cost counted apart.
        let three_measures = objective == Objective::Time && budget && carbon;
        let cost_of = |(score, assignment): &(crate::score::Score, Vec<usize>)| match objective {
            _ if three_measures => plain.cost_units(assignment),
            Objective::Cost => score.primary,
            Objective::Time | Objective::Carbon => score.secondary,
        };
        let carbon_of = |(score, _): &(crate::score::Score, Vec<usize>)| match objective {
            Objective::Carbon => score.primary,
            Objective::Cost | Objective::Time => score.secondary,
        };
        let mut between = |values: Vec<i64>| {
            let (low, high) = (*values.iter().min().unwrap(), *values.iter().max().unwrap());
            low + ((high - low) as f64 * rng.float(0.0, 1.0)) as i64
        };
        let budget_micro = budget.then(|| between(all.iter().map(cost_of).collect()));
        let cap_milli = carbon.then(|| between(all.iter().map(carbon_of).collect()));
        let limited = Options {
            budget: budget_micro.map(|micro| micro as f64 / 1e6),
            max_carbon_g: cap_milli.map(|milli| milli as f64 / 1e3),
            ..unlimited.clone()
        };
        let problem = Problem::build(&dag, &catalog, &limited).unwrap();
        let expected = all
            .iter()
            .filter(|plan| budget_micro.is_none_or(|limit| cost_of(plan) <= limit))
            .filter(|plan| cap_milli.is_none_or(|limit| carbon_of(plan) <= limit))
            .map(|(score, _)| *score)
            .min();
        let without_budget = all
            .iter()
            .filter(|plan| cap_milli.is_none_or(|limit| carbon_of(plan) <= limit))
            .map(|(score, _)| *score)
            .min();
        if three_measures && expected.is_some() && expected != without_budget {
            budget_moved_the_plan += 1;
        }
        let got = k_best(&problem, 1, &mut Limits::unlimited())
            .0
            .first()
            .map(|(score, _)| *score)
            .filter(|score| problem.primary_cap.is_none_or(|cap| score.primary <= cap));
        let label =
            format!("{objective:?} budget {budget_micro:?} carbon {cap_milli:?}, case {checked}");
        assert_eq!(got, expected, "{label}");
        // And through `optimize`: a plan within the limits, or the error saying which.
        match optimize(&dag, &catalog, &limited) {
            Ok(solution) => {
                assert!(expected.is_some(), "{label}");
                for plan in std::iter::once(&solution.best).chain(&solution.alternatives) {
                    if let Some(cap) = limited.max_carbon_g {
                        assert!(plan.carbon_g <= cap + 0.01, "{label}");
                    }
                    if let Some(limit) = limited.budget {
                        assert!(plan.total_cost <= limit + 1e-4, "{label}");
                    }
                }
            }
            Err(err) => assert!(expected.is_none(), "{label}: {err}"),
        }
        checked += 1;
    }
    if objective == Objective::Time && budget && carbon {
        assert!(
            budget_moved_the_plan >= 10,
            "the budget moved only {budget_moved_the_plan} plans"
        );
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

#[test]
fn on_small_hard_instances_the_bound_never_exceeds_the_optimum_and_the_gap_is_measured_from_it() {
    // The hard families of the benchmark, small enough to enumerate, on a catalog with their
    // regions. Unlimited, the solver finds the optimum; cut short at any node count, the plan
    // it returns is a real plan, the bound it proves is no more than the optimum, and the gap
    // it reports is (plan - bound) / plan.
    use crate::synthetic::HardFamily;
    let mut rng = Rng::new(21);
    let (mut checked, mut cut, mut gapped) = (0, 0, 0);
    for case in 0..90u64 {
        let family = HardFamily::ALL[case as usize % 3];
        let catalog = crate::testing::hard_family_catalog(&mut rng);
        let tasks = match family {
            HardFamily::ManyOptions => 3 + rng.below(3),
            _ => 5 + rng.below(5),
        };
        let dag = family.dag(tasks, case);
        let options = Options::default();
        let problem = Problem::build(&dag, &catalog, &options).unwrap();
        let plain = Problem::build_with(&dag, &catalog, &options, false).unwrap();
        if search_space(&plain) > 300_000.0 {
            continue;
        }
        let optimum = all_scores(&plain)
            .into_iter()
            .map(|(score, _)| score)
            .min()
            .unwrap();
        let label = format!("case {case}: {family:?}, {tasks} tasks");
        let exact = optimize(&dag, &catalog, &options).unwrap();
        assert!(exact.optimality.proven_optimal, "{label}");
        // Reported dollars add unrounded terms; the solver's, terms rounded to µ$.
        let rounding = (dag.tasks.len() + dag.edges.len()) as f64 * 1e-6;
        let optimum_dollars = optimum.primary as f64 * 1e-6;
        assert!(
            (exact.best.total_cost - optimum_dollars).abs() <= rounding,
            "{label}"
        );
        for node_limit in [1u64, 2, 3, 5, 8, 13, 40] {
            let label = format!("{label}, node limit {node_limit}");
            let mut limits = Limits::new(None, Some(node_limit), None, 1.0);
            let (ranked, _, lower_bound) = k_best(&problem, 1, &mut limits);
            let (score, assignment) = &ranked[0];
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
            let limited = Options {
                search_node_limit: Some(node_limit),
                ..Options::default()
            };
            let solution = optimize(&dag, &catalog, &limited).unwrap();
            let optimality = &solution.optimality;
            let value = solution.best.total_cost;
            assert!(
                optimality.lower_bound <= optimum_dollars + rounding,
                "{label}: bound {} over the optimum {optimum_dollars}",
                optimality.lower_bound
            );
            assert!(value >= optimum_dollars - rounding, "{label}");
            if optimality.proven_optimal {
                assert!((value - optimum_dollars).abs() <= rounding, "{label}");
                assert_eq!(optimality.gap, 0.0, "{label}");
            } else if optimality.gap > 0.0 {
                gapped += 1;
                let expected = (value - optimality.lower_bound) / value;
                assert!((optimality.gap - expected).abs() < 1e-6, "{label}");
                // The true gap is no more than the reported one.
                assert!(
                    (value - optimum_dollars) / value <= optimality.gap + 1e-6,
                    "{label}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 40, "enough problems: {checked}");
    assert!(cut >= 20, "the limits cut enough searches short: {cut}");
    assert!(gapped >= 5, "enough searches ended with a gap: {gapped}");
}

#[test]
fn the_triangle_bound_never_exceeds_the_optimum_and_is_tighter_than_the_lp_on_frustrated_dags() {
    // The bound from the LP with triangle terms (`cycles`), before any search and without
    // the cap at the plan's score that `optimize` applies, against enumeration.
    use crate::solve::{Graph, Search};
    use crate::synthetic::HardFamily;
    let mut rng = Rng::new(22);
    let (mut checked, mut tighter) = (0, 0);
    for case in 0..80u64 {
        let family = [HardFamily::FrustratedRegions, HardFamily::Dense][case as usize % 2];
        let catalog = crate::testing::hard_family_catalog(&mut rng);
        let tasks = 4 + rng.below(6);
        let dag = family.dag(tasks, 100 + case);
        let options = Options::default();
        let problem = Problem::build(&dag, &catalog, &options).unwrap();
        if search_space(&problem) > 300_000.0 {
            continue;
        }
        let optimum = all_scores(&problem)
            .into_iter()
            .map(|(score, _)| score)
            .min()
            .unwrap();
        let graph = Graph::new(&problem);
        let domains: Vec<Vec<usize>> = problem
            .candidates
            .iter()
            .map(|candidates| (0..candidates.len()).collect())
            .collect();
        let search = Search::new(
            &problem,
            &graph,
            &domains,
            (0..tasks).collect(),
            None,
            std::convert::identity,
        );
        let lp = search.remaining_bound(0).0.primary;
        let Some(bound) = search.triangle_bound(&mut Limits::unlimited(), 0) else {
            continue;
        };
        let label = format!("case {case}: {family:?}, {tasks} tasks");
        assert!(
            bound <= optimum.primary,
            "{label}: bound {bound} over the optimum {}",
            optimum.primary
        );
        checked += 1;
        tighter += usize::from(bound > lp);
    }
    assert!(checked >= 30, "enough problems with triangles: {checked}");
    assert!(
        tighter >= 5,
        "the triangles tightened the LP often enough: {tighter}"
    );
}

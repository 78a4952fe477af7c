//! Job groups: tasks that run at the same time and talk to each other, planned in one region.
//!
//! SkyPilot places a job group's tasks on the same infrastructure so that they can reach each
//! other over the cloud's private network; aloft keeps them in one region of one cloud. The
//! group's tasks have no edges, so without that rule each task would go to its own cheapest
//! place and the group could be split across clouds.
//!
//! The plan stays exact: the group is solved once per region (every other region and cloud
//! blocked, through [`Options::blocked`], so every rule of [`optimize`] applies unchanged), and
//! the best of those optima is the optimum over the plans that keep the group together. The
//! next-best plans are the best of every region's ranked plans. A region where some task
//! cannot run (or a limit cannot be met) simply yields no plan.

use crate::score::{Goal, Measure, Score};
use crate::{Objective, Optimality, Options, Plan, PlanError, Solution, optimize};
use aloft_catalog::Catalog;
use aloft_types::{Dag, Infra};

/// The blocks that keep a plan in `cloud`/`region`: every other cloud of the catalog, and every
/// other region of `cloud`. Added to [`Options::blocked`], planning (and failover, which only
/// blocks more) stays in that region.
pub fn region_only(catalog: &Catalog, cloud: &str, region: &str) -> Vec<Infra> {
    let mut blocked = Vec::new();
    for (cloud_idx, known) in catalog.clouds.iter().enumerate() {
        if known.name != cloud {
            blocked.push(Infra {
                cloud: Some(known.name.clone()),
                ..Infra::any()
            });
            continue;
        }
        let cloud_id = aloft_catalog::CloudId(cloud_idx as u16);
        for (_, other) in catalog.regions_of(cloud_id) {
            if other.name != region {
                blocked.push(Infra {
                    cloud: Some(cloud.to_owned()),
                    region: Some(other.name.clone()),
                    zone: None,
                });
            }
        }
    }
    blocked
}

/// The best plan (and next-best ones) that puts every task of `dag` in one region of one cloud.
/// For a job group; any DAG is accepted (its edges then count as usual).
///
/// Errors: the DAG's own error when it cannot be planned at all (a task no place can run, a
/// budget too small), else [`PlanError::GroupSplit`] when it can only be planned split across
/// regions.
pub fn optimize_group(
    dag: &Dag,
    catalog: &Catalog,
    options: &Options,
) -> Result<Solution, PlanError> {
    let mut solved: Vec<Solution> = Vec::new();
    for region in &catalog.regions {
        let cloud = &catalog.cloud(region.cloud).name;
        let mut in_region = options.clone();
        in_region
            .blocked
            .extend(region_only(catalog, cloud, &region.name));
        if let Ok(solution) = optimize(dag, catalog, &in_region) {
            solved.push(solution);
        }
    }
    let goal = goal(options);
    let key = |plan: &Plan| Score::new(goal, plan.total_cost, plan.finish_seconds, plan.carbon_g);
    // The first best in catalog order wins a tie, so the plan is deterministic.
    let Some(best_idx) = (0..solved.len()).min_by_key(|&idx| key(&solved[idx].best)) else {
        // No region holds the group: say why the DAG cannot be planned, if it cannot at all.
        optimize(dag, catalog, options)?;
        return Err(PlanError::GroupSplit);
    };
    let proven_optimal = solved
        .iter()
        .all(|solution| solution.optimality.proven_optimal);
    let lower_bound = solved
        .iter()
        .map(|solution| solution.optimality.lower_bound)
        .fold(f64::INFINITY, f64::min);
    let mut others: Vec<Plan> = Vec::new();
    let mut best = None;
    let mut considered = Vec::new();
    let mut stats = None;
    let mut slack = None;
    for (idx, solution) in solved.into_iter().enumerate() {
        if idx == best_idx {
            // FIXME: a slack (`carbon_slack`, `cost_slack`) is applied per region, against that
            // region's best, not against the best plan of the whole group.
            slack = solution.slack;
            best = Some(solution.best);
            considered = solution.considered;
            stats = Some(solution.stats);
        } else {
            others.push(solution.best);
        }
        others.extend(solution.alternatives);
    }
    let best = best.expect("the best region was solved");
    // A stable sort: among equals, the earlier region's plan first.
    others.sort_by_key(|plan| key(plan));
    others.truncate(options.alternatives);
    let best_value = match options.objective {
        Objective::Cost => best.total_cost,
        Objective::Time => best.finish_seconds,
        Objective::Carbon => best.carbon_g,
    };
    let bound = lower_bound.min(best_value);
    Ok(Solution {
        best,
        alternatives: others,
        considered,
        optimality: Optimality {
            proven_optimal,
            lower_bound: bound,
            gap: if proven_optimal || best_value <= 0.0 {
                0.0
            } else {
                ((best_value - bound) / best_value).max(0.0)
            },
        },
        stats: stats.unwrap_or_default(),
        slack,
    })
}

/// The objective and its tie-breaker, as `optimize` ranks plans (`problem::goal_and_limits`): a
/// carbon cap makes carbon the tie-breaker under cost and time.
fn goal(options: &Options) -> Goal {
    match (options.objective, options.max_carbon_g) {
        (Objective::Carbon, _) | (_, None) => Goal::plain(options.objective),
        (objective, Some(_)) => Goal {
            objective,
            second: Measure::Carbon,
        },
    }
}

//! The optimizer: given a task DAG, a catalog and options, find where each task should run.
//!
//! Planning is pure (no IO, deterministic) and **exact**: the returned plan is a proven optimum
//! of the stated objective, for single tasks, chains and general DAGs with egress.
//!
//! How it stays exact and fast (see `solve` for the details):
//! 1. Egress depends only on *where* tasks run, so each task's candidates collapse to the best
//!    offering per location (zone, or region where a cloud has no zones).
//! 2. Dead-end elimination removes candidates that can never beat another candidate whatever
//!    the neighbours do (Goldstein's criterion), which shrinks most domains to a handful.
//! 3. Independent parts of the DAG are solved separately; trees (chains included) by dynamic
//!    programming, anything else by depth-first branch and bound with admissible bounds.
//!
//! The next-best plans come from Lawler's k-best partitioning over the same solver, and
//! re-planning with zones, regions or clouds blocked is [`Options::blocked`].

pub mod carbon;
mod cycles;
mod diagnose;
mod kbest;
mod limits;
mod makespan;
mod plan;
mod problem;
mod score;
mod solve;
pub mod synthetic;
mod windows;

pub use limits::{ProgressCallback, SearchProgress};
pub use plan::{EdgeTransfer, Optimality, Placement, Plan, Solution, SolveStats};
pub use score::Objective;

use aloft_catalog::Catalog;
use aloft_types::{Dag, Duration, Infra};

/// How to plan.
#[derive(Clone, Debug)]
pub struct Options {
    pub objective: Objective,
    /// Cap on a task's hourly price (all its nodes), in $/h.
    pub max_hourly_price: Option<f64>,
    /// Cap on the whole run's estimated cost, in $.
    pub budget: Option<f64>,
    /// Cap on the whole run's estimated emissions, in grams of CO2 (see [`carbon`]). Under the
    /// cost and time objectives carbon then breaks ties instead of time or cost; under time it
    /// cannot be combined with a budget (yet).
    pub max_carbon_g: Option<f64>,
    /// Places not to use: a cloud (`aws`), a region (`aws/us-east-1`) or a zone.
    pub blocked: Vec<Infra>,
    /// How many next-best plans to return besides the best one.
    pub alternatives: usize,
    /// Runtime assumed for tasks and options that give no estimate.
    pub default_runtime: Duration,
    /// Stop searching after this long and return the best plan found, with a proven lower
    /// bound (see [`Solution::optimality`]). `None`: search until the plan is proven optimal.
    pub deadline: Option<std::time::Duration>,
    /// Stop after this many search nodes: a deterministic deadline (for tests and
    /// reproducible figures).
    pub search_node_limit: Option<u64>,
    /// Told how the search is going about once a second while it runs for over a second.
    pub progress: Option<ProgressCallback>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            objective: Objective::Cost,
            max_hourly_price: None,
            budget: None,
            max_carbon_g: None,
            blocked: Vec::new(),
            alternatives: 0,
            default_runtime: Duration::from_hours(1.0),
            deadline: None,
            search_node_limit: None,
            progress: None,
        }
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("the DAG has no tasks")]
    Empty,
    #[error("task `{task}`: {reason}")]
    Infeasible { task: String, reason: String },
    #[error("task `{task}`: input `{path}`: {reason}")]
    UnknownInputLocation {
        task: String,
        path: String,
        reason: String,
    },
    #[error(
        "the cheapest plan costs ${cheapest:.2}, over the budget of ${budget:.2}; \
         raise --budget or relax the resources"
    )]
    OverBudget { budget: f64, cheapest: f64 },
    #[error(
        "the lowest-carbon plan{within} emits {lowest:.0} gCO2, over the limit of {limit:.0} g; \
         raise --max-carbon or relax the resources",
        within = if *within_budget { " within the budget" } else { "" }
    )]
    OverCarbon {
        limit: f64,
        lowest: f64,
        within_budget: bool,
    },
    #[error(
        "the cheapest plan within the carbon limit of {max_carbon:.0} g costs ${cheapest:.2}, \
         over the budget of ${budget:.2}; raise --budget or --max-carbon"
    )]
    OverBudgetWithinCarbon {
        budget: f64,
        cheapest: f64,
        max_carbon: f64,
    },
    #[error(
        "a budget and a carbon limit together are not supported under the time objective yet; \
         drop one, or optimize for cost or carbon"
    )]
    BudgetAndCarbonLimitUnderTime,
    #[error(
        "the search stopped at its deadline before finding a plan within the limits, and \
         could not rule one out; raise --deadline or relax the limits"
    )]
    LimitUndecidedAtDeadline,
}

/// Finds the best plan (and the requested number of next-best ones).
pub fn optimize(dag: &Dag, catalog: &Catalog, options: &Options) -> Result<Solution, PlanError> {
    if dag.tasks.is_empty() {
        return Err(PlanError::Empty);
    }
    // Under the time objective both limits would be on the second measure (see `Goal`).
    if options.objective == Objective::Time
        && options.max_carbon_g.is_some()
        && options.budget.is_some()
    {
        return Err(PlanError::BudgetAndCarbonLimitUnderTime);
    }
    let problem = problem::Problem::build(dag, catalog, options)?;
    let started = std::time::Instant::now();
    let unit = match options.objective {
        Objective::Cost => 1e-6,
        Objective::Time => 1e-3,
        Objective::Carbon => 1e-3,
    };
    let mut limits = limits::Limits::new(
        options.deadline,
        options.search_node_limit,
        options.progress.clone(),
        unit,
    );
    let (ranked, stats, lower_bound) = kbest::k_best(&problem, 1, &mut limits);
    let Some((best_score, best)) = ranked.first().cloned() else {
        if limits.stopped {
            return Err(PlanError::LimitUndecidedAtDeadline);
        }
        // Every task has candidates, so only a limit can make the problem infeasible: the one
        // the search bounds (`Problem::limit`). Say what the best plan for it would be.
        if problem.goal.second == score::Measure::Carbon {
            let cleanest_options = Options {
                objective: Objective::Carbon,
                budget: None,
                max_carbon_g: None,
                alternatives: 0,
                ..options.clone()
            };
            let cleanest = problem::Problem::build(dag, catalog, &cleanest_options)?;
            let mut cleanest_limits =
                limits::Limits::new(options.deadline, options.search_node_limit, None, 1e-3);
            let lowest = kbest::k_best(&cleanest, 1, &mut cleanest_limits)
                .0
                .first()
                .map(|(_, assignment)| cleanest.plan(assignment).carbon_g)
                .unwrap_or(f64::NAN);
            return Err(PlanError::OverCarbon {
                limit: options.max_carbon_g.unwrap_or(0.0),
                lowest,
                within_budget: false,
            });
        }
        let cheapest_options = Options {
            objective: Objective::Cost,
            budget: None,
            max_carbon_g: None,
            alternatives: 0,
            ..options.clone()
        };
        let cheapest = problem::Problem::build(dag, catalog, &cheapest_options)?;
        let mut cheapest_limits =
            limits::Limits::new(options.deadline, options.search_node_limit, None, 1e-6);
        let cost = kbest::k_best(&cheapest, 1, &mut cheapest_limits)
            .0
            .first()
            .map(|(_, assignment)| cheapest.plan(assignment).total_cost)
            .unwrap_or(f64::NAN);
        return Err(PlanError::OverBudget {
            budget: options.budget.unwrap_or(0.0),
            cheapest: cost,
        });
    };
    // A limit on the objective itself: the optimum (within the other limit) fits, or no plan
    // does.
    if let Some(cap) = problem.primary_cap
        && best_score.primary > cap
    {
        // Cut short, a better plan may exist unless the bound rules it out.
        if limits.stopped && lower_bound <= cap {
            return Err(PlanError::LimitUndecidedAtDeadline);
        }
        let plan = problem.plan(&best);
        return Err(match options.objective {
            Objective::Carbon => PlanError::OverCarbon {
                limit: options.max_carbon_g.unwrap_or(0.0),
                lowest: plan.carbon_g,
                within_budget: options.budget.is_some(),
            },
            Objective::Cost | Objective::Time => PlanError::OverBudgetWithinCarbon {
                budget: options.budget.unwrap_or(0.0),
                cheapest: plan.total_cost,
                max_carbon: options.max_carbon_g.unwrap_or(0.0),
            },
        });
    }
    let solve_micros = started.elapsed().as_micros();
    // Finished, or cut short with the bound at the plan: then the objective is proven, though
    // the tie-breaker may not be (the gap is then 0 and `proven_optimal` false).
    let proven_optimal = !limits.stopped;
    // Next-best plans need exact solves: only for a proven best, and while time is left.
    let mut alternatives = if proven_optimal {
        next_best(&problem, &best, options.alternatives, &mut limits)
    } else {
        Vec::new()
    };
    // Alternatives over a limit on the objective (checked above for the best only) go.
    if let Some(cap) = problem.primary_cap {
        let score_of = |plan: &Plan| match options.objective {
            Objective::Carbon => score::milligrams(plan.carbon_g),
            Objective::Cost | Objective::Time => score::micro_dollars(plan.total_cost),
        };
        // Reported figures add unrounded terms; allow the rounding of one per task and edge.
        alternatives
            .retain(|plan| score_of(plan) <= cap + (plan.tasks.len() + plan.edges.len()) as i64);
    }
    let best_plan = problem.plan(&best);
    debug_assert_eq!(best_score, problem.score_of(&best));
    let best_value = best_score.primary as f64 * unit;
    let bound_value = lower_bound.min(best_score.primary) as f64 * unit;
    Ok(Solution {
        considered: problem.considered(&best),
        best: best_plan,
        alternatives,
        optimality: Optimality {
            proven_optimal,
            lower_bound: bound_value,
            gap: if proven_optimal || lower_bound >= best_score.primary {
                0.0
            } else {
                limits::relative_gap(best_value, bound_value)
            },
        },
        stats: SolveStats {
            candidates: problem.candidate_count(),
            solve_micros,
            ..stats
        },
    })
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

/// The `count` best plans that differ from `best`, and from each other, in some task's region or
/// instance type (ranked exactly, by k-best over the region-level problem).
fn next_best(
    problem: &problem::Problem<'_>,
    best: &[usize],
    count: usize,
    limits: &mut limits::Limits,
) -> Vec<Plan> {
    if count == 0 {
        return Vec::new();
    }
    let regional = problem.regional();
    let best_signature = problem.region_signature(best);
    let (ranked, _, _) = kbest::k_best(&regional, count + 1, limits);
    ranked
        .iter()
        .filter(|(_, assignment)| regional.region_signature(assignment) != best_signature)
        .take(count)
        .map(|(_, assignment)| regional.plan(assignment))
        .collect()
}

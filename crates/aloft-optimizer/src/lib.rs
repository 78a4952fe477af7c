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
mod group;
mod kbest;
mod limits;
mod makespan;
mod plan;
mod problem;
mod score;
mod solve;
pub mod synthetic;
mod windows;

pub use group::{optimize_group, region_only};
pub use limits::{ProgressCallback, SearchProgress};
pub use plan::{
    EdgeTransfer, Optimality, Placement, Plan, Slack, SlackBound, SlackMeasure, Solution,
    SolveStats,
};
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
    /// cost and time objectives carbon then breaks ties instead of time or cost (under time with
    /// a budget as well, the budget is checked plan by plan as they are ranked).
    pub max_carbon_g: Option<f64>,
    /// When the run starts, in seconds since the Unix epoch (UTC). With it, carbon is counted
    /// at the catalog's hourly grid intensity over the hours each task runs (see [`carbon`] and
    /// [`start_offsets`]); without it, at each region's annual average. The optimizer reads no
    /// clock: the caller passes "now".
    pub start_time: Option<i64>,
    /// Plan within this slack of the best plan on one measure (see [`Slack`]); `None`: as the
    /// DAG's tasks say (`carbon_slack`, `cost_slack`), if they do.
    pub slack: Option<Slack>,
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
            start_time: None,
            slack: None,
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
        "the cheapest plan costs ${}, over the budget of ${}; \
         raise --budget or relax the resources",
        above(*cheapest, *budget, 2),
        limit_text(*budget, 2)
    )]
    OverBudget { budget: f64, cheapest: f64 },
    #[error(
        "the lowest-carbon plan{within} emits {} gCO2, over the limit of {} g; \
         raise --max-carbon or relax the resources",
        above(*lowest, *limit, 0),
        limit_text(*limit, 0),
        within = if *within_budget { " within the budget" } else { "" }
    )]
    OverCarbon {
        limit: f64,
        lowest: f64,
        within_budget: bool,
    },
    #[error(
        "the cheapest plan within the carbon limit of {} g costs ${}, \
         over the budget of ${}; raise --budget or --max-carbon",
        limit_text(*max_carbon, 0),
        above(*cheapest, *budget, 2),
        limit_text(*budget, 2)
    )]
    OverBudgetWithinCarbon {
        budget: f64,
        cheapest: f64,
        max_carbon: f64,
    },
    #[error(
        "task `{first_task}` asks for {first} and task `{second_task}` for {second}; the slack \
         is for the whole plan: give one, the same in every task"
    )]
    ConflictingSlack {
        first: String,
        first_task: String,
        second: String,
        second_task: String,
    },
    #[error("{slack}: expected a percentage, 0 or more")]
    BadSlack { slack: String },
    #[error(
        "the search stopped at its deadline before finding a plan within the limits, and \
         could not rule one out; raise --deadline or relax the limits"
    )]
    LimitUndecidedAtDeadline,
    #[error(
        "no single region can run every task of the job group (its tasks must run in one \
         region of one cloud, to reach each other); relax the tasks' `infra` or resources"
    )]
    GroupSplit,
}

/// A limit as the user gave it: with `decimals` places when that shows it exactly (`0.84`,
/// `10.00`), else in full (`0.001`), never rounded to something else.
fn limit_text(limit: f64, decimals: usize) -> String {
    let fixed = format!("{limit:.decimals$}");
    if fixed.parse::<f64>() == Ok(limit) {
        fixed
    } else {
        limit.to_string()
    }
}

/// A figure over `limit`, with `decimals` places or as many more as it takes to show it over
/// (3.35 over 3.2 is `3.3`, not `3`).
fn above(value: f64, limit: f64, decimals: usize) -> String {
    (decimals..=decimals + 6)
        .map(|places| format!("{value:.places$}"))
        .find(|text| text.parse::<f64>().is_ok_and(|shown| shown > limit))
        .unwrap_or_else(|| value.to_string())
}

/// Finds the best plan (and the requested number of next-best ones).
pub fn optimize(dag: &Dag, catalog: &Catalog, options: &Options) -> Result<Solution, PlanError> {
    if dag.tasks.is_empty() {
        return Err(PlanError::Empty);
    }
    match options
        .slack
        .map_or_else(|| dag_slack(dag), |slack| Ok(Some(slack)))?
    {
        None => optimize_plain(dag, catalog, options).map(|(solution, _)| solution),
        Some(slack) => optimize_within_slack(dag, catalog, options, slack),
    }
}

/// The slack the DAG's tasks ask for (`carbon_slack`, `cost_slack`): the same in every task
/// that gives one, and one kind only.
fn dag_slack(dag: &Dag) -> Result<Option<Slack>, PlanError> {
    let mut found: Option<(Slack, String)> = None;
    for (task_idx, task) in dag.tasks.iter().enumerate() {
        let name = dag.task_name(aloft_types::TaskIdx(task_idx));
        let given = [
            (SlackMeasure::Carbon, task.carbon_slack),
            (SlackMeasure::Cost, task.cost_slack),
        ];
        for (measure, percent) in given {
            let Some(percent) = percent else { continue };
            let slack = Slack { measure, percent };
            match &found {
                None => found = Some((slack, name.clone())),
                Some((first, _)) if *first == slack => {}
                Some((first, first_task)) => {
                    return Err(PlanError::ConflictingSlack {
                        first: format!("{first}"),
                        first_task: first_task.clone(),
                        second: format!("{slack}"),
                        second_task: name,
                    });
                }
            }
        }
    }
    Ok(found.map(|(slack, _)| slack))
}

/// The best plan among those within `slack` of the best on its measure: first the optimum of
/// that measure (within the other limits), then the plan's objective under a limit of that
/// optimum plus the slack, in the score's integer units so the reference plan always fits.
fn optimize_within_slack(
    dag: &Dag,
    catalog: &Catalog,
    options: &Options,
    slack: Slack,
) -> Result<Solution, PlanError> {
    if !(slack.percent.is_finite() && slack.percent >= 0.0) {
        return Err(PlanError::BadSlack {
            slack: format!("{slack}"),
        });
    }
    let (reference_objective, traded) = match slack.measure {
        SlackMeasure::Carbon => (Objective::Carbon, Objective::Cost),
        SlackMeasure::Cost => (Objective::Cost, Objective::Carbon),
    };
    let reference_options = Options {
        objective: reference_objective,
        alternatives: 0,
        progress: None,
        ..options.clone()
    };
    let (reference, reference_units) = optimize_plain(dag, catalog, &reference_options)?;
    // The reference plan's own score (integer units, every term rounded alone) plus the slack.
    let limit_units = (reference_units as f64 * (1.0 + slack.percent / 100.0)).floor() as i64;
    let (unit, reference_value) = match slack.measure {
        SlackMeasure::Carbon => (1e-3, reference.best.carbon_g),
        SlackMeasure::Cost => (1e-6, reference.best.total_cost),
    };
    let limit = limit_units as f64 * unit;
    let objective = if options.objective == reference_objective {
        traded
    } else {
        options.objective
    };
    let mut bounded = Options {
        objective,
        ..options.clone()
    };
    let limited = match slack.measure {
        SlackMeasure::Carbon => &mut bounded.max_carbon_g,
        SlackMeasure::Cost => &mut bounded.budget,
    };
    let limit = limited.map_or(limit, |given| given.min(limit));
    *limited = Some(limit);
    let (mut solution, _) = optimize_plain(dag, catalog, &bounded)?;
    solution.slack = Some(SlackBound {
        measure: slack.measure,
        percent: slack.percent,
        reference: reference_value,
        limit,
        reference_proven: reference.optimality.proven_optimal,
    });
    Ok(solution)
}

/// [`optimize`] without slack: the solution and the best plan's objective in the score's
/// integer units.
fn optimize_plain(
    dag: &Dag,
    catalog: &Catalog,
    options: &Options,
) -> Result<(Solution, i64), PlanError> {
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
        // the search bounds (`Problem::limit`), or a budget checked plan by plan. Say what the
        // best plan for it would be.
        if problem.budget_filter.is_some() {
            // Some plan within the carbon cap, and the cheapest of them over the budget?
            let cheapest_options = Options {
                objective: Objective::Cost,
                budget: None,
                alternatives: 0,
                ..options.clone()
            };
            let cheapest = problem::Problem::build(dag, catalog, &cheapest_options)?;
            let mut cheapest_limits =
                limits::Limits::new(options.deadline, options.search_node_limit, None, 1e-6);
            let found = kbest::k_best(&cheapest, 1, &mut cheapest_limits).0;
            if let Some((_, assignment)) = found.first() {
                return Err(PlanError::OverBudgetWithinCarbon {
                    budget: options.budget.unwrap_or(0.0),
                    cheapest: cheapest.plan(assignment).total_cost,
                    max_carbon: options.max_carbon_g.unwrap_or(0.0),
                });
            }
        }
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
    let solution = Solution {
        slack: None,
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
    };
    Ok((solution, best_score.primary))
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

/// When each task is assumed to start, in seconds after the run's start: the longest chain of
/// its ancestors' runtime estimates (a task starts when its last parent is done). A task's
/// runtime here is its shortest option's estimate (the task's, or `default_runtime`), and
/// transfers are not counted, so the schedule does not depend on where tasks run: each task's
/// carbon stays its own and the carbon objective stays exact. Indexed like `dag.tasks`.
pub fn start_offsets(dag: &Dag, options: &Options) -> Vec<f64> {
    let runtime = |task: &aloft_types::Task| {
        task.resources
            .options
            .iter()
            .map(|option| {
                option
                    .estimated_runtime
                    .or(task.estimated_runtime)
                    .unwrap_or(options.default_runtime)
                    .seconds
            })
            .fold(f64::INFINITY, f64::min)
    };
    let runtimes: Vec<f64> = dag
        .tasks
        .iter()
        .map(|task| {
            let shortest = runtime(task);
            if shortest.is_finite() {
                shortest
            } else {
                task.estimated_runtime
                    .unwrap_or(options.default_runtime)
                    .seconds
            }
        })
        .collect();
    let (parents, order) = problem::precedence(dag, &[]);
    let mut offsets = vec![0.0f64; dag.tasks.len()];
    for task in order {
        offsets[task] = parents[task]
            .iter()
            .map(|&(parent, _)| offsets[parent] + runtimes[parent])
            .fold(0.0, f64::max);
    }
    offsets
}

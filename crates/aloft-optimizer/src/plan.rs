//! What the optimizer returns. These types are the `-o json` schema of `aloft launch --dryrun`
//! (documented in docs/plan-json.md): add fields freely, never rename or remove one.

use crate::score::Objective;
use serde::{Deserialize, Serialize};

/// The best plan, the next-best ones, and what was considered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Solution {
    pub best: Plan,
    /// Next-best plans, best first (as many as asked for and as exist).
    pub alternatives: Vec<Plan>,
    /// Per task (in task order): the chosen placement and the best one on each other cloud,
    /// each priced as if only that task moved.
    pub considered: Vec<Vec<Placement>>,
    /// How close `best` is proven to be to the optimum.
    pub optimality: Optimality,
    /// The slack planned within (`carbon_slack`, `cost_slack`), if any: the best plan on its
    /// measure and the limit it set.
    #[serde(default)]
    pub slack: Option<SlackBound>,
    pub stats: SolveStats,
}

/// How close the best plan is to the optimum: proven optimal when the search finished; when a
/// deadline cut it short, the best plan found with a proven lower bound on the objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Optimality {
    /// The search finished: the plan is optimal, tie-breaker included. False when a deadline
    /// cut it short, even if the bound then shows the objective optimal (`gap` 0).
    pub proven_optimal: bool,
    /// No plan does better than this: dollars under the cost objective, seconds of finish time
    /// under the time objective, grams of CO2 under the carbon objective. Equal to the best plan's when it is proven optimal.
    pub lower_bound: f64,
    /// `(best − lower_bound) / best`: at most how much worse than optimal the plan is (0.008
    /// is "within 0.8 %").
    pub gap: f64,
}

/// Where every task runs, and what the run costs and takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub objective: Objective,
    /// One per task, in task order.
    pub tasks: Vec<Placement>,
    /// Data moved along the DAG's edges.
    pub edges: Vec<EdgeTransfer>,
    /// Dollars: compute of every task plus all egress.
    pub total_cost: f64,
    /// Seconds, counting tasks one after another: Σ (runtime + input transfer) + Σ edge
    /// transfer. What the run takes only when nothing runs at the same time (a pipeline); see
    /// `finish_seconds`.
    pub total_seconds: f64,
    /// Seconds until the whole DAG has finished: its critical path, the longest chain of
    /// runtime, input transfer and edge transfer (independent branches run at the same time).
    /// What the time objective minimizes.
    pub finish_seconds: f64,
    /// Node-hours of compute: Σ runtime × nodes (what the machines are paid for).
    pub machine_hours: f64,
    /// The egress part of `total_cost`.
    pub egress_cost: f64,
    /// Grams of CO2 of the compute: Σ over tasks of `Placement::carbon_g` (egress counts
    /// nothing). What the carbon objective minimizes.
    pub carbon_g: f64,
    /// kWh of the compute: Σ over tasks of `Placement::energy_kwh`.
    pub energy_kwh: f64,
    /// Some task runs in a region of unknown grid intensity, counted at the world average.
    pub carbon_estimated: bool,
    /// When the run starts (UTC, `YYYY-MM-DDTHH:MM:SSZ`) if carbon was counted by the hour from
    /// then; `None`: at each region's annual average.
    #[serde(default)]
    pub start_time: Option<String>,
}

/// One task's placement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub task: String,
    pub task_index: usize,
    pub cloud: String,
    pub region: String,
    /// `None` where the cloud places by region only.
    pub zone: Option<String>,
    pub instance_type: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    /// Accelerator name and count per node.
    pub accelerator: Option<(String, f64)>,
    pub spot: bool,
    pub num_nodes: u32,
    /// $/h for one node.
    pub hourly_price: f64,
    /// $/h for all nodes.
    pub cluster_hourly_price: f64,
    pub estimated_runtime_seconds: f64,
    /// True when the task gave no runtime estimate and the default was assumed.
    pub runtime_assumed: bool,
    /// Which of the task's resource options this is (index into its expanded options).
    pub option_index: usize,
    /// Compute dollars: runtime × cluster hourly price.
    pub compute_cost: f64,
    /// Dollars and seconds to bring the task's inputs to it.
    pub input_egress_cost: f64,
    pub input_seconds: f64,
    /// compute + input egress (edge egress is in [`Plan::edges`]).
    pub estimated_cost: f64,
    /// Estimated energy of the compute (all nodes, the whole runtime), in kWh, from the power
    /// model of docs/optimizer.md ("The carbon objective").
    pub energy_kwh: f64,
    /// `energy_kwh × carbon_g_per_kwh`: grams of CO2.
    pub carbon_g: f64,
    /// The region's grid intensity used, gCO2/kWh: with a start time, its mean over the hours
    /// the task runs.
    pub carbon_g_per_kwh: f64,
    /// The region's intensity is unknown and the world average was used.
    pub carbon_estimated: bool,
    /// When the task is assumed to start, in seconds after the plan's `start_time` (0 without
    /// one): after every ancestor's runtime estimate (see docs/optimizer.md, "Carbon by hour").
    #[serde(default)]
    pub start_offset_seconds: f64,
}

/// Data moving from a task to one that depends on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EdgeTransfer {
    pub from_task: usize,
    pub to_task: usize,
    pub gigabytes: f64,
    pub cost: f64,
    pub seconds: f64,
}

/// How the solve went.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SolveStats {
    /// Candidate placements (task × location) before pruning.
    pub candidates: usize,
    /// Left after dead-end elimination (for the best plan's solve).
    pub after_pruning: usize,
    /// Independent parts of the DAG.
    pub components: usize,
    /// Parts solved by dynamic programming (trees) and by branch and bound.
    pub tree_components: usize,
    pub search_components: usize,
    /// Branch-and-bound nodes explored.
    pub search_nodes: u64,
    pub solve_micros: u128,
}

/// "Within this many percent of the best plan on one measure": `carbon_slack: 10%` plans among
/// the plans emitting at most 10 % more than the lowest-carbon plan; `cost_slack: 10%` among
/// those costing at most 10 % more than the cheapest. Among them the plan minimizes the
/// objective, or where the objective is the slack's own measure, the other one (cost for a
/// carbon slack, carbon for a cost slack).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slack {
    pub measure: SlackMeasure,
    /// Percent: `10.0` is 10 %.
    pub percent: f64,
}

impl std::fmt::Display for Slack {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.measure {
            SlackMeasure::Carbon => "carbon_slack",
            SlackMeasure::Cost => "cost_slack",
        };
        write!(formatter, "{name} {}%", self.percent)
    }
}

/// The measure a slack is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlackMeasure {
    Carbon,
    Cost,
}

/// What a slack came to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlackBound {
    pub measure: SlackMeasure,
    pub percent: f64,
    /// The best plan on the measure (within the other limits): grams of CO2 for carbon,
    /// dollars for cost.
    pub reference: f64,
    /// What the plan was held to: `reference` plus the slack (and no more than `--max-carbon`
    /// or `--budget`), in the same unit.
    pub limit: f64,
    /// The reference was proven optimal (false when a deadline cut its search short: then it
    /// is the best found, and the limit may be looser than the slack says).
    pub reference_proven: bool,
}

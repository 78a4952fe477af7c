//! From a DAG and a catalog to the optimizer's problem: per task, the best candidate offering
//! at each location; per DAG edge, how much data moves.
//!
//! Collapsing to one candidate per location is exact: everything a task's location changes for
//! its neighbours (egress price and transfer time) depends on the location alone, so within a
//! location only the task's own score matters.

use crate::plan::{EdgeTransfer, Placement, Plan};
use crate::score::{Goal, Measure, Objective, Score};
use crate::{Options, PlanError, diagnose};
use aloft_catalog::{Catalog, Link, Place, RegionId, ZoneId};
use aloft_types::{Dag, Infra, Resources, Task, TaskIdx};
use std::collections::HashMap;

/// One place a task can run, with the best offering there.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// Index into [`Problem::places`].
    pub(crate) loc: usize,
    /// Index into the catalog's offerings.
    pub(crate) offering: usize,
    pub(crate) option: usize,
    pub(crate) unary: Score,
    pub(crate) runtime_seconds: f64,
    pub(crate) runtime_assumed: bool,
    pub(crate) compute_cost: f64,
    pub(crate) input_cost: f64,
    pub(crate) input_seconds: f64,
    /// Energy of the compute (all nodes, the whole runtime) in kWh, and the grams of CO2 it
    /// emits at the region's grid intensity (see `carbon`).
    pub(crate) energy_kwh: f64,
    pub(crate) carbon_g: f64,
    pub(crate) carbon_intensity: f64,
    pub(crate) carbon_estimated: bool,
}

/// Data moving from task `src` to task `dst`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge {
    pub(crate) src: usize,
    pub(crate) dst: usize,
    pub(crate) gigabytes: f64,
}

#[derive(Debug)]
pub(crate) struct Problem<'a> {
    dag: &'a Dag,
    catalog: &'a Catalog,
    pub(crate) objective: Objective,
    /// The objective and the measure second to it (see [`Goal`]).
    pub(crate) goal: Goal,
    /// The limit on [`Score::limited`], in its units, if any: the budget (micro-dollars), or
    /// under a carbon cap with another objective, the cap (milligrams).
    pub(crate) limit: Option<i64>,
    /// A limit on the objective itself (a carbon cap under the carbon objective, a budget under
    /// cost with a carbon cap second): the optimum either fits or nothing does, so it is only
    /// checked on the result (by `optimize`).
    pub(crate) primary_cap: Option<i64>,
    /// A budget (micro-dollars) on neither measure of the score: under the time objective with
    /// a carbon cap (carbon is second, the cap is `limit`), a budget as well. The finish-time
    /// search bounds it with a search over the costs ([`Problem::cost_view`]), and k-best checks
    /// each plan against it ([`Problem::fits_budget_filter`]).
    pub(crate) budget_filter: Option<i64>,
    /// Per task, candidates sorted by their own score (best first).
    pub(crate) candidates: Vec<Vec<Candidate>>,
    pub(crate) places: Vec<Place>,
    /// Edges that carry data (edges carrying nothing cannot change the cost).
    pub(crate) edges: Vec<Edge>,
    /// Per task, the tasks it waits for (every DAG edge, data or not), each with the index of
    /// the data edge between them if there is one: what the finish time is made of.
    pub(crate) parents: Vec<Vec<(usize, Option<usize>)>>,
    /// Every task, parents before children.
    pub(crate) topological: Vec<usize>,
    /// The run's start (seconds since the epoch), if carbon is counted by the hour.
    pub(crate) start_time: Option<i64>,
    /// Per task, when it is assumed to start, in seconds after `start_time` (see
    /// [`crate::start_offsets`]).
    pub(crate) start_offsets: Vec<f64>,
}

impl<'a> Problem<'a> {
    pub(crate) fn build(
        dag: &'a Dag,
        catalog: &'a Catalog,
        options: &Options,
    ) -> Result<Problem<'a>, PlanError> {
        Problem::build_with(dag, catalog, options, true)
    }

    /// `collapse`: keep per task and location only the candidates that can be part of an
    /// optimum (see [`keep_useful_per_place`]); without it, one candidate per location and
    /// resource option, the plain problem the tests enumerate to check that collapse.
    pub(crate) fn build_with(
        dag: &'a Dag,
        catalog: &'a Catalog,
        options: &Options,
        collapse: bool,
    ) -> Result<Problem<'a>, PlanError> {
        let (goal, limit, primary_cap) = goal_and_limits(options);
        let budget_filter = (options.objective == Objective::Time
            && goal.second == Measure::Carbon)
            .then(|| options.budget.map(crate::score::micro_dollars))
            .flatten();
        let pareto = options.objective == Objective::Time
            || (limit.is_some() && goal.second != Measure::Time);
        let mut places = Vec::new();
        let mut place_index: HashMap<(RegionId, Option<ZoneId>), usize> = HashMap::new();
        let mut candidates = Vec::with_capacity(dag.tasks.len());
        // Tasks often share requirements; the matching scan is the costly part of building.
        let mut cheapest_cache: HashMap<String, Vec<usize>> = HashMap::new();
        let start_offsets = crate::start_offsets(dag, options);
        let mut intensities = Intensities::default();
        for (task_idx, task) in dag.tasks.iter().enumerate() {
            let task_name = dag.task_name(TaskIdx(task_idx));
            let inputs = resolve_inputs(catalog, task, &task_name)?;
            // The cheapest offering per (location, option): within one option and location,
            // runtime and inputs are the same, so it is no worse in time and cost alike.
            // With a limit coupling the tasks on a second measure, every offering at a place not
            // beaten on both measures may be needed: keyed by offering too.
            let mut best_at: HashMap<(usize, usize, usize), Candidate> = HashMap::new();
            for (option_idx, resources) in task.resources.options.iter().enumerate() {
                let before = best_at.len();
                let key = match_key(resources, task);
                let cheapest = cheapest_cache.entry(key).or_insert_with(|| {
                    if collapse {
                        cheapest_per_place(catalog, resources, task, options, goal, pareto)
                    } else {
                        // Unreduced, for the brute force that checks the reduction.
                        feasible_offerings(catalog, resources, task, options)
                            .map(|(offering_idx, _)| offering_idx)
                            .collect()
                    }
                });
                for &offering_idx in cheapest.iter() {
                    let offering = &catalog.offerings[offering_idx];
                    let place = catalog.offering_place(offering);
                    let key = (offering.region, offering.zone);
                    let loc = *place_index.entry(key).or_insert_with(|| {
                        places.push(place);
                        places.len() - 1
                    });
                    let candidate = candidate(
                        catalog,
                        task,
                        resources,
                        options,
                        &inputs,
                        place,
                        loc,
                        offering_idx,
                        option_idx,
                        goal,
                        options
                            .start_time
                            .map(|start| start as f64 + start_offsets[task_idx]),
                        &mut intensities,
                    );
                    let key = (loc, option_idx, if pareto { offering_idx } else { 0 });
                    match best_at.get(&key) {
                        Some(existing) if existing.unary <= candidate.unary => {}
                        _ => {
                            best_at.insert(key, candidate);
                        }
                    }
                }
                // `ordered`: the first option with any feasible offering is the one used.
                if task.resources.ordered && best_at.len() > before {
                    break;
                }
            }
            if best_at.is_empty() {
                return Err(PlanError::Infeasible {
                    task: task_name,
                    reason: diagnose::why_infeasible(catalog, task, options),
                });
            }
            let mut task_candidates: Vec<Candidate> = best_at.into_values().collect();
            task_candidates
                .sort_by_key(|candidate| (candidate.unary, candidate.loc, candidate.option));
            if collapse {
                task_candidates =
                    keep_useful_per_place(task_candidates, pareto, budget_filter.is_some());
            }
            candidates.push(task_candidates);
        }
        let mut data: HashMap<(usize, usize), f64> = HashMap::new();
        for &(parent, child) in &dag.edges {
            let gigabytes = dag.tasks[parent.0]
                .outputs
                .as_ref()
                .map_or(0.0, |o| o.size.gigabytes);
            if gigabytes > 0.0 && parent != child {
                *data.entry((parent.0, child.0)).or_insert(0.0) += gigabytes;
            }
        }
        let mut edges: Vec<Edge> = data
            .into_iter()
            .map(|((src, dst), gigabytes)| Edge {
                src,
                dst,
                gigabytes,
            })
            .collect();
        edges.sort_by_key(|edge| (edge.src, edge.dst));
        let (parents, topological) = precedence(dag, &edges);
        Ok(Problem {
            dag,
            catalog,
            objective: options.objective,
            goal,
            limit,
            primary_cap,
            budget_filter,
            candidates,
            places,
            edges,
            parents,
            topological,
            start_time: options.start_time,
            start_offsets,
        })
    }

    /// The cost of an assignment in micro-dollars, each term rounded alone as scores are.
    pub(crate) fn cost_units(&self, assignment: &[usize]) -> i64 {
        let own: i64 = assignment
            .iter()
            .enumerate()
            .map(|(task, &candidate)| {
                let candidate = &self.candidates[task][candidate];
                crate::score::micro_dollars(candidate.compute_cost + candidate.input_cost)
            })
            .sum();
        let moved: i64 = self
            .edges
            .iter()
            .map(|edge| {
                let from = self.candidates[edge.src][assignment[edge.src]].loc;
                let to = self.candidates[edge.dst][assignment[edge.dst]].loc;
                crate::score::micro_dollars(edge.gigabytes * self.link(from, to).price_per_gb)
            })
            .sum();
        own + moved
    }

    /// The same problem scored (time, cost) with no limit: what the time objective's search
    /// bounds a budget with when the score's second measure is carbon (see `budget_filter`).
    /// Candidates keep their indices.
    pub(crate) fn cost_view(&self) -> Problem<'a> {
        let goal = Goal {
            objective: Objective::Time,
            second: Measure::Cost,
        };
        let candidates = self
            .candidates
            .iter()
            .map(|task_candidates| {
                task_candidates
                    .iter()
                    .map(|candidate| Candidate {
                        unary: Score::new(
                            goal,
                            candidate.compute_cost + candidate.input_cost,
                            candidate.runtime_seconds + candidate.input_seconds,
                            candidate.carbon_g,
                        ),
                        ..candidate.clone()
                    })
                    .collect()
            })
            .collect();
        Problem {
            goal,
            limit: None,
            primary_cap: None,
            budget_filter: None,
            candidates,
            ..self.clone_problem()
        }
    }

    /// A copy with every field as it is (candidates included).
    fn clone_problem(&self) -> Problem<'a> {
        Problem {
            dag: self.dag,
            catalog: self.catalog,
            objective: self.objective,
            goal: self.goal,
            limit: self.limit,
            primary_cap: self.primary_cap,
            budget_filter: self.budget_filter,
            candidates: self.candidates.clone(),
            places: self.places.clone(),
            edges: self.edges.clone(),
            parents: self.parents.clone(),
            topological: self.topological.clone(),
            start_time: self.start_time,
            start_offsets: self.start_offsets.clone(),
        }
    }

    /// Within [`Problem::budget_filter`], if there is one.
    pub(crate) fn fits_budget_filter(&self, assignment: &[usize]) -> bool {
        self.budget_filter
            .is_none_or(|budget| self.cost_units(assignment) <= budget)
    }

    /// A limit on the second measure couples every task (solved as one search).
    pub(crate) fn limit_couples(&self) -> bool {
        self.limit.is_some() && self.goal.second != Measure::Time
    }

    /// The same problem with each task's candidates cut to the best one per region: what the
    /// next-best plans are ranked on, so that each differs from the others in at least one
    /// task's region (or instance), not merely in a zone of the same region at the same price.
    pub(crate) fn regional(&self) -> Problem<'a> {
        let candidates = self
            .candidates
            .iter()
            .map(|task_candidates| {
                let mut seen = std::collections::HashSet::new();
                // Candidates are sorted best first, so the first per region is its best.
                task_candidates
                    .iter()
                    .filter(|candidate| seen.insert(self.places[candidate.loc].region))
                    .cloned()
                    .collect()
            })
            .collect();
        Problem {
            dag: self.dag,
            catalog: self.catalog,
            objective: self.objective,
            goal: self.goal,
            limit: self.limit,
            primary_cap: self.primary_cap,
            budget_filter: self.budget_filter,
            candidates,
            places: self.places.clone(),
            edges: self.edges.clone(),
            parents: self.parents.clone(),
            topological: self.topological.clone(),
            start_time: self.start_time,
            start_offsets: self.start_offsets.clone(),
        }
    }

    /// Where each task runs, at region level, and on which offering's instance type.
    pub(crate) fn region_signature(&self, assignment: &[usize]) -> Vec<(Option<RegionId>, u32)> {
        assignment
            .iter()
            .enumerate()
            .map(|(task, &candidate)| {
                let candidate = &self.candidates[task][candidate];
                let offering = &self.catalog.offerings[candidate.offering];
                (self.places[candidate.loc].region, offering.instance_type.0)
            })
            .collect()
    }

    pub(crate) fn task_count(&self) -> usize {
        self.candidates.len()
    }

    pub(crate) fn candidate_count(&self) -> usize {
        self.candidates.iter().map(Vec::len).sum()
    }

    fn link(&self, from_loc: usize, to_loc: usize) -> Link {
        self.catalog
            .link(self.places[from_loc], self.places[to_loc])
    }

    /// The score of moving an edge's data between the two tasks' candidate locations.
    pub(crate) fn edge_score(
        &self,
        edge: &Edge,
        src_candidate: usize,
        dst_candidate: usize,
    ) -> Score {
        let from = self.candidates[edge.src][src_candidate].loc;
        let to = self.candidates[edge.dst][dst_candidate].loc;
        let link = self.link(from, to);
        // Moving data emits no counted carbon (see `carbon`: egress energy is left out).
        Score::new(
            self.goal,
            edge.gigabytes * link.price_per_gb,
            link.transfer_seconds(edge.gigabytes),
            0.0,
        )
    }

    /// The total score of an assignment (one candidate index per task). Under the cost
    /// objective every term adds up; under the time objective the time is the DAG's finish
    /// time (its critical path) and the cost still adds up.
    pub(crate) fn score_of(&self, assignment: &[usize]) -> Score {
        let unary: Score = assignment
            .iter()
            .enumerate()
            .map(|(task, &candidate)| self.candidates[task][candidate].unary)
            .sum();
        let pairwise: Score = self
            .edges
            .iter()
            .map(|edge| self.edge_score(edge, assignment[edge.src], assignment[edge.dst]))
            .sum();
        let total = unary + pairwise;
        match self.objective {
            Objective::Cost | Objective::Carbon => total,
            Objective::Time => Score {
                primary: self.finish_time(assignment),
                secondary: total.secondary,
            },
        }
    }

    /// The transfer time of the data edge `edge_idx` (if any) in the time objective's units.
    pub(crate) fn edge_time(
        &self,
        edge_idx: Option<usize>,
        src_candidate: usize,
        dst_candidate: usize,
    ) -> i64 {
        edge_idx.map_or(0, |edge_idx| {
            let edge = &self.edges[edge_idx];
            self.edge_score(edge, src_candidate, dst_candidate).primary
        })
    }

    /// The DAG's finish time under the time objective (milliseconds): every task starts when
    /// its last parent has finished and that parent's data has arrived.
    pub(crate) fn finish_time(&self, assignment: &[usize]) -> i64 {
        debug_assert_eq!(self.objective, Objective::Time);
        let mut finish = vec![0i64; self.task_count()];
        let mut latest = 0;
        for &task in &self.topological {
            let start = self.parents[task]
                .iter()
                .map(|&(parent, edge_idx)| {
                    finish[parent] + self.edge_time(edge_idx, assignment[parent], assignment[task])
                })
                .max()
                .unwrap_or(0);
            finish[task] = start + self.candidates[task][assignment[task]].unary.primary;
            latest = latest.max(finish[task]);
        }
        latest
    }

    fn placement(&self, task: usize, candidate: &Candidate) -> Placement {
        let catalog = self.catalog;
        let offering = &catalog.offerings[candidate.offering];
        let instance_type = catalog.instance_type(offering.instance_type);
        let region = catalog.region(offering.region);
        let task_spec = &self.dag.tasks[task];
        let spot = task_spec.resources.options[candidate.option].use_spot;
        let hourly_price = offering.hourly_price(spot).unwrap_or(f64::NAN);
        let num_nodes = task_spec.num_nodes.max(1);
        Placement {
            task: self.dag.task_name(TaskIdx(task)),
            task_index: task,
            cloud: catalog.cloud(region.cloud).name.clone(),
            region: region.name.clone(),
            zone: offering.zone.map(|zone| catalog.zone(zone).name.clone()),
            instance_type: instance_type.name.clone(),
            vcpus: instance_type.vcpus,
            memory_gib: instance_type.memory_gib,
            accelerator: instance_type.accelerator.clone(),
            spot,
            num_nodes,
            hourly_price,
            cluster_hourly_price: hourly_price * f64::from(num_nodes),
            estimated_runtime_seconds: candidate.runtime_seconds,
            runtime_assumed: candidate.runtime_assumed,
            option_index: candidate.option,
            compute_cost: candidate.compute_cost,
            input_egress_cost: candidate.input_cost,
            input_seconds: candidate.input_seconds,
            estimated_cost: candidate.compute_cost + candidate.input_cost,
            energy_kwh: candidate.energy_kwh,
            carbon_g: candidate.carbon_g,
            carbon_g_per_kwh: candidate.carbon_intensity,
            carbon_estimated: candidate.carbon_estimated,
            start_offset_seconds: self.start_offsets[task],
        }
    }

    /// The plan for an assignment.
    pub(crate) fn plan(&self, assignment: &[usize]) -> Plan {
        let tasks: Vec<Placement> = assignment
            .iter()
            .enumerate()
            .map(|(task, &candidate)| self.placement(task, &self.candidates[task][candidate]))
            .collect();
        let edges: Vec<EdgeTransfer> = self
            .dag
            .edges
            .iter()
            .map(|&(parent, child)| {
                let gigabytes = self.dag.tasks[parent.0]
                    .outputs
                    .as_ref()
                    .map_or(0.0, |o| o.size.gigabytes);
                let from = self.candidates[parent.0][assignment[parent.0]].loc;
                let to = self.candidates[child.0][assignment[child.0]].loc;
                let link = self.link(from, to);
                EdgeTransfer {
                    from_task: parent.0,
                    to_task: child.0,
                    gigabytes,
                    cost: gigabytes * link.price_per_gb,
                    seconds: link.transfer_seconds(gigabytes),
                }
            })
            .collect();
        let edge_cost: f64 = edges.iter().map(|edge| edge.cost).sum();
        let edge_seconds: f64 = edges.iter().map(|edge| edge.seconds).sum();
        let input_cost: f64 = tasks.iter().map(|task| task.input_egress_cost).sum();
        let compute: f64 = tasks.iter().map(|task| task.compute_cost).sum();
        let seconds: f64 = tasks
            .iter()
            .map(|task| task.estimated_runtime_seconds + task.input_seconds)
            .sum();
        // The finish time: each task starts once every parent has finished and its data has
        // arrived (the transfer of all data on one dependency, as the solver counts it).
        let mut finish = vec![0.0f64; tasks.len()];
        for &task in &self.topological {
            let start = self.parents[task]
                .iter()
                .map(|&(parent, edge_idx)| {
                    let transfer = edge_idx.map_or(0.0, |edge_idx| {
                        let edge = &self.edges[edge_idx];
                        let from = self.candidates[parent][assignment[parent]].loc;
                        let to = self.candidates[task][assignment[task]].loc;
                        self.link(from, to).transfer_seconds(edge.gigabytes)
                    });
                    finish[parent] + transfer
                })
                .fold(0.0, f64::max);
            finish[task] =
                start + tasks[task].estimated_runtime_seconds + tasks[task].input_seconds;
        }
        let machine_hours = tasks
            .iter()
            .map(|task| task.estimated_runtime_seconds * f64::from(task.num_nodes) / 3600.0)
            .sum();
        Plan {
            objective: self.objective,
            start_time: self.start_time.map(aloft_catalog::format_utc),
            carbon_g: tasks.iter().map(|task| task.carbon_g).sum(),
            energy_kwh: tasks.iter().map(|task| task.energy_kwh).sum(),
            carbon_estimated: tasks.iter().any(|task| task.carbon_estimated),
            tasks,
            edges,
            total_cost: compute + input_cost + edge_cost,
            total_seconds: seconds + edge_seconds,
            finish_seconds: finish.iter().copied().fold(0.0, f64::max),
            machine_hours,
            egress_cost: input_cost + edge_cost,
        }
    }

    /// Per task: the chosen placement first, then the best placement on each other cloud, each
    /// scored as if only that task moved (its neighbours stay where the plan puts them).
    pub(crate) fn considered(&self, assignment: &[usize]) -> Vec<Vec<Placement>> {
        // Each task's own edges, found once rather than by scanning all edges per candidate.
        let mut incident: Vec<Vec<&Edge>> = vec![Vec::new(); self.task_count()];
        for edge in &self.edges {
            incident[edge.src].push(edge);
            incident[edge.dst].push(edge);
        }
        (0..self.task_count())
            .map(|task| {
                let mut trial = assignment.to_vec();
                let mut best_per_cloud: HashMap<u16, (Score, usize)> = HashMap::new();
                for candidate in 0..self.candidates[task].len() {
                    trial[task] = candidate;
                    let score = self.local_score(task, &incident[task], &trial);
                    let cloud = self.places[self.candidates[task][candidate].loc].cloud.0;
                    let entry = best_per_cloud.entry(cloud).or_insert((score, candidate));
                    if score < entry.0 {
                        *entry = (score, candidate);
                    }
                }
                let chosen = assignment[task];
                let chosen_cloud = self.places[self.candidates[task][chosen].loc].cloud.0;
                let mut others: Vec<(Score, usize)> = best_per_cloud
                    .into_iter()
                    .filter(|(cloud, _)| *cloud != chosen_cloud)
                    .map(|(_, best)| best)
                    .collect();
                others.sort();
                std::iter::once(chosen)
                    .chain(others.into_iter().map(|(_, candidate)| candidate))
                    .map(|candidate| self.placement(task, &self.candidates[task][candidate]))
                    .collect()
            })
            .collect()
    }

    /// A task's own score plus its edges (`edges`: those that touch it).
    fn local_score(&self, task: usize, edges: &[&Edge], assignment: &[usize]) -> Score {
        let unary = self.candidates[task][assignment[task]].unary;
        let pairwise: Score = edges
            .iter()
            .map(|edge| self.edge_score(edge, assignment[edge.src], assignment[edge.dst]))
            .sum();
        unary + pairwise
    }
}

/// Per location, the candidates an optimum may need (`candidates` sorted by own score).
///
/// Under the cost objective the score adds up, and everything a task's location changes for
/// its neighbours depends on the location alone, so the best own score there is all that
/// matters. Under the time objective the finish time is a longest path: a slower, cheaper
/// option wins for a task off the critical path, so every candidate not beaten in both time
/// and cost by another at the same location is kept (the Pareto front, `pareto`). So too under
/// a limit on the second measure that couples the tasks: a candidate worse on the objective
/// but better on the limited measure may be what lets the plan fit.
///
/// `also_cost`: cost is a third measure (a budget besides a carbon cap under the time
/// objective), so a candidate is beaten only by one no worse in cost too.
fn keep_useful_per_place(
    candidates: Vec<Candidate>,
    pareto: bool,
    also_cost: bool,
) -> Vec<Candidate> {
    let cost = |candidate: &Candidate| {
        crate::score::micro_dollars(candidate.compute_cost + candidate.input_cost)
    };
    let mut kept: Vec<Candidate> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let beaten = kept
            .iter()
            .filter(|other| other.loc == candidate.loc)
            .any(|other| {
                !pareto
                    || (other.unary.primary <= candidate.unary.primary
                        && other.unary.secondary <= candidate.unary.secondary
                        && (!also_cost || cost(other) <= cost(&candidate)))
            });
        if !beaten {
            kept.push(candidate);
        }
    }
    kept
}

/// The score's measures and the limits on them. A carbon cap under the cost or time objective
/// makes carbon the second measure (the tie-breaker) so the search can bound it; a budget with
/// it under the time objective is on neither measure (see `Problem::budget_filter`).
fn goal_and_limits(options: &Options) -> (Goal, Option<i64>, Option<i64>) {
    let budget = options.budget.map(crate::score::micro_dollars);
    let cap = options.max_carbon_g.map(crate::score::milligrams);
    match (options.objective, cap) {
        (Objective::Carbon, _) => (Goal::plain(Objective::Carbon), budget, cap),
        (objective, None) => (Goal::plain(objective), budget, None),
        (objective, Some(cap)) => {
            let goal = Goal {
                objective,
                second: Measure::Carbon,
            };
            // Under cost the budget is on the objective; under time it cannot be had as well.
            let primary_cap = if objective == Objective::Cost {
                budget
            } else {
                None
            };
            (goal, Some(cap), primary_cap)
        }
    }
}

/// Per task its parents (with the data edge from each, if any), and an order that puts every
/// parent before its children. The parser refuses cycles; should one get here anyway, the tasks
/// on it are appended in index order rather than dropped.
#[allow(clippy::type_complexity)]
pub(crate) fn precedence(
    dag: &Dag,
    edges: &[Edge],
) -> (Vec<Vec<(usize, Option<usize>)>>, Vec<usize>) {
    let count = dag.tasks.len();
    let mut parents: Vec<Vec<(usize, Option<usize>)>> = vec![Vec::new(); count];
    for &(parent, child) in &dag.edges {
        if parent == child || parent.0 >= count || child.0 >= count {
            continue;
        }
        if parents[child.0].iter().any(|&(known, _)| known == parent.0) {
            continue;
        }
        let data_edge = edges
            .iter()
            .position(|edge| edge.src == parent.0 && edge.dst == child.0);
        parents[child.0].push((parent.0, data_edge));
    }
    let mut waiting: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (child, its_parents) in parents.iter().enumerate() {
        for &(parent, _) in its_parents {
            children[parent].push(child);
        }
    }
    let mut order: Vec<usize> = (0..count).filter(|&task| waiting[task] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let task = order[next];
        next += 1;
        for &child in &children[task] {
            waiting[child] -= 1;
            if waiting[child] == 0 {
                order.push(child);
            }
        }
    }
    if order.len() < count {
        let mut placed = vec![false; count];
        for &task in &order {
            placed[task] = true;
        }
        order.extend((0..count).filter(|&task| !placed[task]));
    }
    (parents, order)
}

/// Offerings (with their catalog index) a task may use for one resource option: fitting, priced
/// for the market asked, not blocked, and under the price cap.
pub(crate) fn feasible_offerings<'c>(
    catalog: &'c Catalog,
    resources: &'c Resources,
    task: &Task,
    options: &'c Options,
) -> impl Iterator<Item = (usize, &'c aloft_catalog::Offering)> + 'c {
    let nodes = f64::from(task.num_nodes.max(1));
    catalog
        .offerings_for(resources)
        .filter(move |(_, offering)| {
            let Some(price) = offering.hourly_price(resources.use_spot) else {
                return false;
            };
            !is_blocked(catalog, offering, &options.blocked)
                && options
                    .max_hourly_price
                    .is_none_or(|cap| price * nodes <= cap + 1e-9)
        })
}

/// Everything about a resource option (and its task) that decides which offerings it may use
/// and their order by price: not the runtime, which scales every price at a place alike.
fn match_key(resources: &Resources, task: &Task) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}",
        resources.infra,
        resources.instance_type,
        resources.cpus,
        resources.memory,
        resources.accelerator,
        resources.use_spot,
        task.num_nodes
    )
}

/// The best feasible offerings at each place, for one resource option. Within an option and a
/// place, runtime and input transfers are the same for every offering, so the cheapest is the
/// best one for the cost and time objectives. Where carbon is scored, it is the one drawing the
/// least power (the grid intensity is the same across a place), the cheapest of those: power
/// and price both scale alike with runtime and nodes, so the order holds for every task sharing
/// the key. `pareto` (a limit couples the tasks on the second measure, and the measures are cost
/// and carbon): every offering not beaten on both power and price.
fn cheapest_per_place(
    catalog: &Catalog,
    resources: &Resources,
    task: &Task,
    options: &Options,
    goal: Goal,
    pareto: bool,
) -> Vec<usize> {
    let scores_carbon = goal.objective == Objective::Carbon || goal.second == Measure::Carbon;
    // Per place: (watts where carbon is scored else 0, price, offering).
    type Ranked = Vec<(f64, f64, usize)>;
    let mut at: HashMap<(RegionId, Option<ZoneId>), Ranked> = HashMap::new();
    for (offering_idx, offering) in feasible_offerings(catalog, resources, task, options) {
        let price = offering
            .hourly_price(resources.use_spot)
            .unwrap_or(f64::INFINITY);
        let watts = if scores_carbon {
            crate::carbon::node_watts(catalog, offering)
        } else {
            0.0
        };
        at.entry((offering.region, offering.zone))
            .or_default()
            .push((watts, price, offering_idx));
    }
    let mut kept: Vec<usize> = Vec::new();
    for mut offerings in at.into_values() {
        offerings.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.cmp(&b.2))
        });
        let mut least_price = f64::INFINITY;
        for (index, &(_, price, offering_idx)) in offerings.iter().enumerate() {
            if index == 0 || (pareto && price < least_price) {
                kept.push(offering_idx);
            }
            least_price = least_price.min(price);
        }
    }
    kept.sort_unstable();
    kept
}

pub(crate) fn is_blocked(
    catalog: &Catalog,
    offering: &aloft_catalog::Offering,
    blocked: &[Infra],
) -> bool {
    if blocked.is_empty() {
        return false;
    }
    let region = catalog.region(offering.region);
    let cloud = &catalog.cloud(region.cloud).name;
    let zone = offering.zone.map(|zone| catalog.zone(zone).name.as_str());
    blocked.iter().any(|block| {
        block.cloud.as_deref().is_some_and(|c| c == cloud)
            && block.region.as_deref().is_none_or(|r| r == region.name)
            && block.zone.as_deref().is_none_or(|z| Some(z) == zone)
    })
}

/// An input's place and size. `None` place: the data lives outside every known cloud (a local
/// path, or a provider the catalog does not price), so moving it costs nothing we can price.
struct Input {
    place: Option<Place>,
    gigabytes: f64,
}

fn resolve_inputs(
    catalog: &Catalog,
    task: &Task,
    task_name: &str,
) -> Result<Vec<Input>, PlanError> {
    task.inputs
        .iter()
        .map(|input| {
            // Data outside every cloud the catalog prices (a local path, or a provider such as
            // R2 that the catalog does not know) has no egress price we can count.
            let priced = input
                .infra
                .cloud
                .as_deref()
                .and_then(|cloud| catalog.find_cloud(cloud));
            let place = match priced {
                None => None,
                Some(_) => Some(catalog.resolve_infra(&input.infra).map_err(|err| {
                    PlanError::UnknownInputLocation {
                        task: task_name.to_owned(),
                        path: input.path.clone(),
                        reason: err.to_string(),
                    }
                })?),
            };
            Ok(Input {
                place,
                gigabytes: input.size.gigabytes,
            })
        })
        .collect()
}

/// The grid intensity over a run, by (region, start, runtime) as bits: offerings in one region
/// share it.
type Intensities = HashMap<(u32, u64, u64), (f64, bool)>;

#[allow(clippy::too_many_arguments)]
fn candidate(
    catalog: &Catalog,
    task: &Task,
    resources: &Resources,
    options: &Options,
    inputs: &[Input],
    place: Place,
    loc: usize,
    offering_idx: usize,
    option_idx: usize,
    goal: Goal,
    start: Option<f64>,
    intensities: &mut Intensities,
) -> Candidate {
    let offering = &catalog.offerings[offering_idx];
    let price = offering
        .hourly_price(resources.use_spot)
        .unwrap_or(f64::INFINITY);
    let runtime = resources.estimated_runtime.or(task.estimated_runtime);
    let runtime_assumed = runtime.is_none();
    let runtime_seconds = runtime.unwrap_or(options.default_runtime).seconds;
    let nodes = f64::from(task.num_nodes.max(1));
    let compute_cost = price * nodes * runtime_seconds / 3600.0;
    let energy_kwh =
        crate::carbon::node_watts(catalog, offering) * nodes * runtime_seconds / 3600.0 / 1000.0;
    let (carbon_intensity, carbon_estimated) = match start {
        None => crate::carbon::intensity(catalog, offering),
        Some(start) => *intensities
            .entry((
                offering.region.0,
                start.to_bits(),
                runtime_seconds.to_bits(),
            ))
            .or_insert_with(|| {
                crate::carbon::mean_intensity_over(catalog, offering.region, start, runtime_seconds)
            }),
    };
    let carbon_g = energy_kwh * carbon_intensity;
    let (mut input_cost, mut input_seconds) = (0.0, 0.0);
    for input in inputs {
        if let Some(from) = input.place {
            let link = catalog.link(from, place);
            input_cost += input.gigabytes * link.price_per_gb;
            input_seconds += link.transfer_seconds(input.gigabytes);
        }
    }
    Candidate {
        loc,
        offering: offering_idx,
        option: option_idx,
        unary: Score::new(
            goal,
            compute_cost + input_cost,
            runtime_seconds + input_seconds,
            carbon_g,
        ),
        runtime_seconds,
        runtime_assumed,
        compute_cost,
        input_cost,
        input_seconds,
        energy_kwh,
        carbon_g,
        carbon_intensity,
        carbon_estimated,
    }
}

//! The exact solver for the time objective: the DAG's finish time (its critical path), with
//! the second measure (total cost, or carbon under a carbon cap) as the tie-breaker and under
//! the limit.
//!
//! A finish time is a maximum over paths, not a sum over tasks and edges, so the additive
//! machinery of `solve` (dead-end elimination, tree dynamic programming, LP bounds on the
//! objective) does not apply to it. What does:
//!
//! - **Topological branch and bound.** Tasks are assigned parents first, so when a task is
//!   placed its start (the last parent's finish plus that parent's transfer) is known exactly.
//!   The finish-time bound of a partial plan is the largest of: every placed task's finish plus
//!   its **tail** (the shortest its longest chain of descendants can possibly be, given where it
//!   runs), and for the tasks not placed yet, the shortest their longest chain through them can
//!   be whatever is chosen (**head + own + tail**, static). Both are exact lower bounds.
//! - **The cost bound** is the additive search's own (`solve::Search`), built over the same
//!   order on the cost alone, with its LP-dual and arc-consistency reparameterizations: it
//!   bounds the cost of every completion and, at a complete plan, is the exact cost.
//! - **Components.** Parts of the DAG with no dependency between them run at the same time: the
//!   plan's finish time is the largest of theirs, and its cost the sum. So each part is solved
//!   for (its finish time, its cost); `T` is the largest finish time; then every part that
//!   finished earlier is solved again for its least cost among plans that finish by `T`. That
//!   is the exact optimum of (finish time, cost). A budget couples the parts, so then the whole
//!   DAG is one search.
//! - **A budget and a carbon cap together.** Carbon is then the second measure (the cap is on
//!   it); the budget gets an additive search of its own over the costs (`Problem::cost_view`),
//!   whose bound prunes every completion that cannot fit, as the second measure's does.

use crate::limits::Limits;
use crate::plan::SolveStats;
use crate::problem::Problem;
use crate::score::Score;
use crate::solve::{Domains, Graph, Search, Solved};

/// The best assignment for (finish time, cost) within the budget, or `None` if the budget
/// leaves no plan.
pub(crate) fn solve(
    problem: &Problem<'_>,
    graph: &Graph,
    domains: &Domains,
    stats: &mut SolveStats,
    limits: &mut Limits,
) -> Option<Solved> {
    let components = match problem.limit {
        Some(_) => vec![problem.topological.clone()],
        None => precedence_components(problem),
    };
    stats.components = components.len();
    stats.search_components = components.len();
    let mut assignment = vec![usize::MAX; problem.task_count()];
    let mut solved = Vec::with_capacity(components.len());
    // No plan finishes before the slowest part's bound.
    let mut lower_bound = 0i64;
    // A budget besides a carbon cap: bounded by a search over the costs (see `budget_filter`).
    let cost_view = problem.budget_filter.map(|_| problem.cost_view());
    let budget = cost_view.as_ref().zip(problem.budget_filter);
    for component in &components {
        let mut search =
            MakespanSearch::new(problem, graph, domains, component, problem.limit, budget);
        let found = search.run(None, limits);
        stats.search_nodes += search.nodes;
        let (finish, _cost) = found?;
        lower_bound = lower_bound.max(search.open_bound.min(finish));
        solved.push((finish, search));
    }
    let latest = solved.iter().map(|(finish, _)| *finish).max().unwrap_or(0);
    for (finish, search) in &mut solved {
        if *finish < latest {
            // Any plan of this part that finishes by `latest` leaves the DAG's finish time as
            // it is, so only its cost matters now. The plan found so far is one of them.
            search.reset_for_cap();
            search.run(Some(latest), limits);
            stats.search_nodes += search.nodes;
        }
        for (position, &task) in search.tasks.iter().enumerate() {
            assignment[task] = search.cost.domains[position][search.best_values[position]];
        }
    }
    let score = problem.score_of(&assignment);
    if problem
        .limit
        .is_some_and(|budget| score.limited(problem.goal) > budget)
    {
        return None;
    }
    Some(Solved {
        score,
        assignment,
        lower_bound: lower_bound.min(score.primary),
    })
}

/// Groups of tasks linked by dependencies (data or not), each in topological order.
fn precedence_components(problem: &Problem<'_>) -> Vec<Vec<usize>> {
    let count = problem.task_count();
    let mut leader: Vec<usize> = (0..count).collect();
    fn find(leader: &mut [usize], task: usize) -> usize {
        let mut root = task;
        while leader[root] != root {
            root = leader[root];
        }
        let mut walk = task;
        while leader[walk] != root {
            let next = leader[walk];
            leader[walk] = root;
            walk = next;
        }
        root
    }
    for (child, parents) in problem.parents.iter().enumerate() {
        for &(parent, _) in parents {
            let (a, b) = (find(&mut leader, parent), find(&mut leader, child));
            if a != b {
                leader[a.max(b)] = a.min(b);
            }
        }
    }
    let mut by_root: Vec<Vec<usize>> = vec![Vec::new(); count];
    for &task in &problem.topological {
        let root = find(&mut leader, task);
        by_root[root].push(task);
    }
    by_root
        .into_iter()
        .filter(|tasks| !tasks.is_empty())
        .collect()
}

/// Branch and bound over one component, tasks in topological order.
struct MakespanSearch<'p> {
    /// The component's tasks, parents first; positions below index this.
    tasks: Vec<usize>,
    /// The cost tables and bound, over the same positions and domains.
    cost: Search<'p>,
    /// Per position: (parent position, transfer-time matrix index, if data moves).
    parents: Vec<Vec<(usize, Option<usize>)>>,
    /// Transfer times, row = the parent's value, `cols` columns (the child's values).
    times: Vec<(usize, Vec<i64>)>,
    own_time: Vec<Vec<i64>>,
    /// Per position and value: the least time its descendants can still add after it ends.
    tail: Vec<Vec<i64>>,
    /// Per position: the least finish time of the longest chain through any task from this
    /// position on, whatever is chosen (so a bound for the unplaced tasks).
    through_from: Vec<i64>,
    budget: Option<i64>,
    /// A budget on a measure the score does not hold (the time objective with a carbon cap):
    /// its own additive search over the costs, and the limit.
    extra_budget: Option<(Search<'p>, i64)>,
    /// The current partial plan: value and finish time per position.
    values: Vec<usize>,
    finish: Vec<i64>,
    /// The best complete plan: (finish time or 0 under a cap, cost) and its values.
    best: (i64, i64),
    best_values: Vec<usize>,
    nodes: u64,
    /// The least finish-time bound of the subtrees the limits cut off (`i64::MAX`: none).
    open_bound: i64,
}

impl<'p> MakespanSearch<'p> {
    fn new(
        problem: &'p Problem<'p>,
        graph: &Graph,
        domains: &Domains,
        component: &[usize],
        budget: Option<i64>,
        extra_budget: Option<(&'p Problem<'p>, i64)>,
    ) -> MakespanSearch<'p> {
        let tasks = component.to_vec();
        let extra_budget = extra_budget.map(|(cost_view, limit)| {
            let search = Search::new(cost_view, graph, domains, tasks.clone(), None, |score| {
                Score {
                    primary: score.secondary,
                    secondary: 0,
                }
            });
            (search, limit)
        });
        // The cost alone: the search's bound machinery then bounds the cost of completions.
        let cost = Search::new(problem, graph, domains, tasks.clone(), None, |score| {
            Score {
                primary: score.secondary,
                secondary: 0,
            }
        });
        let n = tasks.len();
        let mut position = vec![usize::MAX; problem.task_count()];
        for (pos, &task) in tasks.iter().enumerate() {
            position[task] = pos;
        }
        let own_time: Vec<Vec<i64>> = tasks
            .iter()
            .map(|&task| {
                domains[task]
                    .iter()
                    .map(|&candidate| problem.candidates[task][candidate].unary.primary)
                    .collect()
            })
            .collect();
        let mut parents = vec![Vec::new(); n];
        let mut children: Vec<Vec<(usize, Option<usize>)>> = vec![Vec::new(); n];
        let mut times = Vec::new();
        for (pos, &task) in tasks.iter().enumerate() {
            for &(parent, edge_idx) in &problem.parents[task] {
                let parent_pos = position[parent];
                debug_assert!(parent_pos < pos, "parents come first");
                let matrix = edge_idx.map(|edge_idx| {
                    let cols = domains[task].len();
                    let mut data = Vec::with_capacity(domains[parent].len() * cols);
                    for &theirs in &domains[parent] {
                        for &mine in &domains[task] {
                            data.push(problem.edge_time(Some(edge_idx), theirs, mine));
                        }
                    }
                    times.push((cols, data));
                    times.len() - 1
                });
                parents[pos].push((parent_pos, matrix));
                children[parent_pos].push((pos, matrix));
            }
        }
        let transfer = |matrix: Option<usize>, row: usize, col: usize| -> i64 {
            matrix.map_or(0, |m| {
                let (cols, data) = &times[m];
                data[row * cols + col]
            })
        };
        // head[pos][v]: the least time before the task can start at value v.
        let mut head: Vec<Vec<i64>> = own_time.iter().map(|d| vec![0; d.len()]).collect();
        for pos in 0..n {
            for value in 0..own_time[pos].len() {
                let mut start = 0;
                for &(parent_pos, matrix) in &parents[pos] {
                    let earliest = (0..own_time[parent_pos].len())
                        .map(|theirs| {
                            head[parent_pos][theirs]
                                + own_time[parent_pos][theirs]
                                + transfer(matrix, theirs, value)
                        })
                        .min()
                        .unwrap_or(0);
                    start = start.max(earliest);
                }
                head[pos][value] = start;
            }
        }
        let mut tail: Vec<Vec<i64>> = own_time.iter().map(|d| vec![0; d.len()]).collect();
        for pos in (0..n).rev() {
            for value in 0..own_time[pos].len() {
                let mut after = 0;
                for &(child_pos, matrix) in &children[pos] {
                    let least = (0..own_time[child_pos].len())
                        .map(|theirs| {
                            transfer(matrix, value, theirs)
                                + own_time[child_pos][theirs]
                                + tail[child_pos][theirs]
                        })
                        .min()
                        .unwrap_or(0);
                    after = after.max(least);
                }
                tail[pos][value] = after;
            }
        }
        let mut through_from = vec![0i64; n + 1];
        for pos in (0..n).rev() {
            let through = (0..own_time[pos].len())
                .map(|value| head[pos][value] + own_time[pos][value] + tail[pos][value])
                .min()
                .unwrap_or(0);
            through_from[pos] = through_from[pos + 1].max(through);
        }
        MakespanSearch {
            tasks,
            cost,
            parents,
            times,
            own_time,
            tail,
            through_from,
            budget,
            extra_budget,
            values: vec![0; n],
            finish: vec![0; n],
            best: (i64::MAX, i64::MAX),
            best_values: vec![0; n],
            nodes: 0,
            open_bound: i64::MAX,
        }
    }

    /// Keeps the best plan as the first one under a cap (its key under a cap is its cost).
    fn reset_for_cap(&mut self) {
        self.best = (0, self.best.1);
        self.nodes = 0;
    }

    /// Searches: with `cap`, the cheapest plan finishing by `cap`, else the best (finish time,
    /// cost). Returns the plan's (finish time, cost).
    fn run(&mut self, cap: Option<i64>, limits: &mut Limits) -> Option<(i64, i64)> {
        if cap.is_none() {
            limits.report_bound = limits.report_bound.max(self.through_from[0]);
        }
        self.descend(0, 0, 0, 0, cap, limits);
        if self.best.1 == i64::MAX {
            return None;
        }
        // The plan's finish time, recomputed from its values (under a cap the key holds 0).
        let values = self.best_values.clone();
        let mut finish = vec![0i64; values.len()];
        for pos in 0..values.len() {
            finish[pos] =
                self.start_of(pos, values[pos], &finish, &values) + self.own_time[pos][values[pos]];
        }
        Some((finish.into_iter().max().unwrap_or(0), self.best.1))
    }

    /// When the task at `pos` can start at `value`, given its parents' finish times.
    fn start_of(&self, pos: usize, value: usize, finish: &[i64], values: &[usize]) -> i64 {
        self.parents[pos]
            .iter()
            .map(|&(parent_pos, matrix)| {
                let transfer = matrix.map_or(0, |m| {
                    let (cols, data) = &self.times[m];
                    data[values[parent_pos] * cols + value]
                });
                finish[parent_pos] + transfer
            })
            .max()
            .unwrap_or(0)
    }

    /// `placed`: the finish-time bound from the placed tasks (each one's finish plus tail).
    fn descend(
        &mut self,
        pos: usize,
        placed: i64,
        cost_so_far: i64,
        extra_so_far: i64,
        cap: Option<i64>,
        limits: &mut Limits,
    ) {
        self.nodes += 1;
        let n = self.tasks.len();
        // The limits only cut the search once it holds a plan, unless a limit may leave it
        // none for a long time (a budget, or a budget and a carbon cap): then the caller says
        // the deadline came before a plan within the limits was found.
        let limited = self.budget.is_some() || self.extra_budget.is_some();
        if (self.best.1 != i64::MAX || limited) && limits.tick() {
            if cap.is_none() {
                self.open_bound = self.open_bound.min(placed.max(self.through_from[pos]));
            }
            return;
        }
        if pos == n {
            let key = (if cap.is_some() { 0 } else { placed }, cost_so_far);
            let extra_fits = self
                .extra_budget
                .as_ref()
                .is_none_or(|(_, limit)| extra_so_far <= *limit);
            if key < self.best
                && extra_fits
                && self.budget.is_none_or(|budget| cost_so_far <= budget)
            {
                self.best = key;
                self.best_values.clone_from(&self.values);
                if cap.is_none() {
                    limits.report_best = placed;
                }
            }
            return;
        }
        let mut candidates: Vec<((i64, i64), usize, i64, i64)> =
            Vec::with_capacity(self.own_time[pos].len());
        for value in 0..self.own_time[pos].len() {
            let finish =
                self.start_of(pos, value, &self.finish, &self.values) + self.own_time[pos][value];
            let placed_now = placed.max(finish + self.tail[pos][value]);
            let finish_bound = placed_now.max(self.through_from[pos + 1]);
            if cap.is_some_and(|cap| finish_bound > cap) {
                continue;
            }
            let own = self.cost.unary[pos][value] + self.cost.assigned_in[pos][value];
            let look_ahead = own + self.cost.future[pos][value];
            let key_time = if cap.is_some() { 0 } else { finish_bound };
            candidates.push(((key_time, look_ahead.primary), value, finish, placed_now));
        }
        candidates.sort_unstable();
        for ((key_time, _), value, finish, placed_now) in candidates {
            if limits.stopped && self.best.1 != i64::MAX {
                // Cut off below: the values not tried yet are unexplored (sorted by their
                // finish-time bound, so this one's is the least).
                if cap.is_none() {
                    self.open_bound = self.open_bound.min(key_time);
                }
                break;
            }
            let own = self.cost.unary[pos][value] + self.cost.assigned_in[pos][value];
            let next_cost = cost_so_far + own.primary;
            if (key_time, i64::MIN) >= self.best {
                // Values are sorted by their finish-time bound: no later one can do better.
                break;
            }
            self.cost.push_value(pos, value, 1);
            let (rest, _) = self.cost.remaining_bound(pos + 1);
            let bound = (key_time, next_cost + rest.primary);
            // The extra budget: what this value costs, and the least the rest can cost.
            let mut next_extra = extra_so_far;
            let mut extra_fits = true;
            if let Some((extra, limit)) = &mut self.extra_budget {
                next_extra += (extra.unary[pos][value] + extra.assigned_in[pos][value]).primary;
                extra.push_value(pos, value, 1);
                extra_fits = next_extra + extra.remaining_bound(pos + 1).0.primary <= *limit;
            }
            let promising = bound < self.best
                && extra_fits
                && self
                    .budget
                    .is_none_or(|budget| next_cost + rest.primary <= budget);
            if promising {
                self.values[pos] = value;
                self.finish[pos] = finish;
                self.descend(pos + 1, placed_now, next_cost, next_extra, cap, limits);
            }
            if let Some((extra, _)) = &mut self.extra_budget {
                extra.push_value(pos, value, -1);
            }
            self.cost.push_value(pos, value, -1);
        }
    }
}

//! The exact solver.
//!
//! The problem is a pairwise cost minimisation: every task picks one candidate; the score is the
//! sum of each task's own score plus, for each DAG edge that carries data, the score of moving
//! that data between the two chosen locations. Scores are lexicographic integer pairs, an ordered
//! group, so sums, differences and the bounds below are all exact.
//!
//! 1. **Dead-end elimination** (Goldstein's criterion): candidate `a` of task `u` can go if some
//!    other candidate `b` satisfies `E(a) - E(b) + Σ_neighbours min_x [E(a,x) - E(b,x)] ≥ 0`:
//!    swapping `a` for `b` never makes any complete plan worse, so some optimum avoids `a`. A cheap
//!    form (against the best candidate, bounding the neighbour terms by `-max_x E(b,x)`) runs first
//!    over every candidate; the full form then runs on what is left. Repeated until nothing moves.
//!    Pruning keeps at least one optimum, which is all an exact solver owes.
//! 2. **Components** of the data graph are independent and solved one by one.
//! 3. A component that is a **tree** (chains included) is solved by dynamic programming,
//!    `O(Σ_edges |D_u|·|D_v|)`.
//! 4. Any other component goes to **depth-first branch and bound**: tasks in max-connectivity
//!    order, values best-bound first, and an admissible bound: the assigned score, plus for every
//!    unassigned task the best of (own score + edges to assigned tasks + for each edge to a later
//!    task, that edge's cheapest value). Each edge is counted once, so the bound never overshoots.
//!
//! With a budget under the time objective, the budget (a cost limit) couples every task, so the
//! whole problem goes to branch and bound with a second bound on cost, and elimination only
//! removes candidates that are dominated on cost as well.

use crate::plan::SolveStats;
use crate::problem::Problem;
use crate::score::{Objective, Score};

/// Allowed candidate indices per task (a restriction of the full problem, as k-best needs).
pub(crate) type Domains = Vec<Vec<usize>>;

/// Solves the problem restricted to `domains`: the best assignment (a candidate index per task)
/// and its score, or `None` when the restriction (or the budget) leaves no plan.
pub(crate) fn solve(
    problem: &Problem<'_>,
    mut domains: Domains,
    stats: &mut SolveStats,
) -> Option<(Score, Vec<usize>)> {
    if domains.iter().any(Vec::is_empty) {
        return None;
    }
    let coupled_budget = match (problem.objective, problem.budget) {
        (Objective::Time, Some(budget)) => Some(budget),
        _ => None,
    };
    let graph = Graph::new(problem);
    eliminate_dead_ends(problem, &graph, &mut domains, coupled_budget.is_some());
    stats.after_pruning = domains.iter().map(Vec::len).sum();

    let mut assignment = vec![usize::MAX; problem.task_count()];
    let components = match coupled_budget {
        Some(_) => vec![(0..problem.task_count()).collect()],
        None => graph.components(),
    };
    stats.components = components.len();
    for component in &components {
        let edge_count: usize = component
            .iter()
            .map(|&task| graph.adjacent[task].len())
            .sum::<usize>()
            / 2;
        if coupled_budget.is_none() && edge_count + 1 == component.len() {
            stats.tree_components += 1;
            tree_dp(problem, &graph, &domains, component, &mut assignment);
        } else {
            stats.search_components += 1;
            let mut search = Search::new(problem, &graph, &domains, component, coupled_budget);
            if !search.run(stats) {
                return None;
            }
            for (position, &task) in search.order.iter().enumerate() {
                assignment[task] = search.domains[position][search.best_assignment[position]];
            }
        }
    }
    let score = problem.score_of(&assignment);
    if problem
        .budget
        .is_some_and(|budget| score.cost(problem.objective) > budget)
    {
        return None;
    }
    Some((score, assignment))
}

/// Who is connected to whom by data-carrying edges.
struct Graph {
    /// Per task: (edge index, other task).
    adjacent: Vec<Vec<(usize, usize)>>,
}

impl Graph {
    fn new(problem: &Problem<'_>) -> Graph {
        let mut adjacent = vec![Vec::new(); problem.task_count()];
        for (edge_idx, edge) in problem.edges.iter().enumerate() {
            adjacent[edge.src].push((edge_idx, edge.dst));
            adjacent[edge.dst].push((edge_idx, edge.src));
        }
        Graph { adjacent }
    }

    fn components(&self) -> Vec<Vec<usize>> {
        let mut seen = vec![false; self.adjacent.len()];
        let mut components = Vec::new();
        for start in 0..self.adjacent.len() {
            if seen[start] {
                continue;
            }
            seen[start] = true;
            let mut component = vec![start];
            let mut next = 0;
            while next < component.len() {
                let task = component[next];
                next += 1;
                for &(_, other) in &self.adjacent[task] {
                    if !seen[other] {
                        seen[other] = true;
                        component.push(other);
                    }
                }
            }
            components.push(component);
        }
        components
    }
}

/// The score of an edge with `task` at candidate `mine` and the other end at `theirs`.
fn edge_between(
    problem: &Problem<'_>,
    edge_idx: usize,
    task: usize,
    mine: usize,
    theirs: usize,
) -> Score {
    let edge = &problem.edges[edge_idx];
    if edge.src == task {
        problem.edge_score(edge, mine, theirs)
    } else {
        problem.edge_score(edge, theirs, mine)
    }
}

/// Largest domain the full Goldstein test runs on, and how many rivals it tries per candidate.
const FULL_TEST_MAX_DOMAIN: usize = 256;
const FULL_TEST_RIVALS: usize = 8;

fn eliminate_dead_ends(
    problem: &Problem<'_>,
    graph: &Graph,
    domains: &mut Domains,
    also_cost: bool,
) {
    let objective = problem.objective;
    for _round in 0..8 {
        let mut changed = false;
        for task in 0..domains.len() {
            if domains[task].len() < 2 {
                continue;
            }
            // Cheap test against the best candidate by own score (domains are sorted by it).
            let best = domains[task][0];
            let mut slack = Score::ZERO;
            let mut slack_cost = 0i64;
            for &(edge_idx, other) in &graph.adjacent[task] {
                let mut worst = Score::ZERO;
                let mut worst_cost = 0i64;
                for &theirs in &domains[other] {
                    let score = edge_between(problem, edge_idx, task, best, theirs);
                    worst = worst.max(score);
                    worst_cost = worst_cost.max(score.cost(objective));
                }
                slack += worst;
                slack_cost += worst_cost;
            }
            let best_unary = problem.candidates[task][best].unary;
            let before = domains[task].len();
            domains[task].retain(|&candidate| {
                if candidate == best {
                    return true;
                }
                let unary = problem.candidates[task][candidate].unary;
                let dominated = unary - best_unary >= slack
                    && (!also_cost
                        || unary.cost(objective) - best_unary.cost(objective) >= slack_cost);
                !dominated
            });
            changed |= domains[task].len() != before;

            // Full test on what is left, against the first few rivals.
            if domains[task].len() >= 2 && domains[task].len() <= FULL_TEST_MAX_DOMAIN {
                let mut idx = domains[task].len();
                while idx > 0 {
                    idx -= 1;
                    let candidate = domains[task][idx];
                    let rivals: Vec<usize> = domains[task]
                        .iter()
                        .copied()
                        .filter(|&rival| rival != candidate)
                        .take(FULL_TEST_RIVALS)
                        .collect();
                    let dominated = rivals.iter().any(|&rival| {
                        goldstein(problem, graph, domains, task, candidate, rival, also_cost)
                    });
                    if dominated {
                        domains[task].remove(idx);
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// Goldstein's criterion: is `candidate` never better than `rival`, whatever the neighbours do?
fn goldstein(
    problem: &Problem<'_>,
    graph: &Graph,
    domains: &Domains,
    task: usize,
    candidate: usize,
    rival: usize,
    also_cost: bool,
) -> bool {
    let objective = problem.objective;
    let mut criterion =
        problem.candidates[task][candidate].unary - problem.candidates[task][rival].unary;
    let mut criterion_cost = criterion.cost(objective);
    for &(edge_idx, other) in &graph.adjacent[task] {
        let mut least = Score::MAX;
        let mut least_cost = i64::MAX;
        for &theirs in &domains[other] {
            let difference = edge_between(problem, edge_idx, task, candidate, theirs)
                - edge_between(problem, edge_idx, task, rival, theirs);
            least = least.min(difference);
            least_cost = least_cost.min(difference.cost(objective));
        }
        criterion += least;
        criterion_cost += least_cost;
    }
    criterion >= Score::ZERO && (!also_cost || criterion_cost >= 0)
}

/// Dynamic programming over a tree component (a chain is a tree).
fn tree_dp(
    problem: &Problem<'_>,
    graph: &Graph,
    domains: &Domains,
    component: &[usize],
    assignment: &mut [usize],
) {
    let root = component[0];
    // Parent links and a top-down order.
    let mut order = vec![root];
    let mut parent: Vec<Option<(usize, usize)>> = vec![None; assignment.len()];
    let mut visited = vec![false; assignment.len()];
    visited[root] = true;
    let mut next = 0;
    while next < order.len() {
        let task = order[next];
        next += 1;
        for &(edge_idx, other) in &graph.adjacent[task] {
            if !visited[other] {
                visited[other] = true;
                parent[other] = Some((task, edge_idx));
                order.push(other);
            }
        }
    }
    // Bottom-up: best[task][i] = own score of domain value i + best subtrees below.
    let mut best: Vec<Vec<Score>> = vec![Vec::new(); assignment.len()];
    // choice[child][i] = the child's best domain index when its parent takes domain index i.
    let mut choice: Vec<Vec<usize>> = vec![Vec::new(); assignment.len()];
    for &task in &order {
        best[task] = domains[task]
            .iter()
            .map(|&candidate| problem.candidates[task][candidate].unary)
            .collect();
    }
    for &task in order.iter().rev() {
        let Some((up, edge_idx)) = parent[task] else {
            continue;
        };
        let mut picks = Vec::with_capacity(domains[up].len());
        for (up_idx, &up_candidate) in domains[up].iter().enumerate() {
            let (score, pick) = domains[task]
                .iter()
                .enumerate()
                .map(|(idx, &candidate)| {
                    (
                        best[task][idx]
                            + edge_between(problem, edge_idx, up, up_candidate, candidate),
                        idx,
                    )
                })
                .min()
                .expect("domains are not empty");
            best[up][up_idx] += score;
            picks.push(pick);
        }
        choice[task] = picks;
    }
    // Top-down reconstruction.
    let mut chosen_idx = vec![0usize; assignment.len()];
    let (_, root_idx) = best[root]
        .iter()
        .enumerate()
        .map(|(idx, score)| (*score, idx))
        .min()
        .expect("domains are not empty");
    chosen_idx[root] = root_idx;
    for &task in &order {
        if let Some((up, _)) = parent[task] {
            chosen_idx[task] = choice[task][chosen_idx[up]];
        }
        assignment[task] = domains[task][chosen_idx[task]];
    }
}

/// Depth-first branch and bound over one component.
struct Search<'p> {
    problem: &'p Problem<'p>,
    /// Tasks in search order; everything below is indexed by position in this order.
    order: Vec<usize>,
    domains: Vec<Vec<usize>>,
    unary: Vec<Vec<Score>>,
    /// Per position: (later position, matrix index, whether this position is the row side).
    later: Vec<Vec<(usize, usize, bool)>>,
    /// Edge score matrices, row = the earlier position's domain index.
    matrices: Vec<Matrix>,
    /// Per position and value: Σ over edges to later positions of that edge's cheapest value.
    future: Vec<Vec<Score>>,
    /// Per position and value: Σ over edges to assigned positions of their exact value.
    assigned_in: Vec<Vec<Score>>,
    current: Vec<usize>,
    best_assignment: Vec<usize>,
    upper: Score,
    budget: Option<i64>,
    nodes: u64,
}

struct Matrix {
    cols: usize,
    data: Vec<Score>,
}

impl Matrix {
    fn at(&self, row: usize, col: usize) -> Score {
        self.data[row * self.cols + col]
    }
}

impl<'p> Search<'p> {
    fn new(
        problem: &'p Problem<'p>,
        graph: &Graph,
        domains: &Domains,
        component: &[usize],
        budget: Option<i64>,
    ) -> Search<'p> {
        let order = connectivity_order(graph, component);
        let mut position = vec![usize::MAX; problem.task_count()];
        for (pos, &task) in order.iter().enumerate() {
            position[task] = pos;
        }
        let n = order.len();
        let pos_domains: Vec<Vec<usize>> =
            order.iter().map(|&task| domains[task].clone()).collect();
        let unary: Vec<Vec<Score>> = order
            .iter()
            .map(|&task| {
                domains[task]
                    .iter()
                    .map(|&candidate| problem.candidates[task][candidate].unary)
                    .collect()
            })
            .collect();
        let mut later = vec![Vec::new(); n];
        let mut matrices = Vec::new();
        let mut future: Vec<Vec<Score>> = pos_domains
            .iter()
            .map(|d| vec![Score::ZERO; d.len()])
            .collect();
        for (pos, &task) in order.iter().enumerate() {
            for &(edge_idx, other) in &graph.adjacent[task] {
                let other_pos = position[other];
                if other_pos == usize::MAX || other_pos <= pos {
                    continue;
                }
                let rows = &pos_domains[pos];
                let cols = &pos_domains[other_pos];
                let mut data = Vec::with_capacity(rows.len() * cols.len());
                for &mine in rows {
                    for &theirs in cols {
                        data.push(edge_between(problem, edge_idx, task, mine, theirs));
                    }
                }
                let matrix = Matrix {
                    cols: cols.len(),
                    data,
                };
                for (row, slot) in future[pos].iter_mut().enumerate() {
                    *slot += (0..cols.len())
                        .map(|col| matrix.at(row, col))
                        .min()
                        .unwrap_or(Score::ZERO);
                }
                later[pos].push((other_pos, matrices.len(), true));
                later[other_pos].push((pos, matrices.len(), false));
                matrices.push(matrix);
            }
        }
        let assigned_in = pos_domains
            .iter()
            .map(|d| vec![Score::ZERO; d.len()])
            .collect();
        Search {
            problem,
            order,
            domains: pos_domains,
            unary,
            later,
            matrices,
            future,
            assigned_in,
            current: vec![0; n],
            best_assignment: vec![0; n],
            upper: Score::MAX,
            budget,
            nodes: 0,
        }
    }

    /// Searches; true when a plan (within the budget) was found.
    fn run(&mut self, stats: &mut SolveStats) -> bool {
        let mut found = false;
        if let Some((score, start)) = self.greedy_start() {
            self.upper = score;
            self.best_assignment = start;
            found = true;
        }
        found |= self.descend(0, Score::ZERO, 0);
        stats.search_nodes += self.nodes;
        found
    }

    /// A first plan for the upper bound: each task in order takes its best value given the
    /// tasks before it.
    fn greedy_start(&mut self) -> Option<(Score, Vec<usize>)> {
        let n = self.order.len();
        let mut values = vec![0usize; n];
        let mut total = Score::ZERO;
        for (pos, slot) in values.iter_mut().enumerate() {
            let value = (0..self.domains[pos].len()).min_by_key(|&value| {
                self.unary[pos][value] + self.assigned_in[pos][value] + self.future[pos][value]
            })?;
            *slot = value;
            total += self.unary[pos][value] + self.assigned_in[pos][value];
            self.push_value(pos, value, 1);
        }
        for pos in (0..n).rev() {
            self.push_value(pos, values[pos], -1);
        }
        if self
            .budget
            .is_some_and(|budget| total.cost(self.problem.objective) > budget)
        {
            return None;
        }
        Some((total, values))
    }

    /// Adds (sign 1) or removes (sign -1) the effect of `pos = value` on later positions.
    fn push_value(&mut self, pos: usize, value: usize, sign: i64) {
        for &(other_pos, matrix_idx, row_side) in &self.later[pos] {
            if other_pos < pos {
                continue;
            }
            debug_assert!(row_side);
            let matrix = &self.matrices[matrix_idx];
            for (col, slot) in self.assigned_in[other_pos].iter_mut().enumerate() {
                let score = matrix.at(value, col);
                if sign > 0 {
                    *slot += score;
                } else {
                    *slot = *slot - score;
                }
            }
        }
    }

    /// Lower bounds (objective and cost) on everything from `pos` on.
    fn remaining_bound(&self, pos: usize) -> (Score, i64) {
        let objective = self.problem.objective;
        let mut bound = Score::ZERO;
        let mut bound_cost = 0i64;
        for later_pos in pos..self.order.len() {
            let mut least = Score::MAX;
            let mut least_cost = i64::MAX;
            for value in 0..self.domains[later_pos].len() {
                let own = self.unary[later_pos][value] + self.assigned_in[later_pos][value];
                least = least.min(own + self.future[later_pos][value]);
                least_cost = least_cost.min(own.cost(objective));
            }
            bound += least;
            bound_cost += least_cost;
        }
        (bound, bound_cost)
    }

    fn descend(&mut self, pos: usize, so_far: Score, so_far_cost: i64) -> bool {
        self.nodes += 1;
        let objective = self.problem.objective;
        if pos == self.order.len() {
            if so_far < self.upper && self.budget.is_none_or(|budget| so_far_cost <= budget) {
                self.upper = so_far;
                self.best_assignment.clone_from(&self.current);
                return true;
            }
            return false;
        }
        let mut values: Vec<(Score, usize)> = (0..self.domains[pos].len())
            .map(|value| {
                (
                    self.unary[pos][value] + self.assigned_in[pos][value] + self.future[pos][value],
                    value,
                )
            })
            .collect();
        values.sort_unstable();
        let mut found = false;
        for (_, value) in values {
            let own = self.unary[pos][value] + self.assigned_in[pos][value];
            let next = so_far + own;
            let next_cost = so_far_cost + own.cost(objective);
            self.push_value(pos, value, 1);
            let (rest, rest_cost) = self.remaining_bound(pos + 1);
            let promising = next + rest < self.upper
                && self
                    .budget
                    .is_none_or(|budget| next_cost + rest_cost <= budget);
            if promising {
                self.current[pos] = value;
                found |= self.descend(pos + 1, next, next_cost);
            }
            self.push_value(pos, value, -1);
        }
        found
    }
}

/// Search order: start at the best-connected task, then always the task with the most edges to
/// tasks already ordered (ties: more edges overall, then the lower index).
fn connectivity_order(graph: &Graph, component: &[usize]) -> Vec<usize> {
    let mut in_component = vec![false; graph.adjacent.len()];
    for &task in component {
        in_component[task] = true;
    }
    let mut placed = vec![false; graph.adjacent.len()];
    let mut links_to_placed = vec![0usize; graph.adjacent.len()];
    let mut order = Vec::with_capacity(component.len());
    while order.len() < component.len() {
        let next = component
            .iter()
            .copied()
            .filter(|&task| !placed[task])
            .max_by_key(|&task| {
                (
                    links_to_placed[task],
                    graph.adjacent[task].len(),
                    std::cmp::Reverse(task),
                )
            })
            .expect("unplaced tasks remain");
        placed[next] = true;
        order.push(next);
        for &(_, other) in &graph.adjacent[next] {
            if in_component[other] {
                links_to_placed[other] += 1;
            }
        }
    }
    order
}

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
//! With a limit on the score's second measure (a budget under the time or carbon objective, a
//! carbon cap under cost or time: see `Goal`), the limit couples every task, so the whole problem
//! goes to branch and bound with a second bound on that measure, and elimination only removes
//! candidates that are dominated on it as well.

use crate::limits::Limits;
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
    limits: &mut Limits,
) -> Option<Solved> {
    if domains.iter().any(Vec::is_empty) {
        return None;
    }
    let graph = Graph::new(problem);
    if problem.objective == Objective::Time {
        // The finish time is a longest path, not a sum: its own search (see `makespan`).
        // Moving a whole place's tasks to a place no worse in time *and* cost never lengthens
        // a path nor raises the cost, so place dominance holds with both compared.
        // With a budget besides a carbon cap, cost is a third measure that neither rule
        // compares, so neither runs (exactness first; this combination is rare).
        if problem.budget_filter.is_none() {
            eliminate_dominated_places(problem, &mut domains, true);
            eliminate_dead_ends(problem, &graph, &mut domains, true);
        }
        stats.after_pruning = domains.iter().map(Vec::len).sum();
        return crate::makespan::solve(problem, &graph, &domains, stats, limits);
    }
    if problem.limit_couples() {
        return solve_with_coupling_budget(problem, &graph, domains, stats, limits);
    }
    // A search cut short leaves this share of the deadline to a tighter bound (`cycles`).
    limits.reserve(BOUND_SHARE);
    eliminate_dominated_places(problem, &mut domains, false);
    eliminate_dead_ends(problem, &graph, &mut domains, false);
    stats.after_pruning = domains.iter().map(Vec::len).sum();

    let mut assignment = vec![usize::MAX; problem.task_count()];
    let components = graph.components();
    stats.components = components.len();
    // What the searches left unproven: Σ (their plan − their bound), objective units.
    let mut unproven = 0i64;
    for component in &components {
        let edge_count: usize = component
            .iter()
            .map(|&task| graph.adjacent[task].len())
            .sum::<usize>()
            / 2;
        if edge_count + 1 == component.len() {
            stats.tree_components += 1;
            tree_dp(problem, &graph, &domains, component, &mut assignment);
        } else {
            stats.search_components += 1;
            let order = connectivity_order(&graph, component);
            let mut search = Search::new(
                problem,
                &graph,
                &domains,
                order,
                None,
                std::convert::identity,
            );
            if !search.run(stats, limits) {
                return None;
            }
            unproven += search.upper.primary - search.lower_bound().primary;
            for (position, &task) in search.order.iter().enumerate() {
                assignment[task] = search.domains[position][search.best_assignment[position]];
            }
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
        lower_bound: score.primary - unproven,
        score,
        assignment,
    })
}

/// The carbon objective with a budget: carbon adds up like cost does, but the budget (on the
/// tie-breaker, cost) couples every task, so the whole problem is one branch and bound with the
/// separate cost bound, after eliminations that only drop candidates dominated on cost as well.
fn solve_with_coupling_budget(
    problem: &Problem<'_>,
    graph: &Graph,
    mut domains: Domains,
    stats: &mut SolveStats,
    limits: &mut Limits,
) -> Option<Solved> {
    eliminate_dominated_places(problem, &mut domains, true);
    eliminate_dead_ends(problem, graph, &mut domains, true);
    stats.after_pruning = domains.iter().map(Vec::len).sum();
    stats.components = 1;
    stats.search_components = 1;
    let every_task: Vec<usize> = (0..problem.task_count()).collect();
    let order = connectivity_order(graph, &every_task);
    let mut search = Search::new(
        problem,
        graph,
        &domains,
        order,
        problem.limit,
        std::convert::identity,
    );
    if !search.run(stats, limits) {
        return None;
    }
    let mut assignment = vec![usize::MAX; problem.task_count()];
    for (position, &task) in search.order.iter().enumerate() {
        assignment[task] = search.domains[position][search.best_assignment[position]];
    }
    let score = problem.score_of(&assignment);
    if problem
        .limit
        .is_some_and(|budget| score.limited(problem.goal) > budget)
    {
        return None;
    }
    Some(Solved {
        lower_bound: search.lower_bound().primary.min(score.primary),
        score,
        assignment,
    })
}

/// A plan, its score, and a proven lower bound on the objective (equal to the score's
/// objective when the search finished: the plan is then optimal).
#[derive(Clone, Debug)]
pub(crate) struct Solved {
    pub(crate) score: Score,
    pub(crate) assignment: Vec<usize>,
    pub(crate) lower_bound: i64,
}

/// Who is connected to whom by data-carrying edges.
pub(crate) struct Graph {
    /// Per task: (edge index, other task).
    pub(crate) adjacent: Vec<Vec<(usize, usize)>>,
}

impl Graph {
    pub(crate) fn new(problem: &Problem<'_>) -> Graph {
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

/// Empties places that another place beats for every task (global dominance).
///
/// This rests on the network model being hierarchical: a link's price and bandwidth depend only
/// on whether the two places share a zone, a region and a cloud, and on the source cloud; and a
/// shared zone is never worse than any other link. Then, if place `better` is allowed and no
/// worse for every task that may use place `worse`, moving every task from `worse` to `better`
/// never makes a plan worse, provided the two are zones of one region, or each is the only place
/// in use in its region (of one cloud): links to every other place stay the same, and links
/// between the two become same-zone links. So an optimum without `worse` exists. It is applied
/// one place at a time against the current domains, so it is valid inside k-best's restrictions.
pub(crate) fn eliminate_dominated_places(
    problem: &Problem<'_>,
    domains: &mut Domains,
    also_cost: bool,
) {
    let places = &problem.places;
    // For each place: the tasks that may use it, and at which candidate.
    let mut users: Vec<Vec<(usize, usize)>> = vec![Vec::new(); places.len()];
    for (task, domain) in domains.iter().enumerate() {
        for &candidate in domain {
            users[problem.candidates[task][candidate].loc].push((task, candidate));
        }
    }
    let no_worse = |better: usize, worse: usize, users: &[Vec<(usize, usize)>]| -> bool {
        !users[worse].is_empty()
            && users[worse].iter().all(|&(task, worse_candidate)| {
                // A place may hold several candidates of one task (the time objective keeps
                // every one not beaten in both time and cost): each needs its match.
                let worse_score = problem.candidates[task][worse_candidate].unary;
                users[better].iter().filter(|(user, _)| *user == task).any(
                    |&(_, better_candidate)| {
                        let better_score = problem.candidates[task][better_candidate].unary;
                        better_score <= worse_score
                            && (!also_cost
                                || better_score.limited(problem.goal)
                                    <= worse_score.limited(problem.goal))
                    },
                )
            })
    };
    loop {
        // Places in use, by region.
        let mut in_region: std::collections::BTreeMap<Option<aloft_catalog::RegionId>, Vec<usize>> =
            std::collections::BTreeMap::new();
        for (loc, place) in places.iter().enumerate() {
            if !users[loc].is_empty() {
                in_region.entry(place.region).or_default().push(loc);
            }
        }
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for (region, locs) in &in_region {
            if region.is_none() {
                continue;
            }
            for &better in locs {
                pairs.extend(
                    locs.iter()
                        .filter(|&&worse| worse != better)
                        .map(|&worse| (better, worse)),
                );
            }
        }
        let mut changed = false;
        for (better, worse) in pairs {
            // A zone-less place shares a "zone" with everything in its region (see
            // `Catalog::link`), so moving its tasks to a zone could slow their links: keep it.
            if places[worse].zone.is_none() {
                continue;
            }
            if users[better].is_empty() || !no_worse(better, worse, &users) {
                continue;
            }
            for &(task, candidate) in &users[worse] {
                domains[task].retain(|&kept| kept != candidate);
            }
            users[worse].clear();
            changed = true;
        }
        // Whole regions: region `worse` can go when each of its places in use has a place of
        // region `better` (same cloud) that is no worse for all its tasks. Moving every task of
        // `worse` to those places turns its links to `better` into same-region ones and leaves
        // every other link as it was.
        let regions: Vec<(aloft_catalog::RegionId, Vec<usize>)> = in_region
            .iter()
            .filter_map(|(region, locs)| region.map(|region| (region, locs.clone())))
            .collect();
        for (better_region, better_locs) in &regions {
            for (worse_region, worse_locs) in &regions {
                let same_cloud = places[better_locs[0]].cloud == places[worse_locs[0]].cloud;
                if better_region == worse_region || !same_cloud {
                    continue;
                }
                let live = |locs: &[usize]| locs.iter().any(|&loc| !users[loc].is_empty());
                if !live(better_locs) || !live(worse_locs) {
                    continue;
                }
                // Likewise a region mixing a zone-less place with zones is left alone.
                let in_use: Vec<usize> = worse_locs
                    .iter()
                    .copied()
                    .filter(|&loc| !users[loc].is_empty())
                    .collect();
                if in_use.len() > 1 && in_use.iter().any(|&loc| places[loc].zone.is_none()) {
                    continue;
                }
                let covered = worse_locs.iter().all(|&worse| {
                    users[worse].is_empty()
                        || better_locs
                            .iter()
                            .any(|&better| no_worse(better, worse, &users))
                });
                if !covered {
                    continue;
                }
                for &worse in worse_locs {
                    for &(task, candidate) in &users[worse] {
                        domains[task].retain(|&kept| kept != candidate);
                    }
                    users[worse].clear();
                }
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

/// Largest domain the full Goldstein test runs on, and how many rivals it tries per candidate.
const FULL_TEST_MAX_DOMAIN: usize = 256;
const FULL_TEST_RIVALS: usize = 8;
/// Edge evaluations the full test may spend on one task in one round.
const FULL_TEST_MAX_WORK: usize = 200_000;

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
            // Not under the time objective, whose finish time is no sum (see `goldstein`).
            let best = domains[task][0];
            if objective == Objective::Time {
                changed |= full_dead_end_test(problem, graph, domains, task, also_cost);
                continue;
            }
            let mut slack = Score::ZERO;
            let mut slack_cost = 0i64;
            for &(edge_idx, other) in &graph.adjacent[task] {
                let mut worst = Score::ZERO;
                let mut worst_cost = 0i64;
                for &theirs in &domains[other] {
                    let score = edge_between(problem, edge_idx, task, best, theirs);
                    worst = worst.max(score);
                    worst_cost = worst_cost.max(score.limited(problem.goal));
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
                        || unary.limited(problem.goal) - best_unary.limited(problem.goal)
                            >= slack_cost);
                !dominated
            });
            changed |= domains[task].len() != before;

            changed |= full_dead_end_test(problem, graph, domains, task, also_cost);
        }
        if !changed {
            break;
        }
    }
}

/// The full test on `task`'s candidates, against the first few rivals, where it is affordable;
/// true when a candidate went.
fn full_dead_end_test(
    problem: &Problem<'_>,
    graph: &Graph,
    domains: &mut Domains,
    task: usize,
    also_cost: bool,
) -> bool {
    let neighbour_values: usize = graph.adjacent[task]
        .iter()
        .map(|&(_, other)| domains[other].len())
        .sum();
    let work = domains[task].len() * FULL_TEST_RIVALS * neighbour_values;
    if domains[task].len() < 2
        || domains[task].len() > FULL_TEST_MAX_DOMAIN
        || work > FULL_TEST_MAX_WORK
    {
        return false;
    }
    let mut changed = false;
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
        let dominated = rivals
            .iter()
            .any(|&rival| goldstein(problem, graph, domains, task, candidate, rival, also_cost));
        if dominated {
            domains[task].remove(idx);
            changed = true;
        }
    }
    changed
}

/// Goldstein's criterion: is `candidate` never better than `rival`, whatever the neighbours do?
///
/// Under the time objective the finish time is a longest path, not a sum, so the criterion is
/// taken on the cost alone and the time must be no worse term by term: the rival's own time
/// and its transfer time to every neighbour value no longer than the candidate's. Then the swap
/// lengthens no path and raises no cost.
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
    let finish_time = objective == Objective::Time;
    let mut criterion =
        problem.candidates[task][candidate].unary - problem.candidates[task][rival].unary;
    if finish_time && criterion.primary < 0 {
        return false;
    }
    let mut criterion_cost = criterion.limited(problem.goal);
    for &(edge_idx, other) in &graph.adjacent[task] {
        let mut least = Score::MAX;
        let mut least_cost = i64::MAX;
        for &theirs in &domains[other] {
            let difference = edge_between(problem, edge_idx, task, candidate, theirs)
                - edge_between(problem, edge_idx, task, rival, theirs);
            if finish_time && difference.primary < 0 {
                return false;
            }
            least = least.min(difference);
            least_cost = least_cost.min(difference.limited(problem.goal));
        }
        criterion += least;
        criterion_cost += least_cost;
    }
    if finish_time {
        return criterion_cost >= 0;
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
pub(crate) struct Search<'p> {
    problem: &'p Problem<'p>,
    /// Tasks in search order; everything below is indexed by position in this order.
    pub(crate) order: Vec<usize>,
    pub(crate) domains: Vec<Vec<usize>>,
    pub(crate) unary: Vec<Vec<Score>>,
    /// Per position: (other position, matrix index, whether this position is the row side);
    /// every edge of the position, to earlier and to later positions.
    pub(crate) later: Vec<Vec<(usize, usize, bool)>>,
    /// Edge score matrices, row = the earlier position's domain index.
    pub(crate) matrices: Vec<Matrix>,
    /// Per position and value: Σ over edges to later positions of that edge's cheapest value.
    pub(crate) future: Vec<Vec<Score>>,
    /// Per position and value: Σ over edges to assigned positions of their exact value.
    pub(crate) assigned_in: Vec<Vec<Score>>,
    current: Vec<usize>,
    best_assignment: Vec<usize>,
    upper: Score,
    pub(crate) budget: Option<i64>,
    nodes: u64,
    /// The least bound of the subtrees the limits cut off (`Score::MAX`: none).
    open_bound: Score,
    /// A lower bound on the objective proven apart from the tree (`cycles`), or `i64::MIN`.
    floor: i64,
}

pub(crate) struct Matrix {
    cols: usize,
    data: Vec<Score>,
}

impl Matrix {
    pub(crate) fn at(&self, row: usize, col: usize) -> Score {
        self.data[row * self.cols + col]
    }
}

impl<'p> Search<'p> {
    /// The search over the tasks of `order`, in that order. `view` maps every term's score
    /// before use (the identity, or for the makespan search the cost alone).
    pub(crate) fn new(
        problem: &'p Problem<'p>,
        graph: &Graph,
        domains: &Domains,
        order: Vec<usize>,
        budget: Option<i64>,
        view: fn(Score) -> Score,
    ) -> Search<'p> {
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
                    .map(|&candidate| view(problem.candidates[task][candidate].unary))
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
                        data.push(view(edge_between(problem, edge_idx, task, mine, theirs)));
                    }
                }
                let matrix = Matrix {
                    cols: cols.len(),
                    data,
                };
                later[pos].push((other_pos, matrices.len(), true));
                later[other_pos].push((pos, matrices.len(), false));
                matrices.push(matrix);
            }
        }
        // First, an LP-based reparameterization (see `dual_reparameterize`): it makes the
        // bound see the pull of *every* edge, not only of a spanning tree. Skipped under a
        // budget, whose separate cost bound needs every moved amount to be non-negative.
        let mut unary = unary;
        if budget.is_none() {
            dual_reparameterize(&mut unary, &later, &mut matrices);
        }
        // Reparameterize (directional arc consistency), last task first: each task takes from
        // its edges to later tasks the least each of its values must pay there, then keeps only
        // its cheapest total and moves the excess of each value onto the edge to one earlier
        // task, the one it is most tied to. Every complete plan keeps its score, but costs now
        // flow towards the front of the order, so the bound sees early what a choice implies for
        // the tasks after it. Minima are taken per component, so every moved amount is
        // non-negative in cost as well, which keeps the separate cost bound (budgets) valid.
        for pos in (0..n).rev() {
            for &(other_pos, matrix_idx, row_side) in &later[pos] {
                if other_pos < pos || !row_side {
                    continue;
                }
                let matrix = &mut matrices[matrix_idx];
                for (row, own) in unary[pos].iter_mut().enumerate() {
                    let cells = &mut matrix.data[row * matrix.cols..(row + 1) * matrix.cols];
                    let least = componentwise_min(cells.iter());
                    for cell in cells.iter_mut() {
                        *cell = *cell - least;
                    }
                    *own += least;
                }
            }
            let strongest = later[pos]
                .iter()
                .filter(|(other_pos, _, _)| *other_pos < pos)
                .max_by_key(|(_, matrix_idx, _)| matrices[*matrix_idx].data.iter().max().copied())
                .map(|&(_, matrix_idx, _)| matrix_idx);
            let Some(matrix_idx) = strongest else {
                continue;
            };
            let least = componentwise_min(unary[pos].iter());
            let matrix = &mut matrices[matrix_idx];
            let rows = matrix.data.len() / matrix.cols;
            for (col, own) in unary[pos].iter_mut().enumerate() {
                let excess = *own - least;
                *own = least;
                for row in 0..rows {
                    matrix.data[row * matrix.cols + col] += excess;
                }
            }
        }
        // The look-ahead term: for each value, every edge to a later task at its cheapest.
        for pos in 0..n {
            for &(other_pos, matrix_idx, row_side) in &later[pos] {
                if other_pos < pos || !row_side {
                    continue;
                }
                let matrix = &matrices[matrix_idx];
                for (row, slot) in future[pos].iter_mut().enumerate() {
                    *slot += (0..matrix.cols)
                        .map(|col| matrix.at(row, col))
                        .min()
                        .unwrap_or(Score::ZERO);
                }
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
            open_bound: Score::MAX,
            floor: i64::MIN,
        }
    }

    /// Searches until done or `limits` are spent; true when a plan (within the budget) was
    /// found. The best plan is then `best_assignment`, scoring `upper`, and no plan scores
    /// less than `lower_bound()`.
    fn run(&mut self, stats: &mut SolveStats, limits: &mut Limits) -> bool {
        let mut found = false;
        if let Some((score, start)) = self.greedy_start() {
            let (score, improved) = self.improve_locally(start, score);
            self.upper = score;
            self.best_assignment = improved;
            found = true;
        }
        let root_bound = self.remaining_bound(0).0;
        // A gap at the root: improve the plan by exact moves of small neighbourhoods before
        // the tree search, which only ever revises the last tasks of its order.
        if found && self.budget.is_none() && self.upper.primary > root_bound.primary {
            let (score, improved) =
                self.improve_by_windows(self.best_assignment.clone(), self.upper, limits);
            self.upper = score;
            self.best_assignment = improved;
        }
        let (offset_best, offset_bound) = (limits.report_best, limits.report_bound);
        limits.report_best = offset_best + self.upper.primary;
        limits.report_bound = offset_bound + root_bound.primary;
        found |= self.descend(0, Score::ZERO, 0, limits);
        // Cut short with a gap: where the LP is loose, a tighter bound (triangles of tasks)
        // for the report, in the time `solve` reserved for it.
        if limits.stopped
            && self.budget.is_none()
            && self.lower_bound().primary < self.upper.primary
        {
            limits.report_bound = offset_bound + self.lower_bound().primary;
            self.floor = self
                .triangle_bound(limits, offset_bound)
                .unwrap_or(i64::MIN);
        }
        limits.report_best = offset_best + self.upper.primary;
        limits.report_bound = offset_bound + self.lower_bound().primary;
        stats.search_nodes += self.nodes;
        found
    }

    /// The best plan's score so far.
    pub(crate) fn upper(&self) -> Score {
        self.upper
    }

    /// No plan scores less: the least bound of the parts of the search the limits cut off,
    /// or the best plan when nothing was cut off.
    pub(crate) fn lower_bound(&self) -> Score {
        let open = self.open_bound.min(self.upper);
        Score {
            primary: open.primary.max(self.floor.min(self.upper.primary)),
            secondary: open.secondary,
        }
    }

    /// Local search (iterated conditional modes): each task in turn moves to its best value
    /// given where all its neighbours are, until no single move helps. A good first plan lets
    /// the bound prune from the start, and is what a cut-off search returns at worst.
    fn improve_locally(&self, mut values: Vec<usize>, mut total: Score) -> (Score, Vec<usize>) {
        let n = self.order.len();
        for _sweep in 0..LOCAL_SEARCH_SWEEPS {
            let mut improved = false;
            for pos in 0..n {
                let local = |value: usize| -> Score {
                    let mut score = self.unary[pos][value];
                    for &(other_pos, matrix_idx, row_side) in &self.later[pos] {
                        let matrix = &self.matrices[matrix_idx];
                        score += if row_side {
                            matrix.at(value, values[other_pos])
                        } else {
                            matrix.at(values[other_pos], value)
                        };
                    }
                    score
                };
                let now = local(values[pos]);
                let Some((best, value)) = (0..self.domains[pos].len())
                    .map(|value| (local(value), value))
                    .min()
                else {
                    continue;
                };
                if best < now {
                    values[pos] = value;
                    total = total - now + best;
                    improved = true;
                }
            }
            if !improved {
                break;
            }
        }
        (total, values)
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
            .is_some_and(|budget| total.limited(self.problem.goal) > budget)
        {
            return None;
        }
        Some((total, values))
    }

    /// Adds (sign 1) or removes (sign -1) the effect of `pos = value` on later positions.
    pub(crate) fn push_value(&mut self, pos: usize, value: usize, sign: i64) {
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
    pub(crate) fn remaining_bound(&self, pos: usize) -> (Score, i64) {
        let mut bound = Score::ZERO;
        let mut bound_cost = 0i64;
        for later_pos in pos..self.order.len() {
            let mut least = Score::MAX;
            let mut least_cost = i64::MAX;
            for value in 0..self.domains[later_pos].len() {
                let own = self.unary[later_pos][value] + self.assigned_in[later_pos][value];
                least = least.min(own + self.future[later_pos][value]);
                least_cost = least_cost.min(own.limited(self.problem.goal));
            }
            bound += least;
            bound_cost += least_cost;
        }
        (bound, bound_cost)
    }

    fn descend(
        &mut self,
        pos: usize,
        so_far: Score,
        so_far_cost: i64,
        limits: &mut Limits,
    ) -> bool {
        self.nodes += 1;
        if limits.tick() {
            // Cut off: what lies below this node is unexplored, bounded by its bound.
            let below = so_far + self.remaining_bound(pos).0;
            self.open_bound = self.open_bound.min(below);
            return false;
        }
        if pos == self.order.len() {
            if so_far < self.upper && self.budget.is_none_or(|budget| so_far_cost <= budget) {
                self.upper = so_far;
                self.best_assignment.clone_from(&self.current);
                limits.report_best = limits.report_best.min(so_far.primary);
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
        for (rank, &(_, value)) in values.iter().enumerate() {
            let own = self.unary[pos][value] + self.assigned_in[pos][value];
            let next = so_far + own;
            let next_cost = so_far_cost + own.limited(self.problem.goal);
            if limits.stopped {
                // The limits ran out below: the values not tried yet are unexplored too.
                for &(_, untried) in &values[rank..] {
                    let own = self.unary[pos][untried] + self.assigned_in[pos][untried];
                    self.push_value(pos, untried, 1);
                    let below = so_far + own + self.remaining_bound(pos + 1).0;
                    self.push_value(pos, untried, -1);
                    self.open_bound = self.open_bound.min(below);
                }
                break;
            }
            self.push_value(pos, value, 1);
            let (rest, rest_cost) = self.remaining_bound(pos + 1);
            let promising = next + rest < self.upper
                && self
                    .budget
                    .is_none_or(|budget| next_cost + rest_cost <= budget);
            if promising {
                self.current[pos] = value;
                found |= self.descend(pos + 1, next, next_cost, limits);
            }
            self.push_value(pos, value, -1);
        }
        found
    }
}

/// The share of a deadline kept for the bound of a search cut short.
const BOUND_SHARE: f64 = 0.4;

/// Local search sweeps over all tasks, at most.
const LOCAL_SEARCH_SWEEPS: usize = 50;

/// Sweeps of the dual coordinate ascent, at most, and the work (cell visits) it may spend. It
/// stops early once `DUAL_CHECK_EVERY` sweeps raise the dual bound by less than `DUAL_STALL` of
/// it (after `DUAL_MIN_SWEEPS`): on frustrated placements the bound keeps rising for hundreds of
/// sweeps, on the others it settles within a few dozen.
const DUAL_SWEEPS: usize = 500;
const DUAL_MIN_SWEEPS: usize = 40;
const DUAL_CHECK_EVERY: usize = 20;
const DUAL_STALL: f64 = 1e-6;
const DUAL_MAX_WORK: usize = 60_000_000;

/// Moves cost between tasks and edges along the dual of the LP relaxation (MPLP's min-sum
/// coordinate ascent, Globerson and Jaakkola 2007), on the objective component only.
///
/// For each edge the messages `λ(e→i)` and `λ(e→j)` are set to the MPLP update; after some
/// sweeps they are rounded to integers and applied: `unary_i += λ(e→i)` and
/// `edge(a, b) -= λ(e→i)(a) + λ(e→j)(b)`. Any integer messages leave every complete plan's
/// score unchanged, so the search stays exact; good messages make `Σ min unary + Σ min edge`
/// approach the LP bound, which on placement problems (Potts-like: tasks want to share a
/// region) is usually tight.
fn dual_reparameterize(
    unary: &mut [Vec<Score>],
    later: &[Vec<(usize, usize, bool)>],
    matrices: &mut [Matrix],
) {
    // Each edge once: (row position, column position, matrix index).
    let edges: Vec<(usize, usize, usize)> = later
        .iter()
        .enumerate()
        .flat_map(|(pos, links)| {
            links
                .iter()
                .filter(move |(other, _, row_side)| *row_side && *other > pos)
                .map(move |&(other, matrix_idx, _)| (pos, other, matrix_idx))
        })
        .collect();
    if edges.is_empty() {
        return;
    }
    let work_per_sweep: usize = edges
        .iter()
        .map(|&(_, _, m)| matrices[m].data.len() * 2)
        .sum();
    let sweeps = DUAL_SWEEPS.min(DUAL_MAX_WORK / work_per_sweep.max(1));
    // messages[k] = (to the row task, to the column task), per value.
    let mut messages: Vec<(Vec<f64>, Vec<f64>)> = edges
        .iter()
        .map(|&(row_pos, col_pos, _)| {
            (
                vec![0.0; unary[row_pos].len()],
                vec![0.0; unary[col_pos].len()],
            )
        })
        .collect();
    // belief[i] = unary_i + Σ incoming messages.
    let mut belief: Vec<Vec<f64>> = unary
        .iter()
        .map(|values| values.iter().map(|score| score.primary as f64).collect())
        .collect();
    // The dual bound, Σ_i min belief_i, every few sweeps: stop once it has stopped rising.
    let dual_value = |belief: &[Vec<f64>]| -> f64 {
        belief
            .iter()
            .map(|values| values.iter().copied().fold(f64::INFINITY, f64::min))
            .sum()
    };
    let mut last_value = f64::NEG_INFINITY;
    for sweep in 0..sweeps {
        if sweep >= DUAL_MIN_SWEEPS && sweep % DUAL_CHECK_EVERY == 0 {
            let value = dual_value(&belief);
            if value - last_value <= DUAL_STALL * value.abs().max(1.0) {
                break;
            }
            last_value = value;
        }
        for (k, &(row_pos, col_pos, matrix_idx)) in edges.iter().enumerate() {
            let matrix = &matrices[matrix_idx];
            let (to_row, to_col) = &mut messages[k];
            // Beliefs without this edge's own messages.
            let row_rest: Vec<f64> = belief[row_pos]
                .iter()
                .zip(to_row.iter())
                .map(|(b, m)| b - m)
                .collect();
            let col_rest: Vec<f64> = belief[col_pos]
                .iter()
                .zip(to_col.iter())
                .map(|(b, m)| b - m)
                .collect();
            let mut new_row = vec![f64::INFINITY; row_rest.len()];
            let mut new_col = vec![f64::INFINITY; col_rest.len()];
            for (row, row_value) in row_rest.iter().enumerate() {
                for (col, col_value) in col_rest.iter().enumerate() {
                    let edge = matrix.at(row, col).primary as f64;
                    new_row[row] = new_row[row].min(edge + col_value);
                    new_col[col] = new_col[col].min(edge + row_value);
                }
            }
            for (row, message) in to_row.iter_mut().enumerate() {
                *message = 0.5 * new_row[row] - 0.5 * row_rest[row];
                belief[row_pos][row] = row_rest[row] + *message;
            }
            for (col, message) in to_col.iter_mut().enumerate() {
                *message = 0.5 * new_col[col] - 0.5 * col_rest[col];
                belief[col_pos][col] = col_rest[col] + *message;
            }
        }
    }
    for (k, &(row_pos, col_pos, matrix_idx)) in edges.iter().enumerate() {
        let (to_row, to_col) = &messages[k];
        let to_row: Vec<i64> = to_row.iter().map(|m| m.round() as i64).collect();
        let to_col: Vec<i64> = to_col.iter().map(|m| m.round() as i64).collect();
        for (row, message) in to_row.iter().enumerate() {
            unary[row_pos][row].primary += message;
        }
        for (col, message) in to_col.iter().enumerate() {
            unary[col_pos][col].primary += message;
        }
        let matrix = &mut matrices[matrix_idx];
        let cols = matrix.cols;
        for (idx, cell) in matrix.data.iter_mut().enumerate() {
            cell.primary -= to_row[idx / cols] + to_col[idx % cols];
        }
    }
}

/// The per-component minimum of some scores (zero for none).
fn componentwise_min<'s>(scores: impl Iterator<Item = &'s Score> + Clone) -> Score {
    Score {
        primary: scores.clone().map(|score| score.primary).min().unwrap_or(0),
        secondary: scores.map(|score| score.secondary).min().unwrap_or(0),
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

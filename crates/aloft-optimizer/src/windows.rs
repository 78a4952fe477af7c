//! Improving a plan by exact moves of small neighbourhoods (large neighbourhood search).
//!
//! Local search that moves one task at a time stops at plans where every single move hurts,
//! though moving a few connected tasks together would help: on frustrated placements (tasks
//! that may not all share a region) such plans are common. Here a *window* of connected tasks,
//! grown breadth-first from each task in turn, is re-placed optimally while every other task
//! stays where it is: a small exact branch and bound over the window, the edges to the tasks
//! outside folded into the window's own terms. A better window replaces the old one. Sweeps
//! repeat around the tasks whose neighbourhood changed, until nothing improves or the allowance
//! is spent.
//!
//! This only improves the plan the search starts from (so its bound prunes sooner and a search
//! cut short returns a better plan); it proves nothing, so exactness rests on the search as
//! before. Every term is the search's (reparameterized) one: a reparameterization keeps every
//! complete plan's score, so with the other tasks fixed it shifts a window's scores by a
//! constant and the best window is the same.

use crate::limits::Limits;
use crate::score::Score;
use crate::solve::Search;

/// A window's search space, at most, in bits (Σ log2 of its domain sizes), and its size.
const WINDOW_BITS: f64 = 12.0;
const WINDOW_TASKS: usize = 16;
/// Nodes one window's branch and bound may visit.
const WINDOW_NODES: usize = 2_000;
/// Sweeps over the tasks, at most, and windows in all (so the work is bounded without a
/// deadline, and the same on every machine).
const WINDOW_SWEEPS: usize = 6;
const WINDOWS_PER_TASK: usize = 4;
/// With a deadline: the share of it the windows may use, leaving the rest to the search.
const DEADLINE_SHARE: f64 = 0.4;

impl Search<'_> {
    /// Improves `values` (a domain index per position, scoring `total`) window by window.
    pub(crate) fn improve_by_windows(
        &self,
        mut values: Vec<usize>,
        mut total: Score,
        limits: &Limits,
    ) -> (Score, Vec<usize>) {
        let n = self.order.len();
        let mut dirty = vec![true; n];
        let mut windows = 0usize;
        let mut in_window = vec![usize::MAX; n];
        'sweeps: for _sweep in 0..WINDOW_SWEEPS {
            let mut improved = false;
            for center in 0..n {
                if !dirty[center] || self.domains[center].len() < 2 {
                    continue;
                }
                dirty[center] = false;
                windows += 1;
                if windows > WINDOWS_PER_TASK * n || limits.share_spent(DEADLINE_SHARE) {
                    break 'sweeps;
                }
                let window = self.grow_window(center, &mut in_window);
                let (gain, best) = self.best_window(&window, &in_window, &values);
                if gain > Score::ZERO {
                    for (idx, &pos) in window.iter().enumerate() {
                        if values[pos] != best[idx] {
                            values[pos] = best[idx];
                            dirty[pos] = true;
                            for &(other, _, _) in &self.later[pos] {
                                dirty[other] = true;
                            }
                        }
                    }
                    total = total - gain;
                    improved = true;
                }
                for &pos in &window {
                    in_window[pos] = usize::MAX;
                }
            }
            if !improved {
                break;
            }
        }
        (total, values)
    }

    /// Positions reached breadth-first from `center` (those with a choice), within the
    /// window's limits; `in_window[pos]` is set to each one's index in the window.
    fn grow_window(&self, center: usize, in_window: &mut [usize]) -> Vec<usize> {
        let mut window = vec![center];
        in_window[center] = 0;
        let mut bits = (self.domains[center].len() as f64).log2();
        let mut next = 0;
        while next < window.len() && window.len() < WINDOW_TASKS {
            let pos = window[next];
            next += 1;
            for &(other, _, _) in &self.later[pos] {
                let size = self.domains[other].len();
                if in_window[other] != usize::MAX || size < 2 {
                    continue;
                }
                let more = (size as f64).log2();
                if bits + more > WINDOW_BITS || window.len() >= WINDOW_TASKS {
                    continue;
                }
                bits += more;
                in_window[other] = window.len();
                window.push(other);
            }
        }
        window
    }

    /// The best values for the window's positions given every other position's value, by
    /// branch and bound: how much better than now it is, and those values (per window index).
    fn best_window(
        &self,
        window: &[usize],
        in_window: &[usize],
        values: &[usize],
    ) -> (Score, Vec<usize>) {
        let k = window.len();
        // Own terms with the edges to fixed positions folded in, and the edges inside.
        let mut own: Vec<Vec<Score>> = Vec::with_capacity(k);
        // Per window index: (other window index, matrix, row side) for earlier window indices.
        let mut inner: Vec<Vec<(usize, usize, bool)>> = vec![Vec::new(); k];
        // Per window index: Σ over its edges to earlier window indices of their least value.
        let mut behind = vec![Score::ZERO; k];
        let edge = |matrix: usize, row_side: bool, mine: usize, theirs: usize| {
            if row_side {
                self.matrices[matrix].at(mine, theirs)
            } else {
                self.matrices[matrix].at(theirs, mine)
            }
        };
        let mut now = Score::ZERO;
        for (idx, &pos) in window.iter().enumerate() {
            let mut terms = self.unary[pos].clone();
            now += self.unary[pos][values[pos]];
            for &(other, matrix, row_side) in &self.later[pos] {
                let other_idx = in_window[other];
                if other_idx == usize::MAX {
                    for (value, term) in terms.iter_mut().enumerate() {
                        *term += edge(matrix, row_side, value, values[other]);
                    }
                    now += edge(matrix, row_side, values[pos], values[other]);
                } else if other_idx < idx {
                    inner[idx].push((other_idx, matrix, row_side));
                    now += edge(matrix, row_side, values[pos], values[other]);
                    let data = &self.matrices[matrix];
                    let least = (0..self.domains[pos].len())
                        .flat_map(|mine| {
                            (0..self.domains[other].len()).map(move |theirs| {
                                if row_side {
                                    data.at(mine, theirs)
                                } else {
                                    data.at(theirs, mine)
                                }
                            })
                        })
                        .min()
                        .unwrap_or(Score::ZERO);
                    behind[idx] += least;
                }
            }
            own.push(terms);
        }
        let mut state = WindowSearch {
            own,
            inner,
            behind,
            current: vec![0; k],
            best: window.iter().map(|&pos| values[pos]).collect(),
            upper: now,
            nodes: 0,
        };
        state.descend(self, 0, Score::ZERO);
        (now - state.upper, state.best)
    }
}

struct WindowSearch {
    own: Vec<Vec<Score>>,
    inner: Vec<Vec<(usize, usize, bool)>>,
    behind: Vec<Score>,
    current: Vec<usize>,
    best: Vec<usize>,
    upper: Score,
    nodes: usize,
}

impl WindowSearch {
    /// The score of window index `idx` at `value` with the earlier indices as in `current`.
    fn term(&self, search: &Search<'_>, idx: usize, value: usize) -> Score {
        let mut score = self.own[idx][value];
        for &(other_idx, matrix, row_side) in &self.inner[idx] {
            let theirs = self.current[other_idx];
            score += if row_side {
                search.matrices[matrix].at(value, theirs)
            } else {
                search.matrices[matrix].at(theirs, value)
            };
        }
        score
    }

    fn descend(&mut self, search: &Search<'_>, idx: usize, so_far: Score) {
        self.nodes += 1;
        if idx == self.own.len() {
            if so_far < self.upper {
                self.upper = so_far;
                self.best.clone_from(&self.current);
            }
            return;
        }
        if self.nodes > WINDOW_NODES {
            return;
        }
        // The rest, bounded: each later index at its least own term plus, for each of its edges
        // to earlier indices, that edge's least value (every edge not yet scored is counted
        // once, at its later end).
        let rest: Score = (idx + 1..self.own.len())
            .map(|later| {
                self.own[later].iter().copied().min().unwrap_or(Score::ZERO) + self.behind[later]
            })
            .fold(Score::ZERO, |sum, score| sum + score);
        let mut order: Vec<(Score, usize)> = (0..self.own[idx].len())
            .map(|value| (self.term(search, idx, value), value))
            .collect();
        order.sort_unstable();
        for (score, value) in order {
            let next = so_far + score;
            if next + rest >= self.upper {
                break;
            }
            self.current[idx] = value;
            self.descend(search, idx + 1, next);
        }
    }
}

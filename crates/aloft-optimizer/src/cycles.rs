//! A tighter lower bound where the LP relaxation is loose: triangles of tasks.
//!
//! The LP-dual messages of `solve` reach the LP relaxation's bound, which on frustrated
//! placements is loose: three tasks allowed in regions {1,2}, {2,3} and {1,3}, all linked,
//! always pay for two transfers, but the LP pays one and a half (each task half in each of its
//! regions). Adding a term over each triangle's three tasks (zero at first) and moving cost
//! between the triangle and its three edges removes those half-way solutions (the LP with
//! triplet clusters of Sontag et al., 2008, "Tightening LP relaxations for MAP using message
//! passing").
//!
//! Every step moves integer amounts between terms, so every complete plan keeps its score and
//! `Σ min task term + Σ min edge term + Σ min triangle term` is a lower bound at every step;
//! the best seen is returned. Two steps alternate, each never lowering that sum:
//! - per edge, MPLP's: gather both tasks' terms into the edge, give each task back half of the
//!   edge's least value for each of its values;
//! - per triangle: gather its three edges into it, give each edge back a third of the
//!   triangle's least value for each of the edge's value pairs.

use crate::limits::Limits;
use crate::solve::Search;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};

/// Triangles at most, and the largest one (cells of its table).
const MAX_TRIANGLES: usize = 60_000;
const MAX_TRIANGLE_CELLS: usize = 216;
/// The triangulation stops at tasks with more neighbours than this (each adds up to
/// `d (d - 1) / 2` triangles and edges).
const MAX_ELIMINATION_DEGREE: usize = 12;
/// Sweeps at most; the bound is checked every `CHECK_EVERY` sweeps and the ascent stops once
/// it rose by less than `STALL` of itself.
const SWEEPS: usize = 2_000;
const CHECK_EVERY: usize = 5;
const STALL: f64 = 1e-6;
/// Cell visits at most; with a deadline, it also stops there.
const MAX_WORK: usize = 400_000_000;

struct Edge {
    row: usize,
    col: usize,
    cols: usize,
    data: Vec<i64>,
}

struct Triangle {
    /// Domain sizes of its positions (in order).
    sizes: [usize; 3],
    /// The edges (a,b), (b,c), (a,c), each stored with its earlier position as rows.
    edges: [usize; 3],
    data: Vec<i64>,
}

impl Search<'_> {
    /// A lower bound on the objective of every plan of this search's tasks, from the LP with
    /// triangle terms; `None` when there is no triangle (it would add nothing). Progress
    /// reports go on meanwhile, showing the bound so far plus `report_offset` (the other parts').
    pub(crate) fn triangle_bound(&self, limits: &mut Limits, report_offset: i64) -> Option<i64> {
        let mut nodes: Vec<Vec<i64>> = self
            .unary
            .iter()
            .map(|values| values.iter().map(|score| score.primary).collect())
            .collect();
        let mut edges: Vec<Edge> = Vec::new();
        let mut edge_of: HashMap<(usize, usize), usize> = HashMap::new();
        for (pos, links) in self.later.iter().enumerate() {
            for &(other, matrix, row_side) in links {
                if !row_side || other <= pos {
                    continue;
                }
                let (rows, cols) = (self.domains[pos].len(), self.domains[other].len());
                let mut data = Vec::with_capacity(rows * cols);
                for row in 0..rows {
                    for col in 0..cols {
                        data.push(self.matrices[matrix].at(row, col).primary);
                    }
                }
                // Two edges between the same tasks add up into one.
                if let Some(&idx) = edge_of.get(&(pos, other)) {
                    let edge: &mut Edge = &mut edges[idx];
                    for (cell, extra) in edge.data.iter_mut().zip(data) {
                        *cell += extra;
                    }
                    continue;
                }
                edge_of.insert((pos, other), edges.len());
                edges.push(Edge {
                    row: pos,
                    col: other,
                    cols,
                    data,
                });
            }
        }
        let mut triangles = self.triangles(&mut edges, &mut edge_of);
        if triangles.is_empty() {
            return None;
        }
        let work_per_sweep = edges.iter().map(|edge| edge.data.len()).sum::<usize>() * 3
            + triangles.iter().map(|t| t.data.len()).sum::<usize>() * 6;
        let sweeps = SWEEPS.min(MAX_WORK / work_per_sweep.max(1));
        let bound = |nodes: &[Vec<i64>], edges: &[Edge], triangles: &[Triangle]| -> i64 {
            nodes
                .iter()
                .map(|values| values.iter().copied().min().unwrap_or(0))
                .chain(
                    edges
                        .iter()
                        .map(|edge| edge.data.iter().copied().min().unwrap_or(0)),
                )
                .chain(
                    triangles
                        .iter()
                        .map(|t| t.data.iter().copied().min().unwrap_or(0)),
                )
                .sum()
        };
        let mut best = bound(&nodes, &edges, &triangles);
        let mut last_check = best;
        for sweep in 1..=sweeps {
            for triangle in &mut triangles {
                triangle_step(triangle, &mut edges);
            }
            for edge in &mut edges {
                edge_step(edge, &mut nodes);
            }
            if sweep % CHECK_EVERY == 0 {
                let now = bound(&nodes, &edges, &triangles);
                best = best.max(now);
                limits.report_bound = limits
                    .report_bound
                    .max(report_offset + best.min(self.upper().primary));
                limits.report_if_due();
                if (now - last_check) as f64 <= STALL * (now as f64).abs().max(1.0)
                    || limits.past(1.0)
                {
                    break;
                }
                last_check = now;
            }
        }
        Some(best.max(bound(&nodes, &edges, &triangles)))
    }
}

impl Search<'_> {
    /// The triangles to add: every triangle of the graph, then those of a partial
    /// triangulation (eliminating the tasks of fewest neighbours first, linking each one's
    /// remaining neighbours by new edges that score zero), so that longer cycles are covered
    /// too, within `MAX_TRIANGLES`.
    fn triangles(
        &self,
        edges: &mut Vec<Edge>,
        edge_of: &mut HashMap<(usize, usize), usize>,
    ) -> Vec<Triangle> {
        let n = self.order.len();
        let mut neighbours: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        for edge in edges.iter() {
            neighbours[edge.row].insert(edge.col);
            neighbours[edge.col].insert(edge.row);
        }
        let mut seen: HashSet<[usize; 3]> = HashSet::new();
        let mut triangles: Vec<Triangle> = Vec::new();
        let mut add = |nodes: [usize; 3],
                       edges: &mut Vec<Edge>,
                       edge_of: &mut HashMap<(usize, usize), usize>|
         -> bool {
            let mut nodes = nodes;
            nodes.sort_unstable();
            let [a, b, c] = nodes;
            let sizes = [
                self.domains[a].len(),
                self.domains[b].len(),
                self.domains[c].len(),
            ];
            let cells: usize = sizes.iter().product();
            if cells > MAX_TRIANGLE_CELLS || !seen.insert(nodes) {
                return false;
            }
            let mut find = |x: usize, y: usize| {
                *edge_of.entry((x, y)).or_insert_with(|| {
                    let cols = self.domains[y].len();
                    edges.push(Edge {
                        row: x,
                        col: y,
                        cols,
                        data: vec![0; self.domains[x].len() * cols],
                    });
                    edges.len() - 1
                })
            };
            triangles.push(Triangle {
                sizes,
                edges: [find(a, b), find(b, c), find(a, c)],
                data: vec![0; cells],
            });
            true
        };
        let mut count = 0usize;
        // The graph's own triangles.
        let existing: Vec<(usize, usize)> = edges.iter().map(|e| (e.row, e.col)).collect();
        'own: for (a, b) in existing {
            let common: Vec<usize> = neighbours[a]
                .intersection(&neighbours[b])
                .copied()
                .filter(|&c| c > b)
                .collect();
            for c in common {
                count += usize::from(add([a, b, c], edges, edge_of));
                if count >= MAX_TRIANGLES {
                    break 'own;
                }
            }
        }
        // Elimination, fewest neighbours first.
        let mut eliminated = vec![false; n];
        let mut heap: BinaryHeap<Reverse<(usize, usize)>> = (0..n)
            .map(|pos| Reverse((neighbours[pos].len(), pos)))
            .collect();
        while let Some(Reverse((degree, pos))) = heap.pop() {
            if eliminated[pos] || degree != neighbours[pos].len() {
                continue;
            }
            if degree > MAX_ELIMINATION_DEGREE || count >= MAX_TRIANGLES {
                break;
            }
            eliminated[pos] = true;
            let around: Vec<usize> = neighbours[pos].iter().copied().collect();
            for (idx, &a) in around.iter().enumerate() {
                for &c in &around[idx + 1..] {
                    count += usize::from(add([pos, a, c], edges, edge_of));
                    neighbours[a].insert(c);
                    neighbours[c].insert(a);
                }
            }
            for &a in &around {
                neighbours[a].remove(&pos);
                heap.push(Reverse((neighbours[a].len(), a)));
            }
        }
        triangles
    }
}

/// Gathers both tasks' terms into the edge and gives each back half the edge's least value.
fn edge_step(edge: &mut Edge, nodes: &mut [Vec<i64>]) {
    let rows = edge.data.len() / edge.cols;
    for row in 0..rows {
        for col in 0..edge.cols {
            edge.data[row * edge.cols + col] += nodes[edge.row][row] + nodes[edge.col][col];
        }
    }
    for (row, slot) in nodes[edge.row].iter_mut().enumerate() {
        let least = edge.data[row * edge.cols..(row + 1) * edge.cols]
            .iter()
            .copied()
            .min()
            .unwrap_or(0);
        *slot = least.div_euclid(2);
    }
    for (col, slot) in nodes[edge.col].iter_mut().enumerate() {
        let least = (0..rows)
            .map(|row| edge.data[row * edge.cols + col])
            .min()
            .unwrap_or(0);
        *slot = least.div_euclid(2);
    }
    for row in 0..rows {
        for col in 0..edge.cols {
            edge.data[row * edge.cols + col] -= nodes[edge.row][row] + nodes[edge.col][col];
        }
    }
}

/// Gathers the triangle's three edges into it and gives each edge back a third of the
/// triangle's least value for each of the edge's value pairs.
fn triangle_step(triangle: &mut Triangle, edges: &mut [Edge]) {
    let [sa, sb, sc] = triangle.sizes;
    let [ab, bc, ac] = triangle.edges;
    let cell = |a: usize, b: usize, c: usize| (a * sb + b) * sc + c;
    for a in 0..sa {
        for b in 0..sb {
            for c in 0..sc {
                triangle.data[cell(a, b, c)] += edges[ab].data[a * edges[ab].cols + b]
                    + edges[bc].data[b * edges[bc].cols + c]
                    + edges[ac].data[a * edges[ac].cols + c];
            }
        }
    }
    for a in 0..sa {
        for b in 0..sb {
            let least = (0..sc)
                .map(|c| triangle.data[cell(a, b, c)])
                .min()
                .unwrap_or(0);
            let cols = edges[ab].cols;
            edges[ab].data[a * cols + b] = least.div_euclid(3);
        }
    }
    for b in 0..sb {
        for c in 0..sc {
            let least = (0..sa)
                .map(|a| triangle.data[cell(a, b, c)])
                .min()
                .unwrap_or(0);
            let cols = edges[bc].cols;
            edges[bc].data[b * cols + c] = least.div_euclid(3);
        }
    }
    for a in 0..sa {
        for c in 0..sc {
            let least = (0..sb)
                .map(|b| triangle.data[cell(a, b, c)])
                .min()
                .unwrap_or(0);
            let cols = edges[ac].cols;
            edges[ac].data[a * cols + c] = least.div_euclid(3);
        }
    }
    for a in 0..sa {
        for b in 0..sb {
            for c in 0..sc {
                triangle.data[cell(a, b, c)] -= edges[ab].data[a * edges[ab].cols + b]
                    + edges[bc].data[b * edges[bc].cols + c]
                    + edges[ac].data[a * edges[ac].cols + c];
            }
        }
    }
}

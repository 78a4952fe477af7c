//! How long the search may go on, and telling the caller how it is going.
//!
//! Placement is NP-hard, so some DAGs would take the exact search far longer than anyone waits
//! for a plan. The search is anytime instead: it holds a plan from the start (greedy, then
//! improved by local search) and a proven lower bound; when the deadline or the node limit is
//! reached it stops and returns the best plan with that bound, so the caller knows how far from
//! optimal the plan can be at most. The node limit is deterministic (tests use it); the
//! deadline is wall-clock (the CLI uses it), so with a deadline the plan may depend on the
//! machine's speed, which the result says (`Optimality::proven_optimal`).

use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a progress report says: the search has run this long, holds a plan scoring `best`
/// (the objective, in dollars or seconds) and has proven nothing better than `lower_bound`
/// exists.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchProgress {
    pub elapsed: Duration,
    pub nodes: u64,
    pub best: f64,
    pub lower_bound: f64,
}

impl SearchProgress {
    /// `(best - lower_bound) / best`: at most how much worse than optimal the plan is.
    pub fn gap(&self) -> f64 {
        relative_gap(self.best, self.lower_bound)
    }
}

/// Called about once a second while a search runs for longer than a second.
#[derive(Clone)]
pub struct ProgressCallback(pub Arc<dyn Fn(&SearchProgress) + Send + Sync>);

impl std::fmt::Debug for ProgressCallback {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ProgressCallback")
    }
}

pub(crate) fn relative_gap(best: f64, lower_bound: f64) -> f64 {
    if best <= 0.0 || lower_bound >= best {
        0.0
    } else {
        (best - lower_bound.max(0.0)) / best
    }
}

/// Nodes between looks at the clock.
const CLOCK_EVERY: u64 = 256;
/// First progress report after this long, then one per this long.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// The search's allowance, shared by every component and the next-best plans.
pub(crate) struct Limits {
    started: Instant,
    deadline: Option<Instant>,
    /// When the search itself stops: the deadline, or earlier to leave time for work after it
    /// (see `reserve`).
    search_deadline: Option<Instant>,
    node_limit: Option<u64>,
    progress: Option<ProgressCallback>,
    next_report: Instant,
    pub(crate) nodes: u64,
    /// Set once the allowance is spent; every search then stops at its next node.
    pub(crate) stopped: bool,
    /// What the progress report shows, as the objective's integer units (the caller sets
    /// them as components finish) and how to turn them into dollars or seconds.
    pub(crate) report_best: i64,
    pub(crate) report_bound: i64,
    pub(crate) unit: f64,
}

impl Limits {
    pub(crate) fn new(
        deadline: Option<Duration>,
        node_limit: Option<u64>,
        progress: Option<ProgressCallback>,
        unit: f64,
    ) -> Limits {
        let started = Instant::now();
        Limits {
            started,
            deadline: deadline.map(|limit| started + limit),
            search_deadline: deadline.map(|limit| started + limit),
            node_limit,
            progress,
            next_report: started + REPORT_EVERY,
            nodes: 0,
            stopped: false,
            report_best: 0,
            report_bound: 0,
            unit,
        }
    }

    /// No limit at all.
    #[cfg(test)]
    pub(crate) fn unlimited() -> Limits {
        Limits::new(None, None, None, 1.0)
    }

    /// Counts one search node; true when the search must stop now.
    pub(crate) fn tick(&mut self) -> bool {
        if self.stopped {
            return true;
        }
        self.nodes += 1;
        if self.node_limit.is_some_and(|limit| self.nodes > limit) {
            self.stopped = true;
            return true;
        }
        if self.nodes.is_multiple_of(CLOCK_EVERY)
            && (self.deadline.is_some() || self.progress.is_some())
        {
            let now = Instant::now();
            if self.search_deadline.is_some_and(|deadline| now >= deadline) {
                self.stopped = true;
                return true;
            }
            if now >= self.next_report {
                self.next_report = now + REPORT_EVERY;
                self.report();
            }
        }
        false
    }

    /// Stops the search once `1 - share` of the deadline has passed, leaving `share` of it for
    /// work after the search (a bound for a search cut short).
    pub(crate) fn reserve(&mut self, share: f64) {
        if let Some(deadline) = self.deadline {
            let total = deadline.duration_since(self.started);
            self.search_deadline = Some(self.started + total.mul_f64(1.0 - share));
        }
    }

    /// True once `share` of the deadline has passed (or the limits are spent): for work that
    /// should leave the rest of the time to the search. Never true without a deadline.
    pub(crate) fn share_spent(&self, share: f64) -> bool {
        self.stopped || self.past(share)
    }

    /// True once `share` of the deadline has passed, whether or not the search was stopped.
    pub(crate) fn past(&self, share: f64) -> bool {
        self.deadline.is_some_and(|deadline| {
            let allowed = deadline.duration_since(self.started).mul_f64(share);
            self.started.elapsed() >= allowed
        })
    }

    /// Reports progress if a report is due, for work outside the search's nodes.
    pub(crate) fn report_if_due(&mut self) {
        if self.progress.is_some() {
            let now = Instant::now();
            if now >= self.next_report {
                self.next_report = now + REPORT_EVERY;
                self.report();
            }
        }
    }

    fn report(&self) {
        if let Some(progress) = &self.progress {
            (progress.0)(&SearchProgress {
                elapsed: self.started.elapsed(),
                nodes: self.nodes,
                best: self.report_best as f64 * self.unit,
                lower_bound: self.report_bound as f64 * self.unit,
            });
        }
    }
}

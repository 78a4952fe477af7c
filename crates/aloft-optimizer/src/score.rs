//! Scores: what the optimizer minimizes, in integer units so that exactness is exact.
//!
//! A score is a pair compared lexicographically: the objective first, the other measure as the
//! tie-breaker. Cost is counted in micro-dollars, time in milliseconds and carbon in milligrams
//! of CO2. Every term (a task's
//! compute, an input transfer, an edge transfer) is rounded once, on its own, so the solver,
//! the brute force used in tests and the reported plan all add up the same integers.
//!
//! Pairs of integers under lexicographic order form an ordered abelian group, which is all that
//! the dominance tests and bounds of the solver need.

use serde::{Deserialize, Serialize};
use std::ops::{Add, AddAssign, Sub};

/// What to minimize.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Total dollars: compute plus egress. Ties are broken by time.
    #[default]
    Cost,
    /// Total hours: runtimes plus transfer times. Ties are broken by cost.
    Time,
    /// Total grams of CO2 of the compute (see `carbon`). Ties are broken by cost.
    Carbon,
}

/// One of the measures a plan is scored on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Measure {
    Cost,
    Time,
    Carbon,
}

/// What a score pairs up: the objective first, then the measure second to it. The second breaks
/// ties, and a limit that couples every task (a budget under the time or carbon objective, a
/// carbon cap under cost or time) is on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Goal {
    pub(crate) objective: Objective,
    pub(crate) second: Measure,
}

impl Goal {
    /// The objective with its usual tie-breaker: time under cost, cost under time and carbon.
    pub(crate) fn plain(objective: Objective) -> Goal {
        let second = match objective {
            Objective::Cost => Measure::Time,
            Objective::Time | Objective::Carbon => Measure::Cost,
        };
        Goal { objective, second }
    }

    fn first(self) -> Measure {
        match self.objective {
            Objective::Cost => Measure::Cost,
            Objective::Time => Measure::Time,
            Objective::Carbon => Measure::Carbon,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Score {
    pub(crate) primary: i64,
    pub(crate) secondary: i64,
}

impl Score {
    pub(crate) const ZERO: Score = Score {
        primary: 0,
        secondary: 0,
    };
    pub(crate) const MAX: Score = Score {
        primary: i64::MAX / 4,
        secondary: i64::MAX / 4,
    };

    pub(crate) fn new(goal: Goal, dollars: f64, seconds: f64, grams: f64) -> Score {
        let value = |measure: Measure| match measure {
            Measure::Cost => micro_dollars(dollars),
            Measure::Time => milliseconds(seconds),
            Measure::Carbon => milligrams(grams),
        };
        Score {
            primary: value(goal.first()),
            secondary: value(goal.second),
        }
    }

    /// The part of the score a limit is on: the second measure, except under cost with time
    /// second, where it is the cost (the budget).
    pub(crate) fn limited(self, goal: Goal) -> i64 {
        match goal.second {
            Measure::Time => self.primary,
            Measure::Cost | Measure::Carbon => self.secondary,
        }
    }
}

pub(crate) fn micro_dollars(dollars: f64) -> i64 {
    (dollars * 1e6).round() as i64
}

/// Grams of CO2 as integer milligrams.
pub(crate) fn milligrams(grams: f64) -> i64 {
    (grams * 1e3).round() as i64
}

fn milliseconds(seconds: f64) -> i64 {
    (seconds * 1e3).round() as i64
}

impl Add for Score {
    type Output = Score;
    fn add(self, other: Score) -> Score {
        Score {
            primary: self.primary + other.primary,
            secondary: self.secondary + other.secondary,
        }
    }
}

impl AddAssign for Score {
    fn add_assign(&mut self, other: Score) {
        *self = *self + other;
    }
}

impl Sub for Score {
    type Output = Score;
    fn sub(self, other: Score) -> Score {
        Score {
            primary: self.primary - other.primary,
            secondary: self.secondary - other.secondary,
        }
    }
}

impl std::iter::Sum for Score {
    fn sum<I: Iterator<Item = Score>>(iter: I) -> Score {
        iter.fold(Score::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicographic_with_the_objective_first() {
        let cost = Goal::plain(Objective::Cost);
        let time = Goal::plain(Objective::Time);
        let carbon = Goal::plain(Objective::Carbon);
        let cheap_slow = Score::new(cost, 1.0, 7200.0, 0.0);
        let dear_fast = Score::new(cost, 2.0, 3600.0, 0.0);
        assert!(cheap_slow < dear_fast);
        assert_eq!(cheap_slow.limited(cost), 1_000_000);
        let cheap_slow = Score::new(time, 1.0, 7200.0, 0.0);
        let dear_fast = Score::new(time, 2.0, 3600.0, 0.0);
        assert!(dear_fast < cheap_slow);
        let tie_cheaper = Score::new(time, 1.0, 3600.0, 0.0);
        assert!(tie_cheaper < dear_fast);
        assert_eq!(tie_cheaper.limited(time), 1_000_000);
        let clean_dear = Score::new(carbon, 2.0, 3600.0, 10.0);
        let dirty_cheap = Score::new(carbon, 1.0, 3600.0, 20.0);
        assert!(clean_dear < dirty_cheap);
        assert_eq!(clean_dear.limited(carbon), 2_000_000);
        let capped = Goal {
            objective: Objective::Cost,
            second: Measure::Carbon,
        };
        let score = Score::new(capped, 2.0, 3600.0, 10.0);
        assert_eq!((score.primary, score.limited(capped)), (2_000_000, 10_000));
    }
}

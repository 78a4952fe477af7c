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

    pub(crate) fn new(objective: Objective, dollars: f64, seconds: f64, grams: f64) -> Score {
        let cost = micro_dollars(dollars);
        let time = milliseconds(seconds);
        match objective {
            Objective::Carbon => Score {
                primary: milligrams(grams),
                secondary: cost,
            },
            Objective::Cost => Score {
                primary: cost,
                secondary: time,
            },
            Objective::Time => Score {
                primary: time,
                secondary: cost,
            },
        }
    }

    /// The cost part of the score, in micro-dollars.
    pub(crate) fn cost(self, objective: Objective) -> i64 {
        match objective {
            Objective::Cost => self.primary,
            Objective::Time | Objective::Carbon => self.secondary,
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
        let cheap_slow = Score::new(Objective::Cost, 1.0, 7200.0, 0.0);
        let dear_fast = Score::new(Objective::Cost, 2.0, 3600.0, 0.0);
        assert!(cheap_slow < dear_fast);
        let cheap_slow = Score::new(Objective::Time, 1.0, 7200.0, 0.0);
        let dear_fast = Score::new(Objective::Time, 2.0, 3600.0, 0.0);
        assert!(dear_fast < cheap_slow);
        let tie_cheaper = Score::new(Objective::Time, 1.0, 3600.0, 0.0);
        assert!(tie_cheaper < dear_fast);
        assert_eq!(tie_cheaper.cost(Objective::Time), 1_000_000);
        let clean_dear = Score::new(Objective::Carbon, 2.0, 3600.0, 10.0);
        let dirty_cheap = Score::new(Objective::Carbon, 1.0, 3600.0, 20.0);
        assert!(clean_dear < dirty_cheap);
        assert_eq!(clean_dear.cost(Objective::Carbon), 2_000_000);
    }
}

//! Quantities that appear in task specs: resource amounts (`8`, `8+`), durations (`6h`) and data
//! sizes (`100GB`). Each has a small parser whose error says what was expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A resource amount: exactly `value`, or at least `value` (SkyPilot's `8+`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Amount {
    pub value: f64,
    pub at_least: bool,
}

impl Amount {
    pub fn exactly(value: f64) -> Amount {
        Amount {
            value,
            at_least: false,
        }
    }

    pub fn at_least(value: f64) -> Amount {
        Amount {
            value,
            at_least: true,
        }
    }

    /// Whether an offer of `offered` units satisfies this amount.
    pub fn admits(&self, offered: f64) -> bool {
        const EPS: f64 = 1e-9;
        if self.at_least {
            offered + EPS >= self.value
        } else {
            (offered - self.value).abs() <= EPS
        }
    }

    /// Parses `8`, `8+`, `0.5`, `16.0+` (an optional unit suffix is the caller's business).
    pub fn parse(text: &str) -> Result<Amount, QuantityError> {
        let text = text.trim();
        let (number, at_least) = match text.strip_suffix('+') {
            Some(rest) => (rest.trim(), true),
            None => (text, false),
        };
        let value: f64 = number.parse().map_err(|_| QuantityError::NotANumber {
            text: text.to_owned(),
            expected: "a number such as `8`, or `8+` for at least 8",
        })?;
        if !value.is_finite() || value < 0.0 {
            return Err(QuantityError::OutOfRange {
                text: text.to_owned(),
            });
        }
        Ok(Amount { value, at_least })
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, if self.at_least { "+" } else { "" })
    }
}

/// A length of time, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct Duration {
    pub seconds: f64,
}

impl Duration {
    pub fn from_hours(hours: f64) -> Duration {
        Duration {
            seconds: hours * 3600.0,
        }
    }

    pub fn hours(&self) -> f64 {
        self.seconds / 3600.0
    }

    /// Parses `6h`, `30m`, `45s`, `1.5h`, `2d`, or a bare number of hours (`6`).
    pub fn parse(text: &str) -> Result<Duration, QuantityError> {
        const UNITS: &[(&[&str], f64)] = &[
            (&["", "h", "hr", "hrs", "hour", "hours"], 3600.0),
            (&["m", "min", "mins", "minute", "minutes"], 60.0),
            (&["s", "sec", "secs", "second", "seconds"], 1.0),
            (&["d", "day", "days"], 86400.0),
        ];
        let seconds = parse_scaled(
            text,
            "a duration such as `6h`, `30m`, `90s` or `2d`",
            UNITS,
            "one of s, m, h, d",
        )?;
        Ok(Duration { seconds })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.seconds;
        if seconds >= 3600.0 {
            write!(f, "{}h", trim_float(seconds / 3600.0))
        } else if seconds >= 60.0 {
            write!(f, "{}m", trim_float(seconds / 60.0))
        } else {
            write!(f, "{}s", trim_float(seconds))
        }
    }
}

/// An amount of data, in gigabytes (10^9 bytes, as clouds bill egress).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct Size {
    pub gigabytes: f64,
}

impl Size {
    pub fn from_gigabytes(gigabytes: f64) -> Size {
        Size { gigabytes }
    }

    /// Parses `100GB`, `1.5TB`, `500MB`, `2GiB`, or a bare number of gigabytes (`100`).
    pub fn parse(text: &str) -> Result<Size, QuantityError> {
        const UNITS: &[(&[&str], f64)] = &[
            (&["", "g", "gb"], 1.0),
            (&["gib"], 1.073_741_824),
            (&["t", "tb"], 1000.0),
            (&["tib"], 1_099.511_627_776),
            (&["m", "mb"], 0.001),
            (&["mib"], 0.001_048_576),
            (&["k", "kb"], 1e-6),
            (&["kib"], 1.024e-6),
            (&["p", "pb"], 1e6),
        ];
        let gigabytes = parse_scaled(
            text,
            "a size such as `100GB`, `1.5TB` or `500MB`",
            UNITS,
            "one of KB, MB, GB, TB, PB (or KiB, MiB, GiB, TiB)",
        )?;
        Ok(Size { gigabytes })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.gigabytes >= 1000.0 {
            write!(f, "{}TB", trim_float(self.gigabytes / 1000.0))
        } else {
            write!(f, "{}GB", trim_float(self.gigabytes))
        }
    }
}

/// Parses `<number><unit>` (a bare number takes the unit listed with `""`), scaled by the
/// unit's factor; errors say what was expected.
fn parse_scaled(
    text: &str,
    expected_number: &'static str,
    units: &[(&[&str], f64)],
    expected_unit: &'static str,
) -> Result<f64, QuantityError> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| QuantityError::NotANumber {
            text: text.to_owned(),
            expected: expected_number,
        })?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale = units
        .iter()
        .find(|(names, _)| names.contains(&unit.as_str()))
        .map(|(_, scale)| *scale)
        .ok_or_else(|| QuantityError::UnknownUnit {
            text: text.to_owned(),
            expected: expected_unit,
        })?;
    if !value.is_finite() || value < 0.0 {
        return Err(QuantityError::OutOfRange {
            text: text.to_owned(),
        });
    }
    Ok(value * scale)
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("`{text}` is not a number; expected {expected}")]
    NotANumber {
        text: String,
        expected: &'static str,
    },
    #[error("`{text}` has an unknown unit; expected {expected}")]
    UnknownUnit {
        text: String,
        expected: &'static str,
    },
    #[error("`{text}` is out of range; expected a finite, non-negative value")]
    OutOfRange { text: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(Amount::parse("8").unwrap(), Amount::exactly(8.0));
        assert_eq!(Amount::parse("8+").unwrap(), Amount::at_least(8.0));
        assert!(Amount::at_least(8.0).admits(16.0));
        assert!(!Amount::exactly(8.0).admits(16.0));
        assert!(Amount::parse("-1").is_err());
        assert!(Amount::parse("eight").is_err());
        assert!(Amount::parse("NaN").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("6h").unwrap().seconds, 21600.0);
        assert_eq!(Duration::parse("30m").unwrap().seconds, 1800.0);
        assert_eq!(Duration::parse("1.5").unwrap().hours(), 1.5);
        assert_eq!(Duration::parse("2d").unwrap().hours(), 48.0);
        assert!(Duration::parse("6y").is_err());
        assert_eq!(Duration::from_hours(6.0).to_string(), "6h");
    }

    #[test]
    fn sizes() {
        assert_eq!(Size::parse("100GB").unwrap().gigabytes, 100.0);
        assert_eq!(Size::parse("1.5 TB").unwrap().gigabytes, 1500.0);
        assert_eq!(Size::parse("500MB").unwrap().gigabytes, 0.5);
        assert!(Size::parse("3 parsecs").is_err());
    }
}

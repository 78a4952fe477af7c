//! Grid carbon intensity by hour: what a region's electricity emits at a given time.
//!
//! A region's annual average (`Region::carbon_g_per_kwh`) hides how much the grid changes over
//! a day (solar at noon, gas peakers in the evening). A carbon intensity file gives figures by
//! hour, in one of two forms per row, freely mixed:
//!
//! ```text
//! cloud,region,hour,carbon_g_per_kwh
//! aws,us-east-1,13,262                  # 13:00-14:00 UTC of a typical day
//! aws,us-east-1,2026-12-08T13:00Z,241   # that one hour
//! ```
//!
//! - `hour` `0`..`23`: that hour (UTC) of a **typical day**, repeated every day. A region with
//!   a typical day must give all 24 hours.
//! - `hour` a UTC timestamp on the hour (`2026-12-08T13:00Z`, `2026-12-08T13:00:00Z`,
//!   `2026-12-08 13:00:00+00:00`): that **specific hour**.
//!
//! Looking up an hour takes the specific hour if given, else the typical day's hour, else the
//! region's annual average ([`Catalog::carbon_at`]). Other columns (a source, a date) are
//! allowed and ignored; lines starting with `#` are comments.
//!
//! A file's rows for a region replace every hourly figure the catalog had for that region.
//! A row the file cannot mean (a bad hour or number, a repeated hour, a typical day lacking
//! hours) is an error naming `file:line`; a region the catalog does not have is a warning (a
//! file may cover more regions than a catalog holds).

use crate::error::{CatalogError, CatalogWarning, RowProblem};
use crate::model::{Catalog, RegionId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Seconds in an hour and a day.
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// A region's grid intensity by hour (gCO2/kWh).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CarbonProfile {
    /// Each hour of a typical day, UTC (index 0 is 00:00-01:00); empty when none was given.
    pub typical_day: Vec<f64>,
    /// Specific hours: (hours since 1970-01-01T00:00Z, gCO2/kWh), sorted by hour.
    pub hours: Vec<(i64, f64)>,
}

impl CarbonProfile {
    /// The figure for one hour (hours since the Unix epoch), if this profile has one.
    pub fn at_hour(&self, hour: i64) -> Option<f64> {
        if let Ok(found) = self.hours.binary_search_by_key(&hour, |&(at, _)| at) {
            return Some(self.hours[found].1);
        }
        self.typical_day.get(hour.rem_euclid(24) as usize).copied()
    }

    /// Whether any specific hour lies in `from..to` (hours since the epoch).
    pub fn has_hours_in(&self, from: i64, to: i64) -> bool {
        let first = self.hours.partition_point(|&(at, _)| at < from);
        self.hours.get(first).is_some_and(|&(at, _)| at < to)
    }

    /// The typical day's mean, if there is a typical day.
    pub fn typical_day_mean(&self) -> Option<f64> {
        (self.typical_day.len() == 24).then(|| self.typical_day.iter().sum::<f64>() / 24.0)
    }
}

impl Catalog {
    /// A region's grid intensity (gCO2/kWh) in the hour starting at `hour` × 3600 seconds after
    /// the Unix epoch: the specific hour, else the typical day's, else the annual average.
    pub fn carbon_at(&self, region: RegionId, hour: i64) -> Option<f64> {
        let region = self.region(region);
        region
            .carbon_hourly
            .as_ref()
            .and_then(|profile| profile.at_hour(hour))
            .or(region.carbon_g_per_kwh)
    }

    /// Reads a carbon intensity file (see the module docs) and applies it.
    pub fn load_carbon_intensity(
        &mut self,
        file: &Path,
    ) -> Result<Vec<CatalogWarning>, CatalogError> {
        let text = std::fs::read_to_string(file).map_err(|source| CatalogError::ReadCarbon {
            file: file.to_owned(),
            source,
        })?;
        self.apply_carbon_intensity(file, &text)
    }

    /// Applies a carbon intensity file's `text` (read from `file`, named in errors): each
    /// region it gives replaces its hourly figures. Returns warnings for regions the catalog
    /// does not have.
    pub fn apply_carbon_intensity(
        &mut self,
        file: &Path,
        text: &str,
    ) -> Result<Vec<CatalogWarning>, CatalogError> {
        let parsed = parse_carbon_intensity(file, text)?;
        let mut warnings = Vec::new();
        for (cloud, region, profile, line) in parsed {
            let found = self
                .find_cloud(&cloud)
                .and_then(|cloud_id| self.find_region(cloud_id, &region));
            match found {
                Some(region_id) => {
                    self.regions[region_id.0 as usize].carbon_hourly = Some(profile);
                }
                None => warnings.push(CatalogWarning {
                    file: file.to_owned(),
                    line: Some(line),
                    problem: RowProblem::UnknownCarbonRegion {
                        place: format!("{cloud}/{region}"),
                    },
                }),
            }
        }
        Ok(warnings)
    }
}

/// Per region (cloud, region, its profile, the line of its first row), in file order.
pub(crate) type ParsedProfiles = Vec<(String, String, CarbonProfile, u64)>;

/// Parses a carbon intensity file; see the module docs for the format.
pub(crate) fn parse_carbon_intensity(
    file: &Path,
    text: &str,
) -> Result<ParsedProfiles, CatalogError> {
    let bad = |line: u64, problem: String| CatalogError::BadCarbonRow {
        file: file.to_owned(),
        line,
        problem,
    };
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|source| CatalogError::ReadFile {
            file: file.to_owned(),
            source,
        })?
        .clone();
    let column = |name: &str| headers.iter().position(|header| header == name);
    let required = ["cloud", "region", "hour", "carbon_g_per_kwh"];
    let missing: Vec<String> = required
        .iter()
        .filter(|name| column(name).is_none())
        .map(|name| (*name).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(CatalogError::MissingColumns {
            file: file.to_owned(),
            missing,
            found: headers.iter().map(str::to_owned).collect(),
        });
    }
    let [cloud_col, region_col, hour_col, value_col] =
        required.map(|name| column(name).unwrap_or(0));
    // Per region: its profile being built, the line of its first row, and per hour key the
    // line that gave it (typical hours as 0..24, specific ones offset past them).
    struct Building {
        profile: CarbonProfile,
        typical: [Option<f64>; 24],
        first_line: u64,
        seen: HashMap<Hour, u64>,
    }
    let mut order: Vec<(String, String)> = Vec::new();
    let mut regions: HashMap<(String, String), Building> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|err| {
            let line = err.position().map_or(0, |position| position.line());
            bad(line, format!("malformed CSV ({err})"))
        })?;
        let line = record.position().map_or(0, |position| position.line());
        let field = |index: usize, name: &str| -> Result<String, CatalogError> {
            match record.get(index) {
                Some(text) if !text.is_empty() => Ok(text.to_owned()),
                _ => Err(bad(line, format!("the {name} column is empty"))),
            }
        };
        let cloud = field(cloud_col, "cloud")?;
        let region = field(region_col, "region")?;
        let hour_text = field(hour_col, "hour")?;
        let value_text = field(value_col, "carbon_g_per_kwh")?;
        let hour = parse_hour(&hour_text).map_err(|problem| bad(line, problem))?;
        let value: f64 = value_text
            .parse()
            .ok()
            .filter(|value: &f64| value.is_finite() && *value >= 0.0)
            .ok_or_else(|| {
                bad(
                    line,
                    format!(
                        "carbon_g_per_kwh is `{value_text}`, not a number of grams per kWh, 0 \
                         or more"
                    ),
                )
            })?;
        let key = (cloud.clone(), region.clone());
        let building = regions.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Building {
                profile: CarbonProfile::default(),
                typical: [None; 24],
                first_line: line,
                seen: HashMap::new(),
            }
        });
        if let Some(earlier) = building.seen.insert(hour, line) {
            return Err(bad(
                line,
                format!("{cloud}/{region} hour `{hour_text}` was already given on line {earlier}"),
            ));
        }
        match hour {
            Hour::OfDay(of_day) => building.typical[usize::from(of_day)] = Some(value),
            Hour::At(at) => building.profile.hours.push((at, value)),
        }
    }
    let mut parsed = Vec::with_capacity(order.len());
    for key in order {
        let mut building = regions
            .remove(&key)
            .expect("every ordered region was built");
        let given = building
            .typical
            .iter()
            .filter(|hour| hour.is_some())
            .count();
        if given > 0 && given < 24 {
            let missing: Vec<String> = (0..24)
                .filter(|&hour| building.typical[hour].is_none())
                .map(|hour| hour.to_string())
                .collect();
            return Err(bad(
                building.first_line,
                format!(
                    "{}/{}'s typical day gives {given} of 24 hours (missing {}); give hours 0 \
                     to 23 or none",
                    key.0,
                    key.1,
                    missing.join(", ")
                ),
            ));
        }
        if given == 24 {
            building.profile.typical_day = building.typical.iter().flatten().copied().collect();
        }
        building.profile.hours.sort_by_key(|&(at, _)| at);
        parsed.push((key.0, key.1, building.profile, building.first_line));
    }
    Ok(parsed)
}

/// A row's `hour`: of a typical day, or a specific hour (hours since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Hour {
    OfDay(u8),
    At(i64),
}

fn parse_hour(text: &str) -> Result<Hour, String> {
    if let Ok(of_day) = text.parse::<u8>() {
        return if of_day < 24 {
            Ok(Hour::OfDay(of_day))
        } else {
            Err(format!(
                "hour `{text}` is not 0 to 23 (an hour of the day, UTC)"
            ))
        };
    }
    let seconds = parse_utc(text).map_err(|problem| {
        format!(
            "hour `{text}`: {problem}; expected 0 to 23 or a UTC hour such as 2026-12-08T13:00Z"
        )
    })?;
    if seconds.rem_euclid(HOUR) != 0 {
        return Err(format!("hour `{text}` is not on the hour"));
    }
    Ok(Hour::At(seconds.div_euclid(HOUR)))
}

/// Parses an ISO 8601 UTC time, `YYYY-MM-DDTHH:MM[:SS]Z` (`T` or a space; `Z`, `+00:00` or
/// `+0000`; an hour alone, `YYYY-MM-DDTHHZ`, is allowed too), into seconds since the Unix epoch.
/// Other offsets are refused: the catalog's hours are UTC.
pub fn parse_utc(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let body = ["Z", "z", "+00:00", "+0000", "+00"]
        .iter()
        .find_map(|suffix| text.strip_suffix(suffix))
        .ok_or_else(|| "not a UTC time (end it with Z or +00:00)".to_owned())?;
    let (date, time) = body
        .split_once(['T', 't', ' '])
        .ok_or_else(|| "expected a date and a time, YYYY-MM-DDTHH:MMZ".to_owned())?;
    let number = |part: &str, what: &str, max: i64| -> Result<i64, String> {
        let value = part
            .parse::<i64>()
            .ok()
            .filter(|value| (0..=max).contains(value) && !part.starts_with('+'))
            .ok_or_else(|| format!("`{part}` is not a valid {what}"))?;
        Ok(value)
    };
    let date_parts: Vec<&str> = date.split('-').collect();
    let [year, month, day] = date_parts[..] else {
        return Err(format!("date `{date}` is not YYYY-MM-DD"));
    };
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return Err(format!("date `{date}` is not YYYY-MM-DD"));
    }
    let (year, month) = (number(year, "year", 9999)?, number(month, "month", 12)?);
    let day = number(day, "day", 31)?;
    if month == 0 || day == 0 || day > days_in_month(year, month) {
        return Err(format!("date `{date}` does not exist"));
    }
    let time_parts: Vec<&str> = time.split(':').collect();
    if time_parts.is_empty() || time_parts.len() > 3 || time_parts.iter().any(|p| p.len() != 2) {
        return Err(format!("time `{time}` is not HH:MM or HH:MM:SS"));
    }
    let hour = number(time_parts[0], "hour", 23)?;
    let minute = time_parts
        .get(1)
        .map_or(Ok(0), |p| number(p, "minute", 59))?;
    let second = time_parts
        .get(2)
        .map_or(Ok(0), |p| number(p, "second", 59))?;
    Ok(days_from_civil(year, month, day) * DAY + hour * HOUR + minute * 60 + second)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_utc(seconds: i64) -> String {
    let (days, within) = (seconds.div_euclid(DAY), seconds.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        within / HOUR,
        within % HOUR / 60,
        within % 60
    )
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Where an imported catalog directory's carbon intensity file is looked for.
pub(crate) fn beside_import(dir: &Path) -> PathBuf {
    dir.join(CARBON_INTENSITY_FILE)
}

/// The carbon intensity file's name: in the bundled data (`data/`) and beside an imported
/// catalog (`DIR/carbon_intensity.csv`).
pub const CARBON_INTENSITY_FILE: &str = "carbon_intensity.csv";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_round_trip() {
        assert_eq!(parse_utc("1970-01-01T00:00Z"), Ok(0));
        assert_eq!(parse_utc("2026-12-08T13:00:00Z"), Ok(1_796_734_800));
        assert_eq!(parse_utc("2026-12-08 13:00:00+00:00"), Ok(1_796_734_800));
        assert_eq!(parse_utc("2024-02-29T23:59:59Z"), Ok(1_709_251_199));
        assert_eq!(format_utc(1_796_734_800), "2026-12-08T13:00:00Z");
        assert_eq!(format_utc(1_709_251_199), "2024-02-29T23:59:59Z");
        for bad in [
            "2026-12-08T13:00",
            "2026-12-08T13:00+01:00",
            "2023-02-29T00:00Z",
            "2026-13-01T00:00Z",
            "2026-12-08T24:00Z",
            "tomorrow",
        ] {
            assert!(parse_utc(bad).is_err(), "{bad}");
        }
    }
}

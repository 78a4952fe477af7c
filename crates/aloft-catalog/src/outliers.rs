//! Prices that are plainly wrong: an imported row whose price is far from what the same
//! instance type costs in the cloud's other regions.
//!
//! A catalog is a snapshot somebody else scraped, and one bad row is enough to mislead the
//! planner, which picks the cheapest offer: the 2026-05-20 SkyPilot snapshot lists Azure's
//! `Standard_F8ams_v6` at $0.0898/h in newzealandnorth, a tenth of its price anywhere else (the
//! next cheapest region asks $0.462/h), and every `F*ams_v6` size there is off by the same
//! factor of ten, on demand and on spot alike. So imports are checked, and the user decides
//! what happens to a flagged price ([`OutlierPolicy`]).
//!
//! # The rule
//!
//! For each instance type (of one cloud; GCP's host + GPU combinations are types of their own)
//! and each kind of price separately (on-demand with on-demand, spot with spot: spot is
//! legitimately far below on-demand):
//!
//! 1. each region's price is the median of the type's prices in that region (GCP lists one row
//!    per zone, mostly at one price);
//! 2. the type's reference is the median of those regional prices, so one region, or a few,
//!    however wrong, cannot move it;
//! 3. a row is flagged when its price is more than [`OUTLIER_FACTOR`] times that median or less
//!    than the median divided by it.
//!
//! A type offered (that way) in fewer than [`MIN_REGIONS_JUDGED`] regions is not judged: with
//! two regions there is no telling which one is wrong.
//!
//! # Why a factor of 4
//!
//! Prices flagged in the 2026-05-20 snapshot, as imported, by factor (on-demand + spot):
//!
//! | factor | AWS (excerpt) | GCP | Azure |
//! |---|---|---|---|
//! | 2 | 0 + 27 | 52 + 1685 | 66 + 467 |
//! | 3 | 0 + 10 | 9 + 177 | 31 + 49 |
//! | **4** | 0 + 7 | 9 + 15 | 7 + 7 |
//! | 5 | 0 + 3 | 9 + 12 | 7 + 7 |
//! | 10 | 0 + 0 | 9 + 12 | 0 + 0 |
//!
//! Regional differences are real and large: Azure's on-demand prices reach 2.4× their median
//! (brazilsoutheast) and 0.27× (the `M416ds_8_v3` in four regions), GCP's spot prices 0.26×
//! (every `e2` in us-west4) and 3.6× (`m3` in three US regions). Factors of 2 or 3 flag those
//! by the hundred. At 4, what is flagged is wrong on its face, or at least worth a look: Azure's
//! seven `F*ams_v6` sizes in newzealandnorth (0.10×, on demand and spot), GCP's `tpu-v6e`
//! placeholder at a flat $700/h (and `tpu-v6e` spot in asia-southeast1 at 0.21×), and AWS p3
//! spot prices in four regions as high as on demand (4.1-5.8×). A factor of 10 would miss the
//! Azure rows (0.104×); 4 leaves room for the next snapshot's errors, which need not all be
//! tenfold. docs/catalog.md has the same table.

use crate::error::{CatalogWarning, RowProblem};
use crate::model::Catalog;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;
use std::path::PathBuf;

/// How far (as a factor, either way) a price may be from its type's median regional price.
pub const OUTLIER_FACTOR: f64 = 4.0;

/// The fewest regions a type must be offered in (with that kind of price) to be judged.
pub const MIN_REGIONS_JUDGED: usize = 3;

/// What an import does with a flagged price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutlierPolicy {
    /// Keep it, silently.
    Keep,
    /// Remove it: the on-demand or spot offer whose price was flagged (an offering left with
    /// neither is removed altogether).
    Drop,
    /// Keep it and warn, naming the file and line.
    #[default]
    Warn,
}

impl OutlierPolicy {
    /// `keep`, `drop` or `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutlierPolicy::Keep => "keep",
            OutlierPolicy::Drop => "drop",
            OutlierPolicy::Warn => "warn",
        }
    }

    /// The inverse of [`OutlierPolicy::as_str`].
    pub fn parse(text: &str) -> Option<OutlierPolicy> {
        match text {
            "keep" => Some(OutlierPolicy::Keep),
            "drop" => Some(OutlierPolicy::Drop),
            "warn" => Some(OutlierPolicy::Warn),
            _ => None,
        }
    }
}

impl fmt::Display for OutlierPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which price of an offering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceKind {
    OnDemand,
    Spot,
}

impl fmt::Display for PriceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PriceKind::OnDemand => "on-demand",
            PriceKind::Spot => "spot",
        })
    }
}

/// A price the check flagged, with where it was read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriceOutlier {
    pub file: PathBuf,
    /// 1-based line in `file` (for GCP's host + GPU combinations, the GPU's row).
    pub line: u64,
    pub cloud: String,
    pub instance_type: String,
    pub accelerator_name: Option<String>,
    pub accelerator_count: Option<f64>,
    pub region: String,
    pub zone: Option<String>,
    pub kind: PriceKind,
    /// The flagged price, $/h.
    pub price: f64,
    /// The median of the type's regional prices of this kind, $/h.
    pub median: f64,
    /// `price / median`.
    pub ratio: f64,
    /// How many regions offer the type with this kind of price.
    pub n_regions: usize,
    /// Whether the import dropped it ([`OutlierPolicy::Drop`]).
    pub dropped: bool,
}

/// One price to judge: its group (an instance type), its region and the price.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PricePoint {
    pub group: u32,
    pub region: u32,
    pub price: f64,
}

/// Why a point was flagged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Verdict {
    pub median: f64,
    pub ratio: f64,
    pub n_regions: usize,
}

/// The rule (module docs): for each point, `Some` when its price is an outlier.
pub(crate) fn judge(points: &[PricePoint]) -> Vec<Option<Verdict>> {
    let mut verdicts = vec![None; points.len()];
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_unstable_by_key(|idx| (points[*idx].group, points[*idx].region));
    let mut regional: Vec<f64> = Vec::new();
    let mut in_region: Vec<f64> = Vec::new();
    for group in order.chunk_by(|a, b| points[*a].group == points[*b].group) {
        regional.clear();
        for region in group.chunk_by(|a, b| points[*a].region == points[*b].region) {
            in_region.clear();
            in_region.extend(region.iter().map(|idx| points[*idx].price));
            regional.push(median(&mut in_region));
        }
        let n_regions = regional.len();
        if n_regions < MIN_REGIONS_JUDGED {
            continue;
        }
        let reference = median(&mut regional);
        if reference <= 0.0 {
            continue;
        }
        for idx in group {
            let ratio = points[*idx].price / reference;
            if !(1.0 / OUTLIER_FACTOR..=OUTLIER_FACTOR).contains(&ratio) {
                verdicts[*idx] = Some(Verdict {
                    median: reference,
                    ratio,
                    n_regions,
                });
            }
        }
    }
    verdicts
}

/// Where an offering was read: an index into the import's files, and a 1-based line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowSource {
    pub file: usize,
    pub line: u64,
}

/// An import's prices checked: the flagged ones, and the warnings the policy calls for.
pub(crate) struct Checked {
    pub outliers: Vec<PriceOutlier>,
    pub warnings: Vec<CatalogWarning>,
}

/// Judges every price of `catalog` (whose offering `idx` was read at `sources[idx]`) and applies
/// `policy`: [`OutlierPolicy::Drop`] removes the flagged prices (and offerings left with none)
/// from `catalog`.
pub(crate) fn check_import(
    catalog: &mut Catalog,
    sources: &[RowSource],
    files: &[PathBuf],
    policy: OutlierPolicy,
) -> Checked {
    debug_assert_eq!(
        sources.len(),
        catalog.offerings.len(),
        "one source per offering"
    );
    let mut flagged: Vec<(usize, PriceKind, Verdict)> = Vec::new();
    for kind in [PriceKind::OnDemand, PriceKind::Spot] {
        let mut points = Vec::new();
        let mut offering_of_point = Vec::new();
        for (idx, offering) in catalog.offerings.iter().enumerate() {
            if let Some(price) = offering.hourly_price(kind == PriceKind::Spot) {
                points.push(PricePoint {
                    group: offering.instance_type.0,
                    region: offering.region.0,
                    price,
                });
                offering_of_point.push(idx);
            }
        }
        for (point, verdict) in judge(&points).into_iter().enumerate() {
            if let Some(verdict) = verdict {
                flagged.push((offering_of_point[point], kind, verdict));
            }
        }
    }
    flagged.sort_by_key(|(idx, kind, _)| (sources[*idx].file, sources[*idx].line, *idx, *kind));
    let dropped = policy == OutlierPolicy::Drop;
    let mut outliers = Vec::with_capacity(flagged.len());
    let mut warnings = Vec::new();
    for (idx, kind, verdict) in &flagged {
        let offering = &catalog.offerings[*idx];
        let instance_type = catalog.instance_type(offering.instance_type);
        let source = sources[*idx];
        let outlier = PriceOutlier {
            file: files[source.file].clone(),
            line: source.line,
            cloud: catalog.cloud(instance_type.cloud).name.clone(),
            instance_type: instance_type.name.clone(),
            accelerator_name: instance_type
                .accelerator
                .as_ref()
                .map(|(name, _)| name.clone()),
            accelerator_count: instance_type.accelerator.as_ref().map(|(_, count)| *count),
            region: catalog.region(offering.region).name.clone(),
            zone: offering.zone.map(|zone| catalog.zone(zone).name.clone()),
            kind: *kind,
            price: offering
                .hourly_price(*kind == PriceKind::Spot)
                .unwrap_or_default(),
            median: verdict.median,
            ratio: verdict.ratio,
            n_regions: verdict.n_regions,
            dropped,
        };
        if policy == OutlierPolicy::Warn {
            warnings.push(CatalogWarning {
                file: outlier.file.clone(),
                line: Some(outlier.line),
                problem: RowProblem::PriceOutlier {
                    instance_type: outlier.described_type(),
                    place: outlier.place(),
                    kind: outlier.kind,
                    price: outlier.price,
                    median: outlier.median,
                    ratio: outlier.ratio,
                    n_regions: outlier.n_regions,
                },
            });
        }
        outliers.push(outlier);
    }
    if dropped && !flagged.is_empty() {
        for (idx, kind, _) in &flagged {
            let offering = &mut catalog.offerings[*idx];
            match kind {
                PriceKind::OnDemand => offering.price = None,
                PriceKind::Spot => offering.spot_price = None,
            }
        }
        catalog
            .offerings
            .retain(|offering| offering.price.is_some() || offering.spot_price.is_some());
        for (file_idx, file) in files.iter().enumerate() {
            let count = flagged
                .iter()
                .filter(|(idx, _, _)| sources[*idx].file == file_idx)
                .count();
            if count > 0 {
                warnings.push(CatalogWarning {
                    file: file.clone(),
                    line: None,
                    problem: RowProblem::PriceOutliersDropped { count },
                });
            }
        }
    }
    Checked { outliers, warnings }
}

impl PriceOutlier {
    /// The instance type with its accelerators, as a warning names it: `p3.2xlarge (V100:1)`,
    /// `n1-standard-8 (T4:1)` (GCP's host + GPU combinations share the host's name), and
    /// `tpu-v6e-1` alone (a TPU slice is named after itself).
    pub fn described_type(&self) -> String {
        match (&self.accelerator_name, self.accelerator_count) {
            (Some(name), Some(count)) if *name != self.instance_type => {
                format!("{} ({name}:{count})", self.instance_type)
            }
            _ => self.instance_type.clone(),
        }
    }

    /// `region` or `region/zone`.
    pub fn place(&self) -> String {
        match &self.zone {
            Some(zone) => format!("{}/{zone}", self.region),
            None => self.region.clone(),
        }
    }
}

/// The median (the mean of the middle two for an even count); reorders `values`, which must not
/// be empty.
fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal));
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which `(group, region, price)` rows the rule flags, by index.
    fn flagged(rows: &[(u32, u32, f64)]) -> Vec<usize> {
        let points: Vec<PricePoint> = rows
            .iter()
            .map(|(group, region, price)| PricePoint {
                group: *group,
                region: *region,
                price: *price,
            })
            .collect();
        judge(&points)
            .iter()
            .enumerate()
            .filter_map(|(idx, verdict)| verdict.map(|_| idx))
            .collect()
    }

    #[test]
    fn one_region_far_below_the_others_is_flagged() {
        let rows = [(0, 0, 0.462), (0, 1, 0.0898), (0, 2, 0.716), (0, 3, 0.865)];
        assert_eq!(flagged(&rows), [1]);
        let points: Vec<PricePoint> = rows
            .iter()
            .map(|(group, region, price)| PricePoint {
                group: *group,
                region: *region,
                price: *price,
            })
            .collect();
        let verdict = judge(&points)[1].unwrap();
        assert_eq!(verdict.n_regions, 4);
        assert!((verdict.median - (0.462 + 0.716) / 2.0).abs() < 1e-12);
        assert!((verdict.ratio - 0.0898 / verdict.median).abs() < 1e-12);
    }

    #[test]
    fn one_region_far_above_the_others_is_flagged() {
        let rows = [(7, 0, 2.8), (7, 1, 2.8), (7, 2, 700.0), (7, 3, 3.1)];
        assert_eq!(flagged(&rows), [2]);
    }

    #[test]
    fn a_uniform_regional_spread_is_not_flagged() {
        // Real regional spreads reach about 2.5× on demand (Azure's D8s_v5: $0.384 in eastus,
        // $0.96 in brazilsoutheast); nothing within the factor is flagged, whatever the order.
        let rows = [
            (1, 0, 0.384),
            (1, 1, 0.46),
            (1, 2, 0.52),
            (1, 3, 0.61),
            (1, 4, 0.75),
            (1, 5, 0.96),
        ];
        assert!(flagged(&rows).is_empty());
        let mut reversed = rows;
        reversed.reverse();
        assert!(flagged(&reversed).is_empty());
    }

    #[test]
    fn a_type_offered_in_one_or_two_regions_is_not_judged() {
        assert!(flagged(&[(0, 0, 0.01)]).is_empty());
        assert!(flagged(&[(0, 0, 0.01), (0, 1, 10.0)]).is_empty());
        // Many zones of two regions are still two regions.
        let zones = [(0, 0, 0.01), (0, 0, 0.01), (0, 0, 0.01), (0, 1, 10.0)];
        assert!(flagged(&zones).is_empty());
        // A third region makes it judgeable.
        assert_eq!(flagged(&[(0, 0, 0.01), (0, 1, 1.0), (0, 2, 1.1)]), [0]);
    }

    #[test]
    fn each_region_counts_once_however_many_zones_it_has() {
        // Region 0 has six zones at the low price; the median is over regions, so it stays the
        // outlier rather than outvoting regions 1..=3.
        let mut rows: Vec<(u32, u32, f64)> = (0..6).map(|_| (0, 0, 0.05)).collect();
        rows.extend([(0, 1, 1.0), (0, 2, 1.2), (0, 3, 0.9)]);
        assert_eq!(flagged(&rows), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn types_are_judged_apart() {
        // Group 0 is cheap everywhere, group 1 expensive everywhere: neither is an outlier
        // against the other.
        let rows = [
            (0, 0, 0.1),
            (0, 1, 0.1),
            (0, 2, 0.1),
            (1, 0, 10.0),
            (1, 1, 10.0),
            (1, 2, 10.0),
        ];
        assert!(flagged(&rows).is_empty());
    }

    #[test]
    fn policies_round_trip_through_text() {
        for policy in [
            OutlierPolicy::Keep,
            OutlierPolicy::Drop,
            OutlierPolicy::Warn,
        ] {
            assert_eq!(OutlierPolicy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(OutlierPolicy::parse("ignore"), None);
        assert_eq!(OutlierPolicy::default(), OutlierPolicy::Warn);
    }
}

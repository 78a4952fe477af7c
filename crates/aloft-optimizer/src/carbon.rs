//! The power model: how much energy a task uses on an offering, and how much CO2 that emits.
//!
//! Clouds publish no per-instance power figures, so this is an estimate in the manner of Cloud
//! Carbon Footprint's methodology (<https://www.cloudcarbonfootprint.org/docs/methodology>):
//!
//! ```text
//! kWh = runtime hours × nodes × PUE × (W/vCPU × vCPUs + W/GiB × memory + W(GPU) × GPUs) / 1000
//! gCO2 = kWh × the region's grid intensity (gCO2/kWh)
//! ```
//!
//! - **CPU**: 2.12 W per vCPU, CCF's average for AWS at 50 % utilization (min 0.74 W, max
//!   3.5 W: `min + 0.5 × (max − min)`).
//! - **Memory** (the per-node base): 0.392 W per GiB, CCF's memory coefficient
//!   (0.000392 kWh per GB-hour).
//! - **GPUs**: their board power (TDP) from the vendors' data sheets, by accelerator kind
//!   ([`gpu_watts`]), 300 W for a kind not listed. TDP assumes a busy GPU, which is what a
//!   task asking for one usually is.
//! - **PUE**: CCF's per-cloud figures (AWS 1.135, GCP 1.1, Azure 1.185), 1.135 elsewhere.
//! - **Egress** is not counted: network energy per GB is contested (estimates span two orders
//!   of magnitude) and small beside compute for the sizes tasks move.
//!
//! With a start time ([`crate::Options::start_time`]) the intensity is the catalog's hourly
//! figure for each hour the task runs, weighted by the time it runs in that hour
//! ([`mean_intensity_over`]); without one, the annual average.
//!
//! A region whose grid intensity the catalog does not know is counted at
//! [`UNKNOWN_INTENSITY_G_PER_KWH`], the world average, and the figure is flagged as estimated;
//! never as zero, which would make unknown regions look the cleanest.

use aloft_catalog::{Catalog, Offering, RegionId};

/// Watts per vCPU (CCF, AWS average at 50 % utilization).
pub const WATTS_PER_VCPU: f64 = 2.12;
/// Watts per GiB of memory (CCF's 0.000392 kWh per GB-hour).
pub const WATTS_PER_GIB: f64 = 0.392;
/// Watts of a GPU kind the table does not list.
pub const DEFAULT_GPU_WATTS: f64 = 300.0;
/// gCO2/kWh assumed where the catalog has no figure for the region: the world average
/// electricity intensity (Ember, Global Electricity Review 2024: 480 g in 2023; IEA: ~475 g).
pub const UNKNOWN_INTENSITY_G_PER_KWH: f64 = 475.0;

/// Board power (TDP) of one accelerator, in watts, by its canonical name.
pub fn gpu_watts(accelerator: &str) -> f64 {
    let name = accelerator.to_ascii_uppercase();
    // Longest names first, so `A100-80GB` is not taken for `A10`.
    const TABLE: &[(&str, f64)] = &[
        ("H200", 700.0),
        ("H100", 700.0),
        ("A100", 400.0),
        ("L40S", 350.0),
        ("L40", 300.0),
        ("A10G", 150.0),
        ("A10", 150.0),
        ("V100", 300.0),
        ("P100", 250.0),
        ("T4", 70.0),
        ("L4", 72.0),
        ("K80", 150.0),
        ("P4", 75.0),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map_or(DEFAULT_GPU_WATTS, |&(_, watts)| watts)
}

/// Power usage effectiveness of a cloud's data centres (CCF's figures).
pub fn pue(cloud: &str) -> f64 {
    match cloud {
        "gcp" => 1.1,
        "azure" => 1.185,
        _ => 1.135,
    }
}

/// What one node of an offering draws, in watts at the wall (PUE included).
pub(crate) fn node_watts(catalog: &Catalog, offering: &Offering) -> f64 {
    let instance_type = catalog.instance_type(offering.instance_type);
    let region = catalog.region(offering.region);
    let gpus = instance_type
        .accelerator
        .as_ref()
        .map_or(0.0, |(name, count)| gpu_watts(name) * count);
    let it = WATTS_PER_VCPU * instance_type.vcpus + WATTS_PER_GIB * instance_type.memory_gib + gpus;
    it * pue(&catalog.cloud(region.cloud).name)
}

/// The grid intensity used for an offering's region, and whether it is the default.
pub(crate) fn intensity(catalog: &Catalog, offering: &Offering) -> (f64, bool) {
    match catalog.region(offering.region).carbon_g_per_kwh {
        Some(known) => (known, false),
        None => (UNKNOWN_INTENSITY_G_PER_KWH, true),
    }
}

/// The grid intensity over a run in `region` from `start` (seconds since the Unix epoch) for
/// `seconds`: each hour's figure ([`Catalog::carbon_at`]: the specific hour, else the typical
/// day's, else the annual average) weighted by how much of the run falls in it. The power
/// draw is constant over a run, so this times the run's energy is its carbon. True when some
/// part of the run had no figure and was counted at [`UNKNOWN_INTENSITY_G_PER_KWH`].
pub(crate) fn mean_intensity_over(
    catalog: &Catalog,
    region: RegionId,
    start: f64,
    seconds: f64,
) -> (f64, bool) {
    const HOUR: f64 = 3600.0;
    const DAY_HOURS: i64 = 24;
    let known = |hour: i64| catalog.carbon_at(region, hour);
    let constant = |value: Option<f64>| match value {
        Some(known) => (known, false),
        None => (UNKNOWN_INTENSITY_G_PER_KWH, true),
    };
    let profile = catalog.region(region).carbon_hourly.as_ref();
    if profile.is_none() || seconds.is_nan() || seconds <= 0.0 {
        return constant(known(start.div_euclid(HOUR) as i64));
    }
    let profile = profile.expect("checked above");
    let end = start + seconds;
    let (mut weighted, mut estimated) = (0.0, false);
    let mut at = start;
    while at < end {
        let hour = at.div_euclid(HOUR) as i64;
        // A whole day with no specific hour in it: the typical day's (or the annual) mean, at
        // once, so a run of months costs months/24 steps, not hours.
        if at == hour as f64 * HOUR
            && hour.rem_euclid(DAY_HOURS) == 0
            && end - at >= 86_400.0
            && !profile.has_hours_in(hour, hour + DAY_HOURS)
        {
            let (mean, unknown) = constant(
                profile
                    .typical_day_mean()
                    .or(catalog.region(region).carbon_g_per_kwh),
            );
            weighted += mean * 86_400.0;
            estimated |= unknown;
            at += 86_400.0;
            continue;
        }
        let next = ((hour + 1) as f64 * HOUR).min(end);
        let (value, unknown) = constant(known(hour));
        weighted += value * (next - at);
        estimated |= unknown;
        at = next;
    }
    (weighted / seconds, estimated)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole days are counted at once; the result is the same as hour by hour.
    #[test]
    fn long_runs_weigh_every_hour() {
        let mut catalog = Catalog::default();
        catalog.clouds.push(aloft_catalog::Cloud {
            name: "c".into(),
            internet_egress_per_gb: 0.0,
            inter_region_egress_per_gb: 0.0,
        });
        let day: Vec<f64> = (0..24).map(|hour| 100.0 + 10.0 * f64::from(hour)).collect();
        let start_hour = 500_000;
        catalog.regions.push(aloft_catalog::Region {
            cloud: aloft_catalog::CloudId(0),
            name: "r".into(),
            carbon_g_per_kwh: Some(1000.0),
            carbon_hourly: Some(aloft_catalog::CarbonProfile {
                typical_day: day,
                hours: vec![(start_hour + 30, 0.0), (start_hour + 100, 5000.0)],
            }),
        });
        let region = RegionId(0);
        for (start, seconds) in [
            (start_hour as f64 * 3600.0 + 1800.0, 10.0 * 86_400.0 + 600.0),
            (start_hour as f64 * 3600.0, 3.0 * 86_400.0),
            (start_hour as f64 * 3600.0 + 7.0, 1200.0),
        ] {
            let mut sum = 0.0;
            let mut at = start;
            while at < start + seconds {
                let next = ((at / 3600.0).floor() + 1.0) * 3600.0;
                let next = next.min(start + seconds);
                sum += catalog
                    .carbon_at(region, (at / 3600.0).floor() as i64)
                    .unwrap()
                    * (next - at);
                at = next;
            }
            let (mean, estimated) = mean_intensity_over(&catalog, region, start, seconds);
            assert!(
                (mean - sum / seconds).abs() < 1e-9,
                "{mean} {}",
                sum / seconds
            );
            assert!(!estimated);
        }
    }

    #[test]
    fn gpu_kinds_by_name() {
        assert_eq!(gpu_watts("A100-80GB"), 400.0);
        assert_eq!(gpu_watts("A10G"), 150.0);
        assert_eq!(gpu_watts("A10"), 150.0);
        assert_eq!(gpu_watts("L4"), 72.0);
        assert_eq!(gpu_watts("T4"), 70.0);
        assert_eq!(gpu_watts("h100"), 700.0);
        assert_eq!(gpu_watts("MI300X"), DEFAULT_GPU_WATTS);
    }
}

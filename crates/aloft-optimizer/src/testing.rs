//! Test support: random catalogs and DAGs, and brute force.

use crate::problem::Problem;
use crate::score::Score;
use crate::synthetic::{self, Shape};
use aloft_catalog::{
    Catalog, Cloud, CloudId, InstanceType, InstanceTypeId, Offering, Region, RegionId, Zone, ZoneId,
};
use aloft_types::{
    Accelerator, Amount, Dag, DataInput, DataOutput, Duration, Infra, ResourceChoice, Resources,
    Size, Task,
};

pub(crate) use crate::synthetic::Rng;

/// A catalog of `clouds` clouds, each with `regions` regions of `zones` zones (0: no zones), and
/// a CPU type and a GPU type per cloud offered at random prices in random places.
pub(crate) fn random_catalog(
    rng: &mut Rng,
    clouds: usize,
    regions: usize,
    zones: usize,
) -> Catalog {
    let mut catalog = Catalog::default();
    for cloud_idx in 0..clouds {
        let cloud = CloudId(cloud_idx as u16);
        catalog.clouds.push(Cloud {
            name: format!("c{cloud_idx}"),
            internet_egress_per_gb: rng.float(0.05, 0.15),
            inter_region_egress_per_gb: rng.float(0.01, 0.04),
        });
        for type_idx in 0..2 {
            catalog.instance_types.push(InstanceType {
                cloud,
                name: format!("c{cloud_idx}.t{type_idx}"),
                vcpus: 8.0,
                memory_gib: 32.0,
                accelerator: (type_idx == 1).then(|| ("G1".to_owned(), 1.0)),
                arch: None,
            });
        }
        for region_idx in 0..regions {
            let region = RegionId(catalog.regions.len() as u32);
            catalog.regions.push(Region {
                cloud,
                name: format!("c{cloud_idx}-r{region_idx}"),
                // Coarse grid intensities, fixed by position (the random stream is unchanged):
                // ties and an unknown region are common.
                carbon_g_per_kwh: [None, Some(100.0), Some(300.0), Some(300.0), Some(700.0)]
                    [(cloud_idx * 3 + region_idx) % 5],
                carbon_hourly: None,
            });
            let zone_ids: Vec<Option<ZoneId>> = if zones == 0 {
                vec![None]
            } else {
                (0..zones)
                    .map(|zone_idx| {
                        catalog.zones.push(Zone {
                            region,
                            name: format!("c{cloud_idx}-r{region_idx}-z{zone_idx}"),
                        });
                        Some(ZoneId(catalog.zones.len() as u32 - 1))
                    })
                    .collect()
            };
            // Now and then a region also offers a zone-less place beside its zones (an import
            // with an empty zone column): the solver must not treat it as just another zone.
            let mut zone_ids = zone_ids;
            if zones > 0 && rng.chance(0.2) {
                zone_ids.push(None);
            }
            for zone in zone_ids {
                for type_idx in 0..2 {
                    if rng.chance(0.25) {
                        continue;
                    }
                    let base = if type_idx == 0 { 0.4 } else { 3.0 };
                    // Coarse prices make ties common, which is where solvers go wrong.
                    let price = (rng.float(base, base * 1.6) * 20.0).round() / 20.0;
                    catalog.offerings.push(Offering {
                        instance_type: InstanceTypeId((cloud_idx * 2 + type_idx) as u32),
                        region,
                        zone,
                        price: Some(price),
                        spot_price: rng
                            .chance(0.8)
                            .then(|| (price * 0.3 * 100.0).round() / 100.0),
                    });
                }
            }
        }
    }
    catalog
}

/// Adds per cloud a bigger CPU type (16 vCPUs, 64 GiB: more power) wherever the small one is
/// offered, at a price around the small one's: sometimes cheaper, so that within a place the
/// cheapest offering and the one drawing the least power differ.
pub(crate) fn add_big_cpu(rng: &mut Rng, catalog: &mut Catalog) {
    let small: Vec<Offering> = catalog
        .offerings
        .iter()
        .filter(|offering| offering.instance_type.0 % 2 == 0)
        .cloned()
        .collect();
    let first_big = catalog.instance_types.len() as u32;
    for cloud_idx in 0..catalog.clouds.len() {
        catalog.instance_types.push(InstanceType {
            cloud: CloudId(cloud_idx as u16),
            name: format!("c{cloud_idx}.big"),
            vcpus: 16.0,
            memory_gib: 64.0,
            accelerator: None,
            arch: None,
        });
    }
    for offering in small {
        if rng.chance(0.3) {
            continue;
        }
        let cloud = offering.instance_type.0 / 2;
        let price = offering
            .price
            .map(|price| (price * rng.float(0.7, 1.3) * 20.0).round() / 20.0);
        catalog.offerings.push(Offering {
            instance_type: InstanceTypeId(first_big + cloud),
            price,
            spot_price: offering
                .spot_price
                .map(|spot| (spot * rng.float(0.7, 1.3) * 100.0).round() / 100.0),
            ..offering
        });
    }
}

/// A random DAG of `tasks` tasks: each later task depends on each earlier one with probability
/// `edge_probability`; outputs, inputs, runtimes, spot and `any_of` GPU/CPU options vary.
pub(crate) fn random_dag(
    rng: &mut Rng,
    catalog: &Catalog,
    tasks: usize,
    edge_probability: f64,
) -> Dag {
    synthetic::dag(
        rng,
        tasks,
        Shape::Dense { edge_probability },
        |rng, task_idx| {
            let mut task = Task::new(format!("t{task_idx}"));
            let cpu = Resources {
                cpus: Some(Amount::at_least(4.0)),
                use_spot: rng.chance(0.3),
                estimated_runtime: Some(Duration::from_hours(rng.float(1.0, 8.0).round())),
                ..Resources::default()
            };
            let gpu = Resources {
                accelerator: Some(Accelerator {
                    name: "G1".to_owned(),
                    count: 1.0,
                }),
                estimated_runtime: Some(Duration::from_hours(rng.float(0.5, 2.0).round().max(0.5))),
                ..Resources::default()
            };
            task.resources = match rng.below(3) {
                0 => ResourceChoice::single(cpu),
                1 => ResourceChoice::single(gpu),
                _ => ResourceChoice {
                    options: vec![cpu, gpu],
                    ordered: false,
                },
            };
            if rng.chance(0.2) {
                let region = &catalog.regions[rng.below(catalog.regions.len())];
                task.inputs.push(DataInput {
                    path: "s3://bucket/data".to_owned(),
                    infra: Infra {
                        cloud: Some(catalog.cloud(region.cloud).name.clone()),
                        region: Some(region.name.clone()),
                        zone: None,
                    },
                    size: Size::from_gigabytes(rng.float(1.0, 200.0).round()),
                });
            }
            if rng.chance(0.8) {
                task.outputs = Some(DataOutput {
                    path: None,
                    size: Size::from_gigabytes(rng.float(1.0, 300.0).round()),
                });
            }
            task
        },
    )
}

/// Every assignment's score, by enumeration.
pub(crate) fn all_scores(problem: &Problem<'_>) -> Vec<(Score, Vec<usize>)> {
    let sizes: Vec<usize> = problem.candidates.iter().map(Vec::len).collect();
    let mut assignment = vec![0usize; sizes.len()];
    let mut scores = Vec::new();
    loop {
        scores.push((problem.score_of(&assignment), assignment.clone()));
        let mut digit = 0;
        loop {
            if digit == sizes.len() {
                return scores;
            }
            assignment[digit] += 1;
            if assignment[digit] < sizes[digit] {
                break;
            }
            assignment[digit] = 0;
            digit += 1;
        }
    }
}

/// Gives some regions of `catalog` an hourly carbon profile: a typical day of random figures,
/// some specific hours near `around` (seconds since the epoch), or both.
pub(crate) fn add_hourly_carbon(rng: &mut Rng, catalog: &mut Catalog, around: i64) {
    for region in &mut catalog.regions {
        let mut profile = aloft_catalog::CarbonProfile::default();
        if rng.chance(0.6) {
            profile.typical_day = (0..24).map(|_| rng.float(20.0, 800.0).round()).collect();
        }
        if rng.chance(0.5) {
            let first = around.div_euclid(3600) + rng.below(12) as i64;
            for hour in first..first + 1 + rng.below(20) as i64 {
                if rng.chance(0.7) {
                    profile.hours.push((hour, rng.float(0.0, 900.0).round()));
                }
            }
        }
        if !profile.typical_day.is_empty() || !profile.hours.is_empty() {
            region.carbon_hourly = Some(profile);
        }
    }
}

/// A small catalog holding every region the hard families use (`synthetic::HardFamily`), each
/// with one or two zones, a 16-vCPU type and T4, L4 and V100 types per cloud at coarse random
/// prices, so that small instances of those families can be checked against brute force.
pub(crate) fn hard_family_catalog(rng: &mut Rng) -> Catalog {
    let mut catalog = Catalog::default();
    for spec in synthetic::HARD_FAMILY_REGIONS {
        let (cloud_name, region_name) = spec.split_once('/').expect("cloud/region");
        let cloud = match catalog.clouds.iter().position(|c| c.name == cloud_name) {
            Some(idx) => CloudId(idx as u16),
            None => {
                catalog.clouds.push(Cloud {
                    name: cloud_name.to_owned(),
                    internet_egress_per_gb: rng.float(0.05, 0.12),
                    inter_region_egress_per_gb: rng.float(0.01, 0.04),
                });
                let cloud = CloudId(catalog.clouds.len() as u16 - 1);
                for (name, accelerator) in [
                    ("cpu16", None),
                    ("t4", Some("T4")),
                    ("l4", Some("L4")),
                    ("v100", Some("V100")),
                ] {
                    catalog.instance_types.push(InstanceType {
                        cloud,
                        name: format!("{cloud_name}.{name}"),
                        vcpus: 16.0,
                        memory_gib: 64.0,
                        accelerator: accelerator.map(|kind| (kind.to_owned(), 1.0)),
                        arch: None,
                    });
                }
                cloud
            }
        };
        let region = RegionId(catalog.regions.len() as u32);
        catalog.regions.push(Region {
            cloud,
            name: region_name.to_owned(),
            carbon_g_per_kwh: Some(300.0),
            carbon_hourly: None,
        });
        for zone_idx in 0..1 + rng.below(2) {
            catalog.zones.push(Zone {
                region,
                name: format!("{region_name}-{zone_idx}"),
            });
            let zone = ZoneId(catalog.zones.len() as u32 - 1);
            for (type_idx, instance_type) in catalog.instance_types.iter().enumerate() {
                if instance_type.cloud != cloud {
                    continue;
                }
                let base = if instance_type.accelerator.is_some() {
                    2.0
                } else {
                    0.6
                };
                catalog.offerings.push(Offering {
                    instance_type: InstanceTypeId(type_idx as u32),
                    region,
                    zone: Some(zone),
                    price: Some((rng.float(base, base * 1.3) * 20.0).round() / 20.0),
                    spot_price: None,
                });
            }
        }
    }
    catalog
}

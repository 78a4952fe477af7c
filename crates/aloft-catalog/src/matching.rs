//! Which catalog offers satisfy a task's resource requirements.
//!
//! This is the one place that decides "does this instance fit"; the optimizer and `aloft
//! catalog` both go through it.

use crate::model::{Catalog, InstanceType, Offering};
use aloft_types::{Amount, Resources};

/// What a task gets when it says nothing about cpus, memory, instance type or accelerators:
/// SkyPilot's default of 8+ vCPUs with 4 GiB per vCPU (m6i.2xlarge on AWS).
pub const DEFAULT_CPUS: Amount = Amount {
    value: 8.0,
    at_least: true,
};
pub const DEFAULT_MEMORY_GIB: Amount = Amount {
    value: 32.0,
    at_least: true,
};

impl Catalog {
    /// Whether an instance type satisfies the cloud, instance type, cpus, memory and
    /// accelerator requirements of `resources` (not region, zone or spot: see
    /// [`Catalog::offerings_for`]).
    pub fn admits(&self, instance_type: &InstanceType, resources: &Resources) -> bool {
        if let Some(cloud) = &resources.infra.cloud
            && self.cloud(instance_type.cloud).name != *cloud
        {
            return false;
        }
        if let Some(name) = &resources.instance_type
            && instance_type.name != *name
        {
            return false;
        }
        match (&resources.accelerator, &instance_type.accelerator) {
            (Some(wanted), Some((name, count))) => {
                if !wanted.name.eq_ignore_ascii_case(name) || (wanted.count - count).abs() > 1e-9 {
                    return false;
                }
            }
            (Some(_), None) => return false,
            // An instance type named explicitly may carry accelerators nobody asked for.
            (None, Some(_)) if resources.instance_type.is_none() => return false,
            (None, _) => {}
        }
        let unconstrained = resources.cpus.is_none()
            && resources.memory.is_none()
            && resources.instance_type.is_none()
            && resources.accelerator.is_none();
        let (cpus, memory) = if unconstrained {
            (Some(DEFAULT_CPUS), Some(DEFAULT_MEMORY_GIB))
        } else {
            (resources.cpus, resources.memory)
        };
        if let Some(cpus) = cpus
            && !cpus.admits(instance_type.vcpus)
        {
            return false;
        }
        if let Some(memory) = memory
            && !memory.admits(instance_type.memory_gib)
        {
            return false;
        }
        true
    }

    /// Every offering that satisfies `resources`, with its index in `offerings`: a fitting
    /// instance type, in the pinned region and zone if any, with a price for the requested
    /// market (spot or on demand).
    pub fn offerings_for<'a>(
        &'a self,
        resources: &'a Resources,
    ) -> impl Iterator<Item = (usize, &'a Offering)> + 'a {
        let admitted: Vec<bool> = self
            .instance_types
            .iter()
            .map(|instance_type| self.admits(instance_type, resources))
            .collect();
        self.offerings
            .iter()
            .enumerate()
            .filter(move |(_, offering)| {
                if !admitted[offering.instance_type.0 as usize] {
                    return false;
                }
                if offering.hourly_price(resources.use_spot).is_none() {
                    return false;
                }
                if let Some(region) = &resources.infra.region
                    && self.region(offering.region).name != *region
                {
                    return false;
                }
                if let Some(zone) = &resources.infra.zone {
                    match offering.zone {
                        Some(zone_id) if self.zone(zone_id).name == *zone => {}
                        _ => return false,
                    }
                }
                true
            })
    }
}

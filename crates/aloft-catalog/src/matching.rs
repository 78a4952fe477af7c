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

/// Google's spelling of a TPU v5e slice (`tpu-v5e-8`), which SkyPilot's catalog (and so aloft's)
/// calls `tpu-v5litepod-8`, after the TPU API's accelerator type `v5litepod-8`.
const TPU_V5E_PREFIX: &str = "tpu-v5e-";
const TPU_V5LITEPOD_PREFIX: &str = "tpu-v5litepod-";

/// Whether two accelerator names mean the same device: ASCII case ignored, and a TPU v5e slice
/// spelled either way (`tpu-v5e-8` is `tpu-v5litepod-8`).
pub fn same_accelerator(a: &str, b: &str) -> bool {
    let (a_prefix, a_rest) = tpu_v5e_parts(a);
    let (b_prefix, b_rest) = tpu_v5e_parts(b);
    a_prefix == b_prefix && a_rest.eq_ignore_ascii_case(b_rest)
}

/// `(true, "8")` for `tpu-v5e-8` or `tpu-v5litepod-8` (any case), `(false, name)` otherwise.
fn tpu_v5e_parts(name: &str) -> (bool, &str) {
    for prefix in [TPU_V5E_PREFIX, TPU_V5LITEPOD_PREFIX] {
        if let Some(head) = name.get(..prefix.len())
            && head.eq_ignore_ascii_case(prefix)
        {
            return (true, &name[prefix.len()..]);
        }
    }
    (false, name)
}

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
                if !same_accelerator(&wanted.name, name) || (wanted.count - count).abs() > 1e-9 {
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

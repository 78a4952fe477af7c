//! The local cloud's offers: what its instances are and what they "cost".
//!
//! The local cloud (network namespaces on this machine) looks like any other cloud to the
//! optimizer: one region, `local`, with two zones, instance types by size, and on-demand and
//! spot prices. The prices are nominal (nothing is billed), chosen so that plans read like a
//! cloud's: a bigger instance costs more.

use crate::builder::{Builder, TypeSpec};
use crate::model::{Catalog, Cloud, Offering};

/// The local cloud's region and zones (the provider's defaults).
pub const LOCAL_REGION: &str = "local";
pub const LOCAL_ZONES: &[&str] = &["local-a", "local-b"];

/// (name, vCPUs, memory GiB, on-demand $/h). No spot offers yet: the local provider declares
/// no spot capability until preemption is simulated.
const LOCAL_TYPES: &[(&str, f64, f64, f64)] = &[
    ("local.small", 2.0, 4.0, 0.010),
    ("local.medium", 4.0, 16.0, 0.020),
    ("local.large", 8.0, 32.0, 0.040),
    ("local.xlarge", 16.0, 64.0, 0.080),
];

impl Catalog {
    /// The local cloud's offers, as a catalog of one cloud (merge it into another).
    pub fn local_offers() -> Catalog {
        let mut builder = Builder::new();
        // Data never leaves the machine: moving it between "regions" costs nothing.
        let cloud = builder.cloud(Cloud {
            name: "local".to_owned(),
            internet_egress_per_gb: 0.0,
            inter_region_egress_per_gb: 0.0,
        });
        let region = builder.region(cloud, LOCAL_REGION);
        let zones: Vec<_> = LOCAL_ZONES
            .iter()
            .map(|zone| builder.zone(region, zone))
            .collect();
        for &(name, vcpus, memory_gib, price) in LOCAL_TYPES {
            let spec = TypeSpec {
                name,
                vcpus,
                memory_gib,
                accelerator: None,
                arch: Some("x86_64"),
            };
            let Ok(instance_type) = builder.instance_type(cloud, &spec) else {
                continue;
            };
            for &zone in &zones {
                builder.offering(Offering {
                    instance_type,
                    region,
                    zone: Some(zone),
                    price: Some(price),
                    spot_price: None,
                });
            }
        }
        builder.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aloft_types::{Amount, Resources};

    #[test]
    fn local_offers_are_a_consistent_one_cloud_catalog() {
        let catalog = Catalog::local_offers();
        assert!(
            catalog.consistency_problems().is_empty(),
            "{:?}",
            catalog.consistency_problems()
        );
        assert_eq!(catalog.clouds.len(), 1);
        assert_eq!(
            catalog.offerings.len(),
            LOCAL_TYPES.len() * LOCAL_ZONES.len()
        );
        let two_cpus = Resources {
            cpus: Some(Amount::at_least(2.0)),
            ..Resources::default()
        };
        assert_eq!(catalog.offerings_for(&two_cpus).count(), 8);
        // The default resources (8+ vCPUs, 32+ GiB) fit local.large and up.
        assert_eq!(catalog.offerings_for(&Resources::default()).count(), 4);
    }
}

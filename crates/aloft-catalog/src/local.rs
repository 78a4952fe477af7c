//! The local cloud's offers: what its instances are and what they "cost".
//!
//! The local cloud (network namespaces on this machine) looks like any other cloud to the
//! optimizer: one region, `local`, with two zones, instance types by size, and on-demand and
//! spot prices. The prices are nominal (nothing is billed), chosen so that plans read like a
//! cloud's: a bigger instance costs more.

use crate::builder::{Builder, TypeSpec};
use crate::model::{Catalog, Cloud, Offering};

/// The local cloud's one region.
pub const LOCAL_REGION: &str = "local";

/// An instance type the local cloud offers (its configuration says which).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalType {
    pub name: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    /// Nominal on-demand $/h.
    pub price: f64,
    /// Nominal spot $/h, or `None` when the type is not offered as spot. Spot instances of the
    /// local cloud are ordinary instances marked as spot; its `preempt` fault control makes them
    /// vanish the way a real cloud reclaims them.
    pub spot_price: Option<f64>,
}

impl Catalog {
    /// The local cloud's offers, as a catalog of one cloud (merge it into another): every type in
    /// every zone, on demand, and also as spot for the types that have a spot price.
    pub fn local_offers(zones: &[String], types: &[LocalType]) -> Catalog {
        let mut builder = Builder::new();
        // Data never leaves the machine: moving it between "regions" costs nothing.
        let cloud = builder.cloud(Cloud {
            name: "local".to_owned(),
            internet_egress_per_gb: 0.0,
            inter_region_egress_per_gb: 0.0,
        });
        let region = builder.region(cloud, LOCAL_REGION);
        let zones: Vec<_> = zones
            .iter()
            .map(|zone| builder.zone(region, zone))
            .collect();
        for ty in types {
            let spec = TypeSpec {
                name: &ty.name,
                vcpus: ty.vcpus,
                memory_gib: ty.memory_gib,
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
                    price: Some(ty.price),
                    spot_price: ty.spot_price,
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
        let ty = |name: &str, vcpus: f64, memory_gib: f64| LocalType {
            name: name.to_owned(),
            vcpus,
            memory_gib,
            price: vcpus / 200.0,
            spot_price: (vcpus < 16.0).then_some(vcpus / 600.0),
        };
        let types = [
            ty("s", 2.0, 4.0),
            ty("m", 4.0, 16.0),
            ty("l", 8.0, 32.0),
            ty("xl", 16.0, 64.0),
        ];
        let zones = ["a".to_owned(), "b".to_owned()];
        let catalog = Catalog::local_offers(&zones, &types);
        assert!(
            catalog.consistency_problems().is_empty(),
            "{:?}",
            catalog.consistency_problems()
        );
        assert_eq!(catalog.clouds.len(), 1);
        assert_eq!(catalog.offerings.len(), 8);
        let two_cpus = Resources {
            cpus: Some(Amount::at_least(2.0)),
            ..Resources::default()
        };
        assert_eq!(catalog.offerings_for(&two_cpus).count(), 8);
        // The default resources (8+ vCPUs, 32+ GiB) fit the two largest.
        assert_eq!(catalog.offerings_for(&Resources::default()).count(), 4);
        // Spot offers exactly where the type has a spot price, at that price.
        let spot: Vec<_> = catalog
            .offerings
            .iter()
            .filter_map(|offering| offering.hourly_price(true))
            .collect();
        assert_eq!(spot.len(), 6, "every type but xl, in both zones");
        assert!(spot.contains(&(2.0 / 600.0)), "{spot:?}");
    }
}

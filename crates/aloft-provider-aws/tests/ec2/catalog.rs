//! The bundled catalog's AWS rows against EC2's own lists (moto's copy of them): every instance
//! type aloft may plan must be one EC2 offers in that region, with the catalog's zones, size and
//! architecture.

use std::collections::{BTreeMap, BTreeSet};

use aloft_catalog::Catalog;
use aws_sdk_ec2::types::{Filter, LocationType};

use crate::harness::Moto;

/// Types the catalog rightly lists that moto's instance-type data lacks (so only the emulator is
/// wrong, not the catalog). Each entry says why.
///
/// The p3 family (V100 GPUs) is real and still sold, and SkyPilot's catalog, which the bundled
/// one is built from, lists it; moto 5.2's `instance_types.json` simply has no p3 entries, so
/// `DescribeInstanceTypeOfferings` can't confirm them. Checked by hand against AWS's instance
/// type pages instead.
const MISSING_FROM_MOTO: &[(&str, &str)] = &[
    ("p3.2xlarge", "p3 family absent from moto's data"),
    ("p3.8xlarge", "p3 family absent from moto's data"),
    ("p3.16xlarge", "p3 family absent from moto's data"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_rows_of_the_bundled_catalog_are_launchable() {
    let moto = Moto::start();
    let catalog = Catalog::bundled();
    let Some(aws) = catalog.clouds.iter().position(|cloud| cloud.name == "aws") else {
        panic!("the bundled catalog has no aws cloud");
    };

    // (region, zones from the catalog, types offered there).
    let mut by_region: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for offering in &catalog.offerings {
        let instance_type = catalog.instance_type(offering.instance_type);
        if usize::from(instance_type.cloud.0) != aws {
            continue;
        }
        let region = catalog.region(offering.region);
        let entry = by_region.entry(region.name.clone()).or_default();
        entry.1.insert(instance_type.name.clone());
    }
    for zone in &catalog.zones {
        let region = catalog.region(zone.region);
        if usize::from(region.cloud.0) == aws
            && let Some(entry) = by_region.get_mut(&region.name)
        {
            entry.0.insert(zone.name.clone());
        }
    }
    assert!(
        !by_region.is_empty(),
        "the bundled catalog has no AWS offerings"
    );

    let mut problems = Vec::new();
    let mut allowed = Vec::new();
    let mut checked = 0;
    for (region, (zones, types)) in &by_region {
        let ec2 = moto.ec2(region).await;

        let offered_zones: BTreeSet<String> = ec2
            .describe_availability_zones()
            .send()
            .await
            .unwrap_or_else(|err| panic!("DescribeAvailabilityZones in {region}: {err:?}"))
            .availability_zones()
            .iter()
            .filter_map(|zone| zone.zone_name().map(str::to_owned))
            .collect();
        for zone in zones.difference(&offered_zones) {
            problems.push(format!(
                "{region}: zone {zone} does not exist (EC2 has {offered_zones:?})"
            ));
        }

        let mut offered_types = BTreeSet::new();
        let mut pages = ec2
            .describe_instance_type_offerings()
            .location_type(LocationType::Region)
            .filters(Filter::builder().name("location").values(region).build())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.unwrap_or_else(|err| panic!("offerings in {region}: {err:?}"));
            for offering in page.instance_type_offerings() {
                if let Some(kind) = offering.instance_type() {
                    offered_types.insert(kind.as_str().to_owned());
                }
            }
        }

        for name in types {
            checked += 1;
            if let Some((_, why)) = MISSING_FROM_MOTO.iter().find(|(known, _)| known == name) {
                allowed.push(format!("{region}: {name} (allowed: {why})"));
                continue;
            }
            if !offered_types.contains(name) {
                problems.push(format!("{region}: {name} is not offered"));
                continue;
            }
            // Size and architecture as EC2 describes them.
            let described = ec2
                .describe_instance_types()
                .instance_types(aws_sdk_ec2::types::InstanceType::from(name.as_str()))
                .send()
                .await
                .unwrap_or_else(|err| panic!("DescribeInstanceTypes {name}: {err:?}"));
            let Some(info) = described.instance_types().first() else {
                problems.push(format!("{region}: {name} is not described"));
                continue;
            };
            let row = catalog
                .instance_types
                .iter()
                .find(|t| usize::from(t.cloud.0) == aws && &t.name == name)
                .expect("the type's catalog row");
            let vcpus = info
                .v_cpu_info()
                .and_then(|v| v.default_v_cpus())
                .unwrap_or(0);
            if f64::from(vcpus) != row.vcpus {
                problems.push(format!(
                    "{region}: {name} has {vcpus} vCPUs in EC2, {} in the catalog",
                    row.vcpus
                ));
            }
            let arches: Vec<&str> = info
                .processor_info()
                .map(|p| {
                    p.supported_architectures()
                        .iter()
                        .map(|a| a.as_str())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(arch) = &row.arch
                && !arches.contains(&arch.as_str())
            {
                problems.push(format!(
                    "{region}: {name} is {arch} in the catalog, {arches:?} in EC2"
                ));
            }
        }
    }
    println!("checked {checked} (region, type) pairs of the bundled catalog against EC2");
    for line in &allowed {
        println!("not checked: {line}");
    }
    assert!(
        problems.is_empty(),
        "the bundled catalog's AWS rows disagree with EC2:\n  {}",
        problems.join("\n  ")
    );
}

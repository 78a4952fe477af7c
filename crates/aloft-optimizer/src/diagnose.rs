//! Saying *which* constraint makes a task infeasible.
//!
//! When no offering survives, the requirements are re-applied one at a time, from the most
//! basic (does any instance type fit at all?) to the most specific (the price cap), and the
//! first one that empties the set is the one reported, with what *would* be possible.

use crate::Options;
use crate::problem::is_blocked;
use aloft_catalog::{Catalog, Offering};
use aloft_types::{Infra, Resources, Task};
use std::collections::BTreeSet;

pub(crate) fn why_infeasible(catalog: &Catalog, task: &Task, options: &Options) -> String {
    let reasons: Vec<String> = task
        .resources
        .options
        .iter()
        .map(|resources| why_option_infeasible(catalog, task, resources, options))
        .collect();
    match reasons.as_slice() {
        [only] => only.clone(),
        _ => {
            let listed: Vec<String> = reasons
                .iter()
                .enumerate()
                .map(|(idx, reason)| format!("option {}: {reason}", idx + 1))
                .collect();
            format!(
                "none of the {} resource options is feasible; {}",
                reasons.len(),
                listed.join("; ")
            )
        }
    }
}

fn why_option_infeasible(
    catalog: &Catalog,
    task: &Task,
    resources: &Resources,
    options: &Options,
) -> String {
    let wanted = describe(resources);
    // 1. Anything at all that fits, anywhere, ignoring the pinned place and the market.
    let anywhere = Resources {
        infra: Infra::any(),
        use_spot: false,
        ..resources.clone()
    };
    let fitting: Vec<&Offering> = catalog
        .offerings
        .iter()
        .filter(|offering| catalog.admits(catalog.instance_type(offering.instance_type), &anywhere))
        .collect();
    if fitting.is_empty() {
        if let Some(name) = &resources.instance_type
            && !catalog.instance_types.iter().any(|it| it.name == *name)
        {
            return match closest_instance_type(catalog, name) {
                Some(close) => {
                    format!("instance type `{name}` is not in the catalog; did you mean `{close}`?")
                }
                None => format!("instance type `{name}` is not in the catalog"),
            };
        }
        // A TPU slice aloft cannot model gets the reason, not just "not in the catalog".
        if let Some(reason) = resources.accelerator.as_ref().and_then(|accelerator| {
            aloft_catalog::unsupported_accelerator_reason(&accelerator.name)
        }) {
            return format!("no instance type in the catalog has {wanted}: {reason}");
        }
        return format!("no instance type in the catalog has {wanted}");
    }
    // 2. The pinned cloud, region and zone, one level at a time.
    let infra = &resources.infra;
    let clouds_of = |offerings: &[&Offering]| -> BTreeSet<String> {
        offerings
            .iter()
            .map(|o| catalog.cloud(catalog.region(o.region).cloud).name.clone())
            .collect()
    };
    let mut here = fitting;
    if let Some(cloud) = &infra.cloud {
        let on_cloud: Vec<&Offering> = here
            .iter()
            .copied()
            .filter(|o| catalog.cloud(catalog.region(o.region).cloud).name == *cloud)
            .collect();
        if on_cloud.is_empty() {
            return format!(
                "{wanted} is not offered on {cloud} (it is on: {})",
                join(clouds_of(&here), 6)
            );
        }
        here = on_cloud;
    }
    if let Some(region) = &infra.region {
        let in_region: Vec<&Offering> = here
            .iter()
            .copied()
            .filter(|o| catalog.region(o.region).name == *region)
            .collect();
        if in_region.is_empty() {
            let regions: BTreeSet<String> = here
                .iter()
                .map(|o| catalog.region(o.region).name.clone())
                .collect();
            return format!(
                "{wanted} is not offered in region {region} (it is in: {})",
                join(regions, 6)
            );
        }
        here = in_region;
    }
    if let Some(zone) = &infra.zone {
        let in_zone: Vec<&Offering> = here
            .iter()
            .copied()
            .filter(|o| o.zone.is_some_and(|z| catalog.zone(z).name == *zone))
            .collect();
        if in_zone.is_empty() {
            let zones: BTreeSet<String> = here
                .iter()
                .filter_map(|o| o.zone.map(|z| catalog.zone(z).name.clone()))
                .collect();
            return format!(
                "{wanted} is not offered in zone {zone} (it is in: {})",
                join(zones, 6)
            );
        }
        here = in_zone;
    }
    // 3. The market.
    let market = if resources.use_spot {
        "spot"
    } else {
        "on-demand"
    };
    let priced: Vec<&Offering> = here
        .iter()
        .copied()
        .filter(|o| o.hourly_price(resources.use_spot).is_some())
        .collect();
    if priced.is_empty() {
        return format!("{wanted} has no {market} offer in {}", place_name(infra));
    }
    // 4. The blocklist (failover) and the price cap.
    let unblocked: Vec<&Offering> = priced
        .iter()
        .copied()
        .filter(|o| !is_blocked(catalog, o, &options.blocked))
        .collect();
    if unblocked.is_empty() {
        let blocked: Vec<String> = options.blocked.iter().map(ToString::to_string).collect();
        return format!(
            "every place offering {wanted} is blocked (blocked: {})",
            blocked.join(", ")
        );
    }
    let nodes = f64::from(task.num_nodes.max(1));
    let cheapest = unblocked
        .iter()
        .filter_map(|o| o.hourly_price(resources.use_spot))
        .fold(f64::INFINITY, f64::min)
        * nodes;
    match options.max_hourly_price {
        Some(cap) => format!(
            "the cheapest {market} offer for {wanted} costs ${cheapest:.4}/h, over the price cap \
             of ${cap:.4}/h"
        ),
        None => format!("{wanted} is not feasible"),
    }
}

/// `8+ vCPUs, 32+ GiB memory, V100:1` and so on.
fn describe(resources: &Resources) -> String {
    let mut parts = Vec::new();
    if let Some(name) = &resources.instance_type {
        parts.push(format!("instance type {name}"));
    }
    if let Some(accelerator) = &resources.accelerator {
        parts.push(format!(
            "accelerators {}:{}",
            accelerator.name, accelerator.count
        ));
    }
    if let Some(cpus) = resources.cpus {
        parts.push(format!("{cpus} vCPUs"));
    }
    if let Some(memory) = resources.memory {
        parts.push(format!("{memory} GiB memory"));
    }
    if parts.is_empty() {
        parts.push(format!(
            "the default {} vCPUs, {} GiB memory",
            aloft_catalog::DEFAULT_CPUS,
            aloft_catalog::DEFAULT_MEMORY_GIB
        ));
    }
    parts.join(", ")
}

fn place_name(infra: &Infra) -> String {
    if infra.is_any() {
        "any cloud".to_owned()
    } else {
        infra.to_string()
    }
}

fn join(items: BTreeSet<String>, most: usize) -> String {
    let total = items.len();
    let mut shown: Vec<String> = items.into_iter().take(most).collect();
    if total > most {
        shown.push(format!("and {} more", total - most));
    }
    shown.join(", ")
}

/// The catalog instance type closest in spelling to `name`, if any is close.
fn closest_instance_type<'c>(catalog: &'c Catalog, name: &str) -> Option<&'c str> {
    aloft_types::suggest::suggest(
        name,
        catalog.instance_types.iter().map(|it| it.name.as_str()),
    )
}

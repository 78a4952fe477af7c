//! Combining catalog sources, and checking that a catalog's ids hang together.
//!
//! Sources are whole clouds: an import of SkyPilot's GCP file knows GCP better than the bundled
//! snapshot, but knows nothing of AWS. So merging replaces clouds wholesale rather than mixing
//! rows, which keeps every cloud's data from one source and one date. The one exception is
//! default images: SkyPilot's `images.csv` is optional, so a replacing cloud that brings no images
//! at all keeps the replaced cloud's (each image row names its own source).

use crate::builder::{copy_cloud, copy_images_by_name};
use crate::model::{Catalog, CloudId};

impl Catalog {
    /// Merges `other` into `self`: each cloud of `other` replaces the same-named cloud of
    /// `self` (its egress rates, regions, zones, instance types, offerings and default images)
    /// and keeps that cloud's position in [`Catalog::clouds`]; clouds only `self` has are kept;
    /// clouds only `other` has are appended. Images are the exception to "wholesale": if
    /// `other`'s cloud has no images at all (an import without `images.csv`), `self`'s images
    /// of that cloud are kept for the regions `other` also has.
    ///
    /// Ids issued by `self` before the merge are invalid after it. Ids of regions, zones,
    /// instance types and offerings issued by `other` stay valid: its tables are reused in
    /// place (so merging a large import costs next to nothing) and `self`'s kept rows are
    /// appended after them.
    pub fn merge(&mut self, other: Catalog) {
        let base = std::mem::take(self);
        let mut merged = other;
        // Final cloud order: `base`'s, with replacements in place, then `other`'s extras.
        let mut order: Vec<String> = base.clouds.iter().map(|cloud| cloud.name.clone()).collect();
        for cloud in &merged.clouds {
            if base.find_cloud(&cloud.name).is_none() {
                order.push(cloud.name.clone());
            }
        }
        for (idx, cloud) in base.clouds.iter().enumerate() {
            let base_id = CloudId(idx as u16);
            match merged.find_cloud(&cloud.name) {
                None => copy_cloud(&mut merged, &base, base_id),
                Some(merged_id) => {
                    if !merged.images.iter().any(|image| image.cloud == merged_id) {
                        copy_images_by_name(&mut merged, merged_id, &base, base_id);
                    }
                }
            }
        }
        // Put the clouds in order; only cloud ids (in regions, instance types and images) change.
        let position = |name: &str| order.iter().position(|known| known == name);
        let new_ids: Vec<CloudId> = merged
            .clouds
            .iter()
            .map(|cloud| CloudId(position(&cloud.name).expect("every cloud is ordered") as u16))
            .collect();
        merged.clouds.sort_by_key(|cloud| position(&cloud.name));
        for region in &mut merged.regions {
            region.cloud = new_ids[usize::from(region.cloud.0)];
        }
        for instance_type in &mut merged.instance_types {
            instance_type.cloud = new_ids[usize::from(instance_type.cloud.0)];
        }
        for image in &mut merged.images {
            image.cloud = new_ids[usize::from(image.cloud.0)];
        }
        *self = merged;
    }

    /// Keeps only the clouds named in `names`, each with its regions, zones, instance types,
    /// offerings and images (to plan over the clouds a user has enabled). Ids issued before are
    /// invalid after.
    pub fn retain_clouds(&mut self, names: &[String]) {
        let base = std::mem::take(self);
        for (idx, cloud) in base.clouds.iter().enumerate() {
            if names.contains(&cloud.name) {
                copy_cloud(self, &base, CloudId(idx as u16));
            }
        }
    }

    /// Every way this catalog breaks its own invariants: ids out of range, a zone's region in
    /// another cloud, prices that are not finite and positive, duplicate names. Empty when
    /// consistent. Sources are tested against this; it is cheap enough to call in debug checks.
    pub fn consistency_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let n_clouds = self.clouds.len();
        for (idx, cloud) in self.clouds.iter().enumerate() {
            for (what, rate) in [
                ("internet egress", cloud.internet_egress_per_gb),
                ("inter-region egress", cloud.inter_region_egress_per_gb),
            ] {
                if !rate.is_finite() || rate < 0.0 {
                    problems.push(format!("cloud {} has {what} rate {rate}", cloud.name));
                }
            }
            if self.clouds[..idx]
                .iter()
                .any(|earlier| earlier.name == cloud.name)
            {
                problems.push(format!("cloud {} is listed twice", cloud.name));
            }
        }
        for region in &self.regions {
            if usize::from(region.cloud.0) >= n_clouds {
                problems.push(format!(
                    "region {} has cloud id {}",
                    region.name, region.cloud.0
                ));
            }
            if let Some(carbon) = region.carbon_g_per_kwh
                && (!carbon.is_finite() || carbon < 0.0)
            {
                problems.push(format!("region {} has carbon {carbon}", region.name));
            }
            if let Some(profile) = &region.carbon_hourly {
                let values = profile
                    .typical_day
                    .iter()
                    .chain(profile.hours.iter().map(|(_, value)| value));
                if !matches!(profile.typical_day.len(), 0 | 24)
                    || values
                        .clone()
                        .any(|value| !value.is_finite() || *value < 0.0)
                    || !profile.hours.is_sorted_by_key(|&(hour, _)| hour)
                {
                    problems.push(format!(
                        "region {} has a bad hourly carbon profile",
                        region.name
                    ));
                }
            }
        }
        for zone in &self.zones {
            if zone.region.0 as usize >= self.regions.len() {
                problems.push(format!(
                    "zone {} has region id {}",
                    zone.name, zone.region.0
                ));
            }
        }
        for instance_type in &self.instance_types {
            if usize::from(instance_type.cloud.0) >= n_clouds {
                problems.push(format!(
                    "instance type {} has a bad cloud id",
                    instance_type.name
                ));
            }
            if !(instance_type.vcpus.is_finite() && instance_type.memory_gib.is_finite()) {
                problems.push(format!(
                    "instance type {} has non-finite specs",
                    instance_type.name
                ));
            }
        }
        for (idx, offering) in self.offerings.iter().enumerate() {
            let Some(instance_type) = self.instance_types.get(offering.instance_type.0 as usize)
            else {
                problems.push(format!("offering {idx} has a bad instance type id"));
                continue;
            };
            let Some(region) = self.regions.get(offering.region.0 as usize) else {
                problems.push(format!("offering {idx} has a bad region id"));
                continue;
            };
            if region.cloud != instance_type.cloud {
                problems.push(format!(
                    "offering {idx} of {} is in region {} of another cloud",
                    instance_type.name, region.name
                ));
            }
            if let Some(zone) = offering.zone {
                match self.zones.get(zone.0 as usize) {
                    Some(zone) if zone.region == offering.region => {}
                    _ => problems.push(format!(
                        "offering {idx} of {} has a zone outside region {}",
                        instance_type.name, region.name
                    )),
                }
            }
            if offering.price.is_none() && offering.spot_price.is_none() {
                problems.push(format!(
                    "offering {idx} of {} has no price",
                    instance_type.name
                ));
            }
            for price in [offering.price, offering.spot_price].into_iter().flatten() {
                if !price.is_finite() || price <= 0.0 {
                    problems.push(format!(
                        "offering {idx} of {} has price {price}",
                        instance_type.name
                    ));
                }
            }
        }
        let mut image_keys = std::collections::HashSet::new();
        for (idx, image) in self.images.iter().enumerate() {
            if usize::from(image.cloud.0) >= n_clouds {
                problems.push(format!(
                    "image {idx} ({}) has a bad cloud id",
                    image.image_id
                ));
                continue;
            }
            if let Some(region) = image.region {
                match self.regions.get(region.0 as usize) {
                    Some(region) if region.cloud == image.cloud => {}
                    _ => problems.push(format!(
                        "image {idx} ({}) has a region outside its cloud",
                        image.image_id
                    )),
                }
            }
            if image.image_id.is_empty() {
                problems.push(format!("image {idx} has no image id"));
            }
            if !image_keys.insert((image.cloud, image.region, image.flavor)) {
                problems.push(format!(
                    "image {idx} ({}) is a second {} image for its place",
                    image.image_id, image.flavor
                ));
            }
        }
        problems
    }
}

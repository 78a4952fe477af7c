//! Default machine images: which image an instance boots when the task names none.
//!
//! A provider needs an image to launch anything, and the right one depends on the cloud, the
//! region (AWS images are per region) and whether the instance has accelerators (the GPU image
//! carries drivers and CUDA). The catalog holds one row per (cloud, region, flavor) so that
//! choice is data, from the same sources as prices: the bundled `data/images.csv` and SkyPilot's
//! `<cloud>/images.csv`.
//!
//! # Lookup rule
//!
//! [`Catalog::default_image`] takes the image of the region itself, else the cloud-wide one
//! (`region: None`, as GCP's global images are). There is **no fallback between flavors**: a GPU
//! instance booted from the CPU image has no GPU drivers and would fail later and obscurely, so
//! a region without a GPU image answers `None` and the caller must ask for the task's
//! `image_id` (SkyPilot likewise uses its GPU image for every instance with accelerators).
//!
//! # SkyPilot tags
//!
//! SkyPilot names images by tag. The ones used as defaults are Ubuntu images:
//! `skypilot:[custom-]cpu-ubuntu[-N...]` and `skypilot:[custom-]gpu-ubuntu[-N...]`, where each
//! `-N` is a run of digits (an OS version such as `2204` or a build date such as `250813`). Any
//! other tag (Debian, CUDA-specific, arm64, COS images) is not a default and is skipped.

use crate::model::{Catalog, ImageFlavor, ImageRow, InstanceType};

/// The flavor a SkyPilot image tag stands for, or `None` if the tag is not a default image's
/// (module docs, "SkyPilot tags").
pub(crate) fn flavor_of_skypilot_tag(tag: &str) -> Option<ImageFlavor> {
    let rest = tag.strip_prefix("skypilot:")?;
    let rest = rest.strip_prefix("custom-").unwrap_or(rest);
    let (flavor, rest) = if let Some(rest) = rest.strip_prefix("cpu-ubuntu") {
        (ImageFlavor::Cpu, rest)
    } else if let Some(rest) = rest.strip_prefix("gpu-ubuntu") {
        (ImageFlavor::Gpu, rest)
    } else {
        return None;
    };
    if rest.is_empty() {
        return Some(flavor);
    }
    let suffix = rest.strip_prefix('-')?;
    suffix
        .split('-')
        .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
        .then_some(flavor)
}

impl InstanceType {
    /// The image flavor this instance type boots: GPU if it has accelerators.
    pub fn image_flavor(&self) -> ImageFlavor {
        if self.accelerator.is_some() {
            ImageFlavor::Gpu
        } else {
            ImageFlavor::Cpu
        }
    }
}

impl Catalog {
    /// The image an instance in `region` of `cloud` boots by default (module docs, "Lookup
    /// rule"): the region's own image of that flavor, else the cloud-wide one; `None` if the
    /// catalog knows neither (or not the cloud or region). No fallback from GPU to CPU.
    pub fn default_image(
        &self,
        cloud: &str,
        region: &str,
        flavor: ImageFlavor,
    ) -> Option<&ImageRow> {
        let cloud = self.find_cloud(cloud)?;
        let region = self.find_region(cloud, region)?;
        let of_flavor = || {
            self.images
                .iter()
                .filter(move |image| image.cloud == cloud && image.flavor == flavor)
        };
        of_flavor()
            .find(|image| image.region == Some(region))
            .or_else(|| of_flavor().find(|image| image.region.is_none()))
    }

    /// The image flavor for the instance type called `instance_type` in `cloud`: GPU if it has
    /// accelerators. `None` if the catalog does not know the type, or if the name is listed
    /// both with and without accelerators (GCP host VMs such as `n1-highmem-8`, which take
    /// attached GPUs); then the plan's accelerator decides, as [`InstanceType::image_flavor`]
    /// does.
    pub fn image_flavor(&self, cloud: &str, instance_type: &str) -> Option<ImageFlavor> {
        let cloud = self.find_cloud(cloud)?;
        let mut flavors = self
            .instance_types
            .iter()
            .filter(|known| known.cloud == cloud && known.name == instance_type)
            .map(InstanceType::image_flavor);
        let first = flavors.next()?;
        flavors.all(|flavor| flavor == first).then_some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skypilot_tags() {
        let cases = [
            ("skypilot:custom-cpu-ubuntu", Some(ImageFlavor::Cpu)),
            ("skypilot:custom-gpu-ubuntu", Some(ImageFlavor::Gpu)),
            ("skypilot:gpu-ubuntu-2204", Some(ImageFlavor::Gpu)),
            ("skypilot:cpu-ubuntu-2004", Some(ImageFlavor::Cpu)),
            (
                "skypilot:custom-cpu-ubuntu-2204-250813",
                Some(ImageFlavor::Cpu),
            ),
            ("skypilot:custom-gpu-ubuntu-2204-cuda13", None),
            ("skypilot:custom-cpu-ubuntu-2204-arm64", None),
            ("skypilot:custom-cpu-ubuntu-", None),
            ("skypilot:custom-cpu-ubuntu2204", None),
            ("skypilot:gpu-debian-11", None),
            ("skypilot:k80-debian-10", None),
            ("custom-cpu-ubuntu", None),
            ("", None),
        ];
        for (tag, expected) in cases {
            assert_eq!(flavor_of_skypilot_tag(tag), expected, "{tag}");
        }
    }
}

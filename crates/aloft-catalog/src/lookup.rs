//! Finding clouds, regions and zones by name, and turning a spec's [`Infra`] into a [`Place`]
//! with errors that say what exists.
//!
//! Names match exactly (clouds ignore ASCII case, as `Infra::parse` lowercases them); a near
//! miss is offered as "did you mean", so a typo in a spec is a one-line fix rather than a
//! silent "no offering".

use crate::model::{Catalog, CloudId, Place, Region, RegionId, Zone, ZoneId};
use aloft_types::Infra;

/// A name in an [`Infra`] that the catalog does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogLookupError {
    #[error(
        "infra `{infra}` names no cloud, and no region or zone of one cloud alone implies it; a place needs a cloud"
    )]
    NoCloud { infra: String },
    #[error("unknown cloud `{name}`{}", hint(.suggestion, .known))]
    UnknownCloud {
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
    #[error("unknown region `{name}` in cloud {cloud}{}", hint(.suggestion, .known))]
    UnknownRegion {
        cloud: String,
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
    #[error("zone `{name}` is in {cloud} region {actual_region}, not in {region}")]
    ZoneInOtherRegion {
        cloud: String,
        region: String,
        name: String,
        actual_region: String,
    },
    #[error("unknown zone `{name}` in {cloud} region {region}{}", hint(.suggestion, .known))]
    UnknownZone {
        cloud: String,
        region: String,
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
}

/// `; did you mean `x`? known: a, b, c (and 40 more)`.
fn hint(suggestion: &Option<String>, known: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut text = String::new();
    if let Some(suggestion) = suggestion {
        text.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    if known.is_empty() {
        text.push_str(" (none are known)");
        return text;
    }
    text.push_str(if suggestion.is_some() {
        " Known: "
    } else {
        "; known: "
    });
    text.push_str(
        &known
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if known.len() > SHOWN {
        text.push_str(&format!(" (and {} more)", known.len() - SHOWN));
    }
    text
}

/// The known name closest to `wanted`, if close enough to be a plausible typo: for "did you
/// mean" hints. The rule is the spec parser's (`aloft_types::suggest`), so hints agree.
pub fn did_you_mean<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    aloft_types::suggest::suggest(wanted, known).map(str::to_owned)
}

impl Catalog {
    /// The cloud called `name` (ASCII case ignored).
    pub fn find_cloud(&self, name: &str) -> Option<CloudId> {
        self.clouds
            .iter()
            .position(|cloud| cloud.name.eq_ignore_ascii_case(name))
            .map(|idx| CloudId(idx as u16))
    }

    /// The region of `cloud` called exactly `name`.
    pub fn find_region(&self, cloud: CloudId, name: &str) -> Option<RegionId> {
        self.regions
            .iter()
            .position(|region| region.cloud == cloud && region.name == name)
            .map(|idx| RegionId(idx as u32))
    }

    /// The zone of `region` called exactly `name`.
    pub fn find_zone(&self, region: RegionId, name: &str) -> Option<ZoneId> {
        self.zones
            .iter()
            .position(|zone| zone.region == region && zone.name == name)
            .map(|idx| ZoneId(idx as u32))
    }

    /// An [`Infra`] with no cloud (`*/us-east-1`, `*/*/us-east-1a`): the one cloud whose
    /// region (or zone) has that name.
    fn resolve_without_cloud(&self, infra: &Infra) -> Result<Place, CatalogLookupError> {
        let clouds: Vec<String> = match (&infra.region, &infra.zone) {
            (Some(region), _) => self
                .regions
                .iter()
                .filter(|candidate| candidate.name == *region)
                .map(|candidate| self.cloud(candidate.cloud).name.clone())
                .collect(),
            (None, Some(zone)) => self
                .zones
                .iter()
                .filter(|candidate| candidate.name == *zone)
                .map(|candidate| self.cloud(self.region(candidate.region).cloud).name.clone())
                .collect(),
            (None, None) => Vec::new(),
        };
        let mut clouds = clouds;
        clouds.sort_unstable();
        clouds.dedup();
        match clouds.as_slice() {
            [cloud] => self.resolve_infra(&Infra {
                cloud: Some(cloud.clone()),
                ..infra.clone()
            }),
            _ => Err(CatalogLookupError::NoCloud {
                infra: infra.to_string(),
            }),
        }
    }

    /// The regions of a cloud, in catalog order.
    pub fn regions_of(&self, cloud: CloudId) -> impl Iterator<Item = (RegionId, &Region)> + '_ {
        self.regions
            .iter()
            .enumerate()
            .filter(move |(_, region)| region.cloud == cloud)
            .map(|(idx, region)| (RegionId(idx as u32), region))
    }

    /// The zones of a region, in catalog order (none for clouds without zones).
    pub fn zones_of(&self, region: RegionId) -> impl Iterator<Item = (ZoneId, &Zone)> + '_ {
        self.zones
            .iter()
            .enumerate()
            .filter(move |(_, zone)| zone.region == region)
            .map(|(idx, zone)| (ZoneId(idx as u32), zone))
    }

    /// The place an [`Infra`] pins, or an error naming the unknown part with what is known.
    ///
    /// SkyPilot's wildcards leave out what the rest implies: `*/us-east-1` names the one cloud
    /// with a region of that name, `gcp/*/us-central1-a` the region holding that zone. Where
    /// more than one place fits, or none does, that is the error.
    pub fn resolve_infra(&self, infra: &Infra) -> Result<Place, CatalogLookupError> {
        let Some(cloud_name) = &infra.cloud else {
            return self.resolve_without_cloud(infra);
        };
        if infra.region.is_none()
            && let Some(zone_name) = &infra.zone
            && let Some(cloud) = self.find_cloud(cloud_name)
        {
            // The zone implies its region.
            let regions: Vec<String> = self
                .zones
                .iter()
                .filter(|zone| zone.name == *zone_name && self.region(zone.region).cloud == cloud)
                .map(|zone| self.region(zone.region).name.clone())
                .collect();
            if let [region] = regions.as_slice() {
                return self.resolve_infra(&Infra {
                    region: Some(region.clone()),
                    ..infra.clone()
                });
            }
        }
        let Some(cloud) = self.find_cloud(cloud_name) else {
            let known: Vec<String> = self.clouds.iter().map(|cloud| cloud.name.clone()).collect();
            return Err(CatalogLookupError::UnknownCloud {
                name: cloud_name.clone(),
                suggestion: did_you_mean(cloud_name, known.iter().map(String::as_str)),
                known,
            });
        };
        let cloud_display = self.cloud(cloud).name.clone();
        let Some(region_name) = &infra.region else {
            return Ok(Place {
                cloud,
                region: None,
                zone: None,
            });
        };
        let Some(region) = self.find_region(cloud, region_name) else {
            let known: Vec<String> = self
                .regions_of(cloud)
                .map(|(_, region)| region.name.clone())
                .collect();
            return Err(CatalogLookupError::UnknownRegion {
                cloud: cloud_display,
                name: region_name.clone(),
                suggestion: did_you_mean(region_name, known.iter().map(String::as_str)),
                known,
            });
        };
        let Some(zone_name) = &infra.zone else {
            return Ok(Place {
                cloud,
                region: Some(region),
                zone: None,
            });
        };
        if let Some(zone) = self.find_zone(region, zone_name) {
            return Ok(Place {
                cloud,
                region: Some(region),
                zone: Some(zone),
            });
        }
        let elsewhere = self
            .zones
            .iter()
            .find(|zone| zone.name == *zone_name && self.region(zone.region).cloud == cloud);
        if let Some(zone) = elsewhere {
            return Err(CatalogLookupError::ZoneInOtherRegion {
                cloud: cloud_display,
                region: region_name.clone(),
                name: zone_name.clone(),
                actual_region: self.region(zone.region).name.clone(),
            });
        }
        let known: Vec<String> = self
            .zones_of(region)
            .map(|(_, zone)| zone.name.clone())
            .collect();
        Err(CatalogLookupError::UnknownZone {
            cloud: cloud_display,
            region: region_name.clone(),
            name: zone_name.clone(),
            suggestion: did_you_mean(zone_name, known.iter().map(String::as_str)),
            known,
        })
    }
}

#[cfg(test)]
mod wildcard_tests {
    use super::*;

    #[test]
    fn a_wildcard_infra_resolves_to_the_place_its_region_or_zone_implies() {
        let catalog = Catalog::bundled();
        let place = catalog
            .resolve_infra(&Infra::parse("*/us-east-1").unwrap())
            .unwrap();
        assert_eq!(catalog.cloud(place.cloud).name, "aws");
        assert_eq!(catalog.region(place.region.unwrap()).name, "us-east-1");
        let zone = catalog
            .resolve_infra(&Infra::parse("aws/*/us-east-1a").unwrap())
            .unwrap();
        assert_eq!(catalog.region(zone.region.unwrap()).name, "us-east-1");
        assert_eq!(catalog.zone(zone.zone.unwrap()).name, "us-east-1a");
        let anywhere = catalog.resolve_infra(&Infra::parse("*/*/us-east-1a").unwrap());
        assert!(anywhere.is_ok(), "{anywhere:?}");
        let nowhere = catalog.resolve_infra(&Infra::parse("*/atlantis-1").unwrap());
        assert!(
            matches!(nowhere, Err(CatalogLookupError::NoCloud { .. })),
            "{nowhere:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let known = ["us-east-1", "us-west-2", "eu-west-1"];
        assert_eq!(
            did_you_mean("us-east1", known).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            did_you_mean("US-WEST-2", known).as_deref(),
            Some("us-west-2")
        );
        assert_eq!(did_you_mean("mars-north-7", known), None);
    }
}

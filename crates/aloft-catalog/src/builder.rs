//! Assembling a [`Catalog`] row by row: interning clouds, regions, zones and instance types so
//! each source (bundled tables, SkyPilot CSVs, merges) only says what it has, never which index
//! it goes to.

use crate::carbon::CarbonProfile;
use crate::model::{
    Catalog, Cloud, CloudId, ImageFlavor, ImageRow, InstanceType, InstanceTypeId, Offering, Region,
    RegionId, Zone, ZoneId,
};
use std::collections::{HashMap, HashSet};

/// What a source says about an instance type.
#[derive(Clone, Debug)]
pub(crate) struct TypeSpec<'a> {
    pub name: &'a str,
    pub vcpus: f64,
    pub memory_gib: f64,
    pub accelerator: Option<(&'a str, f64)>,
    pub arch: Option<&'a str>,
}

/// A name whose instance type was already interned with different vCPUs, memory or arch.
#[derive(Debug)]
pub(crate) struct ConflictingSpecs {
    pub first: String,
    pub here: String,
}

#[derive(Debug, Default)]
pub(crate) struct Builder {
    catalog: Catalog,
    regions_by_cloud: Vec<HashMap<String, RegionId>>,
    zones_by_region: Vec<HashMap<String, ZoneId>>,
    /// Instance types by cloud and name; one name may carry several accelerators (GCP hosts).
    types_by_cloud: Vec<HashMap<String, Vec<InstanceTypeId>>>,
    offerings_seen: HashSet<(u32, u32, u32)>,
    /// Index in `catalog.images` by (cloud, region or `u32::MAX` for cloud-wide, flavor).
    images_by_key: HashMap<(u16, u32, ImageFlavor), usize>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Adds a cloud; names are the caller's to keep unique.
    pub fn cloud(&mut self, cloud: Cloud) -> CloudId {
        let id =
            CloudId(u16::try_from(self.catalog.clouds.len()).expect("fewer than 65536 clouds"));
        self.catalog.clouds.push(cloud);
        self.regions_by_cloud.push(HashMap::new());
        self.types_by_cloud.push(HashMap::new());
        id
    }

    pub fn region(&mut self, cloud: CloudId, name: &str) -> RegionId {
        let regions = &mut self.regions_by_cloud[usize::from(cloud.0)];
        if let Some(id) = regions.get(name) {
            return *id;
        }
        let id = RegionId(index_u32(self.catalog.regions.len()));
        self.catalog.regions.push(Region {
            cloud,
            name: name.to_owned(),
            carbon_g_per_kwh: None,
            carbon_hourly: None,
        });
        regions.insert(name.to_owned(), id);
        self.zones_by_region.push(HashMap::new());
        id
    }

    pub fn set_carbon(&mut self, region: RegionId, carbon_g_per_kwh: Option<f64>) {
        self.catalog.regions[region.0 as usize].carbon_g_per_kwh = carbon_g_per_kwh;
    }

    pub fn set_carbon_hourly(&mut self, region: RegionId, profile: Option<CarbonProfile>) {
        self.catalog.regions[region.0 as usize].carbon_hourly = profile;
    }

    pub fn zone(&mut self, region: RegionId, name: &str) -> ZoneId {
        let zones = &mut self.zones_by_region[region.0 as usize];
        if let Some(id) = zones.get(name) {
            return *id;
        }
        let id = ZoneId(index_u32(self.catalog.zones.len()));
        self.catalog.zones.push(Zone {
            region,
            name: name.to_owned(),
        });
        zones.insert(name.to_owned(), id);
        id
    }

    /// The id of the instance type `spec` describes, adding it if new. Two specs with the same
    /// name and accelerator must agree on vCPUs, memory and arch.
    pub fn instance_type(
        &mut self,
        cloud: CloudId,
        spec: &TypeSpec<'_>,
    ) -> Result<InstanceTypeId, ConflictingSpecs> {
        let by_name = &mut self.types_by_cloud[usize::from(cloud.0)];
        if let Some(candidates) = by_name.get(spec.name) {
            for id in candidates {
                let known = &self.catalog.instance_types[id.0 as usize];
                let same_accelerator = match (&known.accelerator, spec.accelerator) {
                    (None, None) => true,
                    (Some((name, count)), Some((spec_name, spec_count))) => {
                        name == spec_name && *count == spec_count
                    }
                    _ => false,
                };
                if !same_accelerator {
                    continue;
                }
                if known.vcpus == spec.vcpus
                    && known.memory_gib == spec.memory_gib
                    && known.arch.as_deref() == spec.arch
                {
                    return Ok(*id);
                }
                return Err(ConflictingSpecs {
                    first: describe(known.vcpus, known.memory_gib, known.accelerator_ref()),
                    here: describe(spec.vcpus, spec.memory_gib, spec.accelerator),
                });
            }
        }
        let id = InstanceTypeId(index_u32(self.catalog.instance_types.len()));
        self.catalog.instance_types.push(InstanceType {
            cloud,
            name: spec.name.to_owned(),
            vcpus: spec.vcpus,
            memory_gib: spec.memory_gib,
            accelerator: spec
                .accelerator
                .map(|(name, count)| (name.to_owned(), count)),
            arch: spec.arch.map(str::to_owned),
        });
        by_name.entry(spec.name.to_owned()).or_default().push(id);
        Ok(id)
    }

    /// Adds an offering; `false` (and nothing added) if this type was already offered in this
    /// region and zone.
    pub fn offering(&mut self, offering: Offering) -> bool {
        let key = (
            offering.instance_type.0,
            offering.region.0,
            offering.zone.map_or(u32::MAX, |zone| zone.0),
        );
        if !self.offerings_seen.insert(key) {
            return false;
        }
        self.catalog.offerings.push(offering);
        true
    }

    /// Adds a default image, or replaces the one already held for the same cloud, region and
    /// flavor if this one is newer (a later `created`; a known date beats none; a tie keeps the
    /// earlier row).
    pub fn image(&mut self, image: ImageRow) {
        let key = (
            image.cloud.0,
            image.region.map_or(u32::MAX, |region| region.0),
            image.flavor,
        );
        match self.images_by_key.get(&key) {
            Some(&idx) => {
                if image.created > self.catalog.images[idx].created {
                    self.catalog.images[idx] = image;
                }
            }
            None => {
                self.images_by_key.insert(key, self.catalog.images.len());
                self.catalog.images.push(image);
            }
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn finish(self) -> Catalog {
        self.catalog
    }
}

impl InstanceType {
    fn accelerator_ref(&self) -> Option<(&str, f64)> {
        self.accelerator
            .as_ref()
            .map(|(name, count)| (name.as_str(), *count))
    }
}

fn describe(vcpus: f64, memory_gib: f64, accelerator: Option<(&str, f64)>) -> String {
    match accelerator {
        Some((name, count)) => format!("({vcpus}, {memory_gib}, {name}:{count})"),
        None => format!("({vcpus}, {memory_gib}, none)"),
    }
}

fn index_u32(len: usize) -> u32 {
    u32::try_from(len).expect("catalog tables hold fewer than 2^32 rows")
}

/// Copies one cloud of `source` (its regions, zones, instance types, offerings and images) into
/// `target`, renumbering ids. Used by [`Catalog::merge`].
pub(crate) fn copy_cloud(target: &mut Catalog, source: &Catalog, cloud: CloudId) {
    let new_cloud = CloudId(u16::try_from(target.clouds.len()).expect("fewer than 65536 clouds"));
    target.clouds.push(source.cloud(cloud).clone());
    let mut region_map: Vec<Option<RegionId>> = vec![None; source.regions.len()];
    for (idx, region) in source.regions.iter().enumerate() {
        if region.cloud == cloud {
            region_map[idx] = Some(RegionId(index_u32(target.regions.len())));
            target.regions.push(Region {
                cloud: new_cloud,
                ..region.clone()
            });
        }
    }
    let mut zone_map: Vec<Option<ZoneId>> = vec![None; source.zones.len()];
    for (idx, zone) in source.zones.iter().enumerate() {
        if let Some(region) = region_map[zone.region.0 as usize] {
            zone_map[idx] = Some(ZoneId(index_u32(target.zones.len())));
            target.zones.push(Zone {
                region,
                name: zone.name.clone(),
            });
        }
    }
    let mut type_map: Vec<Option<InstanceTypeId>> = vec![None; source.instance_types.len()];
    target.offerings.reserve(source.offerings.len());
    for (idx, instance_type) in source.instance_types.iter().enumerate() {
        if instance_type.cloud == cloud {
            type_map[idx] = Some(InstanceTypeId(index_u32(target.instance_types.len())));
            target.instance_types.push(InstanceType {
                cloud: new_cloud,
                ..instance_type.clone()
            });
        }
    }
    for offering in &source.offerings {
        let Some(instance_type) = type_map[offering.instance_type.0 as usize] else {
            continue;
        };
        let Some(region) = region_map[offering.region.0 as usize] else {
            continue;
        };
        target.offerings.push(Offering {
            instance_type,
            region,
            zone: offering.zone.and_then(|zone| zone_map[zone.0 as usize]),
            price: offering.price,
            spot_price: offering.spot_price,
        });
    }
    for image in &source.images {
        if image.cloud != cloud {
            continue;
        }
        let region = match image.region {
            None => None,
            Some(region) => match region_map[region.0 as usize] {
                Some(region) => Some(region),
                None => continue,
            },
        };
        target.images.push(ImageRow {
            cloud: new_cloud,
            region,
            ..image.clone()
        });
    }
}

/// Copies `source`'s images of `source_cloud` into `target`'s cloud `target_cloud`, matching
/// regions by name; images for regions `target` lacks are dropped. Used by [`Catalog::merge`]
/// when a replacing cloud brings no images of its own.
pub(crate) fn copy_images_by_name(
    target: &mut Catalog,
    target_cloud: CloudId,
    source: &Catalog,
    source_cloud: CloudId,
) {
    for image in &source.images {
        if image.cloud != source_cloud {
            continue;
        }
        let region = match image.region {
            None => None,
            Some(region) => match target.find_region(target_cloud, &source.region(region).name) {
                Some(region) => Some(region),
                None => continue,
            },
        };
        target.images.push(ImageRow {
            cloud: target_cloud,
            region,
            ..image.clone()
        });
    }
}

//! The catalog's data model. Ids are indexes into the catalog's tables, valid only for the
//! catalog that issued them.

use crate::carbon::CarbonProfile;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CloudId(pub u16);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RegionId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ZoneId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceTypeId(pub u32);

/// A provider, with the prices of moving data out of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cloud {
    /// Lowercase provider id: `aws`, `gcp`, `azure`, `local`.
    pub name: String,
    /// $/GB for data leaving this cloud to the internet (or another cloud).
    pub internet_egress_per_gb: f64,
    /// $/GB for data moving between two regions of this cloud.
    pub inter_region_egress_per_gb: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub cloud: CloudId,
    pub name: String,
    /// Grid carbon intensity in gCO2/kWh, where known: the annual average.
    pub carbon_g_per_kwh: Option<f64>,
    /// Grid carbon intensity by hour, where known (see [`CarbonProfile`]); hours it does not
    /// cover fall back to `carbon_g_per_kwh`.
    #[serde(default)]
    pub carbon_hourly: Option<CarbonProfile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub region: RegionId,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceType {
    pub cloud: CloudId,
    /// The name to launch, e.g. `m6i.2xlarge`. For GCP GPUs attached to a host VM this is the
    /// host's name and `accelerator` says what is attached.
    pub name: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    /// Accelerator name (canonical spelling, e.g. `V100`, `A100-80GB`) and count.
    pub accelerator: Option<(String, f64)>,
    /// `x86_64` or `arm64`, where known.
    pub arch: Option<String>,
}

/// An instance type offered in a region (and zone, where the provider has zones).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offering {
    pub instance_type: InstanceTypeId,
    pub region: RegionId,
    pub zone: Option<ZoneId>,
    /// On-demand $/h; `None` means not offered on demand.
    pub price: Option<f64>,
    /// Spot $/h; `None` means no spot offer.
    pub spot_price: Option<f64>,
}

impl Offering {
    /// $/h for one instance, on spot or on demand; `None` when not offered that way.
    pub fn hourly_price(&self, spot: bool) -> Option<f64> {
        if spot { self.spot_price } else { self.price }
    }
}

/// Which default machine image an instance needs: [`ImageFlavor::Cpu`] for instance types without
/// accelerators, [`ImageFlavor::Gpu`] (GPU drivers and CUDA installed) for those with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFlavor {
    Cpu,
    Gpu,
}

impl ImageFlavor {
    /// `cpu` or `gpu`, as in the bundled `data/images.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFlavor::Cpu => "cpu",
            ImageFlavor::Gpu => "gpu",
        }
    }

    /// The inverse of [`ImageFlavor::as_str`].
    pub fn parse(text: &str) -> Option<ImageFlavor> {
        match text {
            "cpu" => Some(ImageFlavor::Cpu),
            "gpu" => Some(ImageFlavor::Gpu),
            _ => None,
        }
    }
}

impl std::fmt::Display for ImageFlavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cloud's default machine image of one flavor, in one region or in all of them. See
/// [`Catalog::default_image`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRow {
    pub cloud: CloudId,
    /// `None`: the image serves every region of the cloud (GCP's images are global).
    pub region: Option<RegionId>,
    pub flavor: ImageFlavor,
    /// What to launch: `ami-...` on AWS, `projects/.../global/images/...` on GCP.
    pub image_id: String,
    /// e.g. `ubuntu`.
    pub os: String,
    /// e.g. `22.04`.
    pub os_version: String,
    /// The day the image was built (`YYYYMMDD`), where known; among rows for one cloud, region
    /// and flavor, the newest wins.
    pub created: Option<String>,
    /// Where the row comes from: the bundled data's source tag (`skypilot-v8@2026-05-20`) or
    /// the imported file's path.
    pub source: String,
}

/// A place data can live or move between: a cloud, maybe a region, maybe a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Place {
    pub cloud: CloudId,
    pub region: Option<RegionId>,
    pub zone: Option<ZoneId>,
}

/// The network between two places: what a GB costs and how fast it moves.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub price_per_gb: f64,
    /// Estimated sustained throughput in gigabits per second.
    pub gbps: f64,
}

impl Link {
    /// Seconds to move `gigabytes` over this link.
    pub fn transfer_seconds(&self, gigabytes: f64) -> f64 {
        if gigabytes <= 0.0 {
            0.0
        } else {
            gigabytes * 8.0 / self.gbps
        }
    }
}

/// The whole catalog. Build it from a source, then query it; merge sources with [`Catalog::merge`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub clouds: Vec<Cloud>,
    pub regions: Vec<Region>,
    pub zones: Vec<Zone>,
    pub instance_types: Vec<InstanceType>,
    pub offerings: Vec<Offering>,
    /// Default machine images per cloud, region and flavor (at most one row for each).
    #[serde(default)]
    pub images: Vec<ImageRow>,
}

impl Catalog {
    pub fn cloud(&self, id: CloudId) -> &Cloud {
        &self.clouds[usize::from(id.0)]
    }

    pub fn region(&self, id: RegionId) -> &Region {
        &self.regions[id.0 as usize]
    }

    pub fn zone(&self, id: ZoneId) -> &Zone {
        &self.zones[id.0 as usize]
    }

    pub fn instance_type(&self, id: InstanceTypeId) -> &InstanceType {
        &self.instance_types[id.0 as usize]
    }

    /// The place an offering runs in.
    pub fn offering_place(&self, offering: &Offering) -> Place {
        Place {
            cloud: self.region(offering.region).cloud,
            region: Some(offering.region),
            zone: offering.zone,
        }
    }

    /// The network from one place to another.
    ///
    /// Same zone, or same region: free. Two regions of one cloud: that cloud's inter-region
    /// rate. Two clouds: the source cloud's internet egress rate. A place without a region
    /// (data known only by its cloud) counts as "some region of that cloud".
    pub fn link(&self, from: Place, to: Place) -> Link {
        const SAME_ZONE_GBPS: f64 = 10.0;
        const SAME_REGION_GBPS: f64 = 5.0;
        const INTER_REGION_GBPS: f64 = 1.0;
        const INTER_CLOUD_GBPS: f64 = 0.5;
        if from.cloud != to.cloud {
            let price = self.cloud(from.cloud).internet_egress_per_gb;
            return Link {
                price_per_gb: price,
                gbps: INTER_CLOUD_GBPS,
            };
        }
        match (from.region, to.region) {
            (Some(a), Some(b)) if a == b => {
                let same_zone = from.zone.is_some() && from.zone == to.zone;
                let gbps = if same_zone || from.zone.is_none() || to.zone.is_none() {
                    SAME_ZONE_GBPS
                } else {
                    SAME_REGION_GBPS
                };
                Link {
                    price_per_gb: 0.0,
                    gbps,
                }
            }
            (Some(_), Some(_)) => Link {
                price_per_gb: self.cloud(from.cloud).inter_region_egress_per_gb,
                gbps: INTER_REGION_GBPS,
            },
            // Unknown region inside the same cloud: SkyPilot treats intra-cloud as free; so do we.
            _ => Link {
                price_per_gb: 0.0,
                gbps: INTER_REGION_GBPS,
            },
        }
    }
}

//! Listing queries behind `aloft catalog`: instance types with their cheapest place, and a GPU
//! view like `sky show-gpus`.
//!
//! Requirements (cpus, memory, accelerators, cloud) go through [`Catalog::admits`], the same
//! predicate the optimizer uses, so "the catalog lists it" and "the optimizer may pick it" agree.
//! Two deliberate differences make the listing a browsing tool: with no cpus, memory or
//! accelerator filter, every instance type is listed (the optimizer would apply its 8+ vCPU,
//! 32+ GiB default), and the instance type filter is a substring, treated as naming the type
//! (so GPU types are listed even without an accelerator filter).

use crate::matching::same_accelerator;
use crate::model::{Catalog, InstanceType, InstanceTypeId, Offering, RegionId};
use aloft_types::{Accelerator, Amount, Infra, Resources};
use serde::Serialize;
use std::cmp::Ordering;

/// An accelerator filter: a name, and optionally a count (`A100`, `A100:8`).
#[derive(Clone, Debug, PartialEq)]
pub struct AcceleratorFilter {
    pub name: String,
    pub count: Option<f64>,
}

impl AcceleratorFilter {
    /// Parses `NAME` or `NAME:COUNT`.
    pub fn parse(text: &str) -> Result<AcceleratorFilter, String> {
        let text = text.trim();
        let (name, count) = match text.rsplit_once(':') {
            Some((name, count)) => {
                let count: f64 = count.trim().parse().map_err(|_| {
                    format!(
                        "`{text}`: the count after `:` is not a number (expected e.g. `A100:8`)"
                    )
                })?;
                if !count.is_finite() || count <= 0.0 {
                    return Err(format!("`{text}`: the count must be positive"));
                }
                (name.trim(), Some(count))
            }
            None => (text, None),
        };
        if name.is_empty() {
            return Err(format!(
                "`{text}`: expected an accelerator name such as `A100` or `A100:8`"
            ));
        }
        Ok(AcceleratorFilter {
            name: name.to_owned(),
            count,
        })
    }
}

/// What `aloft catalog` lists. Empty fields don't filter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListFilter {
    pub cpus: Option<Amount>,
    /// GiB.
    pub memory: Option<Amount>,
    pub accelerator: Option<AcceleratorFilter>,
    pub cloud: Option<String>,
    pub region: Option<String>,
    /// Price spot offers instead of on-demand ones.
    pub spot: bool,
    /// A substring of the instance type name (ASCII case ignored).
    pub instance_type: Option<String>,
}

/// One instance type with its cheapest offering for the filter's market.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ListRow {
    #[serde(skip)]
    pub instance_type_id: InstanceTypeId,
    pub cloud: String,
    pub instance_type: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    pub accelerator_name: Option<String>,
    pub accelerator_count: Option<f64>,
    pub arch: Option<String>,
    /// Whether the prices are spot prices.
    pub spot: bool,
    /// Where it is cheapest.
    pub region: String,
    pub zone: Option<String>,
    /// $/h in the cheapest place.
    pub price: f64,
    /// $/h in the dearest place that matched.
    pub max_price: f64,
    /// How many regions offer it (within the filter).
    pub n_regions: usize,
}

/// What `aloft catalog gpus` shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuFilter {
    pub accelerator: Option<AcceleratorFilter>,
    pub cloud: Option<String>,
    pub region: Option<String>,
}

/// One instance type carrying a given accelerator, with its cheapest prices.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GpuRow {
    #[serde(skip)]
    pub instance_type_id: InstanceTypeId,
    pub accelerator_name: String,
    pub accelerator_count: f64,
    pub cloud: String,
    pub instance_type: String,
    pub vcpus: f64,
    pub memory_gib: f64,
    /// Cheapest on-demand $/h, and where.
    pub price: Option<f64>,
    pub region: Option<String>,
    /// Cheapest spot $/h, and where.
    pub spot_price: Option<f64>,
    pub spot_region: Option<String>,
}

/// One accelerator name across the catalog.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GpuSummary {
    pub accelerator_name: String,
    /// Counts per instance available, ascending.
    pub counts: Vec<f64>,
    pub clouds: Vec<String>,
    /// The cheapest on-demand $/h of one accelerator (instance price / count).
    pub min_price_per_accelerator: Option<f64>,
}

/// The cheapest and dearest offering of one instance type for one market.
#[derive(Clone, Copy)]
struct PriceSpan<'a> {
    cheapest: &'a Offering,
    price: f64,
    max_price: f64,
}

fn cheaper(a: f64, b: f64) -> bool {
    a.partial_cmp(&b) == Some(Ordering::Less)
}

impl Catalog {
    /// Per instance type (indexed by id) among the `wanted` ones: the cheapest and dearest
    /// offering for the market, in the given region if any, and how many regions offer it.
    fn price_spans(
        &self,
        spot: bool,
        region: Option<&str>,
        wanted: &[bool],
    ) -> Vec<Option<(PriceSpan<'_>, usize)>> {
        let region_ok: Option<Vec<bool>> = region.map(|name| {
            self.regions
                .iter()
                .map(|region| region.name == name)
                .collect()
        });
        let mut spans: Vec<Option<PriceSpan<'_>>> = vec![None; self.instance_types.len()];
        let mut regions: Vec<Vec<RegionId>> = vec![Vec::new(); self.instance_types.len()];
        for offering in &self.offerings {
            let idx = offering.instance_type.0 as usize;
            if !wanted[idx] {
                continue;
            }
            let Some(price) = offering.hourly_price(spot) else {
                continue;
            };
            if let Some(region_ok) = &region_ok
                && !region_ok[offering.region.0 as usize]
            {
                continue;
            }
            if !regions[idx].contains(&offering.region) {
                regions[idx].push(offering.region);
            }
            spans[idx] = Some(match spans[idx] {
                None => PriceSpan {
                    cheapest: offering,
                    price,
                    max_price: price,
                },
                Some(span) => PriceSpan {
                    cheapest: if cheaper(price, span.price) {
                        offering
                    } else {
                        span.cheapest
                    },
                    price: span.price.min(price),
                    max_price: span.max_price.max(price),
                },
            });
        }
        spans
            .into_iter()
            .zip(regions)
            .map(|(span, regions)| span.map(|span| (span, regions.len())))
            .collect()
    }

    /// Whether `instance_type` passes the requirement part of a listing filter (see the module
    /// docs), through [`Catalog::admits`].
    fn listing_admits(
        &self,
        instance_type: &InstanceType,
        cloud: Option<&str>,
        cpus: Option<Amount>,
        memory: Option<Amount>,
        accelerator: Option<&AcceleratorFilter>,
        name_filter: Option<&str>,
    ) -> bool {
        if let Some(cloud) = cloud
            && !self
                .cloud(instance_type.cloud)
                .name
                .eq_ignore_ascii_case(cloud)
        {
            return false;
        }
        if let Some(substring) = name_filter {
            let name = instance_type.name.to_ascii_lowercase();
            if !name.contains(&substring.to_ascii_lowercase()) {
                return false;
            }
        }
        if cpus.is_none() && memory.is_none() && accelerator.is_none() {
            return true;
        }
        // A filter without a count takes any count of the named accelerator.
        let accelerator = accelerator.map(|filter| Accelerator {
            name: filter.name.clone(),
            count: filter
                .count
                .or(instance_type.accelerator.as_ref().map(|(_, count)| *count))
                .unwrap_or(1.0),
        });
        let resources = Resources {
            infra: Infra {
                cloud: Some(self.cloud(instance_type.cloud).name.clone()),
                ..Infra::default()
            },
            instance_type: name_filter.map(|_| instance_type.name.clone()),
            cpus,
            memory,
            accelerator,
            ..Resources::default()
        };
        self.admits(instance_type, &resources)
    }

    /// Instance types matching `filter`, one row each with its cheapest region/zone for the
    /// market, sorted by price (then cloud and name). Types with no offer for the market (in
    /// the filter's region) are left out.
    pub fn list(&self, filter: &ListFilter) -> Vec<ListRow> {
        let admitted: Vec<bool> = self
            .instance_types
            .iter()
            .map(|instance_type| {
                self.listing_admits(
                    instance_type,
                    filter.cloud.as_deref(),
                    filter.cpus,
                    filter.memory,
                    filter.accelerator.as_ref(),
                    filter.instance_type.as_deref(),
                )
            })
            .collect();
        let spans = self.price_spans(filter.spot, filter.region.as_deref(), &admitted);
        let mut rows: Vec<ListRow> = self
            .instance_types
            .iter()
            .enumerate()
            .filter_map(|(idx, instance_type)| {
                let (span, n_regions) = spans[idx]?;
                let (accelerator_name, accelerator_count) = match &instance_type.accelerator {
                    Some((name, count)) => (Some(name.clone()), Some(*count)),
                    None => (None, None),
                };
                Some(ListRow {
                    instance_type_id: InstanceTypeId(idx as u32),
                    cloud: self.cloud(instance_type.cloud).name.clone(),
                    instance_type: instance_type.name.clone(),
                    vcpus: instance_type.vcpus,
                    memory_gib: instance_type.memory_gib,
                    accelerator_name,
                    accelerator_count,
                    arch: instance_type.arch.clone(),
                    spot: filter.spot,
                    region: self.region(span.cheapest.region).name.clone(),
                    zone: span.cheapest.zone.map(|zone| self.zone(zone).name.clone()),
                    price: span.price,
                    max_price: span.max_price,
                    n_regions,
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            a.price
                .total_cmp(&b.price)
                .then_with(|| a.cloud.cmp(&b.cloud))
                .then_with(|| a.instance_type.cmp(&b.instance_type))
                .then_with(|| a.accelerator_name.cmp(&b.accelerator_name))
        });
        rows
    }

    /// Instance types carrying accelerators (the filter's, if any), with their cheapest
    /// on-demand and spot prices; sorted by accelerator, count, on-demand price.
    pub fn gpus(&self, filter: &GpuFilter) -> Vec<GpuRow> {
        let admitted: Vec<bool> = self
            .instance_types
            .iter()
            .map(|instance_type| {
                if instance_type.accelerator.is_none() {
                    return false;
                }
                match &filter.accelerator {
                    Some(accelerator) => self.listing_admits(
                        instance_type,
                        filter.cloud.as_deref(),
                        None,
                        None,
                        Some(accelerator),
                        None,
                    ),
                    None => filter.cloud.as_deref().is_none_or(|cloud| {
                        self.cloud(instance_type.cloud)
                            .name
                            .eq_ignore_ascii_case(cloud)
                    }),
                }
            })
            .collect();
        let on_demand = self.price_spans(false, filter.region.as_deref(), &admitted);
        let spot = self.price_spans(true, filter.region.as_deref(), &admitted);
        let mut rows: Vec<GpuRow> = self
            .instance_types
            .iter()
            .enumerate()
            .filter_map(|(idx, instance_type)| {
                let (name, count) = instance_type.accelerator.as_ref()?;
                if on_demand[idx].is_none() && spot[idx].is_none() {
                    return None;
                }
                let place = |span: Option<(PriceSpan<'_>, usize)>| match span {
                    Some((span, _)) => (
                        Some(span.price),
                        Some(self.region(span.cheapest.region).name.clone()),
                    ),
                    None => (None, None),
                };
                let (price, region) = place(on_demand[idx]);
                let (spot_price, spot_region) = place(spot[idx]);
                Some(GpuRow {
                    instance_type_id: InstanceTypeId(idx as u32),
                    accelerator_name: name.clone(),
                    accelerator_count: *count,
                    cloud: self.cloud(instance_type.cloud).name.clone(),
                    instance_type: instance_type.name.clone(),
                    vcpus: instance_type.vcpus,
                    memory_gib: instance_type.memory_gib,
                    price,
                    region,
                    spot_price,
                    spot_region,
                })
            })
            .collect();
        let price_key = |row: &GpuRow| row.price.or(row.spot_price).unwrap_or(f64::INFINITY);
        rows.sort_by(|a, b| {
            a.accelerator_name
                .to_ascii_lowercase()
                .cmp(&b.accelerator_name.to_ascii_lowercase())
                .then_with(|| a.accelerator_count.total_cmp(&b.accelerator_count))
                .then_with(|| price_key(a).total_cmp(&price_key(b)))
                .then_with(|| a.cloud.cmp(&b.cloud))
                .then_with(|| a.instance_type.cmp(&b.instance_type))
        });
        rows
    }

    /// Every accelerator name some instance type carries, sorted (ASCII case ignored), whether
    /// or not it is offered anywhere: cheap, for validating user input.
    pub fn accelerator_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .instance_types
            .iter()
            .filter_map(|instance_type| instance_type.accelerator.as_ref())
            .map(|(name, _)| name.as_str())
            .collect();
        names.sort_by_key(|name| name.to_ascii_lowercase());
        names.dedup();
        names
    }

    /// Whether some instance type carries an accelerator of this name (ASCII case ignored, and
    /// either spelling of a TPU v5e slice: see [`crate::same_accelerator`]).
    pub fn knows_accelerator(&self, name: &str) -> bool {
        self.instance_types.iter().any(|instance_type| {
            instance_type
                .accelerator
                .as_ref()
                .is_some_and(|(known, _)| same_accelerator(known, name))
        })
    }

    /// Each accelerator name (optionally only the filter's) with the counts and clouds
    /// offering it, sorted by name.
    pub fn gpu_summary(&self, filter: &GpuFilter) -> Vec<GpuSummary> {
        let mut summaries: Vec<GpuSummary> = Vec::new();
        for row in self.gpus(filter) {
            let per_accelerator = row.price.map(|price| price / row.accelerator_count);
            match summaries.last_mut() {
                Some(last)
                    if last
                        .accelerator_name
                        .eq_ignore_ascii_case(&row.accelerator_name) =>
                {
                    if !last.counts.contains(&row.accelerator_count) {
                        last.counts.push(row.accelerator_count);
                    }
                    if !last.clouds.contains(&row.cloud) {
                        last.clouds.push(row.cloud);
                    }
                    last.min_price_per_accelerator =
                        match (last.min_price_per_accelerator, per_accelerator) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                }
                _ => summaries.push(GpuSummary {
                    accelerator_name: row.accelerator_name,
                    counts: vec![row.accelerator_count],
                    clouds: vec![row.cloud],
                    min_price_per_accelerator: per_accelerator,
                }),
            }
        }
        for summary in &mut summaries {
            summary.counts.sort_by(f64::total_cmp);
            summary.clouds.sort();
        }
        summaries
    }
}

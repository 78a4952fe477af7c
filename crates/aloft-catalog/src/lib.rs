//! The service catalog: one model of every provider's clouds, regions, zones, instance types,
//! prices and default machine images, plus the network between locations (egress price and
//! bandwidth) and each region's carbon intensity.
//!
//! Sources all produce the same [`Catalog`]: the snapshot compiled into the binary
//! ([`Catalog::bundled`]), an import of SkyPilot's v8 CSV layout
//! ([`Catalog::from_skypilot_dir`], cached by [`Catalog::load_dir_cached`]), and the local
//! cloud's own offers ([`Catalog::local_offers`], from the local cloud's configuration). Sources combine cloud by cloud with [`Catalog::merge`]. The
//! catalog is plain data with query functions ([`Catalog::offerings_for`], [`Catalog::list`],
//! [`Catalog::gpus`], [`Catalog::resolve_infra`], [`Catalog::default_image`]); it makes no
//! network calls.
//!
//! Map: `model` (the tables and ids), `carbon` (grid intensity by hour: the carbon intensity
//! file and UTC times), `matching` (the one "does this instance fit" predicate),
//! `bundled` (the embedded snapshot), `skypilot` (the CSV importer and its GCP GPU rules),
//! `cache` (the binary cache of imports), `merge` (combining sources, consistency checks),
//! `lookup` (names to ids, infra to places), `query` (listings for the CLI), `images` (default
//! machine images per region and flavor), `tpu` (which GCP TPU slices fit the model, and why the
//! others do not), `outliers` (the import's price check: prices far from their instance type's
//! median regional price, and what to do with them).

mod builder;
mod bundled;
mod cache;
mod carbon;
mod error;
mod images;
mod local;
mod lookup;
mod matching;
mod merge;
mod model;
mod outliers;
mod query;
mod skypilot;
mod tpu;

pub use cache::{CacheStatus, CachedLoad, default_cache_dir};
pub use carbon::{CARBON_INTENSITY_FILE, CarbonProfile, format_utc, parse_utc};
pub use error::{CatalogError, CatalogWarning, RowProblem};
pub use local::{LOCAL_REGION, LocalType};
pub use lookup::{CatalogLookupError, did_you_mean};
pub use matching::{DEFAULT_CPUS, DEFAULT_MEMORY_GIB, same_accelerator};
pub use model::*;
pub use outliers::{MIN_REGIONS_JUDGED, OUTLIER_FACTOR, OutlierPolicy, PriceKind, PriceOutlier};
pub use query::{AcceleratorFilter, GpuFilter, GpuRow, GpuSummary, ListFilter, ListRow};
pub use skypilot::SkypilotImport;
pub use tpu::unsupported_accelerator_reason;

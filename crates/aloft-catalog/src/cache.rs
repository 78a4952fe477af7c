//! A binary cache of imported catalogs, so `aloft` starts instantly with a large `--catalog`.
//!
//! Parsing SkyPilot's CSVs (≈90k rows for GCP and Azure) takes tens of milliseconds; reading
//! back the finished [`Catalog`] (and its warnings) in postcard form takes a few. The cache
//! file is keyed by the catalog directory's canonical path, each `vms.csv`'s and
//! `images.csv`'s size and modification time (or absence), the same of `carbon_intensity.csv`
//! beside them, this crate's version, a fingerprint of the bundled data (imports borrow its
//! egress and carbon figures, hourly ones included) and the
//! outlier policy (a catalog built under `drop` lacks offerings one built under `warn` has, and
//! their warnings differ). Any change makes a new key, hence a rebuild. Each policy has a file
//! of its own, so switching policies back and forth does not rebuild every time.
//!
//! The cache is an optimisation only: a cache that is missing, stale, corrupt or unwritable is
//! ignored and the CSVs are read, never failing the load. It lives in `$ALOFT_CACHE_DIR` if set,
//! else `$XDG_CACHE_HOME/aloft`, else `~/.cache/aloft`.
//!
//! File format: `ALOFTCAT` magic, a format version (u32 LE), the payload length (u64 LE), a
//! checksum of the payload (u64 LE), then the payload: the length of a postcard-encoded
//! [`CacheHead`] (u64 LE), the head (with the warnings and the flagged prices), and the
//! offerings as five little-endian columns.

use crate::error::{CatalogError, CatalogWarning};
use crate::model::{
    Catalog, Cloud, ImageRow, InstanceType, InstanceTypeId, Offering, Region, RegionId, Zone,
    ZoneId,
};
use crate::outliers::{OutlierPolicy, PriceOutlier};
use crate::skypilot::cloud_files;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

const MAGIC: &[u8; 8] = b"ALOFTCAT";
/// Bump when the payload's shape or the import rules change. 2: default images. 3: the price
/// check (flagged prices in the head, the policy in the key). 4: hourly carbon profiles in the
/// regions, and `carbon_intensity.csv` beside the catalog in the key.
const FORMAT_VERSION: u32 = 4;
const HEADER_LEN: usize = 8 + 4 + 8 + 8;

/// FNV-1a, 64-bit: tiny, stable across Rust versions (unlike `DefaultHasher`), good enough to
/// name cache files and catch corruption.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut hash = Fnv::new();
    hash.write(bytes);
    hash.finish()
}

/// A word-at-a-time checksum of the cache payload (FNV's byte loop would cost milliseconds on
/// a 3 MB file): catches truncation and bit rot, not adversaries.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    // Four independent lanes, so the multiplies pipeline.
    let mut lanes: [u64; 4] = [0xcbf2_9ce4_8422_2325, 1, 2, 3];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
            *lane = (lane.rotate_left(5) ^ word).wrapping_mul(K);
        }
    }
    let mut hash = lanes.iter().fold(bytes.len() as u64, |hash, lane| {
        (hash.rotate_left(5) ^ lane).wrapping_mul(K)
    });
    for byte in blocks.remainder() {
        hash = (hash.rotate_left(5) ^ u64::from(*byte)).wrapping_mul(K);
    }
    hash
}

/// A cached import, as held in memory.
struct CacheEntry {
    /// The full key, compared on read (the file name only names the directory).
    key: String,
    catalog: Catalog,
    warnings: Vec<CatalogWarning>,
    outliers: Vec<PriceOutlier>,
}

/// Everything but the offerings, postcard-encoded; the offerings follow as columns of
/// little-endian numbers, which decode an order of magnitude faster than 90k serde structs.
#[derive(Serialize, Deserialize)]
struct CacheHead {
    key: String,
    clouds: Vec<Cloud>,
    regions: Vec<Region>,
    zones: Vec<Zone>,
    instance_types: Vec<InstanceType>,
    images: Vec<ImageRow>,
    warnings: Vec<CatalogWarning>,
    outliers: Vec<PriceOutlier>,
    n_offerings: u64,
}

/// Marks "no zone" in the zone column.
const NO_ZONE: u32 = u32::MAX;
/// Marks "no price" in the price columns (a NaN no finite price can be).
const NO_PRICE: u64 = u64::MAX;

fn encode(entry: &CacheEntry) -> Option<Vec<u8>> {
    let catalog = &entry.catalog;
    let head = CacheHead {
        key: entry.key.clone(),
        clouds: catalog.clouds.clone(),
        regions: catalog.regions.clone(),
        zones: catalog.zones.clone(),
        instance_types: catalog.instance_types.clone(),
        images: catalog.images.clone(),
        warnings: entry.warnings.clone(),
        outliers: entry.outliers.clone(),
        n_offerings: catalog.offerings.len() as u64,
    };
    let head = postcard::to_stdvec(&head).ok()?;
    let n = catalog.offerings.len();
    let mut payload = Vec::with_capacity(8 + head.len() + n * 28);
    payload.extend_from_slice(&(head.len() as u64).to_le_bytes());
    payload.extend_from_slice(&head);
    let offerings = &catalog.offerings;
    for offering in offerings {
        payload.extend_from_slice(&offering.instance_type.0.to_le_bytes());
    }
    for offering in offerings {
        payload.extend_from_slice(&offering.region.0.to_le_bytes());
    }
    for offering in offerings {
        payload.extend_from_slice(&offering.zone.map_or(NO_ZONE, |zone| zone.0).to_le_bytes());
    }
    for offering in offerings {
        payload.extend_from_slice(&offering.price.map_or(NO_PRICE, f64::to_bits).to_le_bytes());
    }
    for offering in offerings {
        let spot = offering.spot_price.map_or(NO_PRICE, f64::to_bits);
        payload.extend_from_slice(&spot.to_le_bytes());
    }
    Some(payload)
}

fn decode(payload: &[u8]) -> Option<CacheEntry> {
    let head_len = usize::try_from(u64::from_le_bytes(payload.get(..8)?.try_into().ok()?)).ok()?;
    let head: CacheHead =
        postcard::from_bytes(payload.get(8..8usize.checked_add(head_len)?)?).ok()?;
    let n = usize::try_from(head.n_offerings).ok()?;
    let columns = &payload[8 + head_len..];
    if columns.len() != n.checked_mul(28)? {
        return None;
    }
    let (types, rest) = columns.split_at(n * 4);
    let (regions, rest) = rest.split_at(n * 4);
    let (zones, rest) = rest.split_at(n * 4);
    let (prices, spots) = rest.split_at(n * 8);
    let u32_at = |column: &[u8], idx: usize| {
        let bytes = &column[idx * 4..idx * 4 + 4];
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    };
    let price_at = |column: &[u8], idx: usize| {
        let bits = u64::from_le_bytes(column[idx * 8..idx * 8 + 8].try_into().expect("8 bytes"));
        (bits != NO_PRICE).then(|| f64::from_bits(bits))
    };
    let (n_types, n_regions, n_zones) = (
        head.instance_types.len(),
        head.regions.len(),
        head.zones.len(),
    );
    let mut offerings = Vec::with_capacity(n);
    for idx in 0..n {
        let (instance_type, region) = (u32_at(types, idx), u32_at(regions, idx));
        // Ids are checked here so a damaged cache cannot make lookups panic later.
        if instance_type as usize >= n_types || region as usize >= n_regions {
            return None;
        }
        let zone = match u32_at(zones, idx) {
            NO_ZONE => None,
            zone if (zone as usize) < n_zones => Some(ZoneId(zone)),
            _ => return None,
        };
        offerings.push(Offering {
            instance_type: InstanceTypeId(instance_type),
            region: RegionId(region),
            zone,
            price: price_at(prices, idx),
            spot_price: price_at(spots, idx),
        });
    }
    // Image ids are checked too, for the same reason.
    let images_ok = head.images.iter().all(|image| {
        usize::from(image.cloud.0) < head.clouds.len()
            && image
                .region
                .is_none_or(|region| (region.0 as usize) < n_regions)
    });
    if !images_ok {
        return None;
    }
    let catalog = Catalog {
        clouds: head.clouds,
        regions: head.regions,
        zones: head.zones,
        instance_types: head.instance_types,
        offerings,
        images: head.images,
    };
    Some(CacheEntry {
        key: head.key,
        catalog,
        warnings: head.warnings,
        outliers: head.outliers,
    })
}

/// Whether a load came from the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// Read from this cache file.
    Hit(PathBuf),
    /// Imported from CSV; `written` says whether the cache file could be (re)written.
    Miss { file: PathBuf, written: bool },
    /// No cache directory was given or found; imported from CSV.
    Disabled,
}

/// An imported catalog with its warnings and flagged prices, and where it came from.
#[derive(Debug)]
pub struct CachedLoad {
    pub catalog: Catalog,
    pub warnings: Vec<CatalogWarning>,
    /// The prices the import's check flagged (see [`Catalog::import_skypilot_dir`]).
    pub outliers: Vec<PriceOutlier>,
    pub cache: CacheStatus,
}

/// The default cache directory: `$ALOFT_CACHE_DIR`, else `$XDG_CACHE_HOME/aloft`, else
/// `~/.cache/aloft`; `None` if none of those can be told.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = var("ALOFT_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("aloft"));
    }
    var("HOME").map(|home| PathBuf::from(home).join(".cache").join("aloft"))
}

impl Catalog {
    /// [`Catalog::from_skypilot_dir`], through the cache in [`default_cache_dir`].
    pub fn load_dir_cached(dir: &Path) -> Result<(Catalog, Vec<CatalogWarning>), CatalogError> {
        let load = Catalog::load_dir_cached_in(dir, default_cache_dir().as_deref())?;
        Ok((load.catalog, load.warnings))
    }

    /// [`Catalog::from_skypilot_dir`] through a cache in `cache_dir` (`None`: no cache).
    pub fn load_dir_cached_in(
        dir: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<CachedLoad, CatalogError> {
        Catalog::load_dir_cached_with(dir, cache_dir, OutlierPolicy::Warn)
    }

    /// [`Catalog::import_skypilot_dir`] under `policy`, through a cache in `cache_dir` (`None`:
    /// no cache).
    pub fn load_dir_cached_with(
        dir: &Path,
        cache_dir: Option<&Path>,
        policy: OutlierPolicy,
    ) -> Result<CachedLoad, CatalogError> {
        let Some(cache_dir) = cache_dir else {
            let import = Catalog::import_skypilot_dir(dir, policy)?;
            return Ok(CachedLoad {
                catalog: import.catalog,
                warnings: import.warnings,
                outliers: import.outliers,
                cache: CacheStatus::Disabled,
            });
        };
        let (canonical, key) = cache_key(dir, policy)?;
        // One file per catalog directory and policy: a changed catalog overwrites its stale
        // entry rather than piling up new ones. The full key inside decides whether the entry
        // is current.
        let name = format!(
            "format={FORMAT_VERSION};outliers={policy};dir={}",
            canonical.display()
        );
        let file = cache_dir.join(format!("catalog-{:016x}.bin", fnv(name.as_bytes())));
        if let Some(entry) = read_entry(&file, &key) {
            return Ok(CachedLoad {
                catalog: entry.catalog,
                warnings: entry.warnings,
                outliers: entry.outliers,
                cache: CacheStatus::Hit(file),
            });
        }
        let import = Catalog::import_skypilot_dir(dir, policy)?;
        let entry = CacheEntry {
            key,
            catalog: import.catalog,
            warnings: import.warnings,
            outliers: import.outliers,
        };
        let written = write_entry(cache_dir, &file, &entry).is_ok();
        Ok(CachedLoad {
            catalog: entry.catalog,
            warnings: entry.warnings,
            outliers: entry.outliers,
            cache: CacheStatus::Miss { file, written },
        })
    }
}

/// The canonical directory, and everything the import's result depends on as text.
fn cache_key(dir: &Path, policy: OutlierPolicy) -> Result<(PathBuf, String), CatalogError> {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let mut key = format!(
        "format={FORMAT_VERSION};crate={};bundled={:016x};outliers={policy};dir={}",
        env!("CARGO_PKG_VERSION"),
        crate::bundled::fingerprint(),
        canonical.display()
    );
    for (cloud, file) in cloud_files(&canonical)? {
        let images = file.with_file_name("images.csv");
        key.push_str(&format!(";{cloud}={}:{}", file.display(), stamp(&file)));
        key.push_str(&format!(";{cloud}:images={}", stamp(&images)));
    }
    let carbon = crate::carbon::beside_import(&canonical);
    key.push_str(&format!(";carbon={}", stamp(&carbon)));
    Ok((canonical, key))
}

/// `size:mtime` of a file, `absent` if it cannot be read.
fn stamp(file: &Path) -> String {
    match std::fs::metadata(file) {
        Ok(meta) => {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |since| since.as_nanos());
            format!("{}:{mtime}", meta.len())
        }
        Err(_) => "absent".to_owned(),
    }
}

fn read_entry(file: &Path, key: &str) -> Option<CacheEntry> {
    let bytes = std::fs::read(file).ok()?;
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return None;
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    let len = u64::from_le_bytes(bytes[12..20].try_into().ok()?);
    let stored_checksum = u64::from_le_bytes(bytes[20..28].try_into().ok()?);
    let payload = &bytes[HEADER_LEN..];
    if version != FORMAT_VERSION
        || payload.len() as u64 != len
        || checksum(payload) != stored_checksum
    {
        return None;
    }
    let entry = decode(payload)?;
    (entry.key == key).then_some(entry)
}

fn write_entry(cache_dir: &Path, file: &Path, entry: &CacheEntry) -> std::io::Result<()> {
    let payload = encode(entry).ok_or_else(|| std::io::Error::other("encoding the catalog"))?;
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&checksum(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::create_dir_all(cache_dir)?;
    // Write then rename, so a concurrent reader sees the old file or the new one, never half.
    let temp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temp, &bytes)?;
    std::fs::rename(&temp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

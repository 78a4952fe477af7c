//! Importing SkyPilot's v8 catalog layout: `<dir>/<cloud>/vms.csv`, one file per cloud, and
//! optionally `<dir>/<cloud>/images.csv` beside it.
//!
//! SkyPilot's catalogs are the most complete public instance/price tables in one format, so
//! reading them is how aloft gets fresh data without talking to any cloud.
//!
//! # Reading rules
//!
//! - Every subdirectory of `dir` holding a `vms.csv` is a cloud, named after the directory in
//!   lowercase. If there is none but `dir/v8` exists, that is read instead (so both
//!   `.../skypilot-v8` and `.../skypilot-v8/v8` work).
//! - Columns are found by header name, since clouds order them differently. `InstanceType`,
//!   `vCPUs`, `MemoryGiB`, `Price` and `Region` are required (a file without them is an error);
//!   `AcceleratorName`, `AcceleratorCount`, `SpotPrice`, `AvailabilityZone` and `Arch` are read
//!   when present. Azure has no `AvailabilityZone`, so its offerings have no zone. AWS zones are
//!   SkyPilot's zone IDs (`use1-az1`), kept as they are.
//! - An empty `Price` or `SpotPrice` means "not offered that way"; so does a zero final price.
//!   A row offered neither way is dropped. A row that cannot be read (a bad number, a missing
//!   required value, a wrong field count, an instance type contradicting an earlier row, a
//!   duplicate) becomes a [`CatalogWarning`] naming `file:line`, and the import goes on.
//! - An `AcceleratorCount` without an `AcceleratorName` (Azure's FPGA `Standard_NP*` types) is
//!   ignored: aloft does not model FPGAs, so those are plain VMs.
//!
//! # Default images
//!
//! A cloud's `images.csv` (optional) gives its default machine images. Columns by header name:
//! `Tag`, `Region` and `ImageId` are required (a file without them is an error); `OS`,
//! `OSVersion` and `CreationDate` are read when present. The tag says the flavor (see the
//! `images` module: `skypilot:[custom-]cpu-ubuntu[-N...]` is CPU, `...gpu-ubuntu...` GPU); a row
//! with any other tag is skipped with a warning, as is a row with an empty `Tag` or `ImageId`, a
//! `CreationDate` that is not `YYYYMMDD`, or malformed CSV, each naming `file:line`. An empty
//! `Region` means every region of the cloud (GCP's images are global). A row for a region the
//! cloud's `vms.csv` offers nothing in is skipped silently: nothing could launch there. Of
//! several rows for one region and flavor, the newest `CreationDate` wins (a tie keeps the
//! earlier row). Each image's `source` is the file's path.
//!
//! # GCP's attachable GPUs
//!
//! GCP sells most GPUs as devices attached to a host VM, and its `vms.csv` lists them as rows
//! with an EMPTY `InstanceType`, an `AcceleratorName`/`AcceleratorCount` and the GPUs' own price.
//! The importer combines each such row with host VM rows *in the same zone* into a composite
//! instance type: name = the host's (what to launch), vCPUs/memory = the host's,
//! accelerator = the GPU, price = host price + GPU price, spot = host spot + GPU spot (either
//! missing → no spot offer). Hosts per accelerator:
//!
//! | accelerator | host types |
//! |---|---|
//! | `A100` ×n | `a2-highgpu-{n}g`; ×16 → `a2-megagpu-16g` |
//! | `A100-80GB` ×n | `a2-ultragpu-{n}g` |
//! | `H100` ×n | `a3-highgpu-{n}g` |
//! | `H100-MEGA` ×8 | `a3-megagpu-8g` |
//! | `H200` ×8 | `a3-ultragpu-8g` |
//! | `B200` ×8 | `a4-highgpu-8g` |
//! | `L4` ×1/2/4/8 | `g2-standard-{4,8,12,16,32}` / `-24` / `-48` / `-96` |
//! | `K80`, `P4`, `P100`, `T4`, `V100` | `n1-standard-{4..96}` and `n1-highmem-{4..96}` within GCP's per-GPU-count vCPU/memory limits (SkyPilot picks `n1-highmem-8`; offering several sizes lets cpus/memory requirements choose) |
//!
//! Host rows of the GPU-only families (`a2`, `a3`, `a4`, `g2`) are never offered bare (an
//! `a2-highgpu-1g` without its GPU does not exist); those without a matching GPU row (e.g.
//! `a3-edgegpu-8g`) are dropped. A host row that already names its accelerator is taken as a
//! complete instance type and is not combined again, so nothing is counted twice. In the
//! 2026-05 snapshot no host row names its GPU, and `a4-highgpu-8g` hosts cost 0 (the B200 row
//! carries the whole price). GPU rows for which no host exists in that zone are dropped.
//!
//! # GCP's TPUs
//!
//! TPU rows (`tpu-*`, empty `InstanceType`, count 1) of a single-host slice (`tpu-v4-8`,
//! `tpu-v5litepod-1/4/8`, `tpu-v5p-8`, `tpu-v6e-1/4/8`) become an instance type named after the
//! slice, carrying it, with the TPU VM host's vCPUs and memory from the `tpu` module (the file
//! has none). Larger slices span several TPU VMs, which the model cannot express, and v2/v3 are
//! legacy: those rows are skipped (a task asking for one is told why by the optimizer).
//!
//! # Figures the import lacks
//!
//! SkyPilot's files carry no egress or carbon data: each imported cloud gets the bundled
//! cloud's egress rates (a cloud the bundled data does not know gets AWS-like rates and a
//! warning), and each region the bundled region's carbon figure where the names match.

use crate::builder::{Builder, TypeSpec};
use crate::bundled::BundledDefaults;
use crate::error::{CatalogError, CatalogWarning, RowProblem};
use crate::images::flavor_of_skypilot_tag;
use crate::model::{Catalog, Cloud, CloudId, ImageRow, Offering};
use crate::outliers::{self, OutlierPolicy, PriceOutlier, RowSource};
use crate::tpu;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Egress rates assumed for a cloud the bundled data does not know.
const ASSUMED_EGRESS: (f64, f64) = (0.09, 0.02);

/// Families whose VMs exist only with their GPUs attached.
const GPU_ONLY_FAMILIES: [&str; 4] = ["a2", "a3", "a4", "g2"];

/// `n1` hosts offered with attachable GPUs (filtered by [`n1_limits`]).
const N1_HOSTS: [&str; 12] = [
    "n1-standard-4",
    "n1-standard-8",
    "n1-standard-16",
    "n1-standard-32",
    "n1-standard-64",
    "n1-standard-96",
    "n1-highmem-4",
    "n1-highmem-8",
    "n1-highmem-16",
    "n1-highmem-32",
    "n1-highmem-64",
    "n1-highmem-96",
];

/// GCP's maximum (vCPUs, memory GiB) of an `n1` host for a GPU count (GCP's GPU docs, as
/// SkyPilot's `_NUM_ACC_TO_MAX_CPU_AND_MEMORY` has them).
fn n1_limits(accelerator: &str, count: f64) -> Option<(f64, f64)> {
    let table: &[(f64, f64, f64)] = match accelerator {
        "K80" => &[
            (1.0, 8.0, 52.0),
            (2.0, 16.0, 104.0),
            (4.0, 32.0, 208.0),
            (8.0, 64.0, 208.0),
        ],
        "P4" => &[(1.0, 24.0, 156.0), (2.0, 48.0, 312.0), (4.0, 96.0, 624.0)],
        "P100" => &[(1.0, 16.0, 104.0), (2.0, 32.0, 208.0), (4.0, 64.0, 208.0)],
        "T4" => &[(1.0, 48.0, 312.0), (2.0, 48.0, 312.0), (4.0, 96.0, 624.0)],
        "V100" => &[
            (1.0, 12.0, 78.0),
            (2.0, 24.0, 156.0),
            (4.0, 48.0, 312.0),
            (8.0, 96.0, 624.0),
        ],
        _ => return None,
    };
    table
        .iter()
        .find(|(n, _, _)| *n == count)
        .map(|(_, cpus, memory)| (*cpus, *memory))
}

/// Which host types an attachable GCP accelerator goes with; `None` if we know no rule.
fn gcp_hosts(accelerator: &str, count: f64) -> Option<Vec<String>> {
    let whole = (count.fract() == 0.0 && count >= 1.0).then_some(count as u32);
    let hosts = match (accelerator, whole) {
        (_, None) => Vec::new(),
        ("A100", Some(16)) => vec!["a2-megagpu-16g".to_owned()],
        ("A100", Some(n)) => vec![format!("a2-highgpu-{n}g")],
        ("A100-80GB", Some(n)) => vec![format!("a2-ultragpu-{n}g")],
        ("H100", Some(n)) => vec![format!("a3-highgpu-{n}g")],
        ("H100-MEGA", Some(n)) => vec![format!("a3-megagpu-{n}g")],
        ("H200", Some(n)) => vec![format!("a3-ultragpu-{n}g")],
        ("B200", Some(n)) => vec![format!("a4-highgpu-{n}g")],
        ("L4", Some(n)) => {
            let sizes: &[u32] = match n {
                1 => &[4, 8, 12, 16, 32],
                2 => &[24],
                4 => &[48],
                8 => &[96],
                _ => &[],
            };
            sizes
                .iter()
                .map(|size| format!("g2-standard-{size}"))
                .collect()
        }
        ("K80" | "P4" | "P100" | "T4" | "V100", Some(_)) => {
            N1_HOSTS.iter().map(|host| (*host).to_owned()).collect()
        }
        _ => return None,
    };
    Some(hosts)
}

fn family(instance_type: &str) -> &str {
    instance_type.split('-').next().unwrap_or(instance_type)
}

/// The cloud subdirectories of a SkyPilot catalog directory: `(cloud name, vms.csv path)`,
/// sorted by name.
pub(crate) fn cloud_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, CatalogError> {
    let list = |dir: &Path| -> Result<Vec<(String, PathBuf)>, CatalogError> {
        let entries = std::fs::read_dir(dir).map_err(|source| CatalogError::ReadDir {
            dir: dir.to_owned(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| CatalogError::ReadDir {
                dir: dir.to_owned(),
                source,
            })?;
            let vms = entry.path().join("vms.csv");
            if vms.is_file() {
                let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
                files.push((name, vms));
            }
        }
        files.sort();
        Ok(files)
    };
    let files = list(dir)?;
    if !files.is_empty() {
        return Ok(files);
    }
    let nested = dir.join("v8");
    if nested.is_dir() {
        let files = list(&nested)?;
        if !files.is_empty() {
            return Ok(files);
        }
    }
    Err(CatalogError::NoCloudFiles {
        dir: dir.to_owned(),
    })
}

/// An imported SkyPilot catalog: the catalog, what was wrong with its rows, and the prices the
/// check flagged (module `outliers`), whatever the policy did with them.
#[derive(Debug)]
pub struct SkypilotImport {
    pub catalog: Catalog,
    pub warnings: Vec<CatalogWarning>,
    pub outliers: Vec<PriceOutlier>,
}

impl Catalog {
    /// Imports a SkyPilot v8 catalog directory (see the module docs for the rules), warning
    /// about outlying prices ([`OutlierPolicy::Warn`]). Bad rows are returned as warnings; a
    /// missing directory or a file without the required columns is an error.
    pub fn from_skypilot_dir(dir: &Path) -> Result<(Catalog, Vec<CatalogWarning>), CatalogError> {
        let import = Catalog::import_skypilot_dir(dir, OutlierPolicy::Warn)?;
        Ok((import.catalog, import.warnings))
    }

    /// [`Catalog::from_skypilot_dir`], with prices far from their instance type's regional
    /// median handled as `policy` says.
    pub fn import_skypilot_dir(
        dir: &Path,
        policy: OutlierPolicy,
    ) -> Result<SkypilotImport, CatalogError> {
        let files = cloud_files(dir)?;
        let defaults = BundledDefaults::load();
        let mut builder = Builder::new();
        let mut warnings = Vec::new();
        let mut sources = Vec::new();
        for (file_idx, (cloud, file)) in files.iter().enumerate() {
            let file = CloudFile {
                cloud,
                path: file,
                idx: file_idx,
            };
            import_cloud(&mut builder, &defaults, file, &mut warnings, &mut sources)?;
        }
        let mut catalog = builder.finish();
        let paths: Vec<PathBuf> = files.into_iter().map(|(_, file)| file).collect();
        let checked = outliers::check_import(&mut catalog, &sources, &paths, policy);
        warnings.extend(checked.warnings);
        // Hourly carbon figures beside the catalog replace the bundled ones region by region.
        let carbon_file = crate::carbon::beside_import(dir);
        if carbon_file.exists() {
            warnings.extend(catalog.load_carbon_intensity(&carbon_file)?);
        }
        Ok(SkypilotImport {
            catalog,
            warnings,
            outliers: checked.outliers,
        })
    }
}

/// A cloud's `vms.csv` being read: the cloud's name, the file's path, and its index among the
/// import's files (what [`RowSource`] records).
#[derive(Clone, Copy)]
struct CloudFile<'a> {
    cloud: &'a str,
    path: &'a Path,
    idx: usize,
}

/// Column indexes, found by header name.
struct Columns {
    instance_type: usize,
    vcpus: usize,
    memory_gib: usize,
    price: usize,
    region: usize,
    accelerator_name: Option<usize>,
    accelerator_count: Option<usize>,
    spot_price: Option<usize>,
    zone: Option<usize>,
    arch: Option<usize>,
}

impl Columns {
    fn find(file: &Path, header: &csv::StringRecord) -> Result<Columns, CatalogError> {
        let names: Vec<&str> = header.iter().map(|name| name.trim()).collect();
        let find = |name: &str| names.iter().position(|column| *column == name);
        let required = ["InstanceType", "vCPUs", "MemoryGiB", "Price", "Region"];
        let missing: Vec<String> = required
            .iter()
            .filter(|name| find(name).is_none())
            .map(|name| (*name).to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(CatalogError::MissingColumns {
                file: file.to_owned(),
                missing,
                found: names
                    .iter()
                    .filter(|name| !name.is_empty())
                    .map(|n| (*n).to_owned())
                    .collect(),
            });
        }
        let required = |name: &str| find(name).expect("checked above");
        Ok(Columns {
            instance_type: required("InstanceType"),
            vcpus: required("vCPUs"),
            memory_gib: required("MemoryGiB"),
            price: required("Price"),
            region: required("Region"),
            accelerator_name: find("AcceleratorName"),
            accelerator_count: find("AcceleratorCount"),
            spot_price: find("SpotPrice"),
            zone: find("AvailabilityZone"),
            arch: find("Arch"),
        })
    }
}

/// A host VM row kept for combining with attachable GPUs.
#[derive(Debug, Clone)]
struct HostRow {
    vcpus: f64,
    memory_gib: f64,
    arch: Option<String>,
    price: Option<f64>,
    spot_price: Option<f64>,
}

/// An attachable-GPU row (empty `InstanceType`).
#[derive(Debug)]
struct GpuRow {
    line: u64,
    name: String,
    count: f64,
    region: String,
    zone: String,
    price: Option<f64>,
    spot_price: Option<f64>,
}

/// Host rows by (host name, region, zone).
type Hosts = HashMap<(String, String, String), HostRow>;

fn import_cloud(
    builder: &mut Builder,
    defaults: &BundledDefaults,
    cloud_file: CloudFile<'_>,
    warnings: &mut Vec<CatalogWarning>,
    sources: &mut Vec<RowSource>,
) -> Result<(), CatalogError> {
    let (cloud_name, file) = (cloud_file.cloud, cloud_file.path);
    let (internet, inter_region) = defaults.egress(cloud_name).unwrap_or_else(|| {
        warnings.push(CatalogWarning {
            file: file.to_owned(),
            line: None,
            problem: RowProblem::AssumedEgress {
                cloud: cloud_name.to_owned(),
                internet_per_gb: ASSUMED_EGRESS.0,
                inter_region_per_gb: ASSUMED_EGRESS.1,
            },
        });
        ASSUMED_EGRESS
    });
    let cloud = builder.cloud(Cloud {
        name: cloud_name.to_owned(),
        internet_egress_per_gb: internet,
        inter_region_egress_per_gb: inter_region,
    });
    let read_error = |source| CatalogError::ReadFile {
        file: file.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .from_path(file)
        .map_err(read_error)?;
    let header = reader.headers().map_err(read_error)?.clone();
    let columns = Columns::find(file, &header)?;
    let is_gcp = cloud_name == "gcp";
    let mut importer = Importer {
        builder: &mut *builder,
        defaults,
        cloud,
        cloud_name,
        file,
        file_idx: cloud_file.idx,
        warnings: &mut *warnings,
        sources: &mut *sources,
        hosts: HashMap::new(),
        gpus: Vec::new(),
    };
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                let line = err.position().map(|position| position.line());
                match err.kind() {
                    csv::ErrorKind::Io(_) => return Err(read_error(err)),
                    _ => {
                        importer.warn(
                            line.unwrap_or(0),
                            RowProblem::MalformedRow {
                                message: malformed_message(&err),
                            },
                        );
                        continue;
                    }
                }
            }
        }
        let line = record.position().map_or(0, |position| position.line());
        if let Err(problem) = importer.row(&columns, &record, line, is_gcp) {
            importer.warn(line, problem);
        }
    }
    importer.combine_gpus();
    let images = file.with_file_name("images.csv");
    if images.is_file() {
        import_images(builder, cloud, &images, warnings)?;
    }
    Ok(())
}

/// Reads a cloud's `images.csv` (module docs, "Default images").
fn import_images(
    builder: &mut Builder,
    cloud: CloudId,
    file: &Path,
    warnings: &mut Vec<CatalogWarning>,
) -> Result<(), CatalogError> {
    let read_error = |source| CatalogError::ReadFile {
        file: file.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .from_path(file)
        .map_err(read_error)?;
    let header = reader.headers().map_err(read_error)?.clone();
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    let find = |name: &str| names.iter().position(|column| *column == name);
    let missing: Vec<String> = ["Tag", "Region", "ImageId"]
        .iter()
        .filter(|name| find(name).is_none())
        .map(|name| (*name).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(CatalogError::MissingColumns {
            file: file.to_owned(),
            missing,
            found: names
                .iter()
                .filter(|name| !name.is_empty())
                .map(|name| (*name).to_owned())
                .collect(),
        });
    }
    let columns = ImageColumns {
        tag: find("Tag"),
        region: find("Region"),
        image_id: find("ImageId"),
        os: find("OS"),
        os_version: find("OSVersion"),
        created: find("CreationDate"),
    };
    let source = file.display().to_string();
    let mut warn = |line: u64, problem: RowProblem| {
        warnings.push(CatalogWarning {
            file: file.to_owned(),
            line: Some(line),
            problem,
        });
    };
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                if let csv::ErrorKind::Io(_) = err.kind() {
                    return Err(read_error(err));
                }
                let line = err.position().map_or(0, |position| position.line());
                warn(
                    line,
                    RowProblem::MalformedRow {
                        message: malformed_message(&err),
                    },
                );
                continue;
            }
        }
        let line = record.position().map_or(0, |position| position.line());
        match image_row(builder.catalog(), cloud, &columns, &record, &source) {
            Ok(Some(image)) => builder.image(image),
            Ok(None) => {}
            Err(problem) => warn(line, problem),
        }
    }
    Ok(())
}

/// Column indexes of an `images.csv`, found by header name.
struct ImageColumns {
    tag: Option<usize>,
    region: Option<usize>,
    image_id: Option<usize>,
    os: Option<usize>,
    os_version: Option<usize>,
    created: Option<usize>,
}

/// One `images.csv` row as an image; `None` for a region the cloud does not offer anything in.
fn image_row(
    catalog: &Catalog,
    cloud: CloudId,
    columns: &ImageColumns,
    record: &csv::StringRecord,
    source: &str,
) -> Result<Option<ImageRow>, RowProblem> {
    let tag = required(
        Some(text(record, columns.tag)).filter(|tag| !tag.is_empty()),
        "Tag",
    )?;
    let flavor = flavor_of_skypilot_tag(tag).ok_or_else(|| RowProblem::UnknownImageTag {
        tag: tag.to_owned(),
    })?;
    let image_id = required(
        Some(text(record, columns.image_id)).filter(|id| !id.is_empty()),
        "ImageId",
    )?;
    let created = text(record, columns.created);
    let is_date = created.len() == 8 && created.bytes().all(|byte| byte.is_ascii_digit());
    if !created.is_empty() && !is_date {
        return Err(RowProblem::BadDate {
            column: "CreationDate".to_owned(),
            text: created.to_owned(),
        });
    }
    let region = match text(record, columns.region) {
        "" => None,
        name => match catalog.find_region(cloud, name) {
            Some(region) => Some(region),
            None => return Ok(None),
        },
    };
    Ok(Some(ImageRow {
        cloud,
        region,
        flavor,
        image_id: image_id.to_owned(),
        os: text(record, columns.os).to_owned(),
        os_version: text(record, columns.os_version).to_owned(),
        created: Some(created.to_owned()).filter(|created| !created.is_empty()),
        source: source.to_owned(),
    }))
}

fn malformed_message(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => err.to_string(),
    }
}

struct Importer<'a> {
    builder: &'a mut Builder,
    defaults: &'a BundledDefaults,
    cloud: CloudId,
    cloud_name: &'a str,
    file: &'a Path,
    file_idx: usize,
    warnings: &'a mut Vec<CatalogWarning>,
    /// Where each offering of the catalog being built was read, by offering index.
    sources: &'a mut Vec<RowSource>,
    hosts: Hosts,
    gpus: Vec<GpuRow>,
}

/// A number column: empty is `None`, anything but a finite non-negative number is a problem.
fn number(
    record: &csv::StringRecord,
    column: Option<usize>,
    name: &str,
) -> Result<Option<f64>, RowProblem> {
    let text = column.and_then(|idx| record.get(idx)).unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(Some(value)),
        _ => Err(RowProblem::BadNumber {
            column: name.to_owned(),
            text: text.to_owned(),
        }),
    }
}

fn text(record: &csv::StringRecord, column: Option<usize>) -> &str {
    column.and_then(|idx| record.get(idx)).unwrap_or("").trim()
}

fn required<T>(value: Option<T>, column: &str) -> Result<T, RowProblem> {
    value.ok_or_else(|| RowProblem::MissingField {
        column: column.to_owned(),
    })
}

/// A price that offers something: zero counts as "not offered".
fn offered(price: Option<f64>) -> Option<f64> {
    price.filter(|price| *price > 0.0)
}

impl Importer<'_> {
    fn warn(&mut self, line: u64, problem: RowProblem) {
        self.warnings.push(CatalogWarning {
            file: self.file.to_owned(),
            line: Some(line),
            problem,
        });
    }

    fn row(
        &mut self,
        columns: &Columns,
        record: &csv::StringRecord,
        line: u64,
        is_gcp: bool,
    ) -> Result<(), RowProblem> {
        let instance_type = text(record, Some(columns.instance_type));
        let accelerator_name = text(record, columns.accelerator_name);
        let accelerator_count = number(record, columns.accelerator_count, "AcceleratorCount")?;
        let price = number(record, Some(columns.price), "Price")?;
        let spot_price = number(record, columns.spot_price, "SpotPrice")?;
        let region = required(
            Some(text(record, Some(columns.region))).filter(|region| !region.is_empty()),
            "Region",
        )?;
        let zone = text(record, columns.zone);
        let accelerator = if accelerator_name.is_empty() {
            None
        } else {
            Some((
                accelerator_name,
                required(accelerator_count, "AcceleratorCount")?,
            ))
        };

        if instance_type.is_empty() {
            let Some((name, count)) = accelerator.filter(|_| is_gcp) else {
                return Err(RowProblem::MissingField {
                    column: "InstanceType".to_owned(),
                });
            };
            if tpu::is_tpu(name) {
                // A single-host slice is one TPU VM, offered under the slice's own name; the
                // file says nothing of its host, so the shape comes from `tpu::TPU_HOSTS`.
                // Larger slices span several VMs and are skipped (see the `tpu` module).
                let Some(host) = tpu::single_host_slice(name) else {
                    return Ok(());
                };
                let spec = TypeSpec {
                    name,
                    vcpus: host.vcpus,
                    memory_gib: host.memory_gib,
                    accelerator: Some((name, count)),
                    arch: None,
                };
                return self.offer(&spec, region, zone, (price, spot_price), line);
            }
            self.gpus.push(GpuRow {
                line,
                name: name.to_owned(),
                count,
                region: region.to_owned(),
                zone: zone.to_owned(),
                price,
                spot_price,
            });
            return Ok(());
        }

        let vcpus = required(number(record, Some(columns.vcpus), "vCPUs")?, "vCPUs")?;
        let memory_gib = required(
            number(record, Some(columns.memory_gib), "MemoryGiB")?,
            "MemoryGiB",
        )?;
        let arch = Some(text(record, columns.arch)).filter(|arch| !arch.is_empty());

        if is_gcp && accelerator.is_none() {
            let family = family(instance_type);
            let gpu_only = GPU_ONLY_FAMILIES.contains(&family);
            if gpu_only || family == "n1" {
                self.hosts.insert(
                    (instance_type.to_owned(), region.to_owned(), zone.to_owned()),
                    HostRow {
                        vcpus,
                        memory_gib,
                        arch: arch.map(str::to_owned),
                        price,
                        spot_price,
                    },
                );
            }
            if gpu_only {
                return Ok(());
            }
        }

        let spec = TypeSpec {
            name: instance_type,
            vcpus,
            memory_gib,
            accelerator,
            arch,
        };
        self.offer(&spec, region, zone, (price, spot_price), line)
    }

    /// Offers `spec` in `region` (and `zone`) at `(price, spot_price)`, read at `line`.
    fn offer(
        &mut self,
        spec: &TypeSpec<'_>,
        region: &str,
        zone: &str,
        (price, spot_price): (Option<f64>, Option<f64>),
        line: u64,
    ) -> Result<(), RowProblem> {
        let region_id = self.builder.region(self.cloud, region);
        if self
            .builder
            .catalog()
            .region(region_id)
            .carbon_g_per_kwh
            .is_none()
        {
            let carbon = self.defaults.carbon(self.cloud_name, region);
            self.builder.set_carbon(region_id, carbon);
            let hourly = self.defaults.carbon_hourly(self.cloud_name, region);
            self.builder.set_carbon_hourly(region_id, hourly);
        }
        let zone_id = (!zone.is_empty()).then(|| self.builder.zone(region_id, zone));
        let (price, spot_price) = (offered(price), offered(spot_price));
        if price.is_none() && spot_price.is_none() {
            return Ok(());
        }
        let instance_type = self
            .builder
            .instance_type(self.cloud, spec)
            .map_err(|conflict| RowProblem::ConflictingSpecs {
                instance_type: spec.name.to_owned(),
                first: conflict.first,
                here: conflict.here,
            })?;
        let added = self.builder.offering(Offering {
            instance_type,
            region: region_id,
            zone: zone_id,
            price,
            spot_price,
        });
        if !added {
            let place = if zone.is_empty() {
                region.to_owned()
            } else {
                format!("{region}/{zone}")
            };
            return Err(RowProblem::DuplicateOffering {
                instance_type: spec.name.to_owned(),
                place,
            });
        }
        self.sources.push(RowSource {
            file: self.file_idx,
            line,
        });
        Ok(())
    }

    /// Combines the attachable-GPU rows with their host rows (module docs, "GCP's attachable
    /// GPUs").
    fn combine_gpus(&mut self) {
        let gpus = std::mem::take(&mut self.gpus);
        let mut unknown: Vec<String> = Vec::new();
        let mut key = (String::new(), String::new(), String::new());
        for gpu in &gpus {
            let Some(hosts) = gcp_hosts(&gpu.name, gpu.count) else {
                if !unknown.contains(&gpu.name) {
                    unknown.push(gpu.name.clone());
                    self.warn(
                        gpu.line,
                        RowProblem::NoHostRule {
                            accelerator: gpu.name.clone(),
                        },
                    );
                }
                continue;
            };
            let limits = n1_limits(&gpu.name, gpu.count);
            for host_name in hosts {
                key.0 = host_name;
                key.1.clone_from(&gpu.region);
                key.2.clone_from(&gpu.zone);
                let Some(host) = self.hosts.get(&key).cloned() else {
                    continue;
                };
                if family(&key.0) == "n1" {
                    match limits {
                        Some((cpus, memory)) if host.vcpus <= cpus && host.memory_gib <= memory => {
                        }
                        _ => continue,
                    }
                }
                let sum = |a: Option<f64>, b: Option<f64>| Some(a? + b?);
                let spec = TypeSpec {
                    name: &key.0,
                    vcpus: host.vcpus,
                    memory_gib: host.memory_gib,
                    accelerator: Some((&gpu.name, gpu.count)),
                    arch: host.arch.as_deref(),
                };
                let price = sum(host.price, gpu.price);
                let spot_price = sum(host.spot_price, gpu.spot_price);
                let prices = (price, spot_price);
                if let Err(problem) = self.offer(&spec, &gpu.region, &gpu.zone, prices, gpu.line) {
                    self.warn(gpu.line, problem);
                }
            }
        }
    }
}

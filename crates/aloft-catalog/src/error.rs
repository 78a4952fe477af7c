//! What can go wrong while loading a catalog, and what is merely suspicious.
//!
//! Loading is partial validation (STYLE.md §3): a bad row is a [`CatalogWarning`] naming the file
//! and line and the load goes on without it; only a problem with a whole source (a missing
//! directory, a file without the required columns) is a [`CatalogError`].

use crate::outliers::{OUTLIER_FACTOR, PriceKind};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// A catalog source that could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("reading catalog directory {}", dir.display())]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "catalog directory {} has no `<cloud>/vms.csv` (nor `v8/<cloud>/vms.csv`); \
         expected SkyPilot's v8 catalog layout",
        dir.display()
    )]
    NoCloudFiles { dir: PathBuf },
    #[error("reading catalog file {}", file.display())]
    ReadFile {
        file: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("reading carbon intensity file {}", file.display())]
    ReadCarbon {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {problem}", file.display())]
    BadCarbonRow {
        file: PathBuf,
        line: u64,
        problem: String,
    },
    #[error(
        "catalog file {} lacks the required column(s) {}; found {}",
        file.display(),
        missing.join(", "),
        if found.is_empty() { "no header".to_owned() } else { found.join(", ") }
    )]
    MissingColumns {
        file: PathBuf,
        missing: Vec<String>,
        found: Vec<String>,
    },
}

/// One row (or, with `line: None`, one file) that was skipped or adjusted while importing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogWarning {
    pub file: PathBuf,
    /// 1-based line number in `file`, where the problem is a row's.
    pub line: Option<u64>,
    pub problem: RowProblem,
}

impl fmt::Display for CatalogWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.problem),
            None => write!(f, "{}: {}", self.file.display(), self.problem),
        }
    }
}

/// Why a row was skipped (or a file adjusted).
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum RowProblem {
    #[error("row skipped: the {column} column is empty")]
    MissingField { column: String },
    #[error("row skipped: {column} is `{text}`, not a finite non-negative number")]
    BadNumber { column: String, text: String },
    #[error("row skipped: {column} is `{text}`, not a date in YYYYMMDD form")]
    BadDate { column: String, text: String },
    #[error(
        "row skipped: image tag `{tag}` is not a default image aloft knows (expected \
         `skypilot:[custom-]cpu-ubuntu[-N...]` or `skypilot:[custom-]gpu-ubuntu[-N...]`)"
    )]
    UnknownImageTag { tag: String },
    #[error("row skipped: malformed CSV ({message})")]
    MalformedRow { message: String },
    #[error(
        "row skipped: {instance_type} was already listed with {first} (vCPUs, memory GiB, \
         accelerator) and here with {here}"
    )]
    ConflictingSpecs {
        instance_type: String,
        first: String,
        here: String,
    },
    #[error("row skipped: {instance_type} in {place} was already listed on an earlier line")]
    DuplicateOffering {
        instance_type: String,
        place: String,
    },
    #[error(
        "rows skipped: no known host VM family for attachable accelerator {accelerator} (first \
         seen here)"
    )]
    NoHostRule { accelerator: String },
    #[error(
        "no egress rates known for cloud `{cloud}`; assuming ${internet_per_gb}/GB to the \
         internet and ${inter_region_per_gb}/GB between regions"
    )]
    AssumedEgress {
        cloud: String,
        internet_per_gb: f64,
        inter_region_per_gb: f64,
    },
    #[error(
        "price outlier kept: {instance_type} in {place}: {kind} ${price}/h is {ratio:.2}x the \
         median ${median:.4}/h of its {n_regions} regions (the check flags more than \
         {OUTLIER_FACTOR}x either way)"
    )]
    PriceOutlier {
        instance_type: String,
        place: String,
        kind: PriceKind,
        price: f64,
        median: f64,
        ratio: f64,
        n_regions: usize,
    },
    #[error(
        "dropped {count} price(s) more than {OUTLIER_FACTOR}x from their instance type's median \
         regional price"
    )]
    PriceOutliersDropped { count: usize },
    #[error("row skipped: the catalog has no region {place}")]
    UnknownCarbonRegion { place: String },
}

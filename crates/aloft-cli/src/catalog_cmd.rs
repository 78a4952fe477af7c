//! `aloft catalog`: list instance types with prices, a GPU view (`aloft catalog gpus`), and the
//! prices an imported catalog's check flagged (`aloft catalog --check`).
//!
//! The command is a thin view over `aloft_catalog`'s queries ([`Catalog::list`],
//! [`Catalog::gpus`], [`Catalog::gpu_summary`]), which match requirements with the same
//! predicate as the optimizer. [`load_catalog`] is also how `aloft launch` gets its catalog, so
//! `--catalog` and `--catalog-outliers` mean the same to every command.

use crate::output::{OutputFormat, new_table, number, table_text};
use aloft_catalog::{
    AcceleratorFilter, Catalog, CatalogWarning, GpuFilter, GpuRow, GpuSummary, ListFilter, ListRow,
    OUTLIER_FACTOR, OutlierPolicy, PriceOutlier, RowProblem, did_you_mean,
};
use aloft_types::Amount;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Rows a table shows unless `--all` is given.
const DEFAULT_ROWS: usize = 25;
/// Import warnings printed before the rest are summarised as a count.
const SHOWN_WARNINGS: usize = 5;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    aloft catalog --cpus 8+ --memory 32+\n  \
    aloft catalog --gpus V100 --spot\n  \
    aloft catalog --cloud gcp --region us-central1 --instance-type n2-\n  \
    aloft catalog gpus\n  \
    aloft catalog gpus A100:8 --catalog ../shared/catalogs/skypilot-v8\n  \
    aloft catalog --check --catalog ../shared/catalogs/skypilot-v8")]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub view: Option<CatalogView>,

    /// List the imported catalog's prices that are far from their instance type's median
    /// regional price (file:line, price, median, ratio) instead of instance types.
    #[arg(long)]
    pub check: bool,

    /// vCPUs: `8` for exactly 8, `8+` for at least 8.
    #[arg(long, value_parser = parse_amount)]
    pub cpus: Option<Amount>,

    /// Memory in GiB: `32` or `32+`.
    #[arg(long, value_parser = parse_amount)]
    pub memory: Option<Amount>,

    /// Accelerators: `A100` (any count) or `A100:8`.
    #[arg(long, value_parser = AcceleratorFilter::parse)]
    pub gpus: Option<AcceleratorFilter>,

    /// Price spot offers instead of on-demand ones.
    #[arg(long)]
    pub spot: bool,

    /// Only instance types whose name contains this text, e.g. `m6i` or `Standard_D`.
    #[arg(long)]
    pub instance_type: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options shared by the listing and `gpus`.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// Only this cloud (`aws`, `gcp`, `azure`, ...).
    #[arg(long, global = true)]
    pub cloud: Option<String>,

    /// Only this region, e.g. `us-east-1`.
    #[arg(long, global = true)]
    pub region: Option<String>,

    #[command(flatten)]
    pub source: CatalogSource,

    /// Output format; JSON is an array of objects with snake_case fields and never truncated.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table, global = true)]
    pub output: OutputFormat,

    /// Show every row (tables show the first 25).
    #[arg(long, global = true)]
    pub all: bool,
}

/// Where the catalog comes from: `--catalog DIR` (or `ALOFT_CATALOG`) over the bundled one, and
/// what its import does with outlying prices. Flatten this into any command that needs a
/// catalog, then call [`load_catalog`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CatalogSource {
    /// A SkyPilot-format (v8) catalog directory whose clouds replace the bundled ones.
    #[arg(long, value_name = "DIR", env = "ALOFT_CATALOG", global = true)]
    pub catalog: Option<PathBuf>,

    /// What the import does with a price more than 4x from its instance type's median regional
    /// price: `warn` (keep it, say so with file:line), `drop` (remove it) or `keep` (silently).
    #[arg(
        long,
        value_name = "keep|drop|warn",
        env = "ALOFT_CATALOG_OUTLIERS",
        global = true,
        default_value = "warn",
        value_parser = parse_outlier_policy
    )]
    pub catalog_outliers: OutlierPolicy,

    /// Grid carbon intensity by hour (CSV: cloud, region, hour, carbon_g_per_kwh; hour 0-23 of a
    /// typical day UTC, or a UTC hour such as 2026-12-08T13:00Z): replaces the hourly figures of
    /// the regions it gives (docs/optimizer.md, "Carbon by hour").
    #[arg(
        long,
        value_name = "FILE",
        env = "ALOFT_CARBON_INTENSITY",
        global = true
    )]
    pub carbon_intensity: Option<PathBuf>,
}

fn parse_outlier_policy(text: &str) -> Result<OutlierPolicy, String> {
    OutlierPolicy::parse(text)
        .ok_or_else(|| format!("`{text}` is not an outlier policy; expected keep, drop or warn"))
}

#[derive(Debug, clap::Subcommand)]
pub enum CatalogView {
    /// Accelerators: every kind with its counts and clouds, or with a name (`A100`, `A100:8`)
    /// the instance types carrying it with their cheapest on-demand and spot prices.
    Gpus(GpusArgs),
}

#[derive(Debug, clap::Args)]
pub struct GpusArgs {
    /// `NAME` or `NAME:COUNT`, e.g. `A100` or `A100:8`.
    #[arg(value_parser = AcceleratorFilter::parse)]
    pub accelerator: Option<AcceleratorFilter>,
}

fn parse_amount(text: &str) -> Result<Amount, String> {
    Amount::parse(text).map_err(|err| err.to_string())
}

/// The bundled catalog, with the SkyPilot-format catalog `source` names (if any) imported
/// under its outlier policy and merged over it, through the on-disk cache. Import warnings go
/// to stderr, a few lines plus a count.
pub fn load_catalog(source: &CatalogSource) -> Result<Catalog> {
    let mut catalog = Catalog::bundled();
    if let Some(dir) = &source.catalog {
        let load = import(dir, source.catalog_outliers)?;
        print_warnings(dir, &load.warnings);
        catalog.merge(load.catalog);
    }
    if let Some(file) = &source.carbon_intensity {
        let warnings = catalog.load_carbon_intensity(file)?;
        for line in warning_lines(file, &warnings) {
            eprintln!("{line}");
        }
    }
    Ok(catalog)
}

fn import(dir: &Path, policy: OutlierPolicy) -> Result<aloft_catalog::CachedLoad> {
    let cache_dir = aloft_catalog::default_cache_dir();
    Ok(Catalog::load_dir_cached_with(
        dir,
        cache_dir.as_deref(),
        policy,
    )?)
}

fn print_warnings(dir: &Path, warnings: &[CatalogWarning]) {
    let (ordered, outliers) = outliers_first(warnings);
    for line in warning_lines(dir, &ordered) {
        eprintln!("{line}");
    }
    if outliers > 0 {
        eprintln!(
            "hint: `aloft catalog --check` lists the {outliers} outlying price(s); \
             `--catalog-outliers drop` (or ALOFT_CATALOG_OUTLIERS=drop) removes them, `keep` \
             keeps them silently"
        );
    }
}

/// The import's warnings with the outlying prices first (they change what the planner picks,
/// while a skipped row only narrows the choice), and how many of those there are.
fn outliers_first(warnings: &[CatalogWarning]) -> (Vec<CatalogWarning>, usize) {
    let (mut ordered, others): (Vec<CatalogWarning>, Vec<CatalogWarning>) = warnings
        .iter()
        .cloned()
        .partition(|warning| matches!(warning.problem, RowProblem::PriceOutlier { .. }));
    let outliers = ordered.len();
    ordered.extend(others);
    (ordered, outliers)
}

/// The first few warnings, then a count of the rest.
fn warning_lines(dir: &Path, warnings: &[CatalogWarning]) -> Vec<String> {
    let mut lines: Vec<String> = warnings
        .iter()
        .take(SHOWN_WARNINGS)
        .map(|warning| format!("warning: {warning}"))
        .collect();
    if warnings.len() > SHOWN_WARNINGS {
        lines.push(format!(
            "warning: ... and {} more ({} warnings in all while importing {})",
            warnings.len() - SHOWN_WARNINGS,
            warnings.len(),
            dir.display()
        ));
    }
    lines
}

pub fn run(args: CatalogArgs) -> Result<ExitCode> {
    if args.check {
        return check(&args);
    }
    if args.view.is_some() {
        let list_only = [
            ("--cpus", args.cpus.is_some()),
            ("--memory", args.memory.is_some()),
            ("--gpus", args.gpus.is_some()),
            ("--spot", args.spot),
            ("--instance-type", args.instance_type.is_some()),
        ];
        if let Some((flag, _)) = list_only.iter().find(|(_, given)| *given) {
            bail!("{flag} filters the instance type listing, not `aloft catalog gpus`");
        }
    }
    let common = &args.common;
    let catalog = load_catalog(&common.source)?;
    check_place(&catalog, common.cloud.as_deref(), common.region.as_deref())?;
    match &args.view {
        None => {
            if let Some(accelerator) = &args.gpus {
                check_accelerator(&catalog, &accelerator.name)?;
            }
            let filter = ListFilter {
                cpus: args.cpus,
                memory: args.memory,
                accelerator: args.gpus.clone(),
                cloud: common.cloud.clone(),
                region: common.region.clone(),
                spot: args.spot,
                instance_type: args.instance_type.clone(),
            };
            let rows = catalog.list(&filter);
            match common.output {
                OutputFormat::Json => print_json(&rows)?,
                OutputFormat::Table => show(render_list(&rows, args.spot, common.all)),
            }
        }
        Some(CatalogView::Gpus(gpus)) => {
            if let Some(accelerator) = &gpus.accelerator {
                check_accelerator(&catalog, &accelerator.name)?;
            }
            let filter = GpuFilter {
                accelerator: gpus.accelerator.clone(),
                cloud: common.cloud.clone(),
                region: common.region.clone(),
            };
            match (&gpus.accelerator, common.output) {
                (None, OutputFormat::Json) => print_json(&catalog.gpu_summary(&filter))?,
                (None, OutputFormat::Table) => {
                    show(render_gpu_summary(
                        &catalog.gpu_summary(&filter),
                        common.all,
                    ));
                }
                (Some(_), OutputFormat::Json) => print_json(&catalog.gpus(&filter))?,
                (Some(_), OutputFormat::Table) => {
                    show(render_gpus(&catalog.gpus(&filter), common.all));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `aloft catalog --check`: the imported catalog's flagged prices, as a table or JSON. The other
/// import warnings still go to stderr; the outlier warnings do not (the table says it all).
fn check(args: &CatalogArgs) -> Result<ExitCode> {
    let common = &args.common;
    let other_flags = [
        ("`aloft catalog gpus`", args.view.is_some()),
        ("--cpus", args.cpus.is_some()),
        ("--memory", args.memory.is_some()),
        ("--gpus", args.gpus.is_some()),
        ("--spot", args.spot),
        ("--instance-type", args.instance_type.is_some()),
        ("--cloud", common.cloud.is_some()),
        ("--region", common.region.is_some()),
    ];
    if let Some((flag, _)) = other_flags.iter().find(|(_, given)| *given) {
        bail!("--check lists every flagged price of the imported catalog; {flag} does not apply");
    }
    let Some(dir) = &common.source.catalog else {
        bail!(
            "--check judges the prices of an imported catalog: give --catalog DIR (or set \
             ALOFT_CATALOG)"
        );
    };
    let load = import(dir, common.source.catalog_outliers)?;
    let others: Vec<CatalogWarning> = load
        .warnings
        .iter()
        .filter(|warning| !matches!(warning.problem, RowProblem::PriceOutlier { .. }))
        .cloned()
        .collect();
    for line in warning_lines(dir, &others) {
        eprintln!("{line}");
    }
    match common.output {
        OutputFormat::Json => print_json(&load.outliers)?,
        OutputFormat::Table => show(render_outliers(&load.outliers)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The flagged prices table (every row: a report to act on, a few dozen rows on the real
/// snapshot) and a summary line; `Err` is the message for none.
fn render_outliers(outliers: &[PriceOutlier]) -> Result<String, String> {
    if outliers.is_empty() {
        return Err(format!(
            "No price is more than {OUTLIER_FACTOR}x from its instance type's median regional \
             price."
        ));
    }
    let mut table = new_table(&[
        "ROW",
        "CLOUD",
        "INSTANCE TYPE",
        "ACCELERATORS",
        "PLACE",
        "KIND",
        "$/h",
        "MEDIAN $/h",
        "RATIO",
        "REGIONS",
        "IMPORT",
    ]);
    for outlier in outliers {
        table.add_row(vec![
            format!("{}:{}", outlier.file.display(), outlier.line),
            outlier.cloud.clone(),
            outlier.instance_type.clone(),
            accelerator_label(
                outlier.accelerator_name.as_deref(),
                outlier.accelerator_count,
            ),
            outlier.place(),
            outlier.kind.to_string(),
            format!("${}", outlier.price),
            format!("${:.4}", outlier.median),
            format!("{:.2}x", outlier.ratio),
            outlier.n_regions.to_string(),
            if outlier.dropped { "dropped" } else { "kept" }.to_owned(),
        ]);
    }
    let mut text = table_text(&table);
    let count = outliers.len();
    text.push_str(&format!(
        "\n{count} price{} flagged (more than {OUTLIER_FACTOR}x from its instance type's median \
         regional price, on-demand and spot judged apart, types offered in {} or more regions).\n",
        if count == 1 { "" } else { "s" },
        aloft_catalog::MIN_REGIONS_JUDGED,
    ));
    Ok(text)
}

/// Unknown `--cloud` / `--region` values are mistakes worth an error, not an empty table.
fn check_place(catalog: &Catalog, cloud: Option<&str>, region: Option<&str>) -> Result<()> {
    let clouds: Vec<&str> = catalog
        .clouds
        .iter()
        .map(|cloud| cloud.name.as_str())
        .collect();
    let cloud_id = match cloud {
        None => None,
        Some(name) => match catalog.find_cloud(name) {
            Some(id) => Some(id),
            None => bail!("unknown cloud `{name}`{}", hint(name, &clouds)),
        },
    };
    if let Some(region) = region {
        let mut known: Vec<&str> = catalog
            .regions
            .iter()
            .filter(|known| cloud_id.is_none_or(|cloud| known.cloud == cloud))
            .map(|known| known.name.as_str())
            .collect();
        if !known.contains(&region) {
            known.sort();
            known.dedup();
            let scope = cloud.map_or(String::new(), |cloud| format!(" in cloud {cloud}"));
            bail!("unknown region `{region}`{scope}{}", hint(region, &known));
        }
    }
    Ok(())
}

fn check_accelerator(catalog: &Catalog, name: &str) -> Result<()> {
    if catalog.knows_accelerator(name) {
        return Ok(());
    }
    if let Some(reason) = aloft_catalog::unsupported_accelerator_reason(name) {
        bail!("no accelerator named `{name}` in the catalog: {reason}");
    }
    let known = catalog.accelerator_names();
    bail!(
        "no accelerator named `{name}` in the catalog{}",
        hint(name, &known)
    )
}

/// `; did you mean `x`? Known: a, b, c (and 12 more)`.
fn hint(name: &str, known: &[&str]) -> String {
    const SHOWN: usize = 15;
    let mut text = match did_you_mean(name, known.iter().copied()) {
        Some(suggestion) => format!("; did you mean `{suggestion}`? Known: "),
        None => "; known: ".to_owned(),
    };
    text.push_str(
        &known
            .iter()
            .take(SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if known.len() > SHOWN {
        text.push_str(&format!(" (and {} more)", known.len() - SHOWN));
    }
    text
}

/// Prints a rendered table, or the "nothing matched" message to stderr (not an error: an empty
/// answer is an answer).
fn show(rendered: Result<String, String>) {
    match rendered {
        Ok(text) => crate::output::out!("{text}"),
        Err(message) => eprintln!("{message}"),
    }
}

fn print_json<T: serde::Serialize>(rows: &T) -> Result<()> {
    crate::output::outln!("{}", serde_json::to_string_pretty(rows)?);
    Ok(())
}

fn price(value: f64) -> String {
    if value < 10.0 {
        format!("${value:.3}")
    } else {
        format!("${value:.2}")
    }
}

fn accelerator_label(name: Option<&str>, count: Option<f64>) -> String {
    match (name, count) {
        (Some(name), Some(count)) => format!("{name}:{}", number(count)),
        _ => "-".to_owned(),
    }
}

/// How many rows to show, and the note about the rest.
fn limit(total: usize, all: bool, what: &str) -> (usize, Option<String>) {
    if all || total <= DEFAULT_ROWS {
        return (total, None);
    }
    let note = format!(
        "{} more {what} not shown (cheapest first); use --all to see all {total}, or narrow with \
         filters",
        total - DEFAULT_ROWS
    );
    (DEFAULT_ROWS, Some(note))
}

/// The listing table (and the note on hidden rows); `Err` is the message for no rows.
fn render_list(rows: &[ListRow], spot: bool, all: bool) -> Result<String, String> {
    if rows.is_empty() {
        return Err(format!(
            "No instance type matches these filters{}.",
            if spot { " with a spot offer" } else { "" }
        ));
    }
    let price_header = if spot { "SPOT $/h" } else { "$/h" };
    let mut table = new_table(&[
        "CLOUD",
        "INSTANCE TYPE",
        "vCPUs",
        "MEM(GiB)",
        "ACCELERATORS",
        "CHEAPEST IN",
        price_header,
        "UP TO $/h",
        "REGIONS",
    ]);
    let (shown, note) = limit(rows.len(), all, "instance types");
    for row in &rows[..shown] {
        let place = match &row.zone {
            Some(zone) => format!("{}/{zone}", row.region),
            None => row.region.clone(),
        };
        table.add_row(vec![
            row.cloud.clone(),
            row.instance_type.clone(),
            number(row.vcpus),
            number(row.memory_gib),
            accelerator_label(row.accelerator_name.as_deref(), row.accelerator_count),
            place,
            price(row.price),
            if row.max_price > row.price {
                price(row.max_price)
            } else {
                "-".to_owned()
            },
            row.n_regions.to_string(),
        ]);
    }
    let mut text = table_text(&table);
    if let Some(note) = note {
        text.push_str(&format!("\n{note}\n"));
    }
    Ok(text)
}

fn render_gpu_summary(rows: &[GpuSummary], all: bool) -> Result<String, String> {
    if rows.is_empty() {
        return Err("No accelerators in the catalog match these filters.".to_owned());
    }
    let mut table = new_table(&[
        "ACCELERATOR",
        "COUNTS",
        "CLOUDS",
        "FROM $/h PER ACCELERATOR",
    ]);
    let (shown, note) = limit(rows.len(), all, "accelerators");
    for row in &rows[..shown] {
        let counts: Vec<String> = row.counts.iter().map(|count| number(*count)).collect();
        table.add_row(vec![
            row.accelerator_name.clone(),
            counts.join(", "),
            row.clouds.join(", "),
            row.min_price_per_accelerator.map_or("-".to_owned(), price),
        ]);
    }
    let mut text = table_text(&table);
    if let Some(note) = note {
        text.push_str(&format!("\n{note}\n"));
    }
    text.push_str("\nDetails of one kind: aloft catalog gpus NAME[:COUNT]\n");
    Ok(text)
}

fn render_gpus(rows: &[GpuRow], all: bool) -> Result<String, String> {
    if rows.is_empty() {
        return Err("No instance type carries that accelerator with these filters.".to_owned());
    }
    let mut table = new_table(&[
        "ACCELERATOR",
        "COUNT",
        "CLOUD",
        "INSTANCE TYPE",
        "vCPUs",
        "MEM(GiB)",
        "$/h",
        "REGION",
        "SPOT $/h",
        "SPOT REGION",
    ]);
    let (shown, note) = limit(rows.len(), all, "instance types");
    let dash = || "-".to_owned();
    for row in &rows[..shown] {
        table.add_row(vec![
            row.accelerator_name.clone(),
            number(row.accelerator_count),
            row.cloud.clone(),
            row.instance_type.clone(),
            number(row.vcpus),
            number(row.memory_gib),
            row.price.map_or_else(dash, price),
            row.region.clone().unwrap_or_else(dash),
            row.spot_price.map_or_else(dash, price),
            row.spot_region.clone().unwrap_or_else(dash),
        ]);
    }
    let mut text = table_text(&table);
    if let Some(note) = note {
        text.push_str(&format!("\n{note}\n"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aloft_catalog::RowProblem;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(subcommand)]
        command: Wrapped,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Wrapped {
        Catalog(CatalogArgs),
    }

    fn parse(args: &[&str]) -> Result<CatalogArgs, clap::Error> {
        let args = ["aloft", "catalog"].iter().chain(args);
        Wrapper::try_parse_from(args).map(|wrapper| match wrapper.command {
            Wrapped::Catalog(args) => args,
        })
    }

    #[test]
    fn parses_the_listing_flags() {
        let args = parse(&[
            "--cpus",
            "8+",
            "--memory",
            "32",
            "--gpus",
            "A100:8",
            "--spot",
            "--instance-type",
            "m6i",
            "--cloud",
            "aws",
            "--region",
            "us-east-1",
            "-o",
            "json",
            "--all",
            "--catalog",
            "/some/dir",
        ])
        .unwrap();
        assert!(args.view.is_none());
        assert_eq!(args.cpus, Some(Amount::at_least(8.0)));
        assert_eq!(args.memory, Some(Amount::exactly(32.0)));
        assert_eq!(args.gpus.unwrap().count, Some(8.0));
        assert!(args.spot && args.common.all);
        assert_eq!(args.common.output, OutputFormat::Json);
        assert_eq!(args.common.source.catalog, Some(PathBuf::from("/some/dir")));
    }

    #[test]
    fn shared_flags_work_after_gpus() {
        let args = parse(&["gpus", "A100:8", "--cloud", "gcp", "-o", "json", "--all"]).unwrap();
        let Some(CatalogView::Gpus(gpus)) = &args.view else {
            panic!("{args:?}")
        };
        assert_eq!(gpus.accelerator.as_ref().unwrap().name, "A100");
        assert_eq!(args.common.cloud.as_deref(), Some("gcp"));
        assert_eq!(args.common.output, OutputFormat::Json);
        assert!(parse(&["gpus"]).unwrap().view.is_some());
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(&["--cpus", "eight"]).is_err());
        assert!(parse(&["--gpus", "A100:x"]).is_err());
        assert!(parse(&["-o", "yaml"]).is_err());
        assert!(parse(&["gpus", "A100", "--cpus", "8"]).is_err());
    }

    #[test]
    fn list_table_shows_the_cheapest_rows_first() {
        let catalog = Catalog::bundled();
        let rows = catalog.list(&ListFilter::default());
        let text = render_list(&rows, false, false).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("INSTANCE TYPE") && lines[0].contains("CHEAPEST IN"));
        assert_eq!(lines.len(), 1 + DEFAULT_ROWS + 2);
        let hidden = rows.len() - DEFAULT_ROWS;
        assert!(text.ends_with(&format!(
            "{hidden} more instance types not shown (cheapest first); use --all to see all {}, \
             or narrow with filters\n",
            rows.len()
        )));
        let all = render_list(&rows, false, true).unwrap();
        assert_eq!(all.lines().count(), 1 + rows.len());
        assert!(render_list(&[], true, false).unwrap_err().contains("spot"));
    }

    #[test]
    fn list_table_row() {
        let catalog = Catalog::bundled();
        let filter = ListFilter {
            instance_type: Some("p3.2xlarge".to_owned()),
            ..ListFilter::default()
        };
        let text = render_list(&catalog.list(&filter), false, false).unwrap();
        let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(
            row,
            [
                "aws",
                "p3.2xlarge",
                "8",
                "61",
                "V100:1",
                "us-east-1/us-east-1a",
                "$3.060",
                "$4.194",
                "5"
            ]
        );
    }

    #[test]
    fn json_rows_have_stable_snake_case_fields() {
        let catalog = Catalog::bundled();
        let rows = serde_json::to_value(catalog.list(&ListFilter::default())).unwrap();
        let first = rows[0].as_object().unwrap();
        let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "accelerator_count",
                "accelerator_name",
                "arch",
                "cloud",
                "instance_type",
                "max_price",
                "memory_gib",
                "n_regions",
                "price",
                "region",
                "spot",
                "vcpus",
                "zone",
            ]
        );
        let filter = GpuFilter {
            accelerator: Some(AcceleratorFilter::parse("V100").unwrap()),
            ..GpuFilter::default()
        };
        let gpus = serde_json::to_value(catalog.gpus(&filter)).unwrap();
        for key in [
            "accelerator_name",
            "accelerator_count",
            "price",
            "spot_price",
            "spot_region",
        ] {
            assert!(gpus[0].get(key).is_some(), "{key}");
        }
        let summary = serde_json::to_value(catalog.gpu_summary(&GpuFilter::default())).unwrap();
        for key in [
            "accelerator_name",
            "counts",
            "clouds",
            "min_price_per_accelerator",
        ] {
            assert!(summary[0].get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn gpu_tables() {
        let catalog = Catalog::bundled();
        let summary =
            render_gpu_summary(&catalog.gpu_summary(&GpuFilter::default()), false).unwrap();
        let a100 = summary
            .lines()
            .find(|line| line.trim_start().starts_with("A100 "))
            .unwrap();
        assert_eq!(
            a100.split_whitespace().collect::<Vec<_>>(),
            ["A100", "1,", "8", "aws,", "azure,", "gcp", "$2.428"]
        );
        let filter = GpuFilter {
            accelerator: Some(AcceleratorFilter::parse("A100:8").unwrap()),
            ..GpuFilter::default()
        };
        let detail = render_gpus(&catalog.gpus(&filter), false).unwrap();
        assert_eq!(detail.lines().count(), 1 + 3, "{detail}");
        assert!(detail.contains("p4d.24xlarge") && detail.contains("a2-highgpu-8g"));
    }

    #[test]
    fn unknown_names_get_hints() {
        let catalog = Catalog::bundled();
        let err = check_place(&catalog, Some("awz"), None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown cloud `awz`; did you mean `aws`? Known: aws, gcp, azure"
        );
        let err = check_place(&catalog, Some("gcp"), Some("us-east-1"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown region `us-east-1` in cloud gcp; did you mean `us-east1`?"),
            "{err}"
        );
        assert!(check_place(&catalog, None, Some("eastus")).is_ok());
        let err = check_accelerator(&catalog, "A10O").unwrap_err().to_string();
        assert!(err.contains("did you mean `A100`?"), "{err}");
        assert!(check_accelerator(&catalog, "a100").is_ok());
    }

    #[test]
    fn warnings_are_capped() {
        let warning = |line| CatalogWarning {
            file: PathBuf::from("cat/aws/vms.csv"),
            line: Some(line),
            problem: RowProblem::MissingField {
                column: "Region".to_owned(),
            },
        };
        let warnings: Vec<CatalogWarning> = (2..10).map(warning).collect();
        let lines = warning_lines(Path::new("cat"), &warnings);
        assert_eq!(lines.len(), SHOWN_WARNINGS + 1);
        assert_eq!(
            lines[0],
            "warning: cat/aws/vms.csv:2: row skipped: the Region column is empty"
        );
        assert_eq!(
            lines[5],
            "warning: ... and 3 more (8 warnings in all while importing cat)"
        );
        assert_eq!(warning_lines(Path::new("cat"), &warnings[..2]).len(), 2);
    }

    #[test]
    fn outlying_prices_are_warned_about_before_skipped_rows() {
        let skipped = |line| CatalogWarning {
            file: PathBuf::from("cat/gcp/vms.csv"),
            line: Some(line),
            problem: RowProblem::MissingField {
                column: "Region".to_owned(),
            },
        };
        let outlier = CatalogWarning {
            file: PathBuf::from("cat/azure/vms.csv"),
            line: Some(47586),
            problem: RowProblem::PriceOutlier {
                instance_type: "Standard_F8ams_v6".to_owned(),
                place: "newzealandnorth".to_owned(),
                kind: aloft_catalog::PriceKind::OnDemand,
                price: 0.0898,
                median: 0.865,
                ratio: 0.0898 / 0.865,
                n_regions: 58,
            },
        };
        let mut warnings: Vec<CatalogWarning> = (2..10).map(skipped).collect();
        warnings.push(outlier.clone());
        let (ordered, outliers) = outliers_first(&warnings);
        assert_eq!(outliers, 1);
        assert_eq!(ordered[0], outlier);
        assert_eq!(ordered[1..], warnings[..8]);
        let lines = warning_lines(Path::new("cat"), &ordered);
        assert_eq!(
            lines[0],
            "warning: cat/azure/vms.csv:47586: price outlier kept: Standard_F8ams_v6 in \
             newzealandnorth: on-demand $0.0898/h is 0.10x the median $0.8650/h of its 58 \
             regions (the check flags more than 4x either way)"
        );
    }

    #[test]
    fn parses_the_outlier_policy() {
        assert_eq!(
            parse(&[]).unwrap().common.source.catalog_outliers,
            OutlierPolicy::Warn
        );
        let args = parse(&["gpus", "--catalog-outliers", "drop"]).unwrap();
        assert_eq!(args.common.source.catalog_outliers, OutlierPolicy::Drop);
        let err = parse(&["--catalog-outliers", "ignore"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected keep, drop or warn"), "{err}");
    }

    #[test]
    fn numbers_and_prices() {
        assert_eq!(number(8.0), "8");
        assert_eq!(number(14.400390625), "14.4");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(price(0.384), "$0.384");
        assert_eq!(price(32.7726), "$32.77");
    }
}

//! Imports the real SkyPilot v8 snapshot in `shared/catalogs/skypilot-v8` (beside the checkout)
//! when it is there; prints a note and passes when it is not. The files are never copied into
//! the repository.

use aloft_catalog::{
    AcceleratorFilter, CacheStatus, Catalog, GpuFilter, ImageFlavor, ListFilter, RowProblem,
};
use std::path::PathBuf;
use std::time::Instant;

fn shared_catalog() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/catalogs/skypilot-v8");
    if dir.join("v8").is_dir() {
        Some(dir)
    } else {
        println!(
            "note: {} is absent; skipping the shared-catalog test",
            dir.display()
        );
        None
    }
}

fn price_of(
    catalog: &Catalog,
    cloud: &str,
    instance_type: &str,
    region: &str,
    spot: bool,
) -> Vec<f64> {
    let cloud = catalog.find_cloud(cloud).unwrap();
    let region = catalog.find_region(cloud, region).unwrap();
    catalog
        .offerings
        .iter()
        .filter(|offering| {
            offering.region == region
                && catalog.instance_type(offering.instance_type).name == instance_type
        })
        .filter_map(|offering| offering.hourly_price(spot))
        .collect()
}

#[test]
fn imports_the_shared_snapshot() {
    let Some(dir) = shared_catalog() else { return };
    let started = Instant::now();
    let (catalog, warnings) = Catalog::from_skypilot_dir(&dir).expect("import");
    let cold = started.elapsed();
    println!(
        "cold import: {cold:?}; {} offerings, {} types, {} warnings",
        catalog.offerings.len(),
        catalog.instance_types.len(),
        warnings.len()
    );
    for warning in warnings.iter().take(10) {
        println!("warning: {warning}");
    }
    assert!(
        catalog.consistency_problems().is_empty(),
        "{:?}",
        &catalog.consistency_problems()[..5.min(catalog.consistency_problems().len())]
    );
    let names: Vec<&str> = catalog
        .clouds
        .iter()
        .map(|cloud| cloud.name.as_str())
        .collect();
    assert_eq!(names, ["aws", "azure", "gcp"]);
    // Row counts, roughly: Azure's 56,671 rows become about as many offerings; GCP's 31,285
    // rows lose multi-host TPU slices and bare GPU hosts but gain host x GPU combinations.
    let count = |cloud: &str| {
        let cloud = catalog.find_cloud(cloud).unwrap();
        catalog
            .offerings
            .iter()
            .filter(|offering| catalog.region(offering.region).cloud == cloud)
            .count()
    };
    assert!((150..=158).contains(&count("aws")), "aws {}", count("aws"));
    assert!(
        (50_000..=56_671).contains(&count("azure")),
        "azure {}",
        count("azure")
    );
    assert!(
        (25_000..=40_000).contains(&count("gcp")),
        "gcp {}",
        count("gcp")
    );
    // Known prices.
    assert_eq!(
        price_of(&catalog, "aws", "p3.2xlarge", "us-east-1", false),
        vec![3.06; 7]
    );
    let spot = price_of(&catalog, "aws", "p3.2xlarge", "us-east-1", true);
    assert_eq!(
        spot.len(),
        4,
        "three us-east-1 zones have no p3.2xlarge spot price"
    );
    assert_eq!(
        price_of(&catalog, "azure", "Standard_D8s_v5", "eastus", false),
        vec![0.384]
    );
    // GCP: a2-highgpu-1g in us-central1 is host 0.73948 + A100 2.93391.
    let a2 = price_of(&catalog, "gcp", "a2-highgpu-1g", "us-central1", false);
    assert_eq!(a2.len(), 4);
    assert!((a2[0] - 3.67339).abs() < 1e-9, "{a2:?}");
    // Azure has no zones; GCP and AWS do.
    assert!(catalog.offerings.iter().all(|offering| {
        let cloud = &catalog.cloud(catalog.region(offering.region).cloud).name;
        (cloud == "azure") == offering.zone.is_none()
    }));
    // Egress and carbon come from the bundled data where it knows the cloud and region.
    let gcp = catalog.cloud(catalog.find_cloud("gcp").unwrap());
    assert_eq!(gcp.internet_egress_per_gb, 0.12);
    let us_central1 = catalog
        .find_region(catalog.find_cloud("gcp").unwrap(), "us-central1")
        .unwrap();
    assert!(catalog.region(us_central1).carbon_g_per_kwh.is_some());

    let gpus = catalog.gpus(&GpuFilter {
        accelerator: Some(AcceleratorFilter::parse("A100:8").unwrap()),
        ..GpuFilter::default()
    });
    assert!(
        gpus.iter()
            .any(|row| row.cloud == "gcp" && row.instance_type == "a2-highgpu-8g")
    );
    assert!(
        gpus.iter()
            .any(|row| row.cloud == "azure" && row.instance_type == "Standard_ND96asr_v4")
    );
    // Default images: AWS per region, GCP global; the same the bundled data derives from it.
    let bundled = Catalog::bundled();
    for (cloud, region) in [
        ("aws", "us-east-1"),
        ("aws", "eu-west-1"),
        ("gcp", "us-east1"),
    ] {
        for flavor in [ImageFlavor::Cpu, ImageFlavor::Gpu] {
            let id = |catalog: &Catalog| {
                catalog
                    .default_image(cloud, region, flavor)
                    .map(|image| image.image_id.clone())
            };
            assert!(id(&catalog).is_some(), "{cloud} {region} {flavor}");
            assert_eq!(id(&catalog), id(&bundled), "{cloud} {region} {flavor}");
        }
    }
    assert_eq!(
        catalog.default_image("azure", "eastus", ImageFlavor::Cpu),
        None
    );
    // GCP's Debian, CUDA-specific, COS and arm64 images are not defaults.
    let unknown_tags = warnings
        .iter()
        .filter(|warning| matches!(warning.problem, RowProblem::UnknownImageTag { .. }))
        .count();
    assert_eq!(unknown_tags, 10);
    let started = Instant::now();
    let rows = catalog.list(&ListFilter::default());
    println!(
        "list everything: {:?}, {} rows",
        started.elapsed(),
        rows.len()
    );
}

#[test]
fn shared_snapshot_through_the_cache() {
    let Some(dir) = shared_catalog() else { return };
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let cold = Catalog::load_dir_cached_in(&dir, Some(cache.path())).unwrap();
    let cold_time = started.elapsed();
    assert!(
        matches!(cold.cache, CacheStatus::Miss { written: true, .. }),
        "{:?}",
        cold.cache
    );
    let started = Instant::now();
    let warm = Catalog::load_dir_cached_in(&dir, Some(cache.path())).unwrap();
    let warm_time = started.elapsed();
    assert!(
        matches!(warm.cache, CacheStatus::Hit(_)),
        "{:?}",
        warm.cache
    );
    assert_eq!(warm.catalog, cold.catalog);
    assert_eq!(warm.warnings, cold.warnings);
    let started = Instant::now();
    let bundled = Catalog::bundled();
    let bundled_time = started.elapsed();
    println!(
        "cold (CSV + cache write): {cold_time:?}; warm (cache): {warm_time:?}; bundled: {bundled_time:?} ({} offerings)",
        bundled.offerings.len()
    );
}

//! Hermetic tests of the catalog's sources (bundled, SkyPilot import, cache), merge, lookups
//! and listings. Fixtures live in `tests/fixtures/`; caches go to temp dirs.

use aloft_catalog::{
    AcceleratorFilter, CacheStatus, Catalog, CatalogError, CatalogLookupError, CatalogWarning,
    GpuFilter, ImageFlavor, InstanceType, ListFilter, Place, RowProblem,
};
use aloft_types::{Accelerator, Amount, Infra, Resources};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn import_fixture() -> (Catalog, Vec<CatalogWarning>) {
    Catalog::from_skypilot_dir(&fixtures().join("skypilot")).expect("fixture imports")
}

/// `(name, accelerator)` of each instance type of a cloud, sorted.
fn types_of(catalog: &Catalog, cloud: &str) -> Vec<String> {
    let cloud = catalog.find_cloud(cloud).expect("cloud");
    let mut names: Vec<String> = catalog
        .instance_types
        .iter()
        .filter(|instance_type| instance_type.cloud == cloud)
        .map(describe)
        .collect();
    names.sort();
    names
}

fn describe(instance_type: &InstanceType) -> String {
    match &instance_type.accelerator {
        Some((name, count)) => format!("{}+{name}:{count}", instance_type.name),
        None => instance_type.name.clone(),
    }
}

/// `(zone or region, on-demand, spot)` of every offering of `name` (with `accelerator`, as in
/// [`describe`]) in `cloud`.
fn offers(
    catalog: &Catalog,
    cloud: &str,
    described: &str,
) -> Vec<(String, Option<f64>, Option<f64>)> {
    let cloud = catalog.find_cloud(cloud).expect("cloud");
    let mut rows: Vec<_> = catalog
        .offerings
        .iter()
        .filter(|offering| {
            let instance_type = catalog.instance_type(offering.instance_type);
            instance_type.cloud == cloud && describe(instance_type) == described
        })
        .map(|offering| {
            let place = match offering.zone {
                Some(zone) => catalog.zone(zone).name.clone(),
                None => catalog.region(offering.region).name.clone(),
            };
            let round = |price: Option<f64>| price.map(|price| (price * 1e6).round() / 1e6);
            (place, round(offering.price), round(offering.spot_price))
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn infra(text: &str) -> Infra {
    Infra::parse(text).expect("infra parses")
}

// ---------------------------------------------------------------------------------------------
// Bundled snapshot

#[test]
fn bundled_is_consistent() {
    let catalog = Catalog::bundled();
    assert_eq!(catalog.consistency_problems(), Vec::<String>::new());
    let names: Vec<&str> = catalog
        .clouds
        .iter()
        .map(|cloud| cloud.name.as_str())
        .collect();
    assert_eq!(names, ["aws", "gcp", "azure"]);
    for cloud in &catalog.clouds {
        assert!(cloud.internet_egress_per_gb > 0.0, "{}", cloud.name);
        assert!(cloud.inter_region_egress_per_gb > 0.0, "{}", cloud.name);
    }
    for region in &catalog.regions {
        // us-central2 is bundled only for its TPUs, and no carbon figure for it is trusted.
        if region.name == "us-central2" {
            assert_eq!(region.carbon_g_per_kwh, None);
            continue;
        }
        let carbon = region
            .carbon_g_per_kwh
            .unwrap_or_else(|| panic!("{} lacks carbon", region.name));
        assert!(
            (10.0..=1000.0).contains(&carbon),
            "{}: {carbon}",
            region.name
        );
    }
    for offering in &catalog.offerings {
        assert!(offering.price.is_some_and(|price| price > 0.0));
        assert!(offering.spot_price.is_none_or(|price| price > 0.0));
    }
    assert_eq!(catalog.regions.len(), 16);
    // Small enough to parse at every start (a few hundred CSV rows, one offering per zone).
    assert!(
        (200..=2000).contains(&catalog.offerings.len()),
        "{}",
        catalog.offerings.len()
    );
    // Zones where the clouds have them, none on Azure.
    for offering in &catalog.offerings {
        let cloud = &catalog.cloud(catalog.region(offering.region).cloud).name;
        assert_eq!(cloud == "azure", offering.zone.is_none(), "{cloud}");
    }
}

#[test]
fn bundled_has_the_common_types() {
    let catalog = Catalog::bundled();
    assert_eq!(
        offers(&catalog, "aws", "p3.2xlarge+V100:1").len(),
        5 + 3 + 4 + 3 + 3,
        "all zones of 5 regions"
    );
    assert!(
        offers(&catalog, "aws", "p3.2xlarge+V100:1")
            .iter()
            .any(|(zone, price, _)| zone == "us-east-1a" && *price == Some(3.06))
    );
    for described in [
        "m6i.2xlarge",
        "m7i.2xlarge",
        "c6i.4xlarge",
        "r6i.2xlarge",
        "p3.8xlarge+V100:4",
        "p4d.24xlarge+A100:8",
        "g5.xlarge+A10G:1",
        "g4dn.xlarge+T4:1",
    ] {
        assert!(
            !offers(&catalog, "aws", described).is_empty(),
            "aws {described}"
        );
    }
    for described in [
        "n2-standard-8",
        "e2-standard-4",
        "c2-standard-8",
        "a2-highgpu-1g+A100:1",
        "a2-highgpu-8g+A100:8",
        "n1-highmem-8+V100:1",
        "n1-highmem-8+T4:1",
    ] {
        assert!(
            !offers(&catalog, "gcp", described).is_empty(),
            "gcp {described}"
        );
    }
    for described in [
        "Standard_D8s_v5",
        "Standard_E8s_v5",
        "Standard_F8s_v2",
        "Standard_NC6s_v3+V100:1",
        "Standard_NC24ads_A100_v4+A100-80GB:1",
        "Standard_NC4as_T4_v3+T4:1",
    ] {
        assert!(
            !offers(&catalog, "azure", described).is_empty(),
            "azure {described}"
        );
    }
    // GCP GPUs only where the snapshot had them: A100 in europe-west4-a/b, not -c.
    let zones: Vec<String> = offers(&catalog, "gcp", "a2-highgpu-1g+A100:1")
        .into_iter()
        .map(|(zone, _, _)| zone)
        .filter(|zone| zone.starts_with("europe-west4"))
        .collect();
    assert_eq!(zones, ["europe-west4-a", "europe-west4-b"]);
}

/// The accelerators real SkyPilot tasks name, and the clouds (among AWS, GCP and Azure) that sell
/// each: the bundled snapshot must offer each one on exactly those clouds.
const ACCELERATORS_PEOPLE_ASK_FOR: [(&str, &[&str]); 15] = [
    ("A10", &["azure"]),
    ("A10G", &["aws"]),
    ("L4", &["aws", "gcp"]),
    ("L40S", &["aws"]),
    ("A100", &["aws", "azure", "gcp"]),
    ("A100-80GB", &["aws", "azure", "gcp"]),
    ("H100", &["aws", "azure", "gcp"]),
    ("H200", &["aws", "azure", "gcp"]),
    ("MI300X", &["azure"]),
    ("Inferentia2", &["aws"]),
    ("Trainium", &["aws"]),
    ("tpu-v4-8", &["gcp"]),
    ("tpu-v5litepod-8", &["gcp"]),
    ("tpu-v5p-8", &["gcp"]),
    ("tpu-v6e-8", &["gcp"]),
];

#[test]
fn bundled_offers_each_requested_accelerator_on_every_cloud_that_sells_it() {
    let catalog = Catalog::bundled();
    for (name, clouds) in ACCELERATORS_PEOPLE_ASK_FOR {
        let summary = catalog.gpu_summary(&GpuFilter {
            accelerator: Some(AcceleratorFilter::parse(name).unwrap()),
            ..GpuFilter::default()
        });
        assert_eq!(summary.len(), 1, "{name}: {summary:?}");
        assert_eq!(summary[0].clouds, clouds, "{name}");
        // Offered means priced on demand somewhere, not only listed.
        assert!(
            summary[0].min_price_per_accelerator.is_some(),
            "{name} has no on-demand price"
        );
        // And the optimizer's predicate finds it, in some count, on each of those clouds.
        for cloud in clouds.iter() {
            let offered = summary[0].counts.iter().any(|count| {
                let resources = Resources {
                    accelerator: Some(Accelerator {
                        name: name.to_owned(),
                        count: *count,
                    }),
                    infra: infra(cloud),
                    ..Resources::default()
                };
                catalog.offerings_for(&resources).next().is_some()
            });
            assert!(offered, "{name} on {cloud}");
        }
    }
}

#[test]
fn a_tpu_is_a_single_host_vm_carrying_one_slice_and_v5e_is_spelled_either_way() {
    let catalog = Catalog::bundled();
    let slice = catalog
        .instance_types
        .iter()
        .find(|instance_type| describe(instance_type) == "tpu-v5litepod-8+tpu-v5litepod-8:1")
        .expect("tpu-v5litepod-8 is bundled");
    // The TPU VM's host: 224 vCPUs and 384 GB on a v5e-8 (Google's published VM shape).
    assert_eq!((slice.vcpus, slice.memory_gib), (224.0, 384.0));
    // Google's docs say `v5e`; SkyPilot's catalog says `v5litepod`. Both plan.
    for spelling in ["tpu-v5litepod-8", "tpu-v5e-8", "TPU-V5E-8"] {
        let resources = Resources {
            accelerator: Some(Accelerator {
                name: spelling.to_owned(),
                count: 1.0,
            }),
            ..Resources::default()
        };
        let clouds: Vec<&str> = catalog
            .offerings_for(&resources)
            .map(|(_, offering)| {
                catalog
                    .cloud(catalog.region(offering.region).cloud)
                    .name
                    .as_str()
            })
            .collect();
        assert!(!clouds.is_empty(), "{spelling}");
        assert!(clouds.iter().all(|cloud| *cloud == "gcp"), "{spelling}");
    }
    // The alias is exact: v5e-8 is not v5e-4, nor v5p-8.
    let v5e_4 = Resources {
        accelerator: Some(Accelerator {
            name: "tpu-v5e-4".to_owned(),
            count: 1.0,
        }),
        ..Resources::default()
    };
    assert!(catalog.offerings_for(&v5e_4).all(|(_, offering)| {
        describe(catalog.instance_type(offering.instance_type))
            == "tpu-v5litepod-4+tpu-v5litepod-4:1"
    }));
    assert!(catalog.knows_accelerator("tpu-v5e-8"));
    assert!(!catalog.knows_accelerator("tpu-v5e-9"));
}

#[test]
fn a_multi_host_tpu_slice_is_explained_not_silently_missing() {
    let reason = aloft_catalog::unsupported_accelerator_reason("tpu-v5e-16")
        .expect("a multi-host slice has a reason");
    assert!(reason.contains("single-host"), "{reason}");
    assert!(reason.contains("tpu-v5litepod-8"), "{reason}");
    assert_eq!(
        aloft_catalog::unsupported_accelerator_reason("tpu-v5litepod-8"),
        None
    );
    assert_eq!(aloft_catalog::unsupported_accelerator_reason("H100"), None);
}

#[test]
fn bundled_data_states_its_sources() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    for file in [
        "clouds.csv",
        "regions.csv",
        "instance_types.csv",
        "offerings.csv",
        "images.csv",
    ] {
        let text = std::fs::read_to_string(data.join(file)).unwrap();
        assert!(text.starts_with('#'), "{file} starts with a header comment");
        let mut reader = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let source = headers
            .iter()
            .position(|name| name.ends_with("source"))
            .expect("source column");
        let as_of = headers
            .iter()
            .position(|name| name == "as_of")
            .expect("as_of column");
        for record in reader.records() {
            let record = record.unwrap();
            assert!(
                !record[source].is_empty() && !record[as_of].is_empty(),
                "{file}: {record:?}"
            );
        }
    }
    let offerings = std::fs::read_to_string(data.join("offerings.csv")).unwrap();
    assert!(offerings.contains("PUBLIC LIST PRICES AS THE MAINTAINERS KNEW THEM"));
    assert!(offerings.contains("SPOT PRICES ARE SNAPSHOTS OR ESTIMATES"));
    assert!(offerings.contains("--catalog DIR"));
}

// ---------------------------------------------------------------------------------------------
// SkyPilot import

#[test]
fn import_reads_each_cloud_by_header_name() {
    let (catalog, _) = import_fixture();
    assert_eq!(catalog.consistency_problems(), Vec::<String>::new());
    let names: Vec<&str> = catalog
        .clouds
        .iter()
        .map(|cloud| cloud.name.as_str())
        .collect();
    assert_eq!(names, ["aws", "azure", "gcp"]);
    assert_eq!(
        offers(&catalog, "aws", "m6i.2xlarge"),
        [
            ("euw1-az1".to_owned(), Some(0.428), Some(0.23)),
            ("use1-az1".to_owned(), Some(0.384), Some(0.15)),
            ("use1-az2".to_owned(), Some(0.384), Some(0.14)),
        ]
    );
    // A missing spot price means no spot offer; a row without any price is not offered.
    assert_eq!(
        offers(&catalog, "aws", "p3.2xlarge+V100:1"),
        [
            ("use1-az1".to_owned(), Some(3.06), None),
            ("use1-az2".to_owned(), Some(3.06), Some(0.37))
        ]
    );
    assert!(!types_of(&catalog, "aws").contains(&"m6g.large".to_owned()));
    let m6i = catalog
        .instance_types
        .iter()
        .find(|instance_type| instance_type.name == "m6i.2xlarge")
        .unwrap();
    assert_eq!(m6i.arch.as_deref(), Some("x86_64"));
}

#[test]
fn import_azure_has_no_zones_and_keeps_spot_only_offers() {
    let (catalog, _) = import_fixture();
    assert_eq!(
        offers(&catalog, "azure", "Standard_D8s_v5"),
        [
            ("eastus".to_owned(), Some(0.384), Some(0.08)),
            ("westeurope".to_owned(), Some(0.46), Some(0.085))
        ]
    );
    assert_eq!(
        offers(&catalog, "azure", "Standard_D16s_v5"),
        [("eastus".to_owned(), None, Some(0.16))]
    );
    // A count without a name (FPGA types) is a plain VM.
    assert_eq!(offers(&catalog, "azure", "Standard_NP10s").len(), 1);
    assert!(
        catalog
            .zones
            .iter()
            .all(|zone| { catalog.cloud(catalog.region(zone.region).cloud).name != "azure" })
    );
}

#[test]
fn import_combines_gcp_attachable_gpus_with_hosts() {
    let (catalog, _) = import_fixture();
    assert_eq!(
        types_of(&catalog, "gcp"),
        [
            "a2-highgpu-1g+A100:1",
            "a2-ultragpu-1g+A100-80GB:1",
            "n1-highmem-8",
            "n1-highmem-8+T4:1",
            "n1-highmem-8+V100:1",
            "n1-highmem-96",
            "n1-standard-4",
            "n1-standard-4+T4:1",
            "n1-standard-4+V100:1",
            "n2-standard-8",
        ]
    );
    // Host + GPU in the same zone; the A100 row in -b has no host there.
    assert_eq!(
        offers(&catalog, "gcp", "a2-highgpu-1g+A100:1"),
        [("us-central1-a".to_owned(), Some(3.67), Some(1.8))]
    );
    // The ultragpu host already names its GPU: taken as is, not combined again.
    assert_eq!(
        offers(&catalog, "gcp", "a2-ultragpu-1g+A100-80GB:1"),
        [("us-central1-a".to_owned(), Some(5.07), Some(2.0))]
    );
    // The V100 row has no spot price, so the combination has none either.
    assert_eq!(
        offers(&catalog, "gcp", "n1-highmem-8+V100:1"),
        [("us-central1-a".to_owned(), Some(2.95), None)]
    );
    assert_eq!(
        offers(&catalog, "gcp", "n1-highmem-8+T4:1"),
        [("us-central1-a".to_owned(), Some(0.82), Some(0.33))]
    );
    let composite = catalog
        .instance_types
        .iter()
        .find(|instance_type| describe(instance_type) == "n1-highmem-8+V100:1")
        .unwrap();
    assert_eq!((composite.vcpus, composite.memory_gib), (8.0, 52.0));
    // The optimizer's predicate sees the composite as a V100 machine.
    let resources = Resources {
        accelerator: Some(Accelerator {
            name: "V100".to_owned(),
            count: 1.0,
        }),
        infra: infra("gcp"),
        ..Resources::default()
    };
    let mut names: Vec<String> = catalog
        .offerings_for(&resources)
        .map(|(_, offering)| describe(catalog.instance_type(offering.instance_type)))
        .collect();
    names.sort();
    assert_eq!(names, ["n1-highmem-8+V100:1", "n1-standard-4+V100:1"]);
}

#[test]
fn import_takes_single_host_tpu_slices_and_skips_larger_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("gcp")).unwrap();
    std::fs::write(
        dir.path().join("gcp/vms.csv"),
        "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice\n\
         n2-standard-8,8.0,32.0,,,,us-central1,us-central1-a,0.38,0.09\n\
         ,,,tpu-v5litepod-8,1,tpu-v5litepod-8,us-central1,us-central1-a,9.6,2.05738\n\
         ,,,tpu-v5litepod-16,1,tpu-v5litepod-16,us-central1,us-central1-a,19.2,4.1\n\
         ,,,tpu-v3-8,1,tpu-v3-8,us-central1,us-central1-a,8.0,\n\
         ,,,tpu-v6e-1,1,tpu-v6e-1,us-central1,us-central1-b,2.7,0.51442\n",
    )
    .unwrap();
    let (catalog, warnings) = Catalog::from_skypilot_dir(dir.path()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        types_of(&catalog, "gcp"),
        [
            "n2-standard-8",
            "tpu-v5litepod-8+tpu-v5litepod-8:1",
            "tpu-v6e-1+tpu-v6e-1:1",
        ]
    );
    assert_eq!(
        offers(&catalog, "gcp", "tpu-v5litepod-8+tpu-v5litepod-8:1"),
        [("us-central1-a".to_owned(), Some(9.6), Some(2.05738))]
    );
    let v6e = catalog
        .instance_types
        .iter()
        .find(|instance_type| instance_type.name == "tpu-v6e-1")
        .unwrap();
    assert_eq!((v6e.vcpus, v6e.memory_gib), (44.0, 176.0));
}

#[test]
fn import_warns_about_bad_rows_with_file_and_line() {
    let (_, warnings) = import_fixture();
    let root = fixtures().join("skypilot/v8");
    let at = |cloud: &str, line: u64| {
        warnings
            .iter()
            .find(|warning| {
                warning.file == root.join(cloud).join("vms.csv") && warning.line == Some(line)
            })
            .unwrap_or_else(|| panic!("no warning at {cloud}:{line}; got {warnings:#?}"))
    };
    assert_eq!(
        at("aws", 8).problem,
        RowProblem::BadNumber {
            column: "vCPUs".to_owned(),
            text: "two".to_owned()
        }
    );
    assert!(matches!(
        at("aws", 9).problem,
        RowProblem::MalformedRow { .. }
    ));
    assert!(matches!(
        at("aws", 10).problem,
        RowProblem::DuplicateOffering { .. }
    ));
    assert!(matches!(
        at("aws", 11).problem,
        RowProblem::ConflictingSpecs { .. }
    ));
    assert_eq!(
        at("gcp", 16).problem,
        RowProblem::NoHostRule {
            accelerator: "X9".to_owned()
        }
    );
    assert!(matches!(
        at("azure", 7).problem,
        RowProblem::BadNumber { .. }
    ));
    assert_eq!(warnings.len(), 6, "{warnings:#?}");
    let text = at("aws", 8).to_string();
    assert!(
        text.ends_with(
            "aws/vms.csv:8: row skipped: vCPUs is `two`, not a finite non-negative number"
        ),
        "{text}"
    );
}

#[test]
fn import_accepts_the_parent_of_v8() {
    let (from_parent, _) = import_fixture();
    let (from_v8, _) = Catalog::from_skypilot_dir(&fixtures().join("skypilot/v8")).unwrap();
    assert_eq!(from_parent, from_v8);
}

#[test]
fn import_fills_egress_and_carbon_from_bundled() {
    let (catalog, _) = import_fixture();
    let gcp = catalog.cloud(catalog.find_cloud("gcp").unwrap());
    assert_eq!(
        (gcp.internet_egress_per_gb, gcp.inter_region_egress_per_gb),
        (0.12, 0.02)
    );
    let carbon = |cloud: &str, region: &str| {
        let cloud = catalog.find_cloud(cloud).unwrap();
        catalog
            .region(catalog.find_region(cloud, region).unwrap())
            .carbon_g_per_kwh
    };
    assert!(carbon("gcp", "us-central1").is_some());
    assert!(carbon("azure", "eastus").is_some());
    // The fixture's only us-west-2 row is rejected, but the region is known, with its bundled
    // carbon figure.
    assert!(carbon("aws", "us-west-2").is_some());

    let (other, warnings) = Catalog::from_skypilot_dir(&fixtures().join("other_cloud")).unwrap();
    let lambda = other.cloud(other.find_cloud("lambda").unwrap());
    assert_eq!(lambda.internet_egress_per_gb, 0.09);
    assert!(matches!(
        warnings[..],
        [CatalogWarning {
            line: None,
            problem: RowProblem::AssumedEgress { .. },
            ..
        }]
    ));
    let region = other
        .find_region(other.find_cloud("lambda").unwrap(), "us-east-1")
        .unwrap();
    assert_eq!(other.region(region).carbon_g_per_kwh, None);
}

#[test]
fn import_errors_name_the_directory_or_file() {
    let missing = fixtures().join("no-such-dir");
    let err = Catalog::from_skypilot_dir(&missing).unwrap_err();
    assert!(matches!(err, CatalogError::ReadDir { .. }));
    assert!(err.to_string().contains("no-such-dir"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = Catalog::from_skypilot_dir(empty.path()).unwrap_err();
    assert!(matches!(err, CatalogError::NoCloudFiles { .. }), "{err}");

    let err = Catalog::from_skypilot_dir(&fixtures().join("missing_columns")).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("missing_columns/aws/vms.csv"), "{text}");
    assert!(text.contains("MemoryGiB, Region"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Cache

/// A writable copy of the fixture catalog.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for cloud in ["aws", "gcp", "azure"] {
        let from = fixtures().join("skypilot/v8").join(cloud).join("vms.csv");
        std::fs::create_dir_all(dir.path().join(cloud)).unwrap();
        std::fs::copy(from, dir.path().join(cloud).join("vms.csv")).unwrap();
    }
    dir
}

#[test]
fn cache_round_trips() {
    let catalog_dir = fixture_copy();
    let cache_dir = tempfile::tempdir().unwrap();
    let first = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    assert!(
        matches!(first.cache, CacheStatus::Miss { written: true, .. }),
        "{:?}",
        first.cache
    );
    let second = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    assert!(
        matches!(second.cache, CacheStatus::Hit(_)),
        "{:?}",
        second.cache
    );
    assert_eq!(first.catalog, second.catalog);
    assert_eq!(first.warnings, second.warnings);
    assert_eq!(second.warnings.len(), 6);
    let (direct, _) = Catalog::from_skypilot_dir(catalog_dir.path()).unwrap();
    assert_eq!(second.catalog, direct);
    let disabled = Catalog::load_dir_cached_in(catalog_dir.path(), None).unwrap();
    assert_eq!(disabled.cache, CacheStatus::Disabled);
}

#[test]
fn cache_notices_changed_files() {
    let catalog_dir = fixture_copy();
    let cache_dir = tempfile::tempdir().unwrap();
    let first = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    let CacheStatus::Miss {
        file: first_file, ..
    } = first.cache
    else {
        panic!()
    };
    let azure = catalog_dir.path().join("azure/vms.csv");
    let mut text = std::fs::read_to_string(&azure).unwrap();
    text.push_str("Standard_D4s_v5,,,4,16,,0.192,0.04,eastus,V2\n");
    std::fs::write(&azure, text).unwrap();
    let load = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    assert!(
        matches!(load.cache, CacheStatus::Miss { .. }),
        "{:?}",
        load.cache
    );
    assert_eq!(offers(&load.catalog, "azure", "Standard_D4s_v5").len(), 1);
    // The stale entry was overwritten, not kept beside the new one.
    assert_eq!(
        load.cache,
        CacheStatus::Miss {
            file: first_file,
            written: true
        }
    );
    assert_eq!(std::fs::read_dir(cache_dir.path()).unwrap().count(), 1);
    let again = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    assert!(matches!(again.cache, CacheStatus::Hit(_)));
    assert_eq!(again.catalog, load.catalog);
}

#[test]
fn corrupt_cache_is_rebuilt() {
    let catalog_dir = fixture_copy();
    let cache_dir = tempfile::tempdir().unwrap();
    let first = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    let CacheStatus::Miss { file, .. } = &first.cache else {
        panic!("{:?}", first.cache)
    };
    let good = std::fs::read(file).unwrap();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    for damaged in [
        b"garbage".to_vec(),
        good[..good.len() / 2].to_vec(),
        flipped,
        Vec::new(),
    ] {
        std::fs::write(file, &damaged).unwrap();
        let load = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
        assert!(
            matches!(load.cache, CacheStatus::Miss { written: true, .. }),
            "{:?}",
            load.cache
        );
        assert_eq!(load.catalog, first.catalog);
        assert_eq!(std::fs::read(file).unwrap(), good, "rewritten");
    }
}

#[test]
fn unwritable_cache_is_ignored() {
    let catalog_dir = fixture_copy();
    let not_a_dir = tempfile::NamedTempFile::new().unwrap();
    let load = Catalog::load_dir_cached_in(catalog_dir.path(), Some(not_a_dir.path())).unwrap();
    assert!(
        matches!(load.cache, CacheStatus::Miss { written: false, .. }),
        "{:?}",
        load.cache
    );
    assert_eq!(load.warnings.len(), 6);
}

// ---------------------------------------------------------------------------------------------
// Merge

#[test]
fn merge_replaces_clouds_wholesale() {
    let mut catalog = Catalog::bundled();
    let (imported, _) = import_fixture();
    catalog.merge(imported);
    assert_eq!(catalog.consistency_problems(), Vec::<String>::new());
    let names: Vec<&str> = catalog
        .clouds
        .iter()
        .map(|cloud| cloud.name.as_str())
        .collect();
    assert_eq!(names, ["aws", "gcp", "azure"], "bundled order kept");
    // Bundled AWS rows are gone, imported ones are there.
    assert!(offers(&catalog, "aws", "m6i.large").is_empty());
    assert_eq!(offers(&catalog, "aws", "m6i.2xlarge").len(), 3);
    assert!(
        catalog
            .find_region(catalog.find_cloud("aws").unwrap(), "ap-northeast-1")
            .is_none()
    );

    // Merging a cloud the base lacks appends it and keeps the rest.
    let mut catalog = Catalog::bundled();
    let bundled_offerings = catalog.offerings.len();
    let (lambda, _) = Catalog::from_skypilot_dir(&fixtures().join("other_cloud")).unwrap();
    catalog.merge(lambda);
    let names: Vec<&str> = catalog
        .clouds
        .iter()
        .map(|cloud| cloud.name.as_str())
        .collect();
    assert_eq!(names, ["aws", "gcp", "azure", "lambda"]);
    assert_eq!(catalog.offerings.len(), bundled_offerings + 1);
    assert_eq!(catalog.consistency_problems(), Vec::<String>::new());
    assert_eq!(
        offers(&catalog, "lambda", "gpu_1x_a100+A100:1"),
        [("us-east-1".to_owned(), Some(1.29), None)]
    );

    // Merging an empty catalog changes nothing.
    let mut catalog = Catalog::bundled();
    catalog.merge(Catalog::default());
    assert_eq!(catalog, Catalog::bundled());
}

// ---------------------------------------------------------------------------------------------
// Lookups

#[test]
fn links_by_distance() {
    let catalog = Catalog::bundled();
    let place = |text: &str| catalog.resolve_infra(&infra(text)).unwrap();
    let a = place("aws/us-east-1/us-east-1a");
    let link = catalog.link(a, a);
    assert_eq!((link.price_per_gb, link.gbps), (0.0, 10.0));
    let link = catalog.link(a, place("aws/us-east-1/us-east-1b"));
    assert_eq!((link.price_per_gb, link.gbps), (0.0, 5.0));
    let link = catalog.link(a, place("aws/us-east-1"));
    assert_eq!(link.price_per_gb, 0.0);
    let link = catalog.link(a, place("aws/eu-west-1/eu-west-1a"));
    assert_eq!((link.price_per_gb, link.gbps), (0.02, 1.0));
    let link = catalog.link(a, place("gcp/us-central1"));
    assert_eq!((link.price_per_gb, link.gbps), (0.09, 0.5));
    let link = catalog.link(place("gcp/us-central1"), a);
    assert_eq!(link.price_per_gb, 0.12, "the source cloud's egress");
    let link = catalog.link(place("azure"), place("azure/eastus"));
    assert_eq!(link.price_per_gb, 0.0);
    assert_eq!(link.transfer_seconds(1.0), 8.0);
}

#[test]
fn resolve_infra_finds_places() {
    let catalog = Catalog::bundled();
    let place = catalog
        .resolve_infra(&infra("gcp/us-central1/us-central1-a"))
        .unwrap();
    let gcp = catalog.find_cloud("gcp").unwrap();
    let region = catalog.find_region(gcp, "us-central1").unwrap();
    let zone = catalog.find_zone(region, "us-central1-a").unwrap();
    assert_eq!(
        place,
        Place {
            cloud: gcp,
            region: Some(region),
            zone: Some(zone)
        }
    );
    assert_eq!(catalog.resolve_infra(&infra("AWS")).unwrap().region, None);
    assert_eq!(catalog.find_cloud("Azure"), catalog.find_cloud("azure"));
}

#[test]
fn resolve_infra_explains_unknown_names() {
    let catalog = Catalog::bundled();
    let error = |text: &str| catalog.resolve_infra(&infra(text)).unwrap_err();

    let err = error("awz");
    assert!(
        matches!(&err, CatalogLookupError::UnknownCloud { suggestion: Some(s), .. } if s == "aws")
    );
    assert_eq!(
        err.to_string(),
        "unknown cloud `awz`; did you mean `aws`? Known: aws, gcp, azure"
    );

    let err = error("aws/us-est-1");
    assert!(
        matches!(&err, CatalogLookupError::UnknownRegion { suggestion: Some(s), .. } if s == "us-east-1")
    );
    assert!(
        err.to_string().contains("Known: us-east-1, us-east-2"),
        "{err}"
    );

    let err = error("gcp/mars-north1");
    assert!(matches!(
        &err,
        CatalogLookupError::UnknownRegion {
            suggestion: None,
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with("unknown region `mars-north1` in cloud gcp; known: us-central1"),
        "{err}"
    );

    let err = error("aws/us-east-1/us-west-2a");
    assert_eq!(
        err.to_string(),
        "zone `us-west-2a` is in aws region us-west-2, not in us-east-1"
    );

    let err = error("aws/us-east-1/us-east-1g");
    assert!(
        matches!(
            &err,
            CatalogLookupError::UnknownZone {
                suggestion: Some(_),
                ..
            }
        ),
        "{err}"
    );

    let err = error("azure/eastus/1");
    assert!(err.to_string().ends_with("(none are known)"), "{err}");

    let err = catalog.resolve_infra(&Infra::any()).unwrap_err();
    assert!(matches!(err, CatalogLookupError::NoCloud { .. }));
}

// ---------------------------------------------------------------------------------------------
// Listings

#[test]
fn list_filters_and_sorts_by_price() {
    let catalog = Catalog::bundled();
    let filter = ListFilter {
        cpus: Some(Amount::at_least(8.0)),
        memory: Some(Amount::at_least(32.0)),
        ..ListFilter::default()
    };
    let rows = catalog.list(&filter);
    assert!(rows.len() > 10);
    assert!(rows.windows(2).all(|pair| pair[0].price <= pair[1].price));
    assert!(
        rows.iter()
            .all(|row| row.vcpus >= 8.0 && row.memory_gib >= 32.0)
    );
    // Like the optimizer: no accelerator asked for, no GPU machines.
    assert!(rows.iter().all(|row| row.accelerator_name.is_none()));
    assert!(rows.iter().all(|row| row.price <= row.max_price));
    // The cheapest 8 vCPU / 32 GiB machine the bundled data knows.
    assert_eq!((rows[0].vcpus, rows[0].memory_gib), (8.0, 32.0));

    // Unfiltered: everything, GPU types included.
    let all = catalog.list(&ListFilter::default());
    assert_eq!(all.len(), catalog.instance_types.len());

    let spot = catalog.list(&ListFilter {
        spot: true,
        ..filter.clone()
    });
    assert!(spot.iter().all(|row| row.spot));
    assert!(spot[0].price < rows[0].price);

    let m6i = catalog.list(&ListFilter {
        instance_type: Some("M6I".to_owned()),
        ..ListFilter::default()
    });
    assert!(!m6i.is_empty() && m6i.iter().all(|row| row.instance_type.starts_with("m6i.")));

    let p3 = catalog.list(&ListFilter {
        instance_type: Some("p3.".to_owned()),
        ..ListFilter::default()
    });
    assert_eq!(p3.len(), 3, "a named type may carry GPUs");

    let in_region = catalog.list(&ListFilter {
        cloud: Some("aws".to_owned()),
        region: Some("eu-west-1".to_owned()),
        ..filter.clone()
    });
    assert!(!in_region.is_empty());
    assert!(
        in_region
            .iter()
            .all(|row| row.cloud == "aws" && row.region == "eu-west-1" && row.n_regions == 1)
    );
}

#[test]
fn list_by_accelerator() {
    let catalog = Catalog::bundled();
    let rows = catalog.list(&ListFilter {
        accelerator: Some(AcceleratorFilter::parse("A100:8").unwrap()),
        ..ListFilter::default()
    });
    let mut names: Vec<&str> = rows.iter().map(|row| row.instance_type.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["Standard_ND96asr_v4", "a2-highgpu-8g", "p4d.24xlarge"]
    );
    let any_count = catalog.list(&ListFilter {
        accelerator: Some(AcceleratorFilter::parse("v100").unwrap()),
        ..ListFilter::default()
    });
    assert!(
        any_count
            .iter()
            .all(|row| row.accelerator_name.as_deref() == Some("V100"))
    );
    assert!(
        any_count
            .iter()
            .any(|row| row.accelerator_count == Some(4.0))
    );
    assert!(
        any_count
            .iter()
            .any(|row| row.accelerator_count == Some(1.0))
    );
}

#[test]
fn accelerator_filters_parse() {
    assert_eq!(
        AcceleratorFilter::parse("A100:8").unwrap(),
        AcceleratorFilter {
            name: "A100".to_owned(),
            count: Some(8.0)
        }
    );
    assert_eq!(AcceleratorFilter::parse("T4").unwrap().count, None);
    assert!(AcceleratorFilter::parse("A100:x").is_err());
    assert!(AcceleratorFilter::parse(":8").is_err());
    assert!(AcceleratorFilter::parse("A100:0").is_err());
}

#[test]
fn gpu_views() {
    let catalog = Catalog::bundled();
    let summary = catalog.gpu_summary(&GpuFilter::default());
    let a100 = summary
        .iter()
        .find(|row| row.accelerator_name == "A100")
        .unwrap();
    assert_eq!(a100.counts, [1.0, 8.0]);
    assert_eq!(a100.clouds, ["aws", "azure", "gcp"]);
    assert!(summary.iter().any(|row| row.accelerator_name == "T4"));
    assert!(summary.windows(2).all(|pair| {
        pair[0].accelerator_name.to_ascii_lowercase()
            < pair[1].accelerator_name.to_ascii_lowercase()
    }));

    let rows = catalog.gpus(&GpuFilter {
        accelerator: Some(AcceleratorFilter::parse("V100").unwrap()),
        ..GpuFilter::default()
    });
    assert!(rows.iter().all(|row| row.accelerator_name == "V100"));
    assert!(
        rows.windows(2)
            .all(|pair| pair[0].accelerator_count <= pair[1].accelerator_count)
    );
    let p3 = rows
        .iter()
        .find(|row| row.instance_type == "p3.2xlarge")
        .unwrap();
    assert_eq!((p3.vcpus, p3.memory_gib, p3.price), (8.0, 61.0, Some(3.06)));
    assert!(p3.spot_price.is_some() && p3.spot_region.is_some());

    let gcp_only = catalog.gpus(&GpuFilter {
        cloud: Some("gcp".to_owned()),
        ..GpuFilter::default()
    });
    assert!(!gcp_only.is_empty() && gcp_only.iter().all(|row| row.cloud == "gcp"));
}

#[test]
fn retain_clouds_keeps_whole_clouds_and_nothing_else() {
    let mut catalog = Catalog::bundled();
    let aws_offers = catalog
        .offerings
        .iter()
        .filter(|offering| {
            let ty = &catalog.instance_types[offering.instance_type.0 as usize];
            catalog.cloud(ty.cloud).name == "aws"
        })
        .count();
    assert!(aws_offers > 0);
    catalog.retain_clouds(&["aws".to_owned()]);
    assert_eq!(catalog.images.len(), 10, "AWS's images kept, GCP's gone");
    let names: Vec<&str> = catalog
        .clouds
        .iter()
        .map(|cloud| cloud.name.as_str())
        .collect();
    assert_eq!(names, ["aws"]);
    assert_eq!(catalog.offerings.len(), aws_offers);
    assert!(
        catalog.consistency_problems().is_empty(),
        "{:?}",
        catalog.consistency_problems()
    );
    catalog.retain_clouds(&[]);
    assert!(catalog.offerings.is_empty() && catalog.clouds.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Default images

/// `(image id, source)` of the default image, for short asserts.
fn image(catalog: &Catalog, cloud: &str, region: &str, flavor: ImageFlavor) -> Option<String> {
    catalog
        .default_image(cloud, region, flavor)
        .map(|image| image.image_id.clone())
}

#[test]
fn bundled_default_images_per_region_and_flavor() {
    let catalog = Catalog::bundled();
    assert_eq!(
        catalog.images.len(),
        12,
        "5 AWS regions x 2 flavors + 2 global GCP images"
    );
    let cpu = catalog
        .default_image("aws", "us-east-1", ImageFlavor::Cpu)
        .unwrap();
    let gpu = catalog
        .default_image("aws", "us-east-1", ImageFlavor::Gpu)
        .unwrap();
    assert_eq!(cpu.image_id, "ami-0e6842148a3d9982b");
    assert_eq!(gpu.image_id, "ami-0c3bc6c2c633f3dd3");
    assert_eq!(
        (cpu.flavor, gpu.flavor),
        (ImageFlavor::Cpu, ImageFlavor::Gpu)
    );
    assert_eq!(
        (cpu.os.as_str(), cpu.os_version.as_str()),
        ("ubuntu", "22.04")
    );
    assert_eq!(cpu.source, "skypilot-v8@2026-05-20");
    assert_eq!(cpu.created.as_deref(), Some("20241104"));

    // Every bundled AWS region has its own AMI of each flavor (AMIs are regional).
    let aws = catalog.find_cloud("aws").unwrap();
    let mut seen = Vec::new();
    for (_, region) in catalog.regions_of(aws) {
        let cpu = image(&catalog, "aws", &region.name, ImageFlavor::Cpu).unwrap();
        let gpu = image(&catalog, "aws", &region.name, ImageFlavor::Gpu).unwrap();
        assert!(
            cpu.starts_with("ami-") && gpu.starts_with("ami-"),
            "{cpu} {gpu}"
        );
        assert_ne!(cpu, gpu, "{}", region.name);
        seen.extend([cpu, gpu]);
    }
    let n_seen = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((seen.len(), n_seen), (10, 10));

    // GCP's images are global: every GCP region gets them.
    let gcp_gpu = catalog
        .default_image("gcp", "europe-west4", ImageFlavor::Gpu)
        .unwrap();
    assert_eq!(gcp_gpu.region, None);
    assert_eq!(
        gcp_gpu.image_id,
        "projects/sky-dev-465/global/images/skypilot-gcp-gpu-ubuntu-250813"
    );
    assert_eq!(
        image(&catalog, "gcp", "us-central1", ImageFlavor::Cpu).as_deref(),
        Some("projects/sky-dev-465/global/images/skypilot-gcp-cpu-ubuntu-250813")
    );

    // No image: a cloud without images, an unknown region or cloud.
    assert_eq!(image(&catalog, "azure", "eastus", ImageFlavor::Cpu), None);
    assert_eq!(image(&catalog, "aws", "af-south-1", ImageFlavor::Cpu), None);
    assert_eq!(
        image(&catalog, "lambda", "us-east-1", ImageFlavor::Gpu),
        None
    );
}

#[test]
fn image_flavor_follows_accelerators() {
    let catalog = Catalog::bundled();
    assert_eq!(
        catalog.image_flavor("aws", "p3.2xlarge"),
        Some(ImageFlavor::Gpu)
    );
    assert_eq!(
        catalog.image_flavor("aws", "m6i.large"),
        Some(ImageFlavor::Cpu)
    );
    assert_eq!(catalog.image_flavor("aws", "no.such"), None);
    assert_eq!(catalog.image_flavor("nocloud", "m6i.large"), None);
    for instance_type in &catalog.instance_types {
        assert_eq!(
            instance_type.image_flavor() == ImageFlavor::Gpu,
            instance_type.accelerator.is_some()
        );
    }
    // A GCP host listed bare and with attached GPUs: the name alone cannot tell.
    let (imported, _) = import_fixture();
    let types = types_of(&imported, "gcp");
    assert!(types.contains(&"n1-highmem-8".to_owned()), "{types:?}");
    assert!(
        types.contains(&"n1-highmem-8+V100:1".to_owned()),
        "{types:?}"
    );
    assert_eq!(imported.image_flavor("gcp", "n1-highmem-8"), None);
}

/// A SkyPilot directory with the fixture's AWS `vms.csv` and this `aws/images.csv`.
fn aws_with_images(images: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("aws")).unwrap();
    std::fs::copy(
        fixtures().join("skypilot/v8/aws/vms.csv"),
        dir.path().join("aws/vms.csv"),
    )
    .unwrap();
    std::fs::write(dir.path().join("aws/images.csv"), images).unwrap();
    dir
}

/// The fixture's AWS regions are us-east-1, eu-west-1 and us-west-2; af-south-1 is not one.
const IMAGES_CSV: &str = "\
Tag,Region,OS,OSVersion,ImageId,CreationDate,BaseImageId
skypilot:custom-cpu-ubuntu,us-east-1,ubuntu,22.04,ami-cpu-old,20240101,ami-base
skypilot:custom-cpu-ubuntu,us-east-1,ubuntu,22.04,ami-cpu-new,20241104,ami-base
skypilot:cpu-ubuntu-2004,us-east-1,ubuntu,20.04,ami-cpu-oldest,20230101,ami-base
skypilot:custom-gpu-ubuntu,us-east-1,ubuntu,22.04,ami-gpu,20241104,ami-base
skypilot:gpu-debian-11,us-east-1,debian,11,ami-debian,20250101,ami-base
skypilot:custom-gpu-ubuntu,eu-west-1,ubuntu
skypilot:custom-gpu-ubuntu,eu-west-1,ubuntu,22.04,ami-bad-date,2024-11-04,ami-base
skypilot:custom-cpu-ubuntu,af-south-1,ubuntu,22.04,ami-nowhere,20241104,ami-base
skypilot:custom-cpu-ubuntu,eu-west-1,ubuntu,22.04,,20241104,ami-base
skypilot:custom-cpu-ubuntu-2204,us-west-2,ubuntu,22.04,ami-usw2,,ami-base
";

#[test]
fn import_reads_images_newest_first_and_warns_with_file_and_line() {
    let dir = aws_with_images(IMAGES_CSV);
    let (catalog, warnings) = Catalog::from_skypilot_dir(dir.path()).unwrap();
    assert_eq!(catalog.consistency_problems(), Vec::<String>::new());
    // The newest CreationDate wins, whether it comes before or after the others.
    assert_eq!(
        image(&catalog, "aws", "us-east-1", ImageFlavor::Cpu).as_deref(),
        Some("ami-cpu-new")
    );
    assert_eq!(
        image(&catalog, "aws", "us-east-1", ImageFlavor::Gpu).as_deref(),
        Some("ami-gpu")
    );
    // A CPU image only: no GPU fallback to it.
    assert_eq!(
        image(&catalog, "aws", "us-west-2", ImageFlavor::Cpu).as_deref(),
        Some("ami-usw2")
    );
    assert_eq!(image(&catalog, "aws", "us-west-2", ImageFlavor::Gpu), None);
    // Every eu-west-1 row was bad; af-south-1 is not a region of this catalog.
    assert_eq!(image(&catalog, "aws", "eu-west-1", ImageFlavor::Cpu), None);
    assert_eq!(image(&catalog, "aws", "eu-west-1", ImageFlavor::Gpu), None);
    assert_eq!(image(&catalog, "aws", "af-south-1", ImageFlavor::Cpu), None);
    assert_eq!(catalog.images.len(), 3, "{:#?}", catalog.images);
    let us_west_2 = catalog
        .default_image("aws", "us-west-2", ImageFlavor::Cpu)
        .unwrap();
    assert_eq!(us_west_2.created, None);
    assert_eq!(
        us_west_2.source,
        dir.path().join("aws/images.csv").display().to_string()
    );

    let images_file = dir.path().join("aws/images.csv");
    let image_warnings: Vec<(u64, &RowProblem)> = warnings
        .iter()
        .filter(|warning| warning.file == images_file)
        .map(|warning| (warning.line.unwrap(), &warning.problem))
        .collect();
    assert_eq!(image_warnings.len(), 4, "{warnings:#?}");
    assert_eq!(
        image_warnings[0],
        (
            6,
            &RowProblem::UnknownImageTag {
                tag: "skypilot:gpu-debian-11".to_owned()
            }
        )
    );
    assert!(matches!(
        image_warnings[1],
        (7, RowProblem::MalformedRow { .. })
    ));
    assert_eq!(
        image_warnings[2],
        (
            8,
            &RowProblem::BadDate {
                column: "CreationDate".to_owned(),
                text: "2024-11-04".to_owned()
            }
        )
    );
    assert_eq!(
        image_warnings[3],
        (
            10,
            &RowProblem::MissingField {
                column: "ImageId".to_owned()
            }
        )
    );
    let text = warnings
        .iter()
        .find(|warning| warning.file == images_file)
        .unwrap()
        .to_string();
    assert!(
        text.ends_with("aws/images.csv:6: row skipped: image tag `skypilot:gpu-debian-11` is not a default image aloft knows (expected `skypilot:[custom-]cpu-ubuntu[-N...]` or `skypilot:[custom-]gpu-ubuntu[-N...]`)"),
        "{text}"
    );
}

#[test]
fn import_without_images_has_none_and_bad_image_columns_are_an_error() {
    let (catalog, _) = import_fixture();
    assert!(catalog.images.is_empty());
    assert_eq!(image(&catalog, "aws", "us-east-1", ImageFlavor::Cpu), None);

    let dir = aws_with_images("Tag,OS,ImageId\nskypilot:custom-cpu-ubuntu,ubuntu,ami-1\n");
    let err = Catalog::from_skypilot_dir(dir.path()).unwrap_err();
    assert!(matches!(err, CatalogError::MissingColumns { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("aws/images.csv"), "{text}");
    assert!(
        text.contains("lacks the required column(s) Region"),
        "{text}"
    );
}

#[test]
fn images_survive_the_cache() {
    let dir = aws_with_images(IMAGES_CSV);
    let cache_dir = tempfile::tempdir().unwrap();
    let first = Catalog::load_dir_cached_in(dir.path(), Some(cache_dir.path())).unwrap();
    assert!(matches!(
        first.cache,
        CacheStatus::Miss { written: true, .. }
    ));
    let second = Catalog::load_dir_cached_in(dir.path(), Some(cache_dir.path())).unwrap();
    assert!(
        matches!(second.cache, CacheStatus::Hit(_)),
        "{:?}",
        second.cache
    );
    assert_eq!(second.catalog.images.len(), 3);
    assert_eq!(second.catalog, first.catalog);
    assert_eq!(second.warnings, first.warnings);
    assert_eq!(
        image(&second.catalog, "aws", "us-east-1", ImageFlavor::Cpu).as_deref(),
        Some("ami-cpu-new")
    );

    // A changed images.csv is a new import, even when vms.csv is untouched.
    let newer = format!(
        "{IMAGES_CSV}skypilot:custom-cpu-ubuntu,us-east-1,ubuntu,22.04,ami-cpu-newest,20250101,x\n"
    );
    std::fs::write(dir.path().join("aws/images.csv"), newer).unwrap();
    let third = Catalog::load_dir_cached_in(dir.path(), Some(cache_dir.path())).unwrap();
    assert!(
        matches!(third.cache, CacheStatus::Miss { .. }),
        "{:?}",
        third.cache
    );
    assert_eq!(
        image(&third.catalog, "aws", "us-east-1", ImageFlavor::Cpu).as_deref(),
        Some("ami-cpu-newest")
    );
    // So is a removed one.
    std::fs::remove_file(dir.path().join("aws/images.csv")).unwrap();
    let fourth = Catalog::load_dir_cached_in(dir.path(), Some(cache_dir.path())).unwrap();
    assert!(
        matches!(fourth.cache, CacheStatus::Miss { .. }),
        "{:?}",
        fourth.cache
    );
    assert!(fourth.catalog.images.is_empty());
}

#[test]
fn merge_replaces_images_with_the_cloud_or_keeps_them_when_the_import_has_none() {
    // The import brings AWS images: they replace the bundled AWS images, GCP's stay.
    let mut catalog = Catalog::bundled();
    let dir = aws_with_images(IMAGES_CSV);
    let (imported, _) = Catalog::from_skypilot_dir(dir.path()).unwrap();
    catalog.merge(imported);
    assert_eq!(catalog.consistency_problems(), Vec::<String>::new());
    assert_eq!(
        image(&catalog, "aws", "us-east-1", ImageFlavor::Cpu).as_deref(),
        Some("ami-cpu-new")
    );
    assert_eq!(image(&catalog, "aws", "us-west-2", ImageFlavor::Gpu), None);
    assert!(image(&catalog, "gcp", "us-central1", ImageFlavor::Gpu).is_some());
    assert_eq!(catalog.images.len(), 3 + 2);

    // The import has no images.csv: the bundled AWS and GCP images are kept for the regions the
    // import has; ap-northeast-1 (absent from the fixture) loses its rows with the region.
    let mut catalog = Catalog::bundled();
    let (imported, _) = import_fixture();
    catalog.merge(imported);
    assert_eq!(catalog.consistency_problems(), Vec::<String>::new());
    assert_eq!(
        image(&catalog, "aws", "us-east-1", ImageFlavor::Gpu).as_deref(),
        Some("ami-0c3bc6c2c633f3dd3")
    );
    assert_eq!(
        catalog
            .default_image("aws", "eu-west-1", ImageFlavor::Cpu)
            .map(|image| image.source.as_str()),
        Some("skypilot-v8@2026-05-20")
    );
    assert!(image(&catalog, "gcp", "us-central1", ImageFlavor::Cpu).is_some());
    // us-east-1, eu-west-1 and us-west-2 (known to the fixture) x 2, and GCP's 2.
    assert_eq!(catalog.images.len(), 3 * 2 + 2, "{:#?}", catalog.images);
}

//! Grid carbon intensity by hour: the bundled typical days, the carbon intensity file (its
//! forms, its errors with file:line), and a file beside an imported catalog (through the cache).

use aloft_catalog::{CacheStatus, Catalog, CatalogError, RowProblem, parse_utc};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn region(catalog: &Catalog, cloud: &str, name: &str) -> aloft_catalog::RegionId {
    let cloud = catalog.find_cloud(cloud).expect("cloud");
    catalog.find_region(cloud, name).expect("region")
}

/// Hours since the epoch of a UTC time.
fn hour(text: &str) -> i64 {
    parse_utc(text).unwrap() / 3600
}

#[test]
fn the_bundled_typical_days_average_to_the_annual_figures() {
    let catalog = Catalog::bundled();
    assert!(catalog.consistency_problems().is_empty());
    for region in &catalog.regions {
        match (region.carbon_g_per_kwh, &region.carbon_hourly) {
            (Some(annual), Some(profile)) => {
                let mean = profile.typical_day_mean().expect("a typical day");
                // Each hour is rounded to a gram.
                assert!(
                    (mean - annual).abs() <= 0.5,
                    "{}: {mean} vs {annual}",
                    region.name
                );
                assert!(profile.hours.is_empty());
                let (low, high) = profile
                    .typical_day
                    .iter()
                    .fold((f64::MAX, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                assert!(low < annual && high > annual, "{}", region.name);
            }
            (None, None) => {}
            other => panic!("{}: {other:?}", region.name),
        }
    }
    // Virginia (UTC-5): its evening peak (19:00 local, 00:00 UTC) is dirtier than its midday
    // (13:00 local, 18:00 UTC).
    let virginia = region(&catalog, "aws", "us-east-1");
    let evening = catalog
        .carbon_at(virginia, hour("2026-12-09T00:00Z"))
        .unwrap();
    let midday = catalog
        .carbon_at(virginia, hour("2026-12-08T18:00Z"))
        .unwrap();
    assert!(evening > midday, "{evening} {midday}");
    // No profile and no annual figure: nothing.
    let oklahoma = region(&catalog, "gcp", "us-central2");
    assert_eq!(catalog.carbon_at(oklahoma, 0), None);
}

#[test]
fn a_specific_hour_beats_the_typical_day_which_beats_the_annual_average() {
    let mut catalog = Catalog::bundled();
    let ohio = region(&catalog, "aws", "us-east-2");
    let mut text = String::from("# comment\ncloud,region,hour,carbon_g_per_kwh,source\n");
    for of_day in 0..24 {
        text.push_str(&format!("aws,us-east-2,{of_day},{},test\n", 100 + of_day));
    }
    text.push_str("aws,us-east-2,2026-12-08T13:00Z,7,test\n");
    text.push_str("aws , us-east-2 , 2026-12-08 14:00:00+00:00 , 8 ,test\n");
    let warnings = catalog
        .apply_carbon_intensity(Path::new("mine.csv"), &text)
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        catalog.carbon_at(ohio, hour("2026-12-08T13:00Z")),
        Some(7.0)
    );
    assert_eq!(
        catalog.carbon_at(ohio, hour("2026-12-08T14:00Z")),
        Some(8.0)
    );
    assert_eq!(
        catalog.carbon_at(ohio, hour("2026-12-09T13:00Z")),
        Some(113.0)
    );
    assert_eq!(
        catalog.carbon_at(ohio, hour("1999-01-01T05:00Z")),
        Some(105.0)
    );
    // Only specific hours: other hours fall back to the annual average.
    let oregon = region(&catalog, "aws", "us-west-2");
    catalog
        .apply_carbon_intensity(
            Path::new("mine.csv"),
            "cloud,region,hour,carbon_g_per_kwh\naws,us-west-2,2026-12-08T13:00Z,3\n",
        )
        .unwrap();
    assert_eq!(
        catalog.carbon_at(oregon, hour("2026-12-08T13:00Z")),
        Some(3.0)
    );
    assert_eq!(
        catalog.carbon_at(oregon, hour("2026-12-08T12:00Z")),
        Some(140.0)
    );
    // Ohio kept its profile: a file replaces only the regions it gives.
    assert_eq!(
        catalog.carbon_at(ohio, hour("2026-12-08T13:00Z")),
        Some(7.0)
    );
    assert!(catalog.consistency_problems().is_empty());
}

#[test]
fn an_unknown_region_is_a_warning_with_its_line() {
    let mut catalog = Catalog::bundled();
    let warnings = catalog
        .apply_carbon_intensity(
            Path::new("mine.csv"),
            "cloud,region,hour,carbon_g_per_kwh\naws,us-east-1,2026-12-08T13:00Z,3\n\
             aws,mars-1,2026-12-08T13:00Z,3\n",
        )
        .unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, Some(3));
    assert_eq!(
        warnings[0].problem,
        RowProblem::UnknownCarbonRegion {
            place: "aws/mars-1".into()
        }
    );
    assert_eq!(
        warnings[0].to_string(),
        "mine.csv:3: row skipped: the catalog has no region aws/mars-1"
    );
}

#[test]
fn bad_rows_are_errors_naming_file_and_line() {
    let header = "cloud,region,hour,carbon_g_per_kwh\n";
    let full_day: String = (0..24)
        .map(|of_day| format!("aws,us-east-1,{of_day},1\n"))
        .collect();
    let cases = [
        (
            "aws,us-east-1,24,100\n".to_owned(),
            "bad.csv:2: hour `24` is not 0 to 23 (an hour of the day, UTC)",
        ),
        (
            "aws,us-east-1,2026-12-08T13:30Z,100\n".to_owned(),
            "bad.csv:2: hour `2026-12-08T13:30Z` is not on the hour",
        ),
        (
            "aws,us-east-1,2026-12-08T13:00,100\n".to_owned(),
            "bad.csv:2: hour `2026-12-08T13:00`: not a UTC time (end it with Z or +00:00); \
             expected 0 to 23 or a UTC hour such as 2026-12-08T13:00Z",
        ),
        (
            "aws,us-east-1,3,-1\n".to_owned(),
            "bad.csv:2: carbon_g_per_kwh is `-1`, not a number of grams per kWh, 0 or more",
        ),
        (
            "aws,us-east-1,3,\n".to_owned(),
            "bad.csv:2: the carbon_g_per_kwh column is empty",
        ),
        (
            format!("{full_day}aws,us-east-1,7,5\n"),
            "bad.csv:26: aws/us-east-1 hour `7` was already given on line 9",
        ),
        (
            "aws,us-east-1,0,1\naws,us-east-1,1,1\n".to_owned(),
            "bad.csv:2: aws/us-east-1's typical day gives 2 of 24 hours (missing 2, 3, 4, 5, \
             6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23); give hours \
             0 to 23 or none",
        ),
    ];
    for (rows, expected) in cases {
        let mut catalog = Catalog::bundled();
        let err = catalog
            .apply_carbon_intensity(Path::new("bad.csv"), &format!("{header}{rows}"))
            .unwrap_err();
        assert!(matches!(err, CatalogError::BadCarbonRow { .. }), "{err:?}");
        assert_eq!(err.to_string(), expected);
    }
    let err = Catalog::bundled()
        .apply_carbon_intensity(Path::new("bad.csv"), "cloud,region,gco2\naws,x,1\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "catalog file bad.csv lacks the required column(s) hour, carbon_g_per_kwh; found \
         cloud, region, gco2"
    );
    let err = Catalog::bundled()
        .load_carbon_intensity(Path::new("/nonexistent/carbon.csv"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading carbon intensity file /nonexistent/carbon.csv"
    );
}

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
fn an_import_borrows_the_bundled_hours_and_takes_the_file_beside_it_through_the_cache() {
    let catalog_dir = fixture_copy();
    let cache_dir = tempfile::tempdir().unwrap();
    let first = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    let virginia = region(&first.catalog, "aws", "us-east-1");
    let bundled = Catalog::bundled();
    let bundled_virginia = region(&bundled, "aws", "us-east-1");
    let at = hour("2026-12-08T13:00Z");
    assert_eq!(
        first.catalog.carbon_at(virginia, at),
        bundled.carbon_at(bundled_virginia, at)
    );
    assert_eq!(
        first.catalog.region(virginia).carbon_hourly,
        bundled.region(bundled_virginia).carbon_hourly
    );
    let again = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    assert!(
        matches!(again.cache, CacheStatus::Hit(_)),
        "{:?}",
        again.cache
    );
    assert_eq!(again.catalog, first.catalog);
    // A carbon file beside the catalog: a new key, a rebuild, and its figures.
    let carbon = catalog_dir.path().join("carbon_intensity.csv");
    std::fs::write(
        &carbon,
        "cloud,region,hour,carbon_g_per_kwh\naws,us-east-1,2026-12-08T13:00Z,11\n\
         aws,nowhere-1,2026-12-08T13:00Z,11\n",
    )
    .unwrap();
    let with_file =
        Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    assert!(
        matches!(with_file.cache, CacheStatus::Miss { .. }),
        "{:?}",
        with_file.cache
    );
    assert_eq!(with_file.catalog.carbon_at(virginia, at), Some(11.0));
    let unknown: Vec<String> = with_file
        .warnings
        .iter()
        .filter(|warning| matches!(warning.problem, RowProblem::UnknownCarbonRegion { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(unknown.len(), 1);
    assert!(
        unknown[0].ends_with(
            "carbon_intensity.csv:3: row skipped: the catalog has no region aws/nowhere-1"
        ),
        "{unknown:?}"
    );
    let cached = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap();
    assert!(
        matches!(cached.cache, CacheStatus::Hit(_)),
        "{:?}",
        cached.cache
    );
    assert_eq!(cached.catalog.carbon_at(virginia, at), Some(11.0));
    assert_eq!(cached.warnings, with_file.warnings);
    // A bad file beside the catalog fails the load with file:line.
    std::fs::write(
        &carbon,
        "cloud,region,hour,carbon_g_per_kwh\naws,us-east-1,25,1\n",
    )
    .unwrap();
    let err = Catalog::load_dir_cached_in(catalog_dir.path(), Some(cache_dir.path())).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "carbon_intensity.csv:2: hour `25` is not 0 to 23 (an hour of the day, UTC)"
        ),
        "{err}"
    );
}

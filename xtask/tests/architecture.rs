//! ARCHITECTURE.md's dependency rules, enforced: each crate's `[dependencies]` on other aloft
//! crates (dev-dependencies are free) must not contain an edge the architecture forbids. A new
//! edge that breaks a rule fails here with the rule's reason; change ARCHITECTURE.md first if the
//! rule itself should change.

use std::collections::BTreeMap;
use std::path::Path;

/// (crate, crates it must not depend on, why).
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "aloft-types",
        &["*"],
        "the vocabulary every crate speaks depends on no aloft crate",
    ),
    (
        "aloft-exec",
        &["*"],
        "running commands knows nothing of clouds, plans or state",
    ),
    (
        "aloft-optimizer",
        &[
            "aloft-provision",
            "aloft-store",
            "aloft-exec",
            "aloft-ops",
            "aloft-control",
        ],
        "planning is pure: no IO, no provisioning, no state",
    ),
    (
        "aloft-catalog",
        &[
            "aloft-provision",
            "aloft-store",
            "aloft-exec",
            "aloft-ops",
            "aloft-control",
        ],
        "the catalog reads files, never clouds or state",
    ),
    (
        "aloft-provision",
        &[
            "aloft-store",
            "aloft-exec",
            "aloft-ops",
            "aloft-control",
            "aloft-provider-local",
            "aloft-provider-aws",
        ],
        "the provider interface has no IO and knows no adapter",
    ),
    (
        "aloft-provider-local",
        &["aloft-store", "aloft-ops", "aloft-control", "aloft-agent"],
        "adapters never touch state or the application layer",
    ),
    (
        "aloft-provider-aws",
        &["aloft-store", "aloft-ops", "aloft-control", "aloft-agent"],
        "adapters never touch state or the application layer",
    ),
    (
        "aloft-store",
        &[
            "aloft-ops",
            "aloft-control",
            "aloft-provider-local",
            "aloft-provider-aws",
        ],
        "the store knows nothing of operations' engines or clouds",
    ),
    (
        "aloft-agent",
        &[
            "aloft-ops",
            "aloft-control",
            "aloft-provision",
            "aloft-provider-local",
            "aloft-provider-aws",
        ],
        "the head-node agent runs with the control plane gone and never calls a cloud",
    ),
    (
        "aloft-ops",
        &[
            "aloft-control",
            "aloft-provider-local",
            "aloft-provider-aws",
        ],
        "the saga engine holds providers as trait objects; policy lives above it",
    ),
    (
        "aloft-control",
        &["aloft-cli", "aloft-server", "aloft-client", "aloft-api"],
        "the application layer knows no HTTP and never depends on a front end",
    ),
    (
        "aloft-api",
        &["*"],
        "the API's types depend on nothing the server, client or CLI could pull in",
    ),
    (
        "aloft-client",
        &[
            "aloft-control",
            "aloft-store",
            "aloft-ops",
            "aloft-server",
            "aloft-provision",
            "aloft-provider-local",
            "aloft-provider-aws",
        ],
        "the client speaks the API only",
    ),
    (
        "aloft-server",
        &[
            "aloft-cli",
            "aloft-ops",
            "aloft-provider-local",
            "aloft-provider-aws",
            "aloft-client",
        ],
        "handlers call the application layer, never the saga engine or a cloud",
    ),
];

/// Each crate under crates/ with the aloft crates in its `[dependencies]`.
fn dependencies() -> BTreeMap<String, Vec<String>> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut section = String::new();
        let mut deps = Vec::new();
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                section = line.to_owned();
                continue;
            }
            if section == "[dependencies]"
                && let Some(dep) = line.split(['=', '.', ' ']).next()
                && dep.starts_with("aloft-")
            {
                deps.push(dep.to_owned());
            }
        }
        all.insert(name, deps);
    }
    all
}

#[test]
fn no_crate_depends_on_what_the_architecture_forbids() {
    let all = dependencies();
    assert!(
        all.contains_key("aloft-control") && all.contains_key("aloft-optimizer"),
        "read the workspace: {:?}",
        all.keys()
    );
    let mut broken = Vec::new();
    for (krate, forbidden, why) in FORBIDDEN {
        let deps = all
            .get(*krate)
            .unwrap_or_else(|| panic!("no crate {krate}: update FORBIDDEN"));
        for dep in deps {
            if forbidden.contains(&"*") || forbidden.contains(&dep.as_str()) {
                broken.push(format!("{krate} -> {dep}: {why}"));
            }
        }
    }
    assert!(broken.is_empty(), "forbidden edges:\n{}", broken.join("\n"));
}

#[test]
fn the_rules_would_catch_a_forbidden_edge() {
    // The manifest reader sees real edges: the CLI depends on the application layer.
    let all = dependencies();
    assert!(all["aloft-cli"].contains(&"aloft-control".to_owned()));
    assert!(all["aloft-control"].contains(&"aloft-ops".to_owned()));
}

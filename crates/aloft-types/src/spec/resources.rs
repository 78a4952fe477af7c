//! The `resources` section: one set of requirements, or alternatives (`any_of`, `ordered`,
//! accelerator lists and sets, per-region images) expanded into a flat list of options.
//!
//! Each `any_of`/`ordered` entry is merged over the outer fields key by key, as SkyPilot does,
//! before it is read, so an entry's error names the field where the user wrote it
//! (`resources.any_of[1].cpus` or `resources.cpus`).

use super::fields::{
    Diagnostics, Schema, boolean, check_fields, duration, get, index, join, list, nonempty_string,
    one_or_list, string, string_map,
};
use super::yaml::{Entry, Kind, Node, abbreviate};
use super::{Accelerator, PortRange, ResourceChoice, Resources};
use crate::infra::Infra;
use crate::quantity::Amount;
use crate::suggest::suggest;

/// Most resource options one task may expand to (alternatives multiply).
const MAX_OPTIONS: usize = 1024;

const RESOURCE_FIELDS_WITH_CHOICES: &[&str] = &[
    "infra",
    "cloud",
    "region",
    "zone",
    "instance_type",
    "cpus",
    "memory",
    "accelerators",
    // SkyPilot's other name for `accelerators` (`RESOURCE_CONFIG_ALIASES` in its resources.py).
    "gpus",
    "use_spot",
    "disk_size",
    "ports",
    "image_id",
    "labels",
    "estimated_runtime",
    // Keep these two last: `RESOURCE_FIELDS` is everything before them.
    "any_of",
    "ordered",
];

/// Resource fields aloft reads inside an option (everything but `any_of` and `ordered`).
pub(crate) const RESOURCE_FIELDS: &[&str] = RESOURCE_FIELDS_WITH_CHOICES
    .split_at(RESOURCE_FIELDS_WITH_CHOICES.len() - 2)
    .0;

/// SkyPilot resource fields that aloft accepts and does not use yet.
pub(crate) const RESOURCE_IGNORED: &[&str] = &[
    "disk_tier",
    "network_tier",
    "accelerator_args",
    "job_recovery",
    "spot_recovery",
    "autostop",
    "priority",
    "priority_class",
    "max_hourly_cost",
    "local_disk",
    "ephemeral_storage",
    "volumes",
];

/// Fields that are another name for a field aloft reads, as SkyPilot accepts them.
const ALIASES: &[(&str, &str)] = &[("gpus", "accelerators")];

/// The name a resource field is read under: `gpus` is `accelerators`.
fn canonical(key: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, canonical)| canonical)
}

/// Reports a mapping that gives a field under two of its names (`accelerators` and `gpus`).
fn check_aliases(diag: &mut Diagnostics<'_>, entries: &[Entry], path: &str) {
    for (alias, canonical) in ALIASES {
        if let (Some(_), Some(second)) = (get(entries, canonical), get(entries, alias)) {
            diag.error(
                Some(second.key_pos),
                &join(path, alias),
                format!("`{alias}` is another name for `{canonical}`; give only one of them"),
            );
        }
    }
}

/// Task fields, to point out when one is written inside `resources`.
const TASK_ONLY_FIELDS: &[&str] = &[
    "name",
    "workdir",
    "num_nodes",
    "envs",
    "secrets",
    "file_mounts",
    "setup",
    "run",
    "inputs",
    "outputs",
    "depends_on",
];

const RESOURCES_SCHEMA: Schema = Schema {
    known: RESOURCE_FIELDS_WITH_CHOICES,
    ignored: RESOURCE_IGNORED,
    misplaced: &[(
        TASK_ONLY_FIELDS,
        "`{}` is a task field; move it out of `resources`",
    )],
};

const OPTION_SCHEMA: Schema = Schema {
    known: RESOURCE_FIELDS,
    ignored: RESOURCE_IGNORED,
    misplaced: &[
        (
            &["any_of", "ordered"],
            "`{}` cannot be nested inside another `any_of` or `ordered` entry",
        ),
        (
            TASK_ONLY_FIELDS,
            "`{}` is a task field; move it out of `resources`",
        ),
    ],
};

/// Clouds SkyPilot knows, so that a typo in a cloud name is caught here.
const CLOUDS: &[&str] = &[
    "aws",
    "gcp",
    "azure",
    "kubernetes",
    "local",
    "lambda",
    "runpod",
    "oci",
    "ibm",
    "scp",
    "vsphere",
    "cudo",
    "fluidstack",
    "paperspace",
    "do",
    "nebius",
    "vast",
    "hyperbolic",
    "ssh",
    "seeweb",
    "primeintellect",
];

/// A field as it applies to one option: the entry and the path where the user wrote it.
#[derive(Clone, Debug)]
struct Field<'a> {
    entry: &'a Entry,
    path: String,
}

/// Reads `resources` (absent or null: one option with no requirements).
pub(crate) fn parse_resources(
    diag: &mut Diagnostics<'_>,
    node: Option<&Node>,
    path: &str,
) -> ResourceChoice {
    let fallback = ResourceChoice::single(Resources::default());
    let Some(node) = node.filter(|node| !node.is_null()) else {
        return fallback;
    };
    let Some(entries) = node.entries() else {
        diag.expected(node, path, "a mapping of resource requirements");
        return fallback;
    };
    check_fields(diag, entries, path, &RESOURCES_SCHEMA);
    check_aliases(diag, entries, path);
    let base: Vec<Field<'_>> = entries
        .iter()
        .filter(|entry| RESOURCE_FIELDS.contains(&entry.key.as_str()))
        .map(|entry| Field {
            entry,
            path: join(path, &entry.key),
        })
        .collect();

    let any_of = get(entries, "any_of");
    let ordered = get(entries, "ordered");
    if let (Some(_), Some(ordered)) = (any_of, ordered) {
        diag.error(
            Some(ordered.key_pos),
            &join(path, "ordered"),
            "`any_of` and `ordered` cannot be used together; pick one",
        );
    }
    let (choices, is_ordered) = match (any_of, ordered) {
        (Some(entry), _) => (entry, false),
        (None, Some(entry)) => (entry, true),
        (None, None) => {
            let options = build_options(diag, &base);
            return choice(options, false);
        }
    };

    let choices_path = join(path, &choices.key);
    let Some(items) = choices.value.items().filter(|items| !items.is_empty()) else {
        diag.expected(
            &choices.value,
            &choices_path,
            "a non-empty list of resource mappings",
        );
        return fallback;
    };
    let mut options = Vec::new();
    for (item_idx, item) in items.iter().enumerate() {
        let item_path = index(&choices_path, item_idx);
        let Some(item_entries) = item.entries() else {
            diag.expected(item, &item_path, "a mapping of resource requirements");
            continue;
        };
        check_fields(diag, item_entries, &item_path, &OPTION_SCHEMA);
        check_aliases(diag, item_entries, &item_path);
        let overrides_location = get(item_entries, "infra").is_some();
        let mut merged: Vec<Field<'_>> = base
            .iter()
            .filter(|field| {
                !(overrides_location
                    && matches!(field.entry.key.as_str(), "cloud" | "region" | "zone"))
            })
            .cloned()
            .collect();
        for entry in item_entries
            .iter()
            .filter(|entry| RESOURCE_FIELDS.contains(&entry.key.as_str()))
        {
            let field = Field {
                entry,
                path: join(&item_path, &entry.key),
            };
            match merged
                .iter_mut()
                .find(|existing| canonical(&existing.entry.key) == canonical(&entry.key))
            {
                Some(existing) => *existing = field,
                None => merged.push(field),
            }
        }
        options.extend(build_options(diag, &merged));
        if options.len() > MAX_OPTIONS {
            diag.error(
                Some(choices.key_pos),
                &choices_path,
                too_many_options(options.len()),
            );
            break;
        }
    }
    choice(options, is_ordered)
}

fn too_many_options(count: usize) -> String {
    format!("the resources expand to {count} options; at most {MAX_OPTIONS} are allowed")
}

fn choice(options: Vec<Resources>, ordered: bool) -> ResourceChoice {
    if options.is_empty() {
        // Only after an error; keep the "at least one option" invariant all the same.
        return ResourceChoice::single(Resources::default());
    }
    ResourceChoice { options, ordered }
}

/// The requirements of one entry, expanded over accelerator alternatives and per-region images.
fn build_options(diag: &mut Diagnostics<'_>, fields: &[Field<'_>]) -> Vec<Resources> {
    let field = |key: &str| {
        fields
            .iter()
            .find(|field| canonical(&field.entry.key) == key)
    };
    let mut resources = Resources {
        infra: location(diag, fields),
        ..Resources::default()
    };
    if let Some(field) = field("instance_type") {
        resources.instance_type = string(diag, &field.entry.value, &field.path);
    }
    if let Some(field) = field("cpus") {
        resources.cpus = cpus(diag, &field.entry.value, &field.path);
    }
    if let Some(field) = field("memory") {
        resources.memory = memory(diag, &field.entry.value, &field.path);
    }
    if let Some(field) = field("use_spot") {
        resources.use_spot = boolean(diag, &field.entry.value, &field.path).unwrap_or(false);
    }
    if let Some(field) = field("disk_size") {
        resources.disk_size = disk_size(diag, &field.entry.value, &field.path);
    }
    if let Some(field) = field("ports") {
        resources.ports = ports(diag, &field.entry.value, &field.path);
    }
    if let Some(field) = field("labels") {
        resources.labels = string_map(diag, &field.entry.value, &field.path);
    }
    if let Some(field) = field("estimated_runtime")
        && !field.entry.value.is_null()
    {
        resources.estimated_runtime = duration(diag, &field.entry.value, &field.path);
    }
    let accelerators = match field("accelerators") {
        Some(field) => accelerators(diag, &field.entry.value, &field.path),
        None => vec![None],
    };
    let images = match field("image_id") {
        Some(field) => images(diag, &field.entry.value, &field.path, &resources.infra),
        None => vec![(None, None)],
    };

    let count = accelerators.len().saturating_mul(images.len());
    if count > MAX_OPTIONS {
        let place = field("accelerators").or(field("image_id"));
        let pos = place.map(|field| field.entry.key_pos);
        let path = place.map_or(String::new(), |field| field.path.clone());
        diag.error(pos, &path, too_many_options(count));
        return vec![resources];
    }
    let mut options = Vec::new();
    for accelerator in &accelerators {
        for (region, image) in &images {
            let mut option = resources.clone();
            option.accelerator = accelerator.clone();
            option.image_id = image.clone();
            if let Some(region) = region {
                option.infra.region = Some(region.clone());
            }
            options.push(option);
        }
    }
    options
}

/// `infra`, or the older `cloud`/`region`/`zone` keys.
fn location(diag: &mut Diagnostics<'_>, fields: &[Field<'_>]) -> Infra {
    let field = |key: &str| fields.iter().find(|field| field.entry.key == key);
    let legacy: Vec<&Field<'_>> = ["cloud", "region", "zone"]
        .iter()
        .filter_map(|key| field(key))
        .collect();
    if let Some(infra_field) = field("infra") {
        for conflict in &legacy {
            diag.error(
                Some(conflict.entry.key_pos),
                &conflict.path,
                format!(
                    "`{}` cannot be combined with `infra`; write the location as one `infra: cloud/region/zone`",
                    conflict.entry.key
                ),
            );
        }
        let node = &infra_field.entry.value;
        if node.is_null() {
            return Infra::any();
        }
        let Some(text) = node.text() else {
            diag.expected(
                node,
                &infra_field.path,
                "a location such as `aws`, `aws/us-east-1` or `*`",
            );
            return Infra::any();
        };
        return match Infra::parse(text) {
            Ok(infra) => {
                check_cloud(diag, node, &infra_field.path, infra.cloud.as_deref());
                normalise_cloud(infra)
            }
            Err(error) => {
                diag.error(
                    Some(node.pos),
                    &infra_field.path,
                    format!("{error}, found `{}`", abbreviate(text)),
                );
                Infra::any()
            }
        };
    }

    let mut infra = Infra::any();
    let text_of = |diag: &mut Diagnostics<'_>, key: &str| -> Option<(String, &Field<'_>)> {
        let field = field(key)?;
        let text = string(diag, &field.entry.value, &field.path)?;
        let text = text.trim().to_owned();
        (!text.is_empty() && text != "*").then_some((text, field))
    };
    let cloud = text_of(diag, "cloud");
    let region = text_of(diag, "region");
    let zone = text_of(diag, "zone");
    if let Some((cloud, field)) = cloud {
        check_cloud(diag, &field.entry.value, &field.path, Some(&cloud));
        infra.cloud = Some(cloud.to_ascii_lowercase());
    }
    // A region with no cloud, or a zone with no region, is SkyPilot's wildcard form: the level
    // left out is whichever one has that region or zone.
    if let Some((region, _)) = region {
        infra.region = Some(region);
    }
    if let Some((zone, _)) = zone {
        infra.zone = Some(zone);
    }
    normalise_cloud(infra)
}

fn normalise_cloud(mut infra: Infra) -> Infra {
    if infra.cloud.as_deref() == Some("k8s") {
        infra.cloud = Some("kubernetes".to_owned());
    }
    infra
}

fn check_cloud(diag: &mut Diagnostics<'_>, node: &Node, path: &str, cloud: Option<&str>) {
    let Some(cloud) = cloud.map(str::to_ascii_lowercase) else {
        return;
    };
    if CLOUDS.contains(&cloud.as_str()) || cloud == "k8s" {
        return;
    }
    let message = match suggest(&cloud, CLOUDS.iter().copied()) {
        Some(best) => format!(
            "unknown cloud `{}`; did you mean `{best}`?",
            abbreviate(&cloud)
        ),
        None => format!(
            "unknown cloud `{}`; expected one of {}",
            abbreviate(&cloud),
            list(CLOUDS)
        ),
    };
    diag.error(Some(node.pos), path, message);
}

fn cpus(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<Amount> {
    if node.is_null() {
        return None;
    }
    let amount = node
        .text()
        .and_then(|text| Amount::parse(text).ok())
        .filter(|amount| amount.value > 0.0);
    if amount.is_none() {
        diag.expected(
            node,
            path,
            "a number of CPUs such as `8`, or `8+` for at least 8",
        );
    }
    amount
}

/// Memory in GiB: `32`, `32+`, `32GB`, `32GB+`, `0.5TB`. Units are read as binary (GiB), as
/// SkyPilot does.
fn memory(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<Amount> {
    if node.is_null() {
        return None;
    }
    let amount = node
        .text()
        .and_then(parse_memory)
        .filter(|amount| amount.value > 0.0);
    if amount.is_none() {
        diag.expected(
            node,
            path,
            "an amount of memory in GiB such as `32`, `32GB`, or `32+` for at least 32",
        );
    }
    amount
}

fn parse_memory(text: &str) -> Option<Amount> {
    let text = text.trim();
    let (text, at_least) = match text.strip_suffix('+') {
        Some(rest) => (rest.trim(), true),
        None => (text, false),
    };
    let (number, scale) = split_unit(
        text,
        &[
            (&["", "g", "gb", "gi", "gib"], 1.0),
            (&["t", "tb", "ti", "tib"], 1024.0),
            (&["m", "mb", "mi", "mib"], 1.0 / 1024.0),
        ],
    )?;
    let value = number * scale;
    value.is_finite().then_some(Amount { value, at_least })
}

/// Splits `32GB` into 32 and the scale of its unit, from `(units, scale)` pairs.
fn split_unit(text: &str, units: &[(&[&str], f64)]) -> Option<(f64, f64)> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    let unit = unit.trim().to_ascii_lowercase();
    let (_, scale) = units
        .iter()
        .find(|(names, _)| names.contains(&unit.as_str()))?;
    Some((number, *scale))
}

/// Disk size in whole GiB: `256`, `256GB`, `1TB`.
fn disk_size(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<u32> {
    if node.is_null() {
        return None;
    }
    let size = node
        .text()
        .and_then(|text| {
            split_unit(
                text.trim(),
                &[
                    (&["", "g", "gb", "gi", "gib"], 1.0),
                    (&["t", "tb", "ti", "tib"], 1024.0),
                ],
            )
        })
        .map(|(number, scale)| number * scale)
        .filter(|gib| *gib >= 1.0 && gib.fract() == 0.0 && *gib <= f64::from(u32::MAX))
        .map(|gib| gib as u32);
    if size.is_none() {
        diag.expected(node, path, "a whole number of GiB such as `256` or `256GB`");
    }
    size
}

/// `8080`, `"8080-8090"`, or a list of those.
fn ports(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Vec<PortRange> {
    if node.is_null() {
        return Vec::new();
    }
    let items = one_or_list(node, path);
    let mut ranges = Vec::new();
    for (item, item_path) in items {
        match item.text().and_then(parse_port_range) {
            Some(range) => ranges.push(range),
            None => diag.expected(
                item,
                &item_path,
                "a port (1-65535) or a range such as `8080-8090`",
            ),
        }
    }
    ranges
}

fn parse_port_range(text: &str) -> Option<PortRange> {
    let port = |text: &str| text.trim().parse::<u16>().ok().filter(|port| *port > 0);
    let range = match text.split_once('-') {
        Some((first, last)) => PortRange {
            first: port(first)?,
            last: port(last)?,
        },
        None => {
            let port = port(text)?;
            PortRange {
                first: port,
                last: port,
            }
        }
    };
    (range.first <= range.last).then_some(range)
}

/// `V100`, `V100:4`, `{V100: 4}`, or alternatives: `[V100, A100:2]`, `{V100, A100}`,
/// `{V100: 1, A100: 2}`. Returns one entry per alternative.
fn accelerators(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Vec<Option<Accelerator>> {
    const EXPECTED: &str =
        "an accelerator such as `V100`, `V100:4` or `{V100: 4}`, or a list or set of them";
    if node.is_null() {
        return vec![None];
    }
    let mut alternatives = Vec::new();
    match &node.kind {
        Kind::Scalar { text, .. } => match parse_accelerator(text) {
            Some(accelerator) => alternatives.push(Some(accelerator)),
            None => diag.expected(node, path, EXPECTED),
        },
        Kind::Seq(items) => {
            for (item_idx, item) in items.iter().enumerate() {
                let item_path = index(path, item_idx);
                match &item.kind {
                    Kind::Scalar { text, .. } => match parse_accelerator(text) {
                        Some(accelerator) => alternatives.push(Some(accelerator)),
                        None => diag.expected(
                            item,
                            &item_path,
                            "an accelerator such as `V100` or `A100:2`",
                        ),
                    },
                    Kind::Map(entries) if entries.len() == 1 => {
                        alternatives.extend(entries.iter().filter_map(|entry| {
                            accelerator_entry(diag, entry, &item_path).map(Some)
                        }));
                    }
                    _ => diag.expected(
                        item,
                        &item_path,
                        "an accelerator such as `V100` or `A100:2`",
                    ),
                }
            }
        }
        Kind::Map(entries) => {
            for entry in entries {
                if let Some(accelerator) = accelerator_entry(diag, entry, path) {
                    alternatives.push(Some(accelerator));
                }
            }
        }
    }
    if alternatives.is_empty() {
        if node.items().is_some_and(<[Node]>::is_empty)
            || node.entries().is_some_and(<[Entry]>::is_empty)
        {
            diag.expected(node, path, EXPECTED);
        }
        return vec![None];
    }
    alternatives
}

/// `V100: 4` (a null count means 1), or a key that carries its own count, `L4:1` with no
/// value: YAML reads SkyPilot's set form `{L4:1, A10G:1}` (no space after the colon) as a
/// mapping of such keys.
fn accelerator_entry(diag: &mut Diagnostics<'_>, entry: &Entry, path: &str) -> Option<Accelerator> {
    let entry_path = join(path, &abbreviate(&entry.key));
    let name = entry.key.trim();
    if name.contains(':') {
        if !entry.value.is_null() {
            diag.error(
                Some(entry.key_pos),
                &entry_path,
                format!(
                    "`{}` already gives a count, and so does its value; write `NAME: COUNT` or `NAME:COUNT`",
                    abbreviate(name)
                ),
            );
            return None;
        }
        let accelerator = parse_accelerator(name);
        if accelerator.is_none() {
            diag.error(
                Some(entry.key_pos),
                &entry_path,
                "expected an accelerator such as `V100` or `A100:2`",
            );
        }
        return accelerator;
    }
    if name.is_empty() {
        diag.error(
            Some(entry.key_pos),
            &entry_path,
            "expected an accelerator name such as `V100`",
        );
        return None;
    }
    let count = if entry.value.is_null() {
        Some(1.0)
    } else {
        entry.value.text().and_then(parse_count)
    };
    let Some(count) = count else {
        diag.expected(
            &entry.value,
            &entry_path,
            "a positive accelerator count such as `1`, `8` or `0.5`",
        );
        return None;
    };
    Some(Accelerator {
        name: name.to_owned(),
        count,
    })
}

fn parse_accelerator(text: &str) -> Option<Accelerator> {
    let text = text.trim();
    let (name, count) = match text.split_once(':') {
        Some((name, count)) => (name.trim(), parse_count(count)?),
        None => (text, 1.0),
    };
    (!name.is_empty()).then(|| Accelerator {
        name: name.to_owned(),
        count,
    })
}

fn parse_count(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|count| count.is_finite() && *count > 0.0)
}

/// `image_id`: one image, or SkyPilot's per-region form `{us-east-1: ami-1, us-west-2: ami-2}`,
/// which restricts the task to those regions (one option per region).
fn images(
    diag: &mut Diagnostics<'_>,
    node: &Node,
    path: &str,
    infra: &Infra,
) -> Vec<(Option<String>, Option<String>)> {
    let fallback = vec![(None, None)];
    if node.is_null() {
        return fallback;
    }
    let Some(entries) = node.entries() else {
        return match nonempty_string(
            diag,
            node,
            path,
            "an image id, or a mapping of regions to image ids",
        ) {
            Some(image) => vec![(None, Some(image))],
            None => fallback,
        };
    };
    if infra.cloud.is_none() {
        diag.error(
            Some(node.pos),
            path,
            "an `image_id` per region needs a cloud; add `infra: <cloud>`",
        );
        return fallback;
    }
    let mut images = Vec::new();
    for entry in entries {
        let entry_path = join(path, &abbreviate(&entry.key));
        let Some(image) = nonempty_string(diag, &entry.value, &entry_path, "an image id") else {
            continue;
        };
        let region = entry.key.trim().to_owned();
        if infra.region.as_ref().is_none_or(|wanted| *wanted == region) {
            images.push((Some(region), Some(image)));
        }
    }
    if images.is_empty() {
        if let Some(region) = &infra.region {
            diag.error(
                Some(node.pos),
                path,
                format!(
                    "no image is given for region `{}`, where the task must run",
                    abbreviate(region)
                ),
            );
        } else if entries.is_empty() {
            diag.expected(
                node,
                path,
                "an image id, or a mapping of regions to image ids",
            );
        }
        return fallback;
    }
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("32"), Some(Amount::exactly(32.0)));
        assert_eq!(parse_memory("32GB+"), Some(Amount::at_least(32.0)));
        assert_eq!(parse_memory("1TB"), Some(Amount::exactly(1024.0)));
        assert_eq!(parse_memory("512MiB"), Some(Amount::exactly(0.5)));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(parse_memory("3PB"), None);
    }

    #[test]
    fn port_ranges() {
        assert_eq!(
            parse_port_range("8080"),
            Some(PortRange {
                first: 8080,
                last: 8080
            })
        );
        assert_eq!(
            parse_port_range("8080-8090"),
            Some(PortRange {
                first: 8080,
                last: 8090
            })
        );
        assert_eq!(parse_port_range("8090-8080"), None);
        assert_eq!(parse_port_range("0"), None);
        assert_eq!(parse_port_range("70000"), None);
    }

    #[test]
    fn accelerator_strings() {
        let parsed = parse_accelerator("A100-80GB:8").unwrap();
        assert_eq!((parsed.name.as_str(), parsed.count), ("A100-80GB", 8.0));
        assert_eq!(parse_accelerator("tpu-v2-8").unwrap().count, 1.0);
        assert!(parse_accelerator("V100:0").is_none());
        assert!(parse_accelerator(":2").is_none());
    }
}

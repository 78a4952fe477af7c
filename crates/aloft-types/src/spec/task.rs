//! The fields of one task: SkyPilot's (`name`, `envs`, `file_mounts`, `run`, ...) and aloft's
//! own (`estimated_runtime`, `inputs`, `outputs`, and `depends_on` inside a DAG).

use super::fields::{
    Diagnostics, Schema, check_fields, duration, get, index, join, list, nonempty_string,
    one_or_list, percent, positive_int, size, string,
};
use super::resources::{RESOURCE_FIELDS, RESOURCE_IGNORED, parse_resources};
use super::substitute::{MOUNT_MODES, STORES, mentions_variable};
use super::yaml::{Entry, Kind, Node, Pos, abbreviate};
use super::{DataInput, DataOutput, FileMount, Pool, SpecValue, Task};
use crate::infra::Infra;
use crate::suggest::suggest;
use std::collections::BTreeMap;

pub(crate) const TASK_FIELDS: &[&str] = &[
    "name",
    "workdir",
    "num_nodes",
    "envs",
    "secrets",
    "file_mounts",
    "setup",
    "run",
    "resources",
    "estimated_runtime",
    "inputs",
    "outputs",
    "depends_on",
    "pool",
    "carbon_slack",
    "cost_slack",
];

/// SkyPilot task fields that aloft accepts and does not use yet.
const TASK_IGNORED: &[&str] = &[
    "service",
    "config",
    "volumes",
    "file_mounts_mapping",
    "event_callback",
    "experimental",
    "job_recovery",
    "priority",
    "managed_secrets",
    "volume_mounts",
    "api_server_access",
];

const TASK_SCHEMA: Schema = Schema {
    known: TASK_FIELDS,
    ignored: TASK_IGNORED,
    misplaced: &[
        (
            RESOURCE_FIELDS,
            "`{}` is a resource field; move it under `resources:`",
        ),
        (
            RESOURCE_IGNORED,
            "`{}` is a resource field; move it under `resources:`",
        ),
        (
            &["tasks"],
            "`tasks:` must be the only document in its file (with an optional `name`)",
        ),
        (
            &[
                "execution",
                "primary_tasks",
                "termination_delay",
                "placement",
            ],
            "`{}` belongs to a job group's header: the file's first document (with `name` and \
             `execution: parallel`), followed by `---` and one document per task",
        ),
    ],
};

const POOL_SCHEMA: Schema = Schema {
    known: &["workers", "min_workers", "max_workers"],
    ignored: &[
        "queue_length_threshold",
        "upscale_delay_seconds",
        "downscale_delay_seconds",
    ],
    misplaced: &[],
};

const STORAGE_SCHEMA: Schema = Schema {
    known: &["name", "source", "store", "mode"],
    ignored: &["persistent", "config", "mount_options", "type"],
    misplaced: &[],
};

const INPUT_SCHEMA: Schema = Schema {
    known: &["path", "size", "infra"],
    ignored: &[],
    misplaced: &[],
};
const OUTPUT_SCHEMA: Schema = Schema {
    known: &["path", "size"],
    ignored: &[],
    misplaced: &[],
};

/// A task, with what the DAG layer still has to resolve.
#[derive(Debug)]
pub(crate) struct ParsedTask {
    pub task: Task,
    /// Where the task's mapping starts, and where its name is written.
    pub pos: Pos,
    pub name_pos: Option<Pos>,
    /// `depends_on` entries: name, place, path.
    pub depends_on: Vec<(String, Pos, String)>,
}

/// Reads one task mapping. `in_dag` allows `depends_on`.
pub(crate) fn parse_task(
    diag: &mut Diagnostics<'_>,
    node: &Node,
    path: &str,
    in_dag: bool,
) -> ParsedTask {
    let mut task = Task::new("");
    task.name = None;
    let mut parsed = ParsedTask {
        task: task.clone(),
        pos: node.pos,
        name_pos: None,
        depends_on: Vec::new(),
    };
    let Some(entries) = node.entries() else {
        diag.expected(
            node,
            path,
            "a mapping of task fields (`name`, `resources`, `run`, ...)",
        );
        return parsed;
    };
    check_fields(diag, entries, path, &TASK_SCHEMA);
    warn_unfilled_variables(diag, entries, path);
    let field = |key: &str| get(entries, key).map(|entry| (&entry.value, join(path, key)));

    if let Some((value, field_path)) = field("name") {
        task.name = string(diag, value, &field_path).filter(|name| !name.trim().is_empty());
        if task.name.is_some() {
            parsed.name_pos = Some(value.pos);
        }
    }
    if let Some((value, field_path)) = field("workdir") {
        task.workdir = workdir(diag, value, &field_path);
    }
    if let Some((value, field_path)) = field("num_nodes")
        && !value.is_null()
    {
        task.num_nodes = positive_int(diag, value, &field_path).unwrap_or(1);
    }
    if let Some((value, field_path)) = field("envs") {
        task.envs = env_map(diag, value, &field_path);
    }
    if let Some((value, field_path)) = field("secrets") {
        task.secrets = crate::spec::Secrets(env_map(diag, value, &field_path));
    }
    if let Some((value, field_path)) = field("file_mounts") {
        task.file_mounts = file_mounts(diag, value, &field_path);
    }
    if let Some((value, field_path)) = field("setup") {
        task.setup = command(diag, value, &field_path);
    }
    if let Some((value, field_path)) = field("run") {
        task.run = command(diag, value, &field_path);
    }
    task.resources = parse_resources(
        diag,
        get(entries, "resources").map(|entry| &entry.value),
        &join(path, "resources"),
    );
    if let Some((value, field_path)) = field("estimated_runtime")
        && !value.is_null()
    {
        task.estimated_runtime = duration(diag, value, &field_path);
    }
    if let Some((value, field_path)) = field("inputs") {
        task.inputs = inputs(diag, value, &field_path);
    }
    if let Some((value, field_path)) = field("outputs") {
        task.outputs = outputs(diag, value, &field_path);
    }
    if let Some((value, field_path)) = field("carbon_slack")
        && !value.is_null()
    {
        task.carbon_slack = percent(diag, value, &field_path);
    }
    if let Some((value, field_path)) = field("cost_slack")
        && !value.is_null()
    {
        task.cost_slack = percent(diag, value, &field_path);
    }
    if let Some((value, field_path)) = field("pool")
        && !value.is_null()
    {
        task.pool = Some(pool(diag, value, &field_path));
    }
    if let Some(entry) = get(entries, "service") {
        task.service = Some(spec_value(&entry.value));
    }
    if let Some(entry) = get(entries, "volumes") {
        task.volumes = Some(spec_value(&entry.value));
    }
    if let Some(entry) = get(entries, "depends_on") {
        let field_path = join(path, "depends_on");
        if in_dag {
            parsed.depends_on = depends_on(diag, &entry.value, &field_path);
        } else {
            diag.error(
                Some(entry.key_pos),
                &field_path,
                "`depends_on` is only allowed for tasks in a `tasks:` list (pipeline documents run in order)",
            );
        }
    }
    parsed.task = task;
    parsed
}

/// `pool:`: how many workers (SkyPilot's autoscaling knobs are accepted with a warning).
fn pool(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Pool {
    let mut pool = Pool::default();
    let Some(entries) = node.entries() else {
        diag.expected(node, path, "a mapping such as `{workers: 3}`");
        return pool;
    };
    check_fields(diag, entries, path, &POOL_SCHEMA);
    let count = |diag: &mut Diagnostics<'_>, key: &str| -> Option<u32> {
        let entry = get(entries, key).filter(|entry| !entry.value.is_null())?;
        let value = entry
            .value
            .text()
            .and_then(|text| text.trim().parse::<u32>().ok());
        if value.is_none() {
            diag.expected(
                &entry.value,
                &join(path, key),
                "a whole number of workers (0 or more)",
            );
        }
        value
    };
    pool.workers = count(diag, "workers");
    pool.min_workers = count(diag, "min_workers");
    pool.max_workers = count(diag, "max_workers");
    pool
}

/// A section kept as written (`service`, `volumes`).
fn spec_value(node: &Node) -> SpecValue {
    match &node.kind {
        Kind::Scalar { .. } if node.is_null() => SpecValue::Null,
        Kind::Scalar { text, .. } => SpecValue::Text(text.clone()),
        Kind::Seq(items) => SpecValue::List(items.iter().map(spec_value).collect()),
        Kind::Map(entries) => SpecValue::Map(
            entries
                .iter()
                .map(|entry| (entry.key.clone(), spec_value(&entry.value)))
                .collect(),
        ),
    }
}

/// A local directory; SkyPilot's git form (`{url, ref}`) is accepted and not used yet.
fn workdir(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<String> {
    if node.entries().is_some() {
        diag.warn(
            Some(node.pos),
            path,
            "the git form of `workdir` is accepted but not used yet",
        );
        return None;
    }
    string(diag, node, path)
}

/// `setup` and `run`: a shell script.
fn command(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<String> {
    if node.is_null() {
        return None;
    }
    let text = node.text().map(str::to_owned);
    if text.is_none() {
        diag.expected(node, path, "a shell command (use `|` for several lines)");
    }
    text
}

/// `envs` and `secrets`: names to values. Numbers and booleans keep their text; null means the
/// value must be supplied at launch.
fn env_map(
    diag: &mut Diagnostics<'_>,
    node: &Node,
    path: &str,
) -> BTreeMap<String, Option<String>> {
    let mut map = BTreeMap::new();
    if node.is_null() {
        return map;
    }
    let Some(entries) = node.entries() else {
        diag.expected(node, path, "a mapping of variable names to values");
        return map;
    };
    for entry in entries {
        let entry_path = join(path, &abbreviate(&entry.key));
        if !is_env_name(&entry.key) {
            diag.error(
                Some(entry.key_pos),
                &entry_path,
                "expected a variable name of letters, digits and `_`, not starting with a digit",
            );
            continue;
        }
        let value = match &entry.value.kind {
            Kind::Scalar { .. } if entry.value.is_null() => None,
            Kind::Scalar { text, .. } => Some(text.clone()),
            Kind::Seq(_) | Kind::Map(_) => {
                diag.expected(
                    &entry.value,
                    &entry_path,
                    "a string, number or boolean (or null to require it at launch)",
                );
                continue;
            }
        };
        map.insert(entry.key.clone(), value);
    }
    map
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `file_mounts`: remote path to a local path or bucket URI, or to a storage mapping.
fn file_mounts(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> BTreeMap<String, FileMount> {
    let mut mounts = BTreeMap::new();
    if node.is_null() {
        return mounts;
    }
    let Some(entries) = node.entries() else {
        diag.expected(node, path, "a mapping of remote paths to sources");
        return mounts;
    };
    for entry in entries {
        let entry_path = join(path, &abbreviate(&entry.key));
        if entry.key.trim().is_empty() {
            diag.error(Some(entry.key_pos), &entry_path, "expected a remote path");
            continue;
        }
        let mount = match &entry.value.kind {
            Kind::Map(storage) => storage_mount(diag, &entry.value, storage, &entry_path),
            Kind::Scalar { text, .. } if !entry.value.is_null() && !text.trim().is_empty() => {
                Some(FileMount::Copy {
                    source: text.clone(),
                })
            }
            _ => {
                diag.expected(
                    &entry.value,
                    &entry_path,
                    "a local path, a bucket URI, or a storage mapping (`name`, `source`, `store`, `mode`)",
                );
                None
            }
        };
        if let Some(mount) = mount {
            mounts.insert(entry.key.clone(), mount);
        }
    }
    mounts
}

fn storage_mount(
    diag: &mut Diagnostics<'_>,
    node: &Node,
    entries: &[Entry],
    path: &str,
) -> Option<FileMount> {
    check_fields(diag, entries, path, &STORAGE_SCHEMA);
    let field = |key: &str| get(entries, key).map(|entry| (&entry.value, join(path, key)));
    let text = |diag: &mut Diagnostics<'_>, key: &str| {
        let (value, field_path) = field(key)?;
        string(diag, value, &field_path)
    };
    let name = text(diag, "name");
    let sources = match field("source") {
        Some((value, field_path)) => match value.items() {
            Some([]) => {
                diag.expected(
                    value,
                    &field_path,
                    "a path or bucket URI, or a non-empty list of paths",
                );
                Vec::new()
            }
            Some(items) => items
                .iter()
                .enumerate()
                .filter_map(|(idx, item)| {
                    nonempty_string(diag, item, &index(&field_path, idx), "a local path")
                })
                .collect(),
            None => string(diag, value, &field_path).into_iter().collect(),
        },
        None => Vec::new(),
    };
    let mut store = text(diag, "store");
    let mut mode = text(diag, "mode");
    if name.is_none()
        && sources.is_empty()
        && get(entries, "source").is_none()
        && get(entries, "name").is_none()
    {
        diag.error(
            Some(node.pos),
            path,
            "a storage mount needs a `name` or a `source`",
        );
    }
    // A store or mode given by a variable is checked once the variable is filled in, at
    // launch (`Task::with_overrides`).
    if let (Some(text), Some((value, field_path))) = (&store, field("store"))
        && !mentions_variable(text)
    {
        let lower = text.to_ascii_lowercase();
        if STORES.contains(&lower.as_str()) {
            store = Some(lower);
        } else {
            let hint = match suggest(&lower, STORES.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("expected one of {}", list(STORES)),
            };
            diag.error(
                Some(value.pos),
                &field_path,
                format!("unknown store `{}`; {hint}", abbreviate(text)),
            );
        }
    }
    if let (Some(text), Some((value, field_path))) = (&mode, field("mode"))
        && !mentions_variable(text)
    {
        let upper = text.to_ascii_uppercase();
        if MOUNT_MODES.contains(&upper.as_str()) {
            mode = Some(upper);
        } else {
            let hint = match suggest(&upper, MOUNT_MODES.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("expected one of {}", list(MOUNT_MODES)),
            };
            diag.error(
                Some(value.pos),
                &field_path,
                format!("unknown mode `{}`; {hint}", abbreviate(text)),
            );
        }
    }
    Some(FileMount::Storage {
        name,
        sources,
        store,
        mode,
    })
}

/// `inputs`: a list of `{path, size, infra}` (or `{uri: size}`) entries, one such mapping, or
/// SkyPilot's `{uri: size_in_gb, ...}` form.
fn inputs(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Vec<DataInput> {
    let mut inputs = Vec::new();
    if node.is_null() {
        return inputs;
    }
    match &node.kind {
        Kind::Seq(items) => {
            for (item_idx, item) in items.iter().enumerate() {
                let item_path = index(path, item_idx);
                match item.entries() {
                    Some(entries) => input_mapping(diag, item, entries, &item_path, &mut inputs),
                    None => diag.expected(
                        item,
                        &item_path,
                        "a mapping such as `{path: s3://bucket/data, size: 100GB}`",
                    ),
                }
            }
        }
        Kind::Map(entries) => input_mapping(diag, node, entries, path, &mut inputs),
        Kind::Scalar { .. } => {
            diag.expected(
                node,
                path,
                "a list of `{path, size}` mappings, or a mapping of URIs to sizes",
            );
        }
    }
    inputs
}

/// True when a mapping is the long form (`path`, `size`, ...) rather than `{uri: size}`.
fn is_long_form(entries: &[Entry], schema: &Schema) -> bool {
    entries
        .iter()
        .any(|entry| schema.known.contains(&entry.key.as_str()))
}

fn input_mapping(
    diag: &mut Diagnostics<'_>,
    node: &Node,
    entries: &[Entry],
    path: &str,
    inputs: &mut Vec<DataInput>,
) {
    if !is_long_form(entries, &INPUT_SCHEMA) {
        for entry in entries {
            let entry_path = join(path, &abbreviate(&entry.key));
            if entry.value.is_null() {
                diag.error(
                    Some(entry.key_pos),
                    &entry_path,
                    "missing size; give the size of the data, such as `100GB`",
                );
                continue;
            }
            let Some(size) = size(diag, &entry.value, &entry_path) else {
                continue;
            };
            let infra = infer_infra(diag, &entry.key, entry.key_pos, &entry_path);
            inputs.push(DataInput {
                path: entry.key.clone(),
                infra,
                size,
            });
        }
        return;
    }
    check_fields(diag, entries, path, &INPUT_SCHEMA);
    let data_path = match get(entries, "path") {
        Some(entry) => nonempty_string(
            diag,
            &entry.value,
            &join(path, "path"),
            "a path or a bucket URI",
        ),
        None => {
            diag.error(
                Some(node.pos),
                path,
                "missing `path`; give where the data lives, such as `s3://bucket/data`",
            );
            None
        }
    };
    let data_size = match get(entries, "size").filter(|entry| !entry.value.is_null()) {
        Some(entry) => size(diag, &entry.value, &join(path, "size")),
        None => {
            diag.error(
                Some(node.pos),
                path,
                "missing `size`; give the size of the data, such as `100GB`",
            );
            None
        }
    };
    let explicit = get(entries, "infra")
        .filter(|entry| !entry.value.is_null())
        .and_then(|entry| {
            let infra_path = join(path, "infra");
            let text = nonempty_string(
                diag,
                &entry.value,
                &infra_path,
                "a location such as `aws/us-east-1`",
            )?;
            match Infra::parse(&text) {
                Ok(infra) => Some((infra, entry.value.pos, infra_path)),
                Err(error) => {
                    diag.error(
                        Some(entry.value.pos),
                        &infra_path,
                        format!("{error}, found `{}`", abbreviate(&text)),
                    );
                    None
                }
            }
        });
    let (Some(data_path), Some(data_size)) = (data_path, data_size) else {
        return;
    };
    let infra = match explicit {
        Some((infra, pos, infra_path)) => {
            if let Some(scheme_cloud) = scheme_cloud(&data_path)
                && infra
                    .cloud
                    .as_deref()
                    .is_some_and(|cloud| cloud != scheme_cloud)
            {
                diag.warn(
                    Some(pos),
                    &infra_path,
                    format!(
                        "`{}` looks like {scheme_cloud} storage, but `infra` says {infra}",
                        abbreviate(&data_path)
                    ),
                );
            }
            infra
        }
        None => {
            let pos = get(entries, "path").map_or(node.pos, |entry| entry.value.pos);
            infer_infra(diag, &data_path, pos, &join(path, "path"))
        }
    };
    inputs.push(DataInput {
        path: data_path,
        infra,
        size: data_size,
    });
}

/// The cloud whose object store a URI names, if the scheme says.
fn scheme_cloud(uri: &str) -> Option<&'static str> {
    let (scheme, rest) = uri.trim().split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "s3" => Some("aws"),
        "gs" | "gcs" => Some("gcp"),
        "az" | "azure" => Some("azure"),
        "r2" => Some("cloudflare"),
        "cos" => Some("ibm"),
        "oci" => Some("oci"),
        "nebius" => Some("nebius"),
        "https" | "http" => {
            let host = rest.split('/').next().unwrap_or("");
            host.to_ascii_lowercase()
                .ends_with(".blob.core.windows.net")
                .then_some("azure")
        }
        _ => None,
    }
}

/// Where data at `uri` lives: the cloud of its scheme, or anywhere for a local path.
fn infer_infra(diag: &mut Diagnostics<'_>, uri: &str, pos: Pos, path: &str) -> Infra {
    if let Some(cloud) = scheme_cloud(uri) {
        return Infra {
            cloud: Some(cloud.to_owned()),
            region: None,
            zone: None,
        };
    }
    if uri.contains("://") && !uri.trim().starts_with("file://") {
        diag.warn(
            Some(pos),
            path,
            format!(
                "cannot tell which cloud `{}` is in; add `infra:` to say",
                abbreviate(uri)
            ),
        );
    }
    Infra::any()
}

/// `outputs`: a size (`50GB`), `{path, size}`, or `{uri: size}`.
fn outputs(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<DataOutput> {
    if node.is_null() {
        return None;
    }
    let Some(entries) = node.entries() else {
        if node.items().is_some() {
            diag.expected(
                node,
                path,
                "a size such as `50GB`, or `{path: ..., size: ...}`",
            );
            return None;
        }
        return size(diag, node, path).map(|size| DataOutput { path: None, size });
    };
    if !is_long_form(entries, &OUTPUT_SCHEMA) {
        let [entry] = entries else {
            diag.error(
                Some(node.pos),
                path,
                format!(
                    "a task has one output, found {}; expected a size or `{{path, size}}`",
                    entries.len()
                ),
            );
            return None;
        };
        let entry_path = join(path, &abbreviate(&entry.key));
        if entry.value.is_null() {
            diag.error(
                Some(entry.key_pos),
                &entry_path,
                "missing size; give the size of the data, such as `50GB`",
            );
            return None;
        }
        let size = size(diag, &entry.value, &entry_path)?;
        return Some(DataOutput {
            path: Some(entry.key.clone()),
            size,
        });
    }
    check_fields(diag, entries, path, &OUTPUT_SCHEMA);
    let data_path =
        get(entries, "path").and_then(|entry| string(diag, &entry.value, &join(path, "path")));
    let Some(size_entry) = get(entries, "size").filter(|entry| !entry.value.is_null()) else {
        diag.error(
            Some(node.pos),
            path,
            "missing `size`; give the size of the data, such as `50GB`",
        );
        return None;
    };
    let size = size(diag, &size_entry.value, &join(path, "size"))?;
    Some(DataOutput {
        path: data_path,
        size,
    })
}

/// `depends_on`: a task name or a list of them.
fn depends_on(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Vec<(String, Pos, String)> {
    if node.is_null() {
        return Vec::new();
    }
    let items = one_or_list(node, path);
    let mut names = Vec::new();
    for (item, item_path) in items {
        if let Some(name) = nonempty_string(diag, item, &item_path, "a task name") {
            names.push((name, item.pos, item_path));
        }
    }
    names
}

/// Task fields whose `$VAR`s mean something: filled from `envs`/`secrets` (see `substitute`), or
/// shell scripts and values the node's shell expands.
const FIELDS_WITH_VARIABLES: &[&str] = &[
    "run",
    "setup",
    "envs",
    "secrets",
    "file_mounts",
    "workdir",
    "service",
    "volumes",
];

/// Says where a `$VAR` is written that nothing fills (SkyPilot fills variables only in
/// `file_mounts`, `workdir`, `service` and `volumes`): the value is used as written, which is
/// rarely what was meant, and never silently.
fn warn_unfilled_variables(diag: &mut Diagnostics<'_>, entries: &[Entry], path: &str) {
    fn walk(diag: &mut Diagnostics<'_>, node: &Node, path: &str) {
        match &node.kind {
            Kind::Scalar { text, .. } => {
                if mentions_variable(text) {
                    diag.warn(
                        Some(node.pos),
                        path,
                        "`$` variables are not filled here (only in file_mounts, workdir, \
                         service and volumes, as in SkyPilot); the value is used as written",
                    );
                }
            }
            Kind::Seq(items) => {
                for (idx, item) in items.iter().enumerate() {
                    walk(diag, item, &format!("{path}[{idx}]"));
                }
            }
            Kind::Map(entries) => {
                for entry in entries {
                    walk(diag, &entry.value, &join(path, &entry.key));
                }
            }
        }
    }
    for entry in entries {
        if !FIELDS_WITH_VARIABLES.contains(&entry.key.as_str()) {
            walk(diag, &entry.value, &join(path, &entry.key));
        }
    }
}

//! YAML front end for the task spec: decides whether a file is one task, a `tasks:` DAG or a
//! SkyPilot pipeline, and checks what only the whole file can tell (task names, dependencies).
//!
//! Reading goes on after an error wherever the rest of the file still makes sense, so that one
//! run shows every problem. Errors and warnings come out sorted by their place in the file and
//! render as `file:line:column: field.path: what was expected, found what`.
//!
//! The accepted forms, in short (the tests in `tests/spec_accept.rs` show each one):
//!
//! - Task: `name`, `workdir`, `num_nodes`, `envs`/`secrets` (null = supply at launch),
//!   `file_mounts` (a source, or `{name, source, store, mode}`), `setup`, `run`, `resources`,
//!   and aloft's `estimated_runtime` (`6h`; a number is hours), `inputs` (`[{path, size,
//!   infra}]` or `{uri: size_gb}`; the cloud comes from the URI scheme) and `outputs` (`50GB`,
//!   `{path, size}` or `{uri: size_gb}`).
//! - Resources: `infra` or `cloud`/`region`/`zone`, `instance_type`, `cpus`, `memory` (GiB,
//!   units allowed), `accelerators` or `gpus` (`V100:4`, `{V100: 4}`, or alternatives as a
//!   list, set, set with counts `{L4:1, A10G:1}` or mapping), `use_spot`, `disk_size`, `ports`, `image_id` (one, or per region), `labels`,
//!   `estimated_runtime`, and `any_of` or `ordered`: entries merged over the outer fields.
//!   Options are the cross product of entries, accelerator alternatives and image regions.
//! - Files: one task; `name` + `tasks:` with `depends_on`; or `---`-separated pipeline
//!   documents (a first document with only `name` names the pipeline) run as a chain; or a job
//!   group (a header with `execution: parallel`) whose tasks run at once.
//! - SkyPilot's `$VAR` in file mounts, `workdir`, `service` and `volumes` is kept here and
//!   filled at launch (`Task::with_overrides`, `substitute.rs`), where `--env` values are known.
//! - SkyPilot fields aloft does not use yet (and `_`-prefixed internals) give a warning.

use super::fields::{
    Diagnostics, Schema, check_fields, duration, get, index, join, list, nonempty_string,
    one_or_list, string,
};
use super::task::{ParsedTask, TASK_FIELDS, parse_task};
use super::yaml::{Entry, Node, Pos, abbreviate, load};
use super::{Dag, JobGroup, TaskIdx, TerminationDelay};
use crate::suggest::suggest;
use std::collections::BTreeMap;
use std::fmt;

/// One problem in a spec, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The file name as the user gave it.
    pub file: String,
    /// 1-based line and column (in characters); `None` when the problem has no single place
    /// (e.g. an empty file).
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Field path such as `resources.accelerators` or `tasks[2].depends_on[0]`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a spec (parsing goes on after the first, to report them all).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, error) in self.0.iter().enumerate() {
            if idx > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Parses a task, DAG or pipeline file. `file` is only used in messages.
pub fn parse_dag(source: &str, file: &str) -> Result<Dag, SpecErrors> {
    parse_dag_with_warnings(source, file).map(|(dag, _warnings)| dag)
}

/// Parses a task, DAG or pipeline file, and also returns warnings: notes that do not stop the
/// spec from being used, such as SkyPilot fields that aloft accepts but does not use yet.
pub fn parse_dag_with_warnings(
    source: &str,
    file: &str,
) -> Result<(Dag, Vec<SpecError>), SpecErrors> {
    let mut diag = Diagnostics::new(file);
    let dag = parse_source(&mut diag, source);
    let Diagnostics {
        mut errors,
        mut warnings,
        dropped_errors,
        dropped_warnings,
        ..
    } = diag;
    tidy(&mut errors, file, dropped_errors, "errors");
    tidy(&mut warnings, file, dropped_warnings, "warnings");
    match dag {
        Some(dag) if errors.is_empty() => Ok((dag, warnings)),
        _ => {
            if errors.is_empty() {
                // Every path that gives up reports why; this keeps `Err` from ever being empty.
                errors.push(SpecError {
                    file: file.to_owned(),
                    line: None,
                    column: None,
                    path: String::new(),
                    message: "the spec could not be read".to_owned(),
                });
            }
            Err(SpecErrors(errors))
        }
    }
}

/// Sorts by place (placeless last) and says how many were left out.
fn tidy(errors: &mut Vec<SpecError>, file: &str, dropped: usize, kind: &str) {
    errors.sort_by_key(|error| (error.line.is_none(), error.line, error.column));
    if dropped > 0 {
        errors.push(SpecError {
            file: file.to_owned(),
            line: None,
            column: None,
            path: String::new(),
            message: format!("and {dropped} more {kind} not shown"),
        });
    }
}

const DAG_SCHEMA: Schema = Schema {
    known: &["name", "tasks"],
    ignored: &[],
    misplaced: &[(
        TASK_FIELDS,
        "`{}` belongs to a task; move it into an entry of `tasks:`",
    )],
};

fn parse_source(diag: &mut Diagnostics<'_>, source: &str) -> Option<Dag> {
    let loaded = match load(source) {
        Ok(loaded) => loaded,
        Err(problem) => {
            diag.error(problem.pos, "", problem.message);
            return None;
        }
    };
    for problem in loaded.problems {
        diag.error(problem.pos, "", problem.message);
    }
    // Empty documents (a trailing `---`, say) are skipped, as SkyPilot does.
    let documents: Vec<&Node> = loaded
        .documents
        .iter()
        .filter(|node| !node.is_null())
        .collect();
    let (first, rest) = match documents.split_first() {
        Some(split) => split,
        None => {
            diag.error(
                None,
                "",
                "the file holds no task; expected a mapping of task fields such as `resources` and `run`",
            );
            return None;
        }
    };
    if rest.is_empty() {
        return match first.entries() {
            Some(entries) if get(entries, "tasks").is_some() => parse_tasks_dag(diag, first),
            _ => Some(Dag::single(parse_task(diag, first, "", false).task)),
        };
    }
    parse_pipeline(diag, first, rest)
}

/// Fields of the header document of a pipeline or job group.
pub(crate) const HEADER_FIELDS: &[&str] = &[
    "name",
    "execution",
    "primary_tasks",
    "termination_delay",
    "placement",
];

/// SkyPilot's pipeline: documents run one after another. A first document holding only header
/// fields names the pipeline; with `execution: parallel` the file is a job group instead, whose
/// tasks run at once.
fn parse_pipeline(diag: &mut Diagnostics<'_>, first: &Node, rest: &[&Node]) -> Option<Dag> {
    let header = first.entries().filter(|entries| {
        !entries.is_empty()
            && entries
                .iter()
                .all(|entry| HEADER_FIELDS.contains(&entry.key.as_str()))
    });
    let (name, task_nodes): (Option<String>, Vec<&Node>) = match header {
        Some(entries) => {
            let name = get(entries, "name").and_then(|entry| string(diag, &entry.value, "name"));
            (name, rest.to_vec())
        }
        None => (
            None,
            std::iter::once(first).chain(rest.iter().copied()).collect(),
        ),
    };
    let parallel = header.is_some_and(|entries| is_parallel(diag, entries));
    let mut tasks = Vec::new();
    for node in task_nodes {
        if let Some(entry) = node.entries().and_then(|entries| get(entries, "tasks")) {
            diag.error(
                Some(entry.key_pos),
                "tasks",
                "a `tasks:` DAG must be the only document in its file; pipeline documents are tasks",
            );
            continue;
        }
        tasks.push(parse_task(diag, node, "", false));
    }
    if parallel && let Some(entries) = header {
        let job_group = job_group(diag, entries, &tasks);
        let tasks = tasks.into_iter().map(|task| task.task).collect();
        return Some(Dag {
            name,
            tasks,
            edges: Vec::new(),
            job_group: Some(job_group),
        });
    }
    let tasks: Vec<_> = tasks.into_iter().map(|task| task.task).collect();
    let edges = (1..tasks.len())
        .map(|child| (TaskIdx(child - 1), TaskIdx(child)))
        .collect();
    Some(Dag {
        name,
        tasks,
        edges,
        job_group: None,
    })
}

/// `execution: parallel` (a job group) or `serial` (a pipeline, the default). Job group fields
/// in a pipeline's header are an error saying what they need.
fn is_parallel(diag: &mut Diagnostics<'_>, entries: &[Entry]) -> bool {
    let parallel = match get(entries, "execution").filter(|entry| !entry.value.is_null()) {
        None => false,
        Some(entry) => match entry.value.text() {
            Some("parallel") => true,
            Some("serial") => false,
            _ => {
                diag.expected(
                    &entry.value,
                    "execution",
                    "`parallel` (a job group) or `serial` (a pipeline)",
                );
                return false;
            }
        },
    };
    if !parallel {
        for key in ["primary_tasks", "termination_delay", "placement"] {
            if let Some(entry) = get(entries, key) {
                diag.error(
                    Some(entry.key_pos),
                    key,
                    format!("`{key}` is for a job group; add `execution: parallel` to the header"),
                );
            }
        }
    }
    parallel
}

/// The job group header's `primary_tasks` and `termination_delay`, checked against the tasks'
/// names (which must be present and unique: SkyPilot uses them to tell the tasks apart).
fn job_group(diag: &mut Diagnostics<'_>, entries: &[Entry], tasks: &[ParsedTask]) -> JobGroup {
    let mut names: Vec<&str> = Vec::new();
    for task in tasks {
        match (task.task.name.as_deref(), task.name_pos) {
            (Some(name), Some(pos)) => {
                if names.contains(&name) {
                    diag.error(
                        Some(pos),
                        "name",
                        format!(
                            "duplicate task name `{}`; every task in a job group needs its own name",
                            abbreviate(name)
                        ),
                    );
                }
                names.push(name);
            }
            _ => diag.error(
                Some(task.pos),
                "",
                "every task in a job group needs a `name` (it tells the tasks apart)",
            ),
        }
    }
    let check_name = |diag: &mut Diagnostics<'_>, name: &str, pos: Pos, path: &str| -> bool {
        if names.contains(&name) {
            return true;
        }
        let hint = match suggest(name, names.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("the tasks are {}", list(&names)),
        };
        diag.error(
            Some(pos),
            path,
            format!("unknown task `{}`; {hint}", abbreviate(name)),
        );
        false
    };
    // SkyPilot's earlier `placement:`; `SAME_INFRA` (its only value) is what a group gets.
    if let Some(entry) = get(entries, "placement").filter(|entry| !entry.value.is_null())
        && entry.value.text() != Some("SAME_INFRA")
    {
        diag.expected(
            &entry.value,
            "placement",
            "`SAME_INFRA` (a job group's tasks run in one region)",
        );
    }
    let mut primary_tasks = Vec::new();
    if let Some(entry) = get(entries, "primary_tasks").filter(|entry| !entry.value.is_null()) {
        for (item, item_path) in one_or_list(&entry.value, "primary_tasks") {
            if let Some(name) = nonempty_string(diag, item, &item_path, "a task name")
                && check_name(diag, &name, item.pos, &item_path)
            {
                primary_tasks.push(name);
            }
        }
    }
    let termination_delay = get(entries, "termination_delay")
        .filter(|entry| !entry.value.is_null())
        .map(|entry| {
            let mut delay = TerminationDelay {
                default: None,
                per_task: BTreeMap::new(),
            };
            match entry.value.entries() {
                None => delay.default = duration(diag, &entry.value, "termination_delay"),
                Some(per_task) => {
                    for task_entry in per_task {
                        let path = join("termination_delay", &abbreviate(&task_entry.key));
                        let value = duration(diag, &task_entry.value, &path);
                        if task_entry.key == "default" {
                            delay.default = value;
                        } else if check_name(diag, &task_entry.key, task_entry.key_pos, &path)
                            && let Some(value) = value
                        {
                            delay.per_task.insert(task_entry.key.clone(), value);
                        }
                    }
                }
            }
            delay
        });
    JobGroup {
        primary_tasks,
        termination_delay,
    }
}

/// aloft's DAG form: `name` and `tasks:`, each task naming its parents in `depends_on`.
fn parse_tasks_dag(diag: &mut Diagnostics<'_>, node: &Node) -> Option<Dag> {
    let entries = node.entries()?;
    check_fields(diag, entries, "", &DAG_SCHEMA);
    let name = get(entries, "name").and_then(|entry| string(diag, &entry.value, "name"));
    let tasks_entry = get(entries, "tasks")?;
    let Some(items) = tasks_entry.value.items().filter(|items| !items.is_empty()) else {
        diag.expected(&tasks_entry.value, "tasks", "a non-empty list of tasks");
        return None;
    };
    let parsed: Vec<ParsedTask> = items
        .iter()
        .enumerate()
        .map(|(idx, item)| parse_task(diag, item, &index("tasks", idx), true))
        .collect();

    // Names: present and unique, since `depends_on` refers to them.
    let mut by_name: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (idx, task) in parsed.iter().enumerate() {
        let task_path = index("tasks", idx);
        let (Some(name), Some(name_pos)) = (task.task.name.as_deref(), task.name_pos) else {
            // A task that is not a mapping has been reported already.
            if items.get(idx).is_some_and(|item| item.entries().is_some()) {
                diag.error(
                    Some(task.pos),
                    &task_path,
                    "every task in a DAG needs a `name`, so that `depends_on` can refer to it",
                );
            }
            continue;
        };
        match by_name.get(name) {
            Some(first) => {
                let first_line = parsed
                    .get(*first)
                    .and_then(|task| task.name_pos)
                    .map_or(0, |pos| pos.line);
                diag.error(
                    Some(name_pos),
                    &join(&task_path, "name"),
                    format!(
                        "duplicate task name `{}`; it is first used on line {first_line}",
                        abbreviate(name)
                    ),
                );
            }
            None => {
                by_name.insert(name, idx);
            }
        }
    }

    // Dependencies: each parent list, resolved to indices.
    let mut names: Vec<&str> = by_name.keys().copied().collect();
    names.sort_unstable();
    let mut parents: Vec<Vec<(usize, Pos, String)>> = Vec::new();
    for (child, task) in parsed.iter().enumerate() {
        let mut resolved: Vec<(usize, Pos, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (parent_name, pos, path) in &task.depends_on {
            match by_name.get(parent_name.as_str()) {
                Some(&parent) if parent == child => {
                    diag.error(
                        Some(*pos),
                        path,
                        format!("task `{}` depends on itself", abbreviate(parent_name)),
                    );
                }
                Some(&parent) => {
                    if seen.insert(parent) {
                        resolved.push((parent, *pos, path.clone()));
                    }
                }
                None => {
                    // Suggestions are skipped for huge (hostile) files.
                    let best = if names.len() <= 1000 && !diag.is_full() {
                        suggest(parent_name, names.iter().copied())
                    } else {
                        None
                    };
                    let hint = match best {
                        Some(best) => format!("did you mean `{best}`?"),
                        None if names.len() <= 20 => format!("the tasks are {}", list(&names)),
                        None => "no task has that name".to_owned(),
                    };
                    diag.error(
                        Some(*pos),
                        path,
                        format!("unknown task `{}`; {hint}", abbreviate(parent_name)),
                    );
                }
            }
        }
        parents.push(resolved);
    }
    if let Some((cycle, pos, path)) = find_cycle(&parents) {
        let names: Vec<String> = cycle
            .iter()
            .map(|idx| {
                parsed
                    .get(*idx)
                    .and_then(|task| task.task.name.clone())
                    .unwrap_or_else(|| format!("task-{idx}"))
            })
            .collect();
        diag.error(
            Some(pos),
            &path,
            format!(
                "dependency cycle: {} (each task depends on the next)",
                names.join(" -> ")
            ),
        );
    }

    let mut edges = Vec::new();
    for (child, task_parents) in parents.iter().enumerate() {
        for (parent, _, _) in task_parents {
            edges.push((TaskIdx(*parent), TaskIdx(child)));
        }
    }
    let tasks = parsed.into_iter().map(|task| task.task).collect();
    Some(Dag {
        name,
        tasks,
        edges,
        job_group: None,
    })
}

/// A cycle in the depends-on graph, as the list of tasks from one back to itself, with the place
/// of the `depends_on` entry that closes it.
fn find_cycle(parents: &[Vec<(usize, Pos, String)>]) -> Option<(Vec<usize>, Pos, String)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks = vec![Mark::New; parents.len()];
    for root in 0..parents.len() {
        if marks.get(root) != Some(&Mark::New) {
            continue;
        }
        // Iterative depth-first search: (task, next parent to look at).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        if let Some(mark) = marks.get_mut(root) {
            *mark = Mark::Open;
        }
        while let Some((task, next)) = stack.last().copied() {
            let Some((parent, pos, path)) = parents.get(task).and_then(|list| list.get(next))
            else {
                if let Some(mark) = marks.get_mut(task) {
                    *mark = Mark::Done;
                }
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            match marks.get(*parent) {
                Some(Mark::New) => {
                    if let Some(mark) = marks.get_mut(*parent) {
                        *mark = Mark::Open;
                    }
                    stack.push((*parent, 0));
                }
                Some(Mark::Open) => {
                    let start = stack
                        .iter()
                        .position(|(open, _)| open == parent)
                        .unwrap_or(0);
                    let mut cycle: Vec<usize> =
                        stack.iter().skip(start).map(|(open, _)| *open).collect();
                    cycle.push(*parent);
                    return Some((cycle, *pos, path.clone()));
                }
                _ => {}
            }
        }
    }
    None
}

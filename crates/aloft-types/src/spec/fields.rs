//! Shared pieces of the spec front end: the error collector, field-name checking, and readers
//! for the scalar shapes that several fields share (strings, booleans, counts, durations).
//!
//! Every reader reports its own error (with the node's place and the field path) and returns
//! `None`, so callers carry on and the user sees every problem in one run.

use super::parse::SpecError;
use super::yaml::{Entry, Node, Pos, abbreviate};
use crate::quantity::{Duration, Size};
use crate::suggest::suggest;
use std::collections::HashSet;

/// At most this many errors (and as many warnings) are kept; a hostile file could otherwise
/// make millions, each with a costly suggestion.
pub(crate) const MAX_REPORTED: usize = 100;

/// Collects errors and warnings for one file, without repeats: a field shared by several
/// `any_of` options is read once per option but reported once.
#[derive(Debug)]
pub(crate) struct Diagnostics<'f> {
    pub file: &'f str,
    pub errors: Vec<SpecError>,
    pub warnings: Vec<SpecError>,
    /// How many errors and warnings were dropped past [`MAX_REPORTED`].
    pub dropped_errors: usize,
    pub dropped_warnings: usize,
    seen: HashSet<(bool, Option<Pos>, String, String)>,
}

impl<'f> Diagnostics<'f> {
    pub fn new(file: &'f str) -> Diagnostics<'f> {
        Diagnostics {
            file,
            errors: Vec::new(),
            warnings: Vec::new(),
            dropped_errors: 0,
            dropped_warnings: 0,
            seen: HashSet::new(),
        }
    }

    /// True once no more errors are kept, so callers can skip work (suggestions) for them.
    pub fn is_full(&self) -> bool {
        self.errors.len() >= MAX_REPORTED
    }

    fn make(&self, pos: Option<Pos>, path: &str, message: String) -> SpecError {
        SpecError {
            file: self.file.to_owned(),
            line: pos.map(|pos| pos.line),
            column: pos.map(|pos| pos.column),
            path: path.to_owned(),
            message,
        }
    }

    pub fn error(&mut self, pos: Option<Pos>, path: &str, message: impl Into<String>) {
        self.report(true, pos, path, message.into());
    }

    pub fn warn(&mut self, pos: Option<Pos>, path: &str, message: impl Into<String>) {
        self.report(false, pos, path, message.into());
    }

    fn report(&mut self, is_error: bool, pos: Option<Pos>, path: &str, message: String) {
        let (kept, dropped) = if is_error {
            (self.errors.len(), &mut self.dropped_errors)
        } else {
            (self.warnings.len(), &mut self.dropped_warnings)
        };
        if kept >= MAX_REPORTED {
            *dropped += 1;
            return;
        }
        let key = (is_error, pos, path.to_owned(), message);
        if self.seen.contains(&key) {
            return;
        }
        let (_, pos, path, message) = key.clone();
        self.seen.insert(key);
        let report = self.make(pos, &path, message);
        if is_error {
            self.errors.push(report);
        } else {
            self.warnings.push(report);
        }
    }

    /// Reports "expected `what`, found <the node>" at the node.
    pub fn expected(&mut self, node: &Node, path: &str, what: &str) {
        self.error(
            Some(node.pos),
            path,
            format!("expected {what}, found {}", node.describe()),
        );
    }
}

/// `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[idx]`.
pub(crate) fn index(path: &str, idx: usize) -> String {
    format!("{path}[{idx}]")
}

/// A field that takes one value or a list of them (`ports: 8080`, `depends_on: [a, b]`): each
/// value with its own path (`ports[1]`, or `ports` itself for a single value).
pub(crate) fn one_or_list<'n>(node: &'n Node, path: &str) -> Vec<(&'n Node, String)> {
    match node.items() {
        Some(items) => items
            .iter()
            .enumerate()
            .map(|(idx, item)| (item, index(path, idx)))
            .collect(),
        None => vec![(node, path.to_owned())],
    }
}

/// The fields a mapping may hold.
#[derive(Debug)]
pub(crate) struct Schema {
    /// Fields aloft reads.
    pub known: &'static [&'static str],
    /// SkyPilot fields aloft accepts and ignores for now (with a warning). Keys starting with
    /// `_` (SkyPilot internals) are treated the same way.
    pub ignored: &'static [&'static str],
    /// Fields that belong somewhere else, with a hint naming the place (`{}` is the key).
    pub misplaced: &'static [(&'static [&'static str], &'static str)],
}

/// Reports unknown fields (with a suggestion) and warns about ignored ones.
pub(crate) fn check_fields(
    diag: &mut Diagnostics<'_>,
    entries: &[Entry],
    path: &str,
    schema: &Schema,
) {
    for entry in entries {
        let key = entry.key.as_str();
        let key_path = join(path, &abbreviate(key));
        if schema.known.contains(&key) {
            continue;
        }
        if schema.ignored.contains(&key) || key.starts_with('_') {
            diag.warn(Some(entry.key_pos), &key_path, "accepted but not used yet");
            continue;
        }
        if let Some((_, hint)) = schema
            .misplaced
            .iter()
            .find(|(fields, _)| fields.contains(&key))
        {
            diag.error(Some(entry.key_pos), &key_path, hint.replace("{}", key));
            continue;
        }
        let candidates = schema.known.iter().chain(schema.ignored).copied();
        if diag.is_full() {
            diag.error(Some(entry.key_pos), &key_path, "unknown field");
            continue;
        }
        let message = match suggest(key, candidates) {
            Some(best) => format!("unknown field; did you mean `{best}`?"),
            None => format!("unknown field; expected one of {}", list(schema.known)),
        };
        diag.error(Some(entry.key_pos), &key_path, message);
    }
}

/// `` `a`, `b`, `c` ``.
pub(crate) fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn get<'a>(entries: &'a [Entry], key: &str) -> Option<&'a Entry> {
    entries.iter().find(|entry| entry.key == key)
}

/// A string field; null means absent. Numbers and booleans are taken as their text.
pub(crate) fn string(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<String> {
    if node.is_null() {
        return None;
    }
    match node.text() {
        Some(text) => Some(text.to_owned()),
        None => {
            diag.expected(node, path, "a string");
            None
        }
    }
}

/// A string field that must not be empty.
pub(crate) fn nonempty_string(
    diag: &mut Diagnostics<'_>,
    node: &Node,
    path: &str,
    what: &str,
) -> Option<String> {
    match node.text() {
        Some(text) if !text.trim().is_empty() => Some(text.to_owned()),
        _ => {
            diag.expected(node, path, what);
            None
        }
    }
}

pub(crate) fn boolean(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<bool> {
    let value = node.bool();
    if value.is_none() {
        diag.expected(node, path, "`true` or `false`");
    }
    value
}

/// A whole number greater than zero.
pub(crate) fn positive_int(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<u32> {
    let value = node
        .text()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|value| *value > 0);
    if value.is_none() {
        diag.expected(node, path, "a positive integer");
    }
    value
}

/// `6h`, `30m`, `2d`, or a number of hours; must be positive.
pub(crate) fn duration(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<Duration> {
    let value = node
        .text()
        .and_then(|text| Duration::parse(text).ok())
        .filter(|duration| duration.seconds.is_finite() && duration.seconds > 0.0);
    if value.is_none() {
        diag.expected(
            node,
            path,
            "a positive duration such as `6h`, `30m` or `2d` (a bare number is hours)",
        );
    }
    value
}

/// `10%`, `10 %` or `10`: a percentage, 0 or more.
pub(crate) fn percent(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<f64> {
    let value = node
        .text()
        .map(|text| text.trim())
        .map(|text| text.strip_suffix('%').unwrap_or(text).trim())
        .and_then(|number| number.parse::<f64>().ok())
        .filter(|value| value.is_finite() && *value >= 0.0);
    if value.is_none() {
        diag.expected(node, path, "a percentage such as `10%`, 0 or more");
    }
    value
}

/// `100GB`, `1.5TB`, or a number of gigabytes.
pub(crate) fn size(diag: &mut Diagnostics<'_>, node: &Node, path: &str) -> Option<Size> {
    let value = node
        .text()
        .and_then(|text| Size::parse(text).ok())
        .filter(|size| size.gigabytes.is_finite());
    if value.is_none() {
        diag.expected(
            node,
            path,
            "a size such as `100GB`, `1.5TB` or `500MB` (a bare number is GB)",
        );
    }
    value
}

/// Reads a mapping with string values (`labels`).
pub(crate) fn string_map(
    diag: &mut Diagnostics<'_>,
    node: &Node,
    path: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    if node.is_null() {
        return map;
    }
    let Some(entries) = node.entries() else {
        diag.expected(node, path, "a mapping of names to strings");
        return map;
    };
    for entry in entries {
        let entry_path = join(path, &abbreviate(&entry.key));
        match entry.value.text() {
            Some(text) => {
                map.insert(entry.key.clone(), text.to_owned());
            }
            None => diag.expected(&entry.value, &entry_path, "a string"),
        }
    }
    map
}

//! SkyPilot's `$VAR` / `${VAR}` in the parts of a task that are not shell scripts: file mount
//! paths, bucket names, sources and stores, `workdir`, `service` and `volumes`.
//!
//! SkyPilot fills these from the task's `envs` (and `--env`) when it reads the YAML, so a bucket
//! name can follow the model size, say. aloft does it in [`Task::with_overrides`], where the
//! launch-time values are known, so a dry run and a launch fill in the same values. A variable
//! that nobody set is an error naming it and the field: SkyPilot would leave `$BUCKET` as the
//! literal bucket name, which no user means. Values may come from `secrets`, so errors name
//! variables and fields, never values.
//!
//! `setup` and `run` are left alone: they are shell scripts, and the shell expands them on the
//! node with the task's environment.

use super::{FileMount, SpecValue, Task, TaskValuesError};
use std::collections::BTreeMap;

/// Stores a storage mount may name (`store:`), lowercase.
pub(crate) const STORES: &[&str] = &["s3", "gcs", "azure", "r2", "ibm", "oci", "nebius", "cos"];
/// Modes a storage mount may use (`mode:`), uppercase.
pub(crate) const MOUNT_MODES: &[&str] = &["MOUNT", "COPY", "MOUNT_CACHED"];

/// The values variables are filled from: `envs` and `secrets`, every one set by now.
pub(crate) struct Values<'t> {
    pub envs: &'t BTreeMap<String, Option<String>>,
    pub secrets: &'t BTreeMap<String, Option<String>>,
}

impl Values<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.envs
            .get(name)
            .or_else(|| self.secrets.get(name))
            .and_then(|value| value.as_deref())
    }
}

/// Whether `text` refers to a variable at all (so the parser can leave checking it for later).
pub(crate) fn mentions_variable(text: &str) -> bool {
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        if variable_at(&rest[at..]).is_some() {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

/// The variable a `$` at the start of `text` refers to, and how many bytes the reference takes:
/// `${NAME}` or `$NAME`, NAME being letters, digits and `_`, not starting with a digit.
fn variable_at(text: &str) -> Option<(&str, usize)> {
    let after = text.strip_prefix('$')?;
    let (braced, body) = match after.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, after),
    };
    let length = body
        .char_indices()
        .find(|(idx, c)| {
            !(c.is_ascii_alphanumeric() || *c == '_') || (*idx == 0 && c.is_ascii_digit())
        })
        .map_or(body.len(), |(idx, _)| idx);
    if length == 0 {
        return None;
    }
    let name = &body[..length];
    if braced {
        body[length..]
            .starts_with('}')
            .then_some((name, length + 3))
    } else {
        Some((name, length + 1))
    }
}

/// `text` with every variable filled in, or the first variable that has no value.
fn fill(text: &str, values: &Values<'_>) -> Result<String, String> {
    let mut filled = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        filled.push_str(&rest[..at]);
        match variable_at(&rest[at..]) {
            Some((name, taken)) => {
                let value = values.get(name).ok_or_else(|| name.to_owned())?;
                filled.push_str(value);
                rest = &rest[at + taken..];
            }
            None => {
                filled.push('$');
                rest = &rest[at + 1..];
            }
        }
    }
    filled.push_str(rest);
    Ok(filled)
}

/// Fills one field, naming the field in the error.
fn fill_field(
    task: &Task,
    text: &str,
    field: &str,
    values: &Values<'_>,
) -> Result<String, TaskValuesError> {
    fill(text, values).map_err(|variable| TaskValuesError::UnsetVariable {
        task: task.name.clone(),
        field: field.to_owned(),
        variable,
    })
}

fn fill_value(
    task: &Task,
    value: &SpecValue,
    field: &str,
    values: &Values<'_>,
) -> Result<SpecValue, TaskValuesError> {
    Ok(match value {
        SpecValue::Null => SpecValue::Null,
        SpecValue::Text(text) => SpecValue::Text(fill_field(task, text, field, values)?),
        SpecValue::List(items) => SpecValue::List(
            items
                .iter()
                .enumerate()
                .map(|(idx, item)| fill_value(task, item, &format!("{field}[{idx}]"), values))
                .collect::<Result<_, _>>()?,
        ),
        SpecValue::Map(entries) => SpecValue::Map(
            entries
                .iter()
                .map(|(key, item)| {
                    let key = fill_field(task, key, field, values)?;
                    let item = fill_value(task, item, &format!("{field}.{key}"), values)?;
                    Ok((key, item))
                })
                .collect::<Result<_, TaskValuesError>>()?,
        ),
    })
}

/// The task with its variables filled in (see the module docs).
pub(crate) fn fill_task(task: &Task, values: &Values<'_>) -> Result<Task, TaskValuesError> {
    let mut filled = task.clone();
    if let Some(workdir) = &task.workdir {
        filled.workdir = Some(fill_field(task, workdir, "workdir", values)?);
    }
    filled.file_mounts = BTreeMap::new();
    for (destination, mount) in &task.file_mounts {
        let path = format!("file_mounts.{destination}");
        let new_destination = fill_field(task, destination, &path, values)?;
        let mount = match mount {
            FileMount::Copy { source } => FileMount::Copy {
                source: fill_field(task, source, &path, values)?,
            },
            FileMount::Storage {
                name,
                sources,
                store,
                mode,
            } => {
                let optional = |text: &Option<String>, key: &str| {
                    text.as_deref()
                        .map(|text| fill_field(task, text, &format!("{path}.{key}"), values))
                        .transpose()
                };
                let store = match store {
                    Some(written) if mentions_variable(written) => {
                        let text = fill_field(task, written, &format!("{path}.store"), values)?;
                        Some(known(&text.to_ascii_lowercase(), STORES).ok_or_else(|| {
                            TaskValuesError::NotAStore {
                                task: task.name.clone(),
                                field: format!("{path}.store"),
                                written: written.clone(),
                            }
                        })?)
                    }
                    other => other.clone(),
                };
                let mode =
                    match mode {
                        Some(written) if mentions_variable(written) => {
                            let text = fill_field(task, written, &format!("{path}.mode"), values)?;
                            Some(known(&text.to_ascii_uppercase(), MOUNT_MODES).ok_or_else(
                                || TaskValuesError::NotAMode {
                                    task: task.name.clone(),
                                    field: format!("{path}.mode"),
                                    written: written.clone(),
                                },
                            )?)
                        }
                        other => other.clone(),
                    };
                FileMount::Storage {
                    name: optional(name, "name")?,
                    sources: sources
                        .iter()
                        .map(|source| fill_field(task, source, &format!("{path}.source"), values))
                        .collect::<Result<_, _>>()?,
                    store,
                    mode,
                }
            }
        };
        filled.file_mounts.insert(new_destination, mount);
    }
    if let Some(service) = &task.service {
        filled.service = Some(fill_value(task, service, "service", values)?);
    }
    if let Some(volumes) = &task.volumes {
        filled.volumes = Some(fill_value(task, volumes, "volumes", values)?);
    }
    Ok(filled)
}

fn known(text: &str, allowed: &[&str]) -> Option<String> {
    allowed.contains(&text).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values_of(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), Some(value.to_string())))
            .collect()
    }

    #[test]
    fn both_forms_are_filled_and_other_dollars_are_kept() {
        let envs = values_of(&[("A", "x"), ("B_2", "y")]);
        let secrets = BTreeMap::new();
        let values = Values {
            envs: &envs,
            secrets: &secrets,
        };
        assert_eq!(fill("$A-${B_2}/$A", &values).unwrap(), "x-y/x");
        assert_eq!(
            fill("cost $5 and $ and ${ and $}", &values).unwrap(),
            "cost $5 and $ and ${ and $}"
        );
        assert_eq!(fill("${A", &values).unwrap(), "${A");
        assert_eq!(fill("$MISSING/x", &values).unwrap_err(), "MISSING");
        assert!(mentions_variable("s3://$A"));
        assert!(!mentions_variable("price $5"));
    }
}

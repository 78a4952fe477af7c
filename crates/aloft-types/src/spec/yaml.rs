//! A small YAML document tree where every node knows its line and column.
//!
//! Spec errors must point at the offending place, and serde-style deserialisation loses
//! positions, so the front end reads `saphyr-parser` events and builds this tree itself. The
//! builder is also where hostile input is defused: nesting depth, total node count (which bounds
//! alias expansion, the "billion laughs" attack) and source size are capped, duplicate keys are
//! rejected, and nothing here indexes or unwraps on user input.

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use std::collections::HashMap;

/// Deepest nesting of lists and mappings accepted. Real specs nest five or six levels.
pub(crate) const MAX_DEPTH: usize = 64;
/// Most nodes a file may expand to, counting every copy an alias makes.
pub(crate) const MAX_NODES: usize = 100_000;
/// Largest source accepted, in bytes (callers reading a file need read no more than one byte
/// past it).
pub const MAX_SOURCE_BYTES: usize = 4 << 20;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// `plain` is false for quoted and block scalars (and for `!!str`), which are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A mapping entry. Keys are always scalars; the builder rejects any other key.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    /// YAML's null: an empty plain scalar, `~` or `null`.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The text of a scalar that is not null.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// A boolean, in YAML 1.1 spelling as PyYAML (and so SkyPilot) reads it.
    pub fn bool(&self) -> Option<bool> {
        let Kind::Scalar { text, plain: true } = &self.kind else {
            return None;
        };
        match text.as_str() {
            "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
            "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
            _ => None,
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// What the node is, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Seq(_) => "a list".to_owned(),
            Kind::Map(_) => "a mapping".to_owned(),
            Kind::Scalar { .. } if self.is_null() => "nothing (null)".to_owned(),
            Kind::Scalar { text, .. } => format!("`{}`", abbreviate(text)),
        }
    }

    /// The number of nodes in this subtree (mapping keys excluded) and its height.
    fn measure(&self) -> (usize, usize) {
        let children: Box<dyn Iterator<Item = &Node>> = match &self.kind {
            Kind::Scalar { .. } => return (1, 0),
            Kind::Seq(items) => Box::new(items.iter()),
            Kind::Map(entries) => Box::new(entries.iter().map(|entry| &entry.value)),
        };
        children.fold((1, 1), |(size, height), child| {
            let (child_size, child_height) = child.measure();
            (
                size.saturating_add(child_size),
                height.max(child_height + 1),
            )
        })
    }
}

/// Shortens user text quoted in a message to one line of at most 40 characters.
pub(crate) fn abbreviate(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or("");
    let mut short: String = first_line.chars().take(40).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// A problem found while reading YAML. `fatal` problems leave no usable tree.
#[derive(Clone, Debug)]
pub(crate) struct YamlProblem {
    pub pos: Option<Pos>,
    pub message: String,
}

/// The documents of a YAML stream, or the problems that stopped reading it.
pub(crate) struct Loaded {
    pub documents: Vec<Node>,
    /// Problems that leave the tree usable (duplicate keys, unsupported tags); the offending
    /// entries are dropped.
    pub problems: Vec<YamlProblem>,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<Entry>,
        /// Line of each key given so far, to find duplicates without a quadratic scan.
        lines: HashMap<String, usize>,
        merges: Vec<Node>,
        key: PendingKey,
    },
}

enum PendingKey {
    None,
    Key {
        text: String,
        pos: Pos,
        plain: bool,
    },
    /// A key that was not a scalar; its value is read and dropped.
    Invalid,
}

struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes with their size and height, so that aliases respect the limits.
    anchors: HashMap<usize, (Node, usize, usize)>,
    documents: Vec<Node>,
    problems: Vec<YamlProblem>,
    nodes: usize,
}

/// Reads every document of `source`. `Err` holds the one problem that stopped reading (a syntax
/// error or a limit).
pub(crate) fn load(source: &str) -> Result<Loaded, YamlProblem> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(YamlProblem {
            pos: None,
            message: format!(
                "the file is {} bytes; specs larger than {} bytes are not accepted",
                source.len(),
                MAX_SOURCE_BYTES
            ),
        });
    }
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        documents: Vec::new(),
        problems: Vec::new(),
        nodes: 0,
    };
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|error| YamlProblem {
            pos: Some(Pos {
                line: error.marker().line(),
                column: error.marker().col() + 1,
            }),
            message: format!("YAML syntax error: {}", error.info()),
        })?;
        if matches!(event, Event::StreamEnd) {
            break;
        }
        builder.event(event, &span)?;
    }
    Ok(Loaded {
        documents: builder.documents,
        problems: builder.problems,
    })
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), YamlProblem> {
        let pos = Pos::of(span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain && !self.is_str_tag(tag.as_deref(), pos);
                self.count(1, pos)?;
                let node = Node {
                    pos,
                    kind: Kind::Scalar {
                        text: text.into_owned(),
                        plain,
                    },
                };
                self.finish(node, anchor)?;
            }
            Event::SequenceStart(anchor, tag) => {
                self.check_tag(tag.as_deref(), pos);
                self.open(
                    Frame::Seq {
                        pos,
                        anchor,
                        items: Vec::new(),
                    },
                    pos,
                )?;
            }
            Event::MappingStart(anchor, tag) => {
                self.check_tag(tag.as_deref(), pos);
                let frame = Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    lines: HashMap::new(),
                    merges: Vec::new(),
                    key: PendingKey::None,
                };
                self.open(frame, pos)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(internal(pos));
                };
                let (node, anchor) = match frame {
                    Frame::Seq { pos, anchor, items } => (
                        Node {
                            pos,
                            kind: Kind::Seq(items),
                        },
                        anchor,
                    ),
                    Frame::Map {
                        pos,
                        anchor,
                        mut entries,
                        lines,
                        merges,
                        ..
                    } => {
                        self.apply_merges(&mut entries, lines, merges);
                        (
                            Node {
                                pos,
                                kind: Kind::Map(entries),
                            },
                            anchor,
                        )
                    }
                };
                self.finish(node, anchor)?;
            }
            Event::Alias(anchor) => {
                let Some((node, size, height)) = self.anchors.get(&anchor) else {
                    return Err(YamlProblem {
                        pos: Some(pos),
                        message: "alias to an anchor that is not defined yet".to_owned(),
                    });
                };
                if self.stack.len() + height > MAX_DEPTH {
                    return Err(too_deep(pos));
                }
                let size = *size;
                let node = node.clone();
                self.count(size, pos)?;
                let mut copy = node;
                // Errors about the copy should point at the alias, not at the anchor.
                copy.pos = pos;
                self.finish(copy, 0)?;
            }
            Event::DocumentStart(_) | Event::DocumentEnd => self.stack.clear(),
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, pos: Pos) -> Result<(), YamlProblem> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(pos));
        }
        self.count(1, pos)?;
        self.stack.push(frame);
        Ok(())
    }

    fn count(&mut self, nodes: usize, pos: Pos) -> Result<(), YamlProblem> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > MAX_NODES {
            return Err(YamlProblem {
                pos: Some(pos),
                message: format!(
                    "the file expands to more than {MAX_NODES} values (are aliases nested?)"
                ),
            });
        }
        Ok(())
    }

    /// `!!str` makes a plain scalar a string; other core tags are accepted and ignored, and
    /// application tags are reported.
    fn is_str_tag(&mut self, tag: Option<&Tag>, pos: Pos) -> bool {
        self.check_tag(tag, pos);
        tag.is_some_and(|tag| tag.is_yaml_core_schema() && tag.suffix == "str")
    }

    fn check_tag(&mut self, tag: Option<&Tag>, pos: Pos) {
        if let Some(tag) = tag
            && !tag.is_yaml_core_schema()
            && !(tag.handle == "!" && tag.suffix.is_empty())
        {
            self.problems.push(YamlProblem {
                pos: Some(pos),
                message: format!("unsupported YAML tag `{tag}`; only the standard `!!` tags are"),
            });
        }
    }

    /// Places a finished node in its parent (or makes it a document).
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), YamlProblem> {
        if anchor != 0 {
            let (size, height) = node.measure();
            // The stored copy counts too, so that nested anchors cannot multiply memory.
            self.count(size, node.pos)?;
            self.anchors.insert(anchor, (node.clone(), size, height));
        }
        let Some(parent) = self.stack.last_mut() else {
            self.documents.push(node);
            return Ok(());
        };
        match parent {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map {
                entries,
                lines,
                merges,
                key,
                ..
            } => match std::mem::replace(key, PendingKey::None) {
                PendingKey::None => {
                    *key = match node.kind {
                        Kind::Scalar { text, plain } => PendingKey::Key {
                            text,
                            pos: node.pos,
                            plain,
                        },
                        Kind::Seq(_) | Kind::Map(_) => {
                            self.problems.push(YamlProblem {
                                pos: Some(node.pos),
                                message: format!(
                                    "mapping keys must be strings, found {}",
                                    node.describe()
                                ),
                            });
                            PendingKey::Invalid
                        }
                    };
                }
                PendingKey::Invalid => {}
                PendingKey::Key { text, pos, plain } => {
                    if plain && text == "<<" {
                        merges.push(node);
                    } else if let Some(first_line) = lines.get(&text) {
                        self.problems.push(YamlProblem {
                            pos: Some(pos),
                            message: format!(
                                "duplicate key `{}`; it is first given on line {first_line}",
                                abbreviate(&text)
                            ),
                        });
                    } else {
                        lines.insert(text.clone(), pos.line);
                        entries.push(Entry {
                            key: text,
                            key_pos: pos,
                            value: node,
                        });
                    }
                }
            },
        }
        Ok(())
    }

    /// YAML 1.1 merge keys (`<<: *defaults`), as PyYAML supports them: the merged mappings
    /// supply the keys the mapping does not give itself.
    fn apply_merges(
        &mut self,
        entries: &mut Vec<Entry>,
        mut present: HashMap<String, usize>,
        merges: Vec<Node>,
    ) {
        for merge in merges {
            let sources = match merge.kind {
                Kind::Map(_) => vec![merge],
                Kind::Seq(items) => items,
                Kind::Scalar { .. } => vec![merge],
            };
            for source in sources {
                let Kind::Map(source_entries) = source.kind else {
                    self.problems.push(YamlProblem {
                        pos: Some(source.pos),
                        message: format!(
                            "a merge key `<<` takes a mapping or a list of mappings, found {}",
                            source.describe()
                        ),
                    });
                    continue;
                };
                for entry in source_entries {
                    if !present.contains_key(&entry.key) {
                        present.insert(entry.key.clone(), entry.key_pos.line);
                        entries.push(entry);
                    }
                }
            }
        }
    }
}

fn too_deep(pos: Pos) -> YamlProblem {
    YamlProblem {
        pos: Some(pos),
        message: format!("lists and mappings nest deeper than {MAX_DEPTH} levels"),
    }
}

fn internal(pos: Pos) -> YamlProblem {
    YamlProblem {
        pos: Some(pos),
        message: "YAML syntax error: unbalanced structure".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_keys(node: &Node) -> Vec<&str> {
        node.entries()
            .unwrap_or_default()
            .iter()
            .map(|entry| entry.key.as_str())
            .collect()
    }

    #[test]
    fn positions_are_one_based() {
        let loaded = load("a: 1\nb:\n  c: [x, y]\n").unwrap();
        let root = &loaded.documents[0];
        let entries = root.entries().unwrap();
        assert_eq!(entries[1].key_pos, Pos { line: 2, column: 1 });
        let inner = entries[1].value.entries().unwrap();
        assert_eq!(inner[0].key_pos, Pos { line: 3, column: 3 });
        let items = inner[0].value.items().unwrap();
        assert_eq!(
            items[1].pos,
            Pos {
                line: 3,
                column: 10
            }
        );
    }

    #[test]
    fn duplicate_keys_are_reported_and_dropped() {
        let loaded = load("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(map_keys(&loaded.documents[0]), ["a", "b"]);
        assert_eq!(loaded.problems.len(), 1);
        assert_eq!(loaded.problems[0].pos, Some(Pos { line: 3, column: 1 }));
        assert_eq!(
            loaded.problems[0].message,
            "duplicate key `a`; it is first given on line 1"
        );
    }

    #[test]
    fn merge_keys_fill_missing_entries() {
        let loaded = load("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n").unwrap();
        let entries = loaded.documents[0].entries().unwrap();
        let used = &entries[1].value;
        assert_eq!(map_keys(used), ["y", "x"]);
    }

    #[test]
    fn billion_laughs_is_capped() {
        let mut source = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut previous = 'a';
        for name in 'b'..='k' {
            source.push_str(&format!("{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"));
            previous = name;
        }
        let error = load(&source).err().unwrap();
        assert!(
            error.message.contains("more than 100000 values"),
            "{}",
            error.message
        );
    }

    #[test]
    fn deep_nesting_is_capped() {
        let flow = "[".repeat(100);
        let block: String = (0..100)
            .map(|depth| format!("{}k:\n", " ".repeat(depth)))
            .collect();
        for source in [flow, block] {
            let error = load(&source).err().unwrap();
            assert!(
                error.message.contains("nest deeper than 64"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn str_tag_makes_a_string() {
        let loaded = load("a: !!str 12\nb: !!str\n").unwrap();
        let entries = loaded.documents[0].entries().unwrap();
        assert!(matches!(
            &entries[0].value.kind,
            Kind::Scalar { plain: false, .. }
        ));
        assert_eq!(entries[1].value.text(), Some(""));
    }
}

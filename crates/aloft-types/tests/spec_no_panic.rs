//! The spec parser must never panic: a deterministic stand-in for the `fuzz/` target (which
//! needs nightly) that mutates valid specs a few thousand ways and parses each one.

use aloft_types::parse_dag_with_warnings;

/// SplitMix64: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let idx = self.below(items.len());
        items.get(idx).copied().unwrap_or("")
    }
}

const SEEDS: &[&str] = &[
    include_str!("../../../examples/hello.yaml"),
    include_str!("../../../examples/train-gpu.yaml"),
    include_str!("../../../examples/pipeline.yaml"),
    include_str!("../../../examples/dag.yaml"),
    "name: t\nresources:\n  infra: aws/us-east-1\n  accelerators: {V100: 1, A100: 2}\n  ports: [80, \"8080-8090\"]\n  image_id: {us-east-1: ami-1}\n  ordered:\n    - cpus: 4+\n      memory: 32GB+\n    - disk_size: 1TB\nenvs: {A: 1, B: null}\nsecrets: {S: x}\n",
    "tasks:\n  - &t\n    name: a\n    inputs: {s3://b/x: 10}\n    outputs: {gs://o: 1}\n  - <<: *t\n    name: b\n    depends_on: [a]\n  - name: c\n    depends_on: b\n    file_mounts: {/m: {name: n, store: s3, mode: MOUNT}}\n",
    "name: p\n---\nname: a\nnum_nodes: 2\n---\nname: b\nestimated_runtime: 2h\nresources:\n  cloud: gcp\n  region: us-central1\n  zone: us-central1-a\n",
];

/// Fragments that mean something to YAML or to the spec.
const SNIPPETS: &[&str] = &[
    ":",
    ": ",
    "-",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "?",
    "? ",
    "*t",
    "&t ",
    "*missing",
    "<<: ",
    "---\n",
    "...\n",
    "!!str ",
    "!!int ",
    "!x ",
    "|",
    ">-",
    "\"",
    "'",
    "#",
    "\t",
    "\n",
    "  ",
    "    ",
    "~",
    "null",
    "true",
    "-1",
    "0",
    "1e999",
    "NaN",
    "99999999999999999999",
    "é",
    "\u{feff}",
    "\u{0}",
    "\\",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2000:\n",
    "any_of:",
    "ordered:",
    "accelerators:",
    "tasks:",
    "depends_on: ",
    "inputs:",
    "outputs:",
    "infra: ",
    "aws/",
    "s3://",
    "V100:",
    "8+",
    "GB",
    "h",
];

fn mutate(rng: &mut Rng, source: &str) -> String {
    let mut bytes = source.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(7) {
            // Flip a byte (the result is made UTF-8 again below).
            0 if !bytes.is_empty() => {
                let idx = rng.below(bytes.len());
                if let Some(byte) = bytes.get_mut(idx) {
                    *byte ^= 1 << rng.below(8);
                }
            }
            // Truncate.
            1 => bytes.truncate(rng.below(bytes.len() + 1)),
            // Insert a snippet.
            2 | 3 => {
                let at = rng.below(bytes.len() + 1);
                let snippet = rng.pick(SNIPPETS).as_bytes().to_vec();
                bytes.splice(at..at, snippet);
            }
            // Duplicate, delete or re-indent a line.
            _ => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                if lines.is_empty() {
                    continue;
                }
                let idx = rng.below(lines.len());
                let line = lines.get(idx).cloned().unwrap_or_default();
                match rng.below(3) {
                    0 => lines.insert(idx, line),
                    1 => {
                        lines.remove(idx);
                    }
                    _ => {
                        let indent = " ".repeat(rng.below(6));
                        if let Some(slot) = lines.get_mut(idx) {
                            *slot = format!("{indent}{}", line.trim_start());
                        }
                    }
                }
                bytes = (lines.join("\n") + "\n").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `ALOFT_SPEC_MUTATIONS=N` runs N iterations instead (for a longer local hunt; the seed is
/// `ALOFT_SPEC_SEED`).
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[test]
fn mutated_specs_never_panic() {
    let mut rng = Rng(setting("ALOFT_SPEC_SEED", 0x5eed_a10f_7a5c_0001));
    let iterations = setting("ALOFT_SPEC_MUTATIONS", 3000) as usize;
    let mut outcomes = [0usize; 2];
    for iteration in 0..iterations {
        let seed = SEEDS.get(iteration % SEEDS.len()).copied().unwrap_or("");
        let source = mutate(&mut rng, seed);
        let result = std::panic::catch_unwind(|| parse_dag_with_warnings(&source, "fuzz.yaml"));
        match result {
            Ok(Ok((dag, _warnings))) => {
                assert!(!dag.tasks.is_empty());
                assert!(
                    dag.tasks
                        .iter()
                        .all(|task| !task.resources.options.is_empty())
                );
                outcomes[0] += 1;
            }
            Ok(Err(errors)) => {
                assert!(!errors.0.is_empty(), "an Err without errors for:\n{source}");
                for error in &errors.0 {
                    assert_eq!(error.file, "fuzz.yaml");
                    assert!(!error.message.is_empty());
                    assert!(error.line.is_none_or(|line| line >= 1), "{error}");
                    assert!(error.column.is_none_or(|column| column >= 1), "{error}");
                }
                outcomes[1] += 1;
            }
            Err(_) => panic!("parse_dag panicked on iteration {iteration}:\n{source:?}"),
        }
    }
    // Both outcomes should be common, or the mutations are too timid (or too wild).
    eprintln!("ok/err counts: {outcomes:?}");
    assert!(
        outcomes.iter().all(|count| *count >= iterations / 10),
        "ok/err counts: {outcomes:?}"
    );
}

#[test]
fn pathological_inputs_never_panic() {
    let cases = [
        "[".repeat(300),
        "{".repeat(300),
        "- ".repeat(300),
        (0..200)
            .map(|depth| format!("{}- a:\n", " ".repeat(depth * 2)))
            .collect(),
        "a: &a [".to_owned() + &"*a, ".repeat(50) + "]",
        "&a a: *a".to_owned(),
        "? ".repeat(100),
        "\u{0}\u{1}\u{7f}".to_owned(),
        "---\n".repeat(1000),
        "tasks:\n".to_owned()
            + &(0..500)
                .map(|idx| format!("  - name: t{idx}\n    depends_on: t{}\n", (idx + 1) % 500))
                .collect::<String>(),
        "resources:\n  accelerators: ".to_owned() + &"V100:".repeat(100),
        "inputs: {".to_owned()
            + &(0..300)
                .map(|idx| format!("s3://b/{idx}: 1, "))
                .collect::<String>()
            + "}",
    ];
    for source in cases {
        let result = std::panic::catch_unwind(|| parse_dag_with_warnings(&source, "x.yaml"));
        assert!(result.is_ok(), "panicked on {source:?}");
    }
}

/// Inputs that are large rather than malformed are parsed, and their errors are capped. (How
/// fast is a benchmark's business, not a test's: no timing is asserted here.)
#[test]
fn large_inputs_are_handled_and_errors_capped() {
    let lines =
        |count: usize, line: &dyn Fn(usize) -> String| (0..count).map(line).collect::<String>();
    let unknown = lines(20_000, &|idx| format!("field{idx}: 1\n"));
    let errors = aloft_types::parse_dag(&unknown, "x.yaml").unwrap_err().0;
    assert_eq!(errors.len(), 101);
    assert_eq!(
        errors.last().map(ToString::to_string).as_deref(),
        Some("x.yaml: and 19900 more errors not shown")
    );

    let duplicates = lines(20_000, &|_| "name: a\n".to_owned());
    assert!(aloft_types::parse_dag(&duplicates, "x.yaml").is_err());

    let envs = "envs:\n".to_owned() + &lines(20_000, &|idx| format!("  VAR_{idx}: {idx}\n"));
    assert_eq!(
        aloft_types::parse_dag(&envs, "x.yaml").unwrap().tasks[0]
            .envs
            .len(),
        20_000
    );

    let dangling = "tasks:\n".to_owned()
        + &lines(5_000, &|idx| {
            format!("  - name: t{idx}\n    depends_on: u{idx}\n")
        });
    assert!(aloft_types::parse_dag(&dangling, "x.yaml").is_err());

    let chain = "tasks:\n".to_owned()
        + &lines(5_000, &|idx| {
            format!(
                "  - name: t{idx}\n    depends_on: [t{}, t{}]\n",
                idx + 1,
                idx + 1
            )
        });
    let errors = aloft_types::parse_dag(&chain, "x.yaml")
        .unwrap_err()
        .to_string();
    assert!(errors.contains("unknown task `t5000`"), "{errors}");

    let many_parents = "tasks:\n  - name: a\n  - name: b\n    depends_on: [".to_owned()
        + &"a, ".repeat(20_000)
        + "]\n";
    assert_eq!(
        aloft_types::parse_dag(&many_parents, "x.yaml")
            .unwrap()
            .edges
            .len(),
        1
    );

    let product = "resources:\n  infra: aws\n  accelerators: {".to_owned()
        + &lines(2_000, &|idx| format!("G{idx}: 1, "))
        + "}\n  image_id: {"
        + &lines(2_000, &|idx| format!("r{idx}: ami-{idx}, "))
        + "}\n";
    let errors = aloft_types::parse_dag(&product, "x.yaml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        errors,
        "x.yaml:3:3: resources.accelerators: the resources expand to 4000000 options; at most 1024 are allowed"
    );

    let any_of = "resources:\n  accelerators: [A, B]\n  any_of:\n".to_owned()
        + &lines(2_000, &|idx| format!("    - cpus: {}\n", idx + 1));
    let errors = aloft_types::parse_dag(&any_of, "x.yaml")
        .unwrap_err()
        .to_string();
    assert_eq!(
        errors,
        "x.yaml:3:3: resources.any_of: the resources expand to 1026 options; at most 1024 are allowed"
    );
}

//! Latency histograms kept in memory for the server's Prometheus endpoint, and the text format
//! they are exported in. No metrics crate: a histogram is a few counters, and the format is
//! lines of text (<https://prometheus.io/docs/instrumenting/exposition_formats/>).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the buckets: from a fast read route (a millisecond) to a long
/// launch (a quarter of an hour).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 900.0,
];

/// One histogram of durations.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations at most `BUCKETS[i]`, per bucket (not cumulative).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.counts[bucket] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Histograms of one metric, one per set of label values.
#[derive(Debug)]
pub struct Histograms {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, Histogram>>,
}

impl Histograms {
    /// A metric named `name` (seconds) with these label names.
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Histograms {
        Histograms {
            name,
            help,
            labels,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records one duration; `values` go with the label names, in order.
    pub fn observe(&self, values: &[&str], took: Duration) {
        debug_assert_eq!(values.len(), self.labels.len());
        let key = values.iter().map(|value| (*value).to_owned()).collect();
        self.series
            .lock()
            .expect("histograms")
            .entry(key)
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Appends the metric in the text format: cumulative buckets, `+Inf`, sum and count.
    pub fn render(&self, out: &mut String) {
        let series = self.series.lock().expect("histograms").clone();
        header(out, self.name, self.help, "histogram");
        for (values, histogram) in &series {
            let labels = labels(self.labels, values);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "{}_bucket{{{labels}le=\"{bound}\"}} {cumulative}",
                    self.name
                );
            }
            let _ = writeln!(
                out,
                "{}_bucket{{{labels}le=\"+Inf\"}} {}",
                self.name, histogram.count
            );
            let bare = braced(&labels);
            let _ = writeln!(out, "{}_sum{bare} {}", self.name, histogram.sum);
            let _ = writeln!(out, "{}_count{bare} {}", self.name, histogram.count);
        }
    }
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample of a gauge or counter: `name{a="x",b="y"} value`.
pub fn sample(out: &mut String, name: &str, names: &[&str], values: &[&str], value: f64) {
    let labels = braced(&labels(names, values));
    let _ = writeln!(out, "{name}{labels} {value}");
}

/// `{a="x"}` from `a="x",`; nothing when there are no labels.
fn braced(labels: &str) -> String {
    match labels.trim_end_matches(',') {
        "" => String::new(),
        labels => format!("{{{labels}}}"),
    }
}

/// `a="x",b="y",` with values escaped as the format asks (backslash, quote, newline).
fn labels(names: &[&str], values: &[impl AsRef<str>]) -> String {
    let mut out = String::new();
    for (name, value) in names.iter().zip(values) {
        let escaped = value
            .as_ref()
            .replace('\\', r"\\")
            .replace('"', "\\\"")
            .replace('\n', r"\n");
        let _ = write!(out, "{name}=\"{escaped}\",");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_renders_cumulative_buckets_sum_and_count() {
        let histograms = Histograms::new("t_seconds", "Test.", &["route"]);
        histograms.observe(&["/a"], Duration::from_millis(3));
        histograms.observe(&["/a"], Duration::from_millis(700));
        histograms.observe(&["/a"], Duration::from_secs(5000));
        let mut out = String::new();
        histograms.render(&mut out);
        assert!(out.contains("# TYPE t_seconds histogram\n"), "{out}");
        assert!(
            out.contains("t_seconds_bucket{route=\"/a\",le=\"0.001\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{route=\"/a\",le=\"0.005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{route=\"/a\",le=\"900\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("t_seconds_count{route=\"/a\"} 3\n"), "{out}");
        assert!(
            out.contains("t_seconds_sum{route=\"/a\"} 5000.703"),
            "{out}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "g", &["name"], &["a\"b\\c\nd"], 1.5);
        assert_eq!(out, "g{name=\"a\\\"b\\\\c\\nd\"} 1.5\n");
        let mut bare = String::new();
        sample(&mut bare, "g", &[], &[] as &[&str], 2.0);
        assert_eq!(bare, "g 2\n");
    }
}

//! Output helpers shared by the commands.

use comfy_table::{Table, presets::NOTHING};

/// How a command prints its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables.
    Table,
    /// One JSON document with a documented, stable schema.
    Json,
}

pub fn dollars(value: f64) -> String {
    if value.abs() < 0.01 && value != 0.0 {
        format!("${value:.4}")
    } else {
        format!("${value:.2}")
    }
}

/// `2h 5m`, `45m`, `12s`.
pub fn duration(seconds: f64) -> String {
    let total = seconds.round() as u64;
    let (hours, minutes, secs) = (total / 3600, (total % 3600) / 60, total % 60);
    match (hours, minutes) {
        (0, 0) => format!("{secs}s"),
        (0, _) => format!("{minutes}m"),
        (_, 0) => format!("{hours}h"),
        _ => format!("{hours}h {minutes}m"),
    }
}

/// `8`, `0.5`, `14.4`.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A borderless table with this header.
pub fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(NOTHING);
    table.set_header(header.to_vec());
    table
}

/// A table as text, without the padding comfy-table leaves at the end of each line.
pub fn table_text(table: &Table) -> String {
    let mut text = String::new();
    for line in table.to_string().lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// An enum's snake_case name, as serde writes it (`ClusterStatus::Up` → `up`).
pub fn snake<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "?".to_owned(),
    }
}

/// Prints one JSON value on a line of its own and flushes, so a reader on a pipe (a follower of
/// a log stream) sees each line as it is printed.
pub fn print_json_line(value: &impl serde::Serialize) {
    use std::io::Write;
    if let Ok(text) = serde_json::to_string(value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// Writes to stdout. A reader that went away (`aloft ... | head`) ends the command quietly,
/// as other command-line tools do, instead of a panic; other write errors are ignored as
/// `println!` would not.
pub fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(err) = written
        && err.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `println!` that never panics on a closed stdout (see [`write_stdout`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*), true)
    };
}

/// `print!` that never panics on a closed stdout (see [`write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*), false)
    };
}

pub(crate) use {out, outln};

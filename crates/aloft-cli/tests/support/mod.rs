//! A private local cloud per test, shared by the test files that run `aloft` end to end on the
//! local cloud (`local_cloud.rs`, `logs_local_cloud.rs`, `containers.rs`). Each test gets its own
//! ALOFT_HOME, name prefix, bridge and subnet (from the process id, the file's [`Family`] and
//! the test's tag, so runs and files never collide), and a guard runs `aloft local cleanup`
//! afterwards, even when the test fails. Needs root (and what the family asks for); elsewhere a
//! test prints a note and passes, and in CI a missing privilege fails it.

// Each test file uses a part of this module.
#![allow(dead_code)]

pub mod postgres;
pub mod served;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// How many clouds (tags) one run of a test file may make: each run gets a block of this many
/// subnets.
pub const TAGS_PER_RUN: u32 = 32;

/// What sets one test file's clouds apart from another's.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The first letter of every name prefix.
    pub letter: char,
    /// Where the file's subnets start, as a count of /24s after 10.0.0.0/24.
    pub slot_base: u32,
    /// How many process ids' worth of subnets the file may use (blocks of [`TAGS_PER_RUN`]).
    pub pid_span: u32,
    /// The file's tests need Podman too.
    pub needs_podman: bool,
    /// What is skipped, for the note.
    pub what: &'static str,
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A private local cloud for one test.
pub struct Cloud {
    pub home: PathBuf,
    pub prefix: String,
    pub bridge: String,
    pub subnet: String,
}

impl Cloud {
    /// `None` (with a note) when this machine cannot run the family's tests, outside CI.
    pub fn new(family: Family, tag: u32) -> Option<Cloud> {
        let podman =
            !family.needs_podman || Command::new("podman").arg("--version").output().is_ok();
        if !is_root() || !podman {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the {} as root{}",
                family.what,
                if family.needs_podman {
                    " with podman installed"
                } else {
                    ""
                }
            );
            eprintln!(
                "note: not root{}; skipping the {}",
                if family.needs_podman {
                    " or no podman"
                } else {
                    ""
                },
                family.what
            );
            return None;
        }
        assert!(
            tag < TAGS_PER_RUN,
            "a test's tag must be below {TAGS_PER_RUN}"
        );
        let pid = std::process::id();
        let prefix = format!("{}{}{tag}", family.letter, pid % 100_000);
        // Each run (process) of the file has a block of its own: two runs at once never share
        // a subnet unless their pids are equal modulo the span.
        let slot = family.slot_base + (pid % family.pid_span) * TAGS_PER_RUN + tag;
        let cloud = Cloud {
            home: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("home-{prefix}")),
            bridge: format!("{prefix}br"),
            subnet: format!("10.{}.{}.0/24", slot >> 8, slot & 0xff),
            prefix,
        };
        let _ = std::fs::remove_dir_all(&cloud.home);
        std::fs::create_dir_all(&cloud.home).unwrap();
        Some(cloud)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_aloft"));
        command
            .args(args)
            .current_dir(workspace())
            .env("ALOFT_HOME", &self.home)
            .env("ALOFT_LOCAL_PREFIX", &self.prefix)
            .env("ALOFT_LOCAL_BRIDGE", &self.bridge)
            .env("ALOFT_LOCAL_SUBNET", &self.subnet);
        command
    }

    pub fn aloft(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("aloft runs")
    }

    /// Writes a task file in the test's home.
    pub fn spec(&self, name: &str, yaml: &str) -> PathBuf {
        std::fs::create_dir_all(&self.home).unwrap();
        let path = self.home.join(name);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// Network namespaces of this cloud still on the machine.
    pub fn namespaces(&self) -> Vec<String> {
        let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| name.starts_with(&format!("{}-", self.prefix)))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        for _attempt in 0..3 {
            let output = self.aloft(&["local", "cleanup"]);
            if output.status.success() && self.namespaces().is_empty() {
                break;
            }
            eprintln!(
                "cleanup of {} did not finish: {}",
                self.prefix,
                text(&output.stderr)
            );
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

//! The host: privileges, the tools the local cloud shells out to, and processes in a network
//! namespace.
//!
//! Shelling out costs a few milliseconds per spawn, which is small next to sshd's start-up; the
//! hot path batches `ip` commands to keep spawns down. Netlink in-process can replace this later
//! without changing the provider.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::LocalError;

/// A tool the local cloud needs, and the Debian package that has it.
#[derive(Clone, Copy, Debug)]
struct Requirement {
    name: &'static str,
    package: &'static str,
}

const REQUIREMENTS: [Requirement; 8] = [
    Requirement {
        name: "ip",
        package: "iproute2",
    },
    Requirement {
        name: "unshare",
        package: "util-linux",
    },
    Requirement {
        name: "setsid",
        package: "util-linux",
    },
    Requirement {
        name: "kill",
        package: "procps",
    },
    Requirement {
        name: "ssh-keygen",
        package: "openssh-client",
    },
    Requirement {
        name: "sshd",
        package: "openssh-server",
    },
    Requirement {
        name: "nft",
        package: "nftables",
    },
    Requirement {
        name: "mount",
        package: "mount",
    },
];

/// Absolute paths of the tools, resolved once.
#[derive(Clone, Debug)]
pub(crate) struct Tools {
    pub ip: PathBuf,
    pub unshare: PathBuf,
    pub setsid: PathBuf,
    pub kill: PathBuf,
    pub ssh_keygen: PathBuf,
    pub sshd: PathBuf,
    pub nft: PathBuf,
}

impl Tools {
    /// Finds every tool on `PATH` or in the sbin directories (root's `PATH` sometimes lacks
    /// them). Names all missing tools at once, with their packages.
    pub fn find() -> Result<Self, LocalError> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for requirement in REQUIREMENTS {
            match which(requirement.name) {
                Some(path) => found.push(path),
                None => missing.push(requirement),
            }
        }
        if !missing.is_empty() {
            let names: Vec<_> = missing.iter().map(|r| r.name).collect();
            let mut packages: Vec<_> = missing.iter().map(|r| r.package).collect();
            packages.dedup();
            return Err(LocalError::ToolsMissing {
                tools: names.join(", "),
                packages: packages.join(" "),
            });
        }
        let mut found = found.into_iter();
        let mut next = || found.next().expect("one path per requirement");
        Ok(Self {
            ip: next(),
            unshare: next(),
            setsid: next(),
            kill: next(),
            ssh_keygen: next(),
            sshd: next(),
            nft: next(),
        })
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Whether this process has CAP_NET_ADMIN and CAP_SYS_ADMIN (read from `/proc/self/status`, so
/// it is right inside containers too).
pub(crate) fn has_required_capabilities() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let wanted = (1u64 << CAP_NET_ADMIN) | (1u64 << CAP_SYS_ADMIN);
    effective & wanted == wanted
}

/// Runs `program args…` with `stdin` fed in, and fails with its stderr when it exits non-zero.
pub(crate) async fn run(
    program: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, LocalError> {
    use tokio::io::AsyncWriteExt;

    let command_line = || {
        let mut line = program.display().to_string();
        for arg in args {
            line.push(' ');
            line.push_str(arg);
        }
        line
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| LocalError::Spawn {
            command: command_line(),
            source,
        })?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .await
            .map_err(|source| LocalError::Spawn {
                command: command_line(),
                source,
            })?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|source| LocalError::Spawn {
            command: command_line(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stdin_note = stdin
            .map(|input| format!(" (stdin: {})", input.trim().replace('\n', "; ")))
            .unwrap_or_default();
        Err(LocalError::CommandFailed {
            command: format!("{}{stdin_note}", command_line()),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// The IDs of every process whose network namespace is the named one (what `ip netns pids`
/// reports), read from `/proc` without spawning anything.
pub(crate) fn netns_pids(netns: &str) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;

    let Ok(meta) = std::fs::metadata(Path::new("/run/netns").join(netns)) else {
        return Vec::new();
    };
    let wanted = format!("net:[{}]", meta.ino());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|link| link.as_os_str() == wanted.as_str())
        })
        .collect()
}

/// SIGKILLs every process in the namespace until none is left. Killing the instance's PID-1
/// takes its whole PID namespace with it; the loop catches the launcher and anything else that
/// entered the namespace (e.g. `ip netns exec` from a test).
pub(crate) async fn kill_netns_processes(kill: &Path, netns: &str) -> Result<(), LocalError> {
    // Processes die asynchronously; a few rounds of "kill what is listed, look again" suffice
    // unless something keeps entering the namespace.
    for _round in 0..2500 {
        let pids = netns_pids(netns);
        if pids.is_empty() {
            return Ok(());
        }
        let pid_args: Vec<String> = pids.iter().map(u32::to_string).collect();
        let mut args = vec!["-9"];
        args.extend(pid_args.iter().map(String::as_str));
        // A process may exit between listing and killing; `kill` then fails for it alone, and
        // the next round looks again.
        let _ = run(kill, &args, None).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err(LocalError::ProcessesSurvive {
        netns: netns.to_owned(),
        pids: netns_pids(netns),
    })
}

/// Whether a network interface exists on the host.
pub(crate) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether a named network namespace exists.
pub(crate) fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// The names in `/run/netns` and `/sys/class/net`.
pub(crate) fn list_dir_names(dir: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The IPv4 routes of the host: (device, destination, prefix length), from `/proc/net/route`.
pub(crate) fn host_routes() -> Vec<(String, std::net::Ipv4Addr, u32)> {
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let device = (*fields.first()?).to_owned();
            // The kernel prints addresses as host-order hex of a network-order value.
            let destination = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            let destination = std::net::Ipv4Addr::from(destination.swap_bytes());
            Some((device, destination, mask.count_ones()))
        })
        .collect()
}

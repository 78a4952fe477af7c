//! Confining an instance to its type's size with cgroups: memory limit = `memory_gib`, CPU quota
//! = `vcpus` (CFS bandwidth: `vcpus × 100 ms` of CPU time per 100 ms).
//!
//! Why: without limits, one instance of a "2 vCPU, 4 GiB" type could use the whole host, and the
//! broker's tests of resource-shaped scheduling would be meaningless.
//!
//! Where: each instance gets a cgroup named like its network namespace (`<prefix>-<octet>`),
//! created under the cgroup this process is in, per controller: on cgroup v1 that is one
//! directory in the `memory` hierarchy and one in the `cpu` hierarchy (they may sit at different
//! depths: in some sandboxes the process has its own memory cgroup but the root cpu cgroup); on
//! v2 (unified) one directory with both. The instance's launcher joins them on the host before
//! it starts the instance's namespaces, so everything in the instance inherits them and is
//! confined. Inside, `boot.sh` mounts the hierarchies again (`ip netns exec` hides the host's
//! cgroup mounts) so the instance can read its own limits, as in a container.
//!
//! The host may not allow it (no controller, a read-only cgroup file system, a v2 cgroup with
//! processes of its own that can't delegate controllers to children). Then the instance boots
//! unconfined, and [`InstanceLimits`] says so and why: a missing limit must never fail a launch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::LocalError;

/// The CFS period written with every CPU quota: 100 ms, the kernel's default.
const CPU_PERIOD_US: u64 = 100_000;

/// An instance's resource limits, and whether the host enforces them. Recorded in the instance's
/// `limits.json` at every boot; read it with [`crate::LocalCloud::limits`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLimits {
    /// The CPU quota, in whole CPUs of bandwidth (the type's `vcpus`).
    pub vcpus: u32,
    /// The memory limit, in GiB (the type's `memory_gib`).
    pub memory_gib: u32,
    /// Whether the instance's processes are confined to these limits (its launcher joined
    /// cgroups with them set).
    pub enforced: bool,
    /// The instance's cgroup directories on the host: one per v1 hierarchy (memory, cpu), or one
    /// on v2. Empty when not enforced.
    pub cgroups: Vec<PathBuf>,
    /// Why the limits are not enforced, when they aren't.
    pub not_enforced_because: Option<String>,
}

/// cgroup v1 (one hierarchy per controller set) or v2 (the unified hierarchy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// Where instance cgroups for one controller go on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    pub version: Version,
    /// This process's own cgroup in the hierarchy with the controller: instance cgroups are
    /// made inside it.
    pub parent: PathBuf,
    /// How to mount the hierarchy inside an instance (`ip netns exec` mounts a fresh `/sys`,
    /// which hides the host's cgroup mounts): file system type, options, mount point.
    pub mount: (String, String, PathBuf),
}

/// Where the memory and cpu cgroups of instances go; found once per process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Places {
    pub memory: Place,
    pub cpu: Place,
}

impl Places {
    /// Finds the hierarchies with the memory and cpu controllers and this process's cgroup in
    /// each, or says why instances can't be confined here.
    pub fn find() -> Result<Places, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|err| format!("reading /proc/self/mountinfo: {err}"))?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|err| format!("reading /proc/self/cgroup: {err}"))?;
        let memory = locate("memory", &mountinfo, &own)?;
        let cpu = locate("cpu", &mountinfo, &own)?;
        Ok(Places { memory, cpu })
    }

    /// The directories instance `name`'s cgroups would have (two on v1, one on v2).
    pub fn dirs(&self, name: &str) -> Vec<PathBuf> {
        let mut dirs = vec![self.memory.parent.join(name)];
        let cpu = self.cpu.parent.join(name);
        if !dirs.contains(&cpu) {
            dirs.push(cpu);
        }
        dirs
    }

    /// What an instance mounts to see its cgroups: a tmpfs over `/sys/fs/cgroup` first when v1
    /// hierarchies are mounted below it (the fresh sysfs has an empty, read-only directory
    /// there), then each hierarchy. Lines of `fstype options mountpoint`, for `boot.sh`.
    pub fn mount_lines(&self) -> String {
        let mut mounts = vec![&self.memory.mount];
        if self.cpu.mount != self.memory.mount {
            mounts.push(&self.cpu.mount);
        }
        let cgroup_root = Path::new("/sys/fs/cgroup");
        let mut lines = String::new();
        if mounts
            .iter()
            .any(|(_, _, target)| target.starts_with(cgroup_root) && target != cgroup_root)
        {
            lines.push_str("tmpfs mode=755 /sys/fs/cgroup\n");
        }
        for (fstype, options, target) in mounts {
            // Mounts outside /sys stay visible in the instance as they are.
            if target.starts_with("/sys") {
                lines.push_str(&format!("{fstype} {options} {}\n", target.display()));
            }
        }
        lines
    }

    /// Creates instance `name`'s cgroups with the limits of a `vcpus`/`memory_gib` type (or
    /// rewrites the limits if they exist). On failure removes what it made and says why.
    pub fn create(&self, name: &str, vcpus: u32, memory_gib: u32) -> Result<Vec<PathBuf>, String> {
        let dirs = self.dirs(name);
        let outcome = self.create_dirs(&dirs, vcpus, memory_gib);
        if outcome.is_err() {
            for dir in &dirs {
                let _ = std::fs::remove_dir(dir);
            }
        }
        outcome.map(|()| dirs)
    }

    fn create_dirs(&self, dirs: &[PathBuf], vcpus: u32, memory_gib: u32) -> Result<(), String> {
        for dir in dirs {
            match std::fs::create_dir(dir) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(format!("creating cgroup {}: {err}", dir.display())),
            }
        }
        let name = dirs[0].file_name().expect("a named cgroup");
        let memory = self.memory.parent.join(name);
        let cpu = self.cpu.parent.join(name);
        let bytes = u64::from(memory_gib) << 30;
        let quota = u64::from(vcpus) * CPU_PERIOD_US;
        match self.memory.version {
            Version::V1 => write(&memory.join("memory.limit_in_bytes"), &bytes.to_string())?,
            Version::V2 => write(&memory.join("memory.max"), &bytes.to_string())?,
        }
        match self.cpu.version {
            Version::V1 => {
                write(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            Version::V2 => write(&cpu.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?,
        }
        Ok(())
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value)
        .map_err(|err| format!("writing {value} to {}: {err}", path.display()))
}

/// Finds where instance cgroups with `controller` go, from `/proc/self/mountinfo` and
/// `/proc/self/cgroup`. A v1 hierarchy with the controller wins (a controller is in at most one
/// hierarchy); otherwise the v2 one, if it has the controller and this process's cgroup can
/// delegate it.
fn locate(controller: &str, mountinfo: &str, own: &str) -> Result<Place, String> {
    let mounts = parse_mountinfo(mountinfo);
    if let Some(mount) = mounts.iter().find(|mount| {
        mount.fstype == "cgroup" && mount.super_options.split(',').any(|o| o == controller)
    }) {
        let path = own
            .lines()
            .filter_map(|line| {
                let mut fields = line.splitn(3, ':');
                let _hierarchy = fields.next()?;
                fields.next().zip(fields.next())
            })
            .find(|(controllers, _)| controllers.split(',').any(|c| c == controller))
            .map(|(_, path)| path)
            .ok_or_else(|| {
                format!("/proc/self/cgroup names no cgroup v1 {controller} cgroup for aloft")
            })?;
        let parent = below_mount(&mount.mount_point, &mount.root, path, controller)?;
        return Ok(Place {
            version: Version::V1,
            parent,
            mount: (
                "cgroup".to_owned(),
                mount.super_options.clone(),
                mount.mount_point.clone(),
            ),
        });
    }
    let Some(mount) = mounts.iter().find(|mount| mount.fstype == "cgroup2") else {
        return Err(format!(
            "no cgroup hierarchy with the {controller} controller is mounted"
        ));
    };
    let path = own
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or_else(|| "/proc/self/cgroup names no cgroup v2 cgroup for aloft".to_owned())?;
    let parent = below_mount(&mount.mount_point, &mount.root, path, controller)?;
    let available = std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
    if !available.split_whitespace().any(|c| c == controller) {
        return Err(format!(
            "cgroup v2: the {controller} controller is not available in aloft's cgroup {} \
             (its cgroup.controllers: {:?})",
            parent.display(),
            available.trim()
        ));
    }
    let subtree = parent.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&subtree).unwrap_or_default();
    if !enabled.split_whitespace().any(|c| c == controller) {
        // A non-root v2 cgroup that holds processes can't hand controllers to children (the
        // "no internal processes" rule): the kernel answers EBUSY.
        write(&subtree, &format!("+{controller}")).map_err(|err| {
            format!(
                "cgroup v2: can't delegate the {controller} controller to children of aloft's \
                 cgroup ({err}); a cgroup with processes of its own can't, so run aloft in a \
                 cgroup of its own (e.g. `systemd-run --scope`)"
            )
        })?;
    }
    Ok(Place {
        version: Version::V2,
        parent,
        mount: (
            "cgroup2".to_owned(),
            mount.super_options.clone(),
            mount.mount_point.clone(),
        ),
    })
}

/// This process's cgroup directory: its cgroup path (from `/proc/self/cgroup`) below the
/// hierarchy's mount, which shows the hierarchy from `root` down.
fn below_mount(
    mount_point: &Path,
    root: &str,
    path: &str,
    controller: &str,
) -> Result<PathBuf, String> {
    let relative = Path::new(path)
        .strip_prefix(root)
        .map_err(|_| {
            format!(
                "aloft's {controller} cgroup {path} is outside the mounted part ({root}) of its \
                 hierarchy at {}",
                mount_point.display()
            )
        })?
        .to_owned();
    let parent = mount_point.join(relative);
    if parent.is_dir() {
        Ok(parent)
    } else {
        Err(format!(
            "aloft's {controller} cgroup directory {} does not exist",
            parent.display()
        ))
    }
}

/// One line of `/proc/self/mountinfo`, the fields we need.
#[derive(Debug)]
struct Mount {
    root: String,
    mount_point: PathBuf,
    fstype: String,
    super_options: String,
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let before: Vec<&str> = before.split(' ').collect();
            let after: Vec<&str> = after.split(' ').collect();
            Some(Mount {
                root: unescape(before.get(3)?),
                mount_point: PathBuf::from(unescape(before.get(4)?)),
                fstype: (*after.first()?).to_owned(),
                super_options: (*after.get(2)?).to_owned(),
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(index) = rest.find('\\') {
        out.push_str(&rest[..index]);
        let code = rest.get(index + 1..index + 4);
        match code.and_then(|code| u8::from_str_radix(code, 8).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[index + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[index + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Removes the cgroup directories (in any order), first killing whatever is still in them (a
/// cgroup can only be removed empty). Missing directories are fine: removal is idempotent.
pub(crate) async fn remove(kill: &Path, dirs: &[PathBuf]) -> Result<(), LocalError> {
    for dir in dirs {
        // Killed processes leave their cgroup asynchronously; retry for up to ~2 s.
        let mut last_error = None;
        for _round in 0..400 {
            match std::fs::remove_dir(dir) {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    last_error = None;
                    break;
                }
                Err(err) => last_error = Some(err),
            }
            let pids: Vec<String> = std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !pids.is_empty() {
                let mut args = vec!["-9"];
                args.extend(pids.iter().map(String::as_str));
                let _ = crate::sys::run(kill, &args, None).await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(source) = last_error {
            return Err(LocalError::Fs {
                action: "removing cgroup",
                path: dir.clone(),
                source,
            });
        }
    }
    Ok(())
}

/// The cgroup directories of this configuration's instances under this process's own cgroups
/// (what a crashed run in the same cgroup left), found by name.
pub(crate) fn leftovers(prefix: &str) -> Vec<PathBuf> {
    let Ok(places) = Places::find() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for parent in [&places.memory.parent, &places.cpu.parent] {
        for name in crate::sys::list_dir_names(&parent.to_string_lossy()) {
            if crate::config::instance_octet(prefix, &name, '-').is_some() {
                let dir = parent.join(name);
                if !found.contains(&dir) {
                    found.push(dir);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sandbox this crate is developed in: cgroup v1, with the process in its own memory
    /// cgroup but the root cpu cgroup, and an empty unified hierarchy beside them.
    const V1_MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:35 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const V1_CGROUP: &str = "\
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn v1_places_follow_each_controllers_own_cgroup() {
        let memory = locate("memory", V1_MOUNTINFO, V1_CGROUP);
        // The directories don't exist on every test host; the error names the right one.
        match memory {
            Ok(place) => {
                assert_eq!(place.version, Version::V1);
                assert_eq!(
                    place.parent,
                    Path::new("/sys/fs/cgroup/memory/process_api/abc")
                );
            }
            Err(reason) => assert!(
                reason.contains("/sys/fs/cgroup/memory/process_api/abc"),
                "{reason}"
            ),
        }
        let places = Places {
            memory: Place {
                version: Version::V1,
                parent: "/sys/fs/cgroup/memory/process_api/abc".into(),
                mount: (
                    "cgroup".into(),
                    "rw,memory".into(),
                    "/sys/fs/cgroup/memory".into(),
                ),
            },
            cpu: Place {
                version: Version::V1,
                parent: "/sys/fs/cgroup/cpu".into(),
                mount: (
                    "cgroup".into(),
                    "rw,cpu".into(),
                    "/sys/fs/cgroup/cpu".into(),
                ),
            },
        };
        assert_eq!(
            places.dirs("t1-2"),
            [
                PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/t1-2"),
                PathBuf::from("/sys/fs/cgroup/cpu/t1-2")
            ]
        );
        assert_eq!(
            places.mount_lines(),
            "tmpfs mode=755 /sys/fs/cgroup\n\
             cgroup rw,memory /sys/fs/cgroup/memory\n\
             cgroup rw,cpu /sys/fs/cgroup/cpu\n"
        );
    }

    #[test]
    fn a_cgroup_outside_the_mounted_part_is_refused() {
        // A container's view: the hierarchy is mounted from /docker/x, the process is elsewhere.
        let mountinfo = "31 30 0:27 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let err = locate("memory", mountinfo, "4:memory:/other\n").unwrap_err();
        assert!(err.contains("outside the mounted part"), "{err}");
        let err = locate("cpu", mountinfo, "4:memory:/other\n").unwrap_err();
        assert!(
            err.contains("no cgroup hierarchy with the cpu controller"),
            "{err}"
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/a\b"), r"/a\b");
    }
}

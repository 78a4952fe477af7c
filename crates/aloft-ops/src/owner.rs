//! Who owns an operation, and whether that owner is still alive.
//!
//! An operation in progress belongs to the process running it until that process is gone: a
//! second aloft command must never undo a launch that is still being made. The owner is recorded
//! with the operation as `pid:<pid>:<start>@<boot id>`: the process id, the process's start time
//! (clock ticks since boot, from `/proc/<pid>/stat`, so a recycled pid is not taken for the
//! owner) and the machine's boot id (so an owner on another machine, or before a reboot, is not
//! looked up here). An owner this machine cannot ask about (another machine, a server) is judged
//! by its lease: alive while its heartbeat is younger than [`LEASE`].

use std::time::Duration;

/// How long an owner's heartbeat vouches for it.
pub const LEASE: Duration = Duration::from_secs(30);

/// How often an owner renews its lease while it runs an operation.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long an owner goes on without renewing its lease before it stops its work itself: well
/// before [`LEASE`] runs out and another owner may take the work over.
pub const SELF_FENCE: Duration = Duration::from_secs(LEASE.as_secs() - 3 * HEARTBEAT.as_secs());

/// This process, as an operation owner.
pub fn this_process() -> String {
    let pid = std::process::id();
    format!(
        "pid:{pid}:{}@{}",
        process_start(pid).unwrap_or(0),
        boot_id().unwrap_or_default()
    )
}

/// Whether the owner of an operation is still alive: `owner` as recorded (`None` for
/// operations recorded before owners were: long gone), `heartbeat_at` its last heartbeat and
/// `now` the time (unix seconds).
pub fn is_alive(owner: Option<&str>, heartbeat_at: Option<i64>, now: i64) -> bool {
    let Some(owner) = owner else {
        return false;
    };
    if let Some((pid, start, boot)) = parse(owner)
        && boot_id().is_some_and(|ours| ours == boot)
    {
        // On this machine since its last boot: ask the kernel.
        return process_start(pid).is_some_and(|now_start| now_start == start);
    }
    heartbeat_at.is_some_and(|beat| now.saturating_sub(beat) < LEASE.as_secs() as i64)
}

/// The pid of a `pid:` owner, for messages.
pub fn pid_of(owner: &str) -> Option<u32> {
    parse(owner).map(|(pid, _, _)| pid)
}

fn parse(owner: &str) -> Option<(u32, u64, &str)> {
    let rest = owner.strip_prefix("pid:")?;
    let (process, boot) = rest.split_once('@')?;
    let (pid, start) = process.split_once(':')?;
    Some((pid.parse().ok()?, start.parse().ok()?, boot))
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
}

/// A process's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`); `None`
/// when there is no such process, or it has exited and only its exit status is left for its
/// parent to collect (a zombie: state `Z`, or `X` while it goes), as a server killed after the
/// command that started it exited is until init reaps it.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_not() {
        let me = this_process();
        assert!(is_alive(Some(&me), None, 0), "{me}");
        // Same pid and boot, another start time: the pid was reused by another process.
        let (pid, start, boot) = parse(&me).unwrap();
        let other = format!("pid:{pid}:{}@{boot}", start + 1);
        assert!(!is_alive(Some(&other), None, 0));
    }

    #[test]
    fn an_exited_process_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = process_start(pid);
        child.wait().unwrap();
        let owner = format!("pid:{pid}:{}@{}", start.unwrap_or(1), boot_id().unwrap());
        assert!(!is_alive(Some(&owner), None, 0));
    }

    #[test]
    fn a_process_that_exited_but_was_not_reaped_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Its start time as the kernel keeps it, zombie or not.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let start: u64 = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(19)
            .unwrap()
            .parse()
            .unwrap();
        let owner = format!("pid:{pid}:{start}@{}", boot_id().unwrap());
        // Exited, not waited for: a zombie until `wait` below.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat[stat.rfind(')').unwrap() + 1..]
                .trim_start()
                .starts_with('Z')
        }) {
            assert!(std::time::Instant::now() < deadline, "`true` did not exit");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!is_alive(Some(&owner), None, 0), "{owner}");
        child.wait().unwrap();
    }

    #[test]
    fn an_owner_elsewhere_lives_by_its_lease() {
        let elsewhere = "pid:1:1@another-machine";
        assert!(is_alive(Some(elsewhere), Some(1_000), 1_010));
        assert!(!is_alive(Some(elsewhere), Some(1_000), 1_000 + 31));
        assert!(is_alive(Some("server:eu-1"), Some(1_000), 1_005));
        assert!(
            !is_alive(None, Some(1_000), 1_005),
            "no owner recorded: gone"
        );
    }
}

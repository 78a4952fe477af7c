//! The agent's side, run on the head node by `aloft agent ...`.
//!
//! Everything lives in one directory (`~/.aloft-agent`, or `$ALOFT_AGENT_DIR`):
//!
//! - `cluster.json`: the nodes and how to reach them ([`ClusterInfo`]), written at launch;
//! - `jobs.db`: the job queue (the store's job table, in SQLite);
//! - `logs/<job>/node-<rank>.log` (exactly what the node printed) and
//!   `logs/<job>/node-<rank>.streams` (where it switches between stdout and stderr): see
//!   [`crate::logs`];
//! - `autostop.json` and `activity` (when the cluster last did something);
//! - `daemon.lock`, held by the daemon while it lives, so there is never more than one;
//!   `daemon.pid` and `daemon.json` (its pid and the node's boot id);
//! - `supervisor.lock` and `supervisor.pid`: the loop that restarts a daemon that died;
//! - `secrets/<token>.json`: a queued or running job's secrets, removed when the job ends;
//! - `run/`: the head's pid and heartbeat files of running jobs (see [`crate::runner`]);
//! - `ssh/key` (the key the agent logs in to the workers with) and `ssh/<rank>/`.
//!
//! Everything here is private to the login user: directories are 0700 and files 0600, made so
//! and tightened by every command (a job's secrets and output are nobody else's business).
//! A job's secrets are kept out of the job table (its spec names only their file) and out of
//! every log, and reach the job's processes as environment variables.
//!
//! The daemon runs queued jobs one at a time, in order. Every command makes sure it runs
//! (`ensure_daemon`): it is started under a small supervisor (`aloft agent supervise`) that
//! starts it again if it dies, and keeps running until the node powers off. A job a previous
//! daemon was running is ended on every node and marked failed when the next daemon starts,
//! saying why: the daemon died (same boot of the node) or the node restarted (another boot).

use crate::logs::{LogReader, LogWriter, Piece, ReadError};
use crate::protocol::{AgentStatus, Autostop, ClusterInfo, JobSpec, LogEvent, NodeInfo, OutStream};
use crate::runner::{
    GangJob, JobOutcome, JobSink, Liveness, Node, Phase, kill_job_everywhere, run_gang, task_id,
};
use aloft_exec::{
    ExecError, LocalTransport, RemoteCommand, SshTarget, SshTransport, Stream, Transport,
};
use aloft_store::{Job, JobState, Store, StoreError};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the daemon looks for new jobs, and followers for new lines: short, because it is
/// between a command and its first line of output.
const POLL: Duration = Duration::from_millis(25);
/// How often the daemon, when no job is waiting, asks whether autostop is due.
const AUTOSTOP_POLL: Duration = Duration::from_secs(1);
/// How often a running job's state is checked for a cancel.
const CANCEL_POLL: Duration = Duration::from_millis(100);
/// How often a follower makes sure the daemon still runs.
const DAEMON_CHECK: Duration = Duration::from_secs(1);
/// How long a command waits for a daemon it started to take its lock.
const DAEMON_START_WAIT: Duration = Duration::from_secs(10);
/// The longest the supervisor waits before starting a daemon that keeps dying again.
const SUPERVISOR_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What went wrong on the agent's side.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is unreadable")]
    BadFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no job {0} in this cluster's queue")]
    NoSuchJob(i64),
    #[error("the agent has not been set up on this node (no {0})")]
    NotSetUp(PathBuf),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("this cluster's cloud cannot stop its nodes from inside, so autostop is not available")]
    NoPowerOff,
    /// Whoever read a log stream went away (its SSH session ended): the follower stops.
    #[error("the reader of the log stream went away")]
    ReaderGone(#[source] std::io::Error),
}

/// Opens `path` for appending (creating it private).
fn open_private_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Creates a directory (and its parents) private to the user, and makes an existing one so.
fn private_dir(path: &Path) -> Result<(), HeadError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io("creating", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(io("restricting", path))
}

/// The id of this boot of the node: a daemon that died is told from a node that restarted by it.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
}

/// What the agent records about the daemon that runs (or ran last).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DaemonRecord {
    pub pid: u32,
    /// The node's boot id when it started.
    pub boot_id: Option<String>,
}

/// Why a job a previous daemon was running did not finish: the daemon died while the node
/// stayed up (same boot id), or the node itself stopped or restarted.
pub fn lost_job_reason(previous: Option<&DaemonRecord>, boot_id: Option<&str>) -> String {
    match previous {
        Some(record) if record.boot_id.is_some() && record.boot_id.as_deref() == boot_id => {
            format!(
                "the agent daemon died while the job ran (pid {})",
                record.pid
            )
        }
        Some(record) if record.boot_id.is_some() => {
            "the node restarted while the job ran".to_owned()
        }
        _ => "the agent daemon stopped while the job ran (it left no record of why)".to_owned(),
    }
}

/// A fresh name for a job's secrets file: unguessable enough, never reused.
fn secrets_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("{}-{nanos}", std::process::id())
}
/// How `aloft agent logs` writes a job's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON [`LogEvent`] per line: for people and scripts on the node.
    JsonLines,
    /// Frames of raw output ([`crate::logs`]): what the client reads.
    Framed,
}

/// How often a follower with nothing to send checks that its reader is still there.
const READER_CHECK: Duration = Duration::from_millis(500);

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HeadError {
    let path = path.to_path_buf();
    move |source| HeadError::Io {
        action,
        path,
        source,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Whether a cluster idle since `last_activity` (seconds) should stop at `now` under `autostop`.
pub fn autostop_due(autostop: &Autostop, last_activity: i64, now: i64) -> bool {
    autostop
        .idle_minutes
        .is_some_and(|minutes| now - last_activity >= i64::from(minutes) * 60)
}

/// The agent, over its directory.
#[derive(Debug, Clone)]
pub struct Agent {
    dir: PathBuf,
}

impl Agent {
    /// `$ALOFT_AGENT_DIR`, else `~/.aloft-agent`.
    pub fn default_dir() -> PathBuf {
        match std::env::var_os("ALOFT_AGENT_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(crate::protocol::AGENT_DIR),
        }
    }

    pub fn at(dir: PathBuf) -> Agent {
        Agent { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The job table. The database is made private before SQLite first opens it (its journal
    /// files take its mode).
    async fn store(&self) -> Result<Store, HeadError> {
        private_dir(&self.dir)?;
        let path = self.dir.join("jobs.db");
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("creating", &path))?;
        Ok(Store::open(&path).await?)
    }

    fn log_dir(&self, job: i64) -> PathBuf {
        self.dir.join("logs").join(job.to_string())
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, HeadError> {
        let path = self.dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| HeadError::BadFile { path, source }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(HeadError::Io {
                action: "reading",
                path,
                source,
            }),
        }
    }

    /// Writes a file whole or not at all (a reader never sees half of it).
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), HeadError> {
        private_dir(&self.dir)?;
        write_private(&self.dir.join(name), bytes)
    }

    /// Makes the agent's directory and what is directly in it private (0700 directories,
    /// 0600 files; below them, the directories' own modes keep others out): what an agent of
    /// an older build left readable is tightened. The binary's directory keeps it runnable.
    fn tighten(&self) -> Result<(), HeadError> {
        private_dir(&self.dir)?;
        let entries = std::fs::read_dir(&self.dir).map_err(io("reading", &self.dir))?;
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let mode = if kind.is_dir() {
                0o700
            } else if kind.is_file() {
                0o600
            } else {
                continue;
            };
            let path = entry.path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(io("restricting", &path))?;
        }
        let key = self.dir.join("ssh").join("key");
        if key.exists() {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .map_err(io("restricting", &key))?;
        }
        Ok(())
    }

    fn is_set_up(&self) -> bool {
        self.dir.join("cluster.json").exists()
    }

    /// Every command's first step: the directory private, and (once set up) the daemon running.
    fn prepare(&self) -> Result<(), HeadError> {
        self.tighten()?;
        if self.is_set_up() {
            self.ensure_daemon()?;
        }
        Ok(())
    }

    fn cluster_info(&self) -> Result<ClusterInfo, HeadError> {
        self.read_json("cluster.json")?
            .ok_or_else(|| HeadError::NotSetUp(self.dir.join("cluster.json")))
    }

    fn autostop(&self) -> Result<Autostop, HeadError> {
        Ok(self.read_json("autostop.json")?.unwrap_or_default())
    }

    /// Records that the cluster did something now (idle time counts from here).
    fn touch_activity(&self) -> Result<(), HeadError> {
        self.write_atomic("activity", now().to_string().as_bytes())
    }

    fn last_activity(&self) -> i64 {
        std::fs::read_to_string(self.dir.join("activity"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Records the cluster's nodes (a launch, or a start after a stop) and makes sure the daemon
    /// runs. The SSH key for the workers must already be at `ssh/key`.
    pub async fn setup(&self, info: &ClusterInfo) -> Result<(), HeadError> {
        let text = serde_json::to_vec_pretty(info).expect("cluster info serializes");
        self.write_atomic("cluster.json", &text)?;
        self.tighten()?;
        // A start after an autostop: the daemon may run again.
        let _ = std::fs::remove_file(self.dir.join("autostop.done"));
        self.touch_activity()?;
        self.store().await?;
        self.ensure_daemon()
    }

    /// Queues a job; returns its id.
    /// Its secrets go to a private file of their own, written before the job is queued (so the
    /// daemon never sees the job without them) and removed when it ends; the job table only
    /// names the file.
    pub async fn submit(&self, spec: &JobSpec) -> Result<i64, HeadError> {
        self.cluster_info()?;
        self.prepare()?;
        let store = self.store().await?;
        let mut stored = spec.clone();
        stored.secrets_file = None;
        if !spec.secrets.is_empty() {
            let dir = self.dir.join("secrets");
            private_dir(&dir)?;
            let name = format!("{}.json", secrets_token());
            let text = serde_json::to_vec(&spec.secrets).expect("secrets serialize");
            write_private(&dir.join(&name), &text)?;
            stored.secrets = Vec::new();
            stored.secrets_file = Some(name);
        }
        let value = serde_json::to_value(&stored).expect("a job spec serializes");
        let job = store.job_insert(spec.name.as_deref(), &value).await?;
        Ok(job.id)
    }

    /// Removes the secrets of a job that is over (or will never run).
    fn forget_secrets(&self, spec: &serde_json::Value) {
        if let Some(name) = spec["secrets_file"].as_str()
            && !name.contains('/')
        {
            let _ = std::fs::remove_file(self.dir.join("secrets").join(name));
        }
    }

    /// Removes every secrets file no unfinished job needs (one whose job was cancelled before
    /// it ran, or whose daemon died), once it is older than [`SECRETS_GRACE`]: `submit` writes
    /// the file before it records the job, so a file younger than that may belong to a job
    /// recorded after `jobs` was read.
    fn sweep_secrets(&self, jobs: &[Job]) {
        let needed: Vec<&str> = jobs
            .iter()
            .filter(|job| !job.state.is_finished())
            .filter_map(|job| job.spec["secrets_file"].as_str())
            .collect();
        let Ok(entries) = std::fs::read_dir(self.dir.join("secrets")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let young = entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_none_or(|age| age < SECRETS_GRACE);
            if !young && !needed.iter().any(|needed| name.to_str() == Some(*needed)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// A queued job's secrets, from their file.
    fn load_secrets(&self, spec: &JobSpec) -> Result<Vec<(String, String)>, String> {
        let Some(name) = &spec.secrets_file else {
            return Ok(Vec::new());
        };
        let path = self.dir.join("secrets").join(name);
        let text = std::fs::read(&path).map_err(|_| {
            format!(
                "the job's secrets are gone ({} is missing or unreadable)",
                path.display()
            )
        })?;
        // The parse error is not passed on: it could quote a value.
        serde_json::from_slice(&text)
            .map_err(|_| format!("the job's secrets file {} is unreadable", path.display()))
    }

    /// Every job, oldest first.
    pub async fn queue(&self) -> Result<Vec<Job>, HeadError> {
        self.prepare()?;
        Ok(self.store().await?.job_list().await?)
    }

    /// Writes a job's output to `out` in `format`; with `follow`, until the job is over. Ends
    /// with the job's state ([`LogEvent::End`]). `job: None` is the latest job. A follower
    /// ends when `out` fails (its reader closed the pipe), and while there is nothing to send
    /// it asks `reader_gone` every half second, so a follower whose SSH session died does not
    /// linger on the head until the job ends.
    pub async fn logs(
        &self,
        job: Option<i64>,
        follow: bool,
        format: LogFormat,
        out: &mut (dyn Write + Send),
        reader_gone: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), HeadError> {
        self.prepare()?;
        let store = self.store().await?;
        let mut daemon_checked = std::time::Instant::now();
        let id = match job {
            Some(id) => id,
            None => match store.job_list().await?.last() {
                Some(job) => job.id,
                None => return Err(HeadError::NoSuchJob(0)),
            },
        };
        let mut job = store.job_fetch(id).await?.ok_or(HeadError::NoSuchJob(id))?;
        let gone = HeadError::ReaderGone;
        if format == LogFormat::Framed {
            let header = serde_json::json!({ "job_id": id }).to_string();
            crate::logs::write_frame(out, crate::logs::FRAME_JOB, 0, header.as_bytes())
                .map_err(gone)?;
        }
        let log_dir = self.log_dir(id);
        let mut reader = LogReader::open(&log_dir);
        let mut checked = std::time::Instant::now();
        loop {
            // The state before the files: once it says finished, every byte is on disk.
            let finished = !follow || job.state.is_finished();
            let handed = loop {
                match reader.read(finished, &mut |piece| write_piece(out, format, piece)) {
                    Ok(0) => break 0,
                    Ok(handed) if !finished => break handed,
                    Ok(_) => continue,
                    Err(ReadError::Io(source)) => {
                        return Err(HeadError::Io {
                            action: "reading",
                            path: log_dir,
                            source,
                        });
                    }
                    Err(ReadError::Out(source)) => return Err(gone(source)),
                }
            };
            if finished {
                break;
            }
            if handed == 0 {
                out.flush().map_err(gone)?;
                if checked.elapsed() >= READER_CHECK {
                    checked = std::time::Instant::now();
                    if reader_gone() {
                        return Err(gone(std::io::ErrorKind::BrokenPipe.into()));
                    }
                }
                tokio::time::sleep(POLL).await;
            }
            // A job followed while its daemon died must still end, as failed.
            if daemon_checked.elapsed() >= DAEMON_CHECK {
                daemon_checked = std::time::Instant::now();
                self.ensure_daemon()?;
            }
            job = store.job_fetch(id).await?.ok_or(HeadError::NoSuchJob(id))?;
        }
        let end = LogEvent::End {
            state: job.state,
            exit_codes: job.exit_codes,
        };
        let end_json = serde_json::to_vec(&end).expect("an event serializes");
        match format {
            LogFormat::Framed => {
                crate::logs::write_frame(out, crate::logs::FRAME_END, 0, &end_json)
            }
            LogFormat::JsonLines => out.write_all(&end_json).and_then(|()| out.write_all(b"\n")),
        }
        .and_then(|()| out.flush())
        .map_err(gone)
    }

    /// Cancels jobs (`all`: every unfinished one) and waits for the running one to end.
    /// Returns the jobs as they are afterwards.
    pub async fn cancel(&self, ids: &[i64], all: bool) -> Result<Vec<Job>, HeadError> {
        self.prepare()?;
        let store = self.store().await?;
        let jobs = store.job_list().await?;
        let targets: Vec<Job> = if all {
            jobs.into_iter()
                .filter(|job| !job.state.is_finished())
                .collect()
        } else {
            let mut targets = Vec::new();
            for id in ids {
                let job = jobs
                    .iter()
                    .find(|job| job.id == *id)
                    .ok_or(HeadError::NoSuchJob(*id))?;
                targets.push(job.clone());
            }
            targets
        };
        // All are marked first, so the daemon starts none of the queued ones while the running
        // one is being ended.
        let mut running = Vec::new();
        for job in &targets {
            if matches!(job.state, JobState::SettingUp | JobState::Running) {
                running.push(job.id);
            }
            store
                .job_set_state(job.id, JobState::Cancelled, None)
                .await?;
            if job.state == JobState::Pending {
                self.forget_secrets(&job.spec);
            }
        }
        // The daemon sees the cancel and kills the job's processes on every node.
        for id in running {
            let done = self.log_dir(id).join("done");
            for _ in 0..300 {
                if done.exists() {
                    break;
                }
                tokio::time::sleep(CANCEL_POLL).await;
            }
        }
        let mut after = Vec::new();
        for job in targets {
            after.push(
                store
                    .job_fetch(job.id)
                    .await?
                    .ok_or(HeadError::NoSuchJob(job.id))?,
            );
        }
        Ok(after)
    }

    /// Sets (or, with `idle_minutes: None`, clears) autostop. Idle time counts from now.
    pub async fn set_autostop(&self, autostop: &Autostop) -> Result<(), HeadError> {
        if autostop.idle_minutes.is_some() && self.cluster_info()?.power_off.is_none() {
            return Err(HeadError::NoPowerOff);
        }
        self.tighten()?;
        let text = serde_json::to_vec(autostop).expect("autostop serializes");
        self.write_atomic("autostop.json", &text)?;
        self.touch_activity()?;
        self.ensure_daemon()
    }

    /// The daemon, the autostop setting and how long the cluster has been idle.
    pub async fn status(&self) -> Result<AgentStatus, HeadError> {
        self.prepare()?;
        let store = self.store().await?;
        let jobs = store.job_list().await?;
        let daemon_pid = self.daemon_pid();
        let daemon_rss_kib = daemon_pid.and_then(rss_kib);
        Ok(AgentStatus {
            daemon_pid,
            daemon_rss_kib,
            autostop: self.autostop()?,
            idle_seconds: self.idle_since(&jobs).map(|since| now() - since),
        })
    }

    /// Since when the cluster has been idle (seconds since the epoch); `None` while a job is
    /// queued or running.
    fn idle_since(&self, jobs: &[Job]) -> Option<i64> {
        if jobs.iter().any(|job| !job.state.is_finished()) {
            return None;
        }
        let last_end = jobs
            .iter()
            .filter_map(|job| job.ended_at)
            .max()
            .unwrap_or(0);
        Some(self.last_activity().max(last_end))
    }

    /// The daemon's pid, if one holds the lock.
    fn daemon_pid(&self) -> Option<u32> {
        let lock = File::open(self.dir.join("daemon.lock")).ok()?;
        match lock.try_lock_shared() {
            Ok(()) => None,
            Err(_) => std::fs::read_to_string(self.dir.join("daemon.pid"))
                .ok()?
                .trim()
                .parse()
                .ok(),
        }
    }

    /// Lock `name` in the agent's directory, taken: `None` while another process holds it.
    fn take_lock(&self, name: &str) -> Result<Option<File>, HeadError> {
        private_dir(&self.dir)?;
        let lock_path = self.dir.join(name);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io("opening", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => Ok(Some(lock)),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(HeadError::Io {
                action: "locking",
                path: lock_path,
                source,
            }),
        }
    }

    /// Whether a daemon holds its lock.
    fn daemon_runs(&self) -> Result<bool, HeadError> {
        Ok(self.take_lock("daemon.lock")?.is_none())
    }

    /// Whether autostop powered the node off during this boot: then nothing restarts the
    /// daemon (the node is going away), until `setup` after a start.
    fn powered_off_this_boot(&self) -> bool {
        std::fs::read_to_string(self.dir.join("autostop.done"))
            .is_ok_and(|boot| Some(boot.trim().to_owned()) == boot_id())
    }

    /// Makes sure the daemon runs: unless it (or its supervisor, about to restart it) does,
    /// starts the supervisor and waits for the daemon to take its lock.
    pub fn ensure_daemon(&self) -> Result<(), HeadError> {
        if self.powered_off_this_boot() || self.daemon_runs()? {
            return Ok(());
        }
        // Released at once: the supervisor takes it for itself.
        if self.take_lock("supervisor.lock")?.is_none() {
            return Ok(());
        }
        let log_path = self.dir.join("daemon.log");
        let log = open_private_append(&log_path).map_err(io("opening", &log_path))?;
        let log2 = log.try_clone().map_err(io("opening", &log_path))?;
        let exe = std::env::current_exe().map_err(io("finding", Path::new("the aloft binary")))?;
        // `setsid`: the supervisor and its daemon outlive the SSH session that started them.
        // Their output goes to the log file, never to the session, so the session can end.
        let mut supervisor = std::process::Command::new("setsid")
            .arg(exe)
            .args(["agent", "supervise"])
            .env("ALOFT_AGENT_DIR", &self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io("starting", Path::new("the agent daemon")))?;
        let started = std::time::Instant::now();
        while started.elapsed() < DAEMON_START_WAIT && !self.daemon_runs()? {
            // `setsid` forks only when it must; either way, reap what is ours.
            if let Ok(Some(_)) = supervisor.try_wait()
                && self.take_lock("supervisor.lock")?.is_some()
                && !self.daemon_runs()?
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = supervisor.try_wait();
        Ok(())
    }

    /// The supervisor: runs the daemon, and runs it again whenever it dies (killed, or ended
    /// by an error), waiting longer each time it dies soon after starting. Ends when the daemon
    /// ends by itself (autostop), or at once if another supervisor runs.
    pub async fn supervise(&self) -> Result<(), HeadError> {
        let Some(_lock) = self.take_lock("supervisor.lock")? else {
            return Ok(());
        };
        self.write_atomic("supervisor.pid", std::process::id().to_string().as_bytes())?;
        let exe = std::env::current_exe().map_err(io("finding", Path::new("the aloft binary")))?;
        let mut backoff = Duration::from_millis(200);
        loop {
            if self.powered_off_this_boot() {
                return Ok(());
            }
            let started = std::time::Instant::now();
            let mut daemon = tokio::process::Command::new(&exe)
                .args(["agent", "daemon"])
                .env("ALOFT_AGENT_DIR", &self.dir)
                .stdin(std::process::Stdio::null())
                .spawn()
                .map_err(io("starting", Path::new("the agent daemon")))?;
            let pid = daemon.id().unwrap_or(0);
            let status = daemon
                .wait()
                .await
                .map_err(io("waiting for", Path::new("the agent daemon")))?;
            if status.success() {
                return Ok(());
            }
            eprintln!(
                "supervisor: the agent daemon (pid {pid}) ended ({status}); starting it again"
            );
            if started.elapsed() > SUPERVISOR_MAX_BACKOFF {
                backoff = Duration::from_millis(200);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(SUPERVISOR_MAX_BACKOFF);
        }
    }

    /// The daemon: runs queued jobs one at a time, and stops the cluster when autostop says so.
    /// Returns at once if another daemon runs.
    pub async fn daemon(&self) -> Result<(), HeadError> {
        let Some(lock) = self.take_lock("daemon.lock")? else {
            return Ok(());
        };
        let previous: Option<DaemonRecord> = self.read_json("daemon.json").unwrap_or(None);
        let boot = boot_id();
        let record = DaemonRecord {
            pid: std::process::id(),
            boot_id: boot.clone(),
        };
        self.write_atomic("daemon.pid", record.pid.to_string().as_bytes())?;
        self.write_atomic(
            "daemon.json",
            &serde_json::to_vec(&record).expect("a daemon record serializes"),
        )?;
        let store = self.store().await?;
        self.settle_lost_jobs(&store, previous.as_ref(), boot.as_deref())
            .await?;
        let mut autostop_checked: Option<std::time::Instant> = None;
        loop {
            if let Some(job) = store.job_next_pending().await? {
                self.run(&store, job).await?;
                self.touch_activity()?;
                continue;
            }
            // Autostop is a matter of minutes: looked at once a second, not at every poll.
            if autostop_checked.is_some_and(|checked| checked.elapsed() < AUTOSTOP_POLL) {
                tokio::time::sleep(POLL).await;
                continue;
            }
            autostop_checked = Some(std::time::Instant::now());
            let autostop = self.autostop()?;
            if autostop.idle_minutes.is_some() {
                let jobs = store.job_list().await?;
                let due = self
                    .idle_since(&jobs)
                    .is_some_and(|since| autostop_due(&autostop, since, now()));
                if due {
                    // Recorded first: nothing restarts the daemon of a node going away.
                    if let Some(boot) = &boot {
                        self.write_atomic("autostop.done", boot.as_bytes())?;
                    }
                    self.power_off(&autostop).await?;
                    drop(lock);
                    return Ok(());
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Jobs a previous daemon was running did not finish: whatever they left running is ended
    /// on every node (before any other job starts), and they are marked failed with the reason.
    async fn settle_lost_jobs(
        &self,
        store: &Store,
        previous: Option<&DaemonRecord>,
        boot: Option<&str>,
    ) -> Result<(), HeadError> {
        let jobs = store.job_list().await?;
        let lost: Vec<&Job> = jobs
            .iter()
            .filter(|job| matches!(job.state, JobState::SettingUp | JobState::Running))
            .collect();
        if !lost.is_empty() {
            let reason = lost_job_reason(previous, boot);
            let info = self.cluster_info()?;
            let mut nodes = Vec::new();
            for node in &info.nodes {
                match self.transport(&info, node) {
                    Ok(transport) => nodes.push(Node {
                        rank: node.rank,
                        address: node.address.clone(),
                        transport,
                    }),
                    Err(err) => eprintln!("reaching node {}: {err}", node.rank),
                }
            }
            for job in lost {
                let spec: JobSpec = serde_json::from_value(job.spec.clone()).unwrap_or_default();
                let gang_job = self.gang_job(&info, job, &spec, &[], &nodes);
                for (rank, err) in kill_job_everywhere(&nodes, &gang_job).await {
                    eprintln!("ending lost job {} on node {rank}: {err}", job.id);
                }
                eprintln!("job {}: {reason}", job.id);
                let why = serde_json::json!({ "error": reason });
                match store
                    .job_set_state(job.id, JobState::Failed, Some(&why))
                    .await
                {
                    Ok(_) | Err(StoreError::JobFinished { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
                let done = self.log_dir(job.id).join("done");
                if private_dir(&self.log_dir(job.id)).is_ok() {
                    let _ = write_private(&done, b"");
                }
            }
        }
        self.sweep_secrets(&store.job_list().await?);
        Ok(())
    }

    /// The run of `job` on `nodes` as the runner takes it.
    fn gang_job<'a>(
        &self,
        info: &'a ClusterInfo,
        job: &Job,
        spec: &'a JobSpec,
        secrets: &'a [(String, String)],
        nodes: &[Node],
    ) -> GangJob<'a> {
        let cluster_info = serde_json::json!({
            "cluster_name": info.cluster,
            "cloud": spec.cloud,
            "region": spec.region,
            "num_nodes": nodes.len(),
            "ips": nodes.iter().map(|node| node.address.as_str()).collect::<Vec<_>>(),
        });
        GangJob {
            id: job.id,
            cluster: &info.cluster,
            spec,
            secrets,
            task_id: task_id(job.submitted_at, &info.cluster, job.id),
            cluster_info: cluster_info.to_string(),
            run_dirs: vec![(
                0,
                aloft_exec::shell_quote(&self.dir.join("run").display().to_string()),
            )],
            liveness: Liveness::default(),
            container_engine: None,
        }
    }

    /// Stops (or tears down) every node, workers first, the head (this node) last, the way a
    /// VM powers itself off.
    async fn power_off(&self, autostop: &Autostop) -> Result<(), HeadError> {
        let info = self.cluster_info()?;
        let Some(power_off) = &info.power_off else {
            return Err(HeadError::NoPowerOff);
        };
        let command = if autostop.down {
            &power_off.terminate
        } else {
            &power_off.stop
        };
        eprintln!(
            "autostop: idle for {} minute(s); {}",
            autostop.idle_minutes.unwrap_or(0),
            if autostop.down {
                "tearing down"
            } else {
                "stopping"
            }
        );
        for node in info.nodes.iter().filter(|node| node.rank != 0) {
            let transport = self.transport(&info, node)?;
            // A node already gone is not an error: it is off.
            let off = tokio::time::timeout(
                Duration::from_secs(30),
                transport.output(&RemoteCommand::new(command.clone())),
            )
            .await;
            if let Ok(Err(err)) = off {
                eprintln!("autostop: node {}: {err}", node.rank);
            }
        }
        let status = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(command)
            .status()
            .await
            .map_err(io("running", Path::new("the power-off command")))?;
        eprintln!("autostop: the head's power-off command exited with {status}");
        Ok(())
    }

    /// How the agent reaches a node: the head is this machine, workers are over SSH with the
    /// cluster's key and their pinned host keys.
    fn transport(
        &self,
        info: &ClusterInfo,
        node: &NodeInfo,
    ) -> Result<Arc<dyn Transport>, ExecError> {
        if node.rank == 0 {
            return Ok(Arc::new(LocalTransport));
        }
        let target = SshTarget {
            host: node.address.clone(),
            port: 22,
            user: info.ssh_user.clone(),
            identity_file: self.dir.join("ssh").join("key"),
            host_key: node.host_key.clone(),
        };
        let state = self.dir.join("ssh").join(node.rank.to_string());
        Ok(Arc::new(SshTransport::new(target, &state)?))
    }
    /// Runs one job to its end, recording its states and its output.
    async fn run(&self, store: &Store, job: Job) -> Result<(), HeadError> {
        let log_dir = self.log_dir(job.id);
        private_dir(&self.dir.join("logs"))?;
        crate::logs::create_private_dir(&log_dir).map_err(io("creating", &log_dir))?;
        let result = self.run_logged(store, &job, &log_dir).await;
        self.forget_secrets(&job.spec);
        let codes = |exits: &[(u32, i32)]| {
            serde_json::Value::Object(
                exits
                    .iter()
                    .map(|(rank, code)| (rank.to_string(), serde_json::json!(code)))
                    .collect(),
            )
        };
        let (state, exits) = match result {
            Ok(JobOutcome::Succeeded) => (JobState::Succeeded, serde_json::json!({})),
            Ok(JobOutcome::Failed {
                phase: Phase::Setup,
                exits,
            }) => (JobState::FailedSetup, codes(&exits)),
            Ok(JobOutcome::Failed {
                phase: Phase::Run,
                exits,
            }) => (JobState::Failed, codes(&exits)),
            Ok(JobOutcome::Cancelled) => (JobState::Cancelled, serde_json::json!({})),
            Err(message) => (JobState::Failed, serde_json::json!({"error": message})),
        };
        // The watcher's last update (setting_up → running) may still land after it is dropped
        // (the store runs statements on a thread of its own), making this conditional update
        // match nothing: then the job is still unfinished, and it is set again.
        for _ in 0..20 {
            match store.job_set_state(job.id, state, Some(&exits)).await {
                Ok(after) if after.state.is_finished() => break,
                Ok(_) => tokio::time::sleep(POLL).await,
                // Cancelled meanwhile: it stays cancelled.
                Err(StoreError::JobFinished { .. }) => break,
                Err(err) => return Err(err.into()),
            }
        }
        write_private(&log_dir.join("done"), b"")
    }

    /// The job's run; an error is a message for the job's record (never one that could quote a
    /// secret).
    async fn run_logged(
        &self,
        store: &Store,
        job: &Job,
        log_dir: &Path,
    ) -> Result<JobOutcome, String> {
        let info = self.cluster_info().map_err(|err| err.to_string())?;
        let spec: JobSpec = serde_json::from_value(job.spec.clone())
            .map_err(|err| format!("the job's spec is unreadable: {err}"))?;
        let secrets = self.load_secrets(&spec)?;
        let count = (spec.num_nodes.max(1) as usize).min(info.nodes.len());
        let mut nodes = Vec::new();
        for node in &info.nodes[..count] {
            nodes.push(Node {
                rank: node.rank,
                address: node.address.clone(),
                transport: self.transport(&info, node).map_err(|err| err.to_string())?,
            });
        }
        let gang_job = self.gang_job(&info, job, &spec, &secrets, &nodes);
        let first = if spec.setup.is_some() {
            JobState::SettingUp
        } else {
            JobState::Running
        };
        let started = store
            .job_set_state(job.id, first, None)
            .await
            .map_err(|err| err.to_string())?;
        if started.state != first {
            // Cancelled between being picked and starting.
            return Ok(JobOutcome::Cancelled);
        }
        let sink = log_sink(log_dir).map_err(|err| err.to_string())?;
        let cancelled = AtomicBool::new(false);
        // 0: setting up, 1: running; the watcher records the switch.
        let phase = AtomicU8::new(0);
        let on_phase = |new: Phase| phase.store(u8::from(new == Phase::Run), Ordering::SeqCst);
        let gang = run_gang(&nodes, &gang_job, &cancelled, &on_phase, sink);
        let watch = async {
            let mut recorded_running = first == JobState::Running;
            loop {
                tokio::time::sleep(CANCEL_POLL).await;
                let Ok(Some(now)) = store.job_fetch(job.id).await else {
                    continue;
                };
                if now.state == JobState::Cancelled {
                    cancelled.store(true, Ordering::SeqCst);
                    for (rank, err) in kill_job_everywhere(&nodes, &gang_job).await {
                        eprintln!("cancelling job {} on node {rank}: {err}", job.id);
                    }
                } else if !recorded_running && phase.load(Ordering::SeqCst) == 1 {
                    recorded_running = true;
                    let _ = store.job_set_state(job.id, JobState::Running, None).await;
                }
            }
        };
        tokio::select! {
            outcome = gang => outcome.map_err(|err| err.to_string()),
            () = watch => unreachable!("the watcher loops until the job ends"),
        }
    }
}

/// Writes a private (0600) file whole or not at all (a reader never sees half of it).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), HeadError> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = path.with_file_name(format!(".{name}.partial"));
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(io("writing", &partial))?;
    file.write_all(bytes).map_err(io("writing", &partial))?;
    drop(file);
    std::fs::rename(&partial, path).map_err(io("writing", path))
}

/// Writes output in a log stream's format.
fn write_piece(out: &mut dyn Write, format: LogFormat, piece: Piece<'_>) -> std::io::Result<()> {
    match format {
        LogFormat::Framed => crate::logs::write_frame(
            out,
            crate::logs::output_kind(piece.stream),
            piece.rank,
            piece.bytes,
        ),
        LogFormat::JsonLines => crate::logs::write_json_lines(out, piece),
    }
}

/// How often output a job printed is written out when it comes in bursts (a line after a
/// quiet spell is written at once).
const LOG_FLUSH: Duration = Duration::from_millis(10);

/// A sink that appends each line to its node's log ([`crate::logs`]). Lines are buffered, so a
/// job printing fast costs a write per 64 KiB rather than per line; a task flushes what is
/// buffered every few milliseconds, and the last of the sink's clones flushes the rest when
/// dropped, before the job's end is recorded.
fn log_sink(log_dir: &Path) -> Result<JobSink, HeadError> {
    let writer = LogWriter::create(log_dir).map_err(io("creating", log_dir))?;
    let writer = Arc::new(Mutex::new(writer));
    let flushed = Arc::downgrade(&writer);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(LOG_FLUSH).await;
            // No await while the writer is held: on the daemon's one thread, this never holds
            // the last reference past the job's end.
            let Some(writer) = flushed.upgrade() else {
                return;
            };
            if let Ok(mut writer) = writer.lock() {
                let _ = writer.flush();
            }
        }
    });
    Ok(Arc::new(
        move |_: Phase, rank: u32, stream: Stream, line: &str| {
            let stream = match stream {
                Stream::Stdout => OutStream::Stdout,
                Stream::Stderr => OutStream::Stderr,
            };
            if let Ok(mut writer) = writer.lock() {
                let _ = writer.append_line(rank, stream, line.as_bytes());
            }
        },
    ))
}

/// Whether whoever reads this process's stdout has gone: the read end of the pipe (or the
/// socket's peer) is closed, which `poll` reports as an error or a hang-up without writing.
pub fn stdout_reader_gone() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&now)).is_ok_and(|ready| {
        ready > 0 && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
    })
}

/// A process's resident memory in KiB, from `/proc`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// How long a secrets file no job names yet is left alone by the sweep (see
/// `Agent::sweep_secrets`).
const SECRETS_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autostop_is_due_only_after_the_idle_minutes() {
        let five = Autostop {
            idle_minutes: Some(5),
            down: false,
        };
        assert!(!autostop_due(&five, 1_000, 1_000 + 299));
        assert!(autostop_due(&five, 1_000, 1_000 + 300));
        let off = Autostop::default();
        assert!(!autostop_due(&off, 0, i64::MAX / 2));
        let now = Autostop {
            idle_minutes: Some(0),
            down: true,
        };
        assert!(autostop_due(&now, 1_000, 1_000));
    }

    #[test]
    fn a_lost_job_says_whether_the_daemon_died_or_the_node_restarted() {
        let record = DaemonRecord {
            pid: 4242,
            boot_id: Some("boot-a".to_owned()),
        };
        assert_eq!(
            lost_job_reason(Some(&record), Some("boot-a")),
            "the agent daemon died while the job ran (pid 4242)"
        );
        assert_eq!(
            lost_job_reason(Some(&record), Some("boot-b")),
            "the node restarted while the job ran"
        );
        assert!(lost_job_reason(None, Some("boot-a")).contains("no record"));
    }

    /// Seen under load (`tests/agent.rs`): the daemon read the job list, a `submit` wrote its
    /// secrets and recorded its job, and the sweep then removed the new file as nobody's; the
    /// job failed with "the job's secrets are gone".
    #[test]
    fn a_secrets_file_written_just_now_is_never_swept_even_before_its_job_is_recorded() {
        let dir = std::env::temp_dir().join(format!("aloft-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("secrets")).unwrap();
        let (fresh, stale) = (
            dir.join("secrets/fresh.json"),
            dir.join("secrets/stale.json"),
        );
        std::fs::write(&fresh, "{}").unwrap();
        std::fs::write(&stale, "{}").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        Agent::at(dir.clone()).sweep_secrets(&[]);
        assert!(fresh.exists(), "a file its job may not have recorded yet");
        assert!(!stale.exists(), "an old file no job needs");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Jobs' output: streamed from the cluster's head node, and kept where the control plane runs,
//! so `aloft logs` still has it after the cluster is stopped or gone.
//!
//! A copy is kept under `$ALOFT_HOME/logs/<cluster>/<created>/<job>/`, where `<created>` is when
//! the cluster's record was made (a cluster re-created under the same name never shows the old
//! one's output), in the agent's own format ([`aloft_agent::logs`]) with the job's end state in
//! `end.json`. A copy is made whenever a job is followed, and [`save_before_teardown`] copies
//! every job before a cluster is torn down.

use crate::jobs::{self, NotRunning};
use aloft_agent::AgentClient;
use aloft_agent::logs::{LogReader, LogWriter, ReadError};
pub use aloft_agent::protocol::OutStream;
pub use aloft_agent::{LogItem, LogsEnd};
use aloft_store::JobState;
use aloft_store::Store;
use anyhow::{Context, Result, anyhow};
use std::path::{Path, PathBuf};

/// The copies of one incarnation of a cluster name (see the module's docs).
pub fn incarnation_dir(home: &Path, cluster: &str, created_at: i64) -> PathBuf {
    home.join("logs").join(cluster).join(created_at.to_string())
}

/// Whose copies are shown for `cluster`: the recorded cluster's (`created_at`), and only those;
/// with no record (the cluster is gone), the newest incarnation's.
fn copies_to_show(home: &Path, cluster: &str, created_at: Option<i64>) -> Option<PathBuf> {
    if let Some(created) = created_at {
        let dir = incarnation_dir(home, cluster, created);
        return dir.is_dir().then_some(dir);
    }
    let newest = numbered_entries(&home.join("logs").join(cluster)).max()?;
    Some(incarnation_dir(home, cluster, newest))
}

/// The entries of `dir` named by a number (incarnations, or jobs).
fn numbered_entries(dir: &Path) -> impl Iterator<Item = i64> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i64>().ok())
}

/// A copy of one job's log being written: into a directory of its own, which replaces the
/// job's copy when the stream is over (so two followers of one job, or a re-read, never mix
/// their output in one file).
struct Copy {
    writer: LogWriter,
    done: PathBuf,
}

impl Copy {
    fn start(copies: &Path, job: i64) -> std::io::Result<Copy> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let partial = copies.join(format!(".{job}.{}-{unique}.partial", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        Ok(Copy {
            writer: LogWriter::create(&partial)?,
            done: copies.join(job.to_string()),
        })
    }

    /// Puts the copy in place. A stream cut short replaces only a copy that is not there.
    fn finish(mut self, end: Option<&LogsEnd>) -> std::io::Result<()> {
        self.writer.flush()?;
        let partial = self.writer.dir().to_path_buf();
        if let Some(end) = end {
            let state = serde_json::json!({"state": end.state, "exit_codes": end.exit_codes});
            std::fs::write(partial.join("end.json"), state.to_string())?;
        } else if self.done.exists() {
            return std::fs::remove_dir_all(&partial);
        }
        let _ = std::fs::remove_dir_all(&self.done);
        std::fs::rename(&partial, &self.done)
    }
}

/// Streams a job's log from the head's agent to `sink` (`job: None`: the latest job; with
/// `follow`, until it ends), keeping a copy under `copies` (the cluster's incarnation
/// directory) when given. The sink's first item names the job. A sink that fails ends the
/// stream with its error; the copy keeps what came before.
pub async fn follow_agent(
    client: &AgentClient,
    copies: Option<&Path>,
    job: Option<i64>,
    follow: bool,
    sink: &mut (dyn FnMut(LogItem<'_>) -> Result<()> + Send),
) -> Result<LogsEnd> {
    let mut copy: Option<Copy> = None;
    let mut failure: Option<anyhow::Error> = None;
    let mut each = |item: LogItem<'_>| {
        if failure.is_some() {
            return;
        }
        let result = match item {
            LogItem::Job(id) => match copies.map(|dir| Copy::start(dir, id)) {
                Some(Ok(started)) => {
                    copy = Some(started);
                    sink(item)
                }
                Some(Err(err)) => Err(anyhow::Error::new(err).context("keeping a copy of the log")),
                None => sink(item),
            },
            LogItem::Output(piece) => {
                let copied = match &mut copy {
                    Some(copy) => copy.writer.append(piece.rank, piece.stream, piece.bytes),
                    None => Ok(()),
                };
                copied
                    .map_err(|err| anyhow::Error::new(err).context("keeping a copy of the log"))
                    .and_then(|()| sink(item))
            }
        };
        if let Err(err) = result {
            failure = Some(err);
        }
    };
    let result = client.logs(job, follow, &mut each).await;
    if let Some(copy) = copy {
        copy.finish(result.as_ref().ok())
            .map_err(|err| anyhow::Error::new(err).context("keeping a copy of the log"))?;
    }
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(result?)
}

/// Copies every job's log of an up cluster before it is torn down, so its output outlives it.
/// Returns how many jobs were copied.
pub async fn save_before_teardown(home: &Path, store: &Store, cluster: &str) -> Result<usize> {
    let client = jobs::head_agent(home, store, cluster).await?;
    let record = store
        .cluster_fetch(cluster)
        .await?
        .ok_or_else(|| anyhow!("no cluster `{cluster}`"))?;
    let copies = incarnation_dir(home, cluster, record.created_at);
    let queued = client.queue().await?;
    for job in &queued {
        follow_agent(&client, Some(&copies), Some(job.id), false, &mut |_| Ok(())).await?;
    }
    Ok(queued.len())
}

/// Where a job's log is read from.
#[derive(Debug)]
pub enum Source {
    /// The cluster's head node, keeping a copy in `copies`.
    Live {
        client: AgentClient,
        copies: PathBuf,
        nodes: u32,
    },
    /// The copy kept here of job `job` (the cluster is stopped or gone: `why`).
    Kept {
        dir: PathBuf,
        job: i64,
        nodes: u32,
        why: String,
    },
}

/// Where job `job` of `cluster` (`None`: its latest) is read from: its head node when it is
/// up, else the copy kept here. A cluster that is not up and has no copy is [`NotRunning`]
/// (with `follow`, a copy does not do: a job on a stopped cluster is not going anywhere).
pub async fn source(
    home: &Path,
    store: &Store,
    cluster: &str,
    job: Option<i64>,
    follow: bool,
) -> Result<Source> {
    let record = store.cluster_fetch(cluster).await?;
    let why = match jobs::head_agent(home, store, cluster).await {
        Ok(client) => {
            let record = record.context("the cluster's record vanished")?;
            return Ok(Source::Live {
                client,
                copies: incarnation_dir(home, cluster, record.created_at),
                nodes: record.num_nodes,
            });
        }
        Err(err) if follow => return Err(err),
        Err(err) => err,
    };
    let why = match why.downcast::<NotRunning>() {
        Ok(NotRunning(reason)) => reason,
        Err(other) if record.is_none() => other.to_string(),
        Err(other) => return Err(other),
    };
    let no_copy = |what: String| anyhow::Error::new(NotRunning(format!("{why}; and {what}")));
    let created_at = record.as_ref().map(|record| record.created_at);
    let Some(copies) = copies_to_show(home, cluster, created_at) else {
        return Err(no_copy("no copy of its logs is kept".to_owned()));
    };
    let Some(job) = job.or_else(|| numbered_entries(&copies).max()) else {
        return Err(no_copy("no copy of its logs is kept".to_owned()));
    };
    let dir = copies.join(job.to_string());
    if !dir.is_dir() {
        return Err(no_copy(format!("no copy of job {job}'s logs is kept")));
    }
    let nodes = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|entry| {
                    let name = entry.ok()?.file_name();
                    name.to_str()?.strip_suffix(".log").map(str::to_owned)
                })
                .count() as u32
        })
        .unwrap_or(0);
    Ok(Source::Kept {
        dir,
        job,
        nodes,
        why,
    })
}

/// Reads a kept copy to `sink` (its first item names the job); returns the job's end when the
/// copy was made after it (a copy without one is of a job that was still running).
pub fn read_kept(
    dir: &Path,
    job: i64,
    sink: &mut (dyn FnMut(LogItem<'_>) -> Result<()> + Send),
) -> Result<Option<LogsEnd>> {
    sink(LogItem::Job(job))?;
    let mut reader = LogReader::open(dir);
    loop {
        match reader.read(true, &mut |piece| sink(LogItem::Output(piece))) {
            Ok(0) => break,
            Ok(_) => {}
            Err(ReadError::Io(err)) => {
                return Err(anyhow::Error::new(err).context(format!("reading {}", dir.display())));
            }
            Err(ReadError::Out(err)) => return Err(err),
        }
    }
    let end: Option<serde_json::Value> = std::fs::read(dir.join("end.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let Some(state) = end
        .as_ref()
        .and_then(|end| serde_json::from_value::<JobState>(end["state"].clone()).ok())
    else {
        return Ok(None);
    };
    let exit_codes = end.and_then(|mut end| end.get_mut("exit_codes").map(serde_json::Value::take));
    Ok(Some(LogsEnd {
        job_id: job,
        state,
        exit_codes: exit_codes.filter(|codes| !codes.is_null()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aloft_agent::protocol::OutStream;

    #[test]
    fn a_re_created_cluster_never_shows_the_old_cluster_s_copies() {
        let home = std::env::temp_dir().join(format!("aloft-copies-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let old = incarnation_dir(&home, "c", 100);
        let mut copy = Copy::start(&old, 1).unwrap();
        copy.writer.append(0, OutStream::Stdout, b"old\n").unwrap();
        copy.finish(None).unwrap();
        assert!(old.join("1").join("node-0.log").exists());
        // The cluster of that name now is another one (created later): none of the old copies.
        assert_eq!(copies_to_show(&home, "c", Some(200)), None);
        assert_eq!(copies_to_show(&home, "c", Some(100)), Some(old.clone()));
        // With no cluster of that name any more, the newest incarnation's copies.
        std::fs::create_dir_all(incarnation_dir(&home, "c", 200).join("1")).unwrap();
        assert_eq!(
            copies_to_show(&home, "c", None),
            Some(incarnation_dir(&home, "c", 200))
        );
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn a_copy_cut_short_never_replaces_a_whole_one() {
        let home = std::env::temp_dir().join(format!("aloft-cut-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let end = LogsEnd {
            job_id: 1,
            state: JobState::Succeeded,
            exit_codes: None,
        };
        let mut whole = Copy::start(&home, 1).unwrap();
        whole.writer.append(0, OutStream::Stdout, b"all\n").unwrap();
        whole.finish(Some(&end)).unwrap();
        let mut cut = Copy::start(&home, 1).unwrap();
        cut.writer.append(0, OutStream::Stdout, b"a").unwrap();
        cut.finish(None).unwrap();
        let kept = std::fs::read_to_string(home.join("1").join("node-0.log")).unwrap();
        assert_eq!(kept, "all\n");
        assert!(home.join("1").join("end.json").exists());
        let leftovers: Vec<_> = std::fs::read_dir(&home).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "the partial copy is removed");
        std::fs::remove_dir_all(&home).unwrap();
    }
}

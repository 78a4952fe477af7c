//! aloft's application layer: what a user asks of the broker (launch a task, run it on a
//! cluster that exists, recover what an interrupted command left), done over the store, the
//! providers and the sagas, without printing. Progress goes to a [`Progress`] callback the caller
//! renders. The CLI calls it in-process; the API server will wrap the same functions, so there is
//! one code path.
//!
//! - [`registry`]: which provider serves which cloud name (the only place names are matched),
//!   and the offers a launch plans over.
//! - [`clusters`]: a handle on a recorded cluster, its health, and whether a task fits it.
//! - [`launch`]: bring a cluster up for a task: a new one (planned, with failover), or an
//!   existing one reused, started or repaired, never destroying what was there before.
//! - [`recovery`]: undo operations whose owner is gone, never failing the caller's command.
//! - [`status`]: what the clouds say of the recorded clusters, reconciled into the records;
//!   orphans; tearing clusters down.
//! - [`lifecycle`]: stop, start and tear down a recorded cluster.
//! - [`requests`]: long work run for a client, recorded with its progress.
//! - [`background`]: the convergent tasks a server runs on a timer and on demand.
//! - [`app`]: all of it together, as the server holds it.

pub mod app;
pub mod background;
pub mod clusters;
pub mod jobs;
pub mod launch;
pub mod lifecycle;
pub mod logs;
pub mod metrics;
pub mod recovery;
pub mod registry;
pub mod requests;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Progress lines for the user, rendered by the caller.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// aloft's home: state database, local cloud disks, SSH state (`$ALOFT_HOME`, else `~/.aloft`).
pub fn aloft_home() -> PathBuf {
    match std::env::var_os("ALOFT_HOME") {
        Some(home) => PathBuf::from(home),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".aloft")
        }
    }
}

/// Makes `home` private to the user (0700), creating it if needed: everything under it (the
/// state, keys, logs, the local cloud's disks) is then out of other users' reach whatever each
/// file's own mode. A home owned by someone else is left alone (and said).
pub fn make_home_private(home: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if !home.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(home)?;
        return Ok(());
    }
    let metadata = std::fs::metadata(home)?;
    let ours = metadata.uid() == current_uid();
    if ours && metadata.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// This process's user id, read from `/proc/self` (no libc call needed).
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |metadata| metadata.uid())
}

/// Now, in unix seconds (the store's and the owners' leases' unit).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// The state database: the PostgreSQL database `$ALOFT_DB` names (a `postgres://` URL), else
/// the SQLite file under `home`. An empty `ALOFT_DB` counts as unset.
pub async fn open_store(home: &Path) -> anyhow::Result<aloft_store::Store> {
    let db = std::env::var("ALOFT_DB").ok().filter(|db| !db.is_empty());
    open_store_with(home, db.as_deref()).await
}

/// The state database `db` names (a `postgres://` or `postgresql://` URL, for a deployment
/// whose processes share one server), or `$home/state.db` when `None`. Another value is refused
/// by its scheme alone: the value itself is never shown, since a URL may carry a password.
pub async fn open_store_with(home: &Path, db: Option<&str>) -> anyhow::Result<aloft_store::Store> {
    let Some(url) = db else {
        return Ok(aloft_store::Store::open(&home.join("state.db")).await?);
    };
    match url.split_once("://") {
        Some(("postgres" | "postgresql", _)) => Ok(aloft_store::Store::connect(url).await?),
        Some((scheme, _)) => anyhow::bail!(
            "the state database must be a postgres:// URL (or unset, for {}), not a `{scheme}:` one",
            home.join("state.db").display()
        ),
        None => anyhow::bail!(
            "the state database must be a postgres:// URL (or unset, for {}); the value given has no scheme",
            home.join("state.db").display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_that_is_not_postgres_is_refused_by_its_scheme_alone() {
        let home = Path::new("/nonexistent-aloft-home");
        for (db, scheme) in [
            ("mysql://root:s3cret@db.example/aloft", "`mysql:`"),
            ("sqlite:///tmp/s3cret.db", "`sqlite:`"),
            ("root:s3cret@db.example/aloft", "no scheme"),
        ] {
            let message = format!("{:#}", open_store_with(home, Some(db)).await.unwrap_err());
            assert!(message.contains(scheme), "{db}: {message}");
            assert!(!message.contains("s3cret"), "{db}: {message}");
        }
    }
}

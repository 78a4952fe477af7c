//! Who owns a network namespace: the state directory of the local cloud that made it.
//!
//! Namespace and veth names are global to the host, but a local cloud's record of its
//! instances (its state directory, under `$ALOFT_HOME/local` for the CLI) is not: two aloft
//! homes may use the same name prefix, and each must neither take the other's names nor
//! remove the other's instances. So every instance name is claimed on the host, before its
//! namespace exists, by a marker file `/run/aloft-local/<netns>` that holds the owner's state
//! directory (an atomic `create_new`, so two clouds never claim one name). `cleanup` reads the
//! markers: what its own state directory owns goes, what a state directory that still exists
//! owns is never touched, and what belongs to no state directory it can see (the owner's is
//! gone, or a namespace without a marker, made before markers existed) goes only when asked.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::LocalError;

/// Where the owner markers live: beside `/run/netns`, readable by root only.
pub(crate) const OWNERS_DIR: &str = "/run/aloft-local";

/// The identity of a state directory: its absolute, canonical path (the plain absolute path
/// when it does not exist), so two spellings of one directory are one owner.
pub(crate) fn owner_id(state_dir: &Path) -> PathBuf {
    std::fs::canonicalize(state_dir)
        .or_else(|_| std::path::absolute(state_dir))
        .unwrap_or_else(|_| state_dir.to_path_buf())
}

fn marker_path(netns: &str) -> PathBuf {
    Path::new(OWNERS_DIR).join(netns)
}

/// The state directory recorded as the owner of `netns`, if a marker exists.
pub(crate) fn owner_of(netns: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let bytes = std::fs::read(marker_path(netns)).ok()?;
    (!bytes.is_empty()).then(|| PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// Whose a namespace with this cloud's prefix is, as seen by the cloud whose state directory
/// is `own` (an [`owner_id`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// Marked as ours, or unmarked with an instance directory of ours (made before markers).
    Own,
    /// Marked as another state directory's, which exists: never touched.
    Other(PathBuf),
    /// Marked as a state directory that no longer exists (`Some`), or unmarked and unknown to
    /// us (`None`): nobody we can see claims it.
    Orphan(Option<PathBuf>),
}

pub(crate) fn ownership(netns: &str, own: &Path, own_instances_dir: &Path) -> Ownership {
    match owner_of(netns) {
        Some(owner) if owner == own => Ownership::Own,
        Some(owner) if owner.exists() => Ownership::Other(owner),
        Some(owner) => Ownership::Orphan(Some(owner)),
        None if own_instances_dir.join(netns).exists() => Ownership::Own,
        None => Ownership::Orphan(None),
    }
}

/// Claims `netns` for the state directory `own`: true if it is now ours, false if another
/// cloud holds it (its marker names another state directory, or a namespace of that name
/// exists that is not ours to reuse).
pub(crate) fn claim(netns: &str, own: &Path) -> Result<bool, LocalError> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    let fs_error = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| LocalError::Fs {
            action,
            path,
            source,
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(OWNERS_DIR)
        .map_err(fs_error("creating directory", Path::new(OWNERS_DIR)))?;
    let path = marker_path(netns);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    match created {
        Ok(mut file) => {
            let written = file
                .write_all(own.as_os_str().as_bytes())
                .and_then(|()| file.sync_all());
            if let Err(source) = written {
                let _ = std::fs::remove_file(&path);
                return Err(LocalError::Fs {
                    action: "writing",
                    path,
                    source,
                });
            }
            // A namespace of that name without a marker predates markers: someone's, not ours.
            if crate::sys::netns_exists(netns) {
                release(netns, own)?;
                return Ok(false);
            }
            Ok(true)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            // Our own marker without a namespace is what an interrupted terminate leaves:
            // reusable. With a namespace, it is a leftover of ours for `cleanup`.
            Ok(owner_of(netns).as_deref() == Some(own) && !crate::sys::netns_exists(netns))
        }
        Err(source) => Err(LocalError::Fs {
            action: "creating",
            path,
            source,
        }),
    }
}

/// Gives up the claim on `netns` if it is ours (`own`); another owner's marker stays.
pub(crate) fn release(netns: &str, own: &Path) -> Result<(), LocalError> {
    if owner_of(netns).as_deref() != Some(own) {
        return Ok(());
    }
    remove_marker(netns)
}

/// Removes the marker of `netns`, whoever's it is.
pub(crate) fn remove_marker(netns: &str) -> Result<(), LocalError> {
    let path = marker_path(netns);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LocalError::Fs {
            action: "removing",
            path,
            source,
        }),
    }
}

/// The names that have markers.
pub(crate) fn marked_names() -> Vec<String> {
    crate::sys::list_dir_names(OWNERS_DIR)
}

//! Provider errors, classified in the type.
//!
//! Failover decides from the class alone: out of capacity in a zone means "try the next zone",
//! a quota in a region means "skip the region", bad credentials mean "skip the cloud". So the
//! class is the variant and the scope is a field, and nothing downstream ever matches on message
//! text. Each variant also names the [`Operation`] that failed; the underlying cause (a process
//! exit, an HTTP error, an IO error) is the `#[source]` and is never interpolated into the
//! message, so printing the chain with `{:#}` shows every layer once.

use std::fmt;

/// Any error an adapter wants to keep as the cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The provider operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Bootstrap,
    CreateInstances,
    Query,
    Stop,
    Start,
    Terminate,
    OpenPorts,
    ClosePorts,
    AdmitPeers,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bootstrap => "bootstrap",
            Self::CreateInstances => "create instances",
            Self::Query => "query instances",
            Self::Stop => "stop instances",
            Self::Start => "start instances",
            Self::Terminate => "terminate instances",
            Self::OpenPorts => "open ports",
            Self::ClosePorts => "close ports",
            Self::AdmitPeers => "admit peers",
        })
    }
}

/// How far a capacity or quota shortage reaches: what failover should skip.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Zone(String),
    Region(String),
    Cloud,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zone(zone) => write!(f, "zone {zone}"),
            Self::Region(region) => write!(f, "region {region}"),
            Self::Cloud => f.write_str("the whole cloud"),
        }
    }
}

/// A failed provider operation. The variant is the class; see the module docs.
///
/// `detail` is the provider's own short explanation (e.g. the cloud's error code); `source` is the
/// underlying error, if any.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The cloud has no room for the request in `scope` right now.
    #[error("{operation}: insufficient capacity in {scope}: {detail}")]
    Capacity {
        operation: Operation,
        scope: Scope,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// An account limit in `scope` would be exceeded.
    #[error("{operation}: quota exceeded in {scope}: {detail}")]
    Quota {
        operation: Operation,
        scope: Scope,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The cloud cannot host the request in `scope` as the account is set up there (no network
    /// to launch into, no subnet in that zone): not a passing shortage, but failover moves on
    /// all the same.
    #[error("{operation}: {scope} is not usable: {detail}")]
    Unavailable {
        operation: Operation,
        scope: Scope,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Missing or rejected credentials, or missing permissions (including local privileges).
    #[error("{operation}: not authorized: {detail}")]
    Auth {
        operation: Operation,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The request can never succeed as asked (unknown instance type, bad configuration, a
    /// required tool missing). Retrying elsewhere in the same cloud doesn't help.
    #[error("{operation}: invalid request: {detail}")]
    InvalidRequest {
        operation: Operation,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The named cluster or instance does not exist.
    #[error("{operation}: not found: {detail}")]
    NotFound {
        operation: Operation,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Worth retrying as is: throttling, timeouts, a dropped connection.
    #[error("{operation}: temporary failure: {detail}")]
    Transient {
        operation: Operation,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Anything the adapter could not classify. Treated as permanent.
    #[error("{operation} failed: {detail}")]
    Other {
        operation: Operation,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl ProvisionError {
    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        match self {
            Self::Capacity { operation, .. }
            | Self::Quota { operation, .. }
            | Self::Unavailable { operation, .. }
            | Self::Auth { operation, .. }
            | Self::InvalidRequest { operation, .. }
            | Self::NotFound { operation, .. }
            | Self::Transient { operation, .. }
            | Self::Other { operation, .. } => *operation,
        }
    }

    /// Where failover should stop trying, for the classes that move the search elsewhere:
    /// capacity, quota and unavailability carry their own scope, auth rules out the whole cloud.
    pub fn failover_scope(&self) -> Option<Scope> {
        match self {
            Self::Capacity { scope, .. }
            | Self::Quota { scope, .. }
            | Self::Unavailable { scope, .. } => Some(scope.clone()),
            Self::Auth { .. } => Some(Scope::Cloud),
            _ => None,
        }
    }

    /// Whether repeating the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_is_chained_not_interpolated() {
        let cause = std::io::Error::other("disk on fire");
        let err = ProvisionError::Other {
            operation: Operation::CreateInstances,
            detail: "writing the instance's sshd_config".into(),
            source: Some(Box::new(cause)),
        };
        let message = err.to_string();
        assert_eq!(
            message,
            "create instances failed: writing the instance's sshd_config"
        );
        let source = std::error::Error::source(&err).expect("a source");
        assert_eq!(source.to_string(), "disk on fire");
    }

    #[test]
    fn classes_drive_failover() {
        let capacity = ProvisionError::Capacity {
            operation: Operation::CreateInstances,
            scope: Scope::Zone("us-east-1a".into()),
            detail: "InsufficientInstanceCapacity".into(),
            source: None,
        };
        assert_eq!(
            capacity.failover_scope(),
            Some(Scope::Zone("us-east-1a".into()))
        );
        assert!(!capacity.is_retryable());
        assert_eq!(
            capacity.to_string(),
            "create instances: insufficient capacity in zone us-east-1a: InsufficientInstanceCapacity"
        );

        let auth = ProvisionError::Auth {
            operation: Operation::Bootstrap,
            detail: "needs root".into(),
            source: None,
        };
        assert_eq!(auth.failover_scope(), Some(Scope::Cloud));

        let transient = ProvisionError::Transient {
            operation: Operation::Query,
            detail: "throttled".into(),
            source: None,
        };
        assert!(transient.is_retryable());
        assert_eq!(transient.failover_scope(), None);
        assert_eq!(transient.operation(), Operation::Query);
    }
}

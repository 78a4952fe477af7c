//! The one place where AWS error codes are read.
//!
//! EC2 models no error shapes, so the SDK hands back every service error as "unhandled" with a
//! code string (`InsufficientInstanceCapacity`, `VcpuLimitExceeded`, `AuthFailure`, ...). This
//! module turns those codes into the [`ProvisionError`] classes failover acts on, with the
//! narrowest true scope: a zone out of capacity, a region over quota, a cloud whose credentials
//! don't work. Nothing outside this module (and nothing outside this crate) compares codes.
//!
//! Throttling is retried by the SDK's standard retry strategy (exponential backoff with jitter,
//! `AwsConfig::max_attempts`) before it ever reaches here; what still arrives is `Transient`.

use std::error::Error as StdError;
use std::fmt;

use aloft_provision::{BoxError, Operation, ProvisionError, Scope};
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

/// An AWS call that failed, reduced to what classification needs. It is kept as the `source`
/// of the resulting [`ProvisionError`], so the code and message show up in `{:#}` chains.
#[derive(Debug)]
pub(crate) struct AwsCallError {
    /// The API action, e.g. `RunInstances`.
    pub action: &'static str,
    pub kind: CallErrorKind,
    /// The service's error code, for service errors.
    pub code: Option<String>,
    pub message: Option<String>,
    /// The HTTP status of the error response, for service errors.
    pub http_status: Option<u16>,
    pub source: Option<BoxError>,
}

/// How far the request got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallErrorKind {
    /// The service answered with an error code.
    Service,
    /// No credentials could be found or loaded (nothing was sent).
    Credentials,
    /// The request could not be built (bad input or configuration).
    Construction,
    /// The request was not answered: connection refused, DNS, TLS, a timeout.
    Network,
    /// The answer could not be understood.
    Response,
}

impl fmt::Display for AwsCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AWS {}", self.action)?;
        match self.kind {
            CallErrorKind::Service => {}
            CallErrorKind::Credentials => f.write_str(": no usable credentials")?,
            CallErrorKind::Construction => f.write_str(": request could not be built")?,
            CallErrorKind::Network => f.write_str(": endpoint not reachable")?,
            CallErrorKind::Response => f.write_str(": unreadable response")?,
        }
        if let Some(code) = &self.code {
            write!(f, ": {code}")?;
        } else if let Some(status) = self.http_status {
            write!(f, ": HTTP {status}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl StdError for AwsCallError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl AwsCallError {
    /// Reduces any SDK error (EC2 or STS) to an [`AwsCallError`].
    pub(crate) fn from_sdk<E>(action: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        let message = err.message().map(str::to_owned);
        let http_status = match &err {
            SdkError::ServiceError(context) => Some(context.raw().status().as_u16()),
            _ => None,
        };
        let kind = match &err {
            SdkError::ServiceError(_) => CallErrorKind::Service,
            _ if chain_has_credentials_error(&err) => CallErrorKind::Credentials,
            SdkError::ConstructionFailure(_) => CallErrorKind::Construction,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => CallErrorKind::Network,
            _ => CallErrorKind::Response,
        };
        // For service errors the code and message say it all; the SDK's wrapper adds only
        // "service error" to the chain. Other kinds keep the SDK error, whose sources say what
        // failed to connect or parse.
        let source: Option<BoxError> = match kind {
            CallErrorKind::Service => None,
            _ => Some(Box::new(err)),
        };
        Self {
            action,
            kind,
            code,
            message,
            http_status,
            source,
        }
    }

    /// A service error built from parts (for tests and for failures EC2 reports in a state
    /// reason rather than an error response).
    pub(crate) fn service(action: &'static str, code: &str, message: Option<&str>) -> Self {
        Self {
            action,
            kind: CallErrorKind::Service,
            code: Some(code.to_owned()),
            message: message.map(str::to_owned),
            http_status: None,
            source: None,
        }
    }

    /// The service's error code, if the service answered.
    pub(crate) fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
}

/// Missing credentials surface as a dispatch or construction failure whose chain holds the
/// credential provider's error; find it by type, not by text.
fn chain_has_credentials_error(err: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(error) = current {
        if error
            .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// Where a call was aimed, so capacity and quota errors get their scope.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place<'a> {
    pub region: &'a str,
    pub zone: Option<&'a str>,
}

/// The class of an error code, before a scope is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodeClass {
    /// No room for this request in the zone (or the region, if no zone was named).
    ZoneCapacity,
    /// An account limit of the region.
    RegionQuota,
    /// The region can't be used by this account (not opted in, being verified).
    RegionUnavailable,
    Auth,
    NotFound,
    InvalidRequest,
    Transient,
    Other,
}

/// The table of EC2 (and STS) error codes. Codes are matched exactly, except for the
/// `.NotFound`/`.Malformed` families EC2 uses for every resource type.
pub(crate) fn class_of_code(code: &str) -> CodeClass {
    match code {
        // The zone has no free hosts of this type right now, or doesn't offer the type at all
        // ("Unsupported": "Your requested instance type is not supported in your requested
        // Availability Zone"). Either way another zone may work. Spot requests that can't be
        // fulfilled at the asked price are the same to failover.
        "InsufficientInstanceCapacity"
        | "InsufficientHostCapacity"
        | "InsufficientReservedInstanceCapacity"
        | "InsufficientCapacity"
        | "InsufficientCapacityOnHost"
        | "InsufficientFreeAddressesInSubnet"
        | "Unsupported"
        | "SpotMaxPriceTooLow"
        | "Server.InsufficientInstanceCapacity"
        | "Server.SpotInstanceTermination" => CodeClass::ZoneCapacity,
        // Account limits, all per region in EC2.
        "VcpuLimitExceeded"
        | "InstanceLimitExceeded"
        | "MaxSpotInstanceCountExceeded"
        | "ResourceLimitExceeded"
        | "VolumeLimitExceeded"
        | "MaxIOPSLimitExceeded"
        | "AddressLimitExceeded"
        | "SecurityGroupLimitExceeded"
        | "RulesPerSecurityGroupLimitExceeded"
        | "KeyPairLimitExceeded"
        | "Client.VolumeLimitExceeded" => CodeClass::RegionQuota,
        "OptInRequired" | "PendingVerification" => CodeClass::RegionUnavailable,
        "AuthFailure"
        | "UnauthorizedOperation"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "ExpiredToken"
        | "RequestExpired"
        | "AccessDenied"
        | "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId"
        | "Blocked"
        | "Client.UnauthorizedOperation" => CodeClass::Auth,
        // What survives the SDK's own retries.
        "RequestLimitExceeded"
        | "Throttling"
        | "ThrottlingException"
        | "EC2ThrottledException"
        | "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "Unavailable"
        | "RequestTimeout"
        | "IncorrectInstanceState"
        | "DependencyViolation"
        | "Server.InternalError" => CodeClass::Transient,
        "InvalidParameterValue"
        | "InvalidParameter"
        | "InvalidParameterCombination"
        | "MissingParameter"
        | "InvalidInstanceType"
        | "InvalidBlockDeviceMapping"
        | "InvalidAvailabilityZone"
        | "UnsupportedOperation"
        | "VPCIdNotSpecified"
        | "InvalidKeyPair.Format"
        | "InvalidAMIID.NotFound"
        | "InvalidAMIID.Malformed"
        | "InvalidAMIID.Unavailable" => CodeClass::InvalidRequest,
        _ if code.ends_with(".NotFound") => CodeClass::NotFound,
        _ if code.ends_with(".Malformed") || code.starts_with("InvalidParameter") => {
            CodeClass::InvalidRequest
        }
        _ => CodeClass::Other,
    }
}

/// The class of an error response whose code could not be read (an unexpected body, e.g. an
/// emulator's or a proxy's), from its HTTP status alone.
pub(crate) fn class_of_status(status: u16) -> CodeClass {
    match status {
        401 | 403 => CodeClass::Auth,
        429 | 500 | 502 | 503 | 504 => CodeClass::Transient,
        _ => CodeClass::Other,
    }
}

/// Classifies a failed call made during `operation` at `place`.
pub(crate) fn classify(
    operation: Operation,
    place: Place<'_>,
    err: AwsCallError,
) -> ProvisionError {
    let class = match err.kind {
        CallErrorKind::Service => match (err.code(), err.http_status) {
            (Some(code), _) => class_of_code(code),
            (None, Some(status)) => class_of_status(status),
            (None, None) => CodeClass::Other,
        },
        CallErrorKind::Credentials => CodeClass::Auth,
        CallErrorKind::Construction => CodeClass::InvalidRequest,
        CallErrorKind::Network => CodeClass::Transient,
        CallErrorKind::Response => CodeClass::Other,
    };
    let code = err.code().unwrap_or("").to_owned();
    let detail = match class {
        CodeClass::ZoneCapacity => format!(
            "{} has no capacity for this request ({code})",
            zone_or_region(place)
        ),
        CodeClass::RegionQuota => format!(
            "an account limit of region {} would be exceeded ({code}); ask AWS for a higher \
             quota or use another region",
            place.region
        ),
        CodeClass::RegionUnavailable => format!(
            "region {} is not enabled for this account ({code})",
            place.region
        ),
        CodeClass::Auth if err.kind == CallErrorKind::Credentials => {
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
             or run `aws configure`"
                .to_owned()
        }
        CodeClass::Auth if code.is_empty() => {
            "AWS rejected the credentials or their permissions".to_owned()
        }
        CodeClass::Auth => format!("AWS rejected the credentials or their permissions ({code})"),
        CodeClass::Transient if err.kind == CallErrorKind::Network => {
            format!("AWS {} did not answer", err.action)
        }
        _ if code.is_empty() => format!("AWS {} failed", err.action),
        _ => format!("AWS {} failed ({code})", err.action),
    };
    let source: Option<BoxError> = Some(Box::new(err));
    match class {
        CodeClass::ZoneCapacity => ProvisionError::Capacity {
            operation,
            scope: match place.zone {
                Some(zone) => Scope::Zone(zone.to_owned()),
                None => Scope::Region(place.region.to_owned()),
            },
            detail,
            source,
        },
        CodeClass::RegionQuota => ProvisionError::Quota {
            operation,
            scope: Scope::Region(place.region.to_owned()),
            detail,
            source,
        },
        CodeClass::RegionUnavailable => ProvisionError::Unavailable {
            operation,
            scope: Scope::Region(place.region.to_owned()),
            detail,
            source,
        },
        CodeClass::Auth => ProvisionError::Auth {
            operation,
            detail,
            source,
        },
        CodeClass::NotFound => ProvisionError::NotFound {
            operation,
            detail,
            source,
        },
        CodeClass::InvalidRequest => ProvisionError::InvalidRequest {
            operation,
            detail,
            source,
        },
        CodeClass::Transient => ProvisionError::Transient {
            operation,
            detail,
            source,
        },
        CodeClass::Other => ProvisionError::Other {
            operation,
            detail,
            source,
        },
    }
}

fn zone_or_region(place: Place<'_>) -> String {
    match place.zone {
        Some(zone) => format!("zone {zone}"),
        None => format!("region {}", place.region),
    }
}

/// Codes the adapter handles itself because they mean "already done" for an idempotent call.
pub(crate) mod codes {
    pub const GROUP_DUPLICATE: &str = "InvalidGroup.Duplicate";
    pub const GROUP_NOT_FOUND: &str = "InvalidGroup.NotFound";
    pub const GROUP_ID_NOT_FOUND: &str = "InvalidGroupId.NotFound";
    pub const KEY_PAIR_DUPLICATE: &str = "InvalidKeyPair.Duplicate";
    pub const KEY_PAIR_NOT_FOUND: &str = "InvalidKeyPair.NotFound";
    pub const PERMISSION_DUPLICATE: &str = "InvalidPermission.Duplicate";
    pub const PERMISSION_NOT_FOUND: &str = "InvalidPermission.NotFound";
    pub const INSTANCE_ID_NOT_FOUND: &str = "InvalidInstanceID.NotFound";
}

/// Whether `err` is a service error with exactly this code.
pub(crate) fn has_code(err: &AwsCallError, code: &str) -> bool {
    err.code() == Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str, zone: Option<&str>, expect: &str) {
        let place = Place {
            region: "us-east-1",
            zone,
        };
        let err = classify(
            Operation::CreateInstances,
            place,
            AwsCallError::service("RunInstances", code, Some("message from AWS")),
        );
        let got = match &err {
            ProvisionError::Capacity { scope, .. } => format!("capacity {scope}"),
            ProvisionError::Quota { scope, .. } => format!("quota {scope}"),
            ProvisionError::Unavailable { scope, .. } => format!("unavailable {scope}"),
            ProvisionError::Auth { .. } => "auth".into(),
            ProvisionError::InvalidRequest { .. } => "invalid".into(),
            ProvisionError::NotFound { .. } => "not found".into(),
            ProvisionError::Transient { .. } => "transient".into(),
            ProvisionError::Other { .. } => "other".into(),
        };
        assert_eq!(got, expect, "{code}");
        // The code and message stay reachable through the chain, never in the top message
        // twice.
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.to_string().contains(code), "{source}");
        assert!(source.to_string().contains("message from AWS"));
    }

    #[test]
    fn capacity_is_per_zone() {
        let zone = Some("us-east-1a");
        check(
            "InsufficientInstanceCapacity",
            zone,
            "capacity zone us-east-1a",
        );
        check("Unsupported", zone, "capacity zone us-east-1a");
        check("InsufficientHostCapacity", zone, "capacity zone us-east-1a");
        check("SpotMaxPriceTooLow", zone, "capacity zone us-east-1a");
        check(
            "Server.InsufficientInstanceCapacity",
            zone,
            "capacity zone us-east-1a",
        );
        // Without a zone the narrowest true scope is the region.
        check(
            "InsufficientInstanceCapacity",
            None,
            "capacity region us-east-1",
        );
    }

    #[test]
    fn quotas_are_per_region() {
        let zone = Some("us-east-1a");
        for code in [
            "VcpuLimitExceeded",
            "InstanceLimitExceeded",
            "MaxSpotInstanceCountExceeded",
            "SecurityGroupLimitExceeded",
        ] {
            check(code, zone, "quota region us-east-1");
        }
    }

    #[test]
    fn regions_not_enabled_are_unavailable() {
        for code in ["OptInRequired", "PendingVerification"] {
            check(code, Some("us-east-1a"), "unavailable region us-east-1");
        }
    }

    #[test]
    fn auth_failures_rule_out_the_cloud() {
        for code in [
            "AuthFailure",
            "UnauthorizedOperation",
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "AccessDenied",
        ] {
            check(code, Some("us-east-1a"), "auth");
        }
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        for code in [
            "RequestLimitExceeded",
            "Throttling",
            "InternalError",
            "ServiceUnavailable",
        ] {
            check(code, None, "transient");
        }
    }

    #[test]
    fn bad_requests_and_missing_things() {
        check("InvalidParameterValue", None, "invalid");
        check("InvalidAMIID.NotFound", None, "invalid");
        check("InvalidInstanceType", None, "invalid");
        check("InvalidParameterSomethingNew", None, "invalid");
        check("InvalidGroupId.Malformed", None, "invalid");
        check("InvalidInstanceID.NotFound", None, "not found");
        check("InvalidGroup.NotFound", None, "not found");
        check("SomethingNobodyHeardOf", None, "other");
    }

    #[test]
    fn unreadable_error_bodies_fall_back_to_the_http_status() {
        let place = Place {
            region: "us-east-1",
            zone: None,
        };
        let unreadable = |status| AwsCallError {
            action: "GetCallerIdentity",
            kind: CallErrorKind::Service,
            code: None,
            message: None,
            http_status: Some(status),
            source: None,
        };
        let err = classify(Operation::Bootstrap, place, unreadable(403));
        assert!(matches!(err, ProvisionError::Auth { .. }), "{err}");
        assert!(
            std::error::Error::source(&err)
                .unwrap()
                .to_string()
                .contains("HTTP 403")
        );
        let err = classify(Operation::Bootstrap, place, unreadable(503));
        assert!(err.is_retryable(), "{err}");
        let err = classify(Operation::Bootstrap, place, unreadable(400));
        assert!(matches!(err, ProvisionError::Other { .. }), "{err}");
    }

    #[test]
    fn a_missing_credential_is_recognised_by_type() {
        use aws_credential_types::provider::error::CredentialsError;
        use aws_sdk_ec2::operation::run_instances::RunInstancesError;
        let err: SdkError<RunInstancesError, HttpResponse> = SdkError::construction_failure(
            CredentialsError::not_loaded("no providers in chain provided credentials"),
        );
        let call = AwsCallError::from_sdk("RunInstances", err);
        assert_eq!(call.kind, CallErrorKind::Credentials);
        let err = classify(
            Operation::CreateInstances,
            Place {
                region: "us-east-1",
                zone: None,
            },
            call,
        );
        assert!(matches!(err, ProvisionError::Auth { .. }), "{err}");
        assert_eq!(err.failover_scope(), Some(Scope::Cloud));
    }

    #[test]
    fn credentials_and_network_failures() {
        let place = Place {
            region: "eu-west-1",
            zone: None,
        };
        let missing = AwsCallError {
            action: "GetCallerIdentity",
            kind: CallErrorKind::Credentials,
            code: None,
            message: None,
            http_status: None,
            source: None,
        };
        let err = classify(Operation::Bootstrap, place, missing);
        assert!(matches!(err, ProvisionError::Auth { .. }), "{err}");
        assert!(
            err.to_string().contains("no AWS credentials found"),
            "{err}"
        );

        let unreachable = AwsCallError {
            action: "DescribeInstances",
            kind: CallErrorKind::Network,
            code: None,
            message: None,
            http_status: None,
            source: None,
        };
        let err = classify(Operation::Query, place, unreachable);
        assert!(err.is_retryable(), "{err}");
    }
}

//! The AWS adapter's configuration.
//!
//! Every field has a default, so an empty configuration means "the standard AWS credential chain,
//! the real EC2 endpoints, Ubuntu images, state under `/var/lib/aloft`". Tests and users of
//! emulators or private endpoints set `endpoint_url` (or `ALOFT_AWS_ENDPOINT_URL`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The environment variable that overrides [`AwsConfig::endpoint_url`] (when the configuration
/// names none), for pointing every request at an emulator or a private endpoint.
pub const ENDPOINT_ENV: &str = "ALOFT_AWS_ENDPOINT_URL";

/// How the AWS adapter finds credentials, endpoints, images, and where it keeps its state.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    /// Send every request (EC2 and STS) here instead of the AWS endpoints, e.g.
    /// `http://127.0.0.1:5000` for moto. `None` falls back to `$ALOFT_AWS_ENDPOINT_URL`, then to
    /// the SDK's own resolution (which honours `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// The shared-config profile to take credentials (and the default region) from; `None` uses
    /// the standard chain (`AWS_PROFILE`, environment variables, `~/.aws/config` and
    /// `~/.aws/credentials`, SSO, web identity, instance metadata).
    pub profile: Option<String>,
    /// Fixed credentials instead of the chain. Meant for emulators and tests; real users should
    /// leave this empty and use a profile.
    pub static_credentials: Option<StaticCredentials>,
    /// The region for calls that are not about one region (the credential check). `None` takes
    /// the profile's region, then `us-east-1`.
    pub home_region: Option<String>,
    /// Where the SSH key and the per-account, per-region bootstrap cache live
    /// (`<state_dir>/aws/...`). Keep it private to the user running aloft.
    pub state_dir: PathBuf,
    /// Prefix of every name and tag key this adapter creates (key pairs, security groups,
    /// `<prefix>-cluster`/`<prefix>-node` tags), so a second installation with another prefix
    /// never touches this one's resources.
    pub name_prefix: String,
    /// One image for every region (overrides everything below).
    pub image_id: Option<String>,
    /// Per-region images (region name to AMI id), used before the lookup by name.
    pub images: BTreeMap<String, String>,
    /// The owner account of the default image (Canonical's, for Ubuntu).
    pub image_owner: String,
    /// The default image's name pattern (EC2 `name` filter, `*` wildcards); `{arch}` becomes
    /// `amd64` or `arm64` to match the instance type. The newest match is used.
    pub image_name_pattern: String,
    /// The user the default image lets in with the key pair.
    pub ssh_user: String,
    /// The VPC to launch into, by its `Name` tag, in every region; `None` uses the account's
    /// default VPC. Instances go into a subnet of it in the planned zone.
    pub vpc_name: Option<String>,
    /// Reach instances at their private addresses (aloft runs inside the VPC, or over a VPN)
    /// and don't ask for public ones.
    pub use_internal_ips: bool,
    /// Root disk size in GiB (gp3).
    pub disk_size_gb: u32,
    /// How long to wait for instances to reach `running` (or `stopped`, `terminated`).
    pub state_timeout_secs: u64,
    /// How often to poll EC2 while waiting.
    pub poll_interval_ms: u64,
    /// After `running`, also wait until port 22 accepts TCP connections (bounded by
    /// `state_timeout_secs`). Off for emulators, whose addresses go nowhere.
    pub wait_for_ssh: bool,
    /// Attempts per request, including the first, for throttling and other retryable errors
    /// (exponential backoff with jitter, by the SDK's standard retry strategy).
    pub max_attempts: u32,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            profile: None,
            static_credentials: None,
            home_region: None,
            state_dir: PathBuf::from("/var/lib/aloft"),
            name_prefix: "aloft".into(),
            image_id: None,
            images: BTreeMap::new(),
            image_owner: "099720109477".into(),
            image_name_pattern: "ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-{arch}-server-*".into(),
            ssh_user: "ubuntu".into(),
            vpc_name: None,
            use_internal_ips: false,
            disk_size_gb: 256,
            state_timeout_secs: 600,
            poll_interval_ms: 5000,
            wait_for_ssh: true,
            max_attempts: 5,
        }
    }
}

impl fmt::Debug for AwsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConfig")
            .field("endpoint_url", &self.endpoint_url)
            .field("profile", &self.profile)
            .field("static_credentials", &self.static_credentials)
            .field("home_region", &self.home_region)
            .field("state_dir", &self.state_dir)
            .field("name_prefix", &self.name_prefix)
            .field("image_id", &self.image_id)
            .field("images", &self.images)
            .field("image_owner", &self.image_owner)
            .field("image_name_pattern", &self.image_name_pattern)
            .field("ssh_user", &self.ssh_user)
            .field("vpc_name", &self.vpc_name)
            .field("use_internal_ips", &self.use_internal_ips)
            .field("disk_size_gb", &self.disk_size_gb)
            .field("state_timeout_secs", &self.state_timeout_secs)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("wait_for_ssh", &self.wait_for_ssh)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// An access key pair. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl AwsConfig {
    /// The endpoint override in effect: the configuration's, else `$ALOFT_AWS_ENDPOINT_URL`
    /// (ignored when empty).
    pub fn effective_endpoint_url(&self) -> Option<String> {
        self.endpoint_url_with_env(std::env::var(ENDPOINT_ENV).ok())
    }

    /// [`Self::effective_endpoint_url`] with the variable's value passed in (tests can't set
    /// environment variables safely in a threaded process).
    fn endpoint_url_with_env(&self, env_value: Option<String>) -> Option<String> {
        self.endpoint_url
            .clone()
            .or_else(|| env_value.filter(|url| !url.trim().is_empty()))
    }

    /// Checks what can be checked without the network; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let prefix_ok = !self.name_prefix.is_empty()
            && self.name_prefix.len() <= 20
            && self
                .name_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && self
                .name_prefix
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase());
        if !prefix_ok {
            return Err(format!(
                "name_prefix {:?}: use 1 to 20 lowercase letters, digits or '-', starting with a \
                 letter",
                self.name_prefix
            ));
        }
        if let Some(url) = self.effective_endpoint_url()
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "endpoint_url {url:?} (or ${ENDPOINT_ENV}): must start with http:// or https://"
            ));
        }
        if self.disk_size_gb < 8 || self.disk_size_gb > 16384 {
            return Err(format!(
                "disk_size_gb {}: must be between 8 and 16384",
                self.disk_size_gb
            ));
        }
        if self
            .vpc_name
            .as_deref()
            .is_some_and(|name| name.trim().is_empty())
        {
            return Err("vpc_name: must not be empty (leave it out for the default VPC)".into());
        }
        if self.max_attempts == 0 {
            return Err("max_attempts: must be at least 1".into());
        }
        if self.poll_interval_ms == 0 {
            return Err("poll_interval_ms: must be at least 1".into());
        }
        Ok(())
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub(crate) fn state_timeout(&self) -> Duration {
        Duration::from_secs(self.state_timeout_secs)
    }

    /// The tag key holding the cluster name.
    pub fn cluster_tag_key(&self) -> String {
        format!("{}-cluster", self.name_prefix)
    }

    /// The tag key holding the node index.
    pub fn node_tag_key(&self) -> String {
        format!("{}-node", self.name_prefix)
    }

    /// The tag key holding the instance's SSH host public key (which aloft made and gave the
    /// instance, so it is known without asking the network).
    pub fn host_key_tag_key(&self) -> String {
        format!("{}-host-key", self.name_prefix)
    }

    /// The security group every instance gets, allowing SSH (one per region and account).
    pub(crate) fn ssh_security_group_name(&self) -> String {
        format!("{}-ssh", self.name_prefix)
    }

    /// The cluster's own security group (members reach each other; task ports are opened here).
    /// The `cluster-` infix keeps it apart from [`Self::ssh_security_group_name`] whatever the
    /// cluster is called.
    pub(crate) fn cluster_security_group_name(&self, cluster: &str) -> String {
        format!("{}-cluster-{cluster}", self.name_prefix)
    }

    /// The directory holding aloft's AWS SSH key and bootstrap caches.
    pub(crate) fn aws_dir(&self) -> PathBuf {
        self.state_dir.join("aws")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_empty_yaml_like_json_is_default() {
        let config: AwsConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, AwsConfig::default());
        config.validate().unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        let config = AwsConfig {
            name_prefix: "Bad_Prefix".into(),
            ..AwsConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("name_prefix"));
        let config = AwsConfig {
            endpoint_url: Some("127.0.0.1:5000".into()),
            ..AwsConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("endpoint_url"));
        let config = AwsConfig {
            disk_size_gb: 1,
            ..AwsConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("disk_size_gb"));
        let unknown: Result<AwsConfig, _> = serde_json::from_str(r#"{"endpoint": "x"}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn the_endpoint_comes_from_the_configuration_then_the_environment() {
        let unset = AwsConfig::default();
        assert_eq!(unset.endpoint_url_with_env(None), None);
        assert_eq!(unset.endpoint_url_with_env(Some("  ".into())), None);
        assert_eq!(
            unset.endpoint_url_with_env(Some("http://127.0.0.1:1".into())),
            Some("http://127.0.0.1:1".into())
        );
        let set = AwsConfig {
            endpoint_url: Some("http://127.0.0.1:2".into()),
            ..AwsConfig::default()
        };
        assert_eq!(
            set.endpoint_url_with_env(Some("http://127.0.0.1:1".into())),
            Some("http://127.0.0.1:2".into())
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let config = AwsConfig {
            static_credentials: Some(StaticCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "very-secret".into(),
                session_token: Some("token-secret".into()),
            }),
            ..AwsConfig::default()
        };
        let printed = format!("{config:?}");
        assert!(printed.contains("AKIDEXAMPLE"));
        assert!(!printed.contains("very-secret"));
        assert!(!printed.contains("token-secret"));
    }

    #[test]
    fn names_are_prefixed() {
        let config = AwsConfig::default();
        assert_eq!(config.cluster_tag_key(), "aloft-cluster");
        assert_eq!(config.ssh_security_group_name(), "aloft-ssh");
        assert_eq!(
            config.cluster_security_group_name("ssh"),
            "aloft-cluster-ssh"
        );
    }
}

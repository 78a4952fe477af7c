//! Per account and region, once: an SSH key pair and a security group that lets SSH in.
//!
//! aloft generates the key itself (`ssh-keygen`, ed25519), so the private key never crosses the
//! network, and imports the public half into each region. The key pair's EC2 name is derived
//! from the public key, so two machines (or two state directories) with different keys never
//! overwrite each other's key pair, and a lost local key simply leads to a new name.
//!
//! The ids are cached in `<state_dir>/aws/<account>/<region>.json`. The cache only saves lookups:
//! every bootstrap checks that the cached resources still exist in EC2 and re-creates what
//! vanished, and an unreadable cache file is rebuilt, never fatal. The adapter never reads
//! aloft's state store (adapters must not), so this small file is its own.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aloft_provision::{Operation, ProvisionError};
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Ipv6Range};
use serde::{Deserialize, Serialize};

use crate::config::AwsConfig;
use crate::error::{AwsCallError, Place, classify, codes, has_code};

/// What bootstrap made in one region, as cached on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionBootstrap {
    /// The EC2 key pair holding aloft's public key.
    pub key_pair_name: String,
    /// The security group every instance gets, allowing SSH from anywhere.
    pub ssh_security_group_id: String,
    /// The VPC that group belongs to (empty in caches written before VPCs could be chosen).
    #[serde(default)]
    pub vpc_id: String,
}

/// The cache file for one account and region.
pub(crate) fn cache_path(config: &AwsConfig, account: &str, region: &str) -> PathBuf {
    config
        .aws_dir()
        .join(sanitize(account))
        .join(format!("{}.json", sanitize(region)))
}

/// The regions with a bootstrap cache for `account`, sorted.
pub(crate) fn cached_regions(config: &AwsConfig, account: &str) -> Vec<String> {
    let dir = config.aws_dir().join(sanitize(account));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut regions: Vec<String> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    regions.sort();
    regions
}

/// Account ids and region names are plain, but they come from the network: never let one
/// become a path component with a separator in it.
fn sanitize(part: &str) -> String {
    let cleaned: String = part
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

pub(crate) fn read_cache(path: &Path) -> Option<RegionBootstrap> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

pub(crate) fn write_cache(path: &Path, state: &RegionBootstrap) -> Result<(), ProvisionError> {
    let io_error = |what: &str, err: std::io::Error| ProvisionError::Other {
        operation: Operation::Bootstrap,
        detail: format!("{what} {}", path.display()),
        source: Some(Box::new(err)),
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|err| io_error("creating the directory of", err))?;
    }
    let text = serde_json::to_string_pretty(state).map_err(|err| ProvisionError::Other {
        operation: Operation::Bootstrap,
        detail: "serializing the bootstrap cache".into(),
        source: Some(Box::new(err)),
    })?;
    let temp = path.with_extension("json.tmp");
    std::fs::write(&temp, text).map_err(|err| io_error("writing", err))?;
    std::fs::rename(&temp, path).map_err(|err| io_error("replacing", err))
}

/// Creates `dir` (and parents) readable by the owner only: it holds a private key.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Where aloft's AWS private key lives; the public key is beside it with `.pub` appended.
pub(crate) fn key_path(config: &AwsConfig) -> PathBuf {
    config.aws_dir().join("id_ed25519")
}

/// Makes sure the key exists (generating it if not) and returns its public half
/// (`ssh-ed25519 AAAA...`, without the comment).
pub(crate) async fn ensure_local_key(config: &AwsConfig) -> Result<String, ProvisionError> {
    let private = key_path(config);
    let public = public_key_path(&private);
    let io_error = |what: String, err: std::io::Error| ProvisionError::Other {
        operation: Operation::Bootstrap,
        detail: what,
        source: Some(Box::new(err)),
    };
    if !private.exists() {
        let dir = config.aws_dir();
        create_private_dir(&dir)
            .map_err(|err| io_error(format!("creating {}", dir.display()), err))?;
        // Generate under a temporary name unique to this process, then hard-link it into
        // place: linking fails if the key exists, so two processes bootstrapping at once agree on
        // one key (the loser uses the winner's), and a crash never leaves half a key.
        let temp = dir.join(format!("id_ed25519.new-{}", std::process::id()));
        let temp_public = public_key_path(&temp);
        let _ = std::fs::remove_file(&temp);
        let _ = std::fs::remove_file(&temp_public);
        run_ssh_keygen(Operation::Bootstrap, &temp, "aloft").await?;
        let linked = std::fs::hard_link(&temp, &private);
        if linked.is_ok() {
            let _ = std::fs::remove_file(&public);
            std::fs::rename(&temp_public, &public)
                .map_err(|err| io_error(format!("moving the key to {}", public.display()), err))?;
        }
        let _ = std::fs::remove_file(&temp);
        let _ = std::fs::remove_file(&temp_public);
        match linked {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(io_error(
                    format!("moving the key to {}", private.display()),
                    err,
                ));
            }
        }
    }
    // ssh refuses a private key others can read; enforce it even on a key that was copied in.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))
        .map_err(|err| io_error(format!("restricting {}", private.display()), err))?;
    // The public half is derived from the private key when it is missing, never regenerated:
    // a new key would lock aloft out of the instances it already launched.
    if !public.exists() {
        derive_public_key(&private, &public).await?;
    }
    let text = std::fs::read_to_string(&public)
        .map_err(|err| io_error(format!("reading {}", public.display()), err))?;
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind), Some(body)) if kind.starts_with("ssh-") => Ok(format!("{kind} {body}")),
        _ => Err(ProvisionError::InvalidRequest {
            operation: Operation::Bootstrap,
            detail: format!(
                "{} is not an OpenSSH public key; delete it and its private key to make a new pair",
                public.display()
            ),
            source: None,
        }),
    }
}

/// Writes the public key of `private` to `public` (`ssh-keygen -y`).
async fn derive_public_key(private: &Path, public: &Path) -> Result<(), ProvisionError> {
    let output = tokio::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(private)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|err| ProvisionError::InvalidRequest {
            operation: Operation::Bootstrap,
            detail: "ssh-keygen is needed to read aloft's SSH key: install openssh-client".into(),
            source: Some(Box::new(err)),
        })?;
    if !output.status.success() {
        return Err(ProvisionError::InvalidRequest {
            operation: Operation::Bootstrap,
            detail: format!(
                "{} is not a usable SSH private key ({}); move it away to make a new one",
                private.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            source: None,
        });
    }
    std::fs::write(public, &output.stdout).map_err(|err| ProvisionError::Other {
        operation: Operation::Bootstrap,
        detail: format!("writing {}", public.display()),
        source: Some(Box::new(err)),
    })
}

/// Runs `ssh-keygen` to make an ed25519 key without a passphrase at `path` (and `path.pub`).
async fn run_ssh_keygen(
    operation: Operation,
    path: &Path,
    comment: &str,
) -> Result<(), ProvisionError> {
    let output = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                ProvisionError::InvalidRequest {
                    operation,
                    detail: "ssh-keygen is needed to make SSH keys: install openssh-client".into(),
                    source: Some(Box::new(err)),
                }
            } else {
                ProvisionError::Other {
                    operation,
                    detail: "running ssh-keygen".into(),
                    source: Some(Box::new(err)),
                }
            }
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ProvisionError::Other {
            operation,
            detail: format!(
                "ssh-keygen failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            source: None,
        })
    }
}

/// An SSH host key made by aloft for one instance.
#[derive(Clone)]
pub(crate) struct HostKey {
    /// The OpenSSH private key file's text.
    pub private: String,
    /// `ssh-ed25519 AAAA...` (no comment): what the transport pins.
    pub public: String,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Makes a fresh host key. aloft gives it to the instance (cloud-init's `ssh_keys`) and so
/// knows the public half before the instance boots: the transport can pin it without trusting
/// the network on first use.
pub(crate) async fn generate_host_key(config: &AwsConfig) -> Result<HostKey, ProvisionError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let io_error = |what: String, err: std::io::Error| ProvisionError::Other {
        operation: Operation::CreateInstances,
        detail: what,
        source: Some(Box::new(err)),
    };
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = config
        .aws_dir()
        .join(format!(".host-key-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    create_private_dir(&dir).map_err(|err| io_error(format!("creating {}", dir.display()), err))?;
    let path = dir.join("key");
    let result = async {
        run_ssh_keygen(Operation::CreateInstances, &path, "aloft-host").await?;
        let private = std::fs::read_to_string(&path)
            .map_err(|err| io_error(format!("reading {}", path.display()), err))?;
        let public = std::fs::read_to_string(public_key_path(&path))
            .map_err(|err| io_error(format!("reading {}.pub", path.display()), err))?;
        let public: Vec<&str> = public.split_whitespace().take(2).collect();
        Ok(HostKey {
            private,
            public: public.join(" "),
        })
    }
    .await;
    // The private host key only lives on in the instance's user data.
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn public_key_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// The EC2 key pair name for a public key: the prefix and a 64-bit FNV-1a hash of the key.
/// Not a security measure (EC2 keeps the real key); only a stable, distinct name per key.
pub(crate) fn key_pair_name(config: &AwsConfig, public_key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in public_key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{}-key-{hash:016x}", config.name_prefix)
}

/// Makes sure the key pair and the SSH security group exist in `region`, re-creating whatever
/// vanished, and returns their ids.
pub(crate) async fn bootstrap_region(
    config: &AwsConfig,
    ec2: &aws_sdk_ec2::Client,
    region: &str,
    vpc_id: &str,
    cached: Option<RegionBootstrap>,
    public_key: &str,
) -> Result<RegionBootstrap, ProvisionError> {
    let place = Place { region, zone: None };
    let fail = |err: AwsCallError| classify(Operation::Bootstrap, place, err);

    // The key pair: its name is derived from the key, so "exists under that name" means "holds
    // this key".
    let key_pair_name = key_pair_name(config, public_key);
    let key_exists = match ec2
        .describe_key_pairs()
        .key_names(&key_pair_name)
        .send()
        .await
    {
        Ok(output) => !output.key_pairs().is_empty(),
        Err(err) => {
            let err = AwsCallError::from_sdk("DescribeKeyPairs", err);
            if has_code(&err, codes::KEY_PAIR_NOT_FOUND) {
                false
            } else {
                return Err(fail(err));
            }
        }
    };
    if !key_exists {
        let imported = ec2
            .import_key_pair()
            .key_name(&key_pair_name)
            .public_key_material(aws_sdk_ec2::primitives::Blob::new(public_key.as_bytes()))
            .send()
            .await;
        if let Err(err) = imported {
            let err = AwsCallError::from_sdk("ImportKeyPair", err);
            // Someone else imported the same key meanwhile: that's what we wanted.
            if !has_code(&err, codes::KEY_PAIR_DUPLICATE) {
                return Err(fail(err));
            }
        }
    }

    // The security group: the cached id if it still exists (in this VPC), else the one with our
    // name in the VPC, else a new one.
    let group_name = config.ssh_security_group_name();
    let mut group_id = None;
    if let Some(cached) = &cached
        && cached.vpc_id == vpc_id
        && security_group_exists(ec2, &cached.ssh_security_group_id)
            .await
            .map_err(fail)?
    {
        group_id = Some(cached.ssh_security_group_id.clone());
    }
    if group_id.is_none() {
        group_id = find_security_group(ec2, Some(vpc_id), &group_name)
            .await
            .map_err(fail)?;
    }
    let group_id = match group_id {
        Some(id) => id,
        None => create_security_group(
            ec2,
            vpc_id,
            &group_name,
            "aloft: SSH to every instance aloft launches",
            &[],
        )
        .await
        .map_err(fail)?,
    };
    // Idempotent: a rule that is already there is fine. Done on every bootstrap, so a rule that
    // someone removed comes back.
    for permission in ssh_permissions() {
        authorize_ingress(ec2, &group_id, permission)
            .await
            .map_err(fail)?;
    }
    Ok(RegionBootstrap {
        key_pair_name,
        ssh_security_group_id: group_id,
        vpc_id: vpc_id.to_owned(),
    })
}

fn ssh_permissions() -> [IpPermission; 2] {
    [tcp_from_anywhere_v4(22, 22), tcp_from_anywhere_v6(22, 22)]
}

pub(crate) fn tcp_from_anywhere_v4(first: u16, last: u16) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(i32::from(first))
        .to_port(i32::from(last))
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build()
}

pub(crate) fn tcp_from_anywhere_v6(first: u16, last: u16) -> IpPermission {
    IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(i32::from(first))
        .to_port(i32::from(last))
        .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
        .build()
}

/// Whether a security group with this id exists.
pub(crate) async fn security_group_exists(
    ec2: &aws_sdk_ec2::Client,
    group_id: &str,
) -> Result<bool, AwsCallError> {
    match ec2
        .describe_security_groups()
        .group_ids(group_id)
        .send()
        .await
    {
        Ok(output) => Ok(!output.security_groups().is_empty()),
        Err(err) => {
            let err = AwsCallError::from_sdk("DescribeSecurityGroups", err);
            if has_code(&err, codes::GROUP_NOT_FOUND) || has_code(&err, codes::GROUP_ID_NOT_FOUND) {
                Ok(false)
            } else {
                Err(err)
            }
        }
    }
}

/// The id of the security group with this name (in `vpc_id`, or in any VPC), if any.
pub(crate) async fn find_security_group(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: Option<&str>,
    name: &str,
) -> Result<Option<String>, AwsCallError> {
    let mut request = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(name).build());
    if let Some(vpc_id) = vpc_id {
        request = request.filters(Filter::builder().name("vpc-id").values(vpc_id).build());
    }
    let output = request
        .send()
        .await
        .map_err(|err| AwsCallError::from_sdk("DescribeSecurityGroups", err))?;
    Ok(output
        .security_groups()
        .iter()
        .find_map(|group| group.group_id().map(str::to_owned)))
}

/// Creates a security group in `vpc_id` with the given tags, or returns the one a concurrent
/// caller created under the same name.
pub(crate) async fn create_security_group(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    name: &str,
    description: &str,
    tags: &[aws_sdk_ec2::types::Tag],
) -> Result<String, AwsCallError> {
    let mut request = ec2
        .create_security_group()
        .vpc_id(vpc_id)
        .group_name(name)
        .description(description);
    if !tags.is_empty() {
        request = request.tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .set_tags(Some(tags.to_vec()))
                .build(),
        );
    }
    match request.send().await {
        Ok(output) => output.group_id().map(str::to_owned).ok_or_else(|| {
            AwsCallError::service(
                "CreateSecurityGroup",
                "MissingGroupId",
                Some("the response named no group id"),
            )
        }),
        Err(err) => {
            let err = AwsCallError::from_sdk("CreateSecurityGroup", err);
            if has_code(&err, codes::GROUP_DUPLICATE)
                && let Some(id) = find_security_group(ec2, Some(vpc_id), name).await?
            {
                return Ok(id);
            }
            Err(err)
        }
    }
}

/// Adds one ingress rule; a rule that already exists counts as added.
pub(crate) async fn authorize_ingress(
    ec2: &aws_sdk_ec2::Client,
    group_id: &str,
    permission: IpPermission,
) -> Result<(), AwsCallError> {
    match ec2
        .authorize_security_group_ingress()
        .group_id(group_id)
        .ip_permissions(permission)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => {
            let err = AwsCallError::from_sdk("AuthorizeSecurityGroupIngress", err);
            if has_code(&err, codes::PERMISSION_DUPLICATE) {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

/// Removes one ingress rule; a rule that isn't there counts as removed.
pub(crate) async fn revoke_ingress(
    ec2: &aws_sdk_ec2::Client,
    group_id: &str,
    permission: IpPermission,
) -> Result<(), AwsCallError> {
    match ec2
        .revoke_security_group_ingress()
        .group_id(group_id)
        .ip_permissions(permission)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(err) => {
            let err = AwsCallError::from_sdk("RevokeSecurityGroupIngress", err);
            if has_code(&err, codes::PERMISSION_NOT_FOUND) {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pair_names_follow_the_key() {
        let config = AwsConfig::default();
        let a = key_pair_name(&config, "ssh-ed25519 AAAAone");
        let b = key_pair_name(&config, "ssh-ed25519 AAAAtwo");
        assert_ne!(a, b);
        assert_eq!(a, key_pair_name(&config, "ssh-ed25519 AAAAone"));
        assert!(a.starts_with("aloft-key-"), "{a}");
    }

    #[test]
    fn cache_paths_stay_inside_the_state_dir() {
        let config = AwsConfig {
            state_dir: PathBuf::from("/state"),
            ..AwsConfig::default()
        };
        assert_eq!(
            cache_path(&config, "123456789012", "us-east-1"),
            PathBuf::from("/state/aws/123456789012/us-east-1.json")
        );
        assert_eq!(
            cache_path(&config, "../..", "a/b"),
            PathBuf::from("/state/aws/_____/a_b.json")
        );
    }

    #[tokio::test]
    async fn the_local_key_is_made_once_and_its_public_half_restored() {
        let dir = tempfile::tempdir().unwrap();
        let config = AwsConfig {
            state_dir: dir.path().to_owned(),
            ..AwsConfig::default()
        };
        let first = ensure_local_key(&config).await.unwrap();
        assert!(first.starts_with("ssh-ed25519 "), "{first}");
        let private = key_path(&config);
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(config.aws_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(ensure_local_key(&config).await.unwrap(), first);

        // A lost public key is derived again from the private one, not replaced by a new pair.
        std::fs::remove_file(public_key_path(&private)).unwrap();
        assert_eq!(ensure_local_key(&config).await.unwrap(), first);

        // Loose permissions on a copied-in key are tightened.
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
        ensure_local_key(&config).await.unwrap();
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // Host keys are fresh each time and leave nothing behind.
        let a = generate_host_key(&config).await.unwrap();
        let b = generate_host_key(&config).await.unwrap();
        assert_ne!(a.public, b.public);
        assert!(a.private.contains("OPENSSH PRIVATE KEY"));
        let names: Vec<String> = std::fs::read_dir(config.aws_dir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["id_ed25519", "id_ed25519.pub"]);
    }

    #[test]
    fn a_corrupt_cache_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account/r.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(read_cache(&path), None);
        let state = RegionBootstrap {
            key_pair_name: "k".into(),
            ssh_security_group_id: "sg-1".into(),
            vpc_id: "vpc-1".into(),
        };
        write_cache(&path, &state).unwrap();
        assert_eq!(read_cache(&path).as_ref(), Some(&state));
        let config = AwsConfig {
            state_dir: dir.path().to_path_buf(),
            ..AwsConfig::default()
        };
        write_cache(&cache_path(&config, "123", "us-west-2"), &state).unwrap();
        write_cache(&cache_path(&config, "123", "eu-west-1"), &state).unwrap();
        assert_eq!(cached_regions(&config, "123"), ["eu-west-1", "us-west-2"]);
        assert!(cached_regions(&config, "456").is_empty());
    }
}

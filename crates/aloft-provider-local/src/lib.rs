//! The local cloud: a genuine [`Provider`] whose instances are Linux network namespaces.
//!
//! Each instance is a network namespace with one veth on a bridge this cloud owns, an address
//! from the configured private /24, and an "init" started with
//! `setsid ip netns exec NS unshare --uts --pid --mount-proc --fork --kill-child boot.sh` (after
//! joining the instance's cgroups). The init sets the instance's hostname, mounts the cgroup
//! hierarchies, bind-mounts the instance's own `/etc/ssh` (with its own ed25519
//! host key), `/root` (with the cloud's client key in `authorized_keys`) and `/tmp`, gives a
//! container engine (Podman) a store of its own (`/var/lib/containers`) and fresh run-time
//! directories (`/run/containers`, `/run/libpod`, `/run/crun`), then execs `sshd -D`. To an
//! SSH-driven broker that is a VM: own address, hostname, host key, home, `/tmp`, container
//! images and process table. It is an emulation, not a security boundary: instances are root on
//! the shared host file system.
//!
//! Why: end-to-end tests of launch, SSH execution and jobs need real machines, and these cost
//! about 2 MB and 50–100 ms each. The mechanism and its measurements are in
//! `shared/notes/local-cloud.md`.
//!
//! Ports work like a cloud security group: an nftables table inside each instance's namespace
//! drops new inbound connections except to port 22, opened ports, and from cluster members (see
//! `firewall.rs`).
//!
//! Sizes are enforced like a VM's: each instance's processes are confined by cgroups (v1 or v2)
//! to its type's memory and CPU bandwidth (`cgroup.rs`). Where the host doesn't allow that, the
//! instance boots unconfined and [`LocalCloud::limits`] says why (a warning is printed once):
//! a missing limit never fails a launch.
//!
//! Spot: types with a `spot_price` can be launched with `use_spot`; the instance is an ordinary
//! one, recorded as spot in `meta.json` ([`LocalCloud::is_spot`]), and
//! [`LocalCloud::preempt`] reclaims it as a cloud would.
//!
//! Faults, for tests of the broker's recovery paths: [`LocalCloud::preempt`] makes an instance
//! vanish the way a spot VM does, [`LocalCloud::partition`] cuts an instance off the network and
//! restores it, [`LocalConfig::full_zones`] makes zones report no capacity, and
//! [`LocalConfig::slow_boot_secs`] (per zone: `slow_boot_zones`) delays every boot's sshd, so
//! launch progress and boot timeouts can be seen. A boot that exceeds `boot_timeout_secs` fails
//! with [`ProvisionError::Transient`] and the failed instance is removed.
//!
//! An instance can power itself off, as a VM runs `poweroff`: [`power_off_command`] is a shell
//! snippet that, run inside, records `stop` or `terminate` in the instance's state directory and
//! ends its PID 1. The next `query`, `stop` or `start` reconciles: a stopped instance becomes an
//! ordinary stopped one, a terminated one is removed completely. Destructive steps take the
//! instance's lock (`<state_dir>/locks/<id>`, `flock`), so two aloft processes doing this at
//! once don't trip over each other.
//!
//! Isolation from the rest of the host: instances get no default route and `ip_forward` is left
//! alone, so only loopback, the bridge's own address and other instances can be reached. Every
//! name is derived from [`LocalConfig`], and each instance's namespace name is claimed on the
//! host for the state directory that made it (`/run/aloft-local/<netns>`, see `owner.rs`), so
//! two clouds with one prefix (two aloft homes) never share a name, and [`cleanup`] removes
//! exactly what its own state directory left behind, never another's.
//!
//! The state of an instance lives in `<state_dir>/instances/<prefix>-<octet>/`: `meta.json`
//! (cluster, node index, spot, …), `etc-ssh/`, `home/`, `tmp/`, `containers/` (the container
//! engine's store), `boot.sh`, `console.log` (sshd's
//! log), `launcher.pid`, `limits.json` (its limits and cgroups), `cgroups` and `cgroup-mounts`
//! (what the launcher joins and the init mounts); a `stopped` marker while stopped, a
//! `preempted` marker once preempted, a `power-off` marker (`stop`/`terminate`) once it powered
//! itself off and until that is reconciled. Inside the instance the directory is mounted at
//! `/run/aloft-instance`.
//! Claiming the directory (an atomic `mkdir`) is what allocates the address, so concurrent
//! creations never collide.
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip`, `unshare`, `setsid`, `kill`, `mount`,
//! `ssh-keygen`, `sshd` and `nft` (Debian: iproute2, util-linux, procps, mount, openssh-client,
//! openssh-server, nftables).

mod cgroup;
mod config;
mod firewall;
mod owner;
mod sys;

use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aloft_provision::{
    Capabilities, ClusterName, CreateRequest, InstanceInfo, InstanceState, Operation, PortRange,
    Provider, ProvisionError, Scope,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use cgroup::InstanceLimits;
pub use config::LocalConfig;

use crate::config::instance_octet;
use crate::firewall::OpenPorts;
use crate::sys::Tools;

/// What went wrong inside the local cloud; wrapped in a classified [`ProvisionError`] at the
/// trait boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LocalError {
    #[error("the local cloud needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN): run as root")]
    NotRoot,
    #[error("the local cloud needs {tools}: install with `apt-get install {packages}`")]
    ToolsMissing { tools: String, packages: String },
    #[error("invalid local cloud configuration: {reason}")]
    InvalidConfig { reason: String },
    #[error("the local cloud has only region {expected:?}, not {region:?}")]
    UnknownRegion {
        region: String,
        expected: &'static str,
    },
    #[error(
        "instance type {instance_type} has no spot price in the local cloud's configuration, so it can't be launched as spot"
    )]
    NoSpot { instance_type: String },
    #[error("zone {zone} has no capacity (it is marked full in the local cloud's configuration)")]
    ZoneFull { zone: String },
    #[error("the local cloud has no zone {zone:?} (it has {known})")]
    UnknownZone { zone: String, known: String },
    #[error("the local cloud has no instance type {name:?} (it has {known})")]
    UnknownInstanceType { name: String, known: String },
    #[error("subnet {subnet} overlaps the host's route to {destination}/{prefix_len} on {device}")]
    SubnetOverlap {
        subnet: String,
        destination: Ipv4Addr,
        prefix_len: u32,
        device: String,
    },
    #[error("every address of subnet {subnet} is taken")]
    AddressesExhausted { subnet: String },
    #[error("could not run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` exited with {status}: {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{action} {path}")]
    Fs {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading instance metadata {path}")]
    BadMetadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "instance {instance} stopped while booting; the end of its console.log:\n{console_tail}"
    )]
    BootFailed {
        instance: String,
        console_tail: String,
    },
    #[error(
        "instance {instance}'s sshd did not accept connections on {address}:22 within {secs} s{slow_boot_note}"
    )]
    BootTimeout {
        instance: String,
        address: Ipv4Addr,
        secs: u64,
        /// Empty, or why the boot was slow on purpose.
        slow_boot_note: String,
    },
    #[error("cluster {cluster} has no node {node_idx}")]
    NoSuchNode { cluster: ClusterName, node_idx: u32 },
    #[error("processes {pids:?} in network namespace {netns} survive SIGKILL")]
    ProcessesSurvive { netns: String, pids: Vec<u32> },
}

impl LocalError {
    /// Classifies the error for failover (see `docs/specs/provider.md`). The local error's
    /// message becomes the detail and its own cause (if any) the source, so the chain prints
    /// every layer once.
    fn during(self, operation: Operation) -> ProvisionError {
        let detail = self.to_string();
        let class = self.class();
        let capacity_scope = match &self {
            LocalError::ZoneFull { zone } => Scope::Zone(zone.clone()),
            _ => Scope::Cloud,
        };
        let source: Option<aloft_provision::BoxError> = match self {
            LocalError::Spawn { source, .. } | LocalError::Fs { source, .. } => {
                Some(Box::new(source))
            }
            LocalError::BadMetadata { source, .. } => Some(Box::new(source)),
            _ => None,
        };
        match class {
            Class::Auth => ProvisionError::Auth {
                operation,
                detail,
                source,
            },
            Class::Invalid => ProvisionError::InvalidRequest {
                operation,
                detail,
                source,
            },
            Class::Capacity => ProvisionError::Capacity {
                operation,
                scope: capacity_scope,
                detail,
                source,
            },
            Class::NotFound => ProvisionError::NotFound {
                operation,
                detail,
                source,
            },
            Class::Transient => ProvisionError::Transient {
                operation,
                detail,
                source,
            },
            Class::Other => ProvisionError::Other {
                operation,
                detail,
                source,
            },
        }
    }

    fn class(&self) -> Class {
        match self {
            LocalError::NotRoot => Class::Auth,
            LocalError::ToolsMissing { .. }
            | LocalError::InvalidConfig { .. }
            | LocalError::UnknownRegion { .. }
            | LocalError::NoSpot { .. }
            | LocalError::UnknownZone { .. }
            | LocalError::UnknownInstanceType { .. }
            | LocalError::SubnetOverlap { .. } => Class::Invalid,
            LocalError::AddressesExhausted { .. } | LocalError::ZoneFull { .. } => Class::Capacity,
            LocalError::NoSuchNode { .. } => Class::NotFound,
            LocalError::BootTimeout { .. } => Class::Transient,
            _ => Class::Other,
        }
    }
}

enum Class {
    Auth,
    Invalid,
    Capacity,
    NotFound,
    Transient,
    Other,
}

/// What `meta.json` records about an instance: everything `query` reports that the host itself
/// cannot tell.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct InstanceMeta {
    id: String,
    octet: u8,
    cluster: ClusterName,
    node_idx: u32,
    zone: String,
    instance_type: String,
    address: Ipv4Addr,
    hostname: String,
    /// Launched as spot (`CreateRequest::use_spot`). `InstanceInfo` has no field for it, so it
    /// lives here only. Absent in metadata written before spot existed.
    #[serde(default)]
    spot: bool,
}

/// The local cloud. Cheap to clone; clones share one configuration.
#[derive(Clone, Debug)]
pub struct LocalCloud {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: LocalConfig,
    network: Ipv4Addr,
    tools: Tools,
    /// Serializes bootstrap within this process (it creates the bridge and the client key);
    /// true once it has completed, so later launches skip the bridge's address check.
    bootstrap_lock: tokio::sync::Mutex<bool>,
    /// Where instance cgroups go on this host, or why they can't; found at the first boot.
    cgroup_places: OnceLock<Result<cgroup::Places, String>>,
    /// Set once the "limits are not enforced" warning has been printed.
    warned_unconfined: AtomicBool,
}

impl LocalCloud {
    /// Checks the configuration, privileges and tools; creates nothing yet.
    pub fn new(config: LocalConfig) -> Result<Self, ProvisionError> {
        Self::new_inner(config).map_err(|err| err.during(Operation::Bootstrap))
    }

    fn new_inner(config: LocalConfig) -> Result<Self, LocalError> {
        let network = config
            .validate()
            .map_err(|reason| LocalError::InvalidConfig { reason })?;
        if !sys::has_required_capabilities() {
            return Err(LocalError::NotRoot);
        }
        let tools = Tools::find()?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                network,
                tools,
                bootstrap_lock: tokio::sync::Mutex::new(false),
                cgroup_places: OnceLock::new(),
                warned_unconfined: AtomicBool::new(false),
            }),
        })
    }

    pub fn config(&self) -> &LocalConfig {
        &self.inner.config
    }

    /// The user to log in as on every instance.
    pub const SSH_USER: &'static str = "root";

    /// The private key every instance authorizes (created by `bootstrap`). The public key is
    /// beside it with `.pub` appended.
    pub fn client_key_path(&self) -> PathBuf {
        self.inner.config.state_dir.join("client_key")
    }
}

impl Inner {
    fn instances_dir(&self) -> PathBuf {
        self.config.state_dir.join("instances")
    }

    fn instance_dir(&self, octet: u8) -> PathBuf {
        self.instances_dir().join(self.config.netns_name(octet))
    }

    fn address(&self, octet: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.network.octets();
        Ipv4Addr::new(a, b, c, octet)
    }

    fn check_region(&self, region: &str) -> Result<(), LocalError> {
        if region == LocalConfig::REGION {
            Ok(())
        } else {
            Err(LocalError::UnknownRegion {
                region: region.to_owned(),
                expected: LocalConfig::REGION,
            })
        }
    }

    async fn bootstrap(&self) -> Result<(), LocalError> {
        let mut bootstrapped = self.bootstrap_lock.lock().await;
        for dir in [self.instances_dir(), PathBuf::from("/run/sshd")] {
            create_dir_all(&dir)?;
        }
        let key = self.config.state_dir.join("client_key");
        if !key.exists() {
            let key_arg = key.to_string_lossy();
            let args = [
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "aloft-local-client",
                "-f",
            ];
            let mut args = args.to_vec();
            args.push(&key_arg);
            sys::run(&self.tools.ssh_keygen, &args, None).await?;
        }
        let bridge = &self.config.bridge;
        let mut batch = String::new();
        if !sys::link_exists(bridge) {
            self.check_subnet_is_free()?;
            let _ = writeln!(batch, "link add {bridge} type bridge");
        } else if *bootstrapped {
            return Ok(());
        }
        // `replace` and `set up` are idempotent, which also repairs a bridge left half-made.
        let host_address = self.address(1);
        let _ = writeln!(batch, "addr replace {host_address}/24 dev {bridge}");
        let _ = writeln!(batch, "link set {bridge} up");
        sys::run(&self.tools.ip, &["-batch", "-"], Some(&batch)).await?;
        *bootstrapped = true;
        Ok(())
    }

    /// Refuses a subnet that any host route (other than our own bridge's) overlaps: instances
    /// must never shadow a real network.
    fn check_subnet_is_free(&self) -> Result<(), LocalError> {
        let routes = sys::host_routes();
        match overlapping_route(self.network, &self.config.bridge, &routes) {
            None => Ok(()),
            Some((device, destination, prefix_len)) => Err(LocalError::SubnetOverlap {
                subnet: self.config.subnet.clone(),
                destination: *destination,
                prefix_len: *prefix_len,
                device: device.clone(),
            }),
        }
    }

    /// Claims the lowest free address: first in this cloud's state directory (creating the
    /// instance directory), then on the host (the owner marker of its namespace name, which
    /// another cloud with the same prefix may hold; that address is then skipped).
    fn allocate(&self) -> Result<u8, LocalError> {
        let own = self.owner_id();
        for octet in 2..=254u8 {
            let dir = self.instance_dir(octet);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(LocalError::Fs {
                        action: "creating instance directory",
                        path: dir,
                        source,
                    });
                }
            }
            match owner::claim(&self.config.netns_name(octet), &own) {
                Ok(true) => return Ok(octet),
                Ok(false) => remove_dir_all(&dir)?,
                Err(err) => {
                    let _ = remove_dir_all(&dir);
                    return Err(err);
                }
            }
        }
        Err(LocalError::AddressesExhausted {
            subnet: self.config.subnet.clone(),
        })
    }

    /// This cloud's identity in owner markers: its state directory.
    fn owner_id(&self) -> PathBuf {
        owner::owner_id(&self.config.state_dir)
    }

    /// Creates and boots one instance. If that fails (a boot timeout included), removes what it
    /// made, so a failed launch leaks nothing; only if that removal fails too does the instance
    /// stay, findable by `query`, for `terminate`.
    async fn create_one(
        &self,
        cluster: &ClusterName,
        node_idx: u32,
        zone: &str,
        instance_type: &str,
        spot: bool,
        open_ports: &OpenPorts,
    ) -> Result<InstanceInfo, LocalError> {
        let octet = self.allocate()?;
        let created = self
            .create_at(
                octet,
                cluster,
                node_idx,
                zone,
                instance_type,
                spot,
                open_ports,
            )
            .await;
        if created.is_err()
            && let Err(cleanup_err) = self.terminate_one(octet, None).await
        {
            eprintln!(
                "warning: the local cloud could not remove the failed instance {}: {cleanup_err}",
                self.config.netns_name(octet)
            );
        }
        created
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_at(
        &self,
        octet: u8,
        cluster: &ClusterName,
        node_idx: u32,
        zone: &str,
        instance_type: &str,
        spot: bool,
        open_ports: &OpenPorts,
    ) -> Result<InstanceInfo, LocalError> {
        let dir = self.instance_dir(octet);
        let meta = InstanceMeta {
            id: self.config.netns_name(octet),
            octet,
            cluster: cluster.clone(),
            node_idx,
            zone: zone.to_owned(),
            instance_type: instance_type.to_owned(),
            address: self.address(octet),
            hostname: format!("{cluster}-{node_idx}"),
            spot,
        };
        // Metadata first: from here on `query` sees the instance and `terminate` can undo it.
        write_file(
            &dir.join("meta.json"),
            &serde_json::to_vec_pretty(&meta).expect("plain data"),
            0o644,
        )?;
        self.write_disk(&dir).await?;
        let netns = &meta.id;
        let veth = self.config.veth_name(octet);
        let bridge = &self.config.bridge;
        let address = meta.address;
        // The address may have belonged to an instance terminated a moment ago, and the host
        // may still send it to that instance's MAC until the entry expires (up to a minute):
        // forget it, so the first packet to the new instance asks who has it. (The other
        // instances learn the new MAC from `announce_address` once it has booted.)
        let host_batch = format!(
            "netns add {netns}\n\
             link add {veth} type veth peer name eth0 netns {netns}\n\
             link set {veth} master {bridge} up\n\
             neigh flush to {address} dev {bridge}\n"
        );
        sys::run(&self.tools.ip, &["-batch", "-"], Some(&host_batch)).await?;
        let netns_batch = format!(
            "addr add {address}/24 dev eth0\n\
             link set eth0 up\n\
             link set lo up\n"
        );
        sys::run(
            &self.tools.ip,
            &["-n", netns, "-batch", "-"],
            Some(&netns_batch),
        )
        .await?;
        // Closed by default from the first packet; the cluster's members are added once all
        // of them exist.
        self.apply_firewall(&meta, &dir, open_ports, &[]).await?;
        self.boot(&meta, &dir).await?;
        self.info(&meta, InstanceState::Running)
    }

    /// The instance's "disk": its own /etc/ssh with a fresh host key, home and /tmp.
    async fn write_disk(&self, dir: &Path) -> Result<(), LocalError> {
        let etc_ssh = dir.join("etc-ssh");
        let home = dir.join("home");
        let ssh_dir = home.join(".ssh");
        let tmp = dir.join("tmp");
        for (path, mode) in [
            (&etc_ssh, 0o755),
            (&home, 0o700),
            (&ssh_dir, 0o700),
            (&tmp, 0o1777),
        ] {
            create_dir_all(path)?;
            set_mode(path, mode)?;
        }
        let client_public = self.config.state_dir.join("client_key.pub");
        let authorized = std::fs::read(&client_public).map_err(|source| LocalError::Fs {
            action: "reading the client public key",
            path: client_public,
            source,
        })?;
        write_file(&ssh_dir.join("authorized_keys"), &authorized, 0o600)?;
        write_file(&etc_ssh.join("sshd_config"), SSHD_CONFIG.as_bytes(), 0o644)?;
        let host_key = etc_ssh.join("ssh_host_ed25519_key");
        let host_key_arg = host_key.to_string_lossy();
        let args = [
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "aloft-local-host",
            "-f",
            &host_key_arg,
        ];
        sys::run(&self.tools.ssh_keygen, &args, None)
            .await
            .map(drop)
    }

    /// Starts the instance's init in its namespaces and waits until sshd accepts connections.
    /// Every boot rewrites `boot.sh` (so instances made by an older version boot the current
    /// way), re-creates the instance's cgroups and applies the slow-boot fault control of its
    /// zone.
    async fn boot(&self, meta: &InstanceMeta, dir: &Path) -> Result<(), LocalError> {
        let boot_script = format!(
            "#!/bin/sh\n\
             # PID 1 of an aloft local-cloud instance (see aloft-provider-local).\n\
             # $1 = hostname, $2 = the instance's state directory, $3 = seconds to delay sshd by\n\
             # (the slow-boot fault control).\n\
             set -eu\n\
             hostname \"$1\"\n\
             # Stage the instance's directory first: it may live under /root or /tmp, which the\n\
             # mounts below hide (this mount namespace is private, so the host sees nothing).\n\
             mkdir -p /run/aloft-instance\n\
             mount --bind \"$2\" /run/aloft-instance\n\
             # `ip netns exec` mounted a fresh /sys, without the host's cgroup mounts: mount the\n\
             # hierarchies again so the instance can read its own limits.\n\
             while read -r fstype options target; do\n\
             \x20 mkdir -p \"$target\" && mount -t \"$fstype\" -o \"$options\" \"$fstype\" \"$target\" \\\n\
             \x20   || echo \"aloft: could not mount $fstype at $target\" >&2\n\
             done < /run/aloft-instance/cgroup-mounts\n\
             # A container engine's state is the machine's own, as on a VM: its images and\n\
             # containers on the instance's disk, its run-time state fresh at every boot (one\n\
             # shared store would mix up containers whose processes live in other instances).\n\
             mkdir -p /run/aloft-instance/containers\n\
             for dir in /var/lib/containers /run/containers /run/libpod /run/crun; do\n\
             \x20 mkdir -p \"$dir\" || echo \"aloft: could not make $dir\" >&2\n\
             done\n\
             mount --bind /run/aloft-instance/containers /var/lib/containers \\\n\
             \x20 || echo \"aloft: no container store of its own\" >&2\n\
             for dir in /run/containers /run/libpod /run/crun; do\n\
             \x20 mount -t tmpfs -o mode=700 tmpfs \"$dir\" || echo \"aloft: no $dir of its own\" >&2\n\
             done\n\
             mount --bind /run/aloft-instance/etc-ssh /etc/ssh\n\
             # Its own /etc/hosts (a copy of the host's at first boot), as a VM has: a job\n\
             # group's names are added there, never to the host's.\n\
             [ -f /run/aloft-instance/hosts ] || cp /etc/hosts /run/aloft-instance/hosts \\\n\
             \x20 || : > /run/aloft-instance/hosts\n\
             mount --bind /run/aloft-instance/hosts /etc/hosts\n\
             mount --bind /run/aloft-instance/home /root\n\
             mount --bind /run/aloft-instance/tmp /tmp\n\
             if [ \"$3\" -gt 0 ]; then\n\
             \x20 echo \"aloft: slow boot: starting sshd in $3 s\" >&2\n\
             \x20 sleep \"$3\"\n\
             fi\n\
             exec '{sshd}' -D -e -f /etc/ssh/sshd_config\n",
            sshd = self.tools.sshd.display()
        );
        write_file(&dir.join("boot.sh"), boot_script.as_bytes(), 0o755)?;
        let mut limits = self.confine(meta, dir)?;
        let slow_boot = self.config.slow_boot(&meta.zone);
        let console_path = dir.join("console.log");
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&console_path)
            .map_err(|source| LocalError::Fs {
                action: "opening",
                path: console_path.clone(),
                source,
            })?;
        let console_err = console.try_clone().map_err(|source| LocalError::Fs {
            action: "opening",
            path: console_path.clone(),
            source,
        })?;
        // The launcher joins the instance's cgroups on the host, before anything of the
        // instance exists, so all of it inherits them; inside, `ip netns exec` has mounted a
        // fresh /sys where the host's cgroup paths don't exist. A failed join leaves the
        // instance unconfined (checked below), not unbooted.
        let mut command = std::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(
                "while read -r cgroup; do \
                   echo $$ > \"$cgroup/cgroup.procs\" || echo \"aloft: could not join cgroup $cgroup\" >&2; \
                 done < \"$0\"; exec \"$@\"",
            )
            .arg(dir.join("cgroups"))
            .arg(&self.tools.setsid)
            .arg(&self.tools.ip)
            .args(["netns", "exec", &meta.id])
            .arg(&self.tools.unshare)
            .args([
                "--uts",
                "--pid",
                "--mount-proc",
                "--fork",
                "--kill-child",
                "/bin/sh",
            ])
            .arg(dir.join("boot.sh"))
            .arg(&meta.hostname)
            .arg(dir)
            .arg(slow_boot.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(console)
            .stderr(console_err);
        let mut child = command.spawn().map_err(|source| LocalError::Spawn {
            command: format!("setsid ip netns exec {} unshare … boot.sh", meta.id),
            source,
        })?;
        // sh, setsid and `ip netns exec` exec their successors, so this is the `unshare`
        // launcher, parent of the instance's PID 1.
        let launcher_pid = child.id();
        write_file(
            &dir.join("launcher.pid"),
            format!("{launcher_pid}\n").as_bytes(),
            0o644,
        )?;
        // Reap the launcher whenever it exits, so no zombie outlives the instance.
        std::thread::spawn(move || child.wait());
        self.wait_for_sshd(meta, dir, launcher_pid, slow_boot)
            .await?;
        if let Err(err) = self.announce_address(meta).await {
            eprintln!(
                "warning: instance {} could not announce its address {} (other instances may \
                 reach it only once their neighbour entry for it expires): {err}",
                meta.id, meta.address
            );
        }
        // Enforced only if the init really joined every cgroup (it may not be allowed to).
        if !limits.cgroups.is_empty() {
            let joined = limits.cgroups.iter().all(|cgroup| {
                std::fs::read_to_string(cgroup.join("cgroup.procs"))
                    .is_ok_and(|pids| !pids.trim().is_empty())
            });
            limits.enforced = joined;
            if !joined {
                limits.not_enforced_because = Some(format!(
                    "the instance's launcher could not join its cgroups {:?} (see {})",
                    limits.cgroups,
                    dir.join("console.log").display()
                ));
            }
        }
        if let Some(reason) = &limits.not_enforced_because
            && !self.warned_unconfined.swap(true, Ordering::Relaxed)
        {
            eprintln!(
                "warning: the local cloud runs instances without vCPU and memory limits on this \
                 host: {reason}"
            );
        }
        write_limits(dir, &limits)
    }

    /// Sends a gratuitous ARP from the instance, so that every instance still holding a
    /// neighbour entry for its address from an instance terminated a moment ago updates it to
    /// the new MAC (the host's own entry was flushed at creation). With `arp_notify` on,
    /// setting `eth0`'s address (to the one it has) sends it; `arping` would do the same but
    /// is not always installed. Done once sshd has answered through the bridge: the
    /// announcement `arp_notify` makes when `eth0` comes up is lost, because the bridge port
    /// starts forwarding only a moment later.
    async fn announce_address(&self, meta: &InstanceMeta) -> Result<(), LocalError> {
        let script = "echo 1 > /proc/sys/net/ipv4/conf/eth0/arp_notify && \
             \"$0\" link set eth0 address \"$(cat /sys/class/net/eth0/address)\"";
        let ip = self.tools.ip.to_string_lossy();
        sys::run(
            &self.tools.ip,
            &["netns", "exec", &meta.id, "/bin/sh", "-c", script, &ip],
            None,
        )
        .await
        .map(drop)
    }

    /// Where instance cgroups go on this host (found once), or why they can't be made.
    fn cgroup_places(&self) -> Result<&cgroup::Places, String> {
        self.cgroup_places
            .get_or_init(cgroup::Places::find)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Creates the instance's cgroups with its type's limits and records what the launcher
    /// joins (`cgroups`) and what `boot.sh` mounts to show them inside (`cgroup-mounts`). Where that is impossible, the
    /// files are empty and the instance boots unconfined; the returned limits say why.
    fn confine(&self, meta: &InstanceMeta, dir: &Path) -> Result<InstanceLimits, LocalError> {
        let ty = self.config.instance_type(&meta.instance_type);
        let outcome = match ty {
            None => Err(format!(
                "instance type {} is no longer in the local cloud's configuration",
                meta.instance_type
            )),
            Some(ty) => self.cgroup_places().and_then(|places| {
                let dirs = places.create(&meta.id, ty.vcpus, ty.memory_gib)?;
                Ok((dirs, places.mount_lines()))
            }),
        };
        let (cgroups, mounts, reason) = match outcome {
            Ok((dirs, mounts)) => (dirs, mounts, None),
            Err(reason) => (Vec::new(), String::new(), Some(reason)),
        };
        let mut listed = String::new();
        for cgroup in &cgroups {
            let _ = writeln!(listed, "{}", cgroup.display());
        }
        write_file(&dir.join("cgroups"), listed.as_bytes(), 0o644)?;
        write_file(&dir.join("cgroup-mounts"), mounts.as_bytes(), 0o644)?;
        let limits = InstanceLimits {
            vcpus: ty.map_or(0, |ty| ty.vcpus),
            memory_gib: ty.map_or(0, |ty| ty.memory_gib),
            enforced: false,
            cgroups,
            not_enforced_because: reason,
        };
        // Recorded before the boot, so a failed boot's cgroups are found and removed.
        write_limits(dir, &limits)?;
        Ok(limits)
    }

    /// The instance's cgroup directories: those its `limits.json` records and those this
    /// process would make for it (they differ only if the instance was booted by a process in
    /// another cgroup).
    fn cgroup_dirs(&self, octet: u8) -> Vec<PathBuf> {
        let mut dirs = read_limits(&self.instance_dir(octet))
            .map(|limits| limits.cgroups)
            .unwrap_or_default();
        if let Ok(places) = self.cgroup_places() {
            for dir in places.dirs(&self.config.netns_name(octet)) {
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
        dirs
    }

    /// Waits until the instance's sshd accepts TCP connections, for at most the boot timeout.
    /// Each attempt has its own short deadline, so a connection whose packets go nowhere (a
    /// stale neighbour entry, a partition) is retried rather than waited on for the kernel's
    /// two minutes of SYN retransmissions; a wait longer than [`BOOT_WAIT_NOTE_AFTER`] is
    /// mentioned once on stderr, so a slow launch says what it waits for.
    async fn wait_for_sshd(
        &self,
        meta: &InstanceMeta,
        dir: &Path,
        launcher_pid: u32,
        slow_boot: u64,
    ) -> Result<(), LocalError> {
        let target = SocketAddr::from((meta.address, 22));
        let timeout = Duration::from_secs(self.config.boot_timeout_secs);
        let started = Instant::now();
        let mut noted = false;
        loop {
            let remaining = timeout.saturating_sub(started.elapsed());
            let attempt = BOOT_CONNECT_ATTEMPT
                .min(remaining)
                .max(Duration::from_millis(1));
            if let Ok(Ok(_stream)) =
                tokio::time::timeout(attempt, tokio::net::TcpStream::connect(target)).await
            {
                return Ok(());
            }
            if !Path::new(&format!("/proc/{launcher_pid}")).exists() {
                return Err(LocalError::BootFailed {
                    instance: meta.id.clone(),
                    console_tail: console_tail(dir),
                });
            }
            let slow_boot_note = || {
                if slow_boot > 0 {
                    format!(
                        " (the slow-boot fault control delays sshd in zone {} by {slow_boot} s)",
                        meta.zone
                    )
                } else {
                    String::new()
                }
            };
            if started.elapsed() > timeout {
                return Err(LocalError::BootTimeout {
                    instance: meta.id.clone(),
                    address: meta.address,
                    secs: self.config.boot_timeout_secs,
                    slow_boot_note: slow_boot_note(),
                });
            }
            if !noted && started.elapsed() > BOOT_WAIT_NOTE_AFTER {
                noted = true;
                eprintln!(
                    "note: waiting for instance {}'s sshd on {target} to accept connections \
                     (up to {} s){}",
                    meta.id,
                    self.config.boot_timeout_secs,
                    slow_boot_note()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every instance directory with readable metadata, for one cluster or all.
    fn list(
        &self,
        cluster: Option<&ClusterName>,
    ) -> Result<Vec<(InstanceMeta, PathBuf)>, LocalError> {
        let instances_dir = self.instances_dir();
        let entries = match std::fs::read_dir(&instances_dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(LocalError::Fs {
                    action: "listing",
                    path: instances_dir,
                    source,
                });
            }
        };
        let mut found = Vec::new();
        for entry in entries.filter_map(|entry| entry.ok()) {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if instance_octet(&self.config.name_prefix, &name, '-').is_none() {
                continue;
            }
            let meta_path = entry.path().join("meta.json");
            let text = match std::fs::read(&meta_path) {
                // Empty: cut short by a process killed while writing it (before metadata was
                // written whole), before the instance had anything but this directory.
                Ok(text) if text.is_empty() => continue,
                Ok(text) => text,
                // Claimed a moment ago and not yet described: not an instance yet.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(LocalError::Fs {
                        action: "reading",
                        path: meta_path,
                        source,
                    });
                }
            };
            let meta: InstanceMeta =
                serde_json::from_slice(&text).map_err(|source| LocalError::BadMetadata {
                    path: meta_path,
                    source,
                })?;
            if cluster.is_none_or(|cluster| *cluster == meta.cluster) {
                found.push((meta, entry.path()));
            }
        }
        found.sort_by_key(|(meta, _)| (meta.node_idx, meta.octet));
        Ok(found)
    }

    /// What the host shows of the instance. `launcher.pid` is written once the first boot has
    /// started, so without it the instance is still being created (`Pending`); with it, an
    /// instance whose namespace is gone, or which has no process left, wasn't stopped and isn't
    /// booting, has died (`Terminated`), as has a preempted one.
    ///
    /// An instance that ran [`power_off_command`] is `Stopping` or `Terminating` until its last
    /// process has exited, then `Stopped` or `Terminated` (until [`Inner::reconcile`] turns it
    /// into a plain stopped instance or removes it).
    fn state_of(&self, meta: &InstanceMeta, dir: &Path) -> InstanceState {
        if dir.join(PREEMPTED).exists() {
            return InstanceState::Terminated;
        }
        if let Some(request) = power_off_request(dir) {
            let going_down = !sys::netns_pids(&meta.id).is_empty();
            return match (request, going_down) {
                (PowerOff::Stop, true) => InstanceState::Stopping,
                (PowerOff::Stop, false) => InstanceState::Stopped,
                (PowerOff::Terminate, true) => InstanceState::Terminating,
                (PowerOff::Terminate, false) => InstanceState::Terminated,
            };
        }
        let launcher_pid = std::fs::read_to_string(dir.join("launcher.pid"))
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        if !sys::netns_exists(&meta.id) {
            return match launcher_pid {
                None => InstanceState::Pending,
                Some(_) => InstanceState::Terminated,
            };
        }
        if !sys::netns_pids(&meta.id).is_empty() {
            return InstanceState::Running;
        }
        if dir.join(STOPPED).exists() {
            return InstanceState::Stopped;
        }
        match launcher_pid {
            None => InstanceState::Pending,
            // Spawned, not yet inside the namespace.
            Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => InstanceState::Pending,
            Some(_) => InstanceState::Terminated,
        }
    }

    fn info(&self, meta: &InstanceMeta, state: InstanceState) -> Result<InstanceInfo, LocalError> {
        let key_path = self
            .instance_dir(meta.octet)
            .join("etc-ssh/ssh_host_ed25519_key.pub");
        let ssh_host_key = match std::fs::read_to_string(&key_path) {
            Ok(line) => {
                // Keep `type base64`, drop the comment.
                let mut fields = line.split_whitespace();
                match (fields.next(), fields.next()) {
                    (Some(kind), Some(key)) => Some(format!("{kind} {key}")),
                    _ => None,
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(LocalError::Fs {
                    action: "reading",
                    path: key_path,
                    source,
                });
            }
        };
        Ok(InstanceInfo {
            id: meta.id.clone(),
            cluster: meta.cluster.clone(),
            node_idx: meta.node_idx,
            zone: meta.zone.clone(),
            instance_type: meta.instance_type.clone(),
            state,
            private_address: Some(IpAddr::V4(meta.address)),
            public_address: None,
            ssh_host_key,
        })
    }

    /// Replaces the instance's firewall table and records its open ports in `ports.json`.
    async fn apply_firewall(
        &self,
        meta: &InstanceMeta,
        dir: &Path,
        open_ports: &OpenPorts,
        peers: &[Ipv4Addr],
    ) -> Result<(), LocalError> {
        // The cluster's members, and the peers another cluster's job group admitted.
        let mut peers = peers.to_vec();
        peers.extend(read_admitted(dir)?);
        let rules = firewall::ruleset(open_ports, &peers);
        let nft = self.tools.nft.to_string_lossy();
        let args = ["netns", "exec", &meta.id, &nft, "-f", "-"];
        sys::run(&self.tools.ip, &args, Some(&rules)).await?;
        let json = serde_json::to_vec(open_ports).expect("plain data");
        write_file(&dir.join("ports.json"), &json, 0o644)
    }

    /// The ports opened for the cluster, as recorded by its members (they all agree unless a
    /// change was interrupted; then the first member's record wins and the next change heals).
    fn cluster_open_ports(
        &self,
        members: &[(InstanceMeta, PathBuf)],
    ) -> Result<OpenPorts, LocalError> {
        for (_meta, dir) in members {
            let path = dir.join("ports.json");
            match std::fs::read(&path) {
                Ok(json) => {
                    return serde_json::from_slice(&json)
                        .map_err(|source| LocalError::BadMetadata { path, source });
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(LocalError::Fs {
                        action: "reading",
                        path,
                        source,
                    });
                }
            }
        }
        Ok(OpenPorts::default())
    }

    /// Applies `open_ports` and the member list to every member of the cluster.
    async fn refresh_firewalls(
        &self,
        members: &[(InstanceMeta, PathBuf)],
        open_ports: &OpenPorts,
    ) -> Result<(), LocalError> {
        let peers: Vec<Ipv4Addr> = members.iter().map(|(meta, _)| meta.address).collect();
        for (meta, dir) in members {
            if sys::netns_exists(&meta.id) {
                self.apply_firewall(meta, dir, open_ports, &peers).await?;
            }
        }
        Ok(())
    }

    /// `admit_peers`: records the addresses on every member (`admitted.json`, read by every
    /// later firewall change) and applies them.
    async fn admit(&self, cluster: &ClusterName, peers: &[IpAddr]) -> Result<(), LocalError> {
        let members = self.list(Some(cluster))?;
        let v4: Vec<Ipv4Addr> = peers
            .iter()
            .filter_map(|peer| match peer {
                IpAddr::V4(address) => Some(*address),
                IpAddr::V6(_) => None,
            })
            .collect();
        let json = serde_json::to_vec(&v4).expect("plain data");
        for (_meta, dir) in &members {
            write_file(&dir.join(ADMITTED_FILE), &json, 0o644)?;
        }
        let open_ports = self.cluster_open_ports(&members)?;
        self.refresh_firewalls(&members, &open_ports).await
    }

    /// `open_ports` and `close_ports`: edit the cluster's open ports and apply them everywhere.
    async fn change_ports(
        &self,
        cluster: &ClusterName,
        ports: &[PortRange],
        open: bool,
    ) -> Result<(), LocalError> {
        let members = self.list(Some(cluster))?;
        let mut open_ports = self.cluster_open_ports(&members)?;
        for range in ports {
            if open {
                open_ports.open(range.first, range.last);
            } else {
                open_ports.close(range.first, range.last);
            }
        }
        self.refresh_firewalls(&members, &open_ports).await
    }

    /// Removes the instance at `.octet` completely, under its lock (so it never races a
    /// reconciliation or a `terminate` in another process). With `expected`, only if that is
    /// still the instance there (the address may have been released and taken again while
    /// this waited for the lock). Done when the instance is already gone.
    async fn terminate_one(
        &self,
        octet: u8,
        expected: Option<&InstanceMeta>,
    ) -> Result<(), LocalError> {
        let Some(_lock) = self.lock_instance(octet, expected).await? else {
            return Ok(());
        };
        self.terminate_locked(octet).await
    }

    /// Takes the lock of the instance at `.octet`: an exclusive `flock` on
    /// `<state_dir>/locks/<prefix>-<octet>`, waiting while another process (or task) holds it.
    /// The lock files live outside the instance directories and are never removed (one per
    /// address at most), so removing an instance can't race with opening its lock. `None` when
    /// the instance is gone, or (with `expected`) is no longer that instance; the caller must
    /// then do nothing.
    async fn lock_instance(
        &self,
        octet: u8,
        expected: Option<&InstanceMeta>,
    ) -> Result<Option<std::fs::File>, LocalError> {
        let locks = self.config.state_dir.join("locks");
        create_dir_all(&locks)?;
        let path = locks.join(self.config.netns_name(octet));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| LocalError::Fs {
                action: "opening",
                path: path.clone(),
                source,
            })?;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(LocalError::Fs {
                        action: "locking",
                        path,
                        source,
                    });
                }
            }
        }
        // Look again: the previous holder may have removed the instance.
        let dir = self.instance_dir(octet);
        if !dir.exists() {
            return Ok(None);
        }
        if let Some(expected) = expected {
            let current: Option<InstanceMeta> = std::fs::read(dir.join("meta.json"))
                .ok()
                .and_then(|json| serde_json::from_slice(&json).ok());
            let same = current.is_some_and(|current| {
                current.cluster == expected.cluster && current.node_idx == expected.node_idx
            });
            if !same {
                return Ok(None);
            }
        }
        Ok(Some(file))
    }

    /// [`Inner::terminate_one`] for a caller holding the instance's lock. The namespace and
    /// veth go only if they are this cloud's (its marker, or none: made before markers); if
    /// another cloud has claimed the name since (after an interrupted terminate released it),
    /// only this cloud's directory is removed.
    async fn terminate_locked(&self, octet: u8) -> Result<(), LocalError> {
        let netns = self.config.netns_name(octet);
        let own = self.owner_id();
        if owner::owner_of(&netns).is_some_and(|owner| owner != own) {
            return remove_dir_all(&self.instance_dir(octet));
        }
        let veth = self.config.veth_name(octet);
        sys::kill_netns_processes(&self.tools.kill, &netns).await?;
        cgroup::remove(&self.tools.kill, &self.cgroup_dirs(octet)).await?;
        // Delete the veth explicitly: `ip netns del` would remove it asynchronously, and the
        // name may be reused right away. A failure is fine if the link is gone anyway.
        if sys::link_exists(&veth)
            && let Err(err) = sys::run(&self.tools.ip, &["link", "del", &veth], None).await
            && sys::link_exists(&veth)
        {
            return Err(err);
        }
        if sys::netns_exists(&netns)
            && let Err(err) = sys::run(&self.tools.ip, &["netns", "del", &netns], None).await
            && sys::netns_exists(&netns)
        {
            return Err(err);
        }
        // Last: releasing the directory releases the address in this cloud, then the marker
        // on the host (in that order, so an interruption leaves a marker of ours, which only
        // we reuse, rather than a directory of ours on a name someone else may take).
        remove_dir_all(&self.instance_dir(octet))?;
        owner::release(&netns, &own)
    }

    /// Carries out what [`power_off_command`] asked for once the instance has gone down: a
    /// stopped instance becomes an ordinary stopped one (as after `stop`: disk kept, network
    /// cut, `start` brings it back), a terminated one is removed completely. Returns whether the
    /// instance still exists. Idempotent, and safe against other processes doing the same at
    /// once: the work happens under the instance's lock, after looking again.
    async fn reconcile(&self, meta: &InstanceMeta, dir: &Path) -> Result<bool, LocalError> {
        if power_off_request(dir).is_none() || !sys::netns_pids(&meta.id).is_empty() {
            return Ok(true);
        }
        let Some(_lock) = self.lock_instance(meta.octet, Some(meta)).await? else {
            return Ok(false);
        };
        if !sys::netns_pids(&meta.id).is_empty() {
            return Ok(true);
        }
        match power_off_request(dir) {
            None => Ok(true),
            Some(PowerOff::Stop) => {
                self.mark_stopped(meta, dir).await?;
                remove_file(&dir.join(POWER_OFF))?;
                Ok(true)
            }
            Some(PowerOff::Terminate) => {
                self.terminate_locked(meta.octet).await?;
                Ok(false)
            }
        }
    }

    /// Before `stop` or `start`: lets an instance that is powering itself off finish (for up to
    /// [`POWER_OFF_GRACE`]), then reconciles it. Returns whether the instance still exists.
    async fn settle_power_off(&self, meta: &InstanceMeta, dir: &Path) -> Result<bool, LocalError> {
        if power_off_request(dir).is_none() {
            return Ok(true);
        }
        let deadline = Instant::now() + POWER_OFF_GRACE;
        while !sys::netns_pids(&meta.id).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Still running after the grace period: `stop` kills it, `start` keeps it.
        self.reconcile(meta, dir).await
    }

    /// Records the instance as stopped and cuts its network: while stopped, clients see
    /// timeouts (as with a stopped VM), not refusals.
    async fn mark_stopped(&self, meta: &InstanceMeta, dir: &Path) -> Result<(), LocalError> {
        write_file(&dir.join(STOPPED), b"", 0o644)?;
        let veth = self.config.veth_name(meta.octet);
        if sys::link_exists(&veth) {
            sys::run(&self.tools.ip, &["link", "set", &veth, "down"], None).await?;
        }
        Ok(())
    }

    async fn stop_one(&self, meta: &InstanceMeta, dir: &Path) -> Result<(), LocalError> {
        if dir.join(PREEMPTED).exists() || !self.settle_power_off(meta, dir).await? {
            return Ok(());
        }
        write_file(&dir.join(STOPPED), b"", 0o644)?;
        sys::kill_netns_processes(&self.tools.kill, &meta.id).await?;
        self.mark_stopped(meta, dir).await?;
        // A power-off that outlived its grace period is overtaken by this stop.
        remove_file(&dir.join(POWER_OFF))
    }

    async fn start_one(&self, meta: &InstanceMeta, dir: &Path) -> Result<(), LocalError> {
        // A preempted instance is gone: `start` leaves it terminated; so does a powered-off
        // one that asked to be terminated.
        if dir.join(PREEMPTED).exists() || !self.settle_power_off(meta, dir).await? {
            return Ok(());
        }
        if power_off_request(dir).is_some() {
            // A power-off that didn't finish within the grace period (e.g. requested while
            // `boot.sh`, which ignores SIGTERM, was still PID 1): start from scratch.
            sys::kill_netns_processes(&self.tools.kill, &meta.id).await?;
            remove_file(&dir.join(POWER_OFF))?;
        }
        if self.state_of(meta, dir) == InstanceState::Running {
            return Ok(());
        }
        let veth = self.config.veth_name(meta.octet);
        sys::run(&self.tools.ip, &["link", "set", &veth, "up"], None).await?;
        self.boot(meta, dir).await?;
        remove_file(&dir.join(STOPPED))
    }

    /// The instance (or, after an interrupted create, instances) of `cluster` with `node_idx`.
    fn node(
        &self,
        cluster: &ClusterName,
        node_idx: u32,
    ) -> Result<Vec<(InstanceMeta, PathBuf)>, LocalError> {
        let found: Vec<_> = self
            .list(Some(cluster))?
            .into_iter()
            .filter(|(meta, _)| meta.node_idx == node_idx)
            .collect();
        if found.is_empty() {
            return Err(LocalError::NoSuchNode {
                cluster: cluster.clone(),
                node_idx,
            });
        }
        Ok(found)
    }

    /// Marks the instance preempted (so `query`, `stop` and `start` treat it as gone even if
    /// what follows is interrupted), cuts its network, then kills its processes.
    async fn preempt_one(&self, meta: &InstanceMeta, dir: &Path) -> Result<(), LocalError> {
        write_file(&dir.join(PREEMPTED), b"", 0o644)?;
        let veth = self.config.veth_name(meta.octet);
        if sys::link_exists(&veth) {
            sys::run(&self.tools.ip, &["link", "set", &veth, "down"], None).await?;
        }
        sys::kill_netns_processes(&self.tools.kill, &meta.id).await
    }

    async fn partition_one(&self, meta: &InstanceMeta, isolated: bool) -> Result<(), LocalError> {
        if !sys::netns_exists(&meta.id) {
            // Terminated meanwhile: nothing left to cut off.
            return Ok(());
        }
        let rules = firewall::partition_ruleset(isolated);
        let nft = self.tools.nft.to_string_lossy();
        let args = ["netns", "exec", &meta.id, &nft, "-f", "-"];
        sys::run(&self.tools.ip, &args, Some(&rules))
            .await
            .map(drop)
    }
}

/// Marker file in an instance directory: stopped, with its disk kept.
const STOPPED: &str = "stopped";
/// Marker file in an instance directory: preempted, gone for good (the disk waits for
/// `terminate`).
const PREEMPTED: &str = "preempted";
/// Marker file in an instance directory, written from inside by [`power_off_command`]: `stop`
/// or `terminate`.
const POWER_OFF: &str = "power-off";
/// How long one attempt to connect to a booting instance's sshd may take: far more than a
/// connection on a bridge needs, far less than the kernel's SYN retransmissions.
const BOOT_CONNECT_ATTEMPT: Duration = Duration::from_secs(1);
/// After how long a boot wait is mentioned on stderr.
const BOOT_WAIT_NOTE_AFTER: Duration = Duration::from_secs(5);
/// How long `stop` and `start` wait for an instance that is powering itself off.
const POWER_OFF_GRACE: Duration = Duration::from_secs(5);

/// Where an instance's own state directory is mounted inside it.
const INSTANCE_DIR_INSIDE: &str = "/run/aloft-instance";

/// What an instance asked for with [`power_off_command`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PowerOff {
    Stop,
    Terminate,
}

/// The instance's power-off request, if it made one.
fn power_off_request(dir: &Path) -> Option<PowerOff> {
    let text = std::fs::read_to_string(dir.join(POWER_OFF)).ok()?;
    // Anything but an explicit `terminate` keeps the disk: the safer reading.
    Some(if text.trim() == "terminate" {
        PowerOff::Terminate
    } else {
        PowerOff::Stop
    })
}

/// A shell snippet that powers off the local-cloud instance it runs in, like `poweroff` in a
/// VM: run it as root inside an instance (e.g. over SSH, by an agent implementing autostop).
/// It records the request (`stop`, or `terminate` when `terminate` is true) in the instance's
/// own state directory (`/run/aloft-instance/power-off` inside, written atomically), then ends
/// the instance by sending SIGTERM to its PID 1 (its sshd, which exits on SIGTERM; when a PID
/// namespace's init exits, the kernel kills everything else in it).
///
/// The signal is sent by a detached process 0.2 s after the snippet returns, so the command
/// itself exits 0 and the SSH session closes normally instead of being cut mid-command; then
/// every connection to the instance drops. Outside an instance (no `/run/aloft-instance`) it
/// fails with a message and changes nothing.
///
/// The host side notices on the next `query`, `stop` or `start` (there is no daemon watching):
/// until the instance is down it reports `Stopping`/`Terminating`, then a stopped instance is
/// `Stopped` exactly as after `Provider::stop` (disk kept; `start` boots it again) and a
/// terminated one is removed completely (namespace, veth, cgroups, state directory) and no
/// longer listed.
pub fn power_off_command(terminate: bool) -> String {
    let request = if terminate { "terminate" } else { "stop" };
    let dir = INSTANCE_DIR_INSIDE;
    format!(
        "if [ -d {dir} ] && [ -f {dir}/meta.json ]; then \
         printf '%s\\n' {request} > {dir}/{POWER_OFF}.new && \
         mv -f {dir}/{POWER_OFF}.new {dir}/{POWER_OFF} && \
         {{ setsid sh -c 'sleep 0.2; kill -TERM 1' </dev/null >/dev/null 2>&1 & }}; \
         else echo 'not inside an aloft local-cloud instance ({dir} is missing)' >&2; false; fi"
    )
}

fn write_limits(dir: &Path, limits: &InstanceLimits) -> Result<(), LocalError> {
    let json = serde_json::to_vec_pretty(limits).expect("plain data");
    write_file(&dir.join("limits.json"), &json, 0o644)
}

fn read_limits(dir: &Path) -> Option<InstanceLimits> {
    let json = std::fs::read(dir.join("limits.json")).ok()?;
    serde_json::from_slice(&json).ok()
}

/// The addresses another cluster admitted with `admit_peers`, in an instance's directory.
const ADMITTED_FILE: &str = "admitted.json";

/// The peers recorded in an instance's directory by `admit_peers` (none if it never was).
fn read_admitted(dir: &Path) -> Result<Vec<Ipv4Addr>, LocalError> {
    let path = dir.join(ADMITTED_FILE);
    match std::fs::read(&path) {
        Ok(json) => {
            serde_json::from_slice(&json).map_err(|source| LocalError::BadMetadata { path, source })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(LocalError::Fs {
            action: "reading",
            path,
            source,
        }),
    }
}

/// sshd's configuration inside every instance; `/etc/ssh` there is the instance's own.
const SSHD_CONFIG: &str = "\
# Written by aloft's local cloud; /etc/ssh is this instance's own directory.
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
Subsystem sftp internal-sftp
";

impl LocalCloud {
    /// Runs `action` on every listed instance at once.
    async fn on_each<F, Fut>(
        &self,
        listed: Vec<(InstanceMeta, PathBuf)>,
        action: F,
    ) -> Result<(), LocalError>
    where
        F: Fn(Arc<Inner>, InstanceMeta, PathBuf) -> Fut,
        Fut: Future<Output = Result<(), LocalError>> + Send + 'static,
    {
        let mut tasks = tokio::task::JoinSet::new();
        for (meta, dir) in listed {
            tasks.spawn(action(Arc::clone(&self.inner), meta, dir));
        }
        join_all(tasks).await.map(drop)
    }
}

/// Fault controls: what a cloud does to instances without being asked. Only the local cloud has
/// them, so they are methods here rather than part of [`Provider`]. The provider contract names no
/// operation for them, so their errors carry the nearest one: [`Operation::Terminate`] for
/// `preempt`, [`Operation::ClosePorts`] and [`Operation::OpenPorts`] for cutting and restoring a
/// partition. A node index the cluster doesn't have is [`ProvisionError::NotFound`].
impl LocalCloud {
    /// Preempts node `node_idx` of `cluster` the way a spot VM vanishes: first its network is cut
    /// (its host-side veth goes down: open connections hang, new ones time out, or fail as
    /// unreachable once the host's ARP entry has expired; never refused), then every process in
    /// it is killed (sshd, init, anything started over SSH). Its disk (the state directory) stays
    /// until `terminate`.
    ///
    /// Afterwards [`Provider::query`] reports the instance as [`InstanceState::Terminated`] and
    /// `stop` and `start` leave it so; `terminate` of the cluster removes it completely.
    /// [`ClusterState::of`](aloft_provision::ClusterState::of) counts terminated instances as
    /// absent, so a two-node cluster with one node preempted summarizes as `Up` (the survivors
    /// all run), and as `Terminated` once every node is preempted: to see the loss, compare the
    /// running node indices with the cluster's size. `create_instances` does not replace the
    /// node (its index stays taken until `terminate`). Idempotent.
    pub async fn preempt(
        &self,
        cluster: &ClusterName,
        node_idx: u32,
    ) -> Result<(), ProvisionError> {
        let operation = Operation::Terminate;
        let inner = &self.inner;
        for (meta, dir) in inner
            .node(cluster, node_idx)
            .map_err(|err| err.during(operation))?
        {
            inner
                .preempt_one(&meta, &dir)
                .await
                .map_err(|err| err.during(operation))?;
        }
        Ok(())
    }

    /// The resource limits of node `node_idx` of `cluster` as of its last boot: its type's
    /// vCPUs and memory, whether the host enforces them with cgroups, its cgroup directories,
    /// and why not when it doesn't. Before the first boot, nothing is enforced yet.
    pub async fn limits(
        &self,
        cluster: &ClusterName,
        node_idx: u32,
    ) -> Result<InstanceLimits, ProvisionError> {
        let operation = Operation::Query;
        let found = self
            .inner
            .node(cluster, node_idx)
            .map_err(|err| err.during(operation))?;
        let (meta, dir) = &found[0];
        Ok(read_limits(dir).unwrap_or_else(|| {
            let ty = self.inner.config.instance_type(&meta.instance_type);
            InstanceLimits {
                vcpus: ty.map_or(0, |ty| ty.vcpus),
                memory_gib: ty.map_or(0, |ty| ty.memory_gib),
                enforced: false,
                cgroups: Vec::new(),
                not_enforced_because: Some("the instance has not booted yet".to_owned()),
            }
        }))
    }

    /// Whether node `node_idx` of `cluster` was launched as spot (`CreateRequest::use_spot`);
    /// `InstanceInfo` has no field for it.
    pub async fn is_spot(
        &self,
        cluster: &ClusterName,
        node_idx: u32,
    ) -> Result<bool, ProvisionError> {
        let found = self
            .inner
            .node(cluster, node_idx)
            .map_err(|err| err.during(Operation::Query))?;
        Ok(found[0].0.spot)
    }

    /// Cuts node `node_idx` of `cluster` off the network (`isolated = true`) or reconnects it
    /// (`false`), without touching its processes. While isolated, every packet in or out is
    /// dropped, except on the instance's loopback: the host, the other nodes and the instance
    /// itself see timeouts (not refusals), established connections included; after reconnecting,
    /// the same sshd answers again and connections still within TCP's retransmission window
    /// resume.
    ///
    /// [`Provider::query`] keeps reporting an isolated instance as running: a cloud's API can't
    /// tell a partitioned VM from a healthy one either. The partition survives `open_ports`,
    /// `close_ports` and `stop`; `start` of an isolated instance fails with a boot timeout, as
    /// its sshd can't be reached. Both directions are idempotent.
    pub async fn partition(
        &self,
        cluster: &ClusterName,
        node_idx: u32,
        isolated: bool,
    ) -> Result<(), ProvisionError> {
        let operation = if isolated {
            Operation::ClosePorts
        } else {
            Operation::OpenPorts
        };
        let inner = &self.inner;
        for (meta, _dir) in inner
            .node(cluster, node_idx)
            .map_err(|err| err.during(operation))?
        {
            inner
                .partition_one(&meta, isolated)
                .await
                .map_err(|err| err.during(operation))?;
        }
        Ok(())
    }
}

/// Waits for every task, even after a failure, so nothing is left half-done in the background;
/// the first error wins.
async fn join_all<T: 'static>(
    mut tasks: tokio::task::JoinSet<Result<T, LocalError>>,
) -> Result<Vec<T>, LocalError> {
    let mut done = Vec::new();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(value)) => done.push(value),
            Ok(Err(err)) => {
                first_error.get_or_insert(err);
            }
            Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
        }
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(done),
    }
}

#[async_trait]
impl Provider for LocalCloud {
    fn id(&self) -> &str {
        "local"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            spot: true,
            stop_start: true,
            stop_spot: true,
            multi_node: true,
            open_ports: true,
        }
    }

    /// [`power_off_command`]: the instance records the request and ends its PID 1; the next
    /// `query` reconciles it into stopped or removed.
    fn power_off_command(&self, terminate: bool) -> Option<String> {
        Some(power_off_command(terminate))
    }

    async fn bootstrap(&self, region: &str) -> Result<(), ProvisionError> {
        let operation = Operation::Bootstrap;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        inner.bootstrap().await.map_err(|err| err.during(operation))
    }

    async fn create_instances(
        &self,
        request: &CreateRequest,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        let operation = Operation::CreateInstances;
        let inner = &self.inner;
        inner
            .check_region(&request.region)
            .map_err(|err| err.during(operation))?;
        inner
            .bootstrap()
            .await
            .map_err(|err| err.during(operation))?;
        let zone = request
            .zone
            .clone()
            .unwrap_or_else(|| inner.config.default_zone().to_owned());
        if !inner.config.zones.contains(&zone) {
            let known = inner.config.zones.join(", ");
            return Err(LocalError::UnknownZone { zone, known }.during(operation));
        }
        let Some(instance_type) = inner.config.instance_type(&request.instance_type) else {
            let known: Vec<&str> = inner
                .config
                .instance_types
                .iter()
                .map(|ty| ty.name.as_str())
                .collect();
            return Err(LocalError::UnknownInstanceType {
                name: request.instance_type.clone(),
                known: known.join(", "),
            }
            .during(operation));
        };
        if request.use_spot && instance_type.spot_price.is_none() {
            return Err(LocalError::NoSpot {
                instance_type: instance_type.name.clone(),
            }
            .during(operation));
        }
        if inner.config.full_zones.contains(&zone) {
            return Err(LocalError::ZoneFull { zone }.during(operation));
        }
        // Idempotency: node indices that already exist are reported, not created again.
        let existing = inner
            .list(Some(&request.cluster))
            .map_err(|err| err.during(operation))?;
        let open_ports = inner
            .cluster_open_ports(&existing)
            .map_err(|err| err.during(operation))?;
        let mut tasks = tokio::task::JoinSet::new();
        for node_idx in request.first_node_idx..request.first_node_idx + request.count {
            if existing.iter().any(|(meta, _)| meta.node_idx == node_idx) {
                continue;
            }
            let cloud = self.clone();
            let cluster = request.cluster.clone();
            let zone = zone.clone();
            let instance_type = request.instance_type.clone();
            let open_ports = open_ports.clone();
            let spot = request.use_spot;
            tasks.spawn(async move {
                cloud
                    .inner
                    .create_one(&cluster, node_idx, &zone, &instance_type, spot, &open_ports)
                    .await
            });
        }
        join_all(tasks).await.map_err(|err| err.during(operation))?;
        let members = inner
            .list(Some(&request.cluster))
            .map_err(|err| err.during(operation))?;
        inner
            .refresh_firewalls(&members, &open_ports)
            .await
            .map_err(|err| err.during(operation))?;
        let wanted = request.first_node_idx..request.first_node_idx + request.count;
        let instances = self.query(&request.region, &request.cluster).await?;
        Ok(instances
            .into_iter()
            .filter(|instance| wanted.contains(&instance.node_idx))
            .collect())
    }

    /// The local cloud's one region.
    async fn regions_in_use(&self) -> Result<Vec<String>, ProvisionError> {
        Ok(vec![LocalConfig::REGION.to_owned()])
    }

    async fn list_clusters(&self, region: &str) -> Result<Vec<ClusterName>, ProvisionError> {
        let operation = Operation::Query;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        let mut clusters: Vec<ClusterName> = inner
            .list(None)
            .map_err(|err| err.during(operation))?
            .into_iter()
            .map(|(meta, _)| meta.cluster)
            .collect();
        clusters.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        clusters.dedup();
        Ok(clusters)
    }

    async fn query(
        &self,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        let operation = Operation::Query;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        let listed = inner
            .list(Some(cluster))
            .map_err(|err| err.during(operation))?;
        let mut instances = Vec::with_capacity(listed.len());
        for (meta, dir) in &listed {
            // An instance that powered itself off is stopped or removed now.
            let exists = inner
                .reconcile(meta, dir)
                .await
                .map_err(|err| err.during(operation))?;
            let state = inner.state_of(meta, dir);
            // Removed meanwhile (by another process's reconciliation or terminate).
            if !exists || !dir.join("meta.json").exists() {
                continue;
            }
            instances.push(
                inner
                    .info(meta, state)
                    .map_err(|err| err.during(operation))?,
            );
        }
        Ok(instances)
    }

    async fn stop(&self, region: &str, cluster: &ClusterName) -> Result<(), ProvisionError> {
        let operation = Operation::Stop;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        let listed = inner
            .list(Some(cluster))
            .map_err(|err| err.during(operation))?;
        self.on_each(listed, |inner, meta, dir| async move {
            inner.stop_one(&meta, &dir).await
        })
        .await
        .map_err(|err| err.during(operation))?;
        Ok(())
    }

    async fn start(
        &self,
        region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<InstanceInfo>, ProvisionError> {
        let operation = Operation::Start;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        let listed = inner
            .list(Some(cluster))
            .map_err(|err| err.during(operation))?;
        self.on_each(listed, |inner, meta, dir| async move {
            inner.start_one(&meta, &dir).await
        })
        .await
        .map_err(|err| err.during(operation))?;
        self.query(region, cluster).await
    }

    async fn terminate(&self, region: &str, cluster: &ClusterName) -> Result<(), ProvisionError> {
        let operation = Operation::Terminate;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        let listed = inner
            .list(Some(cluster))
            .map_err(|err| err.during(operation))?;
        self.on_each(listed, |inner, meta, _dir| async move {
            inner.terminate_one(meta.octet, Some(&meta)).await
        })
        .await
        .map_err(|err| err.during(operation))?;
        Ok(())
    }

    async fn terminate_nodes(
        &self,
        region: &str,
        cluster: &ClusterName,
        nodes: &[u32],
    ) -> Result<(), ProvisionError> {
        let operation = Operation::Terminate;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        let listed: Vec<(InstanceMeta, PathBuf)> = inner
            .list(Some(cluster))
            .map_err(|err| err.during(operation))?
            .into_iter()
            .filter(|(meta, _)| nodes.contains(&meta.node_idx))
            .collect();
        self.on_each(listed, |inner, meta, _dir| async move {
            inner.terminate_one(meta.octet, Some(&meta)).await
        })
        .await
        .map_err(|err| err.during(operation))
    }

    async fn open_ports(
        &self,
        region: &str,
        cluster: &ClusterName,
        ports: &[PortRange],
    ) -> Result<(), ProvisionError> {
        let operation = Operation::OpenPorts;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        inner
            .change_ports(cluster, ports, true)
            .await
            .map_err(|err| err.during(operation))
    }

    async fn admit_peers(
        &self,
        region: &str,
        cluster: &ClusterName,
        peers: &[IpAddr],
    ) -> Result<bool, ProvisionError> {
        let operation = Operation::AdmitPeers;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        inner
            .admit(cluster, peers)
            .await
            .map_err(|err| err.during(operation))?;
        Ok(true)
    }

    async fn close_ports(
        &self,
        region: &str,
        cluster: &ClusterName,
        ports: &[PortRange],
    ) -> Result<(), ProvisionError> {
        let operation = Operation::ClosePorts;
        let inner = &self.inner;
        inner
            .check_region(region)
            .map_err(|err| err.during(operation))?;
        inner
            .change_ports(cluster, ports, false)
            .await
            .map_err(|err| err.during(operation))
    }
}

/// Checks what the local cloud needs from the host (root and the tools) without creating
/// anything: `Auth` when not root, `InvalidRequest` naming the packages to install when a tool
/// is missing.
pub fn preflight() -> Result<(), ProvisionError> {
    if !sys::has_required_capabilities() {
        return Err(LocalError::NotRoot.during(Operation::Bootstrap));
    }
    Tools::find()
        .map(drop)
        .map_err(|err| err.during(Operation::Bootstrap))
}

/// What [`cleanup`] does with namespaces that carry this cloud's prefix but that no state
/// directory it can see claims: their owner's state directory is gone, or they have no owner
/// marker and are unknown to this cloud (made before markers existed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orphans {
    /// List them in the report, touch nothing.
    List,
    /// Remove them too (`aloft local cleanup --yes`).
    Remove,
}

/// A network namespace [`cleanup`] found and did not remove as its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForeignNamespace {
    pub netns: String,
    /// The state directory its owner marker names; `None` without a marker.
    pub owner: Option<PathBuf>,
}

/// What [`cleanup`] removed, and what it found and left.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// Namespaces removed: this cloud's, and orphans when asked to.
    pub namespaces: usize,
    pub links: usize,
    /// Instance cgroup directories removed.
    pub cgroups: usize,
    pub bridge: bool,
    pub state_dir: bool,
    /// Orphans removed (with [`Orphans::Remove`]).
    pub orphans_removed: Vec<ForeignNamespace>,
    /// Orphans found and left (with [`Orphans::List`]): what `--yes` would remove.
    pub orphans_left: Vec<ForeignNamespace>,
    /// Namespaces of another local cloud with the same prefix whose state directory exists:
    /// never touched.
    pub others_left: Vec<ForeignNamespace>,
    /// The bridge was kept because instances that were not removed are still attached to it.
    pub bridge_kept: bool,
}

/// Removes what a run with `config` left behind: the processes, network namespaces, veths and
/// cgroups of the instances its state directory owns, its bridge (unless instances it did not
/// remove still use it) and its whole state directory (including the client key). Namespaces
/// with its prefix that another existing state directory owns are never touched, only named
/// in the report; those no state directory claims are removed only with [`Orphans::Remove`],
/// and listed either way. For crashed runs and test teardown; safe to call when nothing is
/// left.
pub async fn cleanup(
    config: &LocalConfig,
    orphans: Orphans,
) -> Result<CleanupReport, ProvisionError> {
    cleanup_inner(config, orphans)
        .await
        .map_err(|err| err.during(Operation::Terminate))
}

async fn cleanup_inner(
    config: &LocalConfig,
    orphans: Orphans,
) -> Result<CleanupReport, LocalError> {
    config
        .validate()
        .map_err(|reason| LocalError::InvalidConfig { reason })?;
    if !sys::has_required_capabilities() {
        return Err(LocalError::NotRoot);
    }
    let tools = Tools::find()?;
    let prefix = &config.name_prefix;
    let own = owner::owner_id(&config.state_dir);
    let instances_dir = config.state_dir.join("instances");
    let mut report = CleanupReport::default();
    // Every name this cloud may remove: its own, and orphans when asked to.
    let mut removable = std::collections::BTreeSet::new();
    let mut netns_names: Vec<String> = sys::list_dir_names("/run/netns")
        .into_iter()
        .filter(|netns| instance_octet(prefix, netns, '-').is_some())
        .collect();
    netns_names.sort();
    for netns in &netns_names {
        let found = |owner| ForeignNamespace {
            netns: netns.clone(),
            owner,
        };
        match owner::ownership(netns, &own, &instances_dir) {
            owner::Ownership::Own => {
                removable.insert(netns.clone());
            }
            owner::Ownership::Other(owner) => report.others_left.push(found(Some(owner))),
            owner::Ownership::Orphan(owner) => match orphans {
                Orphans::List => report.orphans_left.push(found(owner)),
                Orphans::Remove => {
                    report.orphans_removed.push(found(owner));
                    removable.insert(netns.clone());
                }
            },
        }
    }
    for netns in &removable {
        let Some(octet) = instance_octet(prefix, netns, '-') else {
            continue;
        };
        sys::kill_netns_processes(&tools.kill, netns).await?;
        let veth = config.veth_name(octet);
        if sys::link_exists(&veth) {
            sys::run(&tools.ip, &["link", "del", &veth], None).await?;
            report.links += 1;
        }
        if sys::netns_exists(netns) {
            sys::run(&tools.ip, &["netns", "del", netns], None).await?;
            report.namespaces += 1;
        }
        owner::remove_marker(netns)?;
    }
    // A name without a namespace (any more) may still have a cgroup, a veth or a marker left:
    // they are this cloud's to remove unless another existing state directory claims the name.
    let claimed_by_other = |name: &str| {
        !removable.contains(name)
            && matches!(
                owner::ownership(name, &own, &instances_dir),
                owner::Ownership::Other(_)
            )
    };
    let may_remove = |name: &str| {
        removable.contains(name) || (!sys::netns_exists(name) && !claimed_by_other(name))
    };
    // cgroups: those recorded by the instances (made by any process), and those named like
    // this configuration's instances under this process's own cgroups.
    let mut cgroups: Vec<PathBuf> = cgroup::leftovers(prefix)
        .into_iter()
        .filter(|dir| {
            dir.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(may_remove)
        })
        .collect();
    for dir in sys::list_dir_names(&instances_dir.to_string_lossy()) {
        if let Some(limits) = read_limits(&instances_dir.join(dir)) {
            cgroups.extend(limits.cgroups);
        }
    }
    cgroups.sort();
    cgroups.dedup();
    for dir in &cgroups {
        if dir.exists() {
            report.cgroups += 1;
        }
    }
    cgroup::remove(&tools.kill, &cgroups).await?;
    for link in sys::list_dir_names("/sys/class/net") {
        if let Some(octet) = instance_octet(prefix, &link, 'v')
            && may_remove(&config.netns_name(octet))
        {
            sys::run(&tools.ip, &["link", "del", &link], None).await?;
            report.links += 1;
        }
    }
    for name in owner::marked_names() {
        if instance_octet(prefix, &name, '-').is_some()
            && !sys::netns_exists(&name)
            && !claimed_by_other(&name)
        {
            owner::remove_marker(&name)?;
        }
    }
    if sys::link_exists(&config.bridge) {
        let ports = sys::list_dir_names(&format!("/sys/class/net/{}/brif", config.bridge));
        if ports.is_empty() {
            sys::run(&tools.ip, &["link", "del", &config.bridge], None).await?;
            report.bridge = true;
        } else {
            report.bridge_kept = true;
        }
    }
    if config.state_dir.exists() {
        remove_dir_all(&config.state_dir)?;
        report.state_dir = true;
    }
    Ok(report)
}

/// The first route (device, destination, prefix length) that overlaps the /24 at `network`,
/// ignoring default routes (everything overlaps those) and routes on our own bridge.
fn overlapping_route<'a>(
    network: Ipv4Addr,
    bridge: &str,
    routes: &'a [(String, Ipv4Addr, u32)],
) -> Option<&'a (String, Ipv4Addr, u32)> {
    let network = u32::from(network);
    routes.iter().find(|(device, destination, prefix_len)| {
        if device == bridge || *prefix_len == 0 {
            return false;
        }
        let common = (*prefix_len).min(24);
        let mask = u32::MAX << (32 - common);
        network & mask == u32::from(*destination) & mask
    })
}

fn console_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut tail = String::new();
    for line in &lines[lines.len().saturating_sub(10)..] {
        let _ = writeln!(tail, "  {line}");
    }
    tail
}

fn create_dir_all(path: &Path) -> Result<(), LocalError> {
    std::fs::create_dir_all(path).map_err(|source| LocalError::Fs {
        action: "creating directory",
        path: path.to_owned(),
        source,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LocalError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        LocalError::Fs {
            action: "setting permissions of",
            path: path.to_owned(),
            source,
        }
    })
}

/// Writes a file whole or not at all: to a temporary name beside it, then renamed over it, so a
/// process killed while writing leaves the old file (or none), never a truncated one that
/// every later listing would fail to read.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), LocalError> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&partial, contents).map_err(|source| LocalError::Fs {
        action: "writing",
        path: partial.clone(),
        source,
    })?;
    set_mode(&partial, mode)?;
    std::fs::rename(&partial, path).map_err(|source| LocalError::Fs {
        action: "writing",
        path: path.to_owned(),
        source,
    })
}

fn remove_file(path: &Path) -> Result<(), LocalError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LocalError::Fs {
            action: "removing",
            path: path.to_owned(),
            source,
        }),
    }
}

fn remove_dir_all(path: &Path) -> Result<(), LocalError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LocalError::Fs {
            action: "removing",
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_overlap() {
        let route = |device: &str, destination: [u8; 4], prefix_len| {
            (device.to_owned(), Ipv4Addr::from(destination), prefix_len)
        };
        let routes = [
            route("eth0", [0, 0, 0, 0], 0),
            route("eth0", [192, 0, 2, 0], 24),
            route("docker0", [172, 17, 0, 0], 16),
            route("vpn0", [10, 8, 0, 0], 13),
            route("aloftbr0", [10, 213, 0, 0], 24),
        ];
        let check = |network: [u8; 4], expect: Option<&str>| {
            let found = overlapping_route(Ipv4Addr::from(network), "aloftbr0", &routes);
            assert_eq!(
                found.map(|(device, _, _)| device.as_str()),
                expect,
                "{network:?}"
            );
        };
        check([10, 213, 0, 0], None);
        check([10, 1, 0, 0], None);
        check([192, 0, 2, 0], Some("eth0"));
        check([172, 17, 5, 0], Some("docker0"));
        check([10, 15, 255, 0], Some("vpn0"));
        check([10, 16, 0, 0], None);
        // A narrower route inside our /24 overlaps too.
        let narrow = [route("tun0", [10, 1, 2, 128], 25)];
        let found = overlapping_route(Ipv4Addr::new(10, 1, 2, 0), "aloftbr0", &narrow);
        assert!(found.is_some());
    }

    #[test]
    fn errors_are_classified_with_actionable_messages() {
        let err = LocalError::NotRoot.during(Operation::Bootstrap);
        assert!(matches!(err, ProvisionError::Auth { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "bootstrap: not authorized: the local cloud needs root (CAP_NET_ADMIN, \
             CAP_SYS_ADMIN): run as root"
        );

        let err = LocalError::ToolsMissing {
            tools: "sshd, nft".into(),
            packages: "openssh-server nftables".into(),
        }
        .during(Operation::CreateInstances);
        assert!(
            matches!(err, ProvisionError::InvalidRequest { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("`apt-get install openssh-server nftables`"),
            "{err}"
        );

        let err = LocalError::AddressesExhausted {
            subnet: "10.1.2.0/24".into(),
        }
        .during(Operation::CreateInstances);
        assert_eq!(err.failover_scope(), Some(Scope::Cloud));

        // The IO cause is the source, not part of the message.
        let err = LocalError::Fs {
            action: "writing",
            path: "/x/meta.json".into(),
            source: std::io::Error::other("disk full"),
        }
        .during(Operation::CreateInstances);
        assert_eq!(
            err.to_string(),
            "create instances failed: writing /x/meta.json"
        );
        let source = std::error::Error::source(&err).expect("a source");
        assert_eq!(source.to_string(), "disk full");
    }
}

//! The local cloud: a genuine [`Provider`] whose instances are Linux network namespaces.
//!
//! Each instance is a network namespace with one veth on a bridge this cloud owns, an address
//! from the configured private /24, and an "init" started with
//! `setsid ip netns exec NS unshare --uts --pid --mount-proc --fork --kill-child boot.sh`. The init
//! sets the instance's hostname, bind-mounts the instance's own `/etc/ssh` (with its own ed25519
//! host key), `/root` (with the cloud's client key in `authorized_keys`) and `/tmp`, then execs
//! `sshd -D`. To an SSH-driven broker that is a VM: own address, hostname, host key, home,
//! `/tmp` and process table. It is an emulation, not a security boundary: instances are root on
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
//! Faults, for tests of the broker's recovery paths: [`LocalCloud::preempt`] makes an instance
//! vanish the way a spot VM does, [`LocalCloud::partition`] cuts an instance off the network and
//! restores it, and [`LocalConfig::full_zones`] makes zones report no capacity.
//!
//! Isolation from the rest of the host: instances get no default route and `ip_forward` is left
//! alone, so only loopback, the bridge's own address and other instances can be reached. Every
//! name is derived from [`LocalConfig`], so [`cleanup`] removes exactly what one configuration
//! left behind.
//!
//! The state of an instance lives in `<state_dir>/instances/<prefix>-<octet>/`: `meta.json`
//! (cluster, node index, …), `etc-ssh/`, `home/`, `tmp/`, `boot.sh`, `console.log` (sshd's log)
//! and `launcher.pid`; a `stopped` marker while stopped, a `preempted` marker once preempted.
//! Claiming the directory (an atomic `mkdir`) is what allocates the address, so concurrent
//! creations never collide.
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip`, `unshare`, `setsid`, `kill`, `mount`,
//! `ssh-keygen`, `sshd` and `nft` (Debian: iproute2, util-linux, procps, mount, openssh-client,
//! openssh-server, nftables).

mod config;
mod firewall;
mod sys;

use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aloft_provision::{
    Capabilities, ClusterName, CreateRequest, InstanceInfo, InstanceState, Operation, PortRange,
    Provider, ProvisionError, Scope,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
    #[error("the local cloud has no spot instances")]
    NoSpot,
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
        "instance {instance}'s sshd did not accept connections on {address}:22 within {secs} s"
    )]
    BootTimeout {
        instance: String,
        address: Ipv4Addr,
        secs: u64,
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
            | LocalError::NoSpot
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

    /// Claims the lowest free address by creating its instance directory.
    fn allocate(&self) -> Result<u8, LocalError> {
        for octet in 2..=254u8 {
            let dir = self.instance_dir(octet);
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(octet),
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(LocalError::Fs {
                        action: "creating instance directory",
                        path: dir,
                        source,
                    });
                }
            }
        }
        Err(LocalError::AddressesExhausted {
            subnet: self.config.subnet.clone(),
        })
    }

    async fn create_one(
        &self,
        cluster: &ClusterName,
        node_idx: u32,
        zone: &str,
        instance_type: &str,
        open_ports: &OpenPorts,
    ) -> Result<InstanceInfo, LocalError> {
        let octet = self.allocate()?;
        let meta = InstanceMeta {
            id: self.config.netns_name(octet),
            octet,
            cluster: cluster.clone(),
            node_idx,
            zone: zone.to_owned(),
            instance_type: instance_type.to_owned(),
            address: self.address(octet),
            hostname: format!("{cluster}-{node_idx}"),
        };
        let dir = self.instance_dir(octet);
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
        let host_batch = format!(
            "netns add {netns}\n\
             link add {veth} type veth peer name eth0 netns {netns}\n\
             link set {veth} master {bridge} up\n"
        );
        sys::run(&self.tools.ip, &["-batch", "-"], Some(&host_batch)).await?;
        let address = meta.address;
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
        sys::run(&self.tools.ssh_keygen, &args, None).await?;
        let boot_script = format!(
            "#!/bin/sh\n\
             # PID 1 of an aloft local-cloud instance (see aloft-provider-local).\n\
             # $1 = hostname, $2 = the instance's state directory.\n\
             set -eu\n\
             hostname \"$1\"\n\
             # Stage the instance's directory first: it may live under /root or /tmp, which the\n\
             # mounts below hide (this mount namespace is private, so the host sees nothing).\n\
             mkdir -p /run/aloft-instance\n\
             mount --bind \"$2\" /run/aloft-instance\n\
             mount --bind /run/aloft-instance/etc-ssh /etc/ssh\n\
             mount --bind /run/aloft-instance/home /root\n\
             mount --bind /run/aloft-instance/tmp /tmp\n\
             exec '{sshd}' -D -e -f /etc/ssh/sshd_config\n",
            sshd = self.tools.sshd.display()
        );
        write_file(&dir.join("boot.sh"), boot_script.as_bytes(), 0o755)
    }

    /// Starts the instance's init in its namespaces and waits until sshd accepts connections.
    async fn boot(&self, meta: &InstanceMeta, dir: &Path) -> Result<(), LocalError> {
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
        let mut command = std::process::Command::new(&self.tools.setsid);
        command
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
            .stdin(std::process::Stdio::null())
            .stdout(console)
            .stderr(console_err);
        let mut child = command.spawn().map_err(|source| LocalError::Spawn {
            command: format!("setsid ip netns exec {} unshare … boot.sh", meta.id),
            source,
        })?;
        // setsid and `ip netns exec` exec their successors, so this is the `unshare` launcher,
        // parent of the instance's PID 1.
        let launcher_pid = child.id();
        write_file(
            &dir.join("launcher.pid"),
            format!("{launcher_pid}\n").as_bytes(),
            0o644,
        )?;
        // Reap the launcher whenever it exits, so no zombie outlives the instance.
        std::thread::spawn(move || child.wait());
        self.wait_for_sshd(meta, dir, launcher_pid).await
    }

    async fn wait_for_sshd(
        &self,
        meta: &InstanceMeta,
        dir: &Path,
        launcher_pid: u32,
    ) -> Result<(), LocalError> {
        let target = SocketAddr::from((meta.address, 22));
        let timeout = Duration::from_secs(self.config.boot_timeout_secs);
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(target).await.is_ok() {
                return Ok(());
            }
            if !Path::new(&format!("/proc/{launcher_pid}")).exists() {
                return Err(LocalError::BootFailed {
                    instance: meta.id.clone(),
                    console_tail: console_tail(dir),
                });
            }
            if started.elapsed() > timeout {
                return Err(LocalError::BootTimeout {
                    instance: meta.id.clone(),
                    address: meta.address,
                    secs: self.config.boot_timeout_secs,
                });
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
    fn state_of(&self, meta: &InstanceMeta, dir: &Path) -> InstanceState {
        if dir.join(PREEMPTED).exists() {
            return InstanceState::Terminated;
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
        let rules = firewall::ruleset(open_ports, peers);
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

    async fn terminate_one(&self, octet: u8) -> Result<(), LocalError> {
        let netns = self.config.netns_name(octet);
        let veth = self.config.veth_name(octet);
        sys::kill_netns_processes(&self.tools.kill, &netns).await?;
        // Delete the veth explicitly: `ip netns del` would remove it asynchronously, and the
        // name may be reused right away.
        if sys::link_exists(&veth) {
            sys::run(&self.tools.ip, &["link", "del", &veth], None).await?;
        }
        if sys::netns_exists(&netns) {
            sys::run(&self.tools.ip, &["netns", "del", &netns], None).await?;
        }
        // Last: releasing the directory releases the address.
        remove_dir_all(&self.instance_dir(octet))
    }

    async fn stop_one(&self, meta: &InstanceMeta, dir: &Path) -> Result<(), LocalError> {
        if dir.join(PREEMPTED).exists() {
            return Ok(());
        }
        write_file(&dir.join(STOPPED), b"", 0o644)?;
        sys::kill_netns_processes(&self.tools.kill, &meta.id).await?;
        // While stopped, clients see timeouts (as with a stopped VM), not refusals.
        let veth = self.config.veth_name(meta.octet);
        if sys::link_exists(&veth) {
            sys::run(&self.tools.ip, &["link", "set", &veth, "down"], None).await?;
        }
        Ok(())
    }

    async fn start_one(&self, meta: &InstanceMeta, dir: &Path) -> Result<(), LocalError> {
        // A preempted instance is gone: `start` leaves it terminated.
        if dir.join(PREEMPTED).exists() || self.state_of(meta, dir) == InstanceState::Running {
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
            spot: false,
            stop_start: true,
            multi_node: true,
            open_ports: true,
        }
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
        if request.use_spot {
            return Err(LocalError::NoSpot.during(operation));
        }
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
        if inner.config.instance_type(&request.instance_type).is_none() {
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
            tasks.spawn(async move {
                cloud
                    .inner
                    .create_one(&cluster, node_idx, &zone, &instance_type, &open_ports)
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
        listed
            .iter()
            .map(|(meta, dir)| inner.info(meta, inner.state_of(meta, dir)))
            .collect::<Result<_, _>>()
            .map_err(|err| err.during(operation))
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
            inner.terminate_one(meta.octet).await
        })
        .await
        .map_err(|err| err.during(operation))?;
        Ok(())
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

/// What [`cleanup`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    pub namespaces: usize,
    pub links: usize,
    pub bridge: bool,
    pub state_dir: bool,
}

/// Removes everything a run with `config` left behind: its instances' processes, network
/// namespaces and veths (found by name prefix), its bridge and its whole state directory
/// (including the client key). For crashed runs and test teardown; safe to call when nothing is
/// left.
pub async fn cleanup(config: &LocalConfig) -> Result<CleanupReport, ProvisionError> {
    cleanup_inner(config)
        .await
        .map_err(|err| err.during(Operation::Terminate))
}

async fn cleanup_inner(config: &LocalConfig) -> Result<CleanupReport, LocalError> {
    config
        .validate()
        .map_err(|reason| LocalError::InvalidConfig { reason })?;
    if !sys::has_required_capabilities() {
        return Err(LocalError::NotRoot);
    }
    let tools = Tools::find()?;
    let prefix = &config.name_prefix;
    let mut report = CleanupReport::default();
    for netns in sys::list_dir_names("/run/netns") {
        let Some(octet) = instance_octet(prefix, &netns, '-') else {
            continue;
        };
        sys::kill_netns_processes(&tools.kill, &netns).await?;
        let veth = config.veth_name(octet);
        if sys::link_exists(&veth) {
            sys::run(&tools.ip, &["link", "del", &veth], None).await?;
            report.links += 1;
        }
        if sys::netns_exists(&netns) {
            sys::run(&tools.ip, &["netns", "del", &netns], None).await?;
            report.namespaces += 1;
        }
    }
    for link in sys::list_dir_names("/sys/class/net") {
        if instance_octet(prefix, &link, 'v').is_some() {
            sys::run(&tools.ip, &["link", "del", &link], None).await?;
            report.links += 1;
        }
    }
    if sys::link_exists(&config.bridge) {
        sys::run(&tools.ip, &["link", "del", &config.bridge], None).await?;
        report.bridge = true;
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

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), LocalError> {
    std::fs::write(path, contents).map_err(|source| LocalError::Fs {
        action: "writing",
        path: path.to_owned(),
        source,
    })?;
    set_mode(path, mode)
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

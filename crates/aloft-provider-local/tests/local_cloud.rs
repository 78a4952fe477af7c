//! The local cloud against the real kernel: real namespaces, a real bridge, real sshd.
//!
//! These tests need root and the tools named by `aloft_provider_local::preflight`. In CI (`CI`
//! set) a missing privilege or tool fails the test with the reason; elsewhere the test prints a
//! skip note and passes. Each test uses its own name prefix, bridge and subnet, derived from the
//! process ID, so concurrent runs on one machine never collide, and a guard cleans up everything
//! it made even when an assertion fails.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aloft_provider_local::{
    ForeignNamespace, InstanceLimits, LocalCloud, LocalConfig, Orphans, cleanup, power_off_command,
    preflight,
};
use aloft_provision::{
    ClusterName, ClusterState, CreateRequest, InstanceInfo, InstanceState, PortRange, Provider,
    ProvisionError,
};

const REGION: &str = "local";

/// One test's private local cloud; dropping it removes everything the test made.
struct Run {
    cloud: LocalCloud,
    config: LocalConfig,
}

impl Drop for Run {
    fn drop(&mut self) {
        let config = self.config.clone();
        let outcome =
            block_on_fresh_runtime(move || async move { cleanup(&config, Orphans::List).await });
        if let Err(err) = outcome {
            eprintln!("cleanup of {} failed: {err:#?}", self.config.name_prefix);
        }
    }
}

/// Runs a future to completion on a new thread with its own runtime: usable from `Drop` and
/// from inside the test's runtime, which must not be blocked on.
fn block_on_fresh_runtime<F, Fut>(make: F) -> Fut::Output
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future,
    Fut::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(make())
    })
    .join()
    .expect("the cleanup thread does not panic")
}

/// A configuration no other run on this machine uses: prefix, bridge and subnet from the PID
/// and `tag` (one per test in this binary, below 16).
fn unique_config(tag: u32) -> LocalConfig {
    assert!(tag < 16, "tag {tag}: one base-36 digit per test, below 16");
    let pid = std::process::id();
    let prefix = format!("t{}{}", base36(pid), base36(tag));
    let slot = (pid % 4_096) * 16 + tag;
    LocalConfig {
        bridge: format!("{prefix}br"),
        subnet: format!("10.{}.{}.0/24", slot >> 8, slot & 0xff),
        state_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("local-{prefix}")),
        name_prefix: prefix,
        boot_timeout_secs: 30,
        ..LocalConfig::default()
    }
}

fn base36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// Cleans up after earlier test processes that died without running their guards (killed, or
/// aborted): their state directories under the target's tmp dir name their PID.
fn sweep_crashed_runs() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `local-<prefix>`, or `local-<prefix>.<home>` for a test's further homes.
        let Some(prefix) = name
            .strip_prefix("local-")
            .and_then(|rest| rest.split('.').next())
        else {
            continue;
        };
        // `t<pid in base 36><tag digit>`, as made by `unique_config`.
        let Some(pid) = prefix
            .strip_prefix('t')
            .and_then(|rest| rest.get(..rest.len().checked_sub(1)?))
            .and_then(|digits| u32::from_str_radix(digits, 36).ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let config = LocalConfig {
            name_prefix: prefix.to_owned(),
            bridge: format!("{prefix}br"),
            state_dir: entry.path(),
            ..LocalConfig::default()
        };
        let outcome =
            block_on_fresh_runtime(move || async move { cleanup(&config, Orphans::List).await });
        match outcome {
            Ok(report) => eprintln!("cleaned up after crashed test run {prefix}: {report:?}"),
            Err(err) => eprintln!("cleaning up after crashed test run {prefix} failed: {err}"),
        }
    }
}

/// The test's cloud, or `None` (skip) when the host can't run it outside CI.
fn setup(tag: u32) -> Option<Run> {
    if let Err(err) = preflight() {
        let in_ci = std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false");
        assert!(!in_ci, "the local cloud tests can't run here: {err}");
        eprintln!("skipping the local cloud test (it would fail in CI): {err}");
        return None;
    }
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep_crashed_runs);
    let config = unique_config(tag);
    let cloud = LocalCloud::new(config.clone()).expect("a valid configuration");
    Some(Run { cloud, config })
}

fn request(cluster: &ClusterName, count: u32) -> CreateRequest {
    CreateRequest {
        cluster: cluster.clone(),
        region: REGION.into(),
        zone: None,
        instance_type: "local.small".into(),
        count,
        first_node_idx: 0,
        use_spot: false,
        image_id: None,
        default_image_id: None,
        disk_size_gb: None,
    }
}

fn address(instance: &InstanceInfo) -> IpAddr {
    instance
        .private_address
        .expect("local instances have an address")
}

/// Runs `command` on `instance` with the system ssh client, pinning `pinned_key` as its host
/// key. Returns (success, stdout, stderr).
fn ssh(
    run: &Run,
    instance: &InstanceInfo,
    pinned_key: &str,
    command: &str,
) -> (bool, String, String) {
    let known_hosts =
        run.config
            .state_dir
            .join(format!("known_hosts-{}-{}", instance.id, pinned_key.len()));
    std::fs::write(
        &known_hosts,
        format!("{} {pinned_key}\n", address(instance)),
    )
    .unwrap();
    let output = Command::new("ssh")
        .arg("-i")
        .arg(run.cloud.client_key_path())
        .args(["-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=20"])
        .args(["-o", "LogLevel=ERROR", "-F", "/dev/null"])
        .arg(format!("root@{}", address(instance)))
        .arg(command)
        .output()
        .expect("the ssh client runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    )
}

fn ssh_ok(run: &Run, instance: &InstanceInfo, command: &str) -> String {
    let host_key = instance.ssh_host_key.as_deref().expect("a pinned host key");
    let (ok, stdout, stderr) = ssh(run, instance, host_key, command);
    assert!(ok, "ssh {} {command:?} failed: {stderr}", instance.id);
    stdout
}

/// Runs `script` with bash inside the instance's network namespace (not its other namespaces).
fn in_netns(instance: &InstanceInfo, script: &str) -> (bool, String) {
    let output = Command::new("ip")
        .args(["netns", "exec", &instance.id, "bash", "-c", script])
        .output()
        .expect("ip runs");
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// Starts a second sshd listening on `port` in the instance's network namespace: a service
/// that needs nothing beyond the tools the local cloud already requires.
fn listen_in(run: &Run, instance: &InstanceInfo, port: u16) -> std::process::Child {
    let dir = run.config.state_dir.join("instances").join(&instance.id);
    let config = dir.join(format!("listener-{port}.conf"));
    let host_key = dir.join("etc-ssh/ssh_host_ed25519_key");
    let text = format!(
        "Port {port}\nHostKey {}\nPidFile none\nUsePAM no\n",
        host_key.display()
    );
    std::fs::write(&config, text).unwrap();
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("preflight found sshd");
    let child = Command::new("ip")
        .args(["netns", "exec", &instance.id, sshd, "-D", "-e", "-f"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sshd starts");
    // Ready when it accepts on the instance's loopback (the firewall always allows lo).
    let probe = format!("until exec 3<>/dev/tcp/127.0.0.1/{port}; do sleep 0.01; done 2>/dev/null");
    let (ok, output) = in_netns(instance, &format!("timeout 20 bash -c '{probe}'"));
    assert!(
        ok,
        "listener on {}:{port} never came up: {output}",
        instance.id
    );
    child
}

/// Asserts that a new connection to `target` is silently dropped: it times out rather than
/// being refused.
fn assert_dropped(target: SocketAddr) {
    let err = TcpStream::connect_timeout(&target, Duration::from_millis(500))
        .expect_err("a closed port must not accept");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{target}: {err}");
}

/// Asserts that no trace of `instance` is left on the host.
fn assert_gone(run: &Run, instance: &InstanceInfo) {
    let id = &instance.id;
    assert!(
        !Path::new("/run/netns").join(id).exists(),
        "netns {id} left"
    );
    let octet = id.rsplit('-').next().unwrap();
    let veth = format!("{}v{octet}", run.config.name_prefix);
    assert!(
        !Path::new("/sys/class/net").join(&veth).exists(),
        "veth {veth} left"
    );
    let instance_dir = run.config.state_dir.join("instances").join(id);
    assert!(
        !instance_dir.exists(),
        "state dir {} left",
        instance_dir.display()
    );
    let marker = instance_dir.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!cmdline.contains(&marker), "process left: {cmdline}");
    }
}

#[tokio::test]
async fn two_instances_reach_each_other_and_terminate_without_a_trace() {
    let Some(run) = setup(0) else { return };
    let cloud: &dyn Provider = &run.cloud;
    let cluster = ClusterName::new("lc").unwrap();
    cloud.bootstrap(REGION).await.unwrap();

    let started = Instant::now();
    let instances = cloud.create_instances(&request(&cluster, 2)).await.unwrap();
    eprintln!(
        "create 2 instances (sshd accepting): {:?}",
        started.elapsed()
    );
    assert_eq!(instances.len(), 2);
    let (a, b) = (&instances[0], &instances[1]);
    assert_eq!((a.node_idx, b.node_idx), (0, 1));
    assert_ne!(address(a), address(b));
    assert!(instances.iter().all(|i| i.state == InstanceState::Running));
    assert_ne!(
        a.ssh_host_key, b.ssh_host_key,
        "each instance has its own host key"
    );

    // Repeating the call changes nothing.
    let again = cloud.create_instances(&request(&cluster, 2)).await.unwrap();
    assert_eq!(again, instances);

    // The host reaches both sshd ports.
    for instance in &instances {
        TcpStream::connect(SocketAddr::new(address(instance), 22))
            .unwrap_or_else(|err| panic!("connect to {}:22: {err}", instance.id));
    }
    // The instances reach each other, and nothing beyond the bridge.
    for (from, to) in [(a, b), (b, a)] {
        let script = format!("exec 3<>/dev/tcp/{}/22 && head -c 4 <&3", address(to));
        let (ok, banner) = in_netns(from, &script);
        assert!(
            ok && banner.starts_with("SSH-"),
            "{} -> {}: {banner}",
            from.id,
            to.id
        );
    }
    let (_, routes) = in_netns(a, "ip route");
    assert!(
        !routes.contains("default"),
        "instances have no default route: {routes}"
    );

    // SSH with the pinned host key: own hostname, own empty ~ and /tmp.
    assert_eq!(ssh_ok(&run, a, "hostname"), "lc-0");
    assert_eq!(ssh_ok(&run, b, "hostname"), "lc-1");
    assert_eq!(
        ssh_ok(&run, a, "ls -A ~ && echo -- && ls -A /tmp"),
        ".ssh\n--"
    );
    // The wrong pinned key is refused.
    let (ok, _, stderr) = ssh(&run, a, b.ssh_host_key.as_deref().unwrap(), "true");
    assert!(!ok, "ssh must refuse a host key other than the pinned one");
    assert!(stderr.contains("Host key verification failed"), "{stderr}");

    // Ports: closed ones drop new connections (a timeout, not a refusal), except from cluster
    // members; opening and closing take effect at once.
    let mut listener = listen_in(&run, a, 8080);
    let a_8080 = SocketAddr::new(address(a), 8080);
    assert_dropped(a_8080);
    let script = format!("exec 3<>/dev/tcp/{}/8080 && head -c 4 <&3", address(a));
    let (ok, banner) = in_netns(b, &script);
    assert!(
        ok && banner.starts_with("SSH-"),
        "members reach closed ports: {banner}"
    );
    // An instance of another cluster is no member: dropped (bash's connect times out, exit
    // status 124, rather than being refused), though port 22 answers it.
    let other = ClusterName::new("other").unwrap();
    let outsider = &cloud.create_instances(&request(&other, 1)).await.unwrap()[0];
    let script = format!(
        "timeout 1 bash -c 'exec 3<>/dev/tcp/{}/8080'; echo $?",
        address(a)
    );
    let (_, status) = in_netns(outsider, &script);
    assert_eq!(status.trim(), "124", "non-members are dropped");
    let script = format!("exec 3<>/dev/tcp/{}/22 && head -c 4 <&3", address(a));
    let (ok, banner) = in_netns(outsider, &script);
    assert!(
        ok && banner.starts_with("SSH-"),
        "port 22 is open to all: {banner}"
    );
    cloud.terminate(REGION, &other).await.unwrap();
    assert_gone(&run, outsider);

    let port_8080 = [PortRange {
        first: 8080,
        last: 8080,
    }];
    cloud
        .open_ports(REGION, &cluster, &port_8080)
        .await
        .unwrap();
    cloud
        .open_ports(REGION, &cluster, &port_8080)
        .await
        .unwrap();
    TcpStream::connect(a_8080).expect("an opened port accepts");
    cloud
        .close_ports(REGION, &cluster, &port_8080)
        .await
        .unwrap();
    assert_dropped(a_8080);
    listener.kill().unwrap();
    listener.wait().unwrap();

    let queried = cloud.query(REGION, &cluster).await.unwrap();
    assert_eq!(queried, instances);
    assert_eq!(ClusterState::of(&queried), ClusterState::Up);

    // Stop keeps the disk and the address; start boots the same instance again.
    ssh_ok(&run, a, "echo kept > ~/disk");
    cloud.stop(REGION, &cluster).await.unwrap();
    let stopped = cloud.query(REGION, &cluster).await.unwrap();
    assert_eq!(
        ClusterState::of(&stopped),
        ClusterState::Stopped,
        "{stopped:?}"
    );
    let restarted = cloud.start(REGION, &cluster).await.unwrap();
    assert_eq!(ClusterState::of(&restarted), ClusterState::Up);
    assert_eq!(restarted, instances, "same IDs, addresses and host keys");
    assert_eq!(ssh_ok(&run, a, "cat ~/disk"), "kept");

    let started = Instant::now();
    cloud.terminate(REGION, &cluster).await.unwrap();
    eprintln!("terminate 2 instances: {:?}", started.elapsed());
    assert!(cloud.query(REGION, &cluster).await.unwrap().is_empty());
    for instance in &instances {
        assert_gone(&run, instance);
    }
    cloud.terminate(REGION, &cluster).await.unwrap();
}

#[tokio::test]
async fn cleanup_removes_what_a_crashed_run_left() {
    let Some(run) = setup(1) else { return };
    let cluster = ClusterName::new("crash").unwrap();
    let started = Instant::now();
    let instances = run
        .cloud
        .create_instances(&request(&cluster, 1))
        .await
        .unwrap();
    eprintln!(
        "bootstrap + create 1 instance (sshd accepting): {:?}",
        started.elapsed()
    );

    // Figures for one more instance on a bootstrapped cloud; not assertions.
    let timed = ClusterName::new("timed").unwrap();
    let started = Instant::now();
    let single = run
        .cloud
        .create_instances(&request(&timed, 1))
        .await
        .unwrap();
    eprintln!(
        "create 1 instance (sshd accepting): {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    run.cloud.terminate(REGION, &timed).await.unwrap();
    eprintln!("terminate 1 instance: {:?}", started.elapsed());
    assert_gone(&run, &single[0]);

    // The "crash": nothing is terminated, only the configuration survives.
    let limits = run.cloud.limits(&cluster, 0).await.unwrap();
    let report = cleanup(&run.config, Orphans::List).await.unwrap();
    assert_eq!(report.namespaces, 1);
    assert_eq!(report.cgroups, limits.cgroups.len(), "{limits:?}");
    for cgroup in &limits.cgroups {
        assert!(!cgroup.exists(), "cgroup {} left", cgroup.display());
    }
    assert!(report.bridge && report.state_dir);
    for instance in &instances {
        assert_gone(&run, instance);
    }
    assert!(
        !Path::new("/sys/class/net")
            .join(&run.config.bridge)
            .exists()
    );
    assert!(!run.config.state_dir.exists());
    // Nothing left to do the second time.
    let report = cleanup(&run.config, Orphans::List).await.unwrap();
    assert_eq!(report.namespaces, 0);
    assert!(!report.bridge && !report.state_dir);
}

/// How long a connection attempt to a cut-off instance may take before we call it failed: a
/// bounded wait, not a timing assertion.
const CUT_OFF_WAIT: Duration = Duration::from_secs(2);

/// The host's attempt to connect to `instance`'s port 22, bounded by [`CUT_OFF_WAIT`].
fn connect_22(instance: &InstanceInfo) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&SocketAddr::new(address(instance), 22), CUT_OFF_WAIT)
}

fn states(instances: &[InstanceInfo]) -> Vec<(u32, InstanceState)> {
    instances.iter().map(|i| (i.node_idx, i.state)).collect()
}

#[tokio::test]
async fn a_preempted_instance_vanishes_and_terminate_still_cleans_up() {
    let Some(run) = setup(2) else { return };
    let cloud = &run.cloud;
    let cluster = ClusterName::new("spot").unwrap();
    let instances = cloud.create_instances(&request(&cluster, 2)).await.unwrap();
    let (a, b) = (&instances[0], &instances[1]);
    ssh_ok(&run, b, "echo on-disk > ~/disk");

    cloud.preempt(&cluster, 1).await.unwrap();
    let queried = cloud.query(REGION, &cluster).await.unwrap();
    assert_eq!(
        states(&queried),
        [(0, InstanceState::Running), (1, InstanceState::Terminated)]
    );
    // Terminated instances count as absent, so the survivor alone makes the cluster `Up`.
    assert_eq!(ClusterState::of(&queried), ClusterState::Up);
    // Nothing of it runs, and the host can no longer reach it; the other node is untouched.
    let pids = Command::new("ip")
        .args(["netns", "pids", &b.id])
        .output()
        .unwrap();
    assert!(
        pids.stdout.is_empty(),
        "processes left in {}: {}",
        b.id,
        String::from_utf8_lossy(&pids.stdout)
    );
    let err = connect_22(b).expect_err("a preempted instance must not accept");
    assert_ne!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "a vanished VM doesn't refuse"
    );
    connect_22(a).expect("the other node still accepts");
    assert_eq!(ssh_ok(&run, a, "hostname"), "spot-0");

    // Idempotent; `stop` and `start` leave it gone.
    cloud.preempt(&cluster, 1).await.unwrap();
    cloud.stop(REGION, &cluster).await.unwrap();
    let restarted = cloud.start(REGION, &cluster).await.unwrap();
    assert_eq!(
        states(&restarted),
        [(0, InstanceState::Running), (1, InstanceState::Terminated)]
    );
    // Its disk stays until terminate.
    let disk = run
        .config
        .state_dir
        .join("instances")
        .join(&b.id)
        .join("home/disk");
    assert_eq!(std::fs::read_to_string(&disk).unwrap(), "on-disk\n");

    let err = cloud.preempt(&cluster, 7).await.unwrap_err();
    assert!(matches!(err, ProvisionError::NotFound { .. }), "{err:?}");

    // An instance whose processes died on their own is terminated too, not pending; with
    // every node gone the cluster summarizes as terminated.
    // Some of the listed processes may end on their own before the kill reaches them (an
    // sshd child, say), so the kill's status says nothing; the query below checks the result.
    let listed = Command::new("sh")
        .args([
            "-c",
            &format!(
                "pids=$(ip netns pids {}); [ -n \"$pids\" ] && kill -9 $pids; true",
                a.id
            ),
        ])
        .status()
        .unwrap();
    assert!(listed.success(), "killing {}'s processes", a.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    let queried = loop {
        let queried = cloud.query(REGION, &cluster).await.unwrap();
        // While its processes are still going down, the instance may show as pending.
        let settled = !matches!(
            queried[0].state,
            InstanceState::Running | InstanceState::Pending
        );
        if settled || Instant::now() > deadline {
            break queried;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        states(&queried),
        [
            (0, InstanceState::Terminated),
            (1, InstanceState::Terminated)
        ]
    );
    assert_eq!(ClusterState::of(&queried), ClusterState::Terminated);
    cloud.preempt(&cluster, 0).await.unwrap();

    cloud.terminate(REGION, &cluster).await.unwrap();
    assert!(cloud.query(REGION, &cluster).await.unwrap().is_empty());
    for instance in &instances {
        assert_gone(&run, instance);
    }
}

#[tokio::test]
async fn a_partitioned_instance_times_out_and_comes_back_unchanged() {
    let Some(run) = setup(3) else { return };
    let cloud = &run.cloud;
    let cluster = ClusterName::new("split").unwrap();
    let instances = cloud.create_instances(&request(&cluster, 2)).await.unwrap();
    let (a, b) = (&instances[0], &instances[1]);
    // The instance's PID 1 is its sshd; its start time (field 22 of stat) tells it from any
    // later sshd that would also be PID 1.
    let init_of = |instance| {
        ssh_ok(
            &run,
            instance,
            "cat /proc/1/comm; cut -d' ' -f22 /proc/1/stat",
        )
    };
    let init_before = init_of(b);
    ssh_ok(&run, b, "echo before > /tmp/marker");

    cloud.partition(&cluster, 1, true).await.unwrap();
    cloud.partition(&cluster, 1, true).await.unwrap();
    let err = connect_22(b).expect_err("an isolated instance must not accept");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    // Cluster members are cut off too (bash's connect is killed by `timeout`: status 124).
    let script = format!(
        "timeout 1 bash -c 'exec 3<>/dev/tcp/{}/22'; echo $?",
        address(b)
    );
    let (_, status) = in_netns(a, &script);
    assert_eq!(status.trim(), "124", "members time out too");
    connect_22(a).expect("the other node still accepts");
    // The cloud can't tell.
    let queried = cloud.query(REGION, &cluster).await.unwrap();
    assert_eq!(queried, instances);
    // Port changes don't lift the partition.
    let port = [PortRange {
        first: 8080,
        last: 8080,
    }];
    cloud.open_ports(REGION, &cluster, &port).await.unwrap();
    let err = connect_22(b).expect_err("still isolated after open_ports");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");

    cloud.partition(&cluster, 1, false).await.unwrap();
    cloud.partition(&cluster, 1, false).await.unwrap();
    connect_22(b).expect("a reconnected instance accepts");
    assert_eq!(init_of(b), init_before, "the same sshd answers");
    assert_eq!(ssh_ok(&run, b, "cat /tmp/marker"), "before");

    let err = cloud.partition(&cluster, 9, true).await.unwrap_err();
    assert!(matches!(err, ProvisionError::NotFound { .. }), "{err:?}");

    cloud.terminate(REGION, &cluster).await.unwrap();
    for instance in &instances {
        assert_gone(&run, instance);
    }
}

/// Asserts that none of the cgroups the instance had is left.
fn assert_cgroups_gone(limits: &InstanceLimits) {
    for cgroup in &limits.cgroups {
        assert!(!cgroup.exists(), "cgroup {} left", cgroup.display());
    }
}

/// Every name this run's cloud has on the host: network namespaces, links, instance
/// directories. Empty when nothing is left of its instances (the bridge aside).
fn leftovers(run: &Run) -> Vec<String> {
    let prefix = &run.config.name_prefix;
    let mut names = Vec::new();
    for dir in ["/run/netns", "/sys/class/net"] {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{prefix}-")) || name.starts_with(&format!("{prefix}v")) {
                names.push(format!("{dir}/{name}"));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(run.config.state_dir.join("instances")) {
        names.extend(
            entries
                .flatten()
                .map(|entry| entry.path().display().to_string()),
        );
    }
    names
}

#[tokio::test]
async fn instances_are_confined_to_their_types_size() {
    let Some(mut run) = setup(4) else { return };
    // A 1 GiB type, so the memory limit can be shown to bite without using much of the host.
    let mut tiny = run.config.instance_types[0].clone();
    tiny.name = "local.tiny".into();
    tiny.vcpus = 1;
    tiny.memory_gib = 1;
    run.config.instance_types.push(tiny);
    run.cloud = LocalCloud::new(run.config.clone()).unwrap();
    let cloud = &run.cloud;
    let cluster = ClusterName::new("box").unwrap();
    let small = &cloud.create_instances(&request(&cluster, 1)).await.unwrap()[0];
    let limits = cloud.limits(&cluster, 0).await.unwrap();
    assert_eq!((limits.vcpus, limits.memory_gib), (2, 4));
    if !limits.enforced {
        // Only a host without usable cgroups gets here; say why, loudly.
        let reason = limits.not_enforced_because.as_deref().unwrap_or("?");
        assert!(limits.cgroups.is_empty(), "{limits:?}");
        let in_ci = std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false");
        assert!(!in_ci, "instance limits are not enforced in CI: {reason}");
        eprintln!("skipping the cgroup checks: this host can't confine instances: {reason}");
        return;
    }
    assert!(limits.not_enforced_because.is_none(), "{limits:?}");

    // Inside, the login shell's cgroups are the instance's, and the limits read back.
    let own = ssh_ok(&run, small, "cat /proc/self/cgroup");
    let path_of = |controller: &str| {
        own.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            controllers
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_owned())
        })
    };
    let read = |file: String| ssh_ok(&run, small, &format!("cat {file}"));
    match (path_of("memory"), path_of("cpu")) {
        // cgroup v1: one hierarchy each.
        (Some(memory), Some(cpu)) => {
            for path in [&memory, &cpu] {
                assert!(path.ends_with(&format!("/{}", small.id)), "{own}");
            }
            let memory_dir = format!("/sys/fs/cgroup/memory{memory}");
            let cpu_dir = format!("/sys/fs/cgroup/cpu{cpu}");
            assert_eq!(
                read(format!("{memory_dir}/memory.limit_in_bytes")),
                "4294967296"
            );
            assert_eq!(read(format!("{cpu_dir}/cpu.cfs_quota_us")), "200000");
            assert_eq!(read(format!("{cpu_dir}/cpu.cfs_period_us")), "100000");
        }
        // cgroup v2: `0::/path`.
        _ => {
            let path = own
                .lines()
                .find_map(|line| line.strip_prefix("0::"))
                .unwrap_or_else(|| panic!("no cgroup in {own}"));
            assert!(path.ends_with(&format!("/{}", small.id)), "{own}");
            let dir = format!("/sys/fs/cgroup{path}");
            assert_eq!(read(format!("{dir}/memory.max")), "4294967296");
            assert_eq!(read(format!("{dir}/cpu.max")), "200000 100000");
        }
    }
    // The host agrees: the instance's processes are in its cgroups.
    let sleeper = ssh_ok(&run, small, "sleep 30 >/dev/null 2>&1 & echo $!");
    assert!(!sleeper.is_empty());
    for cgroup in &limits.cgroups {
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
        assert!(procs.lines().count() >= 2, "{}: {procs}", cgroup.display());
    }

    // The limit bites: `tail -n 1` holds one endless line in memory, so 1.5 GiB of zeros needs more
    // than local.tiny's 1 GiB and the kernel kills it (SIGKILL: status 137).
    let tiny_cluster = ClusterName::new("tiny").unwrap();
    let tiny_request = CreateRequest {
        instance_type: "local.tiny".into(),
        ..request(&tiny_cluster, 1)
    };
    let tiny = &cloud.create_instances(&tiny_request).await.unwrap()[0];
    let status = ssh_ok(
        &run,
        tiny,
        "head -c 1536M /dev/zero | tail -n 1 >/dev/null; echo $?",
    );
    assert_eq!(status, "137", "tail must be killed at the 1 GiB limit");
    let fits = ssh_ok(&run, tiny, "head -c 256M /dev/zero | tail -n 1 | wc -c");
    assert_eq!(fits, "268435456", "256 MiB fits");

    // Stop and start keep the confinement; terminate removes the cgroups.
    cloud.stop(REGION, &cluster).await.unwrap();
    let restarted = &cloud.start(REGION, &cluster).await.unwrap()[0];
    assert_eq!(ssh_ok(&run, restarted, "cat /proc/self/cgroup"), own);
    assert_eq!(cloud.limits(&cluster, 0).await.unwrap(), limits);
    cloud.terminate(REGION, &cluster).await.unwrap();
    cloud.terminate(REGION, &tiny_cluster).await.unwrap();
    assert_gone(&run, small);
    assert_cgroups_gone(&limits);
}

#[tokio::test]
async fn a_slow_boot_takes_its_time_and_one_past_the_timeout_fails_cleanly() {
    let Some(mut run) = setup(5) else { return };
    run.config.slow_boot_secs = 2;
    run.config.boot_timeout_secs = 4;
    run.config.slow_boot_zones.insert("local-b".to_owned(), 60);
    run.cloud = LocalCloud::new(run.config.clone()).unwrap();
    let cloud = &run.cloud;

    let slow = ClusterName::new("slow").unwrap();
    let started = Instant::now();
    let instances = cloud.create_instances(&request(&slow, 1)).await.unwrap();
    let took = started.elapsed();
    eprintln!("create 1 instance with a 2 s slow boot: {took:?}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert_eq!(instances[0].state, InstanceState::Running);
    assert_eq!(instances[0].zone, "local-a");
    assert_eq!(ssh_ok(&run, &instances[0], "hostname"), "slow-0");
    let before = leftovers(&run);

    let stuck = ClusterName::new("stuck").unwrap();
    let started = Instant::now();
    let err = cloud
        .create_instances(&CreateRequest {
            zone: Some("local-b".into()),
            ..request(&stuck, 2)
        })
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, ProvisionError::Transient { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("within 4 s") && message.contains("slow-boot"),
        "{message}"
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(20),
        "gave up after {took:?}"
    );
    // Nothing of the failed instances is left: no namespace, veth, directory or cgroup.
    assert!(cloud.query(REGION, &stuck).await.unwrap().is_empty());
    assert_eq!(leftovers(&run), before);
    let own_cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for line in own_cgroups.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("/");
        for base in [
            "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/cpu",
            "/sys/fs/cgroup",
        ] {
            let dir = Path::new(&format!("{base}{path}")).to_owned();
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = name.starts_with(&format!("{}-", run.config.name_prefix));
                assert!(
                    !ours || name == instances[0].id,
                    "cgroup {} left",
                    entry.path().display()
                );
            }
        }
    }
    cloud.terminate(REGION, &slow).await.unwrap();
    assert_gone(&run, &instances[0]);
}

#[tokio::test]
async fn spot_instances_are_recorded_and_unpriced_types_refused() {
    let Some(mut run) = setup(6) else { return };
    let mut unpriced = run.config.instance_types[0].clone();
    unpriced.name = "local.nospot".into();
    unpriced.spot_price = None;
    run.config.instance_types.push(unpriced);
    run.cloud = LocalCloud::new(run.config.clone()).unwrap();
    let cloud: &dyn Provider = &run.cloud;
    assert!(cloud.capabilities().spot);

    let cluster = ClusterName::new("cheap").unwrap();
    let spot_request = CreateRequest {
        use_spot: true,
        image_id: None,
        disk_size_gb: None,
        ..request(&cluster, 1)
    };
    let instances = cloud.create_instances(&spot_request).await.unwrap();
    assert_eq!(instances[0].state, InstanceState::Running);
    assert!(run.cloud.is_spot(&cluster, 0).await.unwrap());
    let meta = run
        .config
        .state_dir
        .join("instances")
        .join(&instances[0].id)
        .join("meta.json");
    let meta = std::fs::read_to_string(meta).unwrap();
    assert!(meta.contains(r#""spot": true"#), "{meta}");
    // Spot instances are preempted like any other.
    run.cloud.preempt(&cluster, 0).await.unwrap();
    let queried = cloud.query(REGION, &cluster).await.unwrap();
    assert_eq!(queried[0].state, InstanceState::Terminated);

    let on_demand = ClusterName::new("dear").unwrap();
    cloud
        .create_instances(&request(&on_demand, 1))
        .await
        .unwrap();
    assert!(!run.cloud.is_spot(&on_demand, 0).await.unwrap());

    let refused = ClusterName::new("refused").unwrap();
    let err = cloud
        .create_instances(&CreateRequest {
            instance_type: "local.nospot".into(),
            use_spot: true,
            image_id: None,
            disk_size_gb: None,
            ..request(&refused, 1)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProvisionError::InvalidRequest { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("local.nospot"), "{err}");
    assert!(cloud.query(REGION, &refused).await.unwrap().is_empty());

    for cluster in [&cluster, &on_demand] {
        cloud.terminate(REGION, cluster).await.unwrap();
    }
    assert_gone(&run, &instances[0]);
}

/// Polls `query` until every instance is in `state` (or the cluster is empty, for `None`),
/// within a bounded wait.
async fn query_until(
    cloud: &LocalCloud,
    cluster: &ClusterName,
    state: Option<InstanceState>,
) -> Vec<InstanceInfo> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let queried = cloud.query(REGION, cluster).await.unwrap();
        let done = match state {
            Some(state) => queried.iter().all(|i| i.state == state),
            None => queried.is_empty(),
        };
        if done {
            return queried;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?} after 10 s",
            states(&queried)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_instance_can_power_itself_off_and_start_again_or_vanish() {
    let Some(run) = setup(7) else { return };
    let cloud = &run.cloud;
    let cluster = ClusterName::new("auto").unwrap();
    let instances = cloud.create_instances(&request(&cluster, 2)).await.unwrap();
    let (a, b) = (&instances[0], &instances[1]);
    let limits = [
        cloud.limits(&cluster, 0).await.unwrap(),
        cloud.limits(&cluster, 1).await.unwrap(),
    ];
    ssh_ok(&run, a, "echo kept > ~/disk");
    // PID 1 is the instance's sshd, which exits on SIGTERM.
    assert_eq!(ssh_ok(&run, a, "cat /proc/1/comm"), "sshd");

    // Run outside an instance, the command fails and touches nothing.
    let outside = Command::new("sh")
        .args(["-c", &power_off_command(false)])
        .output()
        .unwrap();
    assert!(!outside.status.success());
    assert!(
        String::from_utf8_lossy(&outside.stderr).contains("not inside an aloft"),
        "{outside:?}"
    );

    // The provider hands out the same command (the agent gets it from there).
    let provider: &dyn Provider = cloud;
    assert_eq!(
        provider.power_off_command(true),
        Some(power_off_command(true))
    );

    // The command returns promptly and cleanly; the instance then goes down.
    for instance in [a, b] {
        let started = Instant::now();
        ssh_ok(&run, instance, &power_off_command(false));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "ssh hung for {took:?}");
    }
    let stopped = query_until(cloud, &cluster, Some(InstanceState::Stopped)).await;
    assert_eq!(states(&stopped).len(), 2);
    for instance in [a, b] {
        let pids = Command::new("ip")
            .args(["netns", "pids", &instance.id])
            .output()
            .unwrap();
        assert!(pids.stdout.is_empty(), "processes left in {}", instance.id);
        connect_22(instance).expect_err("a stopped instance must not accept");
    }
    // Stopped like after `stop`: the same states, and `start` brings back the same disk.
    assert_eq!(ClusterState::of(&stopped), ClusterState::Stopped);
    let restarted = cloud.start(REGION, &cluster).await.unwrap();
    assert_eq!(restarted, instances, "same IDs, addresses and host keys");
    assert_eq!(ssh_ok(&run, a, "cat ~/disk"), "kept");

    // Terminate: two "aloft processes" (two clouds on one configuration) query at once while
    // the instances go away; both succeed and nothing is left.
    for instance in [a, b] {
        ssh_ok(&run, instance, &power_off_command(true));
    }
    let other = LocalCloud::new(run.config.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (mine, theirs) =
            tokio::join!(cloud.query(REGION, &cluster), other.query(REGION, &cluster));
        let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
        // `Terminated` too: an instance that is down, while the other process is still
        // removing what is left of it (as a cloud lists terminated instances for a while).
        for instance in mine.iter().chain(&theirs) {
            assert!(
                matches!(
                    instance.state,
                    InstanceState::Running | InstanceState::Terminating | InstanceState::Terminated
                ),
                "{:?}",
                instance.state
            );
        }
        if mine.is_empty() && theirs.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still {:?}", states(&mine));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for instance in [a, b] {
        assert_gone(&run, instance);
    }
    for limits in &limits {
        assert_cgroups_gone(limits);
    }
    // Idempotent afterwards.
    assert!(query_until(cloud, &cluster, None).await.is_empty());
    cloud.terminate(REGION, &cluster).await.unwrap();
}

/// The link-layer address `ip neigh` holds for `address` on `device` (in the network namespace
/// `netns`, or the host's with `None`), if it holds one.
fn neighbour_mac(netns: Option<&str>, address: IpAddr, device: &str) -> Option<String> {
    let mut command = Command::new("ip");
    if let Some(netns) = netns {
        command.args(["-n", netns]);
    }
    let output = command
        .args(["neigh", "show", "to", &address.to_string(), "dev", device])
        .output()
        .expect("ip runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut fields = text.split_whitespace();
    fields.find(|field| *field == "lladdr")?;
    fields.next().map(str::to_owned)
}

/// The MAC address of the instance's `eth0`.
fn instance_mac(instance: &InstanceInfo) -> String {
    let output = Command::new("ip")
        .args(["-n", &instance.id, "-o", "link", "show", "eth0"])
        .output()
        .expect("ip runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut fields = text.split_whitespace();
    fields.find(|field| *field == "link/ether");
    fields.next().expect("eth0 has a MAC address").to_owned()
}

/// Runs `ip` with `args`, failing the test with its stderr if it fails.
fn ip_ok(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        output.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Issue 9: an instance that gets the address of one just terminated used to stall its launch
/// for 11 to 70 s, because the host (and every other instance that had talked to the old one)
/// still sent that address's packets to the old instance's MAC until its neighbour entry
/// expired, and the boot wait's connect had no timeout. Now a boot announces the address: the
/// host's entry is flushed and the instance sends a gratuitous ARP, so the new instance answers
/// at once, and every entry names its MAC.
///
/// To make the stall certain rather than likely, the test keeps neighbour entries reachable
/// for an hour (on its own bridge and in its own instance), pins the bridge's MAC (a bridge
/// whose MAC follows its lowest port's flushes its neighbours when that port goes) and keeps a
/// second instance on the bridge throughout (a bridge without ports loses its carrier, which
/// flushes them too). Those are the conditions under which launches stalled; before the fix
/// the second launch failed its boot timeout here.
#[tokio::test]
async fn a_reused_address_answers_at_once_after_its_instance_is_replaced() {
    let Some(mut run) = setup(8) else { return };
    run.config.boot_timeout_secs = 10;
    run.cloud = LocalCloud::new(run.config.clone()).unwrap();
    let cloud = &run.cloud;
    let bridge = run.config.bridge.clone();
    cloud.bootstrap(REGION).await.unwrap();
    ip_ok(&["link", "set", &bridge, "address", "02:a1:0f:00:00:01"]);
    let an_hour = "3600000";
    ip_ok(&[
        "ntable",
        "change",
        "name",
        "arp_cache",
        "dev",
        &bridge,
        "base_reachable",
        an_hour,
    ]);

    let keeper_cluster = ClusterName::new("keeper").unwrap();
    let keeper = cloud
        .create_instances(&request(&keeper_cluster, 1))
        .await
        .unwrap()
        .remove(0);
    ip_ok(&[
        "-n",
        &keeper.id,
        "ntable",
        "change",
        "name",
        "arp_cache",
        "dev",
        "eth0",
        "base_reachable",
        an_hour,
    ]);

    // The old instance, known to the host and to the keeper.
    let old_cluster = ClusterName::new("old").unwrap();
    let old = cloud
        .create_instances(&request(&old_cluster, 1))
        .await
        .unwrap()
        .remove(0);
    let reused = address(&old);
    ssh_ok(&run, &old, "true");
    let (ok, output) = in_netns(
        &keeper,
        &format!("timeout 10 bash -c 'exec 3<>/dev/tcp/{reused}/22'"),
    );
    assert!(ok, "the keeper reaches the old instance: {output}");
    let old_mac = instance_mac(&old);
    assert_eq!(neighbour_mac(None, reused, &bridge), Some(old_mac.clone()));
    assert_eq!(
        neighbour_mac(Some(&keeper.id), reused, "eth0"),
        Some(old_mac.clone())
    );

    cloud.terminate(REGION, &old_cluster).await.unwrap();
    assert_gone(&run, &old);
    // The precondition of the stall: the host still sends that address to the old MAC.
    assert_eq!(
        neighbour_mac(None, reused, &bridge),
        Some(old_mac.clone()),
        "the host forgot the old instance by itself; the test would prove nothing"
    );

    let new_cluster = ClusterName::new("new").unwrap();
    let started = Instant::now();
    let new = cloud
        .create_instances(&request(&new_cluster, 1))
        .await
        .unwrap()
        .remove(0);
    eprintln!(
        "create 1 instance on a reused address (sshd accepting): {:?}",
        started.elapsed()
    );
    assert_eq!(address(&new), reused, "the freed address is taken again");
    let new_mac = instance_mac(&new);
    assert_ne!(new_mac, old_mac);
    assert_eq!(neighbour_mac(None, reused, &bridge), Some(new_mac.clone()));
    assert_eq!(
        neighbour_mac(Some(&keeper.id), reused, "eth0"),
        Some(new_mac.clone()),
        "the new instance announced its address to the other instances"
    );
    let started = Instant::now();
    assert_eq!(ssh_ok(&run, &new, "hostname"), "new-0");
    eprintln!("first ssh to the reused address: {:?}", started.elapsed());
    let (ok, output) = in_netns(
        &keeper,
        &format!("timeout 10 bash -c 'exec 3<>/dev/tcp/{reused}/22'"),
    );
    assert!(ok, "the keeper reaches the new instance: {output}");

    for cluster in [&keeper_cluster, &new_cluster] {
        cloud.terminate(REGION, cluster).await.unwrap();
    }
}

/// Another aloft home of the same test: the same prefix, bridge and subnet as `run`, its own
/// state directory (`<run's>.<home>`); dropping it cleans up what that home owns.
fn another_home(run: &Run, home: &str) -> Run {
    let mut config = run.config.clone();
    let name = format!(
        "{}.{home}",
        config.state_dir.file_name().unwrap().to_string_lossy()
    );
    config.state_dir = config.state_dir.with_file_name(name);
    let cloud = LocalCloud::new(config.clone()).expect("a valid configuration");
    Run { cloud, config }
}

/// Issue 9: `aloft local cleanup` in one aloft home destroyed the instances of another home
/// that used the same name prefix. Now each instance's name is claimed on the host for the
/// state directory that made it, so two homes with one prefix (and here one bridge and
/// subnet, as with the defaults) get different names and addresses, and cleanup removes only
/// its own home's instances; another home's are named in the report and keep running, and
/// those of a home that no longer exists are listed, then removed only when asked.
#[tokio::test]
async fn cleanup_of_one_home_leaves_another_homes_instances_with_the_same_prefix_alone() {
    let Some(run) = setup(9) else { return };
    let theirs = another_home(&run, "theirs");
    let gone = another_home(&run, "gone");
    let mine_cluster = ClusterName::new("mine").unwrap();
    let theirs_cluster = ClusterName::new("theirs").unwrap();
    let gone_cluster = ClusterName::new("gone").unwrap();
    let mine = run
        .cloud
        .create_instances(&request(&mine_cluster, 1))
        .await
        .unwrap()
        .remove(0);
    let their = theirs
        .cloud
        .create_instances(&request(&theirs_cluster, 1))
        .await
        .unwrap()
        .remove(0);
    let orphan = gone
        .cloud
        .create_instances(&request(&gone_cluster, 1))
        .await
        .unwrap()
        .remove(0);
    let ids = [&mine.id, &their.id, &orphan.id];
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    assert_eq!(ssh_ok(&theirs, &their, "hostname"), "theirs-0");
    // A home that is removed while its instance runs leaves an orphan.
    std::fs::remove_dir_all(&gone.config.state_dir).unwrap();

    let report = cleanup(&run.config, Orphans::List).await.unwrap();
    assert_eq!(report.namespaces, 1, "{report:?}");
    assert_gone(&run, &mine);
    let theirs_owner = std::fs::canonicalize(&theirs.config.state_dir).unwrap();
    assert_eq!(
        report.others_left,
        [ForeignNamespace {
            netns: their.id.clone(),
            owner: Some(theirs_owner.clone()),
        }]
    );
    let orphan_found = ForeignNamespace {
        netns: orphan.id.clone(),
        owner: Some(gone.config.state_dir.clone()),
    };
    assert_eq!(report.orphans_left, std::slice::from_ref(&orphan_found));
    assert!(report.orphans_removed.is_empty());
    assert!(report.bridge_kept && !report.bridge, "{report:?}");
    assert!(report.state_dir);
    assert_eq!(ssh_ok(&theirs, &their, "hostname"), "theirs-0");
    assert!(Path::new("/run/netns").join(&orphan.id).exists());

    // Asked to, it removes the orphan too, and still not the other home's instance.
    let report = cleanup(&run.config, Orphans::Remove).await.unwrap();
    assert_eq!(report.orphans_removed, [orphan_found]);
    assert_eq!(report.namespaces, 1, "{report:?}");
    assert!(!Path::new("/run/netns").join(&orphan.id).exists());
    assert_eq!(report.others_left.len(), 1, "{report:?}");
    assert_eq!(ssh_ok(&theirs, &their, "hostname"), "theirs-0");
    let their_state = theirs.cloud.query(REGION, &theirs_cluster).await.unwrap();
    assert_eq!(states(&their_state), [(0, InstanceState::Running)]);

    // The other home's own cleanup removes its instance, and the bridge with it.
    let report = cleanup(&theirs.config, Orphans::List).await.unwrap();
    assert_eq!(report.namespaces, 1, "{report:?}");
    assert!(report.bridge && !report.bridge_kept, "{report:?}");
    assert_gone(&theirs, &their);
}

#[tokio::test]
async fn an_instance_whose_metadata_was_cut_short_never_breaks_the_cloud() {
    // A launch killed while it wrote an instance's meta.json (before the namespace existed)
    // left the file empty; every later query of the cloud then failed on it.
    let Some(run) = setup(10) else { return };
    let cluster = ClusterName::new("cut").unwrap();
    let dir = run
        .config
        .state_dir
        .join("instances")
        .join(format!("{}-9", run.config.name_prefix));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("meta.json"), b"").unwrap();
    let found = run.cloud.query(REGION, &cluster).await.unwrap();
    assert!(found.is_empty(), "{found:?}");
    // The cloud goes on making instances, and the cut-short one is not taken for one.
    let made = run
        .cloud
        .create_instances(&request(&cluster, 1))
        .await
        .unwrap();
    assert_eq!(made.len(), 1);
    run.cloud.terminate(REGION, &cluster).await.unwrap();
    assert!(run.cloud.query(REGION, &cluster).await.unwrap().is_empty());
}

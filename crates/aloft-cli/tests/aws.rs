//! The CLI against a real EC2 API: moto's emulator on a loopback port (installed by `.ci/run`;
//! see `aloft-provider-aws`'s tests). Built only with the `aws` feature.
//!
//! moto starts no machines, but its launcher can "boot" instances whose addresses are on
//! loopback: a real sshd per instance, set up from the instance's user data and key pair (see
//! `moto_launcher.py`). That lets one test (as root: sshd binds port 22) run `aloft launch`
//! on EC2 end to end.
#![cfg(feature = "aws")]

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// moto, stopped when dropped (also when the test fails).
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        Moto::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Moto {
        let python = std::env::var_os("ALOFT_MOTO_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/opt/aloft-moto/bin/python"));
        let launcher = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../aloft-provider-aws/tests/ec2/moto_launcher.py");
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(&python)
            .arg(launcher)
            .arg(port.to_string())
            .envs(env.iter().copied())
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "starting moto with {} ({err}); .ci/run installs it",
                    python.display()
                )
            });
        let mut moto = Moto { child, port };
        let start = Instant::now();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto exited ({status}); is it installed (.ci/run)?");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "moto did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }
}

impl Drop for Moto {
    /// SIGTERM first, so a booting launcher powers its instances off (sshd and whatever ran
    /// through it), then SIGKILL.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aloft(home: &Path, moto: &Moto, key: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(args)
        .env("ALOFT_HOME", home)
        // Where this machine can run the local cloud, its sweep for orphans must not see
        // anybody else's instances.
        .env(
            "ALOFT_LOCAL_PREFIX",
            format!("aw{}", std::process::id() % 100_000),
        )
        .env(
            "ALOFT_AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", moto.port),
        )
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("aloft runs")
}

#[test]
fn check_finds_aws_usable_against_a_real_ec2_api_and_enables_it() {
    let moto = Moto::start();
    let home = std::env::temp_dir().join(format!("aloft-cli-aws-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let output = aloft(&home, &moto, "testing", &["check", "-o", "json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let checks: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let aws = &checks[1];
    assert_eq!(aws["cloud"], "aws");
    assert_eq!(aws["usable"], true, "{aws}");
    assert!(aws["detail"].as_str().unwrap().contains("account"), "{aws}");
    let enabled = std::fs::read_to_string(home.join("enabled_clouds.json")).unwrap();
    assert_eq!(enabled, r#"["aws"]"#);
    let _ = std::fs::remove_dir_all(&home);
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| text(&out.stdout).trim() == "0")
}

/// Runs a Python snippet with moto's venv (which has boto3) against `moto`, returning stdout.
fn boto3(moto: &Moto, script: &str) -> String {
    let python = std::env::var_os("ALOFT_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/aloft-moto/bin/python"));
    let prelude = format!(
        "import boto3\nec2 = boto3.client('ec2', region_name='us-east-1', \
         endpoint_url='http://127.0.0.1:{}', aws_access_key_id='testing', \
         aws_secret_access_key='testing')\n",
        moto.port
    );
    let output = Command::new(python)
        .args(["-c", &format!("{prelude}{script}")])
        .output()
        .expect("python runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// Live (not terminated) instances in us-east-1, as `id state zone` lines.
fn live_instances(moto: &Moto) -> Vec<String> {
    boto3(
        moto,
        "for r in ec2.describe_instances()['Reservations']:\n\
         \x20   for i in r['Instances']:\n\
         \x20       if i['State']['Name'] != 'terminated':\n\
         \x20           print(i['InstanceId'], i['State']['Name'], i['Placement']['AvailabilityZone'])\n",
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

#[test]
fn launch_on_ec2_end_to_end_with_failover_stop_start_and_orphans() {
    if !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the EC2 end-to-end test as root"
        );
        eprintln!("note: not root; skipping the EC2 end-to-end test (sshd must bind port 22)");
        return;
    }
    let pid = std::process::id();
    // A VPC on loopback, unique to this run: its instances' addresses are 127.N.x.y.
    let octet = 100 + pid % 150;
    // Each instance's sshd binds port 22 on its own address: impossible if this machine runs
    // an sshd on every address.
    if let Err(err) = TcpListener::bind((Ipv4Addr::new(127, octet as u8, 0, 1), 22)) {
        eprintln!(
            "note: port 22 on loopback is taken ({err}), so emulated instances cannot run \
             sshd; skipping the EC2 end-to-end test"
        );
        return;
    }
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("aws-e2e-{pid}"));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(home.join("instances")).unwrap();
    let moto = Moto::start_with(&[
        (
            "ALOFT_MOTO_BOOT_DIR",
            home.join("instances").to_str().unwrap(),
        ),
        // The zone tried first (its subnet is the roomiest) has no room for the type: the
        // adapter must move on to the other.
        ("ALOFT_MOTO_ICE", "m6i.large@us-east-1a"),
    ]);
    let vpc_name = format!("aloft-loopback-{pid}");
    let image = boto3(
        &moto,
        &format!(
            "vpc = ec2.create_vpc(CidrBlock='127.{octet}.0.0/16', TagSpecifications=[{{\
             'ResourceType': 'vpc', 'Tags': [{{'Key': 'Name', 'Value': '{vpc_name}'}}]}}])['Vpc']\n\
             for cidr, zone in [('0.0/23', 'us-east-1a'), ('2.0/24', 'us-east-1b')]:\n\
             \x20   ec2.create_subnet(VpcId=vpc['VpcId'], CidrBlock=f'127.{octet}.{{cidr}}', \
             AvailabilityZone=zone)\n\
             images = ec2.describe_images(Owners=['amazon'])['Images']\n\
             print([i['ImageId'] for i in images if i.get('Architecture') == 'x86_64'][0])\n"
        ),
    );
    std::fs::write(
        home.join("aws.yaml"),
        format!(
            "vpc_name: {vpc_name}\nuse_internal_ips: true\nssh_user: root\nimage_id: {}\n\
             poll_interval_ms: 100\nstate_timeout_secs: 60\n",
            image.trim()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| aloft(&home, &moto, "testing", args);
    let check = run(&["check"]);
    assert!(check.status.success(), "{}", text(&check.stderr));

    let task = home.join("task.yaml");
    std::fs::write(
        &task,
        "name: boot\nnum_nodes: 2\nresources:\n  cloud: aws\n  region: us-east-1\n  \
         instance_type: m6i.large\nrun: |\n  echo \"hello from node $SKYPILOT_NODE_RANK of \
         $SKYPILOT_NUM_NODES\"\n",
    )
    .unwrap();
    let launch = run(&["launch", task.to_str().unwrap(), "-c", "boot"]);
    let (out, err) = (text(&launch.stdout), text(&launch.stderr));
    assert!(launch.status.success(), "{out}\n{err}");
    assert!(out.contains("hello from node 0 of 2"), "{out}\n{err}");
    assert!(out.contains("hello from node 1 of 2"), "{out}\n{err}");
    let instances = live_instances(&moto);
    assert_eq!(instances.len(), 2, "{instances:?}");
    assert!(
        instances
            .iter()
            .all(|line| line.ends_with("running us-east-1b")),
        "{instances:?}"
    );
    let status = run(&["status", "-o", "json"]);
    let clusters: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(clusters[0]["cloud"], "aws", "{clusters}");

    // Stop powers the machines off; start boots them again and the agent comes back with its
    // queue (the head's disk survived).
    let stop = run(&["stop", "boot"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    assert!(
        live_instances(&moto)
            .iter()
            .all(|line| line.contains(" stopped ")),
        "{:?}",
        live_instances(&moto)
    );
    let start = run(&["start", "boot"]);
    assert!(start.status.success(), "{}", text(&start.stderr));
    let again = home.join("again.yaml");
    std::fs::write(&again, "run: echo again on $SKYPILOT_NODE_RANK\n").unwrap();
    let exec = run(&["exec", "boot", again.to_str().unwrap()]);
    assert!(exec.status.success(), "{}", text(&exec.stderr));
    assert!(
        text(&exec.stdout).contains("again on 0"),
        "{}",
        text(&exec.stdout)
    );
    let queue = run(&["queue", "boot", "-o", "json"]);
    let jobs: serde_json::Value = serde_json::from_slice(&queue.stdout).unwrap();
    assert_eq!(jobs.as_array().map(Vec::len), Some(2), "{jobs}");

    // aloft forgets the cluster (a lost state directory): the sweep finds it on EC2, and down
    // removes it there.
    std::fs::remove_file(home.join("state.db")).unwrap();
    let refresh = run(&["status", "--refresh"]);
    assert!(
        text(&refresh.stderr).contains("Instances of `boot` are on aws (us-east-1)"),
        "{}",
        text(&refresh.stderr)
    );
    let down = run(&["down", "boot"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        live_instances(&moto).is_empty(),
        "{:?}",
        live_instances(&moto)
    );
    let groups = boto3(
        &moto,
        "print([g['GroupName'] for g in ec2.describe_security_groups()['SecurityGroups']])",
    );
    assert!(!groups.contains("aloft-cluster-boot"), "{groups}");
    drop(moto);
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn a_spot_cluster_on_ec2_cannot_autostop_without_down() {
    let moto = Moto::start();
    let home = std::env::temp_dir().join(format!("aloft-cli-aws-spot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let run = |args: &[&str]| aloft(&home, &moto, "testing", args);
    assert!(run(&["check"]).status.success());
    let task = home.join("spot.yaml");
    std::fs::write(
        &task,
        "resources:\n  cloud: aws\n  region: us-east-1\n  instance_type: m6i.large\n  \
         use_spot: true\nrun: echo never\n",
    )
    .unwrap();
    let launch = run(&["launch", task.to_str().unwrap(), "-c", "cheap", "-i", "5"]);
    assert!(!launch.status.success());
    let err = text(&launch.stderr);
    assert!(
        err.contains("spot instances, which aws cannot stop"),
        "{err}"
    );
    // Refused before anything was made.
    assert!(
        live_instances(&moto).is_empty(),
        "{:?}",
        live_instances(&moto)
    );
    let _ = std::fs::remove_dir_all(&home);
}

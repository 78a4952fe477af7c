//! `aloft check` against a real EC2 API: moto's emulator on a loopback port (installed by
//! `.ci/run`; see `aloft-provider-aws`'s tests). Built only with the `aws` feature.
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
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aloft(home: &Path, moto: &Moto, key: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(args)
        .env("ALOFT_HOME", home)
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

//! Starts moto's EC2 emulator for one test, on a free loopback port, and stops it when dropped
//! (also when the test panics).
//!
//! moto comes from PyPI (`moto[server]`) in a virtualenv that `.ci/run` creates; the tests use
//! that venv's Python (`$ALOFT_MOTO_PYTHON`, default `/opt/aloft-moto/bin/python`) to run
//! `moto_launcher.py`, which adds the faults moto lacks (insufficient capacity, vCPU limits,
//! throttling). Every test gets its own server, so tests never see each other's resources.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aloft_provider_aws::{AwsCloud, AwsConfig, StaticCredentials};

/// Where `.ci/run` installs moto.
const DEFAULT_PYTHON: &str = "/opt/aloft-moto/bin/python";

const INSTALL_HINT: &str = "moto's EC2 emulator is needed for the AWS adapter's tests. Install \
     it as .ci/run does:\n    python3 -m venv /opt/aloft-moto && /opt/aloft-moto/bin/pip install \
     'moto[server]>=5.2,<6'\nor point ALOFT_MOTO_PYTHON at a Python that can `import moto`.";

/// The Python that has moto, or a panic saying how to install it.
fn moto_python() -> PathBuf {
    let python = std::env::var_os("ALOFT_MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PYTHON));
    let has_moto = Command::new(&python)
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        has_moto,
        "{} cannot import moto.\n{INSTALL_HINT}",
        python.display()
    );
    python
}

/// A running moto server. Dropping it kills the server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    pub port: u16,
    /// The server's log (moto prints each request), kept with the test's temporary files.
    pub log: PathBuf,
    /// The test's own state directory (the adapter's key and caches go here).
    pub dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto with no injected faults.
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// Starts moto with the launcher's fault-injection variables (see `moto_launcher.py`).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let python = moto_python();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = dir.path().join("moto.log");
        let log_file = std::fs::File::create(&log).expect("the moto log file");
        let port = free_port();
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ec2/moto_launcher.py");
        let mut command = Command::new(python);
        command
            .arg(launcher)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            // Strict like EC2 where moto can be: unknown instance types are errors.
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("starting moto_launcher.py");
        let mut moto = Moto {
            child,
            port,
            log,
            dir,
        };
        moto.wait_ready();
        moto
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "moto exited before serving ({status}); its log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {} within 60 s; its log:\n{}",
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An adapter configuration aimed at this server, with fast polling and no SSH wait (moto's
    /// addresses lead nowhere).
    pub fn config(&self) -> AwsConfig {
        AwsConfig {
            endpoint_url: Some(self.endpoint()),
            static_credentials: Some(StaticCredentials {
                access_key_id: "testing".into(),
                secret_access_key: "testing".into(),
                session_token: None,
            }),
            home_region: Some("us-east-1".into()),
            state_dir: self.dir.path().join("state"),
            // moto's Canonical images are older Ubuntu releases than the default pattern's.
            image_name_pattern: "ubuntu/images/hvm-ssd/ubuntu-*-{arch}-server-*".into(),
            wait_for_ssh: false,
            poll_interval_ms: 50,
            state_timeout_secs: 30,
            max_attempts: 3,
            ..AwsConfig::default()
        }
    }

    pub async fn cloud(&self) -> AwsCloud {
        AwsCloud::new(self.config()).await.expect("the AWS adapter")
    }

    /// A plain EC2 client on this server, for looking behind the adapter's back.
    pub async fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a loopback port");
    listener.local_addr().expect("its address").port()
}

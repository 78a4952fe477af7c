//! An `aloft server` of a test's own: started on a home the test owns, waited for until it
//! listens (its `api.json` is written), ended by its pid on drop. The home stays: the test
//! made it and removes it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Served {
    pub home: PathBuf,
    child: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// `aloft server --port 0 ARGS` on `home`, with `envs` set (and the caller's `ALOFT_DB` and
    /// `ALOFT_API_URL` removed); its standard error goes to [`Served::log`].
    pub fn start(home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Served {
        std::fs::create_dir_all(home).unwrap();
        let log = std::fs::File::create(log_path(home)).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_aloft"))
            .args(["server", "--port", "0"])
            .args(args)
            .env("ALOFT_HOME", home)
            .env_remove("ALOFT_DB")
            .env_remove("ALOFT_API_URL")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut served = Served {
            home: home.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !served.home.join("server/api.json").exists() {
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("the server ended ({status}):\n{}", served.log());
            }
            assert!(Instant::now() < deadline, "no server:\n{}", served.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        served
    }

    pub fn url(&self) -> String {
        let info: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.home.join("server/api.json")).unwrap(),
        )
        .unwrap();
        info["url"].as_str().unwrap().to_owned()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.home.join("server/token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote on its standard error.
    pub fn log(&self) -> String {
        std::fs::read_to_string(log_path(&self.home)).unwrap_or_default()
    }

    /// Whether the server is still running (it has not ended).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Ends the server at once (SIGKILL: no chance to tidy up) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_path(home: &Path) -> PathBuf {
    home.join("server.err")
}

/// A stopped cluster's record (nothing behind it on any cloud), for tests that read clusters.
pub fn stopped_cluster(name: &str) -> aloft_store::Cluster {
    aloft_store::Cluster {
        name: name.to_owned(),
        status: aloft_store::ClusterStatus::Stopped,
        cloud: "local".to_owned(),
        region: "local".to_owned(),
        zone: Some("local-a".to_owned()),
        instance_type: "local.small".to_owned(),
        num_nodes: 1,
        spot: false,
        hourly_price: 0.01,
        autostop_minutes: None,
        autostop_down: false,
        resources: serde_json::json!({}),
        generation: 0,
        created_at: 0,
        updated_at: 0,
    }
}

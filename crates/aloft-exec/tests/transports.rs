//! The transports against real things: `bash` on this machine, and a real `sshd` started on a
//! free loopback port with its own host key (the same daemon local-cloud instances run).

use aloft_exec::{
    ConnectRetry, ExecError, LocalTransport, RemoteCommand, SshTarget, SshTransport, Stream,
    Transport,
};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under /tmp, unique per process and call, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let idx = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!(
            "/tmp/aloft-exec-{tag}-{}-{idx}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn keygen(path: &Path) -> String {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// A real sshd on 127.0.0.1, killed (and its files removed) on drop.
struct Sshd {
    /// `None` until [`Sshd::spawn`].
    child: Option<Child>,
    port: u16,
    client_key: PathBuf,
    host_key: String,
    user: String,
    dir: Scratch,
}

impl Sshd {
    /// Starts sshd, or says why it can't: `None` locally when sshd is not installed; in CI
    /// (`CI` set) a missing sshd is a failure, since .ci/run installs it.
    fn start() -> Option<Sshd> {
        let mut sshd = Sshd::prepare()?;
        sshd.spawn();
        // Wait (bounded) until it accepts connections.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", sshd.port)).is_ok() {
                return Some(sshd);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "sshd did not listen: {}",
            std::fs::read_to_string(sshd.dir.0.join("sshd.log")).unwrap_or_default()
        );
    }

    /// Everything [`Sshd::start`] does except starting the daemon: its port is chosen (and
    /// free), its keys and configuration written, and nothing listens yet.
    fn prepare() -> Option<Sshd> {
        if !Path::new("/usr/sbin/sshd").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install openssh-server (.ci/run)"
            );
            eprintln!("note: /usr/sbin/sshd missing; skipping (apt-get install openssh-server)");
            return None;
        }
        let dir = Scratch::new("sshd");
        let host_key = keygen(&dir.0.join("host_key"));
        let client_pub = keygen(&dir.0.join("client_key"));
        std::fs::write(dir.0.join("authorized_keys"), client_pub).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "ListenAddress 127.0.0.1:{port}\nHostKey {dir}/host_key\nPidFile none\n\
             AuthorizedKeysFile {dir}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nSubsystem sftp internal-sftp\n",
            dir = dir.0.display()
        );
        std::fs::write(dir.0.join("sshd_config"), config).unwrap();
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
        Some(Sshd {
            child: None,
            port,
            client_key: dir.0.join("client_key"),
            host_key,
            user: user.trim().to_owned(),
            dir,
        })
    }

    /// Starts the daemon (once) without waiting for it to listen.
    fn spawn(&mut self) {
        if self.child.is_some() {
            return;
        }
        // sshd running as root wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.dir.0.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.0.join("sshd.log")).unwrap())
            .spawn()
            .expect("sshd starts");
        self.child = Some(child);
    }

    fn target(&self) -> SshTarget {
        SshTarget {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            user: self.user.clone(),
            identity_file: self.client_key.clone(),
            host_key: self.host_key.clone(),
        }
    }

    fn transport(&self, tag: &str) -> (SshTransport, Scratch) {
        let state = Scratch::new(tag);
        (SshTransport::new(self.target(), &state.0).unwrap(), state)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The common checks every transport must pass.
async fn behaves_like_a_transport(transport: &dyn Transport, scratch: &Path) {
    // Output lines in order, per stream, and the exit code.
    let mut lines = Vec::new();
    let mut sink = |stream: Stream, line: &str| lines.push((stream, line.to_owned()));
    let command = RemoteCommand::new("echo one; echo two >&2; echo \"$GREETING\"; pwd; exit 3")
        .env("GREETING", "it's a 'quoted' $HOME")
        .cwd("/tmp");
    let code = transport.run(&command, &mut sink).await.unwrap();
    assert_eq!(code, 3);
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(stdout, ["one", "it's a 'quoted' $HOME", "/tmp"]);
    assert!(lines.contains(&(Stream::Stderr, "two".to_owned())));

    // Output streams while the command runs: the command only finishes after the test has seen
    // its first line and answered by creating a file.
    let flag = scratch.join("flag");
    let script = format!(
        "echo ready; for i in $(seq 1 600); do [ -f {flag} ] && break; sleep 0.05; done; echo done",
        flag = flag.display()
    );
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let command = RemoteCommand::new(script);
    let run = async {
        let mut sink = |_: Stream, line: &str| {
            let _ = sender.send(line.to_owned());
        };
        transport.run(&command, &mut sink).await
    };
    let answer = async {
        let first = tokio::time::timeout(Duration::from_secs(20), receiver.recv()).await;
        assert_eq!(
            first.ok().flatten().as_deref(),
            Some("ready"),
            "the first line arrived before the end"
        );
        std::fs::write(&flag, "").unwrap();
    };
    let (code, ()) = tokio::join!(run, answer);
    assert_eq!(code.unwrap(), 0);
    assert_eq!(receiver.recv().await.as_deref(), Some("done"));

    // Uploads: a directory's contents, and a single file.
    let source = scratch.join("workdir");
    std::fs::create_dir_all(source.join("sub")).unwrap();
    std::fs::write(source.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(source.join("sub/b.txt"), "beta\n").unwrap();
    let remote = scratch.join("remote dir");
    let remote = remote.to_str().unwrap();
    transport.upload(&source, remote).await.unwrap();
    transport
        .upload(&source.join("a.txt"), &format!("{remote}/deep/copy.txt"))
        .await
        .unwrap();
    let (code, text) = transport
        .output(&RemoteCommand::new("cat a.txt sub/b.txt deep/copy.txt").cwd(remote))
        .await
        .unwrap();
    assert_eq!((code, text.as_str()), (0, "alpha\nbeta\nalpha\n"));

    // A missing local file is an error that names it.
    let missing = scratch.join("nope");
    match transport.upload(&missing, remote).await {
        Err(ExecError::LocalFile { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected LocalFile, got {other:?}"),
    }
}

#[tokio::test]
async fn local_transport() {
    let scratch = Scratch::new("local");
    behaves_like_a_transport(&LocalTransport, &scratch.0).await;
}

#[tokio::test]
async fn ssh_transport_against_a_real_sshd() {
    let Some(sshd) = Sshd::start() else { return };
    let (transport, _state) = sshd.transport("ssh");
    let scratch = Scratch::new("ssh-work");
    behaves_like_a_transport(&transport, &scratch.0).await;
    // The connection is shared: after the commands above a master is open.
    assert!(transport.is_connected().await);
    transport.disconnect().await;
    assert!(!transport.is_connected().await);
}

#[tokio::test]
async fn ssh_refuses_a_node_with_another_host_key() {
    let Some(sshd) = Sshd::start() else { return };
    let other = Scratch::new("otherkey");
    let mut target = sshd.target();
    target.host_key = keygen(&other.0.join("k"));
    let state = Scratch::new("pin");
    let transport = SshTransport::new(target, &state.0).unwrap();
    match transport.output(&RemoteCommand::new("true")).await {
        Err(ExecError::HostKeyMismatch { .. }) => {}
        other => panic!("expected HostKeyMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn ssh_classifies_refused_logins_and_dead_nodes() {
    let Some(sshd) = Sshd::start() else { return };
    let strangers = Scratch::new("stranger");
    keygen(&strangers.0.join("k"));
    let mut target = sshd.target();
    target.identity_file = strangers.0.join("k");
    let state = Scratch::new("auth");
    let transport = SshTransport::new(target, &state.0).unwrap();
    match transport.output(&RemoteCommand::new("true")).await {
        Err(ExecError::AuthFailed { .. }) => {}
        other => panic!("expected AuthFailed, got {other:?}"),
    }

    let mut target = sshd.target();
    target.port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = Scratch::new("dead");
    let transport = SshTransport::new(target, &state.0).unwrap();
    match transport.output(&RemoteCommand::new("true")).await {
        Err(ExecError::Unreachable { .. }) => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

/// A node whose sshd is not up yet when aloft first connects (a VM still booting, an instance
/// whose address was just reused) is waited for: `connect` retries, says what it waits for,
/// and succeeds once the daemon answers. The daemon starts only after the first attempt has
/// failed, so the wait is certain, not a race.
#[tokio::test]
async fn connect_waits_for_a_node_whose_sshd_starts_late() {
    let Some(mut sshd) = Sshd::prepare() else {
        return;
    };
    let state = Scratch::new("late");
    let transport = SshTransport::new(sshd.target(), &state.0).unwrap();
    let mut waits = Vec::new();
    let mut on_retry = |retry: &ConnectRetry<'_>| {
        waits.push(retry.to_string());
        sshd.spawn();
    };
    transport.connect_reporting(&mut on_retry).await.unwrap();
    assert!(!waits.is_empty(), "the first attempt must have failed");
    let target = format!("{}@127.0.0.1:{}", sshd.user, sshd.port);
    assert!(
        waits[0].starts_with(&format!(
            "still waiting for {target} to accept an SSH connection (attempt 1: "
        )),
        "{waits:?}"
    );
    assert!(waits[0].contains("refused"), "{waits:?}");
    let (code, text) = transport
        .output(&RemoteCommand::new("echo up"))
        .await
        .unwrap();
    assert_eq!((code, text.as_str()), (0, "up\n"));
    transport.disconnect().await;
}

/// A node that accepts TCP connections but never speaks SSH (a hung or half-dead machine) does
/// not hold `connect` forever: once the deadline has passed it is `Unreachable`, and the
/// detail says how long it waited and what ssh last saw.
#[tokio::test]
async fn a_node_that_never_answers_is_unreachable_after_the_deadline() {
    let Some(sshd) = Sshd::prepare() else { return };
    // The kernel completes handshakes into the backlog of a listener nobody accepts on, so
    // ssh connects and then waits for a banner that never comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut target = sshd.target();
    target.port = silent.local_addr().unwrap().port();
    let state = Scratch::new("silent");
    let transport = SshTransport::new(target, &state.0)
        .unwrap()
        .with_connect_deadline(Duration::from_secs(3));
    match transport.connect().await {
        Err(ExecError::Unreachable { target, detail }) => {
            assert!(target.ends_with(&format!(":{}", silent.local_addr().unwrap().port())));
            assert!(detail.starts_with("no SSH connection within "), "{detail}");
            assert!(detail.contains("banner exchange"), "{detail}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    drop(silent);
}

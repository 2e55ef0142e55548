//! A private Dovecot (Debian's `dovecot-imapd` and `dovecot-pop3d`) for a test: its own
//! configuration, runtime and state directories, log and Maildir under a temporary
//! directory; imaps and pop3s on free loopback ports with a self-signed certificate
//! made for it; one user with a plain password. Never the system instance.
//!
//! Dovecot's master must start as root (its mail processes run as the `mail` user):
//! where Dovecot is missing or the tests do not run as root the test is skipped,
//! saying why, except under CI (`MAILCAST_TEST_CI`), where that fails it.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const DOVECOT: &str = "/usr/sbin/dovecot";
/// The system user mail is stored as (Debian's `mail`, uid 8).
const MAIL_USER: &str = "mail";
pub const USER: &str = "bounces";
pub const PASSWORD: &str = "Dove-Secret-7";

pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Child,
    pub imaps_port: u16,
    pub pop3s_port: u16,
    delivered: AtomicU32,
}

impl Dovecot {
    /// Starts an instance and waits until it takes connections. None when the test
    /// must be skipped (said on stderr).
    pub fn start() -> Option<Dovecot> {
        if let Some(reason) = unavailable() {
            assert!(
                std::env::var_os("MAILCAST_TEST_CI").is_none(),
                "MAILCAST_TEST_CI is set but {reason}"
            );
            eprintln!("skipped: {reason}");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        // The login and mail processes (dovenull, mail) must reach what is below.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        self_signed_certificate(root);
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let maildir = root.join("home").join("Maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        chown_mail(&root.join("home"));
        let imaps_port = free_port();
        let pop3s_port = std::iter::repeat_with(free_port)
            .find(|&port| port != imaps_port)
            .unwrap();
        let conf = root.join("dovecot.conf");
        std::fs::write(&conf, dovecot_conf(root, imaps_port, pop3s_port)).unwrap();
        let child = Command::new(DOVECOT)
            .arg("-c")
            .arg(&conf)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let dovecot = Dovecot {
            dir,
            child,
            imaps_port,
            pop3s_port,
            delivered: AtomicU32::new(0),
        };
        dovecot.wait_for_ports();
        Some(dovecot)
    }

    /// `imaps://bounces:…@127.0.0.1:PORT/FOLDER`
    pub fn imaps_url(&self, folder: &str) -> String {
        format!(
            "imaps://{USER}:{PASSWORD}@127.0.0.1:{}/{folder}",
            self.imaps_port
        )
    }

    /// `pop3s://bounces:…@127.0.0.1:PORT`
    pub fn pop3s_url(&self) -> String {
        format!("pop3s://{USER}:{PASSWORD}@127.0.0.1:{}", self.pop3s_port)
    }

    /// The server's self-signed certificate, to trust as a CA.
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Puts a message in INBOX as a mail server would: written in tmp/, renamed into new/.
    pub fn deliver(&self, raw: &[u8]) {
        let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("{n}.M{n}P1.mailcast-test");
        let maildir = self.folder_dir("INBOX");
        let tmp = maildir.join("tmp").join(&name);
        std::fs::write(&tmp, raw).unwrap();
        chown_mail(&tmp);
        std::fs::rename(&tmp, maildir.join("new").join(&name)).unwrap();
    }

    /// The messages in `folder` (INBOX, or a folder's name), as stored, sorted.
    pub fn messages(&self, folder: &str) -> Vec<String> {
        let dir = self.folder_dir(folder);
        let mut found: Vec<String> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(dir.join(sub)).ok())
            .flatten()
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .map(|raw| String::from_utf8_lossy(&raw).into_owned())
            .collect();
        found.sort();
        found
    }

    /// What Dovecot logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Maildir++: INBOX is the Maildir itself, folder F is `.F` inside it.
    fn folder_dir(&self, folder: &str) -> PathBuf {
        let maildir = self.dir.path().join("home").join("Maildir");
        match folder {
            "INBOX" => maildir,
            other => maildir.join(format!(".{other}")),
        }
    }

    fn wait_for_ports(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [self.imaps_port, self.pop3s_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "Dovecot did not listen on {port}; its log:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its login and mail processes; SIGKILL would not.
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dovecot_conf(root: &Path, imaps_port: u16, pop3s_port: u16) -> String {
    let root = root.display();
    format!(
        "protocols = imap pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
# The mail user is a system account (uid 8).
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid={MAIL_USER} gid={MAIL_USER} home={root}/home
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = {pop3s_port}
    ssl = yes
  }}
}}
"
    )
}

/// cert.pem and key.pem for 127.0.0.1 and localhost. Not a CA (rustls refuses a CA
/// certificate as a server's own).
fn self_signed_certificate(root: &Path) {
    let output = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(root.join("key.pem"))
        .arg("-out")
        .arg(root.join("cert.pem"))
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Why a private Dovecot cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if !PathBuf::from(DOVECOT).is_file() {
        return Some(format!(
            "{DOVECOT} is missing (Debian packages dovecot-imapd, dovecot-pop3d)"
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("Dovecot's master process must be started as root".into());
    }
    None
}

fn chown_mail(path: &Path) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{MAIL_USER}:{MAIL_USER}"))
        .arg(path)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown {MAIL_USER} {}", path.display());
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

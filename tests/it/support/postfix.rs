//! A private Postfix instance (Debian's `postfix`) for a test: its own configuration
//! directory, queue and log under a temporary directory, listening on a free loopback
//! port, never the system instance. Local users it does not know bounce with real
//! DSNs; a transport map sends the bounce domain to the test's receiver and known
//! addresses to `discard`.
//!
//! Postfix's master process must start as root (it drops to the `postfix` user):
//! where Postfix is missing or the tests do not run as root the test is skipped,
//! saying why, except under CI (`MAILCAST_TEST_CI`), where that fails it.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const POSTFIX: &str = "/usr/sbin/postfix";

/// The daemons the test needs, none chrooted (a chroot would need copies of system
/// files under the queue directory).
const MASTER_CF: &str = "\
pickup    unix  n - n 60   1 pickup
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 1    1 qmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
";

pub struct Postfix {
    dir: tempfile::TempDir,
    /// Where it takes mail (SMTP, no TLS, no authentication, relays for 127.0.0.0/8).
    pub port: u16,
}

impl Postfix {
    /// Starts an instance whose local domain is `local_domain`: `known` local parts are
    /// delivered (discarded), every other bounces; mail for `bounce_domain` goes to
    /// `127.0.0.1:bounce_port`. None when the test must be skipped (said on stderr).
    pub fn start(
        local_domain: &str,
        known: &[&str],
        bounce_domain: &str,
        bounce_port: u16,
    ) -> Option<Postfix> {
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
        // The postfix user must reach the queue.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let transport: String = known
            .iter()
            .map(|user| format!("{user}@{local_domain} discard:delivered\n"))
            .chain([format!("{bounce_domain} smtp:[127.0.0.1]:{bounce_port}\n")])
            .collect();
        std::fs::write(root.join("transport"), transport).unwrap();
        std::fs::write(root.join("main.cf"), main_cf(root, local_domain)).unwrap();
        let master = format!("127.0.0.1:{port} inet n - n - - smtpd\n{MASTER_CF}");
        std::fs::write(root.join("master.cf"), master).unwrap();
        for sub in ["queue", "data"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        chown_postfix(&root.join("data"));
        let postfix = Postfix { dir, port };
        postfix.run(&["start"]);
        Some(postfix)
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// What Postfix logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    fn run(&self, args: &[&str]) {
        let output = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run postfix");
        assert!(
            output.status.success(),
            "postfix {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.path())
            .arg("stop")
            .stdin(Stdio::null())
            .output();
    }
}

fn main_cf(root: &Path, local_domain: &str) -> String {
    let root = root.display();
    format!(
        "compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
meta_directory = /etc/postfix
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = mx.{local_domain}
mydomain = {local_domain}
myorigin = $myhostname
mydestination = {local_domain}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Accept every local address at RCPT: unknown users bounce afterwards, with a DSN.
local_recipient_maps =
alias_maps =
alias_database =
transport_maps = texthash:{root}/transport
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = no
delay_warning_time = 0
biff = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"
    )
}

/// Why a private Postfix cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if !PathBuf::from(POSTFIX).is_file() {
        return Some(format!("{POSTFIX} is missing (Debian package postfix)"));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("Postfix's master process must be started as root".into());
    }
    None
}

fn chown_postfix(path: &Path) {
    let status = Command::new("chown")
        .arg("postfix")
        .arg(path)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown postfix {}", path.display());
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

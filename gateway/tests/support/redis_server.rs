//! A real `redis-server` for tests: started on a free loopback port in its
//! own temporary folder, configured on the command line, killed by PID on
//! drop. It can be stopped, frozen and restarted on the same port and
//! folder, which the failure tests need. It can also require a password
//! or serve TLS only, with a certificate of a throwaway CA made by the
//! `openssl` command line tool.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the server keeps its data across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing: a restart loses everything.
    None,
    /// Append-only file, fsync on every write: a restart loses nothing.
    Aof,
}

/// Certificates for a TLS-only server: a CA and a server certificate it
/// signed for `localhost` and `127.0.0.1`.
pub struct Tls {
    pub ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    persistence: Persistence,
    /// Extra command line arguments (`--requirepass`, TLS files).
    extra: Vec<String>,
    tls: Option<Tls>,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(persistence: Persistence) -> Self {
        Self::start_with(persistence, &[], false)
    }

    /// A server that requires `password` (`--requirepass`).
    pub fn with_password(password: &str) -> Self {
        Self::start_with(Persistence::None, &["--requirepass", password], false)
    }

    /// A server that speaks TLS only (`--port 0 --tls-port`), or `None`
    /// when `openssl` is missing or this redis-server was built without TLS.
    pub fn with_tls() -> Option<Self> {
        // A build without TLS knows no `tls-port` directive ("Bad
        // directive"); one with TLS only rejects the value.
        let probe = Command::new("redis-server")
            .args(["--tls-port", "not-a-port"])
            .output()
            .ok()?;
        let said = String::from_utf8_lossy(&probe.stdout).into_owned()
            + &String::from_utf8_lossy(&probe.stderr);
        if said.contains("Bad directive") {
            return None;
        }
        Command::new("openssl").arg("version").output().ok()?;
        Some(Self::start_with(Persistence::None, &[], true))
    }

    fn start_with(persistence: Persistence, extra: &[&str], tls: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("logs-sse-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let tls = tls.then(|| make_certificates(&dir));
        let mut server = RedisServer {
            port,
            dir,
            persistence,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
            tls,
            child: None,
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args(["--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(&tls.cert_file)
                .arg("--tls-key-file")
                .arg(&tls.key_file)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca_file),
        };
        command
            .args(&self.extra)
            .args(["--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(["--save", "", "--daemonize", "no", "--protected-mode", "no"])
            .args(["--logfile", "redis.log"]);
        match self.persistence {
            Persistence::None => command.args(["--appendonly", "no"]),
            Persistence::Aof => command.args(["--appendonly", "yes", "--appendfsync", "always"]),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (is it installed? scripts/lib.sh ensure_redis)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut socket) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls.is_some() {
            // Listening is enough: the tests' own TLS clients check the rest.
            return true;
        }
        let _ = socket.set_read_timeout(Some(Duration::from_secs(1)));
        // A server with a password answers `-NOAUTH ...`: it is up too.
        let mut reply = [0u8; 7];
        socket.write_all(b"PING\r\n").is_ok()
            && socket.read_exact(&mut reply).is_ok()
            && (&reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"))
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again on the same port and folder.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends a signal (`STOP`, `CONT`) to the server.
    pub fn signal(&self, name: &str) {
        let pid = self.pid().expect("running").to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Runs a command with `redis-cli` and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        if let Some(tls) = &self.tls {
            command.args(["--tls", "--cacert"]).arg(&tls.ca_file);
        }
        let output = command.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a frozen (SIGSTOP) server too.
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A throwaway CA and a server certificate for `localhost` and `127.0.0.1`
/// in `dir`, made with the `openssl` command line tool (P-256 keys: fast).
fn make_certificates(dir: &std::path::Path) -> Tls {
    let openssl = |args: &str| {
        let output = Command::new("openssl")
            .current_dir(dir)
            .args(args.split(' '))
            .output()
            .expect("openssl");
        assert!(
            output.status.success(),
            "openssl {args}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(&format!(
        "req -x509 {key} -keyout ca.key -out ca.pem -days 1 -subj /CN=test-ca"
    ));
    openssl(&format!(
        "req {key} -keyout server.key -out server.csr -subj /CN=localhost"
    ));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("server.ext");
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
         -out server.pem -days 1 -extfile server.ext",
    );
    Tls {
        ca_file: dir.join("ca.pem"),
        cert_file: dir.join("server.pem"),
        key_file: dir.join("server.key"),
    }
}

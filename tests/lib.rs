//! System-test helpers.
//!
//! - [`redis_server`]: a real `redis-server` process per test, on a free port in a
//!   temporary directory, that can be killed with `SIGKILL` and restarted on its data.
//! - [`slotd_process`]: a real `slotd serve` process, its address, `SIGKILL`/`SIGTERM`,
//!   and a small HTTP client that never hangs.
//! - [`calendars`]: the small calendars these tests load.

// ---------------------------------------------------------------------------------------
// Redis servers
// ---------------------------------------------------------------------------------------

pub mod redis_server {
    //! `RedisServer`: a `redis-server` child process on a free loopback port, with its
    //! data in a temporary directory; `Drop` kills it. Tests never touch a Redis they did
    //! not start.

    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// How long a start (or a restart that replays an AOF) may take.
    const READY_WITHIN: Duration = Duration::from_secs(15);
    /// Starts retried on another port when the chosen one was taken meanwhile.
    const START_ATTEMPTS: usize = 5;

    /// A running `redis-server`.
    #[derive(Debug)]
    pub struct RedisServer {
        child: Option<Child>,
        dir: tempfile::TempDir,
        port: u16,
        args: Vec<String>,
    }

    /// The `redis-server` binary: `$SLOTD_REDIS_SERVER`, else `redis-server` on the `PATH`.
    pub fn binary() -> PathBuf {
        std::env::var_os("SLOTD_REDIS_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("redis-server"))
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port")
    }

    /// Whether the server on `port` answers `PING` with `PONG` (not `LOADING`).
    fn pong(port: u16) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    impl RedisServer {
        /// Starts `redis-server` with `extra` arguments (`["--appendonly", "yes"]`) after
        /// the fixed ones: loopback only, this directory, no RDB snapshots, log to
        /// `redis.log` in the directory. Waits until it answers `PING`.
        ///
        /// # Panics
        /// If `redis-server` is not installed or does not become ready.
        pub fn start(extra: &[&str]) -> RedisServer {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let mut server = RedisServer {
                child: None,
                dir,
                port: 0,
                args: extra.iter().map(|s| s.to_string()).collect(),
            };
            for attempt in 1..=START_ATTEMPTS {
                server.port = free_port();
                match server.spawn() {
                    Ok(()) => return server,
                    Err(e) if attempt == START_ATTEMPTS => panic!("{e}"),
                    Err(_) => {}
                }
            }
            unreachable!("the last attempt panics")
        }

        /// AOF on, fsynced before every reply: nothing acknowledged is lost to `kill -9`.
        pub fn durable() -> RedisServer {
            Self::start(&["--appendonly", "yes", "--appendfsync", "always"])
        }

        /// AOF on, fsynced every second: a crash may lose the last second.
        pub fn fast() -> RedisServer {
            Self::start(&["--appendonly", "yes", "--appendfsync", "everysec"])
        }

        fn spawn(&mut self) -> Result<(), String> {
            let port = self.port.to_string();
            let mut cmd = Command::new(binary());
            cmd.args(["--port", &port, "--bind", "127.0.0.1", "--daemonize", "no"])
                .arg("--dir")
                .arg(self.dir.path())
                .args(["--save", "", "--logfile", "redis.log"])
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = cmd.spawn().map_err(|e| {
                format!(
                    "cannot run {}: {e} (install redis-server, or set SLOTD_REDIS_SERVER)",
                    binary().display()
                )
            })?;
            let deadline = Instant::now() + READY_WITHIN;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "redis-server on port {port} exited with {status}; its log:\n{}",
                        self.log()
                    ));
                }
                if pong(self.port) {
                    self.child = Some(child);
                    return Ok(());
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "redis-server on port {port} not ready within {READY_WITHIN:?}; its log:\n{}",
                        self.log()
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        /// `redis://127.0.0.1:PORT`.
        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }

        pub fn port(&self) -> u16 {
            self.port
        }

        /// The data directory (AOF, log).
        pub fn dir(&self) -> &Path {
            self.dir.path()
        }

        /// The server's log so far.
        pub fn log(&self) -> String {
            std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
        }

        /// Runs one command (`["XLEN", "key"]`) on a connection of its own and decodes
        /// its reply: for tests that look at or change Redis behind slotd's back.
        ///
        /// # Panics
        /// If the server does not answer or the reply does not decode as `T`.
        pub async fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
            let client = redis::Client::open(self.url()).expect("url");
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect");
            let mut cmd = redis::cmd(args[0]);
            for a in &args[1..] {
                cmd.arg(*a);
            }
            cmd.query_async(&mut conn).await.expect("command")
        }

        /// The process id, while it runs.
        pub fn pid(&self) -> Option<u32> {
            self.child.as_ref().map(Child::id)
        }

        /// Whether the process is running (it may still be loading).
        pub fn is_running(&mut self) -> bool {
            self.child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
        }

        /// `kill -9`: no shutdown, no final fsync; waits until the process is gone.
        pub fn kill(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        /// Starts the server again on the same port, directory and arguments (replaying
        /// its AOF), and waits until it answers `PING`.
        ///
        /// # Panics
        /// If it does not come back (the port was taken meanwhile, say).
        pub fn restart(&mut self) {
            self.kill();
            if let Err(e) = self.spawn() {
                panic!("restart failed: {e}");
            }
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            self.kill();
        }
    }
}

// ---------------------------------------------------------------------------------------
// slotd processes
// ---------------------------------------------------------------------------------------

pub mod slotd_process {
    //! `Slotd`: the real `slotd` binary as a child process on a port it picks itself
    //! (`--listen 127.0.0.1:0`; the address is read from its start-up log line).

    use std::io::{BufRead, BufReader};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use bytes::Bytes;
    use http::{HeaderMap, Request, StatusCode};
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use serde_json::Value;

    /// The `slotd` binary the workspace build made: it sits beside this test's
    /// `deps/` directory (`cargo test --workspace` builds every binary before any test).
    pub fn binary() -> PathBuf {
        let exe = std::env::current_exe().expect("the test binary's path");
        let dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target/<profile>");
        let bin = dir.join("slotd");
        assert!(
            bin.is_file(),
            "{} is missing: build the workspace first",
            bin.display()
        );
        bin
    }

    /// Runs `slotd audit --data-dir DIR`; answers whether every invariant held, and what
    /// it printed.
    pub fn audit_data_dir(dir: &std::path::Path) -> (bool, String) {
        let out = Command::new(binary())
            .args(["audit", "--data-dir"])
            .arg(dir)
            .output()
            .expect("slotd audit runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The flags of a `slotd serve` on its own directory: the journal in `dir/store`, the
    /// calendar from `dir/calendar.json`, and the given secrets.
    pub fn embedded_args(dir: &std::path::Path, admin: &str, secret: &str) -> Vec<String> {
        vec![
            "--admin-token".into(),
            admin.into(),
            "--token-secret".into(),
            secret.into(),
            "--data-dir".into(),
            dir.join("store").to_string_lossy().into_owned(),
            "--calendar".into(),
            dir.join("calendar.json").to_string_lossy().into_owned(),
        ]
    }

    /// A running `slotd serve`; `Drop` kills it.
    #[derive(Debug)]
    pub struct Slotd {
        child: Child,
        /// `http://127.0.0.1:PORT`
        pub base: String,
    }

    impl Slotd {
        /// Starts `slotd serve --listen 127.0.0.1:0 ARGS…` and waits for its address.
        ///
        /// # Panics
        /// If it exits or does not report its address within 60 s.
        pub fn start(args: &[String]) -> Slotd {
            Self::start_with_env(args, &[])
        }

        /// [`Slotd::start`] with extra environment variables (crash points).
        pub fn start_with_env(args: &[String], env: &[(&str, &str)]) -> Slotd {
            let mut child = Command::new(binary())
                .args(["serve", "--listen", "127.0.0.1:0"])
                .args(args)
                .envs(env.iter().copied())
                // Every test client is 127.0.0.1: the per-address limit would throttle
                // the tests' own floods (the limit has tests of its own).
                .env("SLOTD_ADDRESS_RATE", "0")
                .env("SLOTD_MAX_CONNECTIONS_PER_ADDRESS", "0")
                .env("SLOTD_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("slotd starts");
            let stderr = child.stderr.take().expect("stderr");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("slotd listening")
                        && let Some(rest) = line.split("addr=").nth(1)
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                    } else if line.contains("ERROR") || line.starts_with("slotd:") {
                        eprintln!("slotd: {line}");
                    }
                }
            });
            let addr = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("slotd reports its address");
            Slotd {
                child,
                base: format!("http://{addr}"),
            }
        }

        /// The process id.
        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        /// `SIGTERM`, then waits up to `within` for the exit.
        ///
        /// # Panics
        /// If it has not exited by then.
        pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
            let pid = self.child.id().to_string();
            let sent = Command::new("kill").args(["-TERM", &pid]).status();
            assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
            let deadline = std::time::Instant::now() + within;
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return status;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "slotd did not exit within {within:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        /// Waits up to `within` for the process to exit by itself.
        pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
            let deadline = std::time::Instant::now() + within;
            while std::time::Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Some(status);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            None
        }

        /// `SIGKILL`: no shutdown, no flush.
        pub fn kill9(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for Slotd {
        fn drop(&mut self) {
            self.kill9();
        }
    }

    /// An answer; `body` is `Null` when empty or not JSON.
    #[derive(Debug)]
    pub struct Answer {
        pub status: StatusCode,
        pub headers: HeaderMap,
        pub body: Value,
    }

    /// A pooled HTTP/1 client whose every call ends within a deadline.
    #[derive(Debug, Clone)]
    pub struct Http {
        client: Client<HttpConnector, Full<Bytes>>,
        deadline: Duration,
    }

    impl Http {
        pub fn new(deadline: Duration) -> Http {
            Http {
                client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
                deadline,
            }
        }

        /// `Err("timeout")` past the deadline, `Err(reason)` when no answer came.
        pub async fn call(
            &self,
            method: &str,
            url: &str,
            bearer: Option<&str>,
            body: Option<&Value>,
        ) -> Result<Answer, &'static str> {
            self.call_with(method, url, bearer, body, &[]).await
        }

        /// [`Http::call`] with extra request headers.
        pub async fn call_with(
            &self,
            method: &str,
            url: &str,
            bearer: Option<&str>,
            body: Option<&Value>,
            headers: &[(&str, &str)],
        ) -> Result<Answer, &'static str> {
            let mut req = Request::builder().method(method).uri(url);
            if let Some(t) = bearer {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let req = req
                .body(Full::new(
                    body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
                ))
                .map_err(|_| "bad request")?;
            let exchange = async {
                let res = self.client.request(req).await.map_err(|_| "no answer")?;
                let (parts, body) = res.into_parts();
                let bytes = body.collect().await.map_err(|_| "body cut")?.to_bytes();
                Ok(Answer {
                    status: parts.status,
                    headers: parts.headers,
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                })
            };
            tokio::time::timeout(self.deadline, exchange)
                .await
                .map_err(|_| "timeout")?
        }
    }
}

// ---------------------------------------------------------------------------------------
// Calendars
// ---------------------------------------------------------------------------------------

pub mod calendars {
    //! The small calendars of the system tests.

    use slotd::domain::{Calendar, Phase, PhaseId, Site, SiteId, Slot, SlotId};
    use time::OffsetDateTime;

    /// One site `S1` in 臺北市中正區 and phase `P1`, open from an hour ago to an hour from
    /// now, no invitation needed, with the given `(slot id, capacity)` slots.
    pub fn open_phase(slots: &[(String, u32)]) -> Calendar {
        let now = OffsetDateTime::now_utc();
        Calendar {
            sites: vec![Site {
                id: SiteId::parse("S1").expect("id"),
                name: "site".into(),
                county: "臺北市".into(),
                district: "中正區".into(),
                address: String::new(),
            }],
            phases: vec![Phase {
                id: PhaseId::parse("P1").expect("id"),
                name: "P1".into(),
                vaccines: vec!["AZ".into()],
                opens_at: now - time::Duration::hours(1),
                closes_at: now + time::Duration::hours(1),
                invitation_required: false,
                registration_required: false,
                eligibility: None,
                doses: None,
                waiting_room: None,
                slots: slots
                    .iter()
                    .map(|(id, capacity)| Slot {
                        id: SlotId::parse(id).expect("id"),
                        site: SiteId::parse("S1").expect("id"),
                        date: "2021-07-16".into(),
                        period: "09:00-12:00".into(),
                        vaccine: "AZ".into(),
                        capacity: *capacity,
                    })
                    .collect(),
            }],
        }
    }
}

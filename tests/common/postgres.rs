//! A real PostgreSQL server for the tests (Debian's `postgresql` package, installed by
//! scripts/install-deps.sh): `initdb` into a temporary directory, `pg_ctl start` on a
//! Unix socket in that directory (no TCP), one fresh database per test, stopped at the end.
//!
//! One server serves a whole test binary (initdb takes a second or two); it is stopped
//! when its [`Server`] drops, and a watchdog stops it too if the test process dies
//! without dropping it, so no server outlives the run.
//!
//! `initdb` and `pg_ctl` refuse to run as root, and CI runs as root: then they run in a
//! user namespace of their own (`unshare --user`) where they are `nobody`, while the
//! kernel still sees root, so the server owns its directory and can open `/dev/null`
//! (which some sandboxes leave writable by root alone, defeating `runuser -u nobody`).
//! The tests connect over the socket with trust authentication (the socket directory,
//! private to this run, is the only way in).
//!
//! The benchmark harness (benches/compare/postgres.rs) includes this file as it is
//! (`#[path]`), so the way a server is started lives here once; it uses only std,
//! `tempfile` and `postgres`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tempfile::TempDir;

/// How root runs the server's tools: as `nobody` in a user namespace of their own.
const UNSHARE: [&str; 4] = ["--user", "--map-user=65534", "--map-group=65534", "--"];

/// The database superuser the tests connect as.
pub const USER: &str = "cvault";

/// Environment variable choosing the store backend of the C-ABI tests' configs:
/// `postgres` runs them against a PostgreSQL server, anything else (or unset) on SQLite.
pub const STORE_ENV: &str = "CV_TEST_STORE";

/// Whether the tests' configs name PostgreSQL (`CV_TEST_STORE=postgres`).
pub fn selected() -> bool {
    std::env::var(STORE_ENV).is_ok_and(|v| v == "postgres")
}

/// The directory of the server's binaries (`initdb`, `pg_ctl`): Debian keeps them out of
/// PATH, under /usr/lib/postgresql/<major>/bin; the newest installed major serves.
pub fn bin_dir() -> PathBuf {
    try_bin_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// [`bin_dir`], or why there is none (the benchmark then skips its PostgreSQL rows).
pub fn try_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("CV_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let listing = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("PostgreSQL is not installed (/usr/lib/postgresql: {e}): run scripts/install-deps.sh"))?;
    let mut majors: Vec<(u32, PathBuf)> = listing
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    majors.sort();
    majors
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin".into())
}

/// The server's `fsync`: off for the tests (a throwaway server; what they check is
/// behaviour, not durability), on with `CV_PG_FSYNC=on` for measurements that compare
/// with SQLite, which syncs every commit.
fn fsync() -> bool {
    std::env::var("CV_PG_FSYNC").is_ok_and(|v| v == "on")
}

fn running_as_root() -> bool {
    // The owner of /proc/self is this process's effective user.
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A running server in a temporary directory.
pub struct Server {
    dir: TempDir,
    data: PathBuf,
    as_root: bool,
    /// The server's binaries ([`try_bin_dir`]).
    bin: PathBuf,
    next_db: AtomicU32,
}

impl Server {
    /// Initializes and starts a new server (`fsync` as `CV_PG_FSYNC` says).
    pub fn start() -> Server {
        Server::try_start(fsync()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Initializes and starts a new server with `fsync` on or off, or says why it cannot
    /// (no server binaries, `initdb` or `pg_ctl` failing): the benchmark's PostgreSQL
    /// rows start their server this way and are skipped with the reason.
    pub fn try_start(fsync: bool) -> Result<Server, String> {
        let bin = try_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("cvpg").tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let as_root = running_as_root();
        let data = dir.path().join("data");
        let server = Server { dir, data, as_root, bin, next_db: AtomicU32::new(0) };
        server.try_run(
            "initdb",
            &[
                "-D".as_ref(),
                server.data.as_os_str(),
                "-U".as_ref(),
                USER.as_ref(),
                "--auth=trust".as_ref(),
                "--no-sync".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
            ],
        )?;
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync={} -c max_connections=200 -c shared_buffers=32MB",
            server.socket_dir().display(),
            if fsync { "on" } else { "off" }
        );
        let log = server.dir.path().join("server.log");
        server.try_run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-D".as_ref(),
                server.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        )?;
        server.watchdog();
        Ok(server)
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_root {
            let mut c = Command::new("unshare");
            c.args(UNSHARE).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) {
        self.try_run(tool, args).unwrap_or_else(|e| panic!("{e}"));
    }

    fn try_run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
        let out =
            self.command(tool).args(args).current_dir(self.dir.path()).output().map_err(|e| format!("{tool}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{tool} failed: {}\n{}\nserver log: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        ))
    }

    /// Stops the server when this test process exits, however it exits.
    fn watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas}{pg_ctl} stop -m immediate -D {data} >/dev/null 2>&1",
            pid = std::process::id(),
            runas = if self.as_root { format!("unshare {} ", UNSHARE.join(" ")) } else { String::new() },
            pg_ctl = pg_ctl.display(),
            data = self.data.display()
        );
        drop(
            Command::new("sh")
                .args(["-c", &stop])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn(),
        );
    }

    /// The server's data directory (its files at rest: `base/<database oid>`, `pg_wal`).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's log (`pg_ctl -l`): with `log_statement = 'all'` set on a database, one
    /// `LOG:  execute ...` or `LOG:  statement: ...` line per statement run there.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection string for `db` (no password: trust over the socket).
    pub fn url(&self, db: &str) -> String {
        format!("host={} user={USER} dbname={db}", self.socket_dir().display())
    }

    /// A new, empty database with a name no other test of this process has.
    pub fn new_database(&self) -> String {
        let name = format!("t{}_{}", std::process::id(), self.next_db.fetch_add(1, Ordering::Relaxed));
        let mut client = self.admin();
        client.batch_execute(&format!("CREATE DATABASE {name}")).expect("CREATE DATABASE");
        name
    }

    /// A connection to the `postgres` database (administration).
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("connect to the test server")
    }

    /// A connection to `db`.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).expect("connect to the test database")
    }

    /// Stops the server now (a test of an unreachable store); [`Server::restart`] brings it back.
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &["stop".as_ref(), "-w".as_ref(), "-m".as_ref(), "fast".as_ref(), "-D".as_ref(), self.data.as_os_str()],
        );
    }

    /// Starts a stopped server again on the same socket.
    pub fn restart(&self) {
        let options =
            format!("-k {} -c listen_addresses='' -c fsync=off -c max_connections=200", self.socket_dir().display());
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-D".as_ref(),
                self.data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let out = self.command("pg_ctl").args(["stop", "-w", "-m", "immediate", "-D"]).arg(&self.data).output();
        if let Ok(o) = out {
            if !o.status.success() {
                eprintln!("pg_ctl stop: {}", String::from_utf8_lossy(&o.stderr));
            }
        }
    }
}

/// The server shared by every test of this process (started on first use; the watchdog
/// stops it when the process exits).
pub fn shared() -> Arc<Server> {
    static SHARED: OnceLock<Mutex<Option<Arc<Server>>>> = OnceLock::new();
    let cell = SHARED.get_or_init(|| Mutex::new(None));
    let mut slot = cell.lock().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| Arc::new(Server::start())).clone()
}

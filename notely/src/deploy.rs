//! Zero-downtime deploys, like the original Notely's DeploymentController: the serving process
//! launches a new binary on the same listening socket, waits until it serves, keeps both
//! serving for an overlap, then hands over and stops gracefully.
//!
//! Phases: `INITIAL → LAUNCH_NEW → WAIT → READY`, or `FAILED` with a reason.
//!
//! - **The socket.** The new process gets a duplicate of the listening socket (its descriptor
//!   number in `NOTELY_LISTEN_FD`, see [`inherited_listener`]): both processes accept from one
//!   queue, so when the old one stops accepting, nothing queued is reset (closing an
//!   `SO_REUSEPORT` listener would reset the connections waiting in its own queue).
//! - **Readiness.** The new process writes the file named by `NOTELY_READY_FILE` (atomically)
//!   once it serves the API: its pid and its compiled migration set ([`Ready`]). A new process
//!   that exits, or is not ready within the ready timeout, is stopped (SIGTERM, then SIGKILL)
//!   and the deploy is `FAILED`; the old process keeps serving.
//! - **The overlap.** Both serve for the overlap; then the deploy is `READY` and the old
//!   process hears it on [`Deployer::handover`]: it stops accepting, finishes what it serves,
//!   stops its move worker (which leaves its move to the new process) and exits.
//! - **The state** is `<data-dir>/deploy.json`, written atomically by the controlling (old)
//!   process, so that either process answers `GET /deploy` the same ([`status`]); a deploy
//!   whose controller died is reported for what it became.
//!
//! The new process runs in its own process group and outlives the old one; each launch's
//! output goes to `<data-dir>/deploys/<id>.log`.

use std::ffi::OsString;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

/// The variable naming the inherited listening socket's descriptor.
pub const LISTEN_FD: &str = "NOTELY_LISTEN_FD";
/// The variable naming the file a new process writes once it serves.
pub const READY_FILE: &str = "NOTELY_READY_FILE";
/// How long both processes serve side by side, by default (the original's
/// `DeploymentWaitTime`).
pub const OVERLAP: Duration = Duration::from_secs(30);
/// How long a new process has to serve, by default.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped process has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why a deploy cannot start, or what went wrong reading its state.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Another deploy is running (in this process or another one on the data directory).
    #[error("{0}")]
    Running(String),
    /// It cannot start: no binary to run, or the binary is missing or not executable.
    #[error("{0}")]
    Unavailable(String),
    /// What was asked makes no sense (a relative binary path, a negative overlap).
    #[error("{0}")]
    Invalid(String),
    /// The inherited listening socket is unusable.
    #[error("{LISTEN_FD}={fd}: {why}")]
    Socket { fd: String, why: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> DeployError {
    move |source| DeployError::Io {
        what: what.into(),
        source,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// What this process inherited.

/// What this process was started with, read once by [`inherit`].
#[derive(Debug, Default)]
struct Inherited {
    /// This process's executable as it was at startup.
    exe: Option<PathBuf>,
    /// `NOTELY_LISTEN_FD`, until [`inherited_listener`] takes it.
    listen_fd: Mutex<Option<OsString>>,
    /// `NOTELY_READY_FILE`.
    ready_file: Option<PathBuf>,
}

static INHERITED: OnceLock<Inherited> = OnceLock::new();

/// Reads, once at startup, this process's executable and what a deploying parent handed it (the
/// listening socket's descriptor, where to report readiness), and removes those two variables
/// from the environment so that processes this one starts do not inherit them. Call it before
/// any other thread starts (`cli::run` does, first).
// Removing a variable from the environment is `unsafe` since edition 2024: another thread
// could be reading it.
#[allow(unsafe_code)]
pub fn inherit() {
    let listen_fd = std::env::var_os(LISTEN_FD);
    let ready_file = std::env::var_os(READY_FILE).map(PathBuf::from);
    if listen_fd.is_some() || ready_file.is_some() {
        // SAFETY: called from `cli::run` before the tokio runtime, the terminal UI or any other
        // thread starts: nothing else reads or writes the environment meanwhile.
        unsafe {
            std::env::remove_var(LISTEN_FD);
            std::env::remove_var(READY_FILE);
        }
    }
    let _ = INHERITED.set(Inherited {
        exe: current_exe(),
        listen_fd: Mutex::new(listen_fd),
        ready_file,
    });
}

/// This process's executable file, as it was named when the process started: after `cargo
/// build` replaced the file, that path holds the new build, which is what a deploy runs by
/// default. (Linux names a replaced executable `<path> (deleted)`; the suffix is dropped.)
pub fn executable() -> Option<PathBuf> {
    match INHERITED.get() {
        Some(inherited) => inherited.exe.clone(),
        None => current_exe(),
    }
}

fn current_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bytes = exe.as_os_str().as_bytes();
    Some(match bytes.strip_suffix(b" (deleted)") {
        Some(kept) => PathBuf::from(std::ffi::OsStr::from_bytes(kept)),
        None => exe,
    })
}

/// Where this process reports readiness, when a deploying parent started it.
pub fn ready_file() -> Option<PathBuf> {
    INHERITED.get().and_then(|i| i.ready_file.clone())
}

/// The listening socket a deploying parent handed over (`NOTELY_LISTEN_FD`), once: `None` when
/// there is none. The descriptor must be an open, listening TCP socket; it is made
/// close-on-exec again (so that it is not handed on by accident) and non-blocking.
pub fn inherited_listener() -> Result<Option<std::net::TcpListener>, DeployError> {
    let Some(inherited) = INHERITED.get() else {
        return Ok(None);
    };
    let Some(raw) = lock(&inherited.listen_fd).take() else {
        if inherited.ready_file.is_some() {
            // Binding a port of its own, it would be handed over to on another port.
            return Err(DeployError::Socket {
                fd: String::new(),
                why: format!(
                    "missing, but {READY_FILE} is set: started by a deploy without \
                             the listening socket"
                ),
            });
        }
        return Ok(None);
    };
    let text = raw.to_string_lossy().into_owned();
    let bad = |why: String| DeployError::Socket {
        fd: text.clone(),
        why,
    };
    let fd: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|fd| *fd > 2)
        .ok_or_else(|| bad("not a descriptor number above 2".into()))?;
    // Checked without touching the descriptor: it is open, and it is a socket.
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map_err(|e| bad(format!("no such open descriptor ({e})")))?;
    if !target.as_os_str().as_bytes().starts_with(b"socket:") {
        return Err(bad(format!("not a socket but {}", target.display())));
    }
    let socket = adopt(fd);
    let check = || -> io::Result<Result<(), String>> {
        if socket.r#type()? != socket2::Type::STREAM {
            return Ok(Err("not a stream socket".into()));
        }
        let domain = socket.domain()?;
        if domain != socket2::Domain::IPV4 && domain != socket2::Domain::IPV6 {
            return Ok(Err("not a TCP/IP socket".into()));
        }
        if !socket.is_listener()? {
            return Ok(Err("not listening".into()));
        }
        socket.set_cloexec(true)?;
        socket.set_nonblocking(true)?;
        Ok(Ok(()))
    };
    match check() {
        Ok(Ok(())) => Ok(Some(socket.into())),
        Ok(Err(why)) => Err(bad(format!("not a listening TCP socket: {why}"))),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Takes ownership of the inherited socket descriptor `fd`.
#[allow(unsafe_code)]
fn adopt(fd: i32) -> socket2::Socket {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` is open and is a socket (checked in /proc/self/fd just before); the parent
    // handed it to this process to own, and nothing else here uses it: its number was read
    // once from the environment at startup (and removed from it), and taken from there once.
    unsafe { socket2::Socket::from_raw_fd(fd) }
}

// ---------------------------------------------------------------------------------------------
// Readiness.

/// What a new process reports once it serves (the ready file), and what `GET /deploy` shows of
/// each side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    pub pid: u32,
    /// The process as `strata::store::lease_holder` names it (`host/pid@start`), to tell when
    /// it is gone.
    pub holder: String,
    /// The newest migration version compiled into the binary.
    pub version: String,
    /// The binary's compiled migration set (`crate::db::compiled_set`).
    pub migrations: Value,
    /// Migrations the binary deferred at startup (contract migrations waiting for older
    /// instances, and what follows them), when it says.
    #[serde(default)]
    pub deferred: Option<u64>,
}

impl Ready {
    /// This process.
    pub fn this_process() -> Ready {
        Ready {
            pid: std::process::id(),
            holder: strata::store::lease_holder(),
            version: newest_version(),
            migrations: serde_json::to_value(crate::db::compiled_set()).unwrap_or_default(),
            deferred: Some(crate::db::deferred_at_startup()),
        }
    }
}

/// The newest migration version compiled into this binary, over all roles.
fn newest_version() -> String {
    notely_migrations::MIGRATIONS
        .all()
        .ok()
        .and_then(|all| all.iter().map(|m| m.version()).max())
        .map_or_else(|| "-".into(), |v| v.to_string())
}

/// Reports this process ready to its deploying parent: writes [`Ready::this_process`] to
/// `path`, atomically.
pub fn announce_ready(path: &Path) -> io::Result<()> {
    let json = serde_json::to_vec(&Ready::this_process())?;
    write_atomically(path, &json)
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".{}.tmp", std::process::id()));
    let temp = PathBuf::from(temp);
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)
}

// ---------------------------------------------------------------------------------------------
// The shared state.

/// Where a deploy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// No deploy has happened on this data directory.
    None,
    Initial,
    LaunchNew,
    Wait,
    Ready,
    Failed,
}

impl Phase {
    /// Whether a deploy in this phase is still going on.
    pub fn is_running(self) -> bool {
        matches!(self, Phase::Initial | Phase::LaunchNew | Phase::Wait)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::None => "NONE",
            Phase::Initial => "INITIAL",
            Phase::LaunchNew => "LAUNCH_NEW",
            Phase::Wait => "WAIT",
            Phase::Ready => "READY",
            Phase::Failed => "FAILED",
        }
    }
}

/// One side of a deploy: the old or the new process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub pid: u32,
    /// `host/pid@start`, to tell when the process is gone (unknown until the new one is ready).
    pub holder: Option<String>,
    pub binary: String,
    /// The newest migration version compiled into the binary (unknown until it is ready).
    pub version: Option<String>,
    /// The binary's compiled migration set (`null` until it is ready).
    pub migrations: Value,
    /// Migrations the new binary deferred at startup, when it said.
    pub deferred: Option<u64>,
}

impl Side {
    fn of(ready: Ready, binary: &Path) -> Side {
        Side {
            pid: ready.pid,
            holder: Some(ready.holder),
            binary: binary.display().to_string(),
            version: Some(ready.version),
            migrations: ready.migrations,
            deferred: ready.deferred,
        }
    }
}

/// A deploy, as `<data-dir>/deploy.json` keeps it and `GET /deploy` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployState {
    /// `null` when no deploy has happened.
    pub id: Option<String>,
    pub phase: Phase,
    /// Why it failed.
    pub reason: Option<String>,
    /// What else happened (the old process ended before the overlap was over, ..).
    #[serde(default)]
    pub note: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub launched_at: Option<DateTime<Utc>>,
    pub ready_at: Option<DateTime<Utc>>,
    /// How long both serve side by side.
    pub overlap_s: f64,
    /// During `WAIT`: how long until the hand-over.
    #[serde(default)]
    pub overlap_left_s: Option<f64>,
    /// The controlling (old) process, `host/pid@start`.
    pub controller: Option<String>,
    pub old: Option<Side>,
    pub new: Option<Side>,
    /// The new process's output.
    pub log: Option<String>,
}

impl DeployState {
    /// No deploy yet.
    pub fn none() -> DeployState {
        DeployState {
            id: None,
            phase: Phase::None,
            reason: None,
            note: None,
            started_at: None,
            launched_at: None,
            ready_at: None,
            overlap_s: 0.0,
            overlap_left_s: None,
            controller: None,
            old: None,
            new: None,
            log: None,
        }
    }

    /// What the public `GET /deploy` shows: the phase, times, pids and migration sets, but not
    /// the log (its path and the end of it, quoted in a failure's reason) nor the binaries'
    /// paths — those are for operators (`/admin/api/status`).
    pub fn public(&self) -> DeployState {
        let side = |s: &Option<Side>| {
            s.as_ref().map(|s| Side {
                binary: Path::new(&s.binary)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                holder: None,
                ..s.clone()
            })
        };
        DeployState {
            reason: self.reason.as_ref().map(|r| {
                r.split("; the end of its log")
                    .next()
                    .unwrap_or(r)
                    .split("; its log (")
                    .next()
                    .unwrap_or(r)
                    .to_string()
            }),
            old: side(&self.old),
            new: side(&self.new),
            controller: None,
            log: None,
            ..self.clone()
        }
    }

    /// The id, or `-`.
    pub fn id_or_dash(&self) -> &str {
        self.id.as_deref().unwrap_or("-")
    }

    /// Reported for what it became: a running deploy whose controller died is over —
    /// `READY` (with a note) if it was in the overlap and the new process lives, `FAILED`
    /// otherwise; during `WAIT`, how long the overlap has left.
    fn settle(mut self, now: DateTime<Utc>) -> DeployState {
        let gone = |holder: Option<&str>| holder.is_some_and(strata::store::holder_is_gone);
        if self.phase.is_running() && gone(self.controller.as_deref()) {
            let new_holder = self.new.as_ref().and_then(|n| n.holder.as_deref());
            if self.phase == Phase::Wait && new_holder.is_some() && !gone(new_holder) {
                self.phase = Phase::Ready;
                self.note = Some(
                    "the old process ended early, before the overlap was over; the new one serves"
                        .into(),
                );
            } else if self.phase == Phase::Wait {
                self.phase = Phase::Failed;
                self.reason =
                    Some("the old process ended during the overlap, and the new one too".into());
            } else {
                self.phase = Phase::Failed;
                self.reason = Some(
                    "controller died: the old process ended before the new one was ready".into(),
                );
            }
        }
        self.overlap_left_s = match (self.phase, self.ready_at) {
            (Phase::Wait, Some(ready)) => {
                let left = self.overlap_s - (now - ready).as_seconds_f64();
                Some(left.clamp(0.0, self.overlap_s))
            }
            _ => None,
        };
        self
    }
}

fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("deploy.json")
}

fn read_stored(data_dir: &Path) -> Result<Option<DeployState>, DeployError> {
    let path = state_path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(format!("reading {}", path.display()))(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| io_error(format!("reading {}", path.display()))(e.into()))
}

/// The newest deploy on `data_dir` (phase `NONE` when there was none), for what it became.
pub fn status(data_dir: &Path) -> Result<DeployState, DeployError> {
    Ok(read_stored(data_dir)?.map_or_else(DeployState::none, |s| s.settle(Utc::now())))
}

/// Holds `<data-dir>/deploy.lock` (an advisory lock) while a deploy is checked and begun, so
/// that two processes on the same data directory never begin two.
fn lock_deploys(data_dir: &Path) -> Result<std::fs::File, DeployError> {
    let path = data_dir.join("deploy.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(format!("opening {}", path.display())))?;
    file.lock()
        .map_err(io_error(format!("locking {}", path.display())))?;
    Ok(file)
}

// ---------------------------------------------------------------------------------------------
// The controller.

/// How a server launches its successor.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The binary run by default (this process's own executable, see [`executable`]).
    pub binary: Option<PathBuf>,
    /// The new process's arguments, rebuilt from this server's own settings.
    pub args: Vec<OsString>,
    /// How long both serve side by side, by default.
    pub overlap: Duration,
    /// How long the new process has to serve.
    pub ready_timeout: Duration,
}

/// A deploy as asked for. Only the operator's routes (and `notely deploy`) may name a
/// binary: the public `POST /deploy` never does.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// An absolute path; default: [`Launch::binary`].
    pub binary: Option<PathBuf>,
    /// Default: [`Launch::overlap`].
    pub overlap: Option<Duration>,
}

/// The deploy controller of a serving process; cheap to clone.
#[derive(Clone)]
pub struct Deployer(Arc<Inner>);

impl std::fmt::Debug for Deployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployer")
            .field("data_dir", &self.0.data_dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    data_dir: PathBuf,
    /// A duplicate of the serving socket, duplicated again for each new process.
    listener: std::net::TcpListener,
    launch: Launch,
    /// The new process's pid once this process handed over to it.
    handover: watch::Sender<Option<u32>>,
    current: Mutex<Current>,
}

/// The deploy this process controls.
#[derive(Default)]
struct Current {
    state: Option<DeployState>,
    child: Option<Arc<Mutex<Child>>>,
    task: Option<tokio::task::AbortHandle>,
    /// This process stopped serving before the deploy ended: the task writes nothing more.
    abandoned: bool,
}

impl Deployer {
    /// The controller of a server serving on `listener` over `data_dir`.
    pub fn new(
        data_dir: &Path,
        listener: &std::net::TcpListener,
        launch: Launch,
    ) -> io::Result<Deployer> {
        Ok(Deployer(Arc::new(Inner {
            data_dir: data_dir.to_path_buf(),
            listener: listener.try_clone()?,
            launch,
            handover: watch::channel(None).0,
            current: Mutex::new(Current::default()),
        })))
    }

    /// Hears the new process's pid once this process has handed over to it.
    pub fn handover(&self) -> watch::Receiver<Option<u32>> {
        self.0.handover.subscribe()
    }

    /// The deploy this process controls (or controlled last), if any.
    pub fn current(&self) -> Option<DeployState> {
        lock(&self.0.current).state.clone()
    }

    /// Starts a deploy in the background; returns its state (`INITIAL`). Refused while another
    /// runs, on this data directory, in any process.
    pub async fn start(&self, request: Request) -> Result<DeployState, DeployError> {
        let binary = match request.binary {
            Some(b) if !b.is_absolute() => {
                return Err(DeployError::Invalid(format!(
                    "the binary must be an absolute path, got {}",
                    b.display()
                )));
            }
            Some(b) => b,
            None => self.0.launch.binary.clone().ok_or_else(|| {
                DeployError::Unavailable(
                    "this process does not know its own executable; name a binary".into(),
                )
            })?,
        };
        executable_file(&binary)?;
        let overlap = request.overlap.unwrap_or(self.0.launch.overlap);
        let this = self.clone();
        let state = tokio::task::spawn_blocking(move || this.begin(overlap))
            .await
            .map_err(|e| DeployError::Io {
                what: "beginning a deploy".into(),
                source: io::Error::other(e.to_string()),
            })??;
        tracing::info!(
            "deploy {}: starting {} (overlap {:.0} s)",
            state.id_or_dash(),
            binary.display(),
            overlap.as_secs_f64()
        );
        let task = tokio::spawn(self.clone().run(state.clone(), binary));
        lock(&self.0.current).task = Some(task.abort_handle());
        Ok(state)
    }

    /// Checks that no deploy runs and records a new one, `INITIAL`, under the deploy lock.
    fn begin(&self, overlap: Duration) -> Result<DeployState, DeployError> {
        let data_dir = &self.0.data_dir;
        let _lock = lock_deploys(data_dir)?;
        let here = lock(&self.0.current)
            .state
            .as_ref()
            .filter(|s| s.phase.is_running())
            .map(|s| s.id_or_dash().to_string());
        if let Some(id) = here {
            return Err(DeployError::Running(format!(
                "deploy {id} is running in this process"
            )));
        }
        let stored = status(data_dir)?;
        if stored.phase.is_running() {
            return Err(DeployError::Running(format!(
                "deploy {} is running ({}, controlled by pid {})",
                stored.id_or_dash(),
                stored.phase.as_str(),
                stored.old.as_ref().map_or(0, |o| o.pid)
            )));
        }
        let now = Utc::now();
        let own = Ready::this_process();
        let state = DeployState {
            id: Some(format!(
                "{}-{}",
                now.format("%Y%m%d-%H%M%S-%3f"),
                std::process::id()
            )),
            phase: Phase::Initial,
            started_at: Some(now),
            overlap_s: overlap.as_secs_f64(),
            controller: Some(own.holder.clone()),
            old: Some(Side::of(
                own,
                &executable().unwrap_or_else(|| PathBuf::from("-")),
            )),
            ..DeployState::none()
        };
        self.save(&state)?;
        Ok(state)
    }

    /// Records `state` as this process's deploy and in `deploy.json`; refused once the deploy
    /// was abandoned (this process stopped serving).
    fn save(&self, state: &DeployState) -> Result<(), DeployError> {
        let mut current = lock(&self.0.current);
        if current.abandoned && current.state.as_ref().map(|s| &s.id) == Some(&state.id) {
            return Err(DeployError::Unavailable(
                "this process stopped serving during the deploy".into(),
            ));
        }
        current.state = Some(state.clone());
        current.abandoned = false;
        write_state(&self.0.data_dir, state)
    }

    /// Drives a begun deploy to its end; on failure, records why.
    async fn run(self, mut state: DeployState, binary: PathBuf) {
        if let Err(reason) = self.drive(&mut state, &binary).await {
            let id = state.id_or_dash().to_string();
            tracing::error!("deploy {id} failed: {reason}");
            state.phase = Phase::Failed;
            state.reason = Some(reason);
            state.overlap_left_s = None;
            if let Err(e) = self.save(&state) {
                tracing::error!("deploy {id}: recording the failure: {e}");
            }
        }
    }

    async fn drive(&self, state: &mut DeployState, binary: &Path) -> Result<(), String> {
        let id = state.id_or_dash().to_string();
        let dir = self.0.data_dir.join("deploys");
        let (log, ready_file) = (
            dir.join(format!("{id}.log")),
            dir.join(format!("{id}.ready")),
        );
        let child = self
            .launch(&dir, &log, &ready_file, binary)
            .map_err(|e| format!("launching {}: {e}", binary.display()))?;
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        lock(&self.0.current).child = Some(Arc::clone(&child));
        state.phase = Phase::LaunchNew;
        state.launched_at = Some(Utc::now());
        state.log = Some(log.display().to_string());
        state.new = Some(Side {
            pid,
            holder: None,
            binary: binary.display().to_string(),
            version: None,
            migrations: Value::Null,
            deferred: None,
        });
        self.save(state).map_err(|e| e.to_string())?;
        tracing::info!("deploy {id}: launched pid {pid}; waiting until it serves");
        let ready = match self.wait_ready(&child, &ready_file).await {
            Ok(ready) => ready,
            Err(why) => return Err(format!("{why}{}", log_tail(&log))),
        };
        state.phase = Phase::Wait;
        state.ready_at = Some(Utc::now());
        state.new = Some(Side::of(ready, binary));
        self.save(state).map_err(|e| e.to_string())?;
        tracing::info!(
            "deploy {id}: pid {pid} serves; both serve for {:.0} s",
            state.overlap_s
        );
        let until = Instant::now() + Duration::from_secs_f64(state.overlap_s);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100).min(until - Instant::now())).await;
            if let Ok(Some(status)) = lock(&child).try_wait() {
                return Err(format!(
                    "the new process exited during the overlap ({status}); this one keeps \
                     serving{}",
                    log_tail(&log)
                ));
            }
        }
        state.phase = Phase::Ready;
        self.save(state).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&ready_file);
        reap_later(child);
        tracing::info!("deploy {id}: ready; handing over to pid {pid}");
        self.0.handover.send_replace(Some(pid));
        Ok(())
    }

    /// Starts `binary` on a duplicate of the serving socket, in its own process group, its
    /// output to `log`.
    fn launch(&self, dir: &Path, log: &Path, ready: &Path, binary: &Path) -> io::Result<Child> {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::remove_file(ready);
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        // The duplicate is made inheritable, handed to the child, and closed here once it is
        // started (the child keeps its own).
        let socket = socket2::Socket::from(self.0.listener.try_clone()?);
        socket.set_cloexec(false)?;
        let child = Command::new(binary)
            .args(&self.0.launch.args)
            .env(LISTEN_FD, socket.as_raw_fd().to_string())
            .env(READY_FILE, ready)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn();
        drop(socket);
        child
    }

    /// Waits for the ready file; stops the child if it is not ready in time.
    async fn wait_ready(&self, child: &Arc<Mutex<Child>>, file: &Path) -> Result<Ready, String> {
        let timeout = self.0.launch.ready_timeout;
        let until = Instant::now() + timeout;
        loop {
            if let Ok(bytes) = std::fs::read(file)
                && let Ok(ready) = serde_json::from_slice::<Ready>(&bytes)
            {
                return Ok(ready);
            }
            if let Ok(Some(status)) = lock(child).try_wait() {
                return Err(format!(
                    "the new binary exited ({status}) before it was ready"
                ));
            }
            if Instant::now() >= until {
                let child = Arc::clone(child);
                let stopped = tokio::task::spawn_blocking(move || stop_child(&child, STOP_GRACE))
                    .await
                    .ok()
                    .flatten();
                return Err(format!(
                    "the new binary was not ready within {:.0} s; stopped it ({})",
                    timeout.as_secs_f64(),
                    stopped.map_or_else(|| "status unknown".into(), |s| s.to_string())
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// This process stops serving: a deploy it controls ends here. While launching, the new
    /// process is stopped and the deploy is `FAILED`; during the overlap, the new one serves on
    /// and the deploy is `READY` (with a note). Blocks up to [`STOP_GRACE`].
    pub fn abandon(&self) {
        let (state, child) = {
            let mut current = lock(&self.0.current);
            if let Some(task) = current.task.take() {
                task.abort();
            }
            let Some(state) = current.state.clone().filter(|s| s.phase.is_running()) else {
                return;
            };
            current.abandoned = true;
            (state, current.child.clone())
        };
        let mut state = state;
        if state.phase == Phase::Wait {
            state.phase = Phase::Ready;
            state.overlap_left_s = None;
            state.note = Some(
                "the old process was stopped before the overlap was over; the new one serves"
                    .into(),
            );
            if let Some(child) = child {
                reap_later(child);
            }
        } else {
            if let Some(child) = &child {
                stop_child(child, STOP_GRACE);
            }
            state.phase = Phase::Failed;
            state.reason =
                Some("the old process was stopped while the new one was starting".into());
        }
        tracing::warn!(
            "deploy {}: {}",
            state.id_or_dash(),
            state
                .note
                .as_deref()
                .or(state.reason.as_deref())
                .unwrap_or("")
        );
        lock(&self.0.current).state = Some(state.clone());
        if let Err(e) = write_state(&self.0.data_dir, &state) {
            tracing::error!("deploy {}: {e}", state.id_or_dash());
        }
    }

    /// Stops the process this one launched last, if it still runs (SIGTERM, then SIGKILL after
    /// `grace`); its exit status. For a process that launched its successor only to stop it
    /// later (`notely demo --deploy`).
    pub fn stop_new(&self, grace: Duration) -> Option<ExitStatus> {
        let child = lock(&self.0.current).child.clone()?;
        stop_child(&child, grace)
    }
}

/// Writes `state` to `<data_dir>/deploy.json`, atomically.
fn write_state(data_dir: &Path, state: &DeployState) -> Result<(), DeployError> {
    let path = state_path(data_dir);
    let json = serde_json::to_vec_pretty(state).map_err(|e| DeployError::Io {
        what: "encoding the deploy state".into(),
        source: e.into(),
    })?;
    write_atomically(&path, &json).map_err(io_error(format!("writing {}", path.display())))
}

/// Checks that `binary` is an executable file.
fn executable_file(binary: &Path) -> Result<(), DeployError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(binary).map_err(|e| {
        DeployError::Unavailable(format!("cannot deploy {}: {e}", binary.display()))
    })?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(DeployError::Unavailable(format!(
            "cannot deploy {}: not an executable file",
            binary.display()
        )));
    }
    Ok(())
}

/// The last lines of a new process's log, to explain a failure.
fn log_tail(log: &Path) -> String {
    const TAIL: u64 = 2048;
    let Ok(mut file) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(io::SeekFrom::Start(len.saturating_sub(TAIL)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let last = &lines[lines.len().saturating_sub(5)..];
    if last.is_empty() {
        format!("; its log ({}) is empty", log.display())
    } else {
        format!(
            "; the end of its log ({}): {}",
            log.display(),
            last.join(" | ")
        )
    }
}

/// Stops `child` (SIGTERM, then SIGKILL after `grace`) and reaps it; its exit status.
fn stop_child(child: &Mutex<Child>, grace: Duration) -> Option<ExitStatus> {
    let mut child = lock(child);
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    terminate(child.id());
    let until = Instant::now() + grace;
    while Instant::now() < until {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Sends SIGTERM to `pid` (no std API but `Child::kill`, which is SIGKILL).
#[allow(unsafe_code)]
fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) only sends a signal and touches no memory of ours. `pid` is a child of
    // ours not yet reaped (the caller holds its `Child` under a lock), so it is not reused.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

/// Reaps `child` when it exits, while this process lives (no zombie); it is not stopped when
/// this process exits.
fn reap_later(child: Arc<Mutex<Child>>) {
    let spawned = std::thread::Builder::new()
        .name("notely-deploy-reaper".into())
        .spawn(move || {
            loop {
                if !matches!(lock(&child).try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("deploy: cannot watch the new process: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(phase: Phase, controller: &str, new: Option<&str>) -> DeployState {
        DeployState {
            id: Some("d".into()),
            phase,
            ready_at: Some(Utc::now() - chrono::TimeDelta::seconds(10)),
            overlap_s: 30.0,
            controller: Some(controller.into()),
            new: new.map(|h| Side {
                pid: 1,
                holder: Some(h.into()),
                binary: "b".into(),
                version: None,
                migrations: Value::Null,
                deferred: None,
            }),
            ..DeployState::none()
        }
    }

    #[test]
    fn a_deploy_whose_controller_died_is_reported_for_what_it_became() {
        let alive = strata::store::lease_holder();
        let dead = format!("{}/{}@1", alive.split('/').next().unwrap(), u32::MAX - 7);
        let now = Utc::now();
        let waiting = state(Phase::Wait, &alive, Some(&alive)).settle(now);
        assert_eq!(waiting.phase, Phase::Wait);
        let left = waiting.overlap_left_s.unwrap();
        assert!((19.0..=20.5).contains(&left), "{left}");
        let early = state(Phase::Wait, &dead, Some(&alive)).settle(now);
        assert_eq!(early.phase, Phase::Ready);
        assert!(early.note.unwrap().contains("ended early"));
        assert_eq!(early.overlap_left_s, None);
        let both = state(Phase::Wait, &dead, Some(&dead)).settle(now);
        assert_eq!(both.phase, Phase::Failed);
        let launching = state(Phase::LaunchNew, &dead, None).settle(now);
        assert_eq!(launching.phase, Phase::Failed);
        assert!(launching.reason.unwrap().starts_with("controller died"));
        let done = state(Phase::Ready, &dead, None).settle(now);
        assert_eq!(done.phase, Phase::Ready);
    }

    #[test]
    fn the_state_round_trips_with_upper_case_phases() {
        let s = state(Phase::LaunchNew, "h/1@2", None);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["phase"], "LAUNCH_NEW");
        assert_eq!(serde_json::from_value::<DeployState>(json).unwrap(), s);
        assert_eq!(
            serde_json::to_value(DeployState::none()).unwrap()["phase"],
            "NONE"
        );
    }
}

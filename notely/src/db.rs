//! Notely's databases: migrating them, and opening them for the online engine.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use notely_migrations::{CONTROL, LEGACY, MIGRATIONS, NOTES};
use strata::{BackupPolicy, Error, Fleet, FleetReport, Mode, Options, RehearsalState};
use strata_online::{Engine, Location};

use crate::store::legacy::MemosTable;
use crate::store::notes::NotesTable;
use crate::store::{Db, Note};

/// Settings from flags and environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub lock_timeout: Duration,
    pub allow_unknown: bool,
    pub allow_out_of_order: bool,
    /// Backups kept per database (0: no backup before migrating).
    pub backups: usize,
    /// In checked mode, how long to wait for an approval (`None`: forever).
    pub approval_timeout: Option<Duration>,
    /// Databases up to this many bytes get `PRAGMA quick_check` at startup (0: none).
    pub startup_check_limit: u64,
}

/// Databases up to this size are checked for damage at startup by default (64 MiB: well under
/// a second each).
pub const STARTUP_CHECK_LIMIT: u64 = 64 * 1024 * 1024;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Auto,
            lock_timeout: Duration::from_secs(60),
            allow_unknown: false,
            allow_out_of_order: false,
            backups: 5,
            approval_timeout: None,
            startup_check_limit: STARTUP_CHECK_LIMIT,
        }
    }
}

/// The name of shard `i` (`shard-03`); its database is `<data_dir>/shard-03.db`.
pub fn shard_name(i: usize) -> String {
    format!("shard-{i:02}")
}

/// Whether `name` is a shard's name.
pub fn is_shard(name: &str) -> bool {
    name.strip_prefix("shard-")
        .is_some_and(|n| n.len() >= 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The shard databases under `data_dir`, by name.
pub fn shards(data_dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(data_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".db")?;
            is_shard(stem).then(|| stem.to_string())
        })
        .collect();
    found.sort();
    found
}

fn options(data_dir: &Path, settings: &Settings) -> Options {
    let backup = (settings.backups > 0).then(|| BackupPolicy {
        dir: Some(data_dir.join("backups")),
        keep: settings.backups,
    });
    Options {
        lock_timeout: settings.lock_timeout,
        allow_unknown: settings.allow_unknown,
        allow_out_of_order: settings.allow_out_of_order,
        backup,
        // In checked mode nothing is applied without approval, by `migrate up` either.
        require_approval: settings.mode == Mode::Checked,
        ..Options::default()
    }
}

/// Notely's databases under `data_dir`: the control database (accounts, placement directory),
/// the note store, the legacy note store, and the shards there are. Every shard is a note
/// store (role `notes`): the same migrations reach all of them.
pub fn fleet(data_dir: &Path, settings: &Settings) -> Fleet<'static> {
    let mut fleet = Fleet::new(&MIGRATIONS)
        .database(CONTROL, data_dir.join("control.db"))
        .database(NOTES, data_dir.join("notes.db"))
        .database(LEGACY, data_dir.join("legacy.db"));
    for shard in shards(data_dir) {
        fleet = fleet.database(NOTES, data_dir.join(format!("{shard}.db")));
    }
    fleet.options(options(data_dir, settings))
}

/// Creates (and migrates) the shard databases `names` that do not exist yet. A new shard is an
/// empty note store: it gets the `notes` migrations without waiting for an approval.
pub fn create_shards(data_dir: &Path, settings: &Settings, names: &[String]) -> Result<()> {
    let mut fleet = Fleet::new(&MIGRATIONS);
    let mut any = false;
    for name in names {
        let path = data_dir.join(format!("{name}.db"));
        if !path.exists() {
            fleet = fleet.database(NOTES, path);
            any = true;
        }
    }
    if !any {
        return Ok(());
    }
    // A new shard gets what the note store has, no more: a contract the note store still
    // defers for older instances waits in the new shard too (the newest instance's heartbeat
    // applies it everywhere once they are gone).
    let store = strata::Migrator::new(&MIGRATIONS, NOTES)
        .options(options(data_dir, settings))
        .status(&data_dir.join("notes.db"))?;
    fleet
        .options(Options {
            require_approval: false,
            backup: None,
            target: store.version,
            ..options(data_dir, settings)
        })
        .run(Mode::Auto)
        .map_err(|e| anyhow::anyhow!("{}", e.error))
        .context("creating the shard databases")?;
    Ok(())
}

/// How to recover `database` (under `data_dir`) from damage: the restore command, with the
/// newest backup of it there is.
pub fn recovery_hint(data_dir: &Path, database: &Path) -> String {
    let backups = BackupPolicy {
        dir: Some(data_dir.join("backups")),
        keep: 0,
    }
    .backups(database);
    let name = database
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match backups.last() {
        Some(newest) => format!(
            "to recover, stop every notely process using it and put a backup back (the restore \
             checks the backup first; newest of {} of {name} in {}): notely --data-dir {} \
             migrate restore {}",
            backups.len(),
            data_dir.join("backups").display(),
            data_dir.display(),
            newest.display()
        ),
        None => format!(
            "to recover, stop every notely process using it and restore a backup kept elsewhere \
             (there is none of {name} in {}): notely --data-dir {} migrate restore FILE \
             --database {name}",
            data_dir.join("backups").display(),
            data_dir.display()
        ),
    }
}

/// Runs `PRAGMA quick_check` on each existing database up to `settings.startup_check_limit`
/// bytes, and says which it checked and which it skipped (`migrate verify` checks them all).
/// A damaged database is an error naming it and how to recover.
pub fn check_integrity(data_dir: &Path, settings: &Settings, log: &mut dyn Write) -> Result<()> {
    let fleet = fleet(data_dir, settings);
    let (mut checked, mut skipped) = (Vec::new(), Vec::new());
    for d in fleet.databases() {
        let Ok(meta) = std::fs::metadata(&d.path) else {
            continue;
        };
        let name = d
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if meta.len() > settings.startup_check_limit {
            skipped.push(name);
            continue;
        }
        if let Err(e) = fleet.migrator(&d.role).check_integrity(&d.path) {
            bail!("{e}; {}", recovery_hint(data_dir, &d.path));
        }
        checked.push(name);
    }
    if !checked.is_empty() || !skipped.is_empty() {
        let limit = settings.startup_check_limit / (1024 * 1024);
        let mut line = String::from("notely: integrity check (PRAGMA quick_check):");
        if !checked.is_empty() {
            line.push_str(&format!(" ok: {}", checked.join(", ")));
        }
        if !skipped.is_empty() {
            line.push_str(&format!(
                "{} skipped, larger than {limit} MiB (--startup-check-limit): {}; `notely \
                 migrate verify` checks every database",
                if checked.is_empty() { "" } else { ";" },
                skipped.join(", ")
            ));
        }
        writeln!(log, "{line}")?;
    }
    Ok(())
}

/// One attempt at [`startup`]: `None` when checked mode needs an approval first (nothing
/// printed, nothing applied); any other failure is an error. Damaged databases (up to the
/// startup check's size) are refused first.
pub fn startup_now(
    data_dir: &Path,
    settings: &Settings,
    log: &mut dyn Write,
) -> Result<Option<FleetReport>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    check_integrity(data_dir, settings, log)?;
    match fleet(data_dir, settings).run(settings.mode) {
        Ok(report) => {
            note_deferred(&report);
            Ok(Some(report))
        }
        Err(e) if matches!(*e.error, Error::ApprovalRequired { .. }) => Ok(None),
        Err(e) => {
            strata::cli::write_report(log, &e.report)?;
            Err(e).context("migrating Notely's databases")
        }
    }
}

/// What Notely does with its databases before serving: in `auto` mode it migrates them, in
/// `checked` mode it waits until an operator approved the pending migrations and then migrates
/// them, in `verify` mode it only checks them. First, damaged databases (up to the startup
/// check's size) are refused.
/// `admin_url`: where the operator page is, to approve from, while it waits.
pub fn startup(
    data_dir: &Path,
    settings: &Settings,
    log: &mut dyn Write,
    admin_url: Option<&str>,
) -> Result<FleetReport> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    check_integrity(data_dir, settings, log)?;
    let fleet = fleet(data_dir, settings);
    let started = Instant::now();
    let mut announced = false;
    loop {
        match fleet.run(settings.mode) {
            Ok(report) => {
                note_deferred(&report);
                return Ok(report);
            }
            Err(e) if matches!(*e.error, Error::ApprovalRequired { .. }) => {
                if !announced {
                    writeln!(log, "WARN notely: checked mode: {}", e.error)?;
                    for d in fleet.databases() {
                        let note = match fleet.migrator(&d.role).rehearsal_state(&d.path)? {
                            RehearsalState::NothingPending => continue,
                            RehearsalState::NotRehearsed => {
                                "not rehearsed yet (`notely migrate rehearse`)".to_string()
                            }
                            RehearsalState::Passed { at } => {
                                format!("rehearsed successfully at {at}")
                            }
                            RehearsalState::Failed { at, reason } => {
                                format!("REHEARSAL FAILED at {at}: {reason}")
                            }
                        };
                        writeln!(log, "WARN notely: {}: pending set {note}", d.path.display())?;
                    }
                    match admin_url.filter(|u| !u.is_empty()) {
                        Some(url) => {
                            writeln!(
                                log,
                                "WARN notely: not serving until approved; approve on the \
                                 operator page, {url} (token in {}), or run `notely --data-dir \
                                 {} migrate approve` after `migrate plan --review`",
                                data_dir.join("admin.token").display(),
                                data_dir.display()
                            )?;
                            // One link per pending migration: its review panel.
                            let mut linked = std::collections::BTreeSet::new();
                            for d in fleet.databases() {
                                let review = fleet.migrator(&d.role).review(&d.path)?;
                                for m in review.migrations {
                                    if linked.insert(m.version) {
                                        writeln!(
                                            log,
                                            "WARN notely: review {} {} ({}): {url}#m{}",
                                            m.version, m.name, m.class, m.version
                                        )?;
                                    }
                                }
                            }
                        }
                        None => writeln!(
                            log,
                            "WARN notely: not serving until approved; run `notely --data-dir {} \
                             migrate approve`",
                            data_dir.display()
                        )?,
                    }
                    log.flush()?;
                    announced = true;
                }
                if settings
                    .approval_timeout
                    .is_some_and(|t| started.elapsed() >= t)
                {
                    bail!(
                        "no approval within {:?}: {}",
                        settings.approval_timeout.unwrap_or_default(),
                        e.error
                    );
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => {
                strata::cli::write_report(log, &e.report)?;
                return Err(e).context("migrating Notely's databases");
            }
        }
    }
}

/// What this binary calls itself in the instance registry: `notely 0.1.0`, and `+next` for a
/// build with the next release's migrations.
pub fn label() -> String {
    let release = if cfg!(feature = "next") { " +next" } else { "" };
    format!("notely {}{release}", env!("CARGO_PKG_VERSION"))
}

/// Registers this process as serving on every database under `data_dir` (after migrating,
/// before serving): older and newer binaries see it, and it applies deferred contract
/// migrations once no older instance is left. Dropping the presence deregisters.
pub fn join(data_dir: &Path, settings: &Settings) -> Result<strata::instances::Presence> {
    // Shards created while this process serves are joined at the next heartbeat.
    let discover: strata::instances::Discover = {
        let (dir, settings) = (data_dir.to_path_buf(), settings.clone());
        Arc::new(move || {
            let f = fleet(&dir, &settings);
            f.databases()
                .iter()
                .map(|d| (f.migrator(&d.role), d.path.clone()))
                .collect()
        })
    };
    fleet(data_dir, settings)
        .presence(&label(), settings.mode, Some(discover))
        .context("registering this instance in Notely's databases")
}

/// The migrations compiled into this binary, per role: what a deploy compares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompiledSet {
    /// `notely 0.1.0` (see [`label`]).
    pub label: String,
    /// Per role, by name.
    pub roles: Vec<CompiledRole>,
}

/// The migrations of one role compiled into this binary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompiledRole {
    pub role: String,
    /// How many.
    pub count: usize,
    /// The newest one's version.
    pub newest: Option<i64>,
    /// Digest of their checksums (as in `migrate instances`).
    pub fingerprint: String,
}

/// This binary's migrations, per role.
pub fn compiled_set() -> CompiledSet {
    let roles = [CONTROL, NOTES, LEGACY]
        .into_iter()
        .map(|role| {
            let known = MIGRATIONS.for_role(role).unwrap_or_default();
            CompiledRole {
                role: role.to_string(),
                count: known.len(),
                newest: known.iter().map(|m| m.version()).max(),
                fingerprint: strata::instances::fingerprint(&known),
            }
        })
        .collect();
    CompiledSet {
        label: label(),
        roles,
    }
}

static DEFERRED_AT_STARTUP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn note_deferred(report: &FleetReport) {
    DEFERRED_AT_STARTUP.store(
        deferred(report).len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// How many migrations (over all databases) this process's startup put off: contracts waiting
/// for older instances, and what follows them.
pub fn deferred_at_startup() -> u64 {
    DEFERRED_AT_STARTUP.load(std::sync::atomic::Ordering::Relaxed)
}

/// Migrations some binary deferred (a `deferred` audit event) that are still not applied, over
/// every database under `data_dir`: 0 once a newest instance applied them all.
pub fn still_deferred(data_dir: &Path, settings: &Settings) -> Result<usize> {
    let mut n = 0;
    for d in fleet(data_dir, settings).databases() {
        let Some(conn) = strata::store::open_ro(&d.path, settings.lock_timeout)? else {
            continue;
        };
        let has_history: bool = conn.query_row(
            "SELECT count(*) = 2 FROM sqlite_schema WHERE name IN ('strata_events', 'strata_migrations')",
            [],
            |r| r.get(0),
        )?;
        if has_history {
            let waiting: i64 = conn.query_row(
                "SELECT count(DISTINCT version) FROM strata_events WHERE kind = 'deferred' \
                 AND version NOT IN (SELECT version FROM strata_migrations)",
                [],
                |r| r.get(0),
            )?;
            n += waiting as usize;
        }
    }
    Ok(n)
}

/// The migrations put off by a startup run (contracts waiting for older instances, and what
/// follows them), as `version name` per database.
pub fn deferred(report: &FleetReport) -> Vec<String> {
    report
        .databases
        .iter()
        .filter_map(|d| d.report.as_ref())
        .flat_map(|r| {
            r.deferred
                .iter()
                .map(move |m| format!("{} {} ({})", m.version, m.name, r.path.display()))
        })
        .collect()
}

/// Reader connections per database.
pub const READERS: usize = 4;

/// Opens the store called `name` under `data_dir` for the online engine: `legacy` in the legacy
/// layout, `notes` and the shards in the notes layout.
fn location(data_dir: &Path, name: &str) -> Result<Location<Note>> {
    let db = Db::open(&data_dir.join(format!("{name}.db")), READERS)
        .with_context(|| format!("opening the {name} store"))?;
    let layout: Arc<dyn strata_online::Layout<Note>> = if name == LEGACY {
        Arc::new(MemosTable)
    } else {
        Arc::new(NotesTable)
    };
    Ok(Location {
        name: name.to_string(),
        pool: Arc::clone(db.pool()),
        layout,
    })
}

/// The online engine over the (migrated) databases under `data_dir`: the directory in the
/// control database, and the note stores by name. Shards created later (by another process)
/// are opened when the directory first sends a request there.
fn engine(data_dir: &Path, control: &Db) -> Result<Engine<Note>> {
    let mut locations = vec![location(data_dir, NOTES)?, location(data_dir, LEGACY)?];
    for shard in shards(data_dir) {
        locations.push(location(data_dir, &shard)?);
    }
    let dir = data_dir.to_path_buf();
    let opener: strata_online::Opener<Note> =
        Box::new(move |name| {
            if !is_shard(name) || !dir.join(format!("{name}.db")).exists() {
                return None;
            }
            Some(location(&dir, name).map_err(|e| {
                strata_online::MoveError::Invalid(format!("opening shard {name}: {e:#}"))
            }))
        });
    Ok(Engine::new(Arc::clone(control.pool()), locations)
        .context("starting the online engine")?
        .with_opener(opener))
}

/// Notely's databases, open: the control database (accounts, and the placement directory)
/// and the online engine over the note stores. Serving, the demo, the TUI and `notely move`
/// open them here (the demo also opens `control.db` once, briefly, before its server starts,
/// to start new accounts in the legacy store).
pub struct Stores {
    pub control: Arc<Db>,
    pub engine: Arc<Engine<Note>>,
}

impl Stores {
    /// Opens the (migrated) databases under `data_dir`: the control database with
    /// `control_readers` reader connections, and every note store (`notes`, `legacy`, the
    /// shards) with [`READERS`].
    pub fn open(data_dir: &Path, control_readers: usize) -> Result<Stores> {
        let control = Db::open(&data_dir.join("control.db"), control_readers)
            .context("opening the control database")?;
        let engine = Arc::new(engine(data_dir, &control)?);
        Ok(Stores { control, engine })
    }
}

//! [`Options`]: the settings of a [`Migrator`](crate::Migrator), and [`Mode`], how an
//! application treats pending migrations at startup.

use std::time::Duration;

use serde::Serialize;

use crate::backup::BackupPolicy;
use crate::error::{Error, Result};

/// How an application treats pending migrations at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Mode {
    /// Back up, then apply pending migrations.
    #[default]
    Auto,
    /// Apply nothing until an operator approved the pending migrations (`migrate approve`);
    /// then back up and apply them.
    Checked,
    /// Change nothing; fail when anything is pending, changed, unknown or drifted.
    Verify,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "auto" => Ok(Mode::Auto),
            "checked" => Ok(Mode::Checked),
            "verify" => Ok(Mode::Verify),
            other => Err(Error::Usage(format!(
                "unknown migration mode `{other}`; expected auto, checked or verify"
            ))),
        }
    }
}

/// Settings of a [`Migrator`](crate::Migrator) (and of a [`Fleet`](crate::Fleet)).
#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait, without progress, for another process migrating the same database.
    pub lock_timeout: Duration,
    /// Proceed although the database has migrations this binary does not know.
    pub allow_unknown: bool,
    /// Apply pending migrations older than the newest applied one.
    pub allow_out_of_order: bool,
    /// Apply migrations up to this version only.
    pub target: Option<i64>,
    /// Back up before applying or reverting anything (`None`: no backup).
    pub backup: Option<BackupPolicy>,
    /// Apply only migrations an operator approved (checked mode).
    pub require_approval: bool,
    /// Let `down` drop tables that hold rows. By default such a revert is refused before
    /// anything changes, naming the tables and their row counts.
    pub allow_data_loss: bool,
    /// Apply contract migrations although live instances of older binaries lack them,
    /// recording who forced it (`migrate up --contract-now`). By default a contract waits
    /// until the last such instance is gone (see [`crate::instances`]).
    pub contract_now: Option<String>,
    /// Group commit (default 50 ms): consecutive migrations that need nothing of their own
    /// (they run in a transaction, keep foreign keys on, are no contract and adopt no imported
    /// history) share one transaction until it has been open this long (at most half the lock
    /// timeout), each in a savepoint of its own; one commit (four `fsync`s with SQLite's
    /// default journal) then covers them all. Each still ends as its own commit would: a
    /// deferred foreign key left violated fails it. A migration that fails is undone alone and
    /// the ones before it commit, as they would have one by one — unless SQLite ends the whole
    /// transaction (a full disk, an I/O error) or the migration's SQL rolls it back: then they
    /// go with it, are named in the `failed` event, and the next run applies them again. A
    /// crash loses the open group whole; nothing of a group is reported applied before it
    /// commits. The write lock is held at most this long plus the last migration's own time.
    /// `Duration::ZERO`: a transaction per migration.
    pub group_for: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lock_timeout: Duration::from_secs(60),
            allow_unknown: false,
            allow_out_of_order: false,
            target: None,
            backup: Some(BackupPolicy::default()),
            require_approval: false,
            allow_data_loss: false,
            contract_now: None,
            group_for: Duration::from_millis(50),
        }
    }
}

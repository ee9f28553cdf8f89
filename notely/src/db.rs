//! Notely's databases and their migrations.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use notely_migrations::{CONTROL, MIGRATIONS, NOTES};
use strata::{Migrator, Report, Status};

/// How to treat a database's history; flags and environment fill it in.
#[derive(Debug, Clone)]
pub struct Policy {
    pub lock_timeout: Duration,
    pub allow_unknown: bool,
    pub allow_out_of_order: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lock_timeout: Duration::from_secs(60),
            allow_unknown: false,
            allow_out_of_order: false,
        }
    }
}

/// One database file and the role of its migrations.
#[derive(Debug, Clone)]
pub struct Database {
    pub role: &'static str,
    pub path: PathBuf,
}

/// The databases under `data_dir`: the control database and the note store.
pub fn databases(data_dir: &Path) -> Vec<Database> {
    vec![
        Database {
            role: CONTROL,
            path: data_dir.join("control.db"),
        },
        Database {
            role: NOTES,
            path: data_dir.join("notes.db"),
        },
    ]
}

fn migrator(role: &str, policy: &Policy) -> Migrator<'static> {
    Migrator::new(&MIGRATIONS, role)
        .lock_timeout(policy.lock_timeout)
        .allow_unknown(policy.allow_unknown)
        .allow_out_of_order(policy.allow_out_of_order)
}

/// Creates `data_dir` if needed and applies pending migrations to every database, in order;
/// stops at the first failure.
pub fn migrate(data_dir: &Path, policy: &Policy) -> Result<Vec<Report>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    databases(data_dir)
        .iter()
        .map(|db| {
            migrator(db.role, policy).run(&db.path).with_context(|| {
                format!("migrating the {} database {}", db.role, db.path.display())
            })
        })
        .collect()
}

/// Each database compared with the binary; writes nothing.
pub fn status(data_dir: &Path, policy: &Policy) -> Result<Vec<Status>> {
    databases(data_dir)
        .iter()
        .map(|db| {
            migrator(db.role, policy)
                .status(&db.path)
                .with_context(|| format!("reading the {} database {}", db.role, db.path.display()))
        })
        .collect()
}

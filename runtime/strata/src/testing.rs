//! The migration test harness: one call in a test replays every migration of every role and
//! checks what a reviewer cannot see in the code.
//!
//! ```no_run
//! # strata::migrations!();
//! #[test]
//! fn migrations() {
//!     strata::testing::Harness::new(&MIGRATIONS)
//!         .schema_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schema"))
//!         .run();
//! }
//! ```
//!
//! For each role, on a fresh in-memory database, migration by migration, through the real
//! runner:
//!
//! 1. apply it; the schema must equal the one its `schema!` declares;
//! 2. if it has a `down`: revert it — the schema must be exactly the previous one — and apply
//!    it again;
//! 3. load its test data (`#[migration(.., test_data = f)]`), so that the next migration's
//!    transform runs on realistic rows;
//! 4. if its declared schema removes or tightens something of the previous migration's (a
//!    contract, see [`crate::class`]), its attribute must say `contract`.
//!
//! At the end, the schema must equal the checked-in dump `<schema_dir>/<role>.sql`. Set
//! `STRATA_BLESS=1` to write the dumps instead (then review them in the diff).

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::error::Result;
use crate::inspect::{Difference, SchemaSnapshot};
use crate::migration::Source;
use crate::migrator::Migrator;
use crate::tx::Tx;

/// Replays and checks the migrations of a [`Source`]; see the module docs.
#[derive(Debug, Clone)]
pub struct Harness<'s> {
    source: &'s Source,
    schema_dir: Option<PathBuf>,
}

/// What the harness checked.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Migrations applied.
    pub applied: usize,
    /// Downs reverted and re-applied.
    pub round_trips: usize,
    /// Test data loaded.
    pub test_data: usize,
    /// Dumps compared (or written with `STRATA_BLESS=1`).
    pub dumps: Vec<PathBuf>,
}

fn differences(found: &[Difference]) -> String {
    found.iter().map(|d| format!("\n    - {d}")).collect()
}

/// Lines of `expected` missing from `actual` (-) and the other way round (+).
fn line_diff(expected: &str, actual: &str) -> String {
    let mut out = String::new();
    for l in expected
        .lines()
        .filter(|l| !actual.lines().any(|a| a == *l))
    {
        out.push_str(&format!("\n    - {l}"));
    }
    for l in actual
        .lines()
        .filter(|l| !expected.lines().any(|e| e == *l))
    {
        out.push_str(&format!("\n    + {l}"));
    }
    out
}

impl<'s> Harness<'s> {
    /// A harness over every migration of `source`.
    pub fn new(source: &'s Source) -> Self {
        Harness {
            source,
            schema_dir: None,
        }
    }

    /// Directory of the checked-in dumps, one `<role>.sql` per role.
    pub fn schema_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.schema_dir = Some(dir.into());
        self
    }

    /// Runs every check.
    ///
    /// # Panics
    ///
    /// When anything fails, listing every failure.
    pub fn run(&self) -> Checked {
        match self.check() {
            Ok(checked) => checked,
            Err(failures) => panic!(
                "{} migration check(s) failed:\n  {}",
                failures.len(),
                failures.join("\n  ")
            ),
        }
    }

    /// Runs every check; returns the failures instead of panicking.
    pub fn check(&self) -> std::result::Result<Checked, Vec<String>> {
        let mut failures = Vec::new();
        let mut checked = Checked::default();
        let roles = self.source.roles().map_err(|e| vec![e.to_string()])?;
        for role in roles {
            if let Err(e) = self.check_role(role, &mut checked, &mut failures) {
                failures.push(format!("role `{role}`: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(checked)
        } else {
            Err(failures)
        }
    }

    fn check_role(
        &self,
        role: &str,
        checked: &mut Checked,
        failures: &mut Vec<String>,
    ) -> Result<()> {
        let migrations = self.source.for_role(role)?;
        let conn = Connection::open_in_memory()?;
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
        let label = PathBuf::from(format!(":memory: ({role})"));
        // Round trips through each `down` drop what the migration's own transform wrote.
        let migrator = Migrator::new(self.source, role)
            .backup(None)
            .allow_data_loss(true);
        let mut previous = SchemaSnapshot::read(&conn)?;
        let mut previous_version = 0;
        for &m in &migrations {
            let id = m.id();
            let classification = crate::class::classify(&migrations, m);
            if classification.undeclared_contract() {
                let what: Vec<String> = classification
                    .contract_changes()
                    .map(ToString::to_string)
                    .collect();
                failures.push(format!(
                    "{id}: its schema makes it a contract migration (it {}); older binaries \
                     may fail on what it leaves behind, so it waits for them during a deploy — \
                     say so with `#[migration({}, contract)]`, or split it into an expand now \
                     and a contract in a later release",
                    what.join(", "),
                    m.version()
                ));
            }
            let at = migrator.clone().target(Some(m.version()));
            if let Err(e) = at.run_connection(&conn, &label) {
                failures.push(format!("{id}: {e}"));
                return Ok(());
            }
            checked.applied += 1;
            let after = SchemaSnapshot::read(&conn)?;
            if let Some(schema) = m.schema() {
                let declared = Connection::open_in_memory()?;
                for sql in schema.ddl() {
                    declared.execute_batch(&sql)?;
                }
                let found = after.diff(&SchemaSnapshot::read(&declared)?);
                if !found.is_empty() {
                    failures.push(format!(
                        "{id}: the database after it differs from the schema it declares:{}",
                        differences(&found)
                    ));
                }
            }
            if m.has_down() {
                match at.down_connection(&conn, &label, previous_version) {
                    Err(e) => failures.push(format!("{id}: its down failed: {e}")),
                    Ok(_) => {
                        let reverted = SchemaSnapshot::read(&conn)?;
                        let found = reverted.diff(&previous);
                        if !found.is_empty() {
                            failures.push(format!(
                                "{id}: its down does not restore the previous schema:{}",
                                differences(&found)
                            ));
                        }
                        if let Err(e) = at.run_connection(&conn, &label) {
                            failures.push(format!(
                                "{id}: applying it again after its down failed: {e}"
                            ));
                            return Ok(());
                        }
                        checked.round_trips += 1;
                    }
                }
            }
            if let Some(load) = m.test_data() {
                conn.execute_batch("BEGIN IMMEDIATE")?;
                match load(&mut Tx::new(&conn, Some(m))) {
                    Ok(()) => {
                        conn.execute_batch("COMMIT")?;
                        checked.test_data += 1;
                    }
                    Err(e) => {
                        conn.execute_batch("ROLLBACK")?;
                        failures.push(format!("{id}: its test data failed to load: {e}"));
                    }
                }
            }
            previous = SchemaSnapshot::read(&conn)?;
            previous_version = m.version();
        }
        if let Some(dir) = &self.schema_dir {
            let file = dir.join(format!("{role}.sql"));
            let dump = previous.dump();
            self.compare_dump(&file, &dump, failures);
            checked.dumps.push(file);
        }
        Ok(())
    }

    fn compare_dump(&self, file: &Path, dump: &str, failures: &mut Vec<String>) {
        let bless = std::env::var_os("STRATA_BLESS").is_some_and(|v| v != "0");
        let existing = std::fs::read_to_string(file).ok();
        if existing.as_deref() == Some(dump) {
            return;
        }
        if bless {
            let written = file
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(file, dump));
            if let Err(e) = written {
                failures.push(format!("cannot write {}: {e}", file.display()));
            }
            return;
        }
        match existing {
            None => failures.push(format!(
                "{} is missing; run the tests with STRATA_BLESS=1 to write it, and commit it",
                file.display()
            )),
            Some(old) => failures.push(format!(
                "the migrations now produce a schema that differs from {} (run with STRATA_BLESS=1 \
                 to accept it, then review the diff):{}",
                file.display(),
                line_diff(&old, dump)
            )),
        }
    }
}

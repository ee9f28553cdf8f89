//! Migrations registered at link time, and the sets of them an application runs.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::checksum::Checksum;
use crate::error::{Error, MigrationId, Result};
use crate::schema::Schema;
use crate::tx::Tx;

/// The body of a migration (`up`) or of its reversal (`down`).
pub type MigrationFn = for<'a, 'c> fn(&'a mut Tx<'c>) -> Result<()>;

/// How the runner treats foreign keys while a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignKeys {
    /// Leave enforcement as the connection has it.
    Enforce,
    /// Table rebuilds: enforcement is switched off before the transaction starts (SQLite ignores
    /// the pragma inside one), `PRAGMA foreign_key_check` runs before commit and any violation
    /// that was not there before rolls the migration back; enforcement is then restored.
    Off,
}

/// One migration, as `#[migration]` registers it. Read-only; the macro builds it.
#[derive(Debug)]
pub struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) role: &'static str,
    pub(crate) module: &'static str,
    pub(crate) location: (&'static str, u32),
    pub(crate) source: &'static str,
    pub(crate) checksum: Checksum,
    pub(crate) transaction: bool,
    pub(crate) baseline: bool,
    pub(crate) contract: bool,
    pub(crate) foreign_keys: ForeignKeys,
    pub(crate) up: MigrationFn,
    pub(crate) down: Option<MigrationFn>,
    pub(crate) test_data: Option<MigrationFn>,
    pub(crate) schema: Option<&'static Schema>,
    pub(crate) imported: Option<&'static str>,
    pub(crate) imported_sql: Option<(&'static str, &'static str)>,
}

/// The parts of a [`Migration`], as the macro fills them in. Not public API.
#[doc(hidden)]
pub struct MigrationDef {
    pub version: i64,
    pub name: &'static str,
    pub description: &'static str,
    pub role: &'static str,
    pub module: &'static str,
    pub file: &'static str,
    pub line: u32,
    /// Canonical text of the migration's tokens and attribute arguments.
    pub tokens: &'static str,
    /// The text of the file the migration is written in, as it was compiled.
    pub source: &'static str,
    pub transaction: bool,
    /// Adopts an existing database: applied to one whose schema is exactly the declared one,
    /// it is recorded without running.
    pub baseline: bool,
    /// Declared `contract`: binaries without it cannot serve on what it leaves behind.
    pub contract: bool,
    pub foreign_keys: ForeignKeys,
    pub up: MigrationFn,
    pub down: Option<MigrationFn>,
    /// Rows the test harness loads after applying the migration.
    pub test_data: Option<MigrationFn>,
    pub schema: Option<&'static Schema>,
    /// `imported = "tool:version"`: the peer migration it was imported from (not part of the
    /// checksum).
    pub imported: Option<&'static str>,
    /// The path (relative to `file`) and text of the one `sql_file!` an imported migration
    /// applies: the SQL the peer hashed.
    pub imported_sql: Option<(&'static str, &'static str)>,
}

/// The role every migration without `role = ..` belongs to.
pub const DEFAULT_ROLE: &str = "main";

impl Migration {
    /// The migration `#[migration]` registers, its checksum computed at compile time. Not
    /// public API.
    #[doc(hidden)]
    pub const fn __new(def: MigrationDef) -> Migration {
        let schema_text: &[u8] = match def.schema {
            Some(s) => s.canonical().as_bytes(),
            None => b"",
        };
        Migration {
            version: def.version,
            name: def.name,
            description: def.description,
            role: def.role,
            module: def.module,
            location: (def.file, def.line),
            source: def.source,
            checksum: Checksum::of(&[b"strata-migration-1", def.tokens.as_bytes(), schema_text]),
            transaction: def.transaction,
            baseline: def.baseline,
            contract: def.contract,
            foreign_keys: def.foreign_keys,
            up: def.up,
            down: def.down,
            test_data: def.test_data,
            schema: def.schema,
            imported: def.imported,
            imported_sql: def.imported_sql,
        }
    }

    /// The version: a UTC timestamp `YYYYMMDDHHMMSS`.
    pub fn version(&self) -> i64 {
        self.version
    }
    /// The migration function's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// The migration function's doc comment.
    pub fn description(&self) -> &'static str {
        self.description
    }
    /// The kind of database it applies to.
    pub fn role(&self) -> &'static str {
        self.role
    }
    /// The module that defines it, e.g. `notely_migrations::m20240226153000_create_notes`.
    pub fn module(&self) -> &'static str {
        self.module
    }
    /// Source file and line of the `#[migration]` attribute.
    pub fn location(&self) -> (&'static str, u32) {
        self.location
    }
    /// The text of the file the migration is written in — its function, `down`, test data and
    /// `schema!` — as it was compiled (what a reviewer reads before approving it). Not part of
    /// the checksum, which covers the tokens: comments and formatting may differ.
    pub fn source(&self) -> &'static str {
        self.source
    }
    /// Digest of the migration's code and declared schema, fixed at compile time.
    pub fn checksum(&self) -> Checksum {
        self.checksum
    }
    /// False for `no_transaction` migrations.
    pub fn transactional(&self) -> bool {
        self.transaction
    }
    /// Whether it is a baseline that adopts an existing database.
    pub fn is_baseline(&self) -> bool {
        self.baseline
    }
    /// Whether its attribute declares `contract` (see [`crate::class`]; the class the runner
    /// acts on is [`crate::class::classify`]'s, which also derives it from the schema).
    pub fn declares_contract(&self) -> bool {
        self.contract
    }
    /// Foreign-key handling while it runs.
    pub fn foreign_keys(&self) -> ForeignKeys {
        self.foreign_keys
    }
    /// Whether it has a paired `down`.
    pub fn has_down(&self) -> bool {
        self.down.is_some()
    }
    /// The schema the migration declares it leaves behind.
    pub fn schema(&self) -> Option<&'static Schema> {
        self.schema
    }
    /// The peer migration it was imported from (`strata import`), as `tool:version` — e.g.
    /// `sqlx:20240226153000` — when its attribute says `imported = ".."`. Pending on a database
    /// whose peer history table records that version as applied, it is recorded without running
    /// (see [`crate::import`]).
    pub fn imported(&self) -> Option<&'static str> {
        self.imported
    }
    /// The file (relative to [`Migration::location`]'s) and text of the SQL an imported
    /// migration applies: what the peer's checksum covers.
    pub(crate) fn imported_sql(&self) -> Option<(&'static str, &'static str)> {
        self.imported_sql
    }
    /// Version and name, for messages.
    pub fn id(&self) -> MigrationId {
        MigrationId {
            version: self.version,
            name: self.name.to_string(),
        }
    }
    pub(crate) fn up_fn(&self) -> MigrationFn {
        self.up
    }
    pub(crate) fn down_fn(&self) -> Option<MigrationFn> {
        self.down
    }
    /// The rows the test harness loads after applying it, if any.
    pub fn test_data(&self) -> Option<MigrationFn> {
        self.test_data
    }
}

inventory::collect!(Migration);

/// The migrations defined in one crate or module, collected at link time.
///
/// Declare one with [`migrations!`](crate::migrations) in the crate that defines the
/// migrations and hand it to the [`Migrator`](crate::Migrator). Because the application names
/// this static, the linker cannot drop that crate and its migrations with it.
#[derive(Debug)]
pub struct Source {
    prefix: &'static str,
    /// The sorted, checked migrations, collected on first use.
    collected: OnceLock<Vec<&'static Migration>>,
}

impl Source {
    /// The source of the migrations under `module_path`, as `migrations!` declares it. Not
    /// public API.
    #[doc(hidden)]
    pub const fn __new(module_path: &'static str) -> Source {
        Source {
            prefix: module_path,
            collected: OnceLock::new(),
        }
    }

    /// The module path whose migrations (including those of its submodules) this source holds.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// All migrations of the source, sorted by version.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyRegistry`] when there are none, [`Error::DuplicateVersion`] when two share a
    /// version.
    pub fn all(&self) -> Result<Vec<&'static Migration>> {
        if let Some(all) = self.collected.get() {
            return Ok(all.clone());
        }
        let mut all: Vec<&'static Migration> = inventory::iter::<Migration>
            .into_iter()
            .filter(|m| in_module(m.module, self.prefix))
            .collect();
        if all.is_empty() {
            return Err(Error::EmptyRegistry {
                set: self.prefix.to_string(),
            });
        }
        sort_and_check(&mut all)?;
        // The registry is fixed at link time: what was collected once stays true.
        Ok(self.collected.get_or_init(|| all).clone())
    }

    /// The migrations of `role`, sorted by version.
    ///
    /// # Errors
    ///
    /// As [`Source::all`], and [`Error::UnknownRole`] when no migration targets `role`.
    pub fn for_role(&self, role: &str) -> Result<Vec<&'static Migration>> {
        let all = self.all()?;
        let of_role: Vec<_> = all.iter().copied().filter(|m| m.role == role).collect();
        if of_role.is_empty() {
            return Err(Error::UnknownRole {
                role: role.to_string(),
                set: self.prefix.to_string(),
                known: roles(&all).join(", "),
            });
        }
        Ok(of_role)
    }

    /// The roles the source's migrations target, sorted.
    pub fn roles(&self) -> Result<Vec<&'static str>> {
        Ok(roles(&self.all()?))
    }
}

fn roles(all: &[&'static Migration]) -> Vec<&'static str> {
    let set: BTreeSet<_> = all.iter().map(|m| m.role).collect();
    set.into_iter().collect()
}

fn in_module(module: &str, prefix: &str) -> bool {
    module == prefix || (module.starts_with(prefix) && module[prefix.len()..].starts_with("::"))
}

/// Sorts by version and rejects duplicates, naming both migrations.
pub(crate) fn sort_and_check(all: &mut [&'static Migration]) -> Result<()> {
    // Versions are unique per role: separate databases may each have a migration of the same
    // version (histories ported from several databases do).
    all.sort_by_key(|m| (m.version, m.role));
    for pair in all.windows(2) {
        if pair[0].version == pair[1].version && pair[0].role == pair[1].role {
            let describe = |m: &Migration| format!("{}::{} (role `{}`)", m.module, m.name, m.role);
            return Err(Error::DuplicateVersion {
                version: pair[0].version,
                first: describe(pair[0]),
                second: describe(pair[1]),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_: &mut Tx<'_>) -> Result<()> {
        Ok(())
    }

    const fn def(version: i64, name: &'static str, module: &'static str) -> MigrationDef {
        MigrationDef {
            version,
            name,
            description: "",
            role: DEFAULT_ROLE,
            module,
            file: file!(),
            line: line!(),
            tokens: name,
            source: "",
            transaction: true,
            baseline: false,
            contract: false,
            foreign_keys: ForeignKeys::Enforce,
            up: noop,
            down: None,
            test_data: None,
            schema: None,
            imported: None,
            imported_sql: None,
        }
    }

    static A: Migration = Migration::__new(def(20240101000000, "a", "app::m1"));
    static B: Migration = Migration::__new(def(20240102000000, "b", "app::m2"));
    static B2: Migration = Migration::__new(def(20240102000000, "b_again", "app::m3"));

    #[test]
    fn the_same_version_in_two_roles_is_no_duplicate() {
        static OTHER_ROLE: Migration = Migration::__new(MigrationDef {
            role: "audit",
            ..def(20240102000000, "b_audit", "app::m4")
        });
        let mut all = vec![&OTHER_ROLE, &A, &B];
        sort_and_check(&mut all).unwrap();
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn duplicates_are_reported_with_both_names() {
        let mut all = vec![&B2, &A, &B];
        let err = sort_and_check(&mut all).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("20240102000000"), "{msg}");
        assert!(
            msg.contains("app::m2::b") && msg.contains("app::m3::b_again"),
            "{msg}"
        );
    }

    #[test]
    fn sorted_by_version() {
        let mut all = vec![&B, &A];
        sort_and_check(&mut all).unwrap();
        assert_eq!(all[0].name(), "a");
    }

    #[test]
    fn empty_source_is_an_error() {
        let err = Source::__new("nothing::here").all().unwrap_err();
        assert!(matches!(err, Error::EmptyRegistry { .. }), "{err}");
        assert!(err.to_string().contains("strata::migrations!()"));
    }

    #[test]
    fn module_prefix_matches_whole_segments() {
        assert!(in_module("app::m1", "app"));
        assert!(in_module("app", "app"));
        assert!(!in_module("apple::m1", "app"));
    }

    #[test]
    fn checksum_covers_tokens() {
        let mut other = def(20240101000000, "a", "app::m1");
        other.tokens = "a changed";
        assert_ne!(A.checksum(), Migration::__new(other).checksum());
        assert_eq!(
            A.checksum(),
            Migration::__new(def(20240101000000, "a", "x")).checksum()
        );
    }
}

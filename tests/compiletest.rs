//! Compile tests.
//!
//! - `ui/<mistake>.rs` must fail to compile with the reviewed `ui/<mistake>.stderr`. After a
//!   toolchain upgrade, regenerate with
//!   `TRYBUILD=overwrite cargo test -p strata-tests --test compiletest` and review the diff.
//! - Code Strata writes for its users must compile and work: a migration scaffolded by
//!   `strata new` next to Notely's real migrations, and a baseline printed by
//!   `strata introspect`, which then adopts the database it was read from.

use std::path::{Path, PathBuf};

#[path = "schemagen.rs"]
mod schemagen;

/// How many random schemas the introspection round trip compiles and checks.
const ROUND_TRIPS: u64 = 24;

#[test]
fn ui() {
    let generated = generate();
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    for case in &generated {
        t.pass(case);
    }
}

const EXISTING: &str = "CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL UNIQUE,
    score REAL DEFAULT 0.5,
    note TEXT DEFAULT 'none'
);
CREATE TABLE pets (
    id INTEGER PRIMARY KEY,
    owner INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    name TEXT NOT NULL
);
CREATE INDEX pets_by_owner ON pets (owner);
INSERT INTO people (name) VALUES ('Ada');";

fn generate() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/strata-generated");
    let _ = std::fs::remove_dir_all(&root);
    let mig = root.join("mig");
    std::fs::create_dir_all(&mig).unwrap();
    let notely = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/src");
    for entry in std::fs::read_dir(&notely).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, mig.join(path.file_name().unwrap())).unwrap();
    }
    let now = chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05Z")
        .unwrap()
        .to_utc();
    let made =
        strata::authoring::new_migration(&mig, "add_note_titles", Some("notes"), now).unwrap();
    assert!(
        made.copied_from.is_some(),
        "copied from the previous notes migration"
    );
    // The short form, `extends` the one just written: still typed, still compiles.
    let later = now + chrono::TimeDelta::seconds(10);
    let short =
        strata::authoring::new_migration_with(&mig, "tag_notes", Some("notes"), later, true)
            .unwrap();
    let text = std::fs::read_to_string(&short.path).unwrap();
    assert!(
        text.contains(&format!("extends super::{};", made.module)),
        "{text}"
    );
    std::fs::write(
        &short.path,
        text.replace(
            "let _ = tx;",
            "let _ = (tx, notes::CONTENT, prev::notes::CONTENT);",
        ),
    )
    .unwrap();
    // Every migration module beside the new one, as in the migrations crate (earlier
    // migrations import each other as `crate::m..`).
    let scaffolded = root.join("scaffolded.rs");
    let mut crate_root = String::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&mig)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| s.to_string_lossy().starts_with('m'))
        })
        .collect();
    files.sort();
    for file in files {
        crate_root.push_str(&format!(
            "mod {} {{ include!({:?}); }}\n",
            file.file_stem().unwrap().to_string_lossy(),
            file.canonicalize().unwrap()
        ));
    }
    crate_root.push_str("fn main() {}\n");
    std::fs::write(&scaffolded, crate_root).unwrap();

    let db = root.join("existing.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(EXISTING)
        .unwrap();
    let code = strata::authoring::introspect(&db, &[], "main", 20200101000000).unwrap();
    let code_file = root.join("baseline.rs");
    std::fs::write(&code_file, code).unwrap();
    let adopt = root.join("adopt.rs");
    std::fs::write(
        &adopt,
        format!(
            r#"mod adopted {{
    strata::migrations!();
    include!({code:?});
}}

fn main() {{
    let db = std::path::Path::new({db:?});
    let schema = |c: &rusqlite::Connection| strata::SchemaSnapshot::read(c).unwrap().dump();
    let before = schema(&rusqlite::Connection::open(db).unwrap());
    let migrator = strata::Migrator::new(&adopted::MIGRATIONS, "main").backup(None);
    let report = migrator.run(db).unwrap_or_else(|e| panic!("{{e}}"));
    assert_eq!(report.applied.len(), 1);
    assert_eq!(schema(&rusqlite::Connection::open(db).unwrap()), before);
    assert!(migrator.verify(db).unwrap().is_clean());
}}
"#,
            code = code_file.canonicalize().unwrap(),
            db = db.canonicalize().unwrap(),
        ),
    )
    .unwrap();
    vec![scaffolded, adopt, round_trip(&root), histories(&root)]
}

/// Our test histories in the style of five tools (`tests/histories/sql`, see FORMS.md):
/// imported by `strata import`, compiled, checked by the harness (no `schema = none`), applied
/// to an empty database and compared with the sqlite3 shell's replay of the same SQL; and the
/// shell's database adopted by an introspected baseline.
fn histories(root: &Path) -> PathBuf {
    use strata::import::{Tool, default_base_time, plan_with, write};
    let sql = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories/sql");
    // Half written in full, half in the short form (`--inherit`: `extends` the previous).
    let sets: [(&str, Tool, &str, bool); 6] = [
        ("sqlx", Tool::Sqlx, "links", false),
        ("refinery", Tool::Refinery, "plugins", true),
        ("diesel", Tool::Diesel, "vaults", false),
        ("goose", Tool::Goose, "music", true),
        // One application, two databases, sharing versions (001, 002, ..): two roles.
        ("handrolled/main", Tool::Sqlx, "main", true),
        ("handrolled/jobs", Tool::Sqlx, "jobs", false),
    ];
    let mut modules = String::new();
    let mut imported = String::new();
    let mut checks = String::new();
    for (dir, tool, role, inherit) in sets {
        let plan = plan_with(tool, &sql.join(dir), role, default_base_time(), inherit)
            .unwrap_or_else(|e| panic!("importing {dir}: {e}"));
        let out = root.join("histories").join(dir.replace('/', "_"));
        write(&plan, &out).unwrap_or_else(|e| panic!("writing {dir}: {e}"));
        // The sqlite3 shell replays the same SQL, one migration per invocation.
        let replay = root.join(format!("history_{}.db", dir.replace('/', "_")));
        let _ = std::fs::remove_file(&replay);
        for m in &plan.migrations {
            let mut shell = std::process::Command::new("sqlite3")
                .arg("-bail")
                .arg(&replay)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .expect("the sqlite3 shell (README's test command installs it)");
            use std::io::Write as _;
            shell
                .stdin
                .take()
                .unwrap()
                .write_all(m.peer.up.as_bytes())
                .unwrap();
            assert!(
                shell.wait().unwrap().success(),
                "sqlite3 failed on {dir}/{}",
                m.peer.source
            );
        }
        imported.push_str(&format!("    mod {role} {{\n"));
        for m in &plan.migrations {
            let file = out.join(format!("{}.rs", m.module)).canonicalize().unwrap();
            imported.push_str(&format!(
                "        #[path = {file:?}]\n        pub mod {};\n",
                m.module
            ));
        }
        imported.push_str("    }\n");
        // The shell's database, adopted by a baseline printed from it.
        let adopted = root.join(format!("history_{}_adopted.db", dir.replace('/', "_")));
        std::fs::copy(&replay, &adopted).unwrap();
        let baseline = strata::authoring::introspect(&replay, &[], role, 20200101000000).unwrap();
        let baseline_file = root.join(format!("history_{}_baseline.rs", dir.replace('/', "_")));
        std::fs::write(&baseline_file, baseline).unwrap();
        modules.push_str(&format!(
            "mod {role}_baseline {{\n    strata::migrations!();\n    include!({:?});\n}}\n",
            baseline_file.canonicalize().unwrap()
        ));
        checks.push_str(&format!(
            "    compare({role:?}, {:?});\n    adopt({role:?}, &{role}_baseline::MIGRATIONS, {:?});\n",
            replay.canonicalize().unwrap(),
            adopted.canonicalize().unwrap(),
        ));
    }
    let main = format!(
        r#"mod imported {{
    strata::migrations!();
{imported}}}
{modules}
fn snapshot(db: &std::path::Path) -> strata::SchemaSnapshot {{
    strata::SchemaSnapshot::read(&rusqlite::Connection::open(db).unwrap()).unwrap()
}}

/// Strata's migrations of `role` on an empty file give the shell's schema.
fn compare(role: &str, replay: &str) {{
    let replay = std::path::Path::new(replay);
    let fresh = replay.with_extension("strata.db");
    let _ = std::fs::remove_file(&fresh);
    strata::Migrator::new(&imported::MIGRATIONS, role)
        .backup(None)
        .run(&fresh)
        .unwrap_or_else(|e| panic!("{{role}}: {{e}}"));
    let (made, shell) = (snapshot(&fresh), snapshot(replay));
    let one: Vec<String> = made.diff(&shell).iter().map(ToString::to_string).collect();
    let other: Vec<String> = shell.diff(&made).iter().map(ToString::to_string).collect();
    assert!(one.is_empty() && other.is_empty(), "{{role}}: {{one:?}} {{other:?}}");
}}

fn adopt(role: &str, source: &'static strata::Source, db: &str) {{
    let db = std::path::Path::new(db);
    let before = snapshot(db);
    let migrator = strata::Migrator::new(source, role).backup(None);
    let report = migrator.run(db).unwrap_or_else(|e| panic!("{{role}} baseline: {{e}}"));
    assert_eq!(report.applied.len(), 1, "{{role}}");
    assert!(snapshot(db).diff(&before).is_empty(), "{{role}}: adoption changed the schema");
}}

fn main() {{
    // Every history compiles (above) and passes the harness without `schema = none`.
    if let Err(failures) = strata::testing::Harness::new(&imported::MIGRATIONS).check() {{
        panic!("{{}}", failures.join("\n"));
    }}
{checks}}}
"#
    );
    let path = root.join("histories.rs");
    std::fs::write(&path, main).unwrap();
    path
}

/// Random schemas, each created by SQL, introspected, compiled, then applied: the baseline
/// adopts the database it was read from without a change, and creates an identical schema in
/// an empty one.
fn round_trip(root: &Path) -> PathBuf {
    let mut modules = String::new();
    let mut checks = String::new();
    for seed in 0..ROUND_TRIPS {
        let ddl = schemagen::schema(seed);
        let db = root.join(format!("random{seed}.db"));
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(&ddl)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{ddl}"));
        std::fs::write(root.join(format!("random{seed}.sql")), &ddl).unwrap();
        // One version each: versions are unique per role across the crate.
        let version = 20200101000000 + seed as i64;
        let code = strata::authoring::introspect(&db, &[], "main", version).unwrap();
        let file = root.join(format!("random{seed}.rs"));
        std::fs::write(&file, code).unwrap();
        modules.push_str(&format!(
            "mod s{seed} {{\n    strata::migrations!();\n    include!({:?});\n}}\n",
            file.canonicalize().unwrap()
        ));
        checks.push_str(&format!(
            "    check({seed}, &s{seed}::MIGRATIONS, {:?});\n",
            db.canonicalize().unwrap()
        ));
    }
    let main = format!(
        r#"{modules}
fn snapshot(db: &std::path::Path) -> strata::SchemaSnapshot {{
    strata::SchemaSnapshot::read(&rusqlite::Connection::open(db).unwrap()).unwrap()
}}

fn check(seed: u64, source: &'static strata::Source, db: &str) {{
    let db = std::path::Path::new(db);
    let original = snapshot(db);
    let migrator = strata::Migrator::new(source, "main").backup(None);
    // Adopts the database it was read from, changing nothing.
    let report = migrator.run(db).unwrap_or_else(|e| panic!("seed {{seed}}: adopting: {{e}}"));
    assert_eq!(report.applied.len(), 1, "seed {{seed}}");
    let after = snapshot(db);
    assert!(after.diff(&original).is_empty(), "seed {{seed}}: adoption changed the schema");
    // Creates the same schema in an empty database.
    let fresh = db.with_extension("fresh.db");
    let _ = std::fs::remove_file(&fresh);
    migrator.run(&fresh).unwrap_or_else(|e| panic!("seed {{seed}}: creating: {{e}}"));
    let made = snapshot(&fresh);
    let differences: Vec<String> = made.diff(&original).iter().map(ToString::to_string).collect();
    assert!(differences.is_empty(), "seed {{seed}}: {{differences:?}}");
    let back: Vec<String> = original.diff(&made).iter().map(ToString::to_string).collect();
    assert!(back.is_empty(), "seed {{seed}}: {{back:?}}");
}}

fn main() {{
{checks}}}
"#
    );
    let path = root.join("round_trip.rs");
    std::fs::write(&path, main).unwrap();
    path
}

//! Compile tests.
//!
//! - `ui/<mistake>.rs` must fail to compile with the reviewed `ui/<mistake>.stderr`. After a
//!   toolchain upgrade, regenerate with
//!   `TRYBUILD=overwrite cargo test -p strata-tests --test compiletest` and review the diff.
//! - Code Strata writes for its users must compile and work: a migration scaffolded by
//!   `strata new` next to Notely's real migrations, and a baseline printed by
//!   `strata introspect`, which then adopts the database it was read from.

use std::path::{Path, PathBuf};

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
    vec![scaffolded, adopt]
}

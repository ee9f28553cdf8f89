//! Bad files get a clear error and are left exactly as they were.

use std::path::Path;

use strata::{Error, Migrator, Result, Tx, migration};

use crate::util::temp_db;

mod set {
    use super::*;

    strata::migrations!();

    #[migration(20230401000001, schema = none)]
    fn create_l(tx: &mut Tx) -> Result<()> {
        tx.execute_batch("CREATE TABLE l (id INTEGER PRIMARY KEY)")
    }
}

fn migrator() -> Migrator<'static> {
    Migrator::new(&set::MIGRATIONS, "main")
}

/// Runs the migrator on `path`, expects an error, and checks the file did not change.
fn refused(path: &Path) -> Error {
    let before = std::fs::read(path).ok();
    let err = migrator().run(path).unwrap_err();
    assert_eq!(
        std::fs::read(path).ok(),
        before,
        "{} was modified",
        path.display()
    );
    err
}

#[test]
fn missing_directory() {
    let (dir, _) = temp_db();
    let path = dir.path().join("nowhere/app.db");
    let err = refused(&path);
    assert!(matches!(err, Error::MissingDirectory(_)), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!dir.path().join("nowhere").exists());
    let err = migrator().status(&path).unwrap_err();
    assert!(matches!(err, Error::MissingDirectory(_)), "{err}");
}

#[test]
fn not_an_sqlite_file() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, "name,email\nada,ada@example.com\n".repeat(100)).unwrap();
    let err = refused(&path);
    assert!(matches!(err, Error::NotADatabase(_)), "{err}");
    assert!(err.to_string().contains("not an SQLite database"), "{err}");
    assert!(matches!(
        migrator().status(&path).unwrap_err(),
        Error::NotADatabase(_)
    ));
    // With a journal beside it (which SQLite would play back on its first read), and a
    // short file: refused before SQLite opens it, untouched.
    let journal = path.with_extension("db-journal");
    std::fs::write(&journal, vec![0xd9u8; 4096]).unwrap();
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(refused(&path), Error::NotADatabase(_)));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    std::fs::write(&path, "short").unwrap();
    assert!(matches!(refused(&path), Error::NotADatabase(_)));
    assert_eq!(std::fs::read(&path).unwrap(), b"short");
}

#[test]
fn corrupt_database() {
    let (_dir, path) = temp_db();
    migrator().run(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // Keep the 16-byte magic, wreck the rest of the header and the schema page.
    for (i, b) in bytes.iter_mut().enumerate().skip(16).take(4000) {
        *b = (i * 7 + 3) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = refused(&path);
    assert!(
        matches!(err, Error::Corrupt { .. } | Error::NotADatabase(_)),
        "unexpected error: {err}"
    );
}

#[test]
fn database_of_another_application() {
    let (_dir, path) = temp_db();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY); INSERT INTO users VALUES (1)")
        .unwrap();
    let err = refused(&path);
    assert!(matches!(err, Error::ForeignDatabase { .. }), "{err}");
    assert!(err.to_string().contains("users") && err.to_string().contains("not created by Strata"));
    assert!(matches!(
        migrator().status(&path).unwrap_err(),
        Error::ForeignDatabase { .. }
    ));
}

#[test]
fn empty_file_is_a_new_database() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, b"").unwrap();
    assert_eq!(migrator().run(&path).unwrap().applied.len(), 1);
}

#[test]
fn read_only_file_system() {
    // As root, permission bits do not stop writes: bind-mount the directory read-only in a
    // private mount namespace instead, and run the probe application there.
    let (dir, path) = temp_db();
    let probe = env!("CARGO_BIN_EXE_strata-probe");
    assert!(
        std::process::Command::new(probe)
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
    let before = std::fs::read(&path).unwrap();
    let d = dir.path().display();
    let script = format!(
        "mount --bind {d} {d} && mount -o remount,bind,ro {d} && exec {probe} {d}/app.db; \
         echo 'cannot set up a read-only mount' >&2; exit 99"
    );
    let out = if is_root() {
        std::process::Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .output()
    } else {
        let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        perms.set_mode(0o555);
        std::fs::set_permissions(dir.path(), perms.clone()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let out = std::process::Command::new(probe).arg(&path).output();
        perms.set_mode(0o755);
        std::fs::set_permissions(dir.path(), perms).unwrap();
        out
    }
    .expect("run probe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(99), "{stderr}");
    assert!(!out.status.success());
    assert!(stderr.contains("cannot be written"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

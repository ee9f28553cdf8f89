//! The floor of the benchmark: the same generated migrations applied by plain rusqlite doing
//! only what a safe runner must, nothing else: `floor-bench cold|steady SET ITERATIONS DIR`.
//! Prints one JSON line with every sample in microseconds, like the other tools.
//!
//! - cold: open; read the history (creating its table, there being none); then per migration
//!   `BEGIN IMMEDIATE`, its statements, one history insert (version and checksum; the version
//!   is the primary key, so a concurrent runner's duplicate fails and rolls back), `COMMIT`.
//! - steady: open; read the history's versions and checksums and compare them with the
//!   migrations (nothing pending).
//!
//! SQLite's defaults, like every tool of the benchmark: rollback journal, `synchronous=FULL`.
//! Its own statements are prepared once per connection. The migrations are read from
//! `migrations/SET/*.sql` (written by gen_migrations.py) before the clock starts, and their
//! checksums (64-bit SipHash, in hex) computed then too, as Strata computes its at compile time.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Instant;

use rusqlite::Connection;

struct Migration {
    version: i64,
    sql: String,
    checksum: String,
}

fn load(set: &str) -> Vec<Migration> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(set);
    let mut all: Vec<Migration> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run gen_migrations.py)", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let version = name.split('_').next().unwrap().parse().unwrap();
            let sql = std::fs::read_to_string(&path).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            sql.hash(&mut h);
            Migration {
                version,
                sql,
                checksum: format!("{:016x}", h.finish()),
            }
        })
        .collect();
    all.sort_by_key(|m| m.version);
    all
}

/// How many migrations are applied, after checking that the history is a prefix of
/// `migrations` with matching checksums; creates the history table when there is none.
fn applied(conn: &Connection, migrations: &[Migration]) -> usize {
    let Ok(mut stmt) = conn.prepare("SELECT version, checksum FROM floor_history ORDER BY version")
    else {
        conn.execute_batch(
            "CREATE TABLE floor_history (version INTEGER PRIMARY KEY, checksum TEXT NOT NULL)",
        )
        .unwrap();
        return 0;
    };
    let mut rows = stmt.query([]).unwrap();
    let mut n = 0;
    while let Some(row) = rows.next().unwrap() {
        let m = &migrations[n];
        assert!(
            row.get::<_, i64>(0).unwrap() == m.version
                && row.get_ref(1).unwrap().as_str().unwrap() == m.checksum,
            "history differs from the migrations"
        );
        n += 1;
    }
    n
}

fn migrate(migrations: &[Migration], path: &Path) {
    let conn = Connection::open(path).expect("open");
    let done = applied(&conn, migrations);
    for m in &migrations[done..] {
        conn.prepare_cached("BEGIN IMMEDIATE")
            .unwrap()
            .execute([])
            .unwrap();
        conn.execute_batch(&m.sql).unwrap();
        conn.prepare_cached("INSERT INTO floor_history (version, checksum) VALUES (?1, ?2)")
            .unwrap()
            .execute(rusqlite::params![m.version, m.checksum])
            .unwrap();
        conn.prepare_cached("COMMIT").unwrap().execute([]).unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, set, iterations, dir) = (
        &args[1],
        args[2].as_str(),
        args[3].parse().unwrap(),
        Path::new(&args[4]),
    );
    let migrations = load(set);
    let mut samples = Vec::new();
    let steady = dir.join("floor-steady.db");
    if mode == "steady" {
        migrate(&migrations, &steady);
    }
    for i in 0..iterations {
        let path = match mode.as_str() {
            "cold" => dir.join(format!("floor-cold-{i}.db")),
            _ => steady.clone(),
        };
        let t0 = Instant::now();
        migrate(&migrations, &path);
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "{{\"tool\":\"floor\",\"mode\":\"{mode}\",\"set\":\"{set}\",\"samples_us\":{samples:?}}}"
    );
}

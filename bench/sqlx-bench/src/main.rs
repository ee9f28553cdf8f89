//! Times sqlx on N generated migrations: `sqlx-bench cold|steady SET ITERATIONS DIR`.
//! Same SQLite settings as the others: rollback journal, synchronous=FULL.

use std::path::Path;
use std::time::Instant;

use sqlx::ConnectOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

static N10: Migrator = sqlx::migrate!("migrations/n10");
static N100: Migrator = sqlx::migrate!("migrations/n100");
static N1000: Migrator = sqlx::migrate!("migrations/n1000");
static T1000: Migrator = sqlx::migrate!("migrations/t1000");

async fn migrate(set: &str, path: &Path) {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await
        .expect("open");
    let migrator = match set {
        "n10" => &N10,
        "n100" => &N100,
        "n1000" => &N1000,
        "t1000" => &T1000,
        _ => panic!("SET is n10, n100, n1000 or t1000"),
    };
    migrator.run(&mut conn).await.expect("migrate");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, set, iterations, dir) = (&args[1], args[2].as_str(), args[3].parse().unwrap(), Path::new(&args[4]));
    let mut samples = Vec::new();
    let steady = dir.join("sqlx-steady.db");
    if mode == "steady" {
        migrate(set, &steady).await;
    }
    for i in 0..iterations {
        let path = match mode.as_str() {
            "cold" => dir.join(format!("sqlx-cold-{i}.db")),
            _ => steady.clone(),
        };
        let t0 = Instant::now();
        migrate(set, &path).await;
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    println!("{{\"tool\":\"sqlx\",\"mode\":\"{mode}\",\"set\":\"{set}\",\"samples_us\":{samples:?}}}");
}

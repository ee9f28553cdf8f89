//! Times refinery on N generated migrations: `refinery-bench cold|steady SET ITERATIONS DIR`.
//! `BENCH_VARIANT=grouped`: refinery's opt-in grouping (every migration in one transaction),
//! reported as `refinery-grouped`.

use std::path::Path;
use std::time::Instant;

mod n10 {
    refinery::embed_migrations!("migrations/n10");
}
mod n100 {
    refinery::embed_migrations!("migrations/n100");
}
mod n1000 {
    refinery::embed_migrations!("migrations/n1000");
}
mod t1000 {
    refinery::embed_migrations!("migrations/t1000");
}

fn grouped() -> bool {
    std::env::var("BENCH_VARIANT").is_ok_and(|v| v == "grouped")
}

fn migrate(set: &str, path: &Path) {
    let mut conn = rusqlite::Connection::open(path).expect("open");
    let runner = match set {
        "n10" => n10::migrations::runner(),
        "n100" => n100::migrations::runner(),
        "n1000" => n1000::migrations::runner(),
        "t1000" => t1000::migrations::runner(),
        _ => panic!("SET is n10, n100, n1000 or t1000"),
    };
    runner.set_grouped(grouped()).run(&mut conn).expect("migrate");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, set, iterations, dir) = (&args[1], args[2].as_str(), args[3].parse().unwrap(), Path::new(&args[4]));
    let mut samples = Vec::new();
    let steady = dir.join("refinery-steady.db");
    if mode == "steady" {
        migrate(set, &steady);
    }
    for i in 0..iterations {
        let path = match mode.as_str() {
            "cold" => dir.join(format!("refinery-cold-{i}.db")),
            _ => steady.clone(),
        };
        let t0 = Instant::now();
        migrate(set, &path);
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let tool = if grouped() { "refinery-grouped" } else { "refinery" };
    println!("{{\"tool\":\"{tool}\",\"mode\":\"{mode}\",\"set\":\"{set}\",\"samples_us\":{samples:?}}}");
}

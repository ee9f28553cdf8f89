//! Times Strata on N generated migrations: `strata-bench cold|steady SET ITERATIONS DIR`.
//! Prints one JSON line with every sample in microseconds. `BENCH_VARIANT=single`: a
//! transaction per migration (no group commit), reported as `strata-single`.

mod n10;
mod n100;
mod n1000;
mod t1000;

use std::path::Path;
use std::time::Instant;

fn single() -> bool {
    std::env::var("BENCH_VARIANT").is_ok_and(|v| v == "single")
}

fn migrate(set: &str, path: &Path) {
    let source = match set {
        "n10" => &n10::MIGRATIONS,
        "n100" => &n100::MIGRATIONS,
        "n1000" => &n1000::MIGRATIONS,
        "t1000" => &t1000::MIGRATIONS,
        _ => panic!("SET is n10, n100, n1000 or t1000"),
    };
    let mut migrator = strata::Migrator::new(source, "main");
    if single() {
        migrator = migrator.group_for(std::time::Duration::ZERO);
    }
    let report = migrator.run(path).expect("migrate");
    assert!(report.version.is_some());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, set, iterations, dir) = (
        &args[1],
        args[2].as_str(),
        args[3].parse().unwrap(),
        Path::new(&args[4]),
    );
    let mut samples = Vec::new();
    let steady = dir.join("strata-steady.db");
    if mode == "steady" {
        migrate(set, &steady);
    }
    for i in 0..iterations {
        let path = match mode.as_str() {
            "cold" => dir.join(format!("strata-cold-{i}.db")),
            _ => steady.clone(),
        };
        let t0 = Instant::now();
        migrate(set, &path);
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let tool = if single() { "strata-single" } else { "strata" };
    println!(
        "{{\"tool\":\"{tool}\",\"mode\":\"{mode}\",\"set\":\"{set}\",\"samples_us\":{samples:?}}}"
    );
}

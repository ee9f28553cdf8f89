//! `notely demo` and the strict simulated users: they report zero misses against the real
//! service, and they do catch a service that loses writes.

use crate::common;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::Method;
use notely::loadgen::{self, LoadConfig};
use notely::telemetry::Telemetry;

#[test]
fn demo_moves_legacy_to_new_to_shards_and_reshards_with_zero_misses() {
    // Going from 2 shards to 4 moves the accounts of half the logical shards, and the users'
    // ids are random: with 6 accounts none moved in about one run of 64 (no reshard move to
    // report); with 12, one in 4096.
    let out = std::process::Command::new(common::NOTELY)
        .args(["demo", "--legacy", "--legacy-notes", "50", "--shards", "2"])
        .args([
            "--reshard",
            "4",
            "--duration",
            "1",
            "--accounts",
            "12",
            "--json",
        ])
        .env_remove("NOTELY_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["consistency_misses"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["verify_differences"], 0, "{report}");
    assert_eq!(report["legacy_notes_seeded"], 600, "{report}");
    let moves = report["moves"].as_array().unwrap();
    let described: Vec<&str> = moves
        .iter()
        .map(|m| m["description"].as_str().unwrap())
        .collect();
    assert_eq!(
        described,
        ["all accounts → notes", "→ 2 shards", "reshard 2 → 4 shards"]
    );
    for m in moves {
        assert_eq!(m["state"], "done", "{m}");
        for field in ["duration_s", "records", "records_per_s", "p99_during_ms"] {
            assert!(m[field].as_f64().is_some(), "{field} missing: {m}");
        }
    }
    assert!(moves[0]["records"].as_u64().unwrap() >= 600);
    let counts = &report["note_counts"];
    assert_eq!(
        (&counts["legacy"], &counts["notes"]),
        (&serde_json::json!(0), &serde_json::json!(0))
    );
    let sharded: u64 = (0..4)
        .map(|i| counts[format!("shard-{i:02}")].as_u64().unwrap())
        .sum();
    assert!(sharded >= 600, "{counts}");
    assert!(report["p99_before_ms"].as_f64().unwrap() > 0.0);
    assert!(report["p99_during_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn demo_reports_zero_misses_as_json() {
    let out = std::process::Command::new(common::NOTELY)
        .args(["demo", "--duration", "2", "--accounts", "8", "--json"])
        .env_remove("NOTELY_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["requests"].as_u64().unwrap() > 100, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["consistency_misses"], 0, "{report}");
    assert!(report["p99_ms"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        report["server"]["api"]["PUT /accounts/{id}/notes/{note}"]["count"]
            .as_u64()
            .unwrap()
            > 0
    );
    let dir = report["data_dir"].as_str().unwrap();
    assert!(
        !std::path::Path::new(dir).exists(),
        "the temporary data dir is removed"
    );
}

/// A service that answers updates without keeping them: PUT becomes GET before routing.
fn lose_updates(mut req: Request) -> Request {
    if req.method() == Method::PUT && req.uri().path().contains("/notes/") {
        *req.method_mut() = Method::GET;
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_users_catch_lost_updates() {
    let dir = tempfile::tempdir().unwrap();
    let settings = notely::db::Settings {
        backups: 0,
        ..Default::default()
    };
    notely::db::startup(dir.path(), &settings, &mut std::io::sink(), None).unwrap();
    let telemetry = Arc::new(Telemetry::default());
    let state = notely::server::state(dir.path(), Vec::new(), Arc::clone(&telemetry)).unwrap();
    let inner = tower::ServiceBuilder::new()
        .map_request(lose_updates)
        .service(notely::http::app(state));
    let broken = axum::Router::new().fallback_service(inner);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, broken).await });
    let config = LoadConfig {
        accounts: 3,
        notes_per_account: 3,
        rpm: 3000,
        duration: Some(std::time::Duration::from_secs(2)),
    };
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let report = loadgen::run(
        &format!("http://{addr}"),
        &config,
        Arc::clone(&telemetry),
        stopped,
    )
    .await
    .unwrap();
    assert!(report.consistency_misses > 0, "{report:?}");
    assert!(
        telemetry
            .recent_logs(1000)
            .iter()
            .any(|l| l.contains("CONSISTENCY ERROR") && l.contains("was not kept"))
    );
}

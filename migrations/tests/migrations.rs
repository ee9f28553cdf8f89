//! Replays Notely's migrations one by one with their test data, checks every `down`, every
//! declared schema, and the final schema against the checked-in dumps in `schema/`.
//! After an intended schema change: `STRATA_BLESS=1 cargo test -p notely-migrations`, then
//! review the diff of `schema/*.sql`.

#[cfg(not(feature = "next"))]
#[test]
fn migrations_replay_cleanly_and_match_the_checked_in_schema() {
    let checked = strata::testing::Harness::new(&notely_migrations::MIGRATIONS)
        .schema_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schema"))
        .run();
    assert_eq!(checked.applied, 7);
    assert_eq!(checked.round_trips, 7);
    assert_eq!(checked.test_data, 6);
    assert_eq!(checked.dumps.len(), 3);
}

/// The next release (feature `next`): note titles added (expand), then required (contract);
/// its dumps are in `schema/next/`.
#[cfg(feature = "next")]
#[test]
fn the_next_release_replays_cleanly_and_matches_its_schema() {
    let checked = strata::testing::Harness::new(&notely_migrations::MIGRATIONS)
        .schema_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/next"))
        .run();
    assert_eq!(checked.applied, 9);
    assert_eq!(checked.round_trips, 9);
    let all = notely_migrations::MIGRATIONS.all().unwrap();
    let class = |v: i64| {
        let m = all.iter().find(|m| m.version() == v).unwrap();
        strata::class::classify(&all, m).class
    };
    assert_eq!(class(20261130090000), strata::class::Class::Expand);
    assert_eq!(class(20261130090100), strata::class::Class::Contract);
}

#[test]
fn titles_are_the_first_non_blank_line_shortened() {
    assert_eq!(
        notely_migrations::title_of("\n  Groceries \nmilk"),
        "Groceries"
    );
    assert_eq!(notely_migrations::title_of(""), "");
    assert_eq!(
        notely_migrations::title_of(&"é".repeat(100))
            .chars()
            .count(),
        80
    );
}

/// Keyed by (account, note id), two accounts may share a note id; the way back to one key per
/// id refuses while they do, naming the id, and leaves the store as it was.
#[cfg(not(feature = "next"))]
#[test]
fn keying_notes_by_id_again_refuses_shared_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let migrator = strata::Migrator::new(&notely_migrations::MIGRATIONS, notely_migrations::NOTES)
        .backup(None);
    migrator.run(&path).unwrap();
    let shared = uuid::Uuid::from_u128(7);
    let conn = rusqlite::Connection::open(&path).unwrap();
    for creator in [1u128, 2] {
        conn.execute(
            "INSERT INTO notes (id, creator, created_at, updated_at, content) \
             VALUES (?1, ?2, 0, 0, 'x')",
            rusqlite::params![shared, uuid::Uuid::from_u128(creator)],
        )
        .unwrap();
    }
    let err = migrator.down_to(&path, 20240301090000).unwrap_err();
    assert!(err.to_string().contains(&shared.to_string()), "{err}");
    let count: i64 = conn
        .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 2);
    assert_eq!(
        migrator.status(&path).unwrap().version,
        Some(20261129200000)
    );
}

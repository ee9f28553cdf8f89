//! Replays Notely's migrations one by one with their test data, checks every `down`, every
//! declared schema, and the final schema against the checked-in dumps in `schema/`.
//! After an intended schema change: `STRATA_BLESS=1 cargo test -p notely-migrations`, then
//! review the diff of `schema/*.sql`.

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

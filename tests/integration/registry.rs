//! What the binary carries: the registry collected at link time.

use strata::{Error, Source};

#[test]
fn notely_migrations_are_all_registered_in_order() {
    let all = notely_migrations::MIGRATIONS.all().unwrap();
    let listed: Vec<(i64, &str, &str)> = all
        .iter()
        .map(|m| (m.version(), m.name(), m.role()))
        .collect();
    assert_eq!(
        listed,
        [
            (20240226153000, "create_accounts", "control"),
            (20240226153100, "create_notes", "notes"),
            (20240301090000, "index_notes_by_creator", "notes"),
            (20261121100000, "place_accounts", "control"),
            (20261121100100, "create_legacy_memos", "legacy"),
            (20261129200000, "key_notes_by_account", "notes"),
            (20261129200100, "key_memos_by_account", "legacy"),
        ]
    );
    assert_eq!(
        all[0].description(),
        "Accounts, as Notely first stored them."
    );
    assert!(all.iter().all(|m| m.has_down() && m.schema().is_some()));
    assert_eq!(
        notely_migrations::MIGRATIONS.roles().unwrap(),
        ["control", "legacy", "notes"]
    );
}

#[test]
fn sources_do_not_leak_into_each_other() {
    let probe = strata_tests::probe::MIGRATIONS.all().unwrap();
    assert_eq!(probe.len(), 4);
    assert!(
        probe
            .iter()
            .all(|m| m.module().starts_with("strata_tests::probe"))
    );
}

#[test]
fn a_source_without_migrations_is_an_error() {
    static EMPTY: Source = Source::__new("integration::no_such_module");
    let err = EMPTY.all().unwrap_err();
    assert!(matches!(err, Error::EmptyRegistry { .. }), "{err}");
}

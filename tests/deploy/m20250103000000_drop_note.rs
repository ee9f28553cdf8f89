use strata::{Result, Tx, migration};

use super::m20250102000000_add_label as before;

strata::schema! {
    table items {
        id: i64 primary key,
        label: Option<String>,
    }
}

/// The note goes (release 2 keeps it in the label): release 1 reads it, so this is a contract,
/// applied only once no release-1 instance is alive.
#[migration(20250103000000, role = "deploy", contract, foreign_keys = off)]
fn drop_note(tx: &mut Tx) -> Result<()> {
    tx.rebuild_table(items::Table, |tx| {
        tx.select::<before::items::Row>().for_each(|old| {
            tx.insert(&items::Row {
                id: old.id,
                label: old.label.or(Some(old.note)),
            })
        })
    })
}

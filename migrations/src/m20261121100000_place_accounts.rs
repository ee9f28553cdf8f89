use strata::{Result, Tx, migration};
use uuid::Uuid;

use crate::m20240226153000_create_accounts as before;

strata::schema! {
    /// Notely's users. Where an account's notes live, and whether they are moving, is the
    /// placement directory's business now (`strata_placement`, owned by `strata::online`).
    table accounts {
        id: Uuid primary key,
        name: String,
    }
}

/// Placement directory: every account gets a placement (its notes are in the `notes` store);
/// `is_migrating` and `shard` leave the accounts table, the directory answers them now.
#[migration(20261121100000, role = "control", foreign_keys = off, test_data = accounts)]
fn place_accounts(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::online::directory::DIRECTORY_SQL)?;
    tx.execute(
        "INSERT INTO strata_placement (owner, location) SELECT id, 'notes' FROM accounts \
         WHERE true ON CONFLICT (owner) DO NOTHING",
        [],
    )?;
    tx.rebuild_table(accounts::Table, |tx| {
        tx.select::<before::accounts::Row>().for_each(|old| {
            tx.insert(&accounts::Row {
                id: old.id,
                name: old.name,
            })
        })
    })
}

/// Test rows: an account placed in the note store.
fn accounts(tx: &mut Tx) -> Result<()> {
    let id = Uuid::from_u128(3);
    tx.insert(&accounts::Row {
        id,
        name: "Edsger".into(),
    })?;
    tx.execute(
        "INSERT INTO strata_placement (owner, location) VALUES (?1, 'notes')",
        [id],
    )?;
    Ok(())
}

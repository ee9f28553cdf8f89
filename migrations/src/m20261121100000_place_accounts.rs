use ::strata::{Result, Tx, migration};
use uuid::Uuid;

/// This migration was written when the online engine was `strata::online`; it is the crate
/// `strata-online` now. The path in its body stays as it was, so that its checksum (of its
/// tokens) still matches the databases it was applied to.
mod strata {
    pub use ::strata::*;
    pub mod online {
        pub use ::strata_online::*;
    }
}

use crate::m20240226153000_create_accounts as before;

strata::schema! {
    /// Notely's users. Where an account's notes live, and whether they are moving, is the
    /// placement directory's business now (`strata_placement`, owned by `strata-online`).
    table accounts {
        id: Uuid primary key,
        name: String,
    }
}

/// Placement directory: every account gets a placement (its notes are in the `notes` store);
/// `is_migrating` and `shard` leave the accounts table, the directory answers them now.
#[migration(
    20261121100000,
    role = "control",
    contract,
    foreign_keys = off,
    down = unplace_accounts,
    test_data = accounts
)]
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

/// Back to accounts without a directory, which only works while every account's notes are
/// in the `notes` store (what Notely before the directory knew).
fn unplace_accounts(tx: &mut Tx) -> Result<()> {
    let elsewhere: i64 = tx.conn().query_row(
        "SELECT count(*) FROM strata_placement WHERE location <> 'notes' OR target IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    if elsewhere > 0 {
        return Err(strata::Error::msg(format!(
            "{elsewhere} account(s) have notes outside the `notes` store or are moving; move \
             them all to `notes` first (`notely move start --to notes --all`)"
        )));
    }
    tx.rebuild_table(before::accounts::Table, |tx| {
        tx.select::<accounts::Row>().for_each(|a| {
            tx.insert(&before::accounts::Row {
                id: a.id,
                name: a.name,
                is_migrating: false,
                shard: None,
            })
        })
    })?;
    tx.execute_batch(
        "DROP TABLE strata_move_differences; DROP TABLE strata_move_plan; \
         DROP TABLE strata_placement; DROP TABLE strata_moves; DROP TABLE strata_directory",
    )
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

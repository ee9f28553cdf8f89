use strata::{Result, Tx, migration};
use uuid::Uuid;

use crate::m20240301090000_index_notes_by_creator as before;

strata::schema! {
    /// Notes; times are Unix milliseconds. A note is identified by its account and its id:
    /// clients choose note ids, so two accounts may use the same one.
    table notes {
        id: Uuid,
        /// The account owning the note (in the control database).
        creator: Uuid,
        created_at: i64,
        updated_at: i64,
        content: String,
        primary key (creator, id),
        /// Listing an account's notes in creation order.
        index notes_by_creator (creator, created_at),
    }
}

/// Key notes by (account, note id): with the id alone as the key, a note id chosen by one
/// account could not be used by another, and an online move into this store silently skipped
/// a note whose id another account held.
#[migration(
    20261129200000,
    role = "notes",
    contract,
    foreign_keys = off,
    down = key_notes_by_id,
    test_data = shared_ids
)]
fn key_notes_by_account(tx: &mut Tx) -> Result<()> {
    tx.rebuild_table(notes::Table, |tx| {
        tx.select::<before::notes::Row>()
            .order_by(before::notes::CREATOR)
            .for_each(|n| {
                tx.insert(&notes::Row {
                    id: n.id,
                    creator: n.creator,
                    created_at: n.created_at,
                    updated_at: n.updated_at,
                    content: n.content,
                })
            })
    })
}

/// Back to one key per note id, which only works while no two accounts share a note id.
fn key_notes_by_id(tx: &mut Tx) -> Result<()> {
    let shared: Vec<(Uuid, i64)> = {
        let mut stmt = tx.conn().prepare(
            "SELECT id, count(*) FROM notes GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 5",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?
    };
    if !shared.is_empty() {
        let ids: Vec<String> = shared
            .iter()
            .map(|(id, n)| format!("{id} ({n} accounts)"))
            .collect();
        return Err(strata::Error::msg(format!(
            "note ids used by more than one account (up to 5 shown): {}. Keyed by id alone, \
             the store cannot hold them; delete those notes, or re-create them under new ids, \
             first",
            ids.join(", ")
        )));
    }
    tx.rebuild_table(before::notes::Table, |tx| {
        tx.select::<notes::Row>()
            .order_by(notes::CREATOR)
            .for_each(|n| {
                tx.insert(&before::notes::Row {
                    id: n.id,
                    creator: n.creator,
                    created_at: n.created_at,
                    updated_at: n.updated_at,
                    content: n.content,
                })
            })
    })
}

/// Test rows: two accounts with a note of the same id, which the old key refused.
fn shared_ids(tx: &mut Tx) -> Result<()> {
    for creator in [1u128, 2] {
        tx.insert(&notes::Row {
            id: Uuid::from_u128(999),
            creator: Uuid::from_u128(creator),
            created_at: 1_700_000_600_000,
            updated_at: 1_700_000_600_000,
            content: format!("shared id, account {creator}"),
        })?;
    }
    Ok(())
}

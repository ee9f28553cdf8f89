use strata::{Result, Tx, migration, sql};
use uuid::Uuid;

strata::schema! {
    /// Notes; times are Unix milliseconds.
    table notes {
        id: Uuid primary key,
        /// The account owning the note (in the control database).
        creator: Uuid,
        created_at: i64,
        updated_at: i64,
        content: String,
        /// Listing an account's notes no longer scans the table.
        index notes_by_creator (creator, created_at),
    }
}

/// Index notes by account: listing an account's notes was a full scan.
#[migration(20240301090000, role = "notes", down = drop_index)]
fn index_notes_by_creator(tx: &mut Tx) -> Result<()> {
    tx.create_index(notes::NOTES_BY_CREATOR)
}

fn drop_index(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(sql!("DROP INDEX notes_by_creator"))
}

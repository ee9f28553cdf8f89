use strata::{Result, Tx, migration};
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
    }
}

/// Notes, as Notely first stored them.
#[migration(20240226153100, role = "notes", down = drop_notes, test_data = notes)]
fn create_notes(tx: &mut Tx) -> Result<()> {
    tx.create_table(notes::Table)
}

fn drop_notes(tx: &mut Tx) -> Result<()> {
    tx.drop_table("notes")
}

/// Test rows: a few notes of two accounts.
fn notes(tx: &mut Tx) -> Result<()> {
    for i in 0..6u128 {
        let at = 1_700_000_000_000 + i as i64 * 60_000;
        tx.insert(&notes::Row {
            id: Uuid::from_u128(100 + i),
            creator: Uuid::from_u128(1 + i % 2),
            created_at: at,
            updated_at: at,
            content: format!("note {i}"),
        })?;
    }
    Ok(())
}

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
#[migration(20240226153100, role = "notes", down = drop_notes)]
fn create_notes(tx: &mut Tx) -> Result<()> {
    tx.create_table(notes::Table)
}

fn drop_notes(tx: &mut Tx) -> Result<()> {
    tx.drop_table("notes")
}

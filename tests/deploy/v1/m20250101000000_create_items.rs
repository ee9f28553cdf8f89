use strata::{Result, Tx, migration};

strata::schema! {
    table items {
        id: i64 primary key,
        note: String,
    }
}

/// Items, each with a note.
#[migration(20250101000000, role = "deploy")]
fn create_items(tx: &mut Tx) -> Result<()> {
    tx.create_table(items::Table)
}

use strata::{Result, Tx, migration};

strata::schema! {
    table items {
        id: i64 primary key,
        note: String,
        label: Option<String>,
    }
}

/// A label beside the note: release 1 does not write it, so it may be NULL (expand).
#[migration(20250102000000, role = "deploy")]
fn add_label(tx: &mut Tx) -> Result<()> {
    tx.add_column(items::LABEL)
}

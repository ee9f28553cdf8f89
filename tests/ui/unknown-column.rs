use strata::{Result, Tx, migration};

strata::schema! {
    table notes {
        id: i64 primary key,
        content: String,
    }
}

/// A title column was never declared by this migration's schema.
#[migration(20240226153000)]
fn set_titles(tx: &mut Tx) -> Result<()> {
    tx.update(notes::Table).set(notes::TITLE, "untitled".to_string()).execute()?;
    Ok(())
}

fn main() {}

use strata::{Result, Tx, migration};

strata::schema! {
    table notes {
        id: i64 primary key,
        created_at: i64,
        content: String,
    }
}

#[migration(20240226153000)]
fn touch_notes(tx: &mut Tx) -> Result<()> {
    tx.update(notes::Table).set(notes::CREATED_AT, "yesterday").execute()?;
    Ok(())
}

fn main() {}

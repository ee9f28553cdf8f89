use strata::{Result, Tx, migration};

strata::schema! {
    table notes {
        id: i64 primary key,
        created_at: i64,
        content: String,
    }
}

#[migration(20240226153000)]
fn seed_notes(tx: &mut Tx) -> Result<()> {
    tx.create_table(notes::Table)?;
    tx.insert(&notes::Row { id: 1, content: "hello".to_string() })
}

fn main() {}

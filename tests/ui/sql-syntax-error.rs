use strata::{Result, Tx, migration, sql};

#[migration(20240226153000, schema = none)]
fn create_notes(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(sql!("CREATE TABLE notes (id INTEGER PRIMARY KEY, content TEXT,)"))?;
    tx.execute_batch(sql!("SELEC * FROM accounts"))
}

fn main() {}

use strata::{Result, migration};

#[migration(20240226153000, schema = none)]
fn create_notes(conn: &rusqlite::Connection) -> Result<()> {
    conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY)")?;
    Ok(())
}

#[migration(20240226153100, schema = none)]
fn no_result(_tx: &mut strata::Tx) {}

fn main() {}

use strata::{Result, Tx, migration};

#[migration(20240226153000, schema = none, role = "Notes", foreign_keys = maybe, retries = 3)]
fn create_notes(_tx: &mut Tx) -> Result<()> {
    Ok(())
}

fn main() {}

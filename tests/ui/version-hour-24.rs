use strata::{Result, Tx, migration};

#[migration(20240226240000, schema = none)]
fn create_notes(_tx: &mut Tx) -> Result<()> {
    Ok(())
}

fn main() {}

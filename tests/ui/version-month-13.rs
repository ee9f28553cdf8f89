use strata::{Result, Tx, migration};

#[migration(20241326153000, schema = none)]
fn create_notes(_tx: &mut Tx) -> Result<()> {
    Ok(())
}

fn main() {}

use strata::{Result, Tx, migration};

#[migration(20240230153000, schema = none)]
fn create_notes(_tx: &mut Tx) -> Result<()> {
    Ok(())
}

fn main() {}

use strata::{Result, Tx, migration};

#[migration(2024022615300, schema = none)]
fn create_notes(_tx: &mut Tx) -> Result<()> {
    Ok(())
}

fn main() {}

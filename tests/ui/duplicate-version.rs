use strata::{Result, Tx, migration};

#[migration(20240226153000, schema = none)]
fn create_notes(_tx: &mut Tx) -> Result<()> {
    Ok(())
}

mod elsewhere {
    use strata::{Result, Tx, migration};

    #[migration(20240226153000, schema = none)]
    fn create_accounts(_tx: &mut Tx) -> Result<()> {
        Ok(())
    }
}

fn main() {}

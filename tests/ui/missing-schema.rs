use strata::{Result, Tx, migration};

// Every migration declares the schema it leaves behind (`strata::schema!`), or opts out with
// `schema = none`.
#[migration(20240226153000)]
fn create_notes(tx: &mut Tx) -> Result<()> {
    tx.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
}

fn main() {}

use strata::{Result, Tx, migration};

// A bad version, an unknown argument, a generic function and an error inside the body: all four
// are reported by one compilation.
#[migration(20241301000000, schema = none, transactional)]
fn create_notes<T>(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(42)
}

fn main() {}

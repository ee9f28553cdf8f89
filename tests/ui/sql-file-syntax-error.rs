use strata::{Result, Tx, migration};

// An SQL file SQLite cannot parse fails the build, naming the file.
#[migration(20240226153000, schema = none)]
fn create_broken(tx: &mut Tx) -> Result<()> {
    tx.execute_batch(strata::sql_file!("sql-file-syntax-error.sql"))
}

fn main() {}

//! A migration whose SQL lives in a file beside it (`strata::sql_file!`).

strata::migrations!();

/// Things, from `create_things.sql`.
pub mod m20250801000000_create_things {
    use strata::{Result, Tx, migration};

    /// Applies the SQL file.
    #[migration(20250801000000, role = "files", schema = none)]
    fn create_things(tx: &mut Tx) -> Result<()> {
        tx.execute_batch(strata::sql_file!("create_things.sql"))
    }
}

use strata::{Result, Tx, migration};

// `= null` on a column that is not an `Option` is refused, saying what to write instead.
strata::schema! {
    table tags {
        id: i64 primary key,
        colour: String = null,
    }
}

#[migration(20240226153000)]
fn create_tags(tx: &mut Tx) -> Result<()> {
    tx.create_table(tags::Table)
}

fn main() {}

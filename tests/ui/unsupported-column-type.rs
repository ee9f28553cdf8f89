use strata::{Result, Tx, migration};

strata::schema! {
    table events {
        id: i64 primary key,
        at: std::time::Instant,
    }
}

#[migration(20240226153000)]
fn create_events(tx: &mut Tx) -> Result<()> {
    tx.create_table(events::Table)
}

fn main() {}

use strata::{Result, Tx, migration};

strata::schema! {
    table accounts {
        id: i64 primary key,
        name: String,
    }
    table notes {
        id: i64 primary key,
        creator: i64,
    }
}

#[migration(20240226153000)]
fn notes_of_one_account(tx: &mut Tx) -> Result<()> {
    let _ = tx.select::<notes::Row>().filter(accounts::ID.eq(7)).all()?;
    Ok(())
}

fn main() {}

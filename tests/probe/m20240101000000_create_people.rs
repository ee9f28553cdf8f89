use strata::{Result, Tx, migration};

strata::schema! {
    table people {
        id: i64 primary key,
        full_name: String,
    }
    table pets {
        id: i64 primary key,
        owner: i64 references people(id) on delete cascade,
        name: String,
    }
}

/// People and their pets, with bootstrap rows written through the typed rows.
#[migration(20240101000000)]
fn create_people(tx: &mut Tx) -> Result<()> {
    tx.create_table(people::Table)?;
    tx.create_table(pets::Table)?;
    for (id, name) in [
        (1, "Ada Lovelace"),
        (2, "Alan Turing"),
        (3, "Grace Brewster Hopper"),
    ] {
        tx.insert(&people::Row {
            id,
            full_name: name.to_string(),
        })?;
        tx.insert(&pets::Row {
            id: id * 10,
            owner: id,
            name: format!("pet of {name}"),
        })?;
    }
    Ok(())
}

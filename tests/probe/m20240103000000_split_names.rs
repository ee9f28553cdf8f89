use strata::{Result, Tx, migration};

use super::m20240102000000_slow_fill as prev;

strata::schema! {
    table people {
        id: i64 primary key,
        first_name: String,
        last_name: String,
    }
    table pets {
        id: i64 primary key,
        owner: i64 references people(id) on delete cascade,
        name: String,
    }
    table items {
        id: i64 primary key,
        label: String,
    }
}

/// Splits `full_name` into first and last name: a table rebuild with a typed transform, reading
/// people through the previous migration's rows. Foreign keys are off during the rebuild, so
/// dropping the old `people` does not cascade to `pets`.
#[migration(20240103000000, contract, foreign_keys = off)]
fn split_names(tx: &mut Tx) -> Result<()> {
    tx.rebuild_table(people::Table, |tx| {
        tx.select::<prev::people::Row>()
            .order_by(prev::people::ID)
            .for_each(|old| {
                let (first, last) = old
                    .full_name
                    .rsplit_once(' ')
                    .unwrap_or((&old.full_name, ""));
                tx.insert(&people::Row {
                    id: old.id,
                    first_name: first.into(),
                    last_name: last.into(),
                })
            })
    })
}

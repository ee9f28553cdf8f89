use std::time::Duration;

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
    table items {
        id: i64 primary key,
        label: String,
    }
}

/// Rows the slow fill inserts.
pub const ITEMS: i64 = 200;

/// Fills `items` row by row; `STRATA_PROBE_SLOW_MS` stretches it so a test can kill it midway,
/// `STRATA_PROBE_FAIL` makes it fail halfway with an SQLite error.
#[migration(20240102000000)]
fn slow_fill(tx: &mut Tx) -> Result<()> {
    tx.create_table(items::Table)?;
    let pause = Duration::from_millis(super::env_ms("STRATA_PROBE_SLOW_MS")) / ITEMS as u32;
    for id in 0..ITEMS {
        tx.insert(&items::Row {
            id,
            label: format!("item {id}"),
        })?;
        std::thread::sleep(pause);
        if id == ITEMS / 2 && std::env::var_os("STRATA_PROBE_FAIL").is_some() {
            tx.execute("INSERT INTO missing_table VALUES (1)", [])?;
        }
    }
    Ok(())
}

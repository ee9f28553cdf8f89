use std::time::Duration;

use strata::{Result, Tx, migration, sql};

pub use super::m20240103000000_split_names::{SCHEMA, items, people, pets};

/// VACUUM cannot run inside a transaction: a `no_transaction` migration, run under a lease.
/// `STRATA_PROBE_NOTX_SLOW_MS` delays it so a test can kill it midway.
#[migration(20240104000000, no_transaction)]
fn compact(tx: &mut Tx) -> Result<()> {
    std::thread::sleep(Duration::from_millis(super::env_ms(
        "STRATA_PROBE_NOTX_SLOW_MS",
    )));
    tx.execute_batch(sql!("VACUUM"))
}

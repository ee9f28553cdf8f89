use strata::{Result, Tx, migration};
use uuid::Uuid;

strata::schema! {
    /// Notely's users.
    table accounts {
        id: Uuid primary key,
        name: String,
        /// Set while the account's notes move between stores.
        is_migrating: bool = false,
        /// The note store holding the account's notes; none means the default store.
        shard: Option<String>,
    }
}

/// Accounts, as Notely first stored them.
#[migration(20240226153000, role = "control", down = drop_accounts, test_data = accounts)]
fn create_accounts(tx: &mut Tx) -> Result<()> {
    tx.create_table(accounts::Table)
}

fn drop_accounts(tx: &mut Tx) -> Result<()> {
    tx.drop_table("accounts")
}

/// Test rows: an account on the default store and one already placed on a shard.
fn accounts(tx: &mut Tx) -> Result<()> {
    tx.insert(&accounts::Row {
        id: Uuid::from_u128(1),
        name: "Ada".into(),
        is_migrating: false,
        shard: None,
    })?;
    tx.insert(&accounts::Row {
        id: Uuid::from_u128(2),
        name: "Grace".into(),
        is_migrating: true,
        shard: Some("second".into()),
    })
}

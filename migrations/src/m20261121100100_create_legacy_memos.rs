use strata::{Result, Tx, migration};

strata::schema! {
    /// Notes as the legacy store kept them: text ids, RFC 3339 text times, other names.
    table memos {
        /// The note id, as hyphenated UUID text.
        memo_id: String primary key,
        /// The owning account's id, as hyphenated UUID text.
        account_ref: String,
        body: String,
        /// RFC 3339 with milliseconds, UTC.
        created: String,
        modified: String,
        index memos_by_account (account_ref, memo_id),
    }
}

/// The legacy note store, from before Notely kept notes in `notes`.
#[migration(20261121100100, role = "legacy", down = drop_memos, test_data = memos)]
fn create_legacy_memos(tx: &mut Tx) -> Result<()> {
    tx.create_table(memos::Table)
}

fn drop_memos(tx: &mut Tx) -> Result<()> {
    tx.drop_table("memos")
}

/// Test rows: two memos of one account.
fn memos(tx: &mut Tx) -> Result<()> {
    for i in 0..2 {
        tx.insert(&memos::Row {
            memo_id: format!("00000000-0000-0000-0000-00000000020{i}"),
            account_ref: "00000000-0000-0000-0000-000000000001".into(),
            body: format!("memo {i}"),
            created: "2023-05-01T10:00:00.000Z".into(),
            modified: "2023-05-02T10:00:00.000Z".into(),
        })?;
    }
    Ok(())
}
